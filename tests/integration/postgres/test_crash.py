"""A PostgreSQL client killed with SIGKILL mid-transaction leaves nothing behind.

The clients are separate Python processes, killed while a save's transaction
is open, or at random moments while they write: after each kill, nothing of an
unfinished save may be visible, the feed must stay gap-free, and everything the
client reported committed must be there.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys

import pytest

from jobledger import JobNotFoundError, Jobs
from jobledger.postgres import PostgresRepository
from jobledger.testing.contract import check_ledger_consistent, kill_writer_at_random

pytestmark = pytest.mark.postgres

#: How long a test waits for something that should happen at once before it gives up.
PATIENCE = 30.0

#: Seconds to wait for a child process to report before the test gives up.
PATIENCE = 60.0

# A client that opens a save's transaction, writes the whole change (job, update,
# request record, event at its feed position), prints the position and hangs
# before COMMIT until it is killed.
HOLDING_CLIENT = """
import sys, threading
from datetime import UTC, datetime
from jobledger import Limits, StartJob, UpdateJob
from jobledger._application.defaults import new_id
from jobledger._core.decide import decide
from jobledger.postgres import PostgresRepository
from jobledger.testing.contract import check_ledger_consistent, kill_writer_at_random

conninfo, schema, job_id = sys.argv[1:4]
repository = PostgresRepository(conninfo, schema=schema)
try:
    job = repository.get(job_id)
    command = UpdateJob(job_id=job_id, etag=job.etag, status="doomed", request_id="doomed")
except LookupError:
    job = None
    command = StartJob(service="crash", entity="e", type="t", job_id=job_id, request_id="doomed")
change = decide(job, command, now=datetime.now(UTC), new_id=new_id, limits=Limits())
with repository.pool.connection() as conn, conn.transaction():
    print(repository._write_change(conn, change), flush=True)
    threading.Event().wait()
"""


def _client(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603  (our own interpreter running our own code)
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )


def _kill(client: subprocess.Popen[str]) -> None:
    client.send_signal(signal.SIGKILL)
    client.wait(PATIENCE)
    assert client.stdout is not None
    client.stdout.close()


def _report(client: subprocess.Popen[str]) -> str:
    """The next line the client prints; fails the test if it died first."""
    assert client.stdout is not None
    line = client.stdout.readline()
    if not line:
        pytest.fail(f"the client process exited with code {client.wait(PATIENCE)}")
    return line


class TestKilledClient:
    """What a client killed between writing a change and committing it leaves behind."""

    def test_a_killed_start_leaves_no_job_update_request_or_event(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A start killed before COMMIT leaves no trace, and its feed position is taken again."""
        jobs = Jobs(repository)
        jobs.start(service="crash", entity="e", type="before")
        client = _client(HOLDING_CLIENT, postgres_conninfo, schema, "doomed-job")
        held = int(_report(client))
        _kill(client)

        after = jobs.start(service="crash", entity="e", type="after")

        assert 2 == held
        with pytest.raises(JobNotFoundError):
            repository.get("doomed-job")
        assert repository.find_request("doomed") is None
        assert [(1, "before"), (2, "after")] == [
            (entry.position, entry.event.type) for entry in repository.read_feed()
        ]
        assert after.id == repository.read_feed()[-1].event.job_id

    def test_a_killed_update_leaves_the_job_as_it_was(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """An update killed before COMMIT leaves the job, its log, requests and feed unchanged."""
        jobs = Jobs(repository)
        job = jobs.start(service="crash", entity="e", type="t", job_id="job-1")
        job = jobs.update(job.id, etag=job.etag, status="busy")
        for _ in range(2):
            client = _client(HOLDING_CLIENT, postgres_conninfo, schema, "job-1")
            held = int(_report(client))
            _kill(client)
            assert 3 == held

        done = jobs.complete(job.id, etag=job.etag)

        assert (3, "completed") == (done.version, done.status)
        assert [1, 2] == [update.update_id for update in repository.updates("job-1")]
        assert ["busy", "completed"] == [update.status for update in repository.updates("job-1")]
        assert repository.find_request("doomed") is None
        assert [1, 2, 3] == [entry.position for entry in repository.read_feed()]

    def test_writers_killed_at_random_moments_leave_only_whole_changes(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """After each random SIGKILL, every reported change is there whole and nothing else is."""
        factory = functools.partial(PostgresRepository, postgres_conninfo, schema=schema)
        committed: list[tuple[str, int, str]] = []
        audits = []
        for seed in range(4):
            committed.extend(kill_writer_at_random(factory, seed=seed))
            audits.append(check_ledger_consistent(repository, committed))

        assert len(committed) > 0
        assert len(committed) <= audits[-1].feed_head
