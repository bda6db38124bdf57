"""The errors jobledger raises, all rooted at :class:`JobledgerError`.

The tree::

    JobledgerError
    ├── JobNotFoundError            (also LookupError)
    ├── JobAlreadyExistsError       (also ValueError)
    ├── ConcurrencyError
    ├── InvalidTransitionError
    ├── InvalidJobDataError         (also ValueError)
    │   └── WireFormatError
    └── RequestIdConflictError      (also ValueError)

Each error carries the facts a caller needs as attributes, and its message says
what happened in words a person can act on.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "InvalidJobDataError",
    "InvalidTransitionError",
    "JobAlreadyExistsError",
    "JobNotFoundError",
    "JobledgerError",
    "RequestIdConflictError",
    "WireFormatError",
]


class JobledgerError(Exception):
    """The root of every error jobledger raises on purpose."""


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
