"""The PostgreSQL repository: jobs shared by every process and machine that reaches one server.

psycopg 3 with a :class:`psycopg_pool.ConnectionPool`. Each call borrows a
connection for its own length (on its own pool the repository keeps one
between calls, lent to whichever thread finds it free, see
``_KeptConnection``); :meth:`PostgresRepository.save` runs one
``READ COMMITTED`` transaction. Every value is a bound parameter, and every
name (schema, table, channel) is built with :class:`psycopg.sql.Identifier`,
except the notification channel in the save statements: a literal there (a
name jobledger makes of a hash of the schema's, see ``_Names.channel``), one
parameter less per save.

**A save costs the client little.** Its statement is rendered to text once
(``_Statements``) and prepared on the server by psycopg after its fifth
execution on a connection (``prepare_threshold``; never where it is ``None``).
Not at the first: psycopg 3.3 forgets, without deallocating it, a statement
whose first prepared execution fails, so a save refused again and again would
leave a new plan on the server each time (about 100 KB each). A save
alone on an idle connection of the repository's own pool runs on the cursor
that connection keeps (``_Connection``), not on a new one, and goes straight
through the group commit's lane when no other save is in flight
(``_Group.lead_alone``).

**The feed never skips.** Positions taken from a sequence break in two ways:
a rolled-back transaction leaves a hole, and two writers that take positions
7 and 8 may commit 8 first, so a reader that sees 8 and remembers "handled up
to 8" never reads 7. Here a position comes from a single counter row,
``UPDATE ... SET last = last + 1 RETURNING last``, as the *last* part of the
save, right before it commits. The row lock it takes is held until the
transaction ends, so:

* the next writer's counter update waits until this transaction has committed
  (and is visible to every new snapshot) or rolled back; positions therefore
  commit in the order they are taken, and any snapshot that sees position
  ``n`` sees every position before it;
* a rollback also undoes its increment, so the next writer takes the same
  number: no hole.

Only the tail of a save is serialized: the compare-and-set of the job row
and the request record (the parts that may wait for another transaction)
run concurrently across writers; the counter lock is held from the feed
entry's insert to the end of the commit. A change's feed entry is its update
row, which carries the position; the feed table holds the starts' entries
(and the change entries of purged jobs), and the feed is read from both. The
trade-off is throughput: saves commit one after another, so their rate is
bounded by one commit's latency (a WAL flush with ``synchronous_commit=on``),
however many writers there are. So saves that threads of one process make
at once share a transaction (group commit, see ``_Group``): one commit, one
flush, one hold of the counter row for all of them, each save keeping its own
compare-and-set and outcome.

**A save is one statement.** Its parts (the job row, the update row, the
request record, then the position, the feed entry and the notification) are
data-modifying ``WITH`` queries, each reading the rows the one before
returned. On the repository's own pool, whose connections are in autocommit
mode, that statement is a transaction of its own: one round trip, no
``BEGIN`` and no ``COMMIT``, and the lock is held for the end of the statement
and its commit. That needs the server's default isolation level to be
``READ COMMITTED`` (PostgreSQL's own default), which the compare-and-set and
the counter rely on; where it is not, the pool's connections set that level
and each save is sent between ``BEGIN`` and ``COMMIT``. So is a save on an
application's pool whose connections set an isolation level, read-only or
deferrable mode: in pipeline mode, still in one round trip (without pipeline
mode, which needs libpq 14, or on connections not in autocommit mode, one
round trip comes between them).

**Wake-ups.** With ``notify=True`` each save also sends ``pg_notify`` on a
channel derived from the schema name, with the position as payload;
PostgreSQL delivers it when (and only if) the transaction commits.
:meth:`PostgresRepository.wait_for_feed` (the :class:`~jobledger.FeedNotifier`
protocol of durable subscribers) waits for those on a dedicated ``LISTEN``
connection, kept by a background thread; subscribers also poll, so a lost
notification only delays them.

**JSON** is stored in ``jsonb`` columns. ``jsonb`` keeps numbers as
``numeric``, which loses the sign of ``-0.0`` and turns a float written with an
exponent (``1e+300``) into an integer; a document whose text holds such a
number also keeps its exact text in a ``*_exact`` column, which reads take in
preference. Key order is not kept (JSON objects are unordered).

**The schema** is created on first use and versioned in a meta table.
Creation and migration run under a transaction-scoped advisory lock keyed on
the schema name, so processes that open a new database at once wait for one
another instead of failing; a schema written by a newer jobledger is refused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, Self, TypeVar

import attrs
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from jobledger._adapters.forks import after_fork_lock, forks
from jobledger._adapters.rows import (
    EVENT_COLUMNS,
    EVENT_KIND_NAMES,
    JOB_COLUMNS,
    REQUEST_COLUMNS,
    UPDATE_COLUMNS,
    decode_row,
    encode_json,
    event_from_row,
    find_clause,
    job_from_row,
    job_row,
    parked_from_row,
    refuse_save,
    request_from_row,
    request_row,
    to_micros,
    update_from_row,
)
from jobledger._core.decide import UPDATE_TYPES, batch_refusal
from jobledger._core.errors import (
    ForeignDatabaseError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    RequestIdConflictError,
    SchemaUpgradeError,
    SchemaVersionError,
    StorageConfigurationError,
    StorageError,
    StorageTimeoutError,
    StorageUnavailableError,
)
from jobledger._core.events import JobStarted
from jobledger._core.jsondoc import is_storable_key
from jobledger._core.positions import check_position, check_subscriber_name, window
from jobledger._core.query import JobPage
from jobledger._core.retention import PurgeRule, check_reason
from jobledger._ports import FeedEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime

    from jobledger._core.decide import Change, ChangeRecord, RequestRecord
    from jobledger._core.events import JobEvent
    from jobledger._core.job import Job, JobUpdate
    from jobledger._core.parked import ParkedEvent
    from jobledger._core.query import JobQuery

__all__ = ["SAVE_ATTEMPTS", "SCHEMA_VERSION", "PostgresRepository", "translate_error"]

logger = logging.getLogger(__name__)

_V = TypeVar("_V")

#: The schema version this jobledger writes, kept in the schema's meta table.
SCHEMA_VERSION = 4

#: The most saves of concurrent threads that one group commit carries (see ``_Group``).
GROUP_LIMIT = 64

#: How long a save queued behind a group in flight waits before it is sent alongside.
GROUP_PATIENCE_SECONDS = 0.05

#: How many times a save is tried when PostgreSQL aborts it for a serialization
#: failure or a deadlock (it was rolled back, so trying again is safe).
SAVE_ATTEMPTS = 5

# PostgreSQL truncates longer identifiers; a truncated schema name would not be the one asked for.
_MAX_IDENTIFIER_BYTES = 63

# How long the repository keeps one connection before it hands it back to the pool
# and borrows again (see _KeptConnection).
_KEPT_SECONDS = 60.0

# How often the listener thread looks at its stop flag while no notification comes.
_LISTEN_TICK_SECONDS = 0.2

# The longest the listener waits before it reconnects after losing its connection.
_LISTEN_MAX_BACKOFF_SECONDS = 5.0

# SQLSTATEs of a connection that is gone (class 08) or of a server shutting down.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03"})

# Each table's name in statements, and its name in the schema after the prefix ``jobledger_``.
_TABLES = {
    "meta": "meta",
    "jobs": "jobs",
    "updates": "updates",
    "feed": "feed_entries",
    "feed_counter": "feed_counter",
    "requests": "requests",
    "checkpoints": "checkpoints",
    "parked": "parked",
    "consumers": "consumers",
    "holds": "holds",
}

# The feed table's name up to schema version 3. Step 4 renames it (see _rename_feed).
_VERSION_3_FEED = "jobledger_feed"
_FEED_RENAMED_AT = 4

# Numbers as Python's json module writes them that jsonb would not give back as written.
_INEXACT_IN_JSONB = re.compile(r"[0-9]e[+-]|-0\.0(?![0-9])")

# Whether this libpq can send statements in pipeline mode (libpq 14 and later).
_PIPELINES = psycopg.Pipeline.is_supported()

_IDLE = psycopg.pq.TransactionStatus.IDLE

# The tables whose constraints refuse a change of a batch: a taken job id or request
# id, or the feed counter's check (see _save_text).
_REFUSING_TABLES = frozenset({"jobledger_jobs", "jobledger_requests", "jobledger_feed_counter"})

# Columns that hold JSON documents: each is ``jsonb``, with a ``<name>_exact`` text sibling.
_JSON_COLUMNS = frozenset({"input", "state", "state_update", "job"})


def _exact_text(text: str | None) -> str | None:
    """``text`` itself when ``jsonb`` would not give it back exactly, else ``None``.

    ``jsonb`` gives back integers and plain decimals (``2.5``, ``3.0``) as
    written, but not ``-0.0`` (``numeric`` has no negative zero) nor a float
    Python writes with an exponent (``1e+16`` comes back as an integer). A
    string that merely looks like such a number only costs a redundant copy.
    """
    if text is None or ("e+" not in text and "e-" not in text and "-0.0" not in text):
        return None  # what the pattern needs is not there (a cheaper look than the pattern's)
    if _INEXACT_IN_JSONB.search(text) is None:
        return None
    return text


def _columns(names: Sequence[str]) -> sql.Composed:
    """The column list of an insert: ``names``, then each JSON column's exact sibling."""
    exact = [f"{name}_exact" for name in names if name in _JSON_COLUMNS]
    return sql.SQL(", ").join(sql.Identifier(name) for name in (*names, *exact))


def _values(names: Sequence[str], row: Sequence[Any]) -> tuple[Any, ...]:
    """The values for :func:`_columns`: ``row``, then each JSON value's exact text or NULL."""
    return (*row, *[_exact_text(row[index]) for index in _json_indexes(tuple(names))])


@functools.cache
def _json_indexes(names: tuple[str, ...]) -> tuple[int, ...]:
    """Where the JSON columns are in ``names`` (a save looks them up for every row)."""
    return tuple(index for index, name in enumerate(names) if name in _JSON_COLUMNS)


def _placeholders(names: Sequence[str]) -> sql.Composed:
    count = len(names) + sum(1 for name in names if name in _JSON_COLUMNS)
    return sql.SQL(", ").join([sql.Placeholder()] * count)


def _selected(names: Sequence[str]) -> sql.Composed:
    """The select list that reads ``names`` back, each JSON column as its exact text."""
    return sql.SQL(", ").join(
        sql.SQL("COALESCE({exact}, {column}::text)").format(
            exact=sql.Identifier(f"{name}_exact"), column=sql.Identifier(name)
        )
        if name in _JSON_COLUMNS
        else sql.Identifier(name)
        for name in names
    )


# Start records are read by job id (as-of-version reads): a partial index keeps that
# a look-up, not a scan of the feed. Schemas made before it get it when next opened.
_START_INDEX = (
    "CREATE INDEX IF NOT EXISTS jobledger_feed_starts ON {feed} (job_id) WHERE kind = 'started'"
)
# Each durable subscriber name's consumer and its lease expiry (microseconds since the epoch).
_CONSUMERS_TABLE = """CREATE TABLE IF NOT EXISTS {consumers} (
    name text NOT NULL PRIMARY KEY,
    owner text NOT NULL,
    expires bigint NOT NULL
)"""
# Legal holds: jobs a purge must leave alone, and why.
_HOLDS_TABLE = """CREATE TABLE IF NOT EXISTS {holds} (
    job_id text COLLATE "C" NOT NULL PRIMARY KEY,
    reason text NOT NULL
)"""
# Events durable subscribers parked; the event itself stays in the feed, at its position.
_PARKED_TABLE = """CREATE TABLE IF NOT EXISTS {parked} (
    name text NOT NULL,
    position bigint NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    retry boolean NOT NULL,
    PRIMARY KEY (name, position)
)"""


def _schema_ddl(names: _Names) -> tuple[sql.Composed, ...]:
    """The statements that create schema version 1 in an empty schema."""
    indexes = [
        sql.SQL("CREATE INDEX {name} ON {jobs} ({column}, created_at DESC, id DESC)").format(
            name=sql.Identifier(f"jobledger_jobs_by_{column}"),
            jobs=names.jobs,
            column=sql.Identifier(column),
        )
        for column in ("service", "entity", "type", "status", "phase")
    ]
    statements = [
        # Ids compare in code point order (COLLATE "C"), as Python compares strings,
        # so keyset pages match the in-memory ledger's whatever the database's locale.
        """CREATE TABLE {jobs} (
            id text COLLATE "C" NOT NULL CONSTRAINT jobledger_jobs_pkey PRIMARY KEY,
            service text NOT NULL,
            entity text NOT NULL,
            type text NOT NULL,
            display_name text NOT NULL,
            description text NOT NULL,
            status text NOT NULL,
            phase text NOT NULL,
            input jsonb NOT NULL,
            input_exact text,
            state jsonb NOT NULL,
            state_exact text,
            etag text NOT NULL,
            version integer NOT NULL,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL
        )""",
        "CREATE INDEX jobledger_jobs_by_created ON {jobs} (created_at DESC, id DESC)",
        """CREATE TABLE {updates} (
            job_id text COLLATE "C" NOT NULL REFERENCES {jobs} (id),
            update_id integer NOT NULL,
            update_type smallint NOT NULL,
            status text NOT NULL,
            state_update jsonb,
            state_update_exact text,
            display_name text,
            description text,
            etag text NOT NULL,
            at bigint NOT NULL,
            CONSTRAINT jobledger_updates_pkey PRIMARY KEY (job_id, update_id)
        )""",
        """CREATE TABLE {feed} (
            position bigint NOT NULL CONSTRAINT jobledger_feed_pkey PRIMARY KEY,
            event_id text NOT NULL,
            kind text NOT NULL,
            job_id text NOT NULL,
            service text NOT NULL,
            entity text NOT NULL,
            type text NOT NULL,
            status text NOT NULL,
            etag text NOT NULL,
            version integer NOT NULL,
            at bigint NOT NULL,
            update_id integer,
            display_name text,
            description text,
            input jsonb,
            input_exact text,
            state jsonb,
            state_exact text,
            state_update jsonb,
            state_update_exact text
        )""",
        """CREATE TABLE {feed_counter} (
            singleton boolean NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton),
            last bigint NOT NULL
        )""",
        "INSERT INTO {feed_counter} (singleton, last) VALUES (true, 0)",
        """CREATE TABLE {requests} (
            request_id text NOT NULL CONSTRAINT jobledger_requests_pkey PRIMARY KEY,
            fingerprint text NOT NULL,
            job jsonb NOT NULL,
            job_exact text
        )""",
        """CREATE TABLE {checkpoints} (
            name text NOT NULL PRIMARY KEY,
            position bigint NOT NULL
        )""",
    ]
    tables = names.mapping()
    statements.extend((_START_INDEX, _PARKED_TABLE, _CONSUMERS_TABLE, _HOLDS_TABLE))
    return (*(sql.SQL(text).format(**tables) for text in statements), *indexes)


def _actor_ddl(names: _Names) -> tuple[sql.Composed, ...]:
    """The statements that bring schema version 1 to 2: who acted (older rows name no one)."""
    statements = (
        "ALTER TABLE {jobs} ADD COLUMN started_by text",
        "ALTER TABLE {updates} ADD COLUMN actor text",
        "ALTER TABLE {feed} ADD COLUMN actor text",
    )
    tables = names.mapping()
    return tuple(sql.SQL(text).format(**tables) for text in statements)


def _lighter_saves(names: _Names) -> tuple[sql.Composed, ...]:
    """Schema step 3: less work for the server in every save; rows and positions stay as they are.

    * The update rows' foreign key to their job goes. A save inserts an update
      row only from the job row its compare-and-set just changed, in the same
      statement, and a purge deletes a job's updates before the job, under the
      job's row lock; the key only checked that again, with a trigger and a
      share lock on the job row (one more WAL record) for every change.
    * The jobs table leaves a fifth of each new page free, so that a change,
      which rewrites its job's row without touching an indexed column (except
      the status and phase of an end), finds room for the new row version on
      the same page: a HOT update, with no new index entries in the job
      table's seven indexes.
    """
    statements = (
        "ALTER TABLE {updates} DROP CONSTRAINT IF EXISTS jobledger_updates_job_id_fkey",
        "ALTER TABLE {jobs} SET (fillfactor = 80)",
    )
    tables = names.mapping()
    return tuple(sql.SQL(text).format(**tables) for text in statements)


def _updates_in_the_feed(names: _Names) -> tuple[sql.Composed, ...]:
    """Schema step 4: a change's update row is its feed entry; the feed table keeps the others.

    A change wrote its update row and then a feed row repeating it (some 400
    bytes of WAL, a heap row and an index entry more per change). Now the
    update row carries the change's feed position and event id, and the
    change's event is read from it and from its job's service, entity and
    type (see :data:`_CHANGE_EVENT`). The feed table keeps the start events,
    and the change events of purged jobs: a purge copies a job's update rows
    into it before it deletes them, so the events stay in the feed. The step
    moves the position and event id of every change entry onto its update row
    and deletes the entry; entries whose update row a purge deleted stay.

    An entry is matched to its update row by job id, update id *and* ETag:
    a purge of version 3 deleted a job's update rows but kept its feed rows,
    and a later start may take the same job id again, so the feed table may
    hold change entries of two lives of one job with the same update ids.
    ETags are never reused, so only the current life's entries match; the
    earlier lives' entries stay in the feed table, as a purged job's do.
    """
    statements = (
        "ALTER TABLE {updates} ADD COLUMN position bigint, ADD COLUMN event_id text",
        (
            "UPDATE {updates} AS u SET position = f.position, event_id = f.event_id "
            "FROM {feed} AS f "
            "WHERE f.job_id = u.job_id AND f.update_id = u.update_id AND f.etag = u.etag "
            "AND f.kind <> 'started'"
        ),
        "DELETE FROM {feed} AS f USING {updates} AS u WHERE u.position = f.position",
        "ALTER TABLE {updates} ALTER position SET NOT NULL, ALTER event_id SET NOT NULL",
        "CREATE UNIQUE INDEX jobledger_updates_by_position ON {updates} (position)",
    )
    tables = names.mapping()
    return tuple(sql.SQL(text).format(**tables) for text in statements)


# Each schema version's migration from the one before; version 1 creates everything.
_MIGRATIONS: dict[int, Callable[[_Names], tuple[sql.Composed, ...]]] = {
    1: _schema_ddl,
    2: _actor_ddl,
    3: _lighter_saves,
    4: _updates_in_the_feed,
}


@attrs.frozen
class _Names:
    """The qualified names of one jobledger schema's tables."""

    schema: str

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, f"jobledger_{_TABLES[name]}")

    def mapping(self) -> dict[str, sql.Identifier]:
        return {name: self.table(name) for name in _TABLES}

    @property
    def jobs(self) -> sql.Identifier:
        return self.table("jobs")

    @property
    def channel(self) -> str:
        """The notification channel of this schema's feed (short enough for any schema name)."""
        digest = hashlib.sha256(self.schema.encode("utf-8")).hexdigest()[:24]
        return f"jobledger_feed_{digest}"

    @property
    def lock_key(self) -> int:
        """The advisory lock key that serializes this schema's creation and migration."""
        digest = hashlib.sha256(b"jobledger schema " + self.schema.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


# The job columns a change may set: a change never alters a job's id, service,
# entity, type, input or creation time, so its compare-and-set leaves them alone.
_CHANGED_COLUMNS = (
    "display_name",
    "description",
    "status",
    "phase",
    "state",
    "etag",
    "version",
    "updated_at",
)

# A start's feed entry: its columns in :data:`EVENT_COLUMNS` order after the event's
# id and kind, copied from the job row the start wrote (``w``), so that no value is
# sent, nor parsed, twice.
_START_ENTRY = (
    "w.id, w.service, w.entity, w.type, w.status, w.etag, w.version, w.created_at, NULL, "
    "w.display_name, w.description, w.input, w.state, NULL, w.started_by, w.input_exact, "
    "w.state_exact, NULL"
)

# The stored name of a change's event, from its update row's type.
_CHANGE_KIND = (
    "CASE u.update_type "
    + " ".join(
        f"WHEN {update_type.value} THEN '{EVENT_KIND_NAMES[kind]}'"
        for kind, update_type in UPDATE_TYPES.items()
    )
    + " END"
)

# A change's event, from its update row (``u``) and its job row (``j``), as the
# feed table's columns after its position: :data:`EVENT_COLUMNS`, then the exact
# text of each JSON column (see _updates_in_the_feed).
_CHANGE_EVENT = (
    f"u.event_id, {_CHANGE_KIND}, u.job_id, j.service, j.entity, j.type, u.status, u.etag, "
    "u.update_id + 1, u.at, u.update_id, u.display_name, u.description, NULL, NULL, "
    "u.state_update, u.actor, NULL, NULL, u.state_update_exact"
)

# The same as read: :data:`EVENT_COLUMNS`, each JSON column as its exact text (see _selected).
_CHANGE_EVENT_READ = (
    f"u.event_id, {_CHANGE_KIND}, u.job_id, j.service, j.entity, j.type, u.status, u.etag, "
    "u.update_id + 1, u.at, u.update_id, u.display_name, u.description, NULL::text, NULL::text, "
    "COALESCE(u.state_update_exact, u.state_update::text), u.actor"
)


def _save_text(*, start: bool, request: bool, notify: bool, batch: bool = False) -> str:
    """The one statement that saves a change, for :meth:`_Statements.of` to render.

    Each part is written from the rows the one before returned: the job row
    (a start inserts it; a change compare-and-sets it), the request record,
    then the feed position, and last the feed entry: a start's feed row, or
    a change's update row, which is its feed entry (see
    :func:`_updates_in_the_feed`). When the compare-and-set matches no row,
    nothing at all is written and the statement returns no row. Reading the
    previous part's rows also orders the parts, so the counter row is locked
    after everything that may wait for another transaction (see the module
    docstring).

    A start's feed entry is copied from its job row: only the event's id and
    kind are sent for it, and its JSON is parsed once.

    A statement of a ``batch`` fails instead when its compare-and-set matches
    no row: it sets the counter row's ``singleton`` column to false, which the
    row's check constraint refuses. So a batch sent at once (in pipeline mode)
    stops at its first stale change, and its transaction can only roll back.
    """
    parts: list[str] = []
    if start:
        parts.append("WITH written AS (INSERT INTO {jobs} ({job_columns}) VALUES ({job_values}) ")
        parts.append("RETURNING *), ")
        last = "written"
    else:
        parts.append("WITH changed AS (UPDATE {jobs} SET ({changed_columns}) = ({changed_values}) ")
        parts.append("WHERE id = %s AND etag = %s AND version = %s RETURNING id), ")
        last = "changed"
    if request:
        parts.append("requested AS (INSERT INTO {requests} ({request_columns}) ")
        parts.append(
            "SELECT {request_values} FROM written RETURNING request_id), "
            if start
            else "SELECT {request_values} FROM changed RETURNING request_id), "
        )
        last = "requested"
    # The names joined in here are this function's own literals, never a value.
    parts.append("next AS (UPDATE {feed_counter} SET last = last + 1 ")
    if batch:
        parts.append(", singleton = EXISTS (SELECT FROM " + last + ") RETURNING last) ")
    else:
        parts.append("WHERE EXISTS (SELECT FROM " + last + ") RETURNING last) ")
    if start:
        parts.append("INSERT INTO {feed} (position, {event_columns}) ")
        parts.append("SELECT n.last, %s, %s, {start_entry} FROM next AS n, written AS w")
    else:
        parts.append("INSERT INTO {updates} (position, event_id, {update_columns}) ")
        parts.append("SELECT n.last, %s, c.id, {update_values} FROM next AS n, changed AS c")
    parts.append(" RETURNING position")
    if notify:
        # The channel is the schema's (see _Names.channel): a literal, not a parameter.
        parts.append(", pg_notify({channel}, position::text)")
    return "".join(parts)


@attrs.frozen
class _Statements:
    """Every statement the repository runs, rendered to text once from the schema's names.

    Rendering a :class:`psycopg.sql.Composed` walks its parts again on every
    execute; rendered once, a statement is a plain string, and the only names
    in it are the schema's tables, quoted by :class:`psycopg.sql.Identifier`.
    """

    #: A save in one statement, by whether it is a start, records a request and notifies.
    save: Mapping[tuple[bool, bool, bool], str]
    #: The same, for a change of a batch: it fails when its compare-and-set matches no row.
    save_in_batch: Mapping[tuple[bool, bool, bool], str]
    #: Locks the rows of the jobs a batch changes, in id order, before any is written.
    lock_jobs: str
    refusal: str
    #: The stored ``(id, etag, version)`` of some jobs, and which of some request ids are taken.
    versions: str
    recorded: str
    #: Composable, because listings append their own clause to it (see ``find``).
    select_job: sql.SQL
    select_job_by_id: str
    job_exists: str
    select_updates: str
    select_request: str
    select_feed: str
    feed_head: str
    select_start: str
    select_parked: str
    upsert_parked: str
    delete_parked: str
    claim_consumer: str
    hold: str
    release: str
    hold_reason: str
    purge_candidates: str
    purge_lock: str
    purge_job: str
    purge_updates: str
    #: Copies a job's change events from its update rows into the feed table, before a purge.
    keep_events: str
    purge_requests: str
    consumer_holder: str
    release_consumer: str
    load_checkpoint: str
    save_checkpoint: str

    @classmethod
    def of(cls, names: _Names, conn: psycopg.Connection[Any]) -> _Statements:
        """The statements of the schema ``names``, rendered for connections like ``conn``."""
        # Every statement runs with parameters, so psycopg reads each % in it as a
        # placeholder: a % in the schema's name is doubled to stay a %.
        tables = {
            name: sql.SQL(identifier.as_string(conn).replace("%", "%%"))
            for name, identifier in names.mapping().items()
        }

        def statement(text: str, **parts: sql.Composable) -> str:
            return sql.SQL(text).format(**tables, **lists, **parts).as_string(conn)

        lists: dict[str, sql.Composable] = {
            f"{kind}_{part}": render(columns)
            for kind, columns in (
                ("job", JOB_COLUMNS),
                ("changed", _CHANGED_COLUMNS),
                ("update", UPDATE_COLUMNS),
                ("request", REQUEST_COLUMNS),
                ("event", EVENT_COLUMNS),
            )
            for part, render in (("columns", _columns), ("values", _placeholders))
        }
        # A change's update row takes its job id from the changed job row.
        lists["update_values"] = _placeholders(UPDATE_COLUMNS[1:])
        # Expressions of jobledger's own: no value of anyone's is ever in them.
        lists["start_entry"] = sql.SQL(_START_ENTRY)
        lists["change_event"] = sql.SQL(_CHANGE_EVENT)
        lists["change_event_read"] = sql.SQL(_CHANGE_EVENT_READ)
        # Hex digits after a fixed prefix: never a quote, nor a % to double.
        lists["channel"] = sql.Literal(names.channel)
        return cls(
            save={
                (start, request, notify): statement(
                    _save_text(start=start, request=request, notify=notify)
                )
                for start in (False, True)
                for request in (False, True)
                for notify in (False, True)
            },
            save_in_batch={
                (start, request, notify): statement(
                    _save_text(start=start, request=request, notify=notify, batch=True)
                )
                for start in (False, True)
                for request in (False, True)
                for notify in (False, True)
            },
            lock_jobs=statement("SELECT FROM {jobs} WHERE id = ANY(%s) ORDER BY id FOR UPDATE"),
            refusal=statement("SELECT etag, version FROM {jobs} WHERE id = %s"),
            versions=statement("SELECT id, etag, version FROM {jobs} WHERE id = ANY(%s)"),
            recorded=statement("SELECT request_id FROM {requests} WHERE request_id = ANY(%s)"),
            select_job=sql.SQL(
                statement("SELECT {columns} FROM {jobs}", columns=_selected(JOB_COLUMNS))
            ),
            select_job_by_id=statement(
                "SELECT {columns} FROM {jobs} WHERE id = %s", columns=_selected(JOB_COLUMNS)
            ),
            job_exists=statement("SELECT 1 FROM {jobs} WHERE id = %s"),
            select_updates=statement(
                "SELECT {columns} FROM {updates} WHERE job_id = %s AND update_id > %s "
                "ORDER BY update_id",
                columns=_selected(UPDATE_COLUMNS),
            ),
            select_request=statement(
                "SELECT {columns} FROM {requests} WHERE request_id = %s",
                columns=_selected(REQUEST_COLUMNS),
            ),
            # The first entries of each table after a position, merged in position order.
            select_feed=statement(
                "SELECT * FROM ((SELECT position, {columns} FROM {feed} WHERE position > %s "
                "ORDER BY position LIMIT %s) UNION ALL (SELECT u.position, {change_event_read} "
                "FROM {updates} AS u JOIN {jobs} AS j ON j.id = u.job_id "
                "WHERE u.position > %s ORDER BY u.position LIMIT %s)) AS e "
                "ORDER BY 1 LIMIT %s",
                columns=_selected(EVENT_COLUMNS),
            ),
            feed_head=statement("SELECT last FROM {feed_counter}"),
            select_parked=statement(
                "SELECT p.position, p.error, p.attempts, p.retry, e.* FROM {parked} AS p "
                "CROSS JOIN LATERAL (SELECT {columns} FROM {feed} AS f "
                "WHERE f.position = p.position UNION ALL SELECT {change_event_read} "
                "FROM {updates} AS u JOIN {jobs} AS j ON j.id = u.job_id "
                "WHERE u.position = p.position) AS e WHERE p.name = %s ORDER BY p.position",
                columns=_selected(EVENT_COLUMNS),
            ),
            upsert_parked=statement(
                "INSERT INTO {parked} (name, position, error, attempts, retry) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name, position) DO UPDATE SET "
                "error = excluded.error, attempts = excluded.attempts, retry = excluded.retry"
            ),
            claim_consumer=statement(
                "INSERT INTO {consumers} AS c (name, owner, expires) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires = excluded.expires WHERE c.owner = excluded.owner OR c.expires < %s"
            ),
            consumer_holder=statement("SELECT owner FROM {consumers} WHERE name = %s"),
            release_consumer=statement("DELETE FROM {consumers} WHERE name = %s AND owner = %s"),
            hold=statement(
                "INSERT INTO {holds} (job_id, reason) SELECT id, %s FROM {jobs} WHERE id = %s "
                "ON CONFLICT (job_id) DO UPDATE SET reason = excluded.reason RETURNING job_id"
            ),
            release=statement("DELETE FROM {holds} WHERE job_id = %s"),
            hold_reason=statement("SELECT reason FROM {holds} WHERE job_id = %s"),
            purge_candidates=statement(
                "SELECT id FROM {jobs} WHERE phase <> 'active' AND updated_at < %s "
                "AND NOT EXISTS (SELECT 1 FROM {holds} AS h WHERE h.job_id = {jobs}.id) "
                "AND (%s::text IS NULL OR service = %s) AND (%s::text IS NULL OR entity = %s) "
                "AND (%s::text IS NULL OR type = %s)"
            ),
            purge_lock=statement(
                "SELECT id FROM {jobs} WHERE id = %s AND phase <> 'active' AND updated_at < %s "
                "AND NOT EXISTS (SELECT 1 FROM {holds} AS h WHERE h.job_id = {jobs}.id) "
                "FOR UPDATE"
            ),
            purge_job=statement("DELETE FROM {jobs} WHERE id = %s"),
            purge_updates=statement("DELETE FROM {updates} WHERE job_id = %s"),
            keep_events=statement(
                "INSERT INTO {feed} (position, {event_columns}) SELECT u.position, {change_event} "
                "FROM {updates} AS u JOIN {jobs} AS j ON j.id = u.job_id WHERE u.job_id = %s"
            ),
            purge_requests=statement("DELETE FROM {requests} WHERE job->>'id' = %s"),
            delete_parked=statement("DELETE FROM {parked} WHERE name = %s AND position = %s"),
            select_start=statement(
                "SELECT {columns} FROM {feed} WHERE job_id = %s AND kind = 'started'",
                columns=_selected(EVENT_COLUMNS),
            ),
            load_checkpoint=statement("SELECT position FROM {checkpoints} WHERE name = %s"),
            save_checkpoint=statement(
                "INSERT INTO {checkpoints} (name, position) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
            ),
        )


def _is_unavailable(err: psycopg.Error) -> bool:
    """Whether ``err`` says the server cannot be reached or the connection broke."""
    if isinstance(err, PoolTimeout):
        return True
    if not isinstance(err, psycopg.OperationalError):
        return False
    state = err.sqlstate
    return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES


def translate_error(err: psycopg.Error, location: str) -> StorageError:
    """The jobledger error that stands for the driver error ``err`` at the boundary.

    Errors that have a meaning for the ledger (a taken job id, a taken request
    id) are translated where they happen; this maps everything else:

    * no connection within the timeout, a refused or broken connection, a
      server shutting down: :class:`StorageUnavailableError`;
    * a lock or statement timeout (``lock_timeout``, ``statement_timeout``):
      :class:`~jobledger.postgres.StorageTimeoutError`;
    * a serialization failure or deadlock that outlived the retries, and any
      other error: :class:`~jobledger.postgres.StorageError`.

    Args:
        err: The driver's error.
        location: Which server and schema, for the message.
    """
    if isinstance(err, PoolClosed):
        return StorageError(location, "the repository is closed")
    if isinstance(err, PoolTimeout):
        message = (
            "no connection became free in time: the server cannot be reached, "
            f"or every pooled connection stayed busy ({err})"
        )
        return StorageUnavailableError(location, message)
    if _is_unavailable(err):
        return StorageUnavailableError(location, f"cannot reach the PostgreSQL server ({err})")
    if isinstance(err, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)):
        return StorageTimeoutError(location, f"PostgreSQL gave up waiting ({err})")
    if isinstance(err, (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)):
        message = f"the save kept colliding with other transactions ({err}); retry it"
        return StorageError(location, message)
    return StorageError(location, f"PostgreSQL failed: {err}")


# Startup refusals that a retry may get past: the server is starting, stopping or full.
_PASSING_REFUSALS = (
    "starting up",
    "shutting down",
    "in recovery",
    "too many",
    "connection slots",
    "not yet accepting",
)


def refused_settings(err: psycopg.Error) -> bool:
    """Whether a failed connection ``err`` is the server refusing the settings themselves.

    A connection string that does not parse, or a server that answered with a
    fatal startup error (a wrong password, an unknown user or database, no
    ``pg_hba.conf`` entry): waiting would not help. A server that is down,
    unreachable, starting, stopping or full is not this.
    """
    if isinstance(err, psycopg.ProgrammingError):
        return True
    if not isinstance(err, psycopg.OperationalError):
        return False
    message = str(err)
    if "FATAL:" not in message:
        return False
    return not any(passing in message for passing in _PASSING_REFUSALS)


def _check_settings(conninfo: str, kwargs: dict[str, Any], timeout: float, location: str) -> None:
    """Connect once, to report settings the server refuses at once instead of after ``timeout``.

    Raises:
        StorageConfigurationError: the settings do not parse or the server refused them.
    """
    try:
        conninfo_to_dict(conninfo)
    except psycopg.Error as err:
        message = f"the connection string is malformed ({_without_secrets(err, conninfo)})"
        raise StorageConfigurationError(location, message) from None
    try:
        connect_timeout = max(int(timeout), 2)
        psycopg.connect(conninfo, connect_timeout=connect_timeout, **kwargs).close()
    except psycopg.Error as err:
        if refused_settings(err):
            message = (
                "the server refused the connection settings "
                f"({_without_secrets(err, conninfo)}); check the user, password and database"
            )
            raise StorageConfigurationError(location, message) from None
        # Anything else (a server down or starting) is left to the pool, which waits for it.


def _without_secrets(err: psycopg.Error, conninfo: str) -> str:
    """The error's first line, with the password (if the conninfo has one) blanked out."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.Error:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def _location(conninfo: str, schema: str | None) -> str:
    """A description of the database for messages: never the password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        params = {}
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or "(default database)"
    where = f"schema {schema!r}" if schema is not None else "the default schema"
    return f"PostgreSQL database {dbname!r} on {host}:{port}, {where}"


def _check_schema_name(schema: str) -> None:
    if not isinstance(schema, str) or not schema:
        msg = f"schema must be a non-empty string, not {schema!r}"
        raise ValueError(msg)
    if "\x00" in schema or len(schema.encode("utf-8")) > _MAX_IDENTIFIER_BYTES:
        msg = (
            f"schema must be at most {_MAX_IDENTIFIER_BYTES} bytes of UTF-8 without NUL, "
            f"not {schema!r}"
        )
        raise ValueError(msg)


class PostgresRepository:
    """A :class:`~jobledger.Repository` in a PostgreSQL database, shared by processes and machines.

    Args:
        conninfo: A libpq connection string or URI
            (``"postgresql://user@host/dbname"``; ``""`` takes everything from
            libpq's ``PG*`` environment variables). Leave it out when giving
            ``pool``.
        schema: The schema to keep the tables in; created if missing. ``None``
            uses the connection's current schema (the first existing one on
            its ``search_path``, normally ``public``). Tables are named
            ``jobledger_*``, so they may share a schema with others.
        pool: A :class:`psycopg_pool.ConnectionPool` of your own to borrow
            connections from. It stays yours: :meth:`close` leaves it open.
            Its connections should run ``READ COMMITTED`` (PostgreSQL's
            default); under stricter levels concurrent saves are retried more.
        min_size: The connections the repository's own pool keeps open.
        max_size: The most connections the repository's own pool opens.
        timeout: Seconds a call waits for a connection before it raises
            :class:`StorageUnavailableError`.
        notify: Send a notification with every save, to wake subscribers
            waiting in :meth:`wait_for_feed` at once. Turn it off if no one
            waits on this database: subscribers then find new events by polling.

    Raises:
        StorageUnavailableError: the server cannot be reached.
        ForeignDatabaseError: the schema holds tables named like jobledger's
            that are not a jobledger schema; nothing was changed.
        SchemaVersionError: the schema was written by a newer jobledger.
        SchemaUpgradeError: the schema has an older version and the role
            does not own its tables, so it cannot upgrade them.
        StorageError: creating or migrating the schema failed otherwise.
        ValueError: both or neither of ``conninfo`` and ``pool``, or a schema
            name PostgreSQL cannot hold (empty, NUL, longer than 63 bytes).

    The schema is created, or migrated, when the repository is made: safe to
    do from many processes at once. The repository is safe to share between
    threads; open one per process (a pickled repository reopens with the same
    settings in the process that unpickles it). Close it when done, or use it
    as a context manager.

    Example::

        from jobledger import Jobs
        from jobledger.postgres import PostgresRepository

        with PostgresRepository("postgresql://app@db.example/app", schema="jobs") as repository:
            jobs = Jobs(repository=repository)
            job = jobs.start(service="hr", entity="employee", type="sync")
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        schema: str | None = None,
        pool: ConnectionPool[Any] | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        notify: bool = True,
    ) -> None:
        if schema is not None:
            _check_schema_name(schema)
        if (pool is None) == (conninfo is None):
            msg = "give either a conninfo or a pool"
            raise ValueError(msg)
        if timeout <= 0:
            msg = f"timeout must be more than zero seconds, not {timeout!r}"
            raise ValueError(msg)
        if pool is None:
            given: str | Callable[[], str] = conninfo or ""
            kwargs: dict[str, Any] | Callable[[], dict[str, Any]] | None = None
        else:
            given, kwargs = pool.conninfo, pool.kwargs
        # A pool's conninfo and kwargs may be callables (credentials that rotate).
        self._conninfo: Callable[[], str] = given if callable(given) else lambda: given
        self._connect_kwargs: Callable[[], dict[str, Any]] = (
            kwargs if callable(kwargs) else lambda: dict(kwargs or {})
        )
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = float(timeout)
        self._notify = notify
        self._location = _location(self._conninfo(), schema)
        self._owns_pool = pool is None
        self._pool_name = f"jobledger:{schema or '(default schema)'}"
        # The connections (and locks) made from here on belong to this process (see _forked).
        self._forks = forks()
        if pool is None:
            _check_settings(self._conninfo(), {}, self._timeout, self._location)
            pool = self._open_pool()
        self._pool = pool
        # On a pool of its own with room for others, the repository keeps one
        # connection between calls (see _KeptConnection); a pool given to it is
        # the application's, and every call hands its connection back.
        self._kept = _KeptConnection(
            pool, self._timeout, keep=self._owns_pool and pool.max_size > 1
        )
        try:
            with self._translated(), self._connection() as conn:
                self._names = _migrate(conn, schema, self._location)
                self._sql = _Statements.of(self._names, conn)
        except BaseException:
            self._close_pool()
            raise
        self._location = _location(self._conninfo(), self._names.schema)
        self._listener, self._forget = self._new_listener()
        self._group = _Group(GROUP_LIMIT, lanes=pool.max_size, patience=GROUP_PATIENCE_SECONDS)

    def _open_pool(self, *, start: bool = True) -> ConnectionPool[Any]:
        """A new pool of the repository's own; with ``start``, it opens connections meanwhile."""
        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo(),
            min_size=self._min_size,
            max_size=self._max_size,
            kwargs={"autocommit": True},
            connection_class=_Connection,
            configure=_configure,
            timeout=self._timeout,
            open=False,
            name=self._pool_name,
        )
        if start:
            pool.open(wait=False)
        return pool

    def _new_listener(self) -> tuple[_FeedListener, weakref.finalize[Any, Any]]:
        """A listener of the feed's notifications, and the finalizer that stops it."""
        # The listener must not hold the repository, or a repository dropped
        # without close() would live (and listen) forever.
        connect = functools.partial(
            _connect_listener, self._conninfo, self._connect_kwargs, self._timeout
        )
        listener = _FeedListener(connect, self._names.channel, self._sql.feed_head, self._location)
        # A repository dropped without close() must not leave its listener running.
        return listener, weakref.finalize(self, listener.stop)

    def _forked(self, *, reopen: bool = True) -> None:
        """In a forked child of the process that made the connections, make them anew.

        A child's copies of its parent's connections (the kept one, the
        pool's, the listener's) share their sockets with the parent's: using
        one would mix two processes' messages on one session, and closing one
        would end the parent's session. So a child drops them, never using or
        closing them, along with the locks of the group commit and the
        listener, which a parent's thread may have held when it forked. With
        ``reopen``, it then opens a pool of its own (on a pool of the
        repository's own; an application's pool is the application's to
        make anew); without (when closing), the new pool is never opened.
        """
        if self._forks == forks():
            return
        with after_fork_lock():
            if self._forks == forks():
                return
            self._forget.detach()
            if self._owns_pool:
                self._pool = self._open_pool(start=reopen)
            self._kept = _KeptConnection(
                self._pool, self._timeout, keep=reopen and self._owns_pool and self._max_size > 1
            )
            self._listener, self._forget = self._new_listener()
            self._group = _Group(
                GROUP_LIMIT, lanes=self._pool.max_size, patience=GROUP_PATIENCE_SECONDS
            )
            self._forks = forks()

    @property
    def schema(self) -> str:
        """The schema that holds this repository's tables."""
        return self._names.schema

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The connection pool the repository borrows connections from."""
        self._forked()
        return self._pool

    def __repr__(self) -> str:
        return f"<PostgresRepository {self._location}>"

    def __reduce__(self) -> tuple[Callable[..., PostgresRepository], tuple[Any, ...]]:
        if not self._owns_pool:
            msg = "a PostgresRepository over a pool of your own cannot be pickled"
            raise TypeError(msg)
        reopen = functools.partial(
            PostgresRepository,
            self._conninfo(),
            schema=self._names.schema,
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._timeout,
            notify=self._notify,
        )
        return (reopen, ())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening for notifications and close the repository's own pool.

        A pool given to the repository is left open. After closing, calls
        raise :class:`~jobledger.postgres.StorageError`. Closing again does nothing.
        """
        self._forked(reopen=False)
        self._listener.close()
        self._close_pool()

    def _close_pool(self) -> None:
        self._kept.close()
        if self._owns_pool:
            self._pool.close()

    # -- connections and errors -------------------------------------------------------------

    def _connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A connection for one call: the kept one when it is free, else one from the pool."""
        self._forked()
        return self._kept.borrow()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn the driver's errors into jobledger's at the boundary."""
        try:
            yield
        except psycopg.Error as err:
            raise translate_error(err, self._location) from err

    def _decoded(self, read: Callable[[Any], _V], row: Any) -> _V:  # noqa: ANN401  (a driver's row)
        return decode_row(read, row, self._location)

    # -- the Repository protocol ------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job as last saved; see :meth:`jobledger.Repository.get`."""
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        try:
            with self._connection() as conn:
                row = conn.execute(self._sql.select_job_by_id, (job_id,)).fetchone()
        except psycopg.Error as err:
            raise translate_error(err, self._location) from err
        if row is None:
            raise JobNotFoundError(job_id)
        job: Job = self._decoded(job_from_row, row)
        return job

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """The job's updates after ``after``; see :meth:`jobledger.Repository.updates`."""
        after, _ = window(after, 0)
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(self._sql.select_updates, (job_id, after)).fetchall()
            # Jobs are never deleted, so a job seen by this later statement had no
            # updates after ``after`` when the first one ran either.
            exists = bool(rows) or (
                conn.execute(self._sql.job_exists, (job_id,)).fetchone() is not None
            )
        if not exists:
            raise JobNotFoundError(job_id)
        return tuple(self._decoded(update_from_row, row) for row in rows)

    def hold(self, job_id: str, reason: str) -> None:
        """Put a job on hold; see :meth:`jobledger.Retention.hold`."""
        reason = check_reason(reason)
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._translated(), self._connection() as conn:
            row = conn.execute(self._sql.hold, (reason, job_id)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)

    def release(self, job_id: str) -> None:
        """Lift a hold; see :meth:`jobledger.Retention.release`."""
        if not is_storable_key(job_id):
            return
        with self._translated(), self._connection() as conn:
            conn.execute(self._sql.release, (job_id,))

    def hold_reason(self, job_id: str) -> str | None:
        """A job's hold; see :meth:`jobledger.Retention.hold_reason`."""
        if not is_storable_key(job_id):
            return None
        with self._translated(), self._connection() as conn:
            row = conn.execute(self._sql.hold_reason, (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def purge(self, rule: PurgeRule, *, dry_run: bool = False) -> int:
        """Delete ended jobs; see :meth:`jobledger.Retention.purge`."""
        cut = to_micros(rule.finished_before)
        filters = (rule.service, rule.service, rule.entity, rule.entity, rule.type, rule.type)
        with self._translated(), self._connection() as conn:
            found = [row[0] for row in conn.execute(self._sql.purge_candidates, (cut, *filters))]
        if dry_run:
            return len(found)
        purged = 0
        for job_id in found:
            with self._translated(), self._connection() as conn, conn.transaction():
                if conn.execute(self._sql.purge_lock, (job_id, cut)).fetchone() is None:
                    continue  # changed or held meanwhile
                # The job's change events stay in the feed: its update rows were its entries.
                conn.execute(self._sql.keep_events, (job_id,))
                conn.execute(self._sql.purge_updates, (job_id,))
                conn.execute(self._sql.purge_job, (job_id,))
                conn.execute(self._sql.purge_requests, (job_id,))
            purged += 1
        return purged

    def claim_consumer(self, name: str, owner: str, *, now: datetime, until: datetime) -> str:
        """Claim a consumer lease; see :meth:`jobledger.ConsumerLeases.claim_consumer`."""
        name = check_subscriber_name(name)
        expiry, cut = round(until.timestamp() * 1e6), round(now.timestamp() * 1e6)
        with self._translated(), self._connection() as conn:
            conn.execute(self._sql.claim_consumer, (name, owner, expiry, cut))
            row = conn.execute(self._sql.consumer_holder, (name,)).fetchone()
        # The row was just written or kept, in the same autocommit session.
        holder: str = row[0] if row is not None else ""
        return holder

    def release_consumer(self, name: str, owner: str) -> None:
        """Give up a consumer lease; see :meth:`jobledger.ConsumerLeases.release_consumer`."""
        name = check_subscriber_name(name)
        with self._translated(), self._connection() as conn:
            conn.execute(self._sql.release_consumer, (name, owner))

    def park(self, parked: ParkedEvent) -> None:
        """Keep a parked event; see :meth:`jobledger.ParkedEvents.park`."""
        name = check_subscriber_name(parked.name)
        position = check_position(parked.position)
        row = (name, position, parked.error, parked.attempts, parked.retry)
        with self._translated(), self._connection() as conn:
            conn.execute(self._sql.upsert_parked, row)

    def parked_events(self, name: str) -> Sequence[ParkedEvent]:
        """The events parked under ``name``; see :meth:`jobledger.ParkedEvents.parked_events`."""
        name = check_subscriber_name(name)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(self._sql.select_parked, (name,)).fetchall()
        read = functools.partial(parked_from_row, name=name)
        return tuple(self._decoded(read, row) for row in rows)

    def unpark(self, name: str, position: int) -> None:
        """Forget a parked event; see :meth:`jobledger.ParkedEvents.unpark`."""
        name = check_subscriber_name(name)
        position = check_position(position)
        with self._translated(), self._connection() as conn:
            conn.execute(self._sql.delete_parked, (name, position))

    def started(self, job_id: str) -> JobStarted:
        """The job's start event; see :meth:`jobledger.StartRecords.started`."""
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._translated(), self._connection() as conn:
            row = conn.execute(self._sql.select_start, (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        event = self._decoded(event_from_row, row)
        assert isinstance(event, JobStarted)  # noqa: S101  (the row's kind is 'started')
        return event

    def find(self, query: JobQuery) -> JobPage:
        """A page of matching jobs, newest first; see :meth:`jobledger.Repository.find`."""
        clause, params = find_clause(query, placeholder="%s")
        # ``clause`` is jobledger's own SQL text with %s placeholders; every value is in params.
        statement = self._sql.select_job + sql.SQL(" " + clause)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(statement, params).fetchall()
        jobs = [self._decoded(job_from_row, row) for row in rows[: query.limit]]
        return JobPage.of(jobs, more=len(rows) > query.limit)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """The record of ``request_id``; see :meth:`jobledger.Repository.find_request`."""
        if not is_storable_key(request_id):
            return None
        with self._translated(), self._connection() as conn:
            row = conn.execute(self._sql.select_request, (request_id,)).fetchone()
        if row is None:
            return None
        record: RequestRecord = self._decoded(request_from_row, row)
        return record

    def save(self, change: Change) -> int:
        """Save ``change`` in one transaction; see :meth:`jobledger.Repository.save`.

        A transaction PostgreSQL aborts for a serialization failure or a
        deadlock is rolled back and tried again, up to :data:`SAVE_ATTEMPTS` times.

        Raises:
            JobAlreadyExistsError: a start for a job id that exists.
            JobNotFoundError: a change for a job that does not exist.
            ConcurrencyError: the stored ETag is not ``change.expected_etag``.
            RequestIdConflictError: the change's request id is already recorded.
            StorageUnavailableError: the server cannot be reached; nothing was
                written, unless the connection broke during the commit itself,
                when the change may have committed (retry with the same
                ``request_id`` to find out safely).
            StorageError: PostgreSQL failed otherwise; nothing was written.
        """
        if _lacks_update(change):
            return self._save_alone(change)  # a change without its update: always refused
        self._forked()
        group = self._group
        if group.lead_alone():
            # Nothing in flight: this thread's save goes at once, on its own.
            try:
                return self._save_alone(change)
            finally:
                group.done()
        pending = _Pending(change)
        group.run(pending, self._send_group)
        if pending.position is not None:
            return pending.position
        if pending.error is not None:
            raise pending.error
        if pending.refused:
            with self._translated(), self._connection() as conn:
                self._refuse(conn, change)
        return self._save_alone(change)

    def _save_alone(self, change: Change) -> int:
        """Save ``change`` in a transaction of its own (see :meth:`save`)."""

        def write(conn: psycopg.Connection[Any]) -> int:
            if conn.autocommit:
                # Idle in autocommit mode: the write opens and commits its own transaction.
                return self._write_change(conn, change)
            with conn.transaction():
                return self._write_change(conn, change)

        return self._retried(write, "the save of job %s", change.job.id)

    def _retried(
        self, write: Callable[[psycopg.Connection[Any]], _V], what: str, *args: object
    ) -> _V:
        """``write`` on a connection, tried again when its transaction was rolled back and may pass.

        PostgreSQL aborts a transaction for a serialization failure or a
        deadlock; ``write`` raises :class:`_TryAgain` when it was refused over
        stored values that have changed since. Either way nothing was written,
        so it is tried again, up to :data:`SAVE_ATTEMPTS` times in all.

        ``what`` names the write in the log, a %-format of ``args`` (formatted
        only when it is tried again).

        Raises:
            StorageError: the driver's errors, translated; or the last attempt
                still had to be tried again.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._connection() as conn:
                    return write(conn)
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as err:
                if attempt >= SAVE_ATTEMPTS:
                    raise translate_error(err, self._location) from err
                reason: Exception = err
            except _TryAgain as err:
                if attempt >= SAVE_ATTEMPTS:
                    raise StorageError(self._location, str(err)) from None
                reason = err
            except psycopg.Error as err:
                raise translate_error(err, self._location) from err
            logger.debug("%s rolled back (%s); trying again", what % args, reason)
            time.sleep(0.002 * attempt)

    def _send_group(self, group: Sequence[_Pending]) -> None:
        """Save the changes of ``group`` (see :class:`_Group`); each gets its own outcome.

        One change is saved as it would be alone (by this thread: its own). Several go
        in one transaction, in one round trip (pipeline mode): ``BEGIN``, a
        statement that locks the rows of the jobs they change (in id order, as a
        batch does), each change's one statement, ``COMMIT``. A statement whose compare-and-set
        matches no row writes nothing and fails nothing else, so its change alone
        is refused. When PostgreSQL aborts the transaction instead (a taken job
        or request id, a serialization failure or a deadlock), nothing of it was
        written, and each change is saved again alone by its own thread, which
        gets its own error. A connection lost on the way gives every change the
        same error as a save alone would get.
        """
        if len(group) == 1:
            (pending,) = group
            try:
                pending.position = self._save_alone(pending.change)
            except Exception as err:  # noqa: BLE001  (handed to the one waiting: this thread)
                pending.error = err
            return
        try:
            with self._connection() as conn:
                rows = self._write_group(conn, [pending.change for pending in group])
        except psycopg.Error as err:
            if err.sqlstate is not None and not _is_unavailable(err):
                # The server rolled the transaction back: nothing of it was written.
                logger.debug("a group of %d saves rolled back (%s)", len(group), err)
                return
            error = translate_error(err, self._location)
            for pending in group:
                pending.error = error
            return
        if rows is None:
            return  # each change saved alone, by its own thread
        for pending, row in zip(group, rows, strict=True):
            if row is None:
                pending.refused = True
            else:
                pending.position = int(row[0])

    def _write_group(
        self, conn: psycopg.Connection[Any], changes: Sequence[Change]
    ) -> list[Any] | None:
        """Write ``changes`` in one transaction on ``conn``: each one's row, or ``None``.

        A change's row holds its feed position, or is ``None`` when its
        compare-and-set matched nothing. Returns ``None`` without writing when
        ``conn`` cannot send them so (not an idle connection in autocommit mode
        at the server's default transaction settings, or no pipeline mode).

        Raises:
            psycopg.Error: the driver's errors, untranslated.
        """
        if not (
            _PIPELINES
            and conn.autocommit
            and conn.pgconn.transaction_status == _IDLE
            and _default_transactions(conn)
        ):
            return None
        cursors = _in_one_transaction(conn, lambda: self._send_together(conn, changes))
        return [cursor.fetchone() for cursor in cursors]

    def _send_together(
        self, conn: psycopg.Connection[Any], changes: Sequence[Change], *, batch: bool = False
    ) -> list[psycopg.Cursor[Any]]:
        """Send the statements of ``changes`` saved in one transaction; return their cursors.

        The rows of the jobs they change are locked first, in id order: a later
        statement must not wait for a job row while the transaction holds the
        counter row, which the transaction holding that job row may be waiting
        for, and two transactions that lock in the same order never wait for
        one another in a circle. The changes of a ``batch`` fail instead of
        matching no row (see :func:`_save_text`), and it notifies once, with
        its last change.
        """
        locked = sorted({change.job.id for change in changes if change.expected_etag is not None})
        if locked:
            conn.execute(self._sql.lock_jobs, (locked,))
        if not batch:
            return [self._send_change(conn.cursor(), change) for change in changes]
        last = len(changes) - 1
        return [
            self._send_change(
                conn.cursor(), change, batch=True, notify=self._notify and index == last
            )
            for index, change in enumerate(changes)
        ]

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Save ``changes`` in one transaction; see :meth:`jobledger.AtomicBatches.save_all`.

        The batch goes to the server in one round trip: in pipeline mode,
        ``BEGIN``, a statement that locks the rows of the jobs it changes (in id
        order, so that batches never wait for one another in a circle), each
        change's one statement (see :func:`_save_text`), and ``COMMIT``. It
        notifies once, with its last position. When a change is refused, the
        transaction rolls back, and the stored jobs and request ids of the
        batch are read to say which change was refused and why (see
        :func:`~jobledger._core.decide.batch_refusal`). A batch of one change
        is saved as :meth:`save` saves it.

        Raises:
            JobAlreadyExistsError: a start for a job id that exists.
            JobNotFoundError: a change for a job that does not exist.
            ConcurrencyError: a change's ETag is not the one its job has at that point.
            RequestIdConflictError: a change's request id is already recorded.
            StorageUnavailableError: the server cannot be reached (see :meth:`save`
                for a connection lost during the commit).
            StorageError: PostgreSQL failed otherwise; nothing was written.
        """
        changes = tuple(changes)
        if len(changes) <= 1:
            return tuple(self.save(change) for change in changes)

        def write(conn: psycopg.Connection[Any]) -> tuple[int, ...] | Exception:
            positions = self._write_batch(conn, changes)
            if positions is not None:
                return positions
            refusal = self._batch_refusal(conn, changes)
            if refusal is None:
                # Refused, yet nothing stored refuses it now: the jobs it was refused
                # over changed since. Try again, as for a serialization failure.
                message = "a batch kept being refused while the jobs it changes kept changing"
                raise _TryAgain(message)
            return refusal

        outcome = self._retried(write, "a batch of %d changes", len(changes))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _write_batch(
        self, conn: psycopg.Connection[Any], changes: tuple[Change, ...]
    ) -> tuple[int, ...] | None:
        """Write ``changes`` in one transaction on ``conn``; ``None`` when one was refused.

        A refused change rolls the whole transaction back.

        Raises:
            psycopg.Error: the driver's errors, untranslated.
        """
        if any(_lacks_update(change) for change in changes):
            return None  # a change without its update: always refused
        try:
            cursors = _in_one_transaction(
                conn, lambda: self._send_together(conn, changes, batch=True)
            )
        except (pg_errors.UniqueViolation, pg_errors.CheckViolation) as err:
            if err.diag.table_name not in _REFUSING_TABLES:
                raise
            return None
        positions = []
        for cursor in cursors:
            row = cursor.fetchone()
            assert row is not None  # noqa: S101  (a statement of a batch writes or fails)
            positions.append(int(row[0]))
        return tuple(positions)

    def _batch_refusal(
        self, conn: psycopg.Connection[Any], changes: tuple[Change, ...]
    ) -> Exception | None:
        """Why ``changes`` cannot be saved over the jobs and request ids stored now, or ``None``."""
        job_ids = list({change.job.id for change in changes})
        stored = {row[0]: (row[1], row[2]) for row in conn.execute(self._sql.versions, (job_ids,))}
        request_ids = [change.request.request_id for change in changes if change.request]
        recorded = (
            {row[0] for row in conn.execute(self._sql.recorded, (request_ids,))}
            if request_ids
            else set()
        )
        return batch_refusal(changes, stored.get, recorded.__contains__)

    def _write_change(self, conn: psycopg.Connection[Any], change: Change) -> int:
        """Write ``change`` in one transaction on ``conn``; return its feed position.

        With a transaction open on ``conn``, the change is written in it, and
        the caller must commit or roll back right after, since the feed
        position is taken last (see the module docstring). On a connection in
        autocommit mode with no transaction open, the change is written in a
        transaction of its own, committed (or rolled back) before this returns.

        Raises:
            JobAlreadyExistsError: a start for a job id that exists.
            JobNotFoundError: a change for a job that does not exist.
            ConcurrencyError: the stored ETag is not ``change.expected_etag``.
            RequestIdConflictError: the change's request id is already recorded.
            ValueError: the change's update does not follow the stored version.
            psycopg.Error: the driver's errors, untranslated.
        """
        if _lacks_update(change):
            self._refuse(conn, change)  # a change without its update: always refused
        try:
            if not (conn.autocommit and conn.pgconn.transaction_status == _IDLE):
                # In the transaction open on conn.
                feed = self._send_change(conn.cursor(), change)
            elif _default_transactions(conn):
                # In autocommit mode one statement is a transaction of its own.
                feed = self._send_change(_saving_cursor(conn), change)
            else:
                feed = _in_one_transaction(conn, lambda: self._send_change(conn.cursor(), change))
        except pg_errors.UniqueViolation as err:
            taken = _taken(err, change)
            if taken is None:
                raise
            raise taken from err
        row = feed.fetchone()
        if row is None:
            # The compare-and-set matched no row, so the statement wrote nothing.
            self._refuse(conn, change)
        position: int = row[0]
        return position

    def _send_change(
        self,
        cursor: psycopg.Cursor[Any],
        change: Change,
        *,
        batch: bool = False,
        notify: bool | None = None,
    ) -> psycopg.Cursor[Any]:
        """Send, on ``cursor``, the one statement that writes ``change`` (see :func:`_save_text`).

        Returns ``cursor``: it holds the feed position, or no row for a change
        whose compare-and-set matched nothing (and so wrote nothing). A change
        of a ``batch`` raises instead; ``notify`` overrides the repository's
        setting (a batch notifies once, with its last change).
        """
        if notify is None:
            notify = self._notify
        job = change.job
        request = change.request
        start = change.expected_etag is None
        statements = self._sql.save_in_batch if batch else self._sql.save
        statement = statements[start, request is not None, notify]
        requested = () if request is None else _values(REQUEST_COLUMNS, request_row(request))
        if start:
            return cursor.execute(
                statement,
                (
                    *_values(JOB_COLUMNS, job_row(job)),
                    *requested,
                    change.event.event_id,
                    "started",
                ),
            )
        # The change's facts as one tuple: its update and event need not be made.
        record = change.record
        if record is None:
            update = change.update
            assert update is not None  # noqa: S101  (refused in _write_change)
            record = _record_of(update, change.event)
        kind, event_id, _, _, _, _, status, etag, at, update_id, name, text, patch, actor = record
        state = encode_json(job.state)
        patch_text = None if patch is None else encode_json(patch)
        micros = to_micros(at)
        return cursor.execute(
            statement,
            (
                # The job row's compare-and-set.
                job.display_name,
                job.description,
                job.status,
                job.phase.value,
                state,
                job.etag,
                job.version,
                micros if job.updated_at is at else to_micros(job.updated_at),
                _exact_text(state),
                job.id,
                change.expected_etag,
                update_id,
                *requested,
                # The update row, which is the change's feed entry.
                event_id,
                update_id,
                UPDATE_TYPES[kind].value,
                status,
                patch_text,
                name,
                text,
                etag,
                micros,
                actor,
                _exact_text(patch_text),
            ),
        )

    def _refuse(self, conn: psycopg.Connection[Any], change: Change) -> NoReturn:
        """Say why the compare-and-set of ``change`` matched no row."""
        row = conn.execute(self._sql.refusal, (change.job.id,)).fetchone()
        refuse_save(change, None if row is None else (row[0], row[1]))

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """Feed entries after ``after``; see :meth:`jobledger.Repository.read_feed`."""
        after, limit = window(after, limit)
        with self._translated(), self._connection() as conn:
            rows = conn.execute(
                self._sql.select_feed, (after, limit, after, limit, limit)
            ).fetchall()
        return tuple(FeedEntry(row[0], self._decoded(event_from_row, row[1:])) for row in rows)

    def feed_head(self) -> int:
        """The last feed position; see :meth:`jobledger.Repository.feed_head`."""
        with self._translated(), self._connection() as conn:
            row = conn.execute(self._sql.feed_head, ()).fetchone()
        return 0 if row is None else int(row[0])

    def load_checkpoint(self, name: str) -> int:
        """The checkpoint of ``name``; see :meth:`jobledger.Repository.load_checkpoint`."""
        name = check_subscriber_name(name)
        with self._translated(), self._connection() as conn:
            row = conn.execute(self._sql.load_checkpoint, (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def save_checkpoint(self, name: str, position: int) -> None:
        """Record a checkpoint; see :meth:`jobledger.Repository.save_checkpoint`."""
        name = check_subscriber_name(name)
        position = check_position(position)
        with self._translated(), self._connection() as conn:
            conn.execute(self._sql.save_checkpoint, (name, position))

    def wait_for_feed(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the feed to hold an event after ``after``.

        The first call starts a background thread that ``LISTEN`` s on this
        schema's channel on a connection of its own; saves with ``notify=True``
        from any process wake it when they commit. Returns at once when the
        feed is already past ``after``. If the listening connection is lost,
        the thread reconnects, and waiters simply wait out their timeout
        meanwhile (callers poll as well).

        Returns:
            Whether an event after position ``after`` is committed and readable.
        """
        self._forked()
        return self._listener.wait(after, timeout)


class _KeptConnection:
    """A connection of the pool kept between calls, lent to whichever thread finds it free.

    A :class:`psycopg_pool.ConnectionPool` hands its idle connections out in
    turn, so one thread's calls would alternate between connections, each
    served by a server process of its own whose caches the others' turns left
    cold, and borrowing and handing back cost a few microseconds more. So the
    repository keeps one connection and lends it, behind a lock that is only ever tried: a
    thread that finds it lent borrows from the pool as before (so concurrent
    calls never wait for one another here, and group commit's lanes each have
    a connection). The kept connection goes back to the pool, which rolls back
    or replaces it, whenever a call leaves it in a transaction or broken, when
    it has been kept for :data:`_KEPT_SECONDS` (so the pool's checks and
    lifetimes still apply), and on :meth:`close`.
    """

    def __init__(self, pool: ConnectionPool[Any], timeout: float, *, keep: bool) -> None:
        self._pool = pool
        self._timeout = timeout
        self._keep = keep
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._until = 0.0

    def borrow(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """The kept connection while no one else has it, else one of the pool's."""
        if self._keep and self._lock.acquire(blocking=False):
            return self  # lent until __exit__, which releases the lock
        return self._pool.connection(timeout=self._timeout)

    def __enter__(self) -> psycopg.Connection[Any]:
        try:
            conn = self._conn
            if conn is None:
                conn = self._pool.getconn(timeout=self._timeout)
                self._conn, self._until = conn, time.monotonic() + _KEPT_SECONDS
        except BaseException:
            self._lock.release()
            raise
        return conn

    def __exit__(self, *_exc: object) -> None:
        try:
            conn = self._conn
            if conn is not None and (
                conn.pgconn.transaction_status != _IDLE
                or not self._keep
                or time.monotonic() > self._until
            ):
                self._give_back()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Hand the kept connection back to the pool and keep none from now on."""
        self._keep = False
        # A call that has it now hands it back when it ends (it sees _keep is off).
        if self._lock.acquire(timeout=self._timeout):
            try:
                self._give_back()
            finally:
                self._lock.release()

    def _give_back(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.putconn(conn)


class _Connection(psycopg.Connection[Any]):
    """A connection of the repository's own pool: it keeps the cursor its saves run on.

    :meth:`psycopg.Connection.execute` makes a cursor for every statement; a
    save alone on an idle connection reads its row before anything else runs
    there, so the cursor one save used serves the next. The cursor lives and
    dies with its connection: a connection the pool replaces, or a forked
    child's new pool (see ``PostgresRepository._forked``), comes with none.
    """

    _saver: psycopg.Cursor[Any] | None = None


def _saving_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The cursor for a save alone on ``conn``: the one it keeps, if the repository made it."""
    if type(conn) is not _Connection:
        return conn.cursor()  # an application's pool: nothing is kept on its connections
    cursor = conn._saver  # noqa: SLF001  (the class is this module's own)
    if cursor is None:
        cursor = conn._saver = conn.cursor()  # noqa: SLF001
    return cursor


# The states of a save in a group commit's queue (see ``_Group``).
_QUEUED, _TAKEN, _LEADING = 0, 1, 2


class _TryAgain(Exception):  # noqa: N818  (a signal to retry, caught inside the repository)
    """A write was refused over stored values that have changed since: try it again."""


class _Pending:
    """One thread's save waiting in a :class:`_Group`, and its outcome.

    The outcome is a position, a refusal (its compare-and-set matched no row),
    an error, or none of them: the change is then saved alone by its thread.
    """

    __slots__ = ("change", "error", "position", "refused", "state", "woken")

    def __init__(self, change: Change) -> None:
        self.change = change
        self.position: int | None = None
        self.refused = False
        self.error: Exception | None = None
        self.state = _QUEUED
        #: Made only for a save that queues (a lone save never waits).
        self.woken: threading.Event | None = None


class _Group:
    """Group commit: saves that threads make while one is in flight go together.

    A thread that finds no save in flight sends its own at once: no added
    round trip, no added wait. Threads that come meanwhile queue; when the
    save in flight ends, the first of them takes the queue (up to ``limit``
    saves) and sends it as one group while the rest wait for it. So N
    concurrent saves cost about one round trip and one commit (one WAL
    flush), not N, and not N commits one after another behind the feed's
    counter row.

    A save that waits on a lock must not hold up the saves of other jobs: a
    thread that has queued for ``patience`` seconds without its group leaving
    sends the queue itself, alongside, up to ``lanes`` groups in flight.
    """

    def __init__(self, limit: int, lanes: int, patience: float) -> None:
        self._limit = limit
        self._lanes = lanes
        self._patience = patience
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._flying = 0

    def lead_alone(self) -> bool:
        """Take a lane when none is in flight (nothing queued either); then call :meth:`done`.

        The thread that took it sends its own save at once, as a group of one
        would be sent, without making a :class:`_Pending` for it.
        """
        with self._lock:
            if self._flying:
                return False
            self._flying = 1
            return True

    def done(self, group: Sequence[_Pending] = (), sender: _Pending | None = None) -> None:
        """End the lane of a group sent (of ``group`` sent by ``sender``, or of a lone save).

        The lane passes to the first save queued meanwhile, which sends the
        queue as the next group; every member of ``group`` but its sender is woken.
        """
        with self._lock:
            following = self._queue[0] if self._queue else None
            if following is None:
                self._flying -= 1
            else:
                following.state = _LEADING  # the lane passes to it
        # Those that waited (every one but the sender's thread) have their event.
        for member in group:
            if member.woken is not None and member is not sender:
                member.woken.set()
        if following is not None and following.woken is not None:
            following.woken.set()

    def run(self, pending: _Pending, send: Callable[[Sequence[_Pending]], None]) -> None:
        """Return once ``pending`` was sent in a group (``send`` sets the outcomes)."""
        with self._lock:
            alone = self._flying == 0  # nothing in flight, nothing queued
            if alone:
                self._flying = 1
            else:
                pending.woken = threading.Event()
                self._queue.append(pending)
        if alone:
            group = [pending]
        elif not self._await_lead(pending):
            return
        else:
            with self._lock:
                self._queue.remove(pending)  # queued before it came to lead
                group = [pending, *self._queue[: self._limit - 1]]
                del self._queue[: self._limit - 1]
                for member in group:
                    member.state = _TAKEN
        try:
            send(group)
        finally:
            self.done(group, pending)

    def _await_lead(self, pending: _Pending) -> bool:
        """Wait until ``pending`` was sent (``False``) or is to send a group (``True``)."""
        woken = pending.woken
        assert woken is not None  # noqa: S101  (made when it queued)
        while True:
            signaled = woken.wait(self._patience)
            with self._lock:
                if pending.state == _LEADING:
                    return True
                if pending.state == _TAKEN:
                    break
                if not signaled and self._flying < self._lanes:
                    self._flying += 1  # the groups in flight are stuck: one more lane
                    return True
        woken.wait()
        return False


def _lacks_update(change: Change) -> bool:
    """Whether ``change`` changes a job yet has no update to append (it is always refused).

    A change that keeps its record has its update (made from the record when
    read), so only a change made with its values is asked for it.
    """
    return change.expected_etag is not None and change.record is None and change.update is None


def _record_of(update: JobUpdate, event: JobEvent) -> ChangeRecord:
    """The record of a change made with its values: its ``update``, its ``event``'s id and kind.

    The update row and the feed entry are written from the update (the feed
    entry copies the update row), as they were before changes kept records.
    """
    return (  # type: ignore[return-value]  # a change's event: never a JobStarted
        type(event),
        event.event_id,
        update.job_id,
        event.service,
        event.entity,
        event.type,
        update.status,
        update.etag,
        update.at,
        update.update_id,
        update.display_name,
        update.description,
        update.state_update,
        update.actor,
    )


def _taken(err: pg_errors.UniqueViolation, change: Change) -> JobledgerError | None:
    """The ledger's name for a unique violation in the save of ``change``, if it has one.

    In pipeline mode the violation surfaces at the next sync, not at the
    statement that caused it, so the table it names tells which insert it was:
    a start's job row, or the request record.
    """
    table = err.diag.table_name
    if table == "jobledger_jobs" and change.expected_etag is None:
        return JobAlreadyExistsError(change.job.id)
    if table == "jobledger_requests" and change.request is not None:
        return RequestIdConflictError(change.request.request_id)
    return None


def _default_transactions(conn: psycopg.Connection[Any]) -> bool:
    """Whether ``conn`` begins its transactions with no characteristics of its own.

    A statement sent in autocommit mode runs in a transaction with the server's
    defaults; one that must run with the connection's isolation level,
    read-only or deferrable setting is sent after the ``BEGIN`` that sets them.
    """
    return conn.isolation_level is None and conn.read_only is None and conn.deferrable is None


def _begin_statement(conn: psycopg.Connection[Any]) -> str:
    """The ``BEGIN`` that :meth:`psycopg.Connection.transaction` would send on ``conn``."""
    parts = ["BEGIN"]
    if conn.isolation_level is not None:
        level = psycopg.IsolationLevel(conn.isolation_level).name.replace("_", " ")
        parts.append(f"ISOLATION LEVEL {level}")
    if conn.read_only is not None:
        parts.append("READ ONLY" if conn.read_only else "READ WRITE")
    if conn.deferrable is not None:
        parts.append("DEFERRABLE" if conn.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


def _in_one_transaction(conn: psycopg.Connection[Any], send: Callable[[], _V]) -> _V:
    """Run ``send``'s statements in one transaction on ``conn``, in one round trip if it can.

    On an idle connection in autocommit mode, ``BEGIN`` (with the connection's
    transaction settings), the statements and ``COMMIT`` go in one pipeline;
    otherwise they go in pipeline mode inside :meth:`psycopg.Connection.transaction`.
    Either way a failed statement rolls the whole transaction back. Returns
    what ``send`` returns (the cursors of its statements).
    """
    if not (conn.autocommit and conn.pgconn.transaction_status == _IDLE and _PIPELINES):
        with conn.transaction():
            if not _PIPELINES:
                return send()
            with conn.pipeline():
                return send()
    try:
        with conn.pipeline() as pipeline:
            try:
                conn.execute(_begin_statement(conn), prepare=False)
                sent = send()
                conn.execute("COMMIT", prepare=False)
            except psycopg.Error:
                _settle(pipeline)
                raise
    except BaseException:
        _roll_back(conn)
        raise
    return sent


def _settle(pipeline: psycopg.Pipeline) -> None:
    """Sync ``pipeline`` after a failed statement, dropping the errors of what followed it.

    The statements sent after a failed one were skipped; their results only
    say so, and the failure itself is already on its way to the caller.
    """
    try:
        pipeline.sync()
    except psycopg.Error as err:
        logger.debug("statements after a failed one were skipped (%s)", err)


def _roll_back(conn: psycopg.Connection[Any]) -> None:
    """Roll back the transaction a failed write left open on ``conn``, if any."""
    if conn.pgconn.transaction_status == _IDLE:
        return
    try:
        conn.rollback()
    except psycopg.Error as err:
        # The write's own error is the one to report; the pool drops a broken connection.
        logger.warning("rolling back a failed save failed too (%s)", err)


def _connect_listener(
    conninfo: Callable[[], str], kwargs: Callable[[], dict[str, Any]], timeout: float
) -> psycopg.Connection[Any]:
    """A new connection, outside the pool, for the feed listener."""
    settings = {**kwargs(), "autocommit": True}
    settings.setdefault("connect_timeout", max(1, round(timeout)))
    return psycopg.Connection.connect(conninfo(), **settings)


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Set up each connection of the repository's own pool."""
    # Compare-and-set and the feed counter rely on READ COMMITTED re-reading a row
    # that another transaction changed, whatever the server's default level is.
    # At that default (PostgreSQL's own) a save is one statement in autocommit mode;
    # otherwise each save begins with BEGIN ISOLATION LEVEL READ COMMITTED (see
    # _write_change). The session's default is left alone: behind a pooler that
    # shares server connections, a SET would neither last nor stay ours.
    row = conn.execute("SHOW default_transaction_isolation").fetchone()
    if row is None or row[0] != "read committed":
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED


def _migrate(conn: psycopg.Connection[Any], schema: str | None, location: str) -> _Names:
    """Create or migrate the schema under an advisory lock; return its names.

    Raises:
        ForeignDatabaseError: the schema holds jobledger-named tables without a version.
        SchemaVersionError: the schema's version is newer than :data:`SCHEMA_VERSION`.
        SchemaUpgradeError: the schema's version is older and the role does not own its tables.
        StorageError: ``schema`` is ``None`` and the connection has no current schema.
    """
    with conn.transaction():
        if schema is None:
            row = conn.execute("SELECT current_schema()").fetchone()
            schema = None if row is None else row[0]
            if schema is None:
                msg = "the connection has no current schema: pass schema= or set search_path"
                raise StorageError(location, msg)
        names = _Names(schema)
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (names.lock_key,))
        version = _installed_version(conn, names, location)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(location, version, SCHEMA_VERSION)
        if version == SCHEMA_VERSION:
            _add_start_index(conn, names)
            return names
        if version == 0:
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL("CREATE TABLE {} (name text PRIMARY KEY, value text NOT NULL)").format(
                    names.table("meta")
                )
            )
        if version > 0:
            # An older schema may predate the tables version 1 gained later.
            _upgradable(conn, names, version, location)
            _rename_feed(conn, names, version)
            _add_start_index(conn, names)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target](names):
                conn.execute(statement)
        # A schema of version 1 made before the tables added on opening lacks them still.
        _add_start_index(conn, names)
        # No parameters: a % in the schema's name would read as a placeholder.
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, value) VALUES ('schema_version', {}) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ).format(names.table("meta"), sql.Literal(str(SCHEMA_VERSION)))
        )
        logger.info("jobledger schema %s is now at version %d", schema, SCHEMA_VERSION)
    return names


def _upgradable(conn: psycopg.Connection[Any], names: _Names, version: int, location: str) -> None:
    """Check that the connection's role may upgrade the schema: it owns the jobs table.

    Raises:
        SchemaUpgradeError: another role owns the schema's tables.
    """
    row = conn.execute(
        "SELECT pg_has_role(tableowner, 'USAGE') FROM pg_tables "
        "WHERE schemaname = %s AND tablename = 'jobledger_jobs'",
        (names.schema,),
    ).fetchone()
    if row is not None and not row[0]:
        raise SchemaUpgradeError(location, version, SCHEMA_VERSION)


def _rename_feed(conn: psycopg.Connection[Any], names: _Names, version: int) -> None:
    """Part of schema step 4: the feed table of a schema of ``version`` 1 to 3 takes its new name.

    A process of version 3 still running when a newer one upgrades the schema
    would read only the feed table, which keeps the starts' entries and no
    longer the changes' (see :func:`_updates_in_the_feed`), and so skip every
    change event without a word (a relay or a durable subscriber would
    checkpoint past them). Under the new name, every statement such a process
    sends on the feed fails instead (its prepared statements too: PostgreSQL
    looks names up again when a table is altered). The rename comes before
    the other steps, so that every step names the table alike.
    """
    if version >= _FEED_RENAMED_AT:
        return
    conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(names.schema, _VERSION_3_FEED),
            sql.Identifier(f"jobledger_{_TABLES['feed']}"),
        )
    )


def _add_start_index(conn: psycopg.Connection[Any], names: _Names) -> None:
    """Give a schema made before them the start-record index and the parked table (once)."""
    present = conn.execute(
        "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'jobledger_feed_starts'",
        (names.schema,),
    ).fetchone()
    if present is None:
        conn.execute(sql.SQL(_START_INDEX).format(**names.mapping()))
    for table, create in (
        ("jobledger_parked", _PARKED_TABLE),
        ("jobledger_consumers", _CONSUMERS_TABLE),
        ("jobledger_holds", _HOLDS_TABLE),
    ):
        found = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
            (names.schema, table),
        ).fetchone()
        if found is None:
            conn.execute(sql.SQL(create).format(**names.mapping()))


def _installed_version(conn: psycopg.Connection[Any], names: _Names, location: str) -> int:
    """The schema version in ``names.schema``; 0 when it holds no jobledger table."""
    present = {
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
            (
                names.schema,
                [_VERSION_3_FEED, *(f"jobledger_{table}" for table in _TABLES.values())],
            ),
        )
    }
    if not present:
        return 0
    if "jobledger_meta" not in present:
        msg = (
            f"not a jobledger schema: it holds tables named like jobledger's "
            f"({', '.join(sorted(present))}) but no schema version; nothing was changed"
        )
        raise ForeignDatabaseError(location, msg)
    row = conn.execute(
        sql.SQL("SELECT value FROM {} WHERE name = 'schema_version'").format(names.table("meta"))
    ).fetchone()
    value = None if row is None else row[0]
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    msg = f"not a jobledger schema: its schema version is {value!r}; nothing was changed"
    raise ForeignDatabaseError(location, msg)


class _FeedListener:
    """A thread that LISTENs on the feed's channel and tells waiters how far the feed got."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        head_query: str,
        location: str,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._head_query = head_query
        self._location = location
        self._changed = threading.Condition()
        self._head = 0  # the highest position known to be committed
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Set while the thread listens (tests wait for it before they write).
        self.listening = threading.Event()

    def wait(self, after: int, timeout: float) -> bool:
        with self._changed:
            if not self._closed and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name=f"jobledger-listen-{self._channel}", daemon=True
                )
                self._thread.start()
            self._changed.wait_for(lambda: self._head > after or self._closed, max(timeout, 0.0))
            return self._head > after

    def stop(self) -> None:
        """Tell the thread to stop, without waiting for it."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the thread and wait until it has closed its connection."""
        self.stop()
        with self._changed:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            # It stops within one tick, unless it is still connecting: then it
            # is left to notice the flag when the connection attempt ends.
            thread.join(4 * _LISTEN_TICK_SECONDS)

    def _advance(self, position: int) -> None:
        with self._changed:
            if position > self._head:
                self._head = position
                self._changed.notify_all()

    def _on_notify(self, note: psycopg.Notify) -> None:
        if note.channel != self._channel:
            return
        try:
            position = int(note.payload)
        except ValueError:
            return
        self._advance(position)

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    # Commits made before LISTEN took effect sent no notification to us.
                    row = conn.execute(self._head_query, ()).fetchone()
                    self._advance(0 if row is None else int(row[0]))
                    self.listening.set()
                    failures = 0
                    while not self._closed:
                        # Notifications that came during the query above come first.
                        for note in conn.notifies(timeout=_LISTEN_TICK_SECONDS):
                            self._on_notify(note)
            except psycopg.Error as err:
                self.listening.clear()
                failures += 1
                delay = min(_LISTEN_MAX_BACKOFF_SECONDS, 0.1 * 2 ** min(failures, 10))
                logger.warning(
                    "%s: listening for feed notifications failed (%s); retrying in %.1f s",
                    self._location,
                    err,
                    delay,
                )
                with self._changed:
                    self._changed.wait_for(lambda: self._closed, delay)
        self.listening.clear()
