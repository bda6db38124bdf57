"""Each error the PostgreSQL driver raises, for real, reaches the caller as jobledger's error."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from jobledger import (
    ForeignDatabaseError,
    JobAlreadyExistsError,
    JobNotFoundError,
    JobQuery,
    Jobs,
    Limits,
    RequestIdConflictError,
    SchemaVersionError,
    StartJob,
    StorageConfigurationError,
    StorageError,
    StorageTimeoutError,
    StorageUnavailableError,
)
from jobledger._adapters.postgres import SAVE_ATTEMPTS
from jobledger._core.decide import decide
from jobledger.postgres import SCHEMA_VERSION, PostgresRepository

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import Change

pytestmark = pytest.mark.postgres

#: How long a test waits for something that should happen at once before it gives up.
PATIENCE = 30.0


def _table(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, f"jobledger_{name}")


def _pool(conninfo: str, configure: Callable[[psycopg.Connection[Any]], None]) -> ConnectionPool:
    """An open pool of one's own, whose connections ``configure`` sets up."""
    pool: ConnectionPool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True},
        configure=configure,
        open=False,
    )
    pool.open(wait=True)
    return pool


def _wait_until_a_session_waits(conninfo: str, schema: str) -> None:
    """Return once some session waits for a lock in a statement on ``schema``'s tables."""
    deadline = time.monotonic() + PATIENCE
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND strpos(query, %s) > 0",
                (f'"{schema}".',),
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            if time.monotonic() > deadline:
                pytest.fail("no session started waiting for the lock")
            time.sleep(0.01)


class TestUniqueViolations:
    """Unique violations name the ledger's conflict: a taken job id or request id."""

    def test_a_taken_job_id_is_job_already_exists(self, repository: PostgresRepository) -> None:
        """A second start with the same job id raises JobAlreadyExistsError from UniqueViolation."""
        jobs = Jobs(repository)
        jobs.start(service="hr", entity="employee", type="sync", job_id="job-1")

        with pytest.raises(JobAlreadyExistsError) as raised:
            jobs.start(service="hr", entity="employee", type="sync", job_id="job-1")

        assert isinstance(raised.value.__cause__, pg_errors.UniqueViolation)
        assert 1 == repository.feed_head()

    def test_a_taken_request_id_is_a_request_id_conflict(
        self, repository: PostgresRepository
    ) -> None:
        """A save whose request id is taken raises RequestIdConflictError from UniqueViolation."""
        repository.save(_start("job-1", request_id="request-1"))

        with pytest.raises(RequestIdConflictError) as raised:
            repository.save(_start("job-2", request_id="request-1"))

        assert isinstance(raised.value.__cause__, pg_errors.UniqueViolation)
        assert 1 == repository.feed_head()
        with pytest.raises(JobNotFoundError):
            repository.get("job-2")


def _start(job_id: str, *, request_id: str) -> Change:
    """The change that starts ``job_id`` with ``request_id``."""
    ids = iter(f"{job_id}-{n}" for n in range(10))
    return decide(
        None,
        StartJob(
            service="hr", entity="employee", type="sync", job_id=job_id, request_id=request_id
        ),
        now=datetime(2024, 1, 1, tzinfo=UTC),
        new_id=lambda: next(ids),
        limits=Limits(),
    )


class TestCollisions:
    """Serialization failures and deadlocks roll the save back; it is tried again."""

    def test_a_real_serialization_failure_is_retried_and_the_save_succeeds(
        self,
        postgres_conninfo: str,
        schema: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Under SERIALIZABLE, a save whose counter row changed under it is retried, once."""

        def serializable(conn: psycopg.Connection[Any]) -> None:
            conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE

        caplog.set_level(logging.DEBUG, logger="jobledger._adapters.postgres")
        with (
            _pool(postgres_conninfo, serializable) as pool,
            PostgresRepository(pool=pool, schema=schema) as repository,
        ):
            jobs = Jobs(repository)
            jobs.start(service="hr", entity="employee", type="first")
            saved: list[int] = []
            with psycopg.connect(postgres_conninfo) as other:
                # A new version of the counter row, same value: no gap, but a conflict.
                other.execute(
                    sql.SQL("UPDATE {} SET last = last").format(_table(schema, "feed_counter"))
                )
                writer = threading.Thread(
                    target=lambda: saved.append(
                        jobs.start(service="hr", entity="employee", type="second").version
                    )
                )
                writer.start()
                _wait_until_a_session_waits(postgres_conninfo, schema)
                other.commit()
                writer.join(PATIENCE)
            retries = [r for r in caplog.records if "trying again" in r.getMessage()]

            assert [1] == saved
            assert 1 == len(retries)
            assert "could not serialize" in retries[0].getMessage()
            assert [(1, "first"), (2, "second")] == [
                (entry.position, entry.event.type) for entry in repository.read_feed()
            ]

    def test_a_deadlock_is_retried_and_the_save_succeeds(
        self, repository: PostgresRepository, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A save that PostgreSQL aborts as a deadlock victim is rolled back and tried again."""
        write = repository._write_change
        attempts: list[int] = []

        def deadlock_once(conn: psycopg.Connection[Any], change: Change) -> int:
            attempts.append(1)
            if len(attempts) == 1:
                conn.execute("SELECT 1")  # the transaction did work before it was aborted
                raise pg_errors.DeadlockDetected("deadlock detected")
            return write(conn, change)

        monkeypatch.setattr(repository, "_write_change", deadlock_once)
        job = Jobs(repository).start(service="hr", entity="employee", type="sync")

        assert (2, 1) == (len(attempts), repository.feed_head())
        assert job == repository.get(job.id)

    def test_collisions_on_every_attempt_raise_a_storage_error(
        self, repository: PostgresRepository, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When every attempt collides, the save gives up with a StorageError, writing nothing."""
        attempts: list[int] = []

        def always_collide(_conn: psycopg.Connection[Any], _change: Change) -> int:
            attempts.append(1)
            raise pg_errors.SerializationFailure("could not serialize access")

        monkeypatch.setattr(repository, "_write_change", always_collide)

        with pytest.raises(StorageError) as raised:
            Jobs(repository).start(service="hr", entity="employee", type="sync")

        assert SAVE_ATTEMPTS == len(attempts)
        assert isinstance(raised.value.__cause__, pg_errors.SerializationFailure)
        assert 0 == repository.feed_head()


class TestTimeoutsAndConnections:
    """Lock timeouts and lost connections raise storage errors a caller can act on."""

    def test_a_lock_timeout_is_a_storage_timeout(self, postgres_conninfo: str, schema: str) -> None:
        """A save that waits past lock_timeout for a job row raises StorageTimeoutError."""

        def impatient(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SET lock_timeout = '50ms'")

        with (
            _pool(postgres_conninfo, impatient) as pool,
            PostgresRepository(pool=pool, schema=schema) as repository,
        ):
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="employee", type="sync", job_id="job-1")
            with psycopg.connect(postgres_conninfo) as other:
                other.execute(
                    sql.SQL("SELECT 1 FROM {} WHERE id = 'job-1' FOR UPDATE").format(
                        _table(schema, "jobs")
                    )
                )
                with pytest.raises(StorageTimeoutError) as raised:
                    jobs.update(job.id, etag=job.etag, status="busy")

            assert isinstance(raised.value.__cause__, pg_errors.LockNotAvailable)
            assert job == repository.get(job.id)

    def test_an_unreachable_server_is_storage_unavailable(self) -> None:
        """Opening a repository on a port where no server listens raises StorageUnavailableError."""
        with pytest.raises(StorageUnavailableError) as raised:
            PostgresRepository("postgresql://nobody:s3cret@127.0.0.1:1/nothing", timeout=0.5)

        assert "PostgreSQL database 'nothing' on 127.0.0.1:1" in raised.value.location
        assert "s3cret" not in str(raised.value)

    @pytest.mark.parametrize(
        ("part", "replacement"),
        [("/jobledger_test", "/no_such_database"), ("postgres@", "no_such_role:s3cret@")],
        ids=["unknown-database", "unknown-role"],
    )
    def test_settings_the_server_refuses_are_a_configuration_error_at_once(
        self, postgres_conninfo: str, part: str, replacement: str
    ) -> None:
        """Settings the server refuses raise StorageConfigurationError at once, not on timeout."""
        conninfo = postgres_conninfo.replace(part, replacement)
        assert conninfo != postgres_conninfo
        began = time.monotonic()
        with pytest.raises(StorageConfigurationError) as raised:
            PostgresRepository(conninfo, timeout=60)

        assert time.monotonic() - began < 30  # far under the 60 s the pool would wait
        assert not isinstance(raised.value, StorageUnavailableError)
        assert "does not exist" in str(raised.value)
        assert "s3cret" not in str(raised.value)

    def test_a_malformed_conninfo_is_a_configuration_error(self) -> None:
        """A connection string that does not parse raises StorageConfigurationError."""
        with pytest.raises(StorageConfigurationError) as raised:
            PostgresRepository("host=127.0.0.1 password", timeout=60)

        assert "the connection string is malformed" in str(raised.value)

    def test_a_schema_name_with_percent_signs_works(self, postgres_conninfo: str) -> None:
        """A schema named with %, %s and %(x)s keeps jobs, its feed and checkpoints."""
        name = "jl_pct%s_%(x)s_%%_" + uuid.uuid4().hex[:8]
        try:
            with PostgresRepository(postgres_conninfo, schema=name) as repository:
                jobs = Jobs(repository)
                job = jobs.start(service="hr", entity="employee", type="sync")
                job = jobs.update(job.id, etag=job.etag, status="exporting")
                repository.save_checkpoint("audit", 2)
                seen = (
                    job.status,
                    [entry.position for entry in repository.read_feed()],
                    repository.feed_head(),
                    repository.load_checkpoint("audit"),
                    len(repository.find(JobQuery()).jobs),
                )
            with PostgresRepository(postgres_conninfo, schema=name) as reopened:
                again = reopened.get(job.id).status
        finally:
            with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )
        assert ("exporting", [1, 2], 2, 2, 1) == seen
        assert "exporting" == again

    def test_a_connection_killed_by_the_server_is_storage_unavailable_then_replaced(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A pooled connection the server terminated raises once; the next call reconnects."""
        with PostgresRepository(
            postgres_conninfo, schema=schema, min_size=1, max_size=1
        ) as repository:
            with repository.pool.connection() as conn:
                pid = conn.info.backend_pid
            with psycopg.connect(postgres_conninfo, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))

            with pytest.raises(StorageUnavailableError):
                repository.feed_head()
            assert 0 == repository.feed_head()

    def test_the_kept_connection_killed_by_the_server_is_storage_unavailable_then_replaced(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A save on the kept connection the server terminated raises; later saves reconnect."""
        name = f"jl-kept-{uuid.uuid4().hex[:8]}"
        named = make_conninfo(postgres_conninfo, application_name=name)
        with PostgresRepository(named, schema=schema, min_size=1, max_size=2) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="employee", type="sync")
            with psycopg.connect(postgres_conninfo, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                ).fetchone()

            with pytest.raises(StorageUnavailableError):
                jobs.update(job.id, etag=job.etag, status="exporting")
            # The pool may still hold the other connection it had, killed as well.
            failures = 0
            while failures <= 1:
                try:
                    job = jobs.update(job.id, etag=job.etag, status="exporting")
                    break
                except StorageUnavailableError:
                    failures += 1
        assert killed is not None
        assert killed[0] >= 1
        assert "exporting" == job.status

    def test_a_closed_repository_raises_storage_error(self, repository: PostgresRepository) -> None:
        """Every call on a closed repository raises StorageError saying it is closed."""
        repository.close()

        with pytest.raises(StorageError, match="closed"):
            repository.get("job-1")


class TestSchemaChecks:
    """A schema that is not jobledger's, or is newer, is refused and left untouched."""

    def test_a_schema_with_foreign_tables_of_our_names_is_refused(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Tables named like jobledger's without a schema version raise ForeignDatabaseError."""
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(_table(schema, "jobs")))

            with pytest.raises(ForeignDatabaseError):
                PostgresRepository(postgres_conninfo, schema=schema)

            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
        assert [("jobledger_jobs",)] == tables

    @pytest.mark.usefixtures("repository")
    def test_a_newer_schema_version_is_refused(self, postgres_conninfo: str, schema: str) -> None:
        """A schema whose version is newer than this jobledger's raises SchemaVersionError."""
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET value = '99' WHERE name = 'schema_version'").format(
                    _table(schema, "meta")
                )
            )

        with pytest.raises(SchemaVersionError) as raised:
            PostgresRepository(postgres_conninfo, schema=schema)

        assert (99, SCHEMA_VERSION) == (raised.value.found, raised.value.supported)

    @pytest.mark.usefixtures("repository")
    def test_an_unreadable_schema_version_is_refused(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A schema version that is not a number raises ForeignDatabaseError."""
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET value = 'x' WHERE name = 'schema_version'").format(
                    _table(schema, "meta")
                )
            )

        with pytest.raises(ForeignDatabaseError, match="'x'"):
            PostgresRepository(postgres_conninfo, schema=schema)

    def test_a_row_jobledger_cannot_read_is_a_storage_error(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A hand-edited row that no longer decodes raises StorageError, not a decoding error."""
        job = Jobs(repository).start(service="hr", entity="employee", type="sync")
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET state_exact = '[not json' WHERE id = %s").format(
                    _table(schema, "jobs")
                ),
                (job.id,),
            )

        with pytest.raises(StorageError, match="cannot read"):
            repository.get(job.id)
        with pytest.raises(JobNotFoundError):
            repository.get("no-such-job")
