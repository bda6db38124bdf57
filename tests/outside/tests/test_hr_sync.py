"""HR sync's tests: they use only the fixtures that installing jobledger gives pytest."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from hr_sync import AccountProvisioner, EmployeeExport, fail_stalled_runs

from jobledger import JobCompleted, JobFailed, JobStarted, JobUpdated, Subscription
from jobledger.testing import EventMatch

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jobledger import Jobs
    from jobledger.testing import ManualClock, RecordingPublisher, SequentialIds


def create_account(name: str) -> str:
    """Make a login from an employee's name; nobody may be called ``root``."""
    if name == "root":
        msg = f"{name!r} cannot have an account"
        raise ValueError(msg)
    return f"{name.lower()}@example.com"


@pytest.fixture
def provisioner(jobledger_jobs: Jobs) -> Iterator[Subscription]:
    """Return the IT service, listening to the HR runs for the length of the test."""
    with AccountProvisioner(jobledger_jobs, create_account).listen() as subscription:
        yield subscription


class TestEmployeeExport:
    """The HR service starts a run, reports its progress and hands it to IT."""

    def test_progress_is_reported_batch_by_batch(
        self, jobledger_jobs: Jobs, jobledger_events: RecordingPublisher
    ) -> None:
        """Each batch of two employees is one update; the run then awaits its import."""
        job = EmployeeExport(jobledger_jobs).run(["Ada", "Grace", "Linus"])
        assert ("awaiting-import", {"exported": 3, "total": 3}) == (job.status, job.state)
        jobledger_events.assert_exactly(
            JobStarted,
            EventMatch(JobUpdated, status="exporting", state_update={"exported": 2}),
            EventMatch(JobUpdated, status="exporting", state_update={"exported": 3}),
            EventMatch(JobUpdated, status="awaiting-import"),
            job_id=job.id,
        )

    def test_ids_and_times_are_known_in_advance(
        self, jobledger_jobs: Jobs, jobledger_clock: ManualClock, jobledger_ids: SequentialIds
    ) -> None:
        """The first job is id-0001 and every change happens at the manual clock's time."""
        jobledger_clock.advance(hours=2)
        job = EmployeeExport(jobledger_jobs).run(["Ada"])
        assert ("id-0001", "2024-01-01T02:00:00+00:00") == (job.id, job.updated_at.isoformat())
        assert 7 == jobledger_ids.count


@pytest.mark.usefixtures("provisioner")
class TestAccountProvisioner:
    """The IT service completes each run it can provision and fails the others."""

    def test_completes_the_run_with_the_accounts(
        self, jobledger_jobs: Jobs, jobledger_events: RecordingPublisher
    ) -> None:
        """A run awaiting its import is completed with one login per employee."""
        job = EmployeeExport(jobledger_jobs).run(["Ada", "Grace"])
        done = jobledger_jobs.get(job.id)
        assert ("completed", ["ada@example.com", "grace@example.com"]) == (
            done.status,
            done.state["accounts"],
        )
        jobledger_events.assert_published(
            JobStarted, EventMatch(JobUpdated, status="awaiting-import"), JobCompleted
        )

    def test_fails_a_run_it_cannot_provision(
        self, jobledger_jobs: Jobs, jobledger_events: RecordingPublisher
    ) -> None:
        """An employee who cannot have an account fails the run, saying why."""
        job = EmployeeExport(jobledger_jobs).run(["Ada", "root"])
        jobledger_events.assert_published(
            EventMatch(JobUpdated, status="awaiting-import"), JobFailed, job_id=job.id
        )
        assert [{"error": "'root' cannot have an account"}] == [
            event.state_update for event in jobledger_events.events(JobFailed)
        ]

    def test_ignores_other_services(
        self, jobledger_jobs: Jobs, jobledger_events: RecordingPublisher
    ) -> None:
        """Jobs of other services never reach it."""
        job = jobledger_jobs.start(service="crm", entity="account", type="account-sync")
        jobledger_jobs.update(job.id, etag=job.etag, status="awaiting-import")
        assert [] == jobledger_events.events(JobCompleted)


class TestStalledRuns:
    """Runs that stop making progress are failed once they have been idle too long."""

    def test_only_runs_idle_for_too_long_are_failed(
        self,
        jobledger_jobs: Jobs,
        jobledger_clock: ManualClock,
        jobledger_events: RecordingPublisher,
    ) -> None:
        """A run idle for 16 minutes is failed; one that moved 5 minutes ago is not."""
        old = EmployeeExport(jobledger_jobs).run(["Ada"])
        jobledger_clock.advance(minutes=11)
        recent = EmployeeExport(jobledger_jobs).run(["Grace"])
        jobledger_clock.advance(minutes=5)
        jobledger_events.clear()

        failed = fail_stalled_runs(
            jobledger_jobs, now=jobledger_clock(), max_idle=timedelta(minutes=15)
        )

        assert [old.id] == [job.id for job in failed]
        jobledger_events.assert_exactly(JobFailed, job_id=old.id)
        jobledger_events.assert_nothing_published(job_id=recent.id)
