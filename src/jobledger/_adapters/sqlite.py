"""The SQLite repository: jobs kept durably in one file that threads and processes share.

Standard-library :mod:`sqlite3` only. The file is in WAL mode, so readers never
wait for the writer and the writer never waits for readers; writers take the
write lock when their transaction begins (``BEGIN IMMEDIATE``) and wait for it
up to the busy timeout. Each thread borrows a connection from a small pool for
the length of one call.

**The feed never skips.** A sequence-numbered outbox has a classic pitfall:
two writers take positions 7 and 8, the one holding 8 commits first, a reader
sees 8, remembers "handled up to 8", and 7 (committed a moment later) is never
read. Here that cannot happen, because SQLite has exactly one writer at a time
and a position is taken *inside* the write transaction, as one more than the
last committed position. The writer holding position 7 holds the write lock
until it commits or rolls back; nobody else can take position 8 meanwhile. So
positions are assigned in commit order, a rolled-back transaction leaves no
hole (its position is taken again by the next writer), and whatever position
a reader sees, every position before it is committed and visible too.

**Group commit.** Saves that threads make through one repository object at
the same moment share one transaction, and so one flush of the log: the
thread of the oldest waiting save takes the write lock, then writes every save
queued by then and those queued while it writes (a refused save is undone
alone, with a savepoint where it may have written before its refusal, and
gets its own error), commits once none is left, and wakes the threads it
settled. A save returns only once that commit is done. A
thread alone commits at once. Positions stay gap-free and in commit order:
the group's saves take consecutive ones inside its transaction.

**The schema** is created on first use and versioned: the file's header holds
jobledger's ``application_id`` and the schema version in ``user_version``.
A file of an older schema version is upgraded when it is opened, in one
transaction. Opening a file that is not a jobledger database, or one whose
schema is newer than this jobledger knows, fails before anything is written to it.

Timestamps are stored as microseconds since the Unix epoch and JSON as text
(see :mod:`jobledger._adapters.rows`); every value is a bound parameter.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, NoReturn, Self, TypeVar

from jobledger._adapters.forks import forks
from jobledger._adapters.rows import (
    EVENT_COLUMNS,
    JOB_COLUMNS,
    REQUEST_COLUMNS,
    UPDATE_COLUMNS,
    decode_row,
    encode_json,
    encode_optional,
    event_from_row,
    event_row,
    find_clause,
    job_from_row,
    job_row,
    parked_from_row,
    refuse_save,
    request_from_row,
    request_row,
    to_micros,
    update_from_row,
    update_row,
)
from jobledger._core.errors import (
    ForeignDatabaseError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    RequestIdConflictError,
    SchemaUpgradeError,
    SchemaVersionError,
    StorageError,
    StorageTimeoutError,
)
from jobledger._core.events import JobStarted
from jobledger._core.job import UpdateType
from jobledger._core.jsondoc import is_storable_key
from jobledger._core.positions import check_position, check_subscriber_name, window
from jobledger._core.query import JobPage
from jobledger._core.recent import RecentJobs
from jobledger._core.retention import PurgeRule, check_reason
from jobledger._ports import FeedEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from jobledger._core.decide import Change, RequestRecord
    from jobledger._core.job import Job, JobUpdate
    from jobledger._core.parked import ParkedEvent
    from jobledger._core.query import JobQuery

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Durability", "SQLiteRepository"]

logger = logging.getLogger(__name__)

_V = TypeVar("_V")

#: The ``PRAGMA application_id`` that marks a file as a jobledger database ("JLDG").
APPLICATION_ID = 0x4A4C4447

#: The schema version this jobledger writes, kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 2

# SQLite's primary result codes that the boundary translates.
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_NOTADB = 26
_SQLITE_READONLY = 8

# How often wait_for_feed looks for commits made by other processes.
_FEED_POLL_SECONDS = 0.05

# Idle connections kept for reuse; more are closed when returned.
_MAX_IDLE_CONNECTIONS = 16


# Start records are read by job id (as-of-version reads); a partial index keeps
# that a look-up, not a scan of the feed. Files made before it get it when opened.
_START_INDEX = "CREATE INDEX IF NOT EXISTS feed_starts ON feed (job_id) WHERE kind = 'started'"
# Each durable subscriber name's consumer and its lease expiry (microseconds since the epoch).
_CONSUMERS_TABLE = """CREATE TABLE IF NOT EXISTS consumers (
        name TEXT PRIMARY KEY NOT NULL,
        owner TEXT NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID"""
_CLAIM_CONSUMER = (
    "INSERT INTO consumers (name, owner, expires) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
    "WHERE consumers.owner = excluded.owner OR consumers.expires < ?"
)
# Legal holds: jobs a purge must leave alone, and why.
_HOLDS_TABLE = """CREATE TABLE IF NOT EXISTS holds (
        job_id TEXT PRIMARY KEY NOT NULL,
        reason TEXT NOT NULL
    ) WITHOUT ROWID"""
# What a purge deletes, re-checked per job in its own transaction.
_PURGE_CANDIDATES = (
    "SELECT id FROM jobs WHERE phase != 'active' AND updated_at < ? "
    "AND NOT EXISTS (SELECT 1 FROM holds WHERE holds.job_id = jobs.id)"
)
_DELETE_PURGED_JOB = (
    "DELETE FROM jobs WHERE id = ? AND phase != 'active' AND updated_at < ? "
    "AND NOT EXISTS (SELECT 1 FROM holds WHERE holds.job_id = jobs.id)"
)
# Events durable subscribers parked; the event itself stays in the feed, at its position.
_PARKED_TABLE = """CREATE TABLE IF NOT EXISTS parked (
        name TEXT NOT NULL,
        position INTEGER NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        retry INTEGER NOT NULL,
        PRIMARY KEY (name, position)
    ) WITHOUT ROWID"""

_SCHEMA = (
    """CREATE TABLE jobs (
        id TEXT PRIMARY KEY NOT NULL,
        service TEXT NOT NULL,
        entity TEXT NOT NULL,
        type TEXT NOT NULL,
        display_name TEXT NOT NULL,
        description TEXT NOT NULL,
        status TEXT NOT NULL,
        phase TEXT NOT NULL,
        input TEXT NOT NULL,
        state TEXT NOT NULL,
        etag TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC)",
    *(
        f"CREATE INDEX jobs_by_{column} ON jobs ({column}, created_at DESC, id DESC)"
        for column in ("service", "entity", "type", "status", "phase")
    ),
    """CREATE TABLE updates (
        job_id TEXT NOT NULL,
        update_id INTEGER NOT NULL,
        update_type INTEGER NOT NULL,
        status TEXT NOT NULL,
        state_update TEXT,
        display_name TEXT,
        description TEXT,
        etag TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (job_id, update_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE feed (
        position INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        job_id TEXT NOT NULL,
        service TEXT NOT NULL,
        entity TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        etag TEXT NOT NULL,
        version INTEGER NOT NULL,
        at INTEGER NOT NULL,
        update_id INTEGER,
        display_name TEXT,
        description TEXT,
        input TEXT,
        state TEXT,
        state_update TEXT
    )""",
    """CREATE TABLE requests (
        request_id TEXT PRIMARY KEY NOT NULL,
        fingerprint TEXT NOT NULL,
        job TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE checkpoints (
        name TEXT PRIMARY KEY NOT NULL,
        position INTEGER NOT NULL
    ) WITHOUT ROWID""",
    _START_INDEX,
    _PARKED_TABLE,
    _CONSUMERS_TABLE,
    _HOLDS_TABLE,
    f"PRAGMA application_id = {APPLICATION_ID}",
    "PRAGMA user_version = 1",
)

# The upgrades after version 1 (which _SCHEMA creates), by the version each one
# brings a file to from the version before; a new file is created at version 1
# and upgraded, so every file goes through the same steps.
_UPGRADES: dict[int, tuple[str, ...]] = {
    # Who acted: the job's starter and each change's actor; rows written before have none.
    2: (
        "ALTER TABLE jobs ADD COLUMN started_by TEXT",
        "ALTER TABLE updates ADD COLUMN actor TEXT",
        "ALTER TABLE feed ADD COLUMN actor TEXT",
    ),
}


def _statement(*parts: str) -> str:
    """Join the parts of an SQL statement.

    Statements are assembled once, at import, from the literal text below and
    the column tuples of :mod:`jobledger._adapters.rows`; no value ever enters
    them. Every value is a bound ``?`` parameter.
    """
    return "".join(parts)


def _columns(columns: Sequence[str]) -> str:
    return ", ".join(columns)


def _marks(columns: Sequence[str]) -> str:
    return ", ".join("?" * len(columns))


_INSERT_JOB = _statement(
    "INSERT INTO jobs (", _columns(JOB_COLUMNS), ") VALUES (", _marks(JOB_COLUMNS), ")"
)
# The columns a change may alter. The others (id, service, entity, type, input,
# created_at) are fixed at the start, so a change leaves them, and the indexes
# over them, alone: SQLite rewrites an index entry only when the UPDATE sets one
# of its columns, whatever the value.
_CHANGED_COLUMNS = ("display_name", "description", "state", "etag", "version", "updated_at")
# Indexed columns that most changes keep as they are.
_STATUS_COLUMNS = ("status", "phase")
_COMPARE_AND_SET = " WHERE id = ? AND etag = ? AND version = ?"
_UPDATE_JOB = _statement(
    "UPDATE jobs SET ",
    ", ".join(f"{column} = ?" for column in (*_CHANGED_COLUMNS, *_STATUS_COLUMNS)),
    _COMPARE_AND_SET,
)
# The same change for a job whose status (and so its phase) stays: it matches
# no row when they differ, and then _UPDATE_JOB writes them.
_UPDATE_JOB_KEEPING_STATUS = _statement(
    "UPDATE jobs SET ",
    ", ".join(f"{column} = ?" for column in _CHANGED_COLUMNS),
    _COMPARE_AND_SET,
    "".join(f" AND {column} = ?" for column in _STATUS_COLUMNS),
)
_INSERT_UPDATE = _statement(
    "INSERT INTO updates (", _columns(UPDATE_COLUMNS), ") VALUES (", _marks(UPDATE_COLUMNS), ")"
)
_INSERT_REQUEST = _statement(
    "INSERT INTO requests (",
    _columns(REQUEST_COLUMNS),
    ") VALUES (",
    _marks(REQUEST_COLUMNS),
    ")",
)
# The position is taken inside the write transaction: see the module docstring.
_INSERT_EVENT = _statement(
    "INSERT INTO feed (position, ",
    _columns(EVENT_COLUMNS),
    ") VALUES ((SELECT COALESCE(MAX(position), 0) + 1 FROM feed), ",
    _marks(EVENT_COLUMNS),
    ")",
)
_SELECT_JOB = _statement("SELECT ", _columns(JOB_COLUMNS), " FROM jobs")
_SELECT_JOB_BY_ID = _statement(_SELECT_JOB, " WHERE id = ?")
_SELECT_JOB_VERSION = "SELECT etag, version FROM jobs WHERE id = ?"
_SELECT_UPDATES = _statement(
    "SELECT ",
    _columns(UPDATE_COLUMNS),
    " FROM updates WHERE job_id = ? AND update_id > ? ORDER BY update_id",
)
_SELECT_FEED = _statement(
    "SELECT position, ",
    _columns(EVENT_COLUMNS),
    " FROM feed WHERE position > ? ORDER BY position LIMIT ?",
)
_SELECT_START = _statement(
    "SELECT ", _columns(EVENT_COLUMNS), " FROM feed WHERE job_id = ? AND kind = 'started'"
)
_SELECT_PARKED = _statement(
    "SELECT parked.position, parked.error, parked.attempts, parked.retry, ",
    ", ".join(f"feed.{column}" for column in EVENT_COLUMNS),
    " FROM parked JOIN feed ON feed.position = parked.position",
    " WHERE parked.name = ? ORDER BY parked.position",
)
_UPSERT_PARKED = (
    "INSERT INTO parked (name, position, error, attempts, retry) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (name, position) DO UPDATE SET error = excluded.error, "
    "attempts = excluded.attempts, retry = excluded.retry"
)
_SELECT_REQUEST = _statement(
    "SELECT ", _columns(REQUEST_COLUMNS), " FROM requests WHERE request_id = ?"
)
_UPSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (name, position) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)


class Durability(enum.StrEnum):
    """How hard a commit works to survive a crash; what each setting trades.

    Both settings keep the database consistent after any crash: a change is
    always all there or not there at all, and the file is never corrupted.
    They differ in what a crash of the whole machine may take back.

    Attributes:
        FULL: The default. Every commit waits until the write-ahead log is on
            disk (``PRAGMA synchronous=FULL``). Once a save returns, the change
            survives the process being killed, the operating system crashing
            and the power failing. Each commit costs a disk flush.
        NORMAL: Commits do not wait for the disk; the log is flushed when it is
            checkpointed into the database (``PRAGMA synchronous=NORMAL``).
            A change survives the process being killed (even by SIGKILL), but
            an operating system crash or power loss may take back the last
            changes that were committed before it (the database comes back as
            it was a moment earlier, consistent and uncorrupted). Much faster
            on disks with slow flushes; choose it when the last second of work
            can be redone.
    """

    FULL = "full"
    NORMAL = "normal"


def _purge_filters(rule: PurgeRule) -> tuple[str, tuple[str, ...]]:
    """The extra conditions (and their values) of ``rule``'s service, entity and type."""
    parts = [
        (f" AND {column} = ?", value)
        for column, value in (
            ("service", rule.service),
            ("entity", rule.entity),
            ("type", rule.type),
        )
        if value is not None
    ]
    return "".join(part for part, _ in parts), tuple(value for _, value in parts)


def _micros(when: datetime) -> int:
    """``when`` as whole microseconds since the epoch (how lease expiries are kept)."""
    return round(when.timestamp() * 1_000_000)


def _create_private(path: str) -> None:
    """Create the database file readable and writable by its owner only (0600), if it is new.

    SQLite gives its journal and WAL files the database file's permissions,
    so they are private too. An existing file keeps the permissions it has.
    """
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        # It exists, or cannot be made: opening it says what is wrong, as it did before.
        return
    try:
        # os.open's mode is filtered by the umask; this sets exactly 0600 whatever it is.
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def _reopen(path: str, durability: str, busy_timeout: float) -> SQLiteRepository:
    return SQLiteRepository(path, durability=durability, busy_timeout=busy_timeout)


class SQLiteRepository:
    """A :class:`~jobledger.Repository` in an SQLite file, safe for many threads and processes.

    Args:
        path: The database file. It is created, with its schema, if it does
            not exist, readable and writable by its owner only (mode 0600,
            whatever the umask; its journal and WAL files too); an existing
            file must be a jobledger database and keeps its permissions.
        durability: :attr:`Durability.FULL` (the default) or
            :attr:`Durability.NORMAL` (or their names, ``"full"``,
            ``"normal"``); see :class:`Durability` for what each trades.
        busy_timeout: How many seconds a write waits for another writer's
            lock before it gives up with :class:`StorageTimeoutError`.

    Raises:
        ForeignDatabaseError: ``path`` is not a jobledger database (another
            application's SQLite database, or not a database at all).
        SchemaVersionError: ``path`` was written by a newer jobledger.
        SchemaUpgradeError: ``path`` has an older schema and is open read-only.
        StorageError: the file cannot be opened or created.

    Every process and thread may open the same file; a change commits for all
    of them at once, and so does a batch of changes (it is an
    :class:`~jobledger.AtomicBatches`). Saves that threads make through one
    repository object at the same moment share one commit (a group commit),
    each with its own outcome, and each returns once that commit is done. The
    repository can be pickled: the copy opens the same file with the same
    settings (handy for handing it to a child process).

    >>> import tempfile, pathlib
    >>> from jobledger import Jobs
    >>> from jobledger.sqlite import SQLiteRepository
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with SQLiteRepository(pathlib.Path(folder) / "jobs.db") as repository:
    ...         jobs = Jobs(repository=repository)
    ...         job = jobs.start(service="hr", entity="employee", type="sync")
    ...         print(repository.get(job.id).status, repository.feed_head())
    started 1
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability | str = Durability.FULL,
        busy_timeout: float = 10.0,
    ) -> None:
        self._path = os.fspath(path)
        if self._path in {"", ":memory:"} or self._path.startswith("file:"):
            msg = (
                f"path must name a database file, not {self._path!r}; "
                "for a ledger in memory use jobledger.InMemoryRepository"
            )
            raise ValueError(msg)
        self._durability = Durability(durability)
        if busy_timeout < 0:
            msg = f"busy_timeout must be zero or more seconds, not {busy_timeout!r}"
            raise ValueError(msg)
        self._busy_timeout = float(busy_timeout)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._feed_changed = threading.Condition()
        # Threads in wait_for_feed: a commit skips the notification when there are none.
        self._feed_waiters = 0
        # The jobs last saved or read, decoded: a read that finds the stored job
        # at the ETag and version of one of them hands that one out, unread.
        self._recent = RecentJobs(lock=threading.Lock())
        # Saves waiting to commit together (see _commit).
        self._saves = _Queue()
        # The queue of this process, where the finalizer below finds it.
        self._queues = [self._saves]
        # A repository dropped without close() still closes its connections.
        weakref.finalize(self, _close_all, self._idle, self._lock, self._queues)
        _create_private(self._path)
        with self._translated(), self._connection() as conn:
            self._prepare(conn)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def durability(self) -> Durability:
        """The durability setting of this repository's connections."""
        return self._durability

    @property
    def busy_timeout(self) -> float:
        """How many seconds a write waits for the write lock."""
        return self._busy_timeout

    def __repr__(self) -> str:
        return f"SQLiteRepository({self._path!r}, durability={self._durability.value!r})"

    def __reduce__(self) -> tuple[Callable[..., SQLiteRepository], tuple[str, str, float]]:
        return (_reopen, (self._path, self._durability.value, self._busy_timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections this repository holds idle.

        The repository stays usable: a later call opens a new connection.
        """
        _close_all(self._idle, self._lock, self._queues)

    # -- connections --------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,  # transactions are begun and ended explicitly
            check_same_thread=False,  # a pooled connection serves one thread at a time
        )
        try:
            conn.execute(f"PRAGMA synchronous = {self._durability.value.upper()}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> _Borrowed:
        """A pooled connection for the length of a ``with`` block."""
        return _Borrowed(self)

    def _write(self) -> _WriteTransaction:
        """A write transaction that holds the write lock from its start."""
        return _WriteTransaction(self)

    def _translated(self) -> _Translated:
        """Turn the driver's errors into jobledger's at the boundary."""
        return _Translated(self)

    def _borrow(self) -> sqlite3.Connection:
        """An idle connection of the pool, or a new one."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not touch its parent's connections, not even
                # to close them: leave them be and start afresh.
                _ABANDONED.extend(self._idle)
                self._idle.clear()
                self._pid = os.getpid()
            conn = self._idle.pop() if self._idle else None
        return self._open() if conn is None else conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        """Return a borrowed connection to the pool (rolling back what it left open)."""
        if conn.in_transaction:
            conn.rollback()
        with self._lock:
            keep = self._pid == os.getpid() and len(self._idle) < _MAX_IDLE_CONNECTIONS
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()

    def _raise_translated(self, err: sqlite3.Error) -> NoReturn:
        code = getattr(err, "sqlite_errorcode", 0) & 0xFF
        if code in {_SQLITE_BUSY, _SQLITE_LOCKED}:
            message = (
                f"the database stayed locked by another writer for more than "
                f"{self._busy_timeout:g} s ({err})"
            )
            raise StorageTimeoutError(self._path, message) from err
        if code == _SQLITE_NOTADB:
            raise ForeignDatabaseError(
                self._path, f"not a jobledger database: not an SQLite database ({err})"
            ) from err
        raise StorageError(self._path, f"SQLite failed: {err}") from err

    def _decoded(self, read: Callable[[Any], _V], row: Any) -> _V:  # noqa: ANN401  (a driver's row)
        return decode_row(read, row, self._path)

    # -- schema ---------------------------------------------------------------------------

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the file is ours (changing nothing if not), then create the schema if new."""
        # One read transaction, so that the header and the table count come from
        # the same snapshot even while another process is creating the schema.
        conn.execute("BEGIN")
        try:
            version = self._inspect(conn)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        if version == SCHEMA_VERSION:
            self._add_start_index(conn)
            return
        if version == 0:
            # A new, empty file: switch it to WAL (outside any transaction, as SQLite requires).
            self._set_wal(conn)
        # Create or upgrade the schema, unless a racing process just did.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._inspect(conn)
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                version = 1
                logger.info("created jobledger schema in %s", self._path)
            if version < SCHEMA_VERSION:
                self._upgrade(conn, version)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        self._add_start_index(conn)

    def _upgrade(self, conn: sqlite3.Connection, version: int) -> None:
        """Bring the schema from ``version`` to :data:`SCHEMA_VERSION` in the open transaction.

        Raises:
            SchemaUpgradeError: the file is open read-only, so the upgrade cannot be written.
        """
        try:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[target]:
                    conn.execute(statement)
        except sqlite3.OperationalError as err:
            if getattr(err, "sqlite_errorcode", 0) & 0xFF != _SQLITE_READONLY:
                raise
            raise SchemaUpgradeError(self._path, version, SCHEMA_VERSION) from err
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        logger.info("upgraded jobledger schema %d to %d in %s", version, SCHEMA_VERSION, self._path)

    def _add_start_index(self, conn: sqlite3.Connection) -> None:
        """Give a file made before them the start-record index and the parked table (once)."""
        present = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master "
                "WHERE name IN ('feed_starts', 'parked', 'consumers', 'holds')"
            )
        }
        for name, statement in (
            ("feed_starts", _START_INDEX),
            ("parked", _PARKED_TABLE),
            ("consumers", _CONSUMERS_TABLE),
            ("holds", _HOLDS_TABLE),
        ):
            if name in present:
                continue
            try:
                conn.execute(statement)
            except sqlite3.OperationalError:
                # A read-only file: start records are then read by a scan; parking fails.
                logger.debug("cannot add %s to %s", name, self._path)

    def _inspect(self, conn: sqlite3.Connection) -> int:
        """The file's schema version; 0 for an empty file; raises for anything else."""
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if application_id == APPLICATION_ID and version > 0:
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(self._path, version, SCHEMA_VERSION)
            return version
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if application_id != 0 or version != 0 or tables:
            owner = (
                "an SQLite database of another application"
                if application_id != APPLICATION_ID
                else f"a jobledger database of unknown schema version {version}"
            )
            msg = f"not a jobledger database: it is {owner}; nothing was changed"
            raise ForeignDatabaseError(self._path, msg)
        return 0

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as err:
                code = getattr(err, "sqlite_errorcode", 0) & 0xFF
                if code not in {_SQLITE_BUSY, _SQLITE_LOCKED} or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if mode.lower() != "wal":
                raise StorageError(self._path, f"cannot use WAL mode (journal mode {mode!r})")
            return

    # -- the Repository protocol ----------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job as last saved; see :meth:`jobledger.Repository.get`."""
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        recent = self._recent.get(job_id)
        with self._translated(), self._connection() as conn:
            if recent is not None:
                stored = conn.execute(_SELECT_JOB_VERSION, (job_id,)).fetchone()
                if stored is not None and (recent.etag, recent.version) == stored:
                    return recent
            row = conn.execute(_SELECT_JOB_BY_ID, (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        job: Job = self._decoded(job_from_row, row)
        self._recent.keep(job)
        return job

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """The job's updates after ``after``; see :meth:`jobledger.Repository.updates`."""
        after, _ = window(after, 0)
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(_SELECT_UPDATES, (job_id, after)).fetchall()
            exists = bool(rows) or (
                conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is not None
            )
        if not exists:
            raise JobNotFoundError(job_id)
        return tuple(self._decoded(update_from_row, row) for row in rows)

    def started(self, job_id: str) -> JobStarted:
        """The job's start event; see :meth:`jobledger.StartRecords.started`."""
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._translated(), self._connection() as conn:
            row = conn.execute(_SELECT_START, (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        event = self._decoded(event_from_row, row)
        assert isinstance(event, JobStarted)  # noqa: S101  (the row's kind is 'started')
        return event

    def hold(self, job_id: str, reason: str) -> None:
        """Put a job on hold; see :meth:`jobledger.Retention.hold`."""
        reason = check_reason(reason)
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._translated(), self._write() as conn:
            if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                raise JobNotFoundError(job_id)
            conn.execute(
                "INSERT INTO holds (job_id, reason) VALUES (?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET reason = excluded.reason",
                (job_id, reason),
            )

    def release(self, job_id: str) -> None:
        """Lift a hold; see :meth:`jobledger.Retention.release`."""
        if not is_storable_key(job_id):
            return
        with self._translated(), self._write() as conn:
            conn.execute("DELETE FROM holds WHERE job_id = ?", (job_id,))

    def hold_reason(self, job_id: str) -> str | None:
        """A job's hold; see :meth:`jobledger.Retention.hold_reason`."""
        if not is_storable_key(job_id):
            return None
        with self._translated(), self._connection() as conn:
            row = conn.execute("SELECT reason FROM holds WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def purge(self, rule: PurgeRule, *, dry_run: bool = False) -> int:
        """Delete ended jobs; see :meth:`jobledger.Retention.purge`."""
        cut = to_micros(rule.finished_before)
        clause, params = _purge_filters(rule)
        with self._translated(), self._connection() as conn:
            found = [
                row[0]
                for row in conn.execute(_PURGE_CANDIDATES + clause, (cut, *params)).fetchall()
            ]
        if dry_run:
            return len(found)
        purged = 0
        for job_id in found:
            with self._translated(), self._write() as conn:
                if conn.execute(_DELETE_PURGED_JOB, (job_id, cut)).rowcount != 1:
                    continue  # changed or held meanwhile
                conn.execute("DELETE FROM updates WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM requests WHERE json_extract(job, '$.id') = ?", (job_id,))
            self._recent.forget(job_id)
            purged += 1
        return purged

    def claim_consumer(self, name: str, owner: str, *, now: datetime, until: datetime) -> str:
        """Claim a consumer lease; see :meth:`jobledger.ConsumerLeases.claim_consumer`."""
        name = check_subscriber_name(name)
        with self._translated(), self._write() as conn:
            conn.execute(_CLAIM_CONSUMER, (name, owner, _micros(until), _micros(now)))
            holder: str = conn.execute(
                "SELECT owner FROM consumers WHERE name = ?", (name,)
            ).fetchone()[0]
        return holder

    def release_consumer(self, name: str, owner: str) -> None:
        """Give up a consumer lease; see :meth:`jobledger.ConsumerLeases.release_consumer`."""
        name = check_subscriber_name(name)
        with self._translated(), self._write() as conn:
            conn.execute("DELETE FROM consumers WHERE name = ? AND owner = ?", (name, owner))

    def park(self, parked: ParkedEvent) -> None:
        """Keep a parked event; see :meth:`jobledger.ParkedEvents.park`."""
        name = check_subscriber_name(parked.name)
        position = check_position(parked.position)
        row = (name, position, parked.error, parked.attempts, int(parked.retry))
        with self._translated(), self._write() as conn:
            conn.execute(_UPSERT_PARKED, row)

    def parked_events(self, name: str) -> Sequence[ParkedEvent]:
        """The events parked under ``name``; see :meth:`jobledger.ParkedEvents.parked_events`."""
        name = check_subscriber_name(name)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(_SELECT_PARKED, (name,)).fetchall()
        read = functools.partial(parked_from_row, name=name)
        return tuple(self._decoded(read, row) for row in rows)

    def unpark(self, name: str, position: int) -> None:
        """Forget a parked event; see :meth:`jobledger.ParkedEvents.unpark`."""
        name = check_subscriber_name(name)
        position = check_position(position)
        with self._translated(), self._write() as conn:
            conn.execute("DELETE FROM parked WHERE name = ? AND position = ?", (name, position))

    def find(self, query: JobQuery) -> JobPage:
        """A page of matching jobs, newest first; see :meth:`jobledger.Repository.find`."""
        clause, params = find_clause(query, placeholder="?")
        with self._translated(), self._connection() as conn:
            rows = conn.execute(_statement(_SELECT_JOB, " ", clause), params).fetchall()
        jobs = [self._decoded(job_from_row, row) for row in rows[: query.limit]]
        return JobPage.of(jobs, more=len(rows) > query.limit)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """The record of ``request_id``; see :meth:`jobledger.Repository.find_request`."""
        if not is_storable_key(request_id):
            return None
        with self._translated(), self._connection() as conn:
            row = conn.execute(_SELECT_REQUEST, (request_id,)).fetchone()
        if row is None:
            return None
        record: RequestRecord = self._decoded(request_from_row, row)
        return record

    def save(self, change: Change) -> int:
        """Save ``change`` in one transaction; see :meth:`jobledger.Repository.save`.

        Saves made at the same moment by other threads through this repository
        object may share the transaction (a group commit, see the module
        docstring); each keeps its own outcome, and the save returns only once
        the transaction is committed.

        Raises:
            JobAlreadyExistsError: a start for a job id that exists.
            JobNotFoundError: a change for a job that does not exist.
            ConcurrencyError: the stored ETag is not ``change.expected_etag``.
            RequestIdConflictError: the change's request id is already recorded.
            StorageTimeoutError: other writers held the lock beyond the busy timeout.
            StorageError: SQLite failed otherwise; nothing was written.
        """
        ticket = _Ticket((change,))
        self._commit(ticket)
        self._recent.keep(change.job)
        return ticket.positions[0]

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Save ``changes`` in one transaction; see :meth:`jobledger.AtomicBatches.save_all`.

        The batch costs one commit (one flush of the write-ahead log at
        :attr:`Durability.FULL`), however many changes it holds; it may share
        that commit with other threads' saves, and stays all or nothing.

        Raises:
            JobAlreadyExistsError: a start for a job id that exists.
            JobNotFoundError: a change for a job that does not exist.
            ConcurrencyError: a change's ETag is not the one its job has at that point.
            RequestIdConflictError: a change's request id is already recorded.
            StorageTimeoutError: other writers held the lock beyond the busy timeout.
            StorageError: SQLite failed otherwise; nothing was written.
        """
        changes = tuple(changes)
        if not changes:
            return ()
        ticket = _Ticket(changes)
        self._commit(ticket)
        for change in changes:
            self._recent.keep(change.job)
        return ticket.positions

    # -- group commit ---------------------------------------------------------------------

    def _queue(self) -> _Queue:
        """The queue of saves waiting to commit, made anew in a forked child."""
        queue = self._saves
        if queue.forks != forks():
            # The parent's queue may hold its threads' saves, a held lock and
            # the parent's connection (never to be touched here): start afresh.
            if queue.conn is not None:
                _ABANDONED.append(queue.conn)
            queue = self._saves = self._queues[0] = _Queue()
        return queue

    def _commit(self, ticket: _Ticket) -> None:
        """Queue ``ticket`` and return once it is committed (or raise why it was not).

        The thread of the oldest waiting ticket commits, in one transaction,
        every ticket queued by the time it holds the write lock and those
        queued while it writes; the others sleep until theirs is settled or is
        the oldest. A thread alone commits at
        once: nobody waits for company.
        """
        queue = self._queue()
        with queue.mutex:
            ticket.arrived = time.monotonic()
            queue.waiting.append(ticket)
            wake = None
            if len(queue.waiting) > 1:
                wake = ticket.wake = threading.Lock()
                wake.acquire()
        if wake is not None:
            # Released once: when the ticket is settled, or when it is the oldest.
            try:
                wake.acquire()
            except BaseException:
                queue.withdraw(ticket)
                raise
        while not ticket.done:
            with self._translated():
                self._lead(queue, ticket)
        if ticket.error is not None:
            raise ticket.error

    def _lead(self, queue: _Queue, own: _Ticket) -> None:
        """Commit the queued tickets in one transaction; settle each and wake its thread."""
        taken: list[_Ticket] = []
        settled: list[_Ticket] = []
        committed = False
        try:
            committed = self._write_group(queue, taken, settled)
        except BaseException as err:
            # Not a refusal but a failure of the commit itself (or an interrupt,
            # such as KeyboardInterrupt): no waiting thread may wait forever.
            failure = StorageError(
                self._path,
                "the thread committing this save with others failed before it could "
                f"report the outcome, so the change may or may not be committed ({err!r})",
            )
            settled[:] = taken or [own]
            for ticket in settled:
                if ticket.error is None and not ticket.positions:
                    ticket.error = failure
            # The connection may be left mid-transaction: the next leader opens another.
            conn, queue.conn = queue.conn, None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            raise
        finally:
            queue.settle(own, settled, taken)
        if committed and self._feed_waiters:
            with self._feed_changed:
                self._feed_changed.notify_all()

    def _write_group(self, queue: _Queue, taken: list[_Ticket], settled: list[_Ticket]) -> bool:
        """Write the queued tickets in one transaction; return whether it committed.

        ``taken`` gets the tickets the transaction holds, ``settled`` those
        whose outcome is known (a ticket left out stays queued for the next
        transaction). The connection is the queue's own: only the leader uses it.
        """
        try:
            conn = queue.conn
            if conn is None:
                conn = queue.conn = self._open()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            self._give_up(queue, settled, err)
            return False
        try:
            written, lost = self._write_taken(conn, queue, taken)
            if lost is not None:
                settled.append(lost)
                return False
            if not written:
                # Every ticket was refused (a ticket alone has no savepoint:
                # what it wrote before its refusal is rolled back here).
                settled.extend(taken)
                return False
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                error = self._translation(err)
                for ticket in written:
                    ticket.error = error
                settled.extend(taken)
                return False
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        for ticket, positions in written.items():
            ticket.positions = positions
        settled.extend(taken)
        if len(taken) > 1:
            refused = len(taken) - len(written)
            logger.debug(
                "group commit of %d saves (%d refused) in %s",
                len(taken),
                refused,
                self._path,
                extra={"saves": len(taken), "refused": refused},
            )
        return True

    def _give_up(self, queue: _Queue, settled: list[_Ticket], err: sqlite3.Error) -> None:
        """Settle with ``err`` the tickets that waited out the busy timeout (the leader's at least).

        The others wait on: the next leader tries again for them.
        """
        error = self._translation(err)
        with queue.mutex:
            cut = time.monotonic() - self._busy_timeout
            settled.extend(ticket for ticket in queue.waiting if ticket.arrived <= cut)
            if not settled:
                settled.append(queue.waiting[0])
            for ticket in settled:
                ticket.taken = True
        for ticket in settled:
            ticket.error = error

    def _write_taken(
        self, conn: sqlite3.Connection, queue: _Queue, taken: list[_Ticket]
    ) -> tuple[dict[_Ticket, tuple[int, ...]], _Ticket | None]:
        """Take the queued tickets into the open transaction and write them, until none is left.

        Tickets queued while the leader writes join the same transaction:
        they add no wait (the leader commits as soon as the queue is empty),
        and share the flush. Each thread has one save at a time, so the queue
        runs dry.
        """
        written: dict[_Ticket, tuple[int, ...]] = {}
        alone = True
        while fresh := queue.take(len(taken)):
            # A ticket alone in its transaction needs no savepoint: on refusal
            # the whole transaction is rolled back. Once one is written, the
            # ones after it are never alone.
            alone = alone and not taken and len(fresh) == 1
            taken.extend(fresh)
            more, lost = self._write_tickets(conn, fresh, alone=alone)
            if lost is not None:
                return {}, lost
            if alone and not more:
                break  # refused alone: rolled back whole, nothing taken with it
            written.update(more)
            alone = False
        return written, None

    def _write_tickets(
        self, conn: sqlite3.Connection, taken: list[_Ticket], *, alone: bool
    ) -> tuple[dict[_Ticket, tuple[int, ...]], _Ticket | None]:
        """Write each ticket of ``taken`` in the open transaction; a refused one is undone alone.

        A ticket of one change without a request record is refused, if at all,
        by its first statement (the compare-and-set, or the insert of a new
        job), before it has written anything: nothing to undo. A batch, or a
        change with a request record, may be refused after writing, so in a
        transaction of several tickets it is written inside a savepoint.
        Alone, a ticket's transaction is its own, rolled back whole.

        Returns:
            The tickets written, with their feed positions; and the ticket
            whose failure left writes that cannot be undone alone (or made
            SQLite roll the whole transaction back), if one did: then nothing
            of the others may be committed, and they stay queued for the next
            transaction, which writes them again.
        """
        written: dict[_Ticket, tuple[int, ...]] = {}
        for ticket in taken:
            changes = ticket.changes
            single = len(changes) == 1
            savepoint = not alone and (not single or changes[0].request is not None)
            if savepoint:
                conn.execute("SAVEPOINT save")
            before = conn.total_changes
            try:
                written[ticket] = (
                    (write_change(conn, changes[0]),)
                    if single
                    else tuple(write_change(conn, change) for change in changes)
                )
            except Exception as err:  # noqa: BLE001  (the ticket's own error, raised in its thread)
                ticket.error = self._translation(err) if isinstance(err, sqlite3.Error) else err
                if alone:
                    break
                if not conn.in_transaction:
                    return {}, ticket
                if savepoint:
                    conn.execute("ROLLBACK TO save")
                elif conn.total_changes != before:
                    return {}, ticket
            if savepoint:
                conn.execute("RELEASE save")
        return written, None

    def _translation(self, err: sqlite3.Error) -> JobledgerError:
        """The jobledger error that ``err`` is translated into (caused by it)."""
        try:
            self._raise_translated(err)
        except JobledgerError as translated:
            return translated

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """Feed entries after ``after``; see :meth:`jobledger.Repository.read_feed`."""
        after, limit = window(after, limit)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(_SELECT_FEED, (after, limit)).fetchall()
        return tuple(FeedEntry(row[0], self._decoded(event_from_row, row[1:])) for row in rows)

    def feed_head(self) -> int:
        """The last feed position; see :meth:`jobledger.Repository.feed_head`."""
        with self._translated(), self._connection() as conn:
            head: int = conn.execute("SELECT COALESCE(MAX(position), 0) FROM feed").fetchone()[0]
        return head

    def load_checkpoint(self, name: str) -> int:
        """The checkpoint of ``name``; see :meth:`jobledger.Repository.load_checkpoint`."""
        name = check_subscriber_name(name)
        with self._translated(), self._connection() as conn:
            row = conn.execute(
                "SELECT position FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def save_checkpoint(self, name: str, position: int) -> None:
        """Record a checkpoint durably; see :meth:`jobledger.Repository.save_checkpoint`."""
        name = check_subscriber_name(name)
        position = check_position(position)
        with self._translated(), self._write() as conn:
            conn.execute(_UPSERT_CHECKPOINT, (name, position))

    def wait_for_feed(self, after: int, timeout: float) -> bool:
        """Wait until the feed has an event after ``after``, for at most ``timeout`` seconds.

        A save through this repository object wakes the waiter at once; a
        commit by another process or another repository object is noticed
        within a few hundredths of a second.

        Returns:
            Whether the feed's head is now beyond ``after``.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._feed_changed:
            self._feed_waiters += 1
        try:
            while True:
                if self.feed_head() > after:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                with self._feed_changed:
                    self._feed_changed.wait(min(remaining, _FEED_POLL_SECONDS))
        finally:
            with self._feed_changed:
                self._feed_waiters -= 1


class _Ticket:
    """One save (or batch) waiting in the group commit queue, and its outcome once settled."""

    __slots__ = ("abandoned", "arrived", "changes", "done", "error", "positions", "taken", "wake")

    def __init__(self, changes: tuple[Change, ...]) -> None:
        self.changes = changes
        self.arrived = 0.0
        self.done = False
        # Whether a leader has taken it: from then on, only that leader settles it.
        self.taken = False
        # Whether its thread was interrupted while it waited, and left.
        self.abandoned = False
        self.error: BaseException | None = None
        self.positions: tuple[int, ...] = ()
        # Held while its thread sleeps behind an older ticket; released to wake it.
        self.wake: threading.Lock | None = None


class _Queue:
    """The tickets waiting to commit, oldest first, and the connection their commits use.

    The oldest ticket's thread commits (the leader); the others sleep until
    theirs is settled or is the oldest. Only the leader uses the connection.
    """

    __slots__ = ("conn", "forks", "mutex", "waiting")

    def __init__(self) -> None:
        self.forks = forks()
        self.mutex = threading.Lock()
        self.waiting: list[_Ticket] = []
        self.conn: sqlite3.Connection | None = None

    def take(self, after: int) -> list[_Ticket]:
        """The waiting tickets from index ``after`` on, for a leader's transaction.

        From now on that leader settles them. The tickets before ``after``
        are the ones it has taken already (they stay first: only a leader
        removes tickets).
        """
        with self.mutex:
            fresh = self.waiting[after:]
            for ticket in fresh:
                ticket.taken = True
            return fresh

    def settle(self, leader: _Ticket, settled: list[_Ticket], taken: list[_Ticket]) -> None:
        """Mark ``settled`` done and wake their threads; wake the next leader if there is one.

        Tickets of ``taken`` left unsettled (their transaction was rolled back)
        wait for the next transaction, except those whose thread gave up.
        """
        waiting = self.waiting
        with self.mutex:
            for ticket in settled:
                ticket.done = True
                waiting.remove(ticket)
                if ticket is not leader and ticket.wake is not None:
                    ticket.wake.release()
            for ticket in taken:
                if not ticket.done:
                    # Written again by the next transaction, which decides its outcome anew.
                    ticket.taken = False
                    ticket.error = None
                    if ticket.abandoned:
                        ticket.done = True
                        waiting.remove(ticket)
            self._wake_oldest(leader)

    def withdraw(self, ticket: _Ticket) -> None:
        """Take back the ticket of a thread interrupted while it waited (KeyboardInterrupt).

        A ticket a leader has taken is left to it (its save may still commit,
        as a save interrupted in its own commit may); one not taken leaves the
        queue, and if it was the oldest, the next oldest is woken to lead.
        """
        with self.mutex:
            ticket.abandoned = True
            if ticket.done or ticket.taken:
                return
            oldest = self.waiting[0] is ticket
            self.waiting.remove(ticket)
            ticket.done = True
            if oldest:
                self._wake_oldest(ticket)

    def _wake_oldest(self, leader: _Ticket) -> None:
        """Wake the thread of the oldest waiting ticket to lead, unless it is ``leader``'s own."""
        waiting = self.waiting
        if waiting and waiting[0] is not leader:
            wake = waiting[0].wake
            assert wake is not None  # noqa: S101  (it queued behind another)
            wake.release()

    def close(self) -> None:
        """Close the connection, unless a leader is using it (it is opened again when needed)."""
        with self.mutex:
            conn = None if self.waiting else self.conn
            if conn is not None:
                self.conn = None
        if conn is not None:
            conn.close()


# The repository's context managers are classes rather than @contextmanager
# generators: every call enters two or three of them, and a class costs less.


class _Borrowed:
    """A connection of ``repository``'s pool, borrowed for a ``with`` block."""

    __slots__ = ("_conn", "_repository")

    def __init__(self, repository: SQLiteRepository) -> None:
        self._repository = repository

    def __enter__(self) -> sqlite3.Connection:
        self._conn = self._repository._borrow()  # noqa: SLF001  (the repository's own helper)
        return self._conn

    def __exit__(self, *_exc: object) -> None:
        self._repository._give_back(self._conn)  # noqa: SLF001


class _WriteTransaction(_Borrowed):
    """A borrowed connection in a ``BEGIN IMMEDIATE`` transaction.

    The transaction commits when the block ends normally and rolls back when it raises.
    """

    __slots__ = ()

    def __enter__(self) -> sqlite3.Connection:
        conn = super().__enter__()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            super().__exit__()
            raise
        return conn

    def __exit__(self, kind: object = None, *_exc: object) -> None:
        conn = self._conn
        try:
            if kind is None:
                conn.execute("COMMIT")
        finally:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            finally:
                super().__exit__()


class _Translated:
    """Raises ``repository``'s translation of an :class:`sqlite3.Error` leaving the block."""

    __slots__ = ("_repository",)

    def __init__(self, repository: SQLiteRepository) -> None:
        self._repository = repository

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, error: BaseException | None, _traceback: object) -> None:
        if isinstance(error, sqlite3.Error):
            self._repository._raise_translated(error)  # noqa: SLF001


def _close_all(
    connections: list[sqlite3.Connection], lock: threading.Lock, queues: list[_Queue]
) -> None:
    """Close and forget the idle ``connections`` (the pool's own list, emptied in place).

    The connection of the group commit queue in ``queues`` is closed too, unless
    a commit is using it or the queue belongs to the parent of a forked process.
    """
    with lock:
        idle = connections[:]
        connections.clear()
    for conn in idle:
        conn.close()
    for queue in queues:
        if queue.forks == forks():
            queue.close()


# Connections inherited from a parent process: kept referenced so that they are
# never closed (closing them could disturb the parent's use of the file).
_ABANDONED: list[sqlite3.Connection] = []


def write_change(conn: sqlite3.Connection, change: Change) -> int:
    """Write ``change`` in the write transaction open on ``conn``; return its feed position.

    Raises:
        JobAlreadyExistsError: a start for a job id that exists.
        JobNotFoundError: a change for a job that does not exist.
        ConcurrencyError: the stored ETag is not ``change.expected_etag``.
        RequestIdConflictError: the change's request id is already recorded.
        ValueError: the change's update does not follow the stored version.
    """
    job = change.job
    # The update and its event carry the same patch: its text is made once.
    patch = None if change.update is None else encode_optional(change.update.state_update)
    if change.expected_etag is None:
        try:
            conn.execute(_INSERT_JOB, job_row(job))
        except sqlite3.IntegrityError as err:
            raise JobAlreadyExistsError(job.id) from err
    else:
        update = change.update
        changed = (
            job.display_name,
            job.description,
            encode_json(job.state),
            job.etag,
            job.version,
            to_micros(job.updated_at),
        )
        key = (job.id, change.expected_etag, -1 if update is None else update.update_id)
        status = (job.status, job.phase.value)
        # An update mostly keeps the status; a completion, failure or cancel never does.
        kept = (
            update is not None
            and update.update_type is UpdateType.UPDATED
            and conn.execute(_UPDATE_JOB_KEEPING_STATUS, (*changed, *key, *status)).rowcount == 1
        )
        if not kept and conn.execute(_UPDATE_JOB, (*changed, *status, *key)).rowcount != 1:
            _refuse(conn, change)
        assert update is not None  # noqa: S101  (version -1 never matches)
        conn.execute(_INSERT_UPDATE, update_row(update, patch))
    if change.request is not None:
        try:
            conn.execute(_INSERT_REQUEST, request_row(change.request))
        except sqlite3.IntegrityError as err:
            raise RequestIdConflictError(change.request.request_id) from err
    position = conn.execute(_INSERT_EVENT, event_row(change.event, patch)).lastrowid
    assert position is not None  # noqa: S101  (an INSERT always sets it)
    return position


def _refuse(conn: sqlite3.Connection, change: Change) -> NoReturn:
    """Say why the compare-and-set of ``change`` matched no row."""
    row = conn.execute("SELECT etag, version FROM jobs WHERE id = ?", (change.job.id,)).fetchone()
    refuse_save(change, None if row is None else (row[0], row[1]))
