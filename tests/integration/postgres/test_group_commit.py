"""Group commit on PostgreSQL: saves that threads make at once share a transaction.

Each save keeps its own compare-and-set, its own outcome and its own error; the
feed stays gap-free; and a save is acknowledged only once its transaction has
committed. To form a group for certain, these tests hold a lock on one job's
row, so that its save stays in flight while other threads queue behind it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from jobledger import ConcurrencyError, JobAlreadyExistsError, Jobs, Limits, StartJob, UpdateJob
from jobledger._adapters import postgres as postgres_adapter
from jobledger._application.defaults import new_id
from jobledger._core.decide import decide
from jobledger.postgres import PostgresRepository
from jobledger.testing.contract import check_ledger_consistent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jobledger import Job

pytestmark = pytest.mark.postgres

#: How long a test waits for something that should happen at once before it gives up.
PATIENCE = 30.0


def _eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds; fail after :data:`PATIENCE` seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.01)


def _waiting_on_a_lock(conninfo: str, schema: str) -> Callable[[], bool]:
    """Whether some session waits for a lock in a statement on ``schema``'s tables."""
    marker = f'"{schema}".'

    def waiting() -> bool:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND strpos(query, %s) > 0",
                (marker,),
            ).fetchone()
        return row is not None and row[0] > 0

    return waiting


def _outcome(call: Callable[[], object]) -> object:
    """The status of the job ``call`` returns (or what else it returns), or its error's type."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001  (reported to the test, which compares it)
        return type(error)
    return getattr(result, "status", result)


@pytest.fixture
def patient(
    postgres_conninfo: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PostgresRepository]:
    """A repository whose queued saves wait for the group in flight however long it takes."""
    monkeypatch.setattr(postgres_adapter, "GROUP_PATIENCE_SECONDS", PATIENCE)
    with PostgresRepository(postgres_conninfo, schema=schema) as opened:
        yield opened


def _in_a_group_behind(
    repository: PostgresRepository,
    conninfo: str,
    schema: str,
    held: Job,
    calls: dict[str, Callable[[], object]],
) -> dict[str, object]:
    """Run ``calls`` in threads queued behind a save of ``held`` kept in flight; their outcomes.

    The save of ``held`` waits on a row lock another session holds until every
    call has queued; then the lock goes, and the queued saves leave as one group.
    """
    outcomes: dict[str, object] = {}

    def run(name: str, call: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=lambda: outcomes.__setitem__(name, _outcome(call)))
        thread.start()
        return thread

    jobs = Jobs(repository)
    with psycopg.connect(conninfo) as holder:  # not autocommit: the row lock stays
        holder.execute(
            sql.SQL("SELECT FROM {}.jobledger_jobs WHERE id = %s FOR UPDATE").format(
                sql.Identifier(schema)
            ),
            (held.id,),
        )
        threads = [run("held", lambda: jobs.update(held.id, etag=held.etag, status="first"))]
        _eventually(_waiting_on_a_lock(conninfo, schema), "the first save to wait on the lock")
        threads.extend(run(name, call) for name, call in calls.items())
        _eventually(lambda: len(repository._group._queue) == len(calls), "the other saves to queue")
        holder.rollback()
    for thread in threads:
        thread.join(PATIENCE)
    return outcomes


def _sessions_named(conninfo: str, name: str) -> int:
    """How many server sessions have the application name ``name``."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
    return 0 if row is None else int(row[0])


def _transactions(conninfo: str, schema: str) -> dict[int, str]:
    """The transaction id that wrote each feed position (a change's entry is its update row)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT position, xmin::text FROM {schema}.jobledger_feed_entries "
                "UNION ALL SELECT position, xmin::text FROM {schema}.jobledger_updates"
            ).format(schema=sql.Identifier(schema))
        ).fetchall()
    return {int(position): str(xmin) for position, xmin in rows}


class TestGroupCommit:
    """Saves queued while one is in flight leave together, and each keeps its own outcome."""

    def test_saves_queued_together_commit_in_one_transaction(
        self, patient: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """Two updates queued behind a save in flight are written by one transaction."""
        jobs = Jobs(patient)
        held, one, two = (jobs.start(service="g", entity="e", type=t) for t in "abc")

        outcomes = _in_a_group_behind(
            patient,
            postgres_conninfo,
            schema,
            held,
            {
                "one": lambda: jobs.update(one.id, etag=one.etag, status="on"),
                "two": lambda: jobs.update(two.id, etag=two.etag, status="on"),
            },
        )

        assert {"held": "first", "one": "on", "two": "on"} == outcomes
        written = _transactions(postgres_conninfo, schema)
        assert [1, 2, 3, 4, 5, 6] == sorted(written)
        assert written[5] == written[6]
        assert written[4] != written[5]

    def test_a_stale_change_in_a_group_fails_only_its_own_save(
        self, patient: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A change whose ETag is stale is refused; the change grouped with it commits."""
        jobs = Jobs(patient)
        held, fresh, stale = (jobs.start(service="g", entity="e", type=t) for t in "abc")
        # Decided on the job as it was, saved after it moved on: its compare-and-set misses.
        late = decide(
            stale,
            UpdateJob(job_id=stale.id, etag=stale.etag, status="late"),
            now=datetime.now(UTC),
            new_id=new_id,
            limits=Limits(),
        )
        jobs.update(stale.id, etag=stale.etag, status="moved on")

        outcomes = _in_a_group_behind(
            patient,
            postgres_conninfo,
            schema,
            held,
            {
                "fresh": lambda: jobs.update(fresh.id, etag=fresh.etag, status="on"),
                "stale": lambda: patient.save(late),
            },
        )

        assert {"held": "first", "fresh": "on", "stale": ConcurrencyError} == outcomes
        assert ("moved on", ["moved on"]) == (
            patient.get(stale.id).status,
            [update.status for update in patient.updates(stale.id)],
        )
        assert [1, 2, 3, 4, 5, 6] == [entry.position for entry in patient.read_feed()]

    def test_a_taken_job_id_in_a_group_fails_only_its_own_save(
        self, patient: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A start of a taken id rolls its group back; the other change is saved again, alone."""
        jobs = Jobs(patient)
        held, fresh = (jobs.start(service="g", entity="e", type=t) for t in "ab")
        again = decide(
            None,
            StartJob(service="g", entity="e", type="c", job_id=fresh.id),
            now=datetime.now(UTC),
            new_id=new_id,
            limits=Limits(),
        )

        outcomes = _in_a_group_behind(
            patient,
            postgres_conninfo,
            schema,
            held,
            {
                "fresh": lambda: jobs.update(fresh.id, etag=fresh.etag, status="on"),
                "taken": lambda: patient.save(again),
            },
        )

        assert {"held": "first", "fresh": "on", "taken": JobAlreadyExistsError} == outcomes
        assert [1, 2, 3, 4] == [entry.position for entry in patient.read_feed()]


# Threads that write at once, each reporting (job id, version, etag) once its save returned.
THREADED_WRITER = """
import sys, threading
from jobledger import Jobs
from jobledger.postgres import PostgresRepository

conninfo, schema = sys.argv[1:3]
jobs = Jobs(PostgresRepository(conninfo, schema=schema))
printing = threading.Lock()

def report(job):
    with printing:
        print(job.id, job.version, job.etag, flush=True)

def write():
    for _ in range(1000):
        job = jobs.start(service="kill", entity="e", type="t", state={"pad": "x" * 2000})
        report(job)
        for n in range(5):
            job = jobs.update(job.id, etag=job.etag, state_update={"n": n})
            report(job)

for thread in [threading.Thread(target=write) for _ in range(4)]:
    thread.start()
"""


class TestKilledDuringGroupCommits:
    """A process killed while its threads' saves commit in groups loses nothing it reported."""

    def test_every_acknowledged_save_survives_a_sigkill(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """After SIGKILL, each save a thread saw return is there whole, and the feed is gap-free."""
        # Named, so that the test can wait for its server sessions to end after the kill:
        # a transaction the server had whole when the client died still commits.
        named = psycopg.conninfo.make_conninfo(postgres_conninfo, application_name=schema)
        client = subprocess.Popen(  # noqa: S603  (our own interpreter running our own code)
            [sys.executable, "-c", THREADED_WRITER, named, schema],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdout is not None
        committed: list[tuple[str, int, str]] = []
        for line in client.stdout:
            job_id, version, etag = line.split()
            committed.append((job_id, int(version), etag))
            if len(committed) >= 200:  # enough saves for several groups
                break
        client.send_signal(signal.SIGKILL)
        client.wait(PATIENCE)
        committed.extend(
            (job_id, int(version), etag)
            for job_id, version, etag in (line.split() for line in client.stdout)
        )
        client.stdout.close()
        _eventually(
            lambda: not _sessions_named(postgres_conninfo, schema),
            "the killed client's server sessions to end",
        )

        audit = check_ledger_consistent(repository, committed)

        written = _transactions(postgres_conninfo, schema)
        assert sorted(written) == list(range(1, audit.feed_head + 1))
        assert len(set(written.values())) < len(written), "no two saves ever shared a commit"
