"""The floors: the least work per command that still keeps a job ledger honestly.

Each floor keeps jobs with a version number as their concurrency token and, for
every change, checks the version, appends the change to the job's log and
updates the job's state, atomically. Nothing more: no validation of the data,
no immutable values, no event feed, no ids, no request records. jobledger's time
and memory are compared with these.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DictLedger",
    "PsycopgLedger",
    "PsycopgOneLedger",
    "SQLiteLedger",
    "VersionConflictError",
]

UPDATED = 0
COMPLETED = 1


class VersionConflictError(Exception):
    """The job is not at the version the command expected (or does not exist)."""


class _Job:
    """A job of the dict floor: its version, status, state and log."""

    __slots__ = ("log", "state", "status", "version")

    def __init__(self, state: dict[str, Any]) -> None:
        """A new job at version 1 with ``state``."""
        self.version = 1
        self.status = "started"
        self.state = state
        self.log: list[tuple[int, int, str, dict[str, Any], float]] = []


class DictLedger:
    """The in-memory floor: one dict of jobs, one lock, one tuple per change in the log.

    A change is ``(update_id, update_type, status, patch, time)``; the state is
    updated in place with the (flat) patch. The caller's dicts are kept as they
    are, uncopied.
    """

    def __init__(self) -> None:
        """An empty ledger."""
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def start(self, job_id: str, state: dict[str, Any]) -> int:
        """Start a job; return its version (1)."""
        with self._lock:
            if job_id in self._jobs:
                raise VersionConflictError(job_id)
            self._jobs[job_id] = _Job(state)
        return 1

    def change(
        self, job_id: str, version: int, update_type: int, status: str, patch: dict[str, Any]
    ) -> int:
        """Apply one change if the job is at ``version``; return its new version."""
        now = time.time()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.version != version:
                raise VersionConflictError(job_id)
            job.log.append((version, update_type, status, patch, now))
            job.state.update(patch)
            job.status = status
            job.version = version + 1
        return version + 1

    def get(self, job_id: str) -> tuple[int, str, dict[str, Any]]:
        """The job's version, status and state."""
        job = self._jobs[job_id]
        return job.version, job.status, job.state


_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL,
        version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS updates (
        job_id TEXT NOT NULL, update_id INTEGER NOT NULL, update_type INTEGER NOT NULL,
        status TEXT NOT NULL, state_update TEXT, at REAL NOT NULL,
        PRIMARY KEY (job_id, update_id)) WITHOUT ROWID""",
)


class SQLiteLedger:
    """The SQLite floor: raw :mod:`sqlite3`, one transaction per command.

    A change reads the job's version, inserts the update row and
    compare-and-sets the job row (the state merged by SQLite's own
    ``json_patch``), in one ``BEGIN IMMEDIATE`` transaction, in WAL mode at the
    given ``synchronous`` setting (jobledger's ``Durability``).
    """

    def __init__(self, path: str, synchronous: str) -> None:
        """Open (creating) the database at ``path`` with ``synchronous`` (full, normal)."""
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._conn.execute("PRAGMA busy_timeout = 30000")
        for statement in _SQLITE_SCHEMA:
            self._conn.execute(statement)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def start(self, job_id: str, state: dict[str, Any]) -> int:
        """Start a job; return its version (1)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO jobs (id, status, state, version) VALUES (?, 'started', ?, 1)",
                (job_id, json.dumps(state)),
            )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return 1

    def change(
        self, job_id: str, version: int, update_type: int, status: str, patch: dict[str, Any]
    ) -> int:
        """Apply one change if the job is at ``version``; return its new version."""
        conn = self._conn
        text = json.dumps(patch)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT version FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] != version:
                raise VersionConflictError(job_id)
            conn.execute(
                "INSERT INTO updates (job_id, update_id, update_type, status, state_update, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, version, update_type, status, text, time.time()),
            )
            cursor = conn.execute(
                "UPDATE jobs SET version = ?, status = ?, state = json_patch(state, ?)"
                " WHERE id = ? AND version = ?",
                (version + 1, status, text, job_id, version),
            )
            if cursor.rowcount != 1:
                raise VersionConflictError(job_id)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return version + 1


def postgres_floor_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the PostgreSQL floor's tables in a new ``schema``."""
    from psycopg import sql  # noqa: PLC0415  (psycopg is optional)

    names = {"schema": sql.Identifier(schema)}
    for text in (
        "CREATE SCHEMA {schema}",
        """CREATE TABLE {schema}.jobs (
            id text PRIMARY KEY, status text NOT NULL, state jsonb NOT NULL,
            version integer NOT NULL)""",
        """CREATE TABLE {schema}.updates (
            job_id text NOT NULL REFERENCES {schema}.jobs (id), update_id integer NOT NULL,
            update_type smallint NOT NULL, status text NOT NULL, state_update jsonb,
            at double precision NOT NULL, PRIMARY KEY (job_id, update_id))""",
    ):
        conn.execute(sql.SQL(text).format(**names))


class PsycopgLedger:
    """The PostgreSQL floor: raw psycopg over one connection, one transaction per command.

    A change reads the job's version, inserts the update row and
    compare-and-sets the job row (the state merged with ``jsonb ||``), in one
    ``READ COMMITTED`` transaction.
    """

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        """Keep jobs in ``schema`` (see :func:`postgres_floor_schema`) through ``conn``."""
        from psycopg import sql  # noqa: PLC0415
        from psycopg.types.json import Jsonb  # noqa: PLC0415

        self._conn = conn
        self._jsonb = Jsonb
        names = {"schema": sql.Identifier(schema)}

        def statement(text: str) -> str:
            return sql.SQL(text).format(**names).as_string(conn)

        self._select = statement("SELECT version FROM {schema}.jobs WHERE id = %s")
        self._insert_job = statement(
            "INSERT INTO {schema}.jobs (id, status, state, version) VALUES (%s, 'started', %s, 1)"
        )
        self._insert_update = statement(
            "INSERT INTO {schema}.updates"
            " (job_id, update_id, update_type, status, state_update, at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        )
        self._update_job = statement(
            "UPDATE {schema}.jobs SET version = %s, status = %s, state = state || %s"
            " WHERE id = %s AND version = %s"
        )

    def start(self, job_id: str, state: dict[str, Any]) -> int:
        """Start a job; return its version (1)."""
        with self._conn.transaction():
            self._conn.execute(self._insert_job, (job_id, self._jsonb(state)))
        return 1

    def change(
        self, job_id: str, version: int, update_type: int, status: str, patch: dict[str, Any]
    ) -> int:
        """Apply one change if the job is at ``version``; return its new version."""
        conn = self._conn
        document = self._jsonb(patch)
        with conn.transaction():
            row = conn.execute(self._select, (job_id,)).fetchone()
            if row is None or row[0] != version:
                raise VersionConflictError(job_id)
            conn.execute(
                self._insert_update,
                (job_id, version, update_type, status, document, time.time()),
            )
            cursor = conn.execute(
                self._update_job, (version + 1, status, document, job_id, version)
            )
            if cursor.rowcount != 1:
                raise VersionConflictError(job_id)
        return version + 1


class PsycopgOneLedger:
    """The one-statement PostgreSQL floor: one round trip and one statement per command.

    What jobledger's PostgreSQL repository does, less its feed, ids, ETags and
    request records: on a connection in autocommit mode, each change is one
    statement (a transaction of its own, no ``BEGIN``, no ``COMMIT``) whose
    first part compare-and-sets the job on its version and expected status,
    merging the patch with ``jsonb ||``, and whose second part inserts the
    update row from the row the first returned. A stale version writes nothing
    and returns no row.
    """

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        """Keep jobs in ``schema`` (see :func:`postgres_floor_schema`) through ``conn``.

        ``conn`` must be in autocommit mode, so that each statement commits on its own.
        """
        from psycopg import sql  # noqa: PLC0415
        from psycopg.types.json import Jsonb  # noqa: PLC0415

        self._conn = conn
        self._jsonb = Jsonb
        names = {"schema": sql.Identifier(schema)}

        def statement(text: str) -> str:
            return sql.SQL(text).format(**names).as_string(conn)

        self._insert_job = statement(
            "INSERT INTO {schema}.jobs (id, status, state, version) VALUES (%s, 'started', %s, 1)"
        )
        self._change = statement(
            "WITH changed AS (UPDATE {schema}.jobs SET version = version + 1, status = %s,"
            " state = state || %s WHERE id = %s AND version = %s AND status = 'started'"
            " RETURNING id, version)"
            " INSERT INTO {schema}.updates"
            " (job_id, update_id, update_type, status, state_update, at)"
            " SELECT id, version - 1, %s, %s, %s, %s FROM changed RETURNING update_id"
        )

    def start(self, job_id: str, state: dict[str, Any]) -> int:
        """Start a job; return its version (1)."""
        self._conn.execute(self._insert_job, (job_id, self._jsonb(state)))
        return 1

    def change(
        self, job_id: str, version: int, update_type: int, status: str, patch: dict[str, Any]
    ) -> int:
        """Apply one change if the job is at ``version`` and running; return its new version."""
        document = self._jsonb(patch)
        row = self._conn.execute(
            self._change,
            (status, document, job_id, version, update_type, status, document, time.time()),
        ).fetchone()
        if row is None:
            raise VersionConflictError(job_id)
        return version + 1
