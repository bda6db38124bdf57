"""A schema an earlier jobledger wrote migrates to the current version with its data intact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from jobledger import Jobs
from jobledger._adapters import postgres as postgres_adapter
from jobledger.postgres import SCHEMA_VERSION, PostgresRepository

if TYPE_CHECKING:
    from jobledger import JobEvent, JobUpdate

pytestmark = pytest.mark.postgres


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
        self, postgres_conninfo: str, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Jobs, updates, requests, checkpoints and feed positions survive; new saves go on."""
        with monkeypatch.context() as patched:
            patched.setattr(postgres_adapter, "SCHEMA_VERSION", 1)
            with PostgresRepository(postgres_conninfo, schema=schema) as old:
                jobs = Jobs(old)
                first = jobs.start(service="m", entity="e", type="t", state={"n": -0.0})
                second = jobs.start(service="m", entity="e", type="t", request_id="req-1")
                first = jobs.update(first.id, etag=first.etag, state_update={"n": 1e300})
                jobs.complete(second.id, etag=second.etag, state_update={"done": True})
                old.save_checkpoint("reader", 3)
                before = _contents(old, [first.id, second.id])
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
