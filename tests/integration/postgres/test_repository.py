"""What PostgresRepository offers beyond the contract: schemas, pools, pickling, exact JSON."""

from __future__ import annotations

import gc
import json
import math
import os
import pickle
import random
import select
import signal
import struct
import threading
import time
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from jobledger import (
    ConcurrencyError,
    JobAlreadyExistsError,
    JobQuery,
    Jobs,
    StorageError,
    freeze,
)
from jobledger._adapters import postgres as postgres_adapter
from jobledger._adapters.postgres import _exact_text
from jobledger._adapters.rows import encode_json, find_clause
from jobledger.postgres import PostgresRepository

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from jobledger import Job

pytestmark = pytest.mark.postgres

#: How long a test waits for something that should happen at once before it gives up.
PATIENCE = 30.0


class TestSchemaOption:
    """Where the tables go, and what a schema name may be."""

    def test_a_reopened_schema_keeps_its_jobs(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A second repository on the same schema sees the jobs the first one saved."""
        job = Jobs(repository).start(service="hr", entity="employee", type="sync")

        with PostgresRepository(postgres_conninfo, schema=schema) as again:
            assert (job, 1) == (again.get(job.id), again.feed_head())

    def test_schemas_keep_separate_ledgers(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """Two schemas in one database hold two ledgers that share nothing."""
        Jobs(repository).start(service="hr", entity="employee", type="sync")

        with PostgresRepository(postgres_conninfo, schema=f"{schema}_other") as other:
            try:
                assert (0, (), 1) == (
                    other.feed_head(),
                    tuple(other.find(JobQuery()).jobs),
                    repository.feed_head(),
                )
            finally:
                other.close()
                with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(other.schema))
                    )

    def test_a_schema_name_with_quotes_and_sql_is_taken_literally(
        self, postgres_conninfo: str
    ) -> None:
        """A schema name with quotes, a semicolon and a comment marker names exactly that schema."""
        name = f'odd "schema"; DROP TABLE x; -- {uuid.uuid4().hex[:6]}'
        try:
            with PostgresRepository(postgres_conninfo, schema=name) as repository:
                Jobs(repository).start(service="hr", entity="employee", type="sync")
                assert (name, 1) == (repository.schema, repository.feed_head())
        finally:
            with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )

    def test_no_schema_means_the_connections_current_schema(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Without schema=, the tables go in the first existing schema of the search_path."""
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conninfo = make_conninfo(postgres_conninfo, options=f"-c search_path={schema}")

        with PostgresRepository(conninfo) as repository:
            assert schema == repository.schema

    def test_no_schema_and_no_current_schema_is_a_storage_error(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Without schema= and with no existing schema on the search_path, opening fails."""
        conninfo = make_conninfo(postgres_conninfo, options=f"-c search_path={schema}")

        with pytest.raises(StorageError, match="no current schema"):
            PostgresRepository(conninfo)

    @pytest.mark.parametrize("name", ["", "x" * 64, "é" * 32, "nul\x00"])
    def test_a_schema_name_postgresql_cannot_hold_is_refused(
        self, postgres_conninfo: str, name: str
    ) -> None:
        """An empty name, one over 63 bytes, or one with NUL raises ValueError at once."""
        with pytest.raises(ValueError, match="schema"):
            PostgresRepository(postgres_conninfo, schema=name)


class TestPools:
    """The repository's own pool, or one of the application's."""

    def test_a_pool_of_ones_own_is_used_and_left_open(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A repository over the application's pool uses it and leaves it open when closed."""
        with ConnectionPool(postgres_conninfo, min_size=1, max_size=2, open=False) as pool:
            with PostgresRepository(pool=pool, schema=schema) as repository:
                job = Jobs(repository).start(service="hr", entity="employee", type="sync")
                assert pool is repository.pool

            assert not pool.closed
            with PostgresRepository(pool=pool, schema=schema) as again:
                assert job == again.get(job.id)

    def test_a_repository_dropped_without_close_leaves_no_session_behind(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Once a listening repository is garbage, its pool and its listener disconnect."""
        repository = PostgresRepository(postgres_conninfo, schema=schema)
        repository.wait_for_feed(0, 0.0)
        repository.feed_head()  # the pooled connection's last statement names the schema
        listening = repository._listener.listening
        assert listening.wait(PATIENCE)
        sessions = _sessions_on(postgres_conninfo, schema)
        before = sessions()

        del repository
        gc.collect()

        deadline = time.monotonic() + PATIENCE
        while sessions() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (2, 0) == (before, sessions())

    def test_calls_of_one_thread_borrow_nothing_more_from_the_repositorys_own_pool(
        self, repository: PostgresRepository
    ) -> None:
        """Saves and reads one after another use the connection the repository keeps."""
        jobs = Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        before = repository.pool.get_stats().get("requests_num", 0)

        for done in range(1, 4):
            job = jobs.update(job.id, etag=job.etag, state_update={"done": done})
        repository.get(job.id)
        repository.read_feed()

        assert before == repository.pool.get_stats().get("requests_num", 0)

    def test_the_kept_connection_goes_back_to_the_pool_once_kept_long_enough(
        self, postgres_conninfo: str, schema: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past its keeping time, the kept connection is handed back and borrowed anew."""
        monkeypatch.setattr(postgres_adapter, "_KEPT_SECONDS", 0.0)
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="employee", type="sync")
            before = repository.pool.get_stats().get("requests_num", 0)

            for done in range(1, 4):
                job = jobs.update(job.id, etag=job.etag, state_update={"done": done})
            after = repository.pool.get_stats().get("requests_num", 0)

        assert before + 3 == after

    def test_a_pool_of_ones_own_gets_each_connection_back_after_each_call(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Over the application's pool, no connection stays out of the pool between calls."""
        with ConnectionPool(postgres_conninfo, min_size=2, max_size=2, open=False) as pool:
            pool.open(wait=True)
            with PostgresRepository(pool=pool, schema=schema) as repository:
                jobs = Jobs(repository)
                job = jobs.start(service="hr", entity="employee", type="sync")
                jobs.update(job.id, etag=job.etag, status="exporting")
                stats = pool.get_stats()

        assert (2, 2) == (stats.get("pool_size"), stats.get("pool_available"))

    def test_neither_conninfo_nor_pool_is_refused(self) -> None:
        """A repository needs a conninfo or a pool: ValueError without either."""
        with pytest.raises(ValueError, match="conninfo"):
            PostgresRepository()

    def test_both_conninfo_and_pool_are_refused(self, postgres_conninfo: str) -> None:
        """A repository takes a conninfo or a pool, not both: ValueError, nothing opened."""
        with (
            ConnectionPool(postgres_conninfo, min_size=1, open=False) as pool,
            pytest.raises(ValueError, match="either"),
        ):
            PostgresRepository(postgres_conninfo, pool=pool)

    def test_a_pickled_repository_reopens_the_same_schema(
        self, repository: PostgresRepository
    ) -> None:
        """Unpickling a repository opens a new one on the same schema with the same settings."""
        job = Jobs(repository).start(service="hr", entity="employee", type="sync")

        with pickle.loads(pickle.dumps(repository)) as copy:  # noqa: S301  (our own bytes)
            assert (repository.schema, job) == (copy.schema, copy.get(job.id))
            assert copy.pool is not repository.pool

    def test_a_repository_over_a_pool_of_ones_own_cannot_be_pickled(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Pickling a repository whose pool belongs to the application raises TypeError."""
        with (
            ConnectionPool(postgres_conninfo, min_size=1, open=False) as pool,
            PostgresRepository(pool=pool, schema=schema) as repository,
            pytest.raises(TypeError, match="pool"),
        ):
            pickle.dumps(repository)


class TestStorage:
    """How rows are kept: jsonb documents, exact text where jsonb would change a number."""

    def test_jsonb_holds_documents_and_exact_text_only_when_needed(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A state jsonb keeps exactly has no exact text; one with -0.0 or 1e+300 has it."""
        jobs = Jobs(repository)
        plain = jobs.start(service="hr", entity="e", type="t", state={"n": [1, 2.5]})
        signed = jobs.start(service="hr", entity="e", type="t", state={"n": -0.0})
        huge = jobs.start(service="hr", entity="e", type="t", state={"n": 1e300})

        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT id, jsonb_typeof(state -> 'n'), state_exact FROM {} ORDER BY id"
                ).format(sql.Identifier(schema, "jobledger_jobs"))
            ).fetchall()

        assert sorted(
            [
                (plain.id, "array", None),
                (signed.id, "number", '{"n":-0.0}'),
                (huge.id, "number", '{"n":1e+300}'),
            ]
        ) == sorted(rows)
        assert [-0.0, 1e300] == [
            repository.get(signed.id).state["n"],
            repository.get(huge.id).state["n"],
        ]
        assert "-0x0.0p+0" == float(repository.get(signed.id).state["n"]).hex()  # type: ignore[arg-type]

    def test_every_float_kept_only_in_jsonb_reads_back_bit_for_bit(
        self, postgres_conninfo: str
    ) -> None:
        """Whenever no exact text is kept, jsonb alone gives back the very same float."""
        chance = random.Random(7)  # noqa: S311  (a reproducible sample, not cryptography)
        floats = [0.0, -0.0, 1.0, -1.5, 2.0**53, 1e16, 1e-5, 1e-4, 5e-324, 1.7976931348623157e308]
        while len(floats) < 5000:
            value = struct.unpack("<d", chance.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isfinite(value):
                floats.append(value)
        texts = [encode_json(freeze([value], field="state")) for value in floats]
        plain = [text for text in texts if _exact_text(text) is None]
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT array_agg(t::jsonb::text ORDER BY n) FROM unnest(%s::text[]) "
                "WITH ORDINALITY AS u(t, n)",
                (plain,),
            ).fetchone()
        assert row is not None

        assert [json.loads(text)[0].hex() for text in plain] == [
            json.loads(text)[0].hex() for text in row[0]
        ]
        assert len(plain) > 0
        assert len(plain) < len(texts)

    def test_a_filter_with_no_values_lists_nothing(self, repository: PostgresRepository) -> None:
        """A filter given an empty collection matches no job, as in memory."""
        Jobs(repository).start(service="hr", entity="employee", type="sync")

        pages = [repository.find(JobQuery(service=[])), repository.find(JobQuery(phase=[]))]

        assert [((), None), ((), None)] == [(tuple(page.jobs), page.next_cursor) for page in pages]

    @pytest.mark.parametrize(
        ("query", "index"),
        [
            (JobQuery(), "jobledger_jobs_by_created"),
            (JobQuery(service="hr", limit=10), "jobledger_jobs_by_service"),
            (JobQuery(phase="active", limit=10), "jobledger_jobs_by_phase"),
        ],
    )
    def test_listings_are_served_by_an_index(
        self, repository: PostgresRepository, postgres_conninfo: str, query: JobQuery, index: str
    ) -> None:
        """A listing, filtered or not, can be answered from an index in newest-first order."""
        clause, params = find_clause(query, placeholder="%s")
        statement = repository._sql.select_job + sql.SQL(" " + clause)
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_sort = off")
            plan = conn.execute(sql.SQL("EXPLAIN ") + statement, params).fetchall()

        assert index in "\n".join(line for (line,) in plan)


def _sessions_on(conninfo: str, schema: str) -> Callable[[], int]:
    """How many other sessions last ran a statement on ``schema``'s tables."""

    def count() -> int:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND strpos(query, %s) > 0",
                (f'"{schema}".',),
            ).fetchone()
        return 0 if row is None else int(row[0])

    return count


class TestLockOrder:
    """A save that waits on another transaction's lock holds nothing other jobs' saves need."""

    def test_a_save_waiting_for_a_request_id_does_not_hold_up_other_jobs(
        self, postgres_conninfo: str, schema: str, repository: PostgresRepository
    ) -> None:
        """While a change waits on a request id another transaction is recording, others commit."""
        jobs = Jobs(repository)
        waiting = jobs.start(service="lock", entity="order", type="wait")
        other = jobs.start(service="lock", entity="order", type="other")
        outcomes: list[object] = []
        holder = psycopg.connect(postgres_conninfo)  # not autocommit: its insert stays open
        try:
            holder.execute(
                sql.SQL(
                    "INSERT INTO {}.jobledger_requests (request_id, fingerprint, job) "
                    "VALUES ('held', 'elsewhere', '{{}}')"
                ).format(sql.Identifier(schema))
            )
            waiter = threading.Thread(
                target=lambda: outcomes.append(
                    _outcome(
                        lambda: Jobs(repository).update(
                            waiting.id, etag=waiting.etag, status="waited", request_id="held"
                        )
                    )
                )
            )
            waiter.start()
            _wait_for_a_lock_wait(postgres_conninfo)
            passed = threading.Event()

            def change_the_other_job() -> None:
                jobs.update(other.id, etag=other.etag, status="on")
                passed.set()

            threading.Thread(target=change_the_other_job, daemon=True).start()

            assert passed.wait(PATIENCE), "a change to another job waited for the request id"
        finally:
            holder.rollback()
            holder.close()
        waiter.join(PATIENCE)
        assert ["waited"] == outcomes


def _outcome(call: Callable[[], Job]) -> object:
    """The status of the job ``call`` returns, or the error it raised."""
    try:
        return call().status
    except Exception as error:  # noqa: BLE001  (reported to the test, which compares it)
        return error


def _wait_for_a_lock_wait(conninfo: str) -> None:
    """Wait until some session of the server waits for a lock."""
    deadline = time.monotonic() + PATIENCE
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.01)
    pytest.fail("no session ever waited for the request id")


class TestSaveStatement:
    """On the repository's own pool a save is one statement, in autocommit mode if it can be."""

    def test_each_save_is_one_statement_and_no_begin_or_commit(
        self, postgres_conninfo: str, schema: str, tmp_path: Path
    ) -> None:
        """At the server's default level, a start and two changes send three statements alone."""
        with PostgresRepository(
            postgres_conninfo, schema=schema, min_size=1, max_size=1
        ) as repository:
            sent = _messages_of_three_saves(repository, tmp_path / "libpq.trace")

        assert 3 == sum("\tExecute\t" in line for line in sent), sent
        assert not [line for line in sent if '"BEGIN' in line or '"COMMIT"' in line]

    def test_saves_ask_for_read_committed_where_the_server_defaults_to_another_level(
        self, postgres_conninfo: str, schema: str, tmp_path: Path
    ) -> None:
        """Sessions that default to SERIALIZABLE save between BEGIN READ COMMITTED and COMMIT."""
        serializable = make_conninfo(
            postgres_conninfo, options="-c default_transaction_isolation=serializable"
        )
        with PostgresRepository(serializable, schema=schema, min_size=1, max_size=1) as repository:
            sent = _messages_of_three_saves(repository, tmp_path / "libpq.trace")
            with repository.pool.connection() as conn:
                row = conn.execute("SHOW default_transaction_isolation").fetchone()

        begins = [line for line in sent if "BEGIN" in line]
        assert 3 == len(begins), sent
        assert all("ISOLATION LEVEL READ COMMITTED" in line for line in begins), begins
        assert 3 == sum('"COMMIT"' in line for line in sent), sent
        assert ("serializable",) == row  # the session's default is left as it was

    def test_saves_on_the_kept_connection_after_a_refusal_and_an_error_get_their_own_positions(
        self, repository: PostgresRepository
    ) -> None:
        """Saves on one kept connection share a cursor: what one left never answers the next."""
        jobs = Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        session = _session(repository)

        with pytest.raises(ConcurrencyError):
            jobs.update(job.id, etag="stale", status="refused")
        with pytest.raises(JobAlreadyExistsError):
            jobs.start(service="hr", entity="employee", type="again", job_id=job.id)
        updated = jobs.update(job.id, etag=job.etag, status="exporting")
        other = jobs.start(service="hr", entity="employee", type="other")

        assert session == _session(repository)
        assert [(1, job.id, "started"), (2, job.id, "exporting"), (3, other.id, "started")] == [
            (entry.position, entry.event.job_id, entry.event.status)
            for entry in repository.read_feed()
        ]
        assert (2, "exporting") == (updated.version, repository.get(job.id).status)

    def test_saves_refused_again_and_again_leave_no_plans_on_the_server(
        self, repository: PostgresRepository
    ) -> None:
        """A start refused 60 times, before and after its statement is prepared, leaves one plan."""
        jobs = Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        for attempt in range(60):
            if attempt == 30:  # the statement is prepared after enough successful starts
                for _ in range(8):
                    jobs.start(service="hr", entity="employee", type="sync")
            with pytest.raises(JobAlreadyExistsError):
                jobs.start(
                    service="hr",
                    entity="employee",
                    type="again",
                    job_id=job.id,
                    request_id=f"again-{attempt}",
                )

        with repository._connection() as conn:  # the kept connection, which ran every save
            rows = conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()

        assert 1 >= sum("jobledger_jobs" in statement for (statement,) in rows), rows

    def test_connections_that_prepare_nothing_get_no_prepared_save(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Over a pool whose prepare_threshold is None (a transaction-mode PgBouncer's), none is."""
        with ConnectionPool(
            postgres_conninfo,
            min_size=1,
            max_size=1,
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=False,
        ) as pool:
            pool.open(wait=True)
            with PostgresRepository(pool=pool, schema=schema) as repository:
                jobs = Jobs(repository)
                job = jobs.start(service="hr", entity="employee", type="sync")
                for done in range(1, 8):
                    job = jobs.update(job.id, etag=job.etag, state_update={"done": done})
                with pool.connection() as conn:
                    rows = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()

        assert ([], 8) == (rows, job.version)


def _messages_of_three_saves(repository: PostgresRepository, trace: Path) -> list[str]:
    """The protocol messages the client sends for a start, an update and a completion."""
    jobs = Jobs(repository)
    with trace.open("w") as sink:
        with repository.pool.connection() as conn:
            conn.pgconn.trace(sink.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        job = jobs.start(service="hr", entity="employee", type="sync")
        job = jobs.update(job.id, etag=job.etag, state_update={"done": 1})
        job = jobs.complete(job.id, etag=job.etag)
        with repository.pool.connection() as conn:
            conn.pgconn.untrace()
    assert 3 == job.version
    return [line for line in trace.read_text().splitlines() if line.startswith("F")]


def _in_a_forked_child(action: Callable[[], str]) -> str:
    """What ``action`` returns in a forked child (its error's name if it raises)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: act, report, and leave at once (no parent's cleanup)
        try:
            try:
                reported = action()
            except Exception as err:  # noqa: BLE001  (reported to the parent, which asserts)
                reported = type(err).__name__
            os.write(write_end, reported.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], PATIENCE)
    if not ready:  # the child hangs: end it, so the failure does not hang the suite
        os.kill(pid, signal.SIGKILL)
    with os.fdopen(read_end) as pipe:
        reported = pipe.read() if ready else "hung"
    os.waitpid(pid, 0)
    return reported


class TestForks:
    """A forked child uses connections of its own, and leaves its parent's alone."""

    def test_a_forked_child_reads_and_saves_on_connections_of_its_own(
        self, repository: PostgresRepository
    ) -> None:
        """The child's calls succeed on sessions of its own; the parent's kept one goes on."""
        jobs = Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        parent_session = _session(repository)

        def child() -> str:
            sessions = {_session(repository) for _ in range(20)}
            read = [jobs.get(job.id).status for _ in range(20)]
            started = jobs.start(service="hr", entity="employee", type="child")
            repository.close()
            return f"{parent_session in sessions} {set(read)} {started.status}"

        reported = _in_a_forked_child(child)
        after = [jobs.get(job.id).status for _ in range(20)]
        jobs.update(job.id, etag=job.etag, status="after")
        kinds = [type(entry.event).__name__ for entry in repository.read_feed()]

        assert "False {'started'} started" == reported
        assert ["started"] * 20 == after
        assert parent_session == _session(repository)
        assert ["JobStarted", "JobStarted", "JobUpdated"] == kinds

    def test_a_forked_child_closing_the_repository_leaves_the_parents_sessions_open(
        self, repository: PostgresRepository
    ) -> None:
        """Closing in the child, before any call there, ends none of the parent's sessions."""
        jobs = Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        parent_session = _session(repository)

        def child() -> str:
            repository.close()
            try:
                repository.get(job.id)
            except StorageError:
                return "closed"
            return "open"

        reported = _in_a_forked_child(child)
        after = jobs.update(job.id, etag=job.etag, status="after")

        assert ("closed", "after") == (reported, after.status)
        assert parent_session == _session(repository)


def _session(repository: PostgresRepository) -> int:
    """The server process of the session a call of this thread is served on."""
    with repository._connection() as conn:  # the kept connection, when free
        return conn.info.backend_pid
