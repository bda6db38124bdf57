"""Resuming blocked runs (with and without repair) and taking over silent ones."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from jobledger import InMemoryRepository, Jobs
from jobledger.runner import (
    JobDefinition,
    RunActiveError,
    Runner,
    RunNotFoundError,
    RunNotResumableError,
    RunStatus,
    RunTakenOverError,
    RunTrigger,
    Task,
    TaskBlocked,
    TaskContext,
)
from jobledger.testing.runs import ScriptedOutcome, ScriptedTasks

if TYPE_CHECKING:
    from jobledger import Job
    from jobledger.testing import ManualClock


def guarded_script(*, blocks: bool = True) -> ScriptedTasks:
    """Return a script whose sync blocks on 120 changes unless forced to 120; its repair validates.

    With ``blocks=False`` every task succeeds.
    """
    if not blocks:
        return ScriptedTasks()
    return ScriptedTasks(
        {
            "sync": ScriptedOutcome.block(
                "too many changes", {"changes": 120, "threshold": 100}, unless_force=120
            )
        },
        repairs={"sync": ScriptedOutcome.succeed("validated")},
    )


def guarded_definition(script: ScriptedTasks) -> JobDefinition:
    """Return a three-step job whose guarded sync (with a repair variant) runs ``script``."""
    return JobDefinition(
        "Nightly",
        [
            script.task("export_hr"),
            script.task("export_ad"),
            script.task("sync", launch_order=2, parents="export_hr", guarded=True, repair=True),
            script.task("sync_ad", launch_order=2, parents="export_ad"),
            script.task("provision", launch_order=3, parents="sync"),
        ],
    )


class TestResume:
    """Runner.resume on blocked runs."""

    def test_resume_runs_the_blocked_task_then_only_what_had_not_run(self, jobs: Jobs) -> None:
        """The blocked task runs again, then the tasks not yet done; done tasks do not rerun."""
        script = guarded_script()
        runner = Runner(jobs, [guarded_definition(script)])
        blocked = runner.invoke("Nightly")

        resumed = runner.resume(blocked.run_id, force=500)

        assert {
            "export_hr": "completed",
            "export_ad": "completed",
            "sync": "blocked",
            "sync_ad": "completed",
            "provision": "pending",
        } == blocked.statuses()
        assert RunStatus.COMPLETED == resumed.status
        assert {"export_hr": 1, "export_ad": 1, "sync": 2, "sync_ad": 1, "provision": 1} == dict(
            Counter(script.launched())
        )
        assert (2, False, 500) == (
            resumed.outcomes["sync"].attempts,
            resumed.outcomes["sync"].repair,
            resumed.force,
        )
        assert [(1, 1), (2, 1), (3, 2), (4, 2)] == [
            (group.number, group.drive) for group in resumed.launch_groups
        ]

    def test_resume_with_repair_runs_the_repair_variant_in_place(self, jobs: Jobs) -> None:
        """With repair=True the blocked task's repair variant runs instead, recorded as a repair."""
        script = guarded_script()
        runner = Runner(jobs, [guarded_definition(script)])
        blocked = runner.invoke("Nightly")

        resumed = runner.resume(blocked.run_id, repair=True)
        sync = resumed.outcomes["sync"]
        drive = resumed.state.drive if resumed.state is not None else None

        assert RunStatus.COMPLETED == resumed.status
        assert [("sync", False), ("sync", True), ("provision", False)] == [
            (launch.task, launch.repair)
            for launch in script.launches
            if launch.task in {"sync", "provision"}
        ]
        assert ("completed", True, "validated") == (sync.status.value, sync.repair, sync.summary)
        assert drive is not None
        assert (RunTrigger.RESUME, True, 2) == (drive.kind, drive.repair, drive.number)

    def test_a_resumed_task_may_block_again(self, jobs: Jobs) -> None:
        """Without force or repair the guard holds: blocked again at the same breakpoint."""
        runner = Runner(jobs, [guarded_definition(guarded_script())])
        blocked = runner.invoke("Nightly")

        again = runner.resume(blocked.run_id)

        assert RunStatus.BLOCKED == again.status
        assert again.breakpoint is not None
        assert (2, ("sync",)) == (again.breakpoint.step, again.breakpoint.tasks)
        assert 2 == again.outcomes["sync"].attempts

    def test_the_force_given_at_invoke_is_kept_by_resume(self, jobs: Jobs) -> None:
        """force=None on resume keeps the run's threshold; the tasks see it."""
        seen: list[int | None] = []

        def sync(context: TaskContext) -> None:
            seen.append(context.force)
            if context.attempt == 1:
                reason = "first look"
                raise TaskBlocked(reason)

        runner = Runner(jobs, [JobDefinition("Keep", [Task("sync", sync, guarded=True)])])
        blocked = runner.invoke("Keep", force=42)

        runner.resume(blocked.run_id)

        assert [42, 42] == seen

    def test_a_run_that_is_over_does_not_resume(self, jobs: Jobs) -> None:
        """A completed run refuses resume with its status and the reason."""
        runner = Runner(jobs, [guarded_definition(guarded_script(blocks=False))])
        completed = runner.invoke("Nightly")

        with pytest.raises(RunNotResumableError) as caught:
            runner.resume(completed.run_id)

        assert ("completed", "the run is over") == (caught.value.status, caught.value.reason)

    def test_repair_needs_a_repair_variant(self, jobs: Jobs) -> None:
        """A blocked task without a repair variant refuses repair=True; the run stays blocked."""

        def sync(_context: TaskContext) -> None:
            reason = "always"
            raise TaskBlocked(reason)

        runner = Runner(jobs, [JobDefinition("Bare", [Task("sync", sync, guarded=True)])])
        blocked = runner.invoke("Bare")

        with pytest.raises(RunNotResumableError) as caught:
            runner.resume(blocked.run_id, repair=True)

        assert "no repair variant for 'sync'" == caught.value.reason
        assert RunStatus.BLOCKED == runner.result(blocked.run_id).status

    def test_unknown_runs_and_other_jobs_are_not_found(self, jobs: Jobs) -> None:
        """Resume names a missing run, and refuses jobs that are not runs."""
        runner = Runner(jobs, [guarded_definition(guarded_script())])
        other = jobs.start(service="hr", entity="employee", type="sync", job_id="not-a-run")

        with pytest.raises(RunNotFoundError):
            runner.resume("ghost")
        with pytest.raises(RunNotFoundError) as caught:
            runner.resume(other.id)

        assert "job 'not-a-run' is a hr/employee job, not a jobledger.runner run" == (
            caught.value.detail
        )

    def test_a_definition_that_lost_a_task_cannot_resume_the_run(self, jobs: Jobs) -> None:
        """A runner whose definition no longer has a task of the run refuses to drive it."""
        blocked = Runner(jobs, [guarded_definition(guarded_script())]).invoke("Nightly")
        smaller = JobDefinition("Nightly", [Task("export_hr", lambda _context: None)])

        with pytest.raises(RunNotResumableError) as caught:
            Runner(jobs, [smaller]).resume(blocked.run_id)

        assert caught.value.reason.startswith("its definition no longer has the tasks 'export_ad'")


class MeetingRepository(InMemoryRepository):
    """An in-memory repository whose first two reads wait for each other.

    Two resumes of one run then both read the same version before either
    claims it, so their claims are sure to collide.
    """

    def __init__(self) -> None:
        """Start with the meeting armed."""
        super().__init__()
        self.meeting: threading.Barrier | None = None
        self._reads = 0
        self._reads_lock = threading.Lock()

    def get(self, job_id: str) -> Job:
        """Return the job; the first two reads after arming wait for each other."""
        job = super().get(job_id)
        with self._reads_lock:
            self._reads += 1
            meet = self.meeting is not None and self._reads <= 2
        if meet and self.meeting is not None:
            self.meeting.wait(timeout=30)
        return job

    def arm(self) -> None:
        """Make the next two reads meet."""
        with self._reads_lock:
            self._reads = 0
            self.meeting = threading.Barrier(2)


class PausingRepository(InMemoryRepository):
    """An in-memory repository that can hold one read until the test lets it go."""

    def __init__(self) -> None:
        """Start with no read held."""
        super().__init__()
        self.held: tuple[threading.Event, threading.Event] | None = None

    def get(self, job_id: str) -> Job:
        """Return the job; a held read returns it only once released."""
        job = super().get(job_id)
        held, self.held = self.held, None
        if held is not None:
            read, release = held
            read.set()
            assert release.wait(timeout=30)
        return job

    def hold_next_read(self) -> tuple[threading.Event, threading.Event]:
        """Hold the next read; return (set when it read, set to release it)."""
        self.held = (threading.Event(), threading.Event())
        return self.held


class TestExclusiveDrive:
    """Two runners never drive one run at once."""

    def test_of_two_resumes_that_collide_exactly_one_drives(self) -> None:
        """Both read the blocked run and claim it; the ETag lets one through, refuses the other.

        The loser reads the run again: it finds it driven by the winner's live
        lease, or already over.
        """
        repository = MeetingRepository()
        jobs = Jobs(repository=repository)
        script = guarded_script()
        runner = Runner(jobs, [guarded_definition(script)])
        blocked = runner.invoke("Nightly")
        repository.arm()

        with ThreadPoolExecutor(2) as pool:
            attempts = [pool.submit(runner.resume, blocked.run_id, force=500) for _ in range(2)]
            outcomes = [attempt.exception(timeout=30) or attempt.result() for attempt in attempts]

        errors = [item for item in outcomes if isinstance(item, RunNotResumableError)]
        results = [item for item in outcomes if not isinstance(item, BaseException)]
        assert 1 == len(errors)
        assert [RunStatus.COMPLETED] == [result.status for result in results]
        winner = results[0].state.drive if results[0].state is not None else None
        assert winner is not None
        refusal = errors[0]
        assert (
            isinstance(refusal, RunActiveError) and winner.owner == refusal.owner
        ) or "the run is over" == refusal.reason
        assert 2 == script.launched().count("sync")

    def test_a_resume_that_read_the_run_before_it_ended_is_refused(self) -> None:
        """A resume that read a blocked run another resume then finished cannot claim it."""
        repository = PausingRepository()
        jobs = Jobs(repository=repository)
        runner = Runner(jobs, [guarded_definition(guarded_script())])
        blocked = runner.invoke("Nightly")
        read, release = repository.hold_next_read()

        with ThreadPoolExecutor(1) as pool:
            late = pool.submit(runner.resume, blocked.run_id, force=500)
            assert read.wait(timeout=30)
            finished = runner.resume(blocked.run_id, force=500)
            release.set()
            error = late.exception(timeout=30)

        assert RunStatus.COMPLETED == finished.status
        assert isinstance(error, RunNotResumableError)
        assert ("completed", "the run is over") == (error.status, error.reason)

    def test_a_silent_run_is_taken_over_and_its_old_runner_stops(
        self, manual_clock: ManualClock
    ) -> None:
        """Past its lease another runner drives the run on; the old one loses it and stops."""
        jobs = Jobs(clock=manual_clock)
        first_started = threading.Event()
        release = threading.Event()

        def export(context: TaskContext) -> None:
            if context.attempt == 1:
                first_started.set()
                assert release.wait(timeout=30)

        definition = JobDefinition(
            "Nightly",
            [Task("export", export), Task("sync", lambda _context: None, launch_order=2)],
        )
        old = Runner(jobs, [definition], clock=manual_clock, takeover_after=60)
        new = Runner(jobs, [definition], clock=manual_clock, takeover_after=60)

        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(old.invoke, "Nightly", run_id="run-1")
            assert first_started.wait(timeout=30)
            with pytest.raises(RunActiveError) as early:
                new.resume("run-1")
            manual_clock.advance(seconds=61)
            result = new.resume("run-1")
            release.set()
            with pytest.raises(RunTakenOverError):
                first.result(timeout=30)

        drive = result.state.drive if result.state is not None else None
        assert datetime(2024, 1, 1, 0, 1, tzinfo=UTC) == early.value.expires_at
        assert RunStatus.COMPLETED == result.status
        assert {"export": 2, "sync": 1} == {
            name: outcome.attempts for name, outcome in result.outcomes.items()
        }
        assert drive is not None
        assert (RunTrigger.TAKE_OVER, 2) == (drive.kind, drive.number)

    def test_a_silent_run_is_not_repaired(self, manual_clock: ManualClock) -> None:
        """repair=True applies to blocked runs only, not to a takeover."""
        jobs = Jobs(clock=manual_clock)
        started = threading.Event()
        release = threading.Event()

        def export(_context: TaskContext) -> None:
            started.set()
            assert release.wait(timeout=30)

        definition = JobDefinition("Nightly", [Task("export", export)])
        runner = Runner(jobs, [definition], clock=manual_clock, takeover_after=60)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Nightly", run_id="run-1")
            assert started.wait(timeout=30)
            manual_clock.advance(seconds=61)
            with pytest.raises(RunNotResumableError) as caught:
                runner.resume("run-1", repair=True)
            release.set()
            assert RunStatus.COMPLETED == running.result(timeout=30).status

        assert "only a blocked run is repaired" == caught.value.reason
