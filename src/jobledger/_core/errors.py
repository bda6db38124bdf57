"""The errors jobledger raises, all rooted at :class:`JobledgerError`.

The tree::

    JobledgerError
    ├── JobNotFoundError            (also LookupError)
    ├── JobAlreadyExistsError       (also ValueError)
    ├── ConcurrencyError
    ├── InvalidTransitionError
    ├── InvalidJobDataError         (also ValueError)
    │   └── WireFormatError
    ├── RequestIdConflictError      (also ValueError)
    └── StorageError
        ├── StorageUnavailableError (also ConnectionError)
        ├── StorageConfigurationError
        ├── StorageTimeoutError     (also TimeoutError)
        ├── ForeignDatabaseError
        ├── SchemaVersionError
        └── SchemaUpgradeError      (also PermissionError)

Each error carries the facts a caller needs as attributes, and its message says
what happened in words a person can act on.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "ForeignDatabaseError",
    "InvalidJobDataError",
    "InvalidTransitionError",
    "JobAlreadyExistsError",
    "JobNotFoundError",
    "JobledgerError",
    "RequestIdConflictError",
    "SchemaUpgradeError",
    "SchemaVersionError",
    "StorageConfigurationError",
    "StorageError",
    "StorageTimeoutError",
    "StorageUnavailableError",
    "WireFormatError",
]


class JobledgerError(Exception):
    """The root of every error jobledger raises on purpose.

    Attributes:
        batch_index: In a refusal :meth:`~jobledger.Jobs.handle_all` raises,
            the position in the batch of the command refused, when the ledger
            can tell which one it is; ``None`` otherwise, and in every other
            error (a storage failure is no command's refusal).
    """

    batch_index: int | None = None


class JobNotFoundError(JobledgerError, LookupError):
    """No job has the id that was asked for.

    Attributes:
        job_id: The id that was looked up.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r}")

    def __reduce__(self) -> tuple[type[JobNotFoundError], tuple[str]]:
        return (type(self), (self.job_id,))


class JobAlreadyExistsError(JobledgerError, ValueError):
    """A start named a job id that is already taken by another start.

    Attributes:
        job_id: The id that is taken.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"a job with id {job_id!r} already exists; start it with another id, "
            "or retry the original start with its request_id to get it back"
        )

    def __reduce__(self) -> tuple[type[JobAlreadyExistsError], tuple[str]]:
        return (type(self), (self.job_id,))


class ConcurrencyError(JobledgerError):
    """The ETag a command carried is not the job's current ETag.

    Someone else changed the job since the sender last read it. Nothing was
    written and nothing was published: read the job again, decide again, and
    send the command with the new ETag.

    Attributes:
        job_id: The job the command was for.
        expected_etag: The ETag the command carried.
        current_etag: The job's ETag now.
    """

    def __init__(self, job_id: str, expected_etag: str, current_etag: str) -> None:
        self.job_id = job_id
        self.expected_etag = expected_etag
        self.current_etag = current_etag
        super().__init__(
            f"job {job_id!r} was changed by someone else: the command carried ETag "
            f"{expected_etag!r} but the job's ETag is now {current_etag!r}; "
            "read the job again and retry with the new ETag"
        )

    def __reduce__(self) -> tuple[type[ConcurrencyError], tuple[str, str, str]]:
        return (type(self), (self.job_id, self.expected_etag, self.current_etag))


class InvalidTransitionError(JobledgerError):
    """The job's lifecycle does not allow this command in the job's phase.

    Attributes:
        job_id: The job the command was for.
        phase: The job's phase (``"completed"``, ``"failed"``, ...).
        command: The command's kind (``"update"``, ``"complete"``, ...).
    """

    def __init__(self, job_id: str, phase: str, command: str) -> None:
        self.job_id = job_id
        self.phase = phase
        self.command = command
        if phase == "active":
            reason = "it is already active"
        else:
            reason = f"it is {phase}, and a {phase} job accepts no further changes"
        super().__init__(f"cannot {command} job {job_id!r}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidTransitionError], tuple[str, str, str]]:
        return (type(self), (self.job_id, self.phase, self.command))


class InvalidJobDataError(JobledgerError, ValueError):
    """A value given to the ledger breaks its data rules; nothing was written.

    Attributes:
        field: The field that holds the bad value (``"state_update"``, ``"service"``...).
        path: Where in that field's JSON document the bad value is, as a
            JSON Pointer (RFC 6901); ``""`` is the whole value.
        reason: What is wrong with it.
    """

    def __init__(self, field: str, path: str, reason: str) -> None:
        self.field = field
        self.path = path
        self.reason = reason
        where = f"{field} at {path}" if path else field
        super().__init__(f"invalid {where}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidJobDataError], tuple[str, str, str]]:
        return (type(self), (self.field, self.path, self.reason))


class WireFormatError(InvalidJobDataError):
    """A message on the wire does not match the wire format.

    ``field`` names the message type and ``path`` the offending key, as a JSON
    Pointer.
    """


class RequestIdConflictError(JobledgerError, ValueError):
    """A request id was used again for a different command.

    A retry must repeat its command exactly; a new command needs a new request id.

    Attributes:
        request_id: The request id that was reused.
    """

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"request id {request_id!r} was already used for a different command; "
            "retries must repeat the command exactly, new commands need a new request id"
        )

    def __reduce__(self) -> tuple[type[RequestIdConflictError], tuple[str]]:
        return (type(self), (self.request_id,))


class StorageError(JobledgerError):
    """The storage behind a repository failed; the operation did not happen.

    A backend raises it (or a subclass) in place of its driver's error, which is
    the ``__cause__``, so a caller handles one family whatever the backend. When
    a save raises it, nothing of the change was written.

    Attributes:
        location: Which database (a file path, or a server and schema).
    """

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        super().__init__(f"{location}: {message}")

    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str]]:
        return (type(self), (self.location, self.args[0].partition(": ")[2]))


class StorageUnavailableError(StorageError, ConnectionError):
    """The database cannot be reached (a server down, a wrong address or password).

    Check the connection settings and that the server runs. If the connection
    broke while a change was being committed, the change may have been saved:
    send the command again with the same ``request_id`` to find out safely.
    """


class StorageConfigurationError(StorageError):
    """The connection settings are wrong: the server answered, and refused them.

    A wrong password, a user or database that does not exist, a connection
    string that does not parse. It is raised at once (waiting would not help),
    and never names the password. Fix the settings; retrying as they are
    fails the same way.
    """


class StorageTimeoutError(StorageError, TimeoutError):
    """The database stayed locked by other writers for longer than the repository waits.

    Nothing was written. Retrying later is safe; if it keeps happening, a
    transaction elsewhere is holding the lock too long, or the timeout is too
    short for the load.
    """


class ForeignDatabaseError(StorageError):
    """The database is not a jobledger database (another application's, or not a database).

    The repository refused it and changed nothing in it.
    """


class SchemaVersionError(StorageError):
    """The database was written by a newer jobledger whose schema this one does not know.

    The repository refused it and changed nothing in it: upgrade jobledger.

    Attributes:
        found: The schema version in the database.
        supported: The newest schema version this jobledger knows.
    """

    def __init__(self, location: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            location,
            f"the database has schema version {found}, newer than the {supported} this "
            "jobledger knows; upgrade jobledger to open it",
        )

    def __reduce__(self) -> tuple[type[SchemaVersionError], tuple[str, int, int]]:  # type: ignore[override]
        return (type(self), (self.location, self.found, self.supported))


class SchemaUpgradeError(StorageError, PermissionError):
    """The database has an older schema that this access may not upgrade.

    jobledger upgrades an older schema when it opens the database, which needs
    write access: an SQLite file opened read-only (or without write
    permission), or a PostgreSQL role that does not own the schema's tables,
    cannot do it. The repository changed nothing: open the database once with
    write access (on PostgreSQL, as the owner of the schema's tables), then it
    opens with any access again.

    Attributes:
        found: The schema version in the database.
        supported: The schema version this jobledger writes.
    """

    def __init__(self, location: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            location,
            f"the database has schema version {found}, which needs upgrading to {supported}, "
            "and this access cannot write it; open it once with write access (on PostgreSQL, "
            "as the owner of the schema's tables) to upgrade it; nothing was changed",
        )

    def __reduce__(self) -> tuple[type[SchemaUpgradeError], tuple[str, int, int]]:  # type: ignore[override]
        return (type(self), (self.location, self.found, self.supported))
