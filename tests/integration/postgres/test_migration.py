"""Schema migrations of the PostgreSQL repository: an older schema is brought up to date.

A "version 1" or "version 3" schema is made by undoing the later steps on a
current one (step 4's change entries moved back from the update rows into the
feed table and the table given its version 3 name, step 2's columns dropped,
step 3's foreign key and table options put back), since the adapter writes
the current version's rows only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from jobledger import Jobs, ParkedEvent, RequestIdConflictError, SchemaUpgradeError
from jobledger.postgres import SCHEMA_VERSION, PostgresRepository

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jobledger import JobEvent, JobUpdate

pytestmark = pytest.mark.postgres


def _table(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, f"jobledger_{name}")


# What version 3 wrote for a change: a feed row repeating its update row and its
# job's service, entity and type, after the update row itself.
_VERSION_3_CHANGE_ENTRIES = """INSERT INTO {feed} (position, event_id, kind, job_id, service,
    entity, type, status, etag, version, at, update_id, display_name, description, input, state,
    state_update, actor, input_exact, state_exact, state_update_exact)
SELECT u.position, u.event_id, CASE u.update_type WHEN 0 THEN 'updated' WHEN 1 THEN 'completed'
    WHEN 2 THEN 'failed' WHEN 3 THEN 'canceled' END, u.job_id, j.service, j.entity, j.type,
    u.status, u.etag, u.update_id + 1, u.at, u.update_id, u.display_name, u.description, NULL,
    NULL, u.state_update, u.actor, NULL, NULL, u.state_update_exact
FROM {updates} AS u JOIN {jobs} AS j ON j.id = u.job_id"""


def _as_version_3(conninfo: str, schema: str) -> None:
    """Turn the schema back into version 3: every change entry a feed row, as update rows were."""
    tables = {name: _table(schema, name) for name in ("updates", "jobs", "meta")}
    tables["feed"] = _table(schema, "feed_entries")
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute(sql.SQL(_VERSION_3_CHANGE_ENTRIES).format(**tables))
        conn.execute(sql.SQL("ALTER TABLE {feed} RENAME TO jobledger_feed").format(**tables))
        conn.execute(
            sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, "jobledger_updates_by_position"))
        )
        conn.execute(
            sql.SQL("ALTER TABLE {updates} DROP COLUMN position, DROP COLUMN event_id").format(
                **tables
            )
        )
        conn.execute(
            sql.SQL("UPDATE {meta} SET value = '3' WHERE name = 'schema_version'").format(**tables)
        )


def _as_version_1(conninfo: str, schema: str) -> None:
    """Turn the schema back into version 1: no actor columns, the update rows' foreign key."""
    _as_version_3(conninfo, schema)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN started_by").format(_table(schema, "jobs"))
        )
        for name in ("updates", "feed"):
            conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN actor").format(_table(schema, name)))
        # Request records of version 1 keep a job document without the key.
        conn.execute(
            sql.SQL(
                "UPDATE {} SET job = job - 'started_by', "
                "job_exact = (job_exact::jsonb - 'started_by')::text"
            ).format(_table(schema, "requests"))
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT jobledger_updates_job_id_fkey "
                "FOREIGN KEY (job_id) REFERENCES {} (id)"
            ).format(_table(schema, "updates"), _table(schema, "jobs"))
        )
        conn.execute(sql.SQL("ALTER TABLE {} RESET (fillfactor)").format(_table(schema, "jobs")))
        conn.execute(
            sql.SQL("UPDATE {} SET value = '1' WHERE name = 'schema_version'").format(
                _table(schema, "meta")
            )
        )


@pytest.fixture
def reader(postgres_conninfo: str) -> Iterator[str]:
    """A new role that may log in, and nothing else (dropped at the end)."""
    role = f"jl_reader_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _grant_reads(conninfo: str, schema: str, reader: str) -> None:
    """Let the role ``reader`` read (only) every table of ``schema``."""
    role = sql.Identifier(reader)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), role
            )
        )


def _version(conninfo: str, schema: str) -> str:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT value FROM {} WHERE name = 'schema_version'").format(
                _table(schema, "meta")
            )
        ).fetchone()
    assert row is not None
    return str(row[0])


class TestActorMigration:
    """Step 2 adds who acted; a version 1 schema is migrated when opened."""

    def test_a_version_1_schema_is_migrated_and_its_rows_have_no_actor(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Jobs, updates, events and request records written at version 1 read actor None."""
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="e", type="t", request_id="r-1")
            job = jobs.update(job.id, etag=job.etag, status="exporting")
        _as_version_1(postgres_conninfo, schema)
        assert "1" == _version(postgres_conninfo, schema)

        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            jobs = Jobs(repository)
            upgraded = jobs.get(job.id)
            old_actors = [update.actor for update in jobs.updates(job.id)]
            events = [entry.event.actor for entry in repository.read_feed()]
            retried = jobs.start(service="hr", entity="e", type="t", request_id="r-1")
            jobs.cancel(job.id, etag=job.etag, actor="alice")
            actors = [update.actor for update in jobs.updates(job.id)]

        assert str(SCHEMA_VERSION) == _version(postgres_conninfo, schema)
        assert (None, [None], [None, None]) == (upgraded.started_by, old_actors, events)
        assert (job.id, None) == (retried.id, retried.started_by)
        assert [None, "alice"] == actors

    def test_a_request_of_version_1_retried_naming_an_actor_is_answered(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A version 1 request record answers its retry with an actor; another command conflicts."""
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            job = Jobs(repository).start(service="hr", entity="e", type="t", request_id="r-1")
        _as_version_1(postgres_conninfo, schema)

        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            jobs = Jobs(repository)
            retried = jobs.start(service="hr", entity="e", type="t", request_id="r-1", actor="a")
            with pytest.raises(RequestIdConflictError):
                jobs.start(service="hr", entity="e", type="u", request_id="r-1", actor="a")
            head = repository.feed_head()

        assert (job.id, job.etag, 1) == (retried.id, retried.etag, head)

    def test_a_version_1_schema_opened_by_a_reader_raises_schema_upgrade_error(
        self, postgres_conninfo: str, schema: str, reader: str
    ) -> None:
        """A role that only reads a version 1 schema gets SchemaUpgradeError; nothing changes."""
        PostgresRepository(postgres_conninfo, schema=schema).close()
        _as_version_1(postgres_conninfo, schema)
        _grant_reads(postgres_conninfo, schema, reader)

        with pytest.raises(SchemaUpgradeError) as raised:
            PostgresRepository(make_conninfo(postgres_conninfo, user=reader), schema=schema)

        assert (1, SCHEMA_VERSION) == (raised.value.found, raised.value.supported)
        assert "as the owner of the schema's tables" in str(raised.value)
        assert "1" == _version(postgres_conninfo, schema)

    def test_a_migrated_schema_keeps_actors_of_new_changes(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """After the migration, a start's and a change's actors are stored and read back."""
        PostgresRepository(postgres_conninfo, schema=schema).close()
        _as_version_1(postgres_conninfo, schema)

        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="e", type="t", actor="svc")
            jobs.cancel(job.id, etag=job.etag, actor="alice")
            read = (
                jobs.get(job.id).started_by,
                [update.actor for update in jobs.updates(job.id)],
            )

        assert ("svc", ["alice"]) == read


def _catalog(conninfo: str, schema: str) -> tuple[str, list[str], list[str] | None]:
    """The schema's version, its update rows' foreign keys and its jobs table's options."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        version = conn.execute(
            sql.SQL("SELECT value FROM {}.jobledger_meta WHERE name = 'schema_version'").format(
                sql.Identifier(schema)
            )
        ).fetchone()
        keys = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass",
            (sql.Identifier(schema, "jobledger_updates").as_string(conn),),
        ).fetchall()
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
            (sql.Identifier(schema, "jobledger_jobs").as_string(conn),),
        ).fetchone()
    assert version is not None
    assert options is not None
    return str(version[0]), [str(row[0]) for row in keys], options[0]


def _contents(
    repository: PostgresRepository, job_ids: list[str]
) -> tuple[Any, list[tuple[int, JobEvent]], dict[str, tuple[JobUpdate, ...]], int]:
    """Everything a repository holds that a migration must keep."""
    return (
        [repository.get(job_id) for job_id in job_ids],
        [(entry.position, entry.event) for entry in repository.read_feed()],
        {job_id: tuple(repository.updates(job_id)) for job_id in job_ids},
        repository.load_checkpoint("reader"),
    )


class TestLighterSaves:
    """The lighter-saves step: the update rows' foreign key goes, the jobs table leaves room."""

    def test_a_version_1_schema_migrates_with_its_jobs_updates_and_feed_positions(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Jobs, updates, requests, checkpoints and feed positions survive; new saves go on."""
        with PostgresRepository(postgres_conninfo, schema=schema) as old:
            jobs = Jobs(old)
            first = jobs.start(service="m", entity="e", type="t", state={"n": -0.0})
            second = jobs.start(service="m", entity="e", type="t", request_id="req-1")
            first = jobs.update(first.id, etag=first.etag, state_update={"n": 1e300})
            jobs.complete(second.id, etag=second.etag, state_update={"done": True})
            old.save_checkpoint("reader", 3)
            before = _contents(old, [first.id, second.id])
        _as_version_1(postgres_conninfo, schema)
        catalog_before = _catalog(postgres_conninfo, schema)

        with PostgresRepository(postgres_conninfo, schema=schema) as migrated:
            after = _contents(migrated, [first.id, second.id])
            request = migrated.find_request("req-1")
            later = Jobs(migrated).update(first.id, etag=first.etag, status="later")
            positions = [entry.position for entry in migrated.read_feed()]
        catalog_after = _catalog(postgres_conninfo, schema)

        assert ("1", ["jobledger_updates_job_id_fkey"], None) == catalog_before
        assert (str(SCHEMA_VERSION), [], ["fillfactor=80"]) == catalog_after
        assert before == after
        assert request is not None
        assert second.id == request.job.id
        assert ("later", [1, 2, 3, 4, 5]) == (later.status, positions)

    def test_a_new_schema_is_made_at_the_current_version_without_the_foreign_key(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A schema made from nothing runs every step: it ends where a migrated one does."""
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            Jobs(repository).start(service="m", entity="e", type="t")

        assert (str(SCHEMA_VERSION), [], ["fillfactor=80"]) == _catalog(postgres_conninfo, schema)


class TestTablesAddedOnOpening:
    """A schema made before the start-record index and the later tables gains them when opened."""

    def test_the_missing_index_and_tables_are_created(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Opening a schema without the start index and the three later tables creates them."""
        later = ("parked", "consumers", "holds")
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            Jobs(repository).start(service="hr", entity="e", type="t")
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, "jobledger_feed_starts"))
            )
            for name in later:
                conn.execute(sql.SQL("DROP TABLE {}").format(_table(schema, name)))

        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            parked = repository.parked_events("billing")
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
                )
            }
            index = conn.execute(
                "SELECT 1 FROM pg_indexes WHERE schemaname = %s "
                "AND indexname = 'jobledger_feed_starts'",
                (schema,),
            ).fetchone()

        assert () == tuple(parked)
        assert {f"jobledger_{name}" for name in later} <= tables
        assert (1,) == index


def _feed_table(conninfo: str, schema: str, name: str = "feed_entries") -> list[tuple[int, str]]:
    """The position and kind of each row of the feed table, in position order.

    The table is ``jobledger_feed`` up to version 3 (pass ``name="feed"``).
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("SELECT position, kind FROM {} ORDER BY position").format(_table(schema, name))
        ).fetchall()
    return [(int(position), str(kind)) for position, kind in rows]


class TestUpdatesInTheFeed:
    """Step 4: a change's update row is its feed entry; the feed table keeps the others."""

    def test_a_version_3_schema_migrates_with_its_feed_updates_and_purged_events(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Every event keeps its position, purged jobs' events stay; new saves go on after them."""
        with PostgresRepository(postgres_conninfo, schema=schema) as old:
            jobs = Jobs(old)
            first = jobs.start(service="m", entity="e", type="t", state={"n": -0.0})
            gone = jobs.start(service="m", entity="e", type="gone")
            jobs.complete(gone.id, etag=gone.etag, state_update={"n": 1e300})
            cut = datetime.now(UTC) + timedelta(seconds=1)
            purged = jobs.purge(finished_before=cut, type="gone")
            second = jobs.start(service="m", entity="e", type="t", request_id="req-1")
            first = jobs.update(first.id, etag=first.etag, state_update={"n": 1e300})
            jobs.cancel(second.id, etag=second.etag, request_id="req-2", actor="ops")
            fifth = old.read_feed(after=4, limit=1)[0]
            old.park(
                ParkedEvent(name="audit", position=5, event=fifth.event, error="boom", attempts=1)
            )
            before = _contents(old, [first.id, second.id])
            parked_before = old.parked_events("audit")
        _as_version_3(postgres_conninfo, schema)
        table_before = _feed_table(postgres_conninfo, schema, "feed")

        with PostgresRepository(postgres_conninfo, schema=schema) as migrated:
            after = _contents(migrated, [first.id, second.id])
            parked_after = migrated.parked_events("audit")
            request = migrated.find_request("req-2")
            later = Jobs(migrated).update(first.id, etag=first.etag, status="later")
            table_after = _feed_table(postgres_conninfo, schema)
            positions = [entry.position for entry in migrated.read_feed()]
            version = _version(postgres_conninfo, schema)

        assert 1 == purged
        assert [(1, "started"), (2, "started"), (3, "completed"), (4, "started")] == [
            (position, kind) for position, kind in table_before if position <= 4
        ]
        assert [(5, "updated"), (6, "canceled")] == table_before[4:]
        assert [(1, "started"), (2, "started"), (3, "completed"), (4, "started")] == table_after
        assert before == after
        assert parked_before == parked_after
        assert 5 == parked_after[0].position
        assert request is not None
        assert second.id == request.job.id
        assert ("later", [1, 2, 3, 4, 5, 6, 7]) == (later.status, positions)
        assert str(SCHEMA_VERSION) == version

    def test_a_purge_after_the_migration_keeps_the_jobs_change_events(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A purged job's update rows go, its change events move to the feed table and stay."""
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="m", entity="e", type="t")
            job = jobs.update(job.id, etag=job.etag, state_update={"n": -0.0}, actor="ops")
            jobs.fail(job.id, etag=job.etag)
            feed = list(repository.read_feed())
            table_before = _feed_table(postgres_conninfo, schema)
            cut = datetime.now(UTC) + timedelta(seconds=1)
            purged = jobs.purge(finished_before=cut)
            table_after = _feed_table(postgres_conninfo, schema)
            after = list(repository.read_feed())

        assert (1, [(1, "started")]) == (purged, table_before)
        assert [(1, "started"), (2, "updated"), (3, "failed")] == table_after
        assert feed == after


# Plans the server may choose for the step's join of update rows and feed entries.
_JOIN_PLANS = {
    "default": "",
    "nested loop": "-c enable_hashjoin=off -c enable_mergejoin=off",
    "merge join": "-c enable_hashjoin=off -c enable_nestloop=off",
}


class TestReusedIdMigration:
    """Step 4 on a feed holding the change entries of two lives of one job id."""

    @pytest.mark.parametrize("plan", list(_JOIN_PLANS))
    def test_a_purged_job_s_id_reused_keeps_both_lives_in_the_feed(
        self, postgres_conninfo: str, schema: str, plan: str
    ) -> None:
        """Each life's change entries keep their own positions, whatever join plan is chosen."""
        with PostgresRepository(postgres_conninfo, schema=schema) as old:
            jobs = Jobs(old)
            job = jobs.start(service="m", entity="e", type="t", job_id="X", state={"life": 1})
            job = jobs.update("X", etag=job.etag, status="first", state_update={"a": 1})
            jobs.complete("X", etag=job.etag)
            purged = jobs.purge(finished_before=datetime.now(UTC) + timedelta(seconds=1))
            job = jobs.start(service="m", entity="e", type="t", job_id="X", state={"life": 2})
            job = jobs.update("X", etag=job.etag, status="second", state_update={"b": 2})
            jobs.fail("X", etag=job.etag)
            before = _contents(old, ["X"])
        _as_version_3(postgres_conninfo, schema)
        table_before = _feed_table(postgres_conninfo, schema, "feed")

        conninfo = make_conninfo(postgres_conninfo, options=_JOIN_PLANS[plan] or None)
        with PostgresRepository(conninfo, schema=schema) as migrated:
            after = _contents(migrated, ["X"])
        table_after = _feed_table(postgres_conninfo, schema)

        assert 1 == purged
        assert [(1, "started"), (2, "updated"), (3, "completed"), (4, "started")] == table_after
        assert [*table_after, (5, "updated"), (6, "failed")] == table_before
        assert before == after


# What version 3 sent to read the feed (its columns, on the feed table alone).
_VERSION_3_READ = (
    "SELECT position, event_id, kind, job_id, status, etag FROM {} "
    "WHERE position > %s ORDER BY position LIMIT %s"
)


class TestOlderProcessesAfterTheUpgrade:
    """A version 3 process still running after the upgrade fails on the feed; it skips nothing."""

    def test_a_version_3_read_of_the_feed_fails_after_the_upgrade(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A version 3 feed read prepared before the upgrade raises instead of missing changes."""
        with PostgresRepository(postgres_conninfo, schema=schema) as old:
            jobs = Jobs(old)
            job = jobs.start(service="m", entity="e", type="t")
            jobs.update(job.id, etag=job.etag, status="changed")
        _as_version_3(postgres_conninfo, schema)
        read = sql.SQL(_VERSION_3_READ).format(_table(schema, "feed"))
        with psycopg.connect(postgres_conninfo, autocommit=True) as running:
            before = [(row[0], row[2]) for row in running.execute(read, (0, 10), prepare=True)]
            with PostgresRepository(postgres_conninfo, schema=schema) as upgraded:
                Jobs(upgraded).start(service="m", entity="e", type="t")
            with pytest.raises(psycopg.errors.UndefinedTable):
                running.execute(read, (0, 10), prepare=True)

        assert [(1, "started"), (2, "updated")] == before
