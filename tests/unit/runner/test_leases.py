"""Leases: a live run is never claimed, an expired one is taken over, a released one at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs
from jobledger.runner import (
    JobDefinition,
    RunActiveError,
    Runner,
    RunStatus,
    RunTakenOverError,
    RunTrigger,
    Task,
    TaskContext,
    TaskStatus,
    load_launches,
    load_run,
)
from jobledger.testing.runs import inline_runner

if TYPE_CHECKING:
    from jobledger.runner import RunResult, RunState
    from jobledger.testing import ManualClock

#: The lease of the runners in these tests: long, so only the test's clock ends it.
LEASE = 60.0


class Attempts:
    """Task functions whose first attempt of ``export`` waits until the test lets it go."""

    def __init__(self) -> None:
        """Nothing ran yet."""
        self.started = threading.Event()
        self.release = threading.Event()
        self.ran: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def export(self, context: TaskContext) -> None:
        """The first attempt announces itself and waits; later ones return at once."""
        with self.lock:
            self.ran.append((context.task.identifier, context.attempt))
        if context.attempt == 1:
            self.started.set()
            assert self.release.wait(timeout=30)

    def waits_for_cancel(self, context: TaskContext) -> None:
        """The first attempt announces itself and waits for its cancel flag."""
        with self.lock:
            self.ran.append((context.task.identifier, context.attempt))
        if context.attempt == 1:
            self.started.set()
            context.wait_for_cancel(timeout=30)

    def sync(self, context: TaskContext) -> None:
        """Record the launch."""
        with self.lock:
            self.ran.append((context.task.identifier, context.attempt))

    def definition(self, *, first: str = "export") -> JobDefinition:
        """Two steps: ``export`` (``first``'s behaviour), then ``sync``."""
        return JobDefinition(
            "Nightly",
            [Task("export", getattr(self, first)), Task("sync", self.sync, launch_order=2)],
        )


def state_of(jobs: Jobs, run_id: str) -> RunState:
    """The run's state as the ledger holds it now."""
    state = load_run(jobs, run_id).state
    assert state is not None
    return state


class TestLeases:
    """Runner.resume against a run someone drives, or drove."""

    def test_a_live_run_is_refused_naming_its_owner_and_expiry(
        self, manual_clock: ManualClock
    ) -> None:
        """Before the recorded expiry a resume raises RunActiveError and changes nothing."""
        jobs = Jobs(clock=manual_clock)
        tasks = Attempts()
        driver = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=LEASE)
        other = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=LEASE)

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(driver.invoke, "Nightly", run_id="run-1")
            assert tasks.started.wait(timeout=30)
            lease = state_of(jobs, "run-1").lease
            version = jobs.get("run-1").version
            manual_clock.advance(seconds=LEASE - 1)
            with pytest.raises(RunActiveError) as caught:
                other.resume("run-1")
            unchanged = version == jobs.get("run-1").version
            tasks.release.set()
            result = running.result(timeout=30)

        assert lease is not None
        assert (lease.owner, manual_clock.now + timedelta(seconds=1)) == (
            caught.value.owner,
            caught.value.expires_at,
        )
        assert lease.owner in str(caught.value)
        assert caught.value.expires_at.isoformat() in str(caught.value)
        assert unchanged
        assert RunStatus.COMPLETED == result.status
        assert [("export", 1), ("sync", 1)] == tasks.ran

    def test_after_the_expiry_another_runner_takes_over_and_the_old_one_stops(
        self, manual_clock: ManualClock
    ) -> None:
        """The takeover cancels the old launch; the deposed driver raises and launches no more."""
        jobs = Jobs(clock=manual_clock)
        tasks = Attempts()
        old = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=LEASE)
        new = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=LEASE)

        with ThreadPoolExecutor(1) as pool:
            deposed = pool.submit(old.invoke, "Nightly", run_id="run-1")
            assert tasks.started.wait(timeout=30)
            old_owner = state_of(jobs, "run-1").drive
            manual_clock.advance(seconds=LEASE)
            result = new.resume("run-1")
            tasks.release.set()
            with pytest.raises(RunTakenOverError) as caught:
                deposed.result(timeout=30)
        launches = load_launches(jobs, "run-1", 3)
        abandoned = launches[0]

        assert old_owner is not None
        assert result.state is not None
        assert result.state.drive is not None
        assert (RunTrigger.TAKE_OVER, 2) == (result.state.drive.kind, result.state.drive.number)
        assert result.state.drive.owner == caught.value.driver
        assert old_owner.owner != caught.value.driver
        assert RunStatus.COMPLETED == result.status
        assert [("export", 1), ("export", 2), ("sync", 1)] == tasks.ran
        assert [("export", 1), ("export", 2), ("sync", 2)] == [
            (launch.input.task, launch.input.drive) for launch in launches
        ]
        assert abandoned.state.error is not None
        assert (TaskStatus.CANCELED, "canceled", "abandoned: drive 2 took the run over") == (
            abandoned.status,
            jobs.get(abandoned.job_id).status,
            abandoned.state.error.message,
        )
        assert 3 == state_of(jobs, "run-1").launches

    def test_a_driver_frozen_until_its_run_ended_elsewhere_learns_it_was_deposed(
        self, manual_clock: ManualClock
    ) -> None:
        """A driver that wakes to find its run taken over and ended raises RunTakenOverError."""
        jobs = Jobs(clock=manual_clock)
        tasks = Attempts()
        # Inline, the task holds the old drive's own thread: it sees nothing until it returns.
        old = inline_runner(jobs, [tasks.definition()], clock=manual_clock, lease=LEASE)
        new = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=LEASE)

        with ThreadPoolExecutor(1) as pool:
            deposed = pool.submit(old.invoke, "Nightly", run_id="run-1")
            assert tasks.started.wait(timeout=30)
            manual_clock.advance(seconds=LEASE)
            result = new.resume("run-1")
            tasks.release.set()
            with pytest.raises(RunTakenOverError):
                deposed.result(timeout=30)

        assert RunStatus.COMPLETED == result.status
        assert RunStatus.COMPLETED == load_run(jobs, "run-1").status
        assert [("export", 1), ("export", 2), ("sync", 1)] == tasks.ran

    def test_a_driver_renews_its_lease_so_it_is_never_expired_while_it_lives(
        self, manual_clock: ManualClock
    ) -> None:
        """Each renewal records a later expiry from the driver's clock: the run stays its own."""
        jobs = Jobs(clock=manual_clock)
        tasks = Attempts()
        driver = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=0.3)
        other = Runner(jobs, [tasks.definition()], clock=manual_clock, lease=0.3)

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(driver.invoke, "Nightly", run_id="run-1")
            assert tasks.started.wait(timeout=30)
            first = state_of(jobs, "run-1").lease
            assert first is not None
            manual_clock.advance(seconds=10)
            # Wait (bounded) for the driver's next renewal, which reads the moved clock.
            renewed = first
            for _ in range(300):
                renewed = state_of(jobs, "run-1").lease or first
                if renewed.expires_at > first.expires_at:
                    break
                tasks.release.wait(timeout=0.01)
            with pytest.raises(RunActiveError):
                other.resume("run-1")
            tasks.release.set()
            result = running.result(timeout=30)

        assert manual_clock.now + timedelta(seconds=0.3) == renewed.expires_at
        assert (first.owner, 0.3) == (renewed.owner, renewed.seconds)
        assert RunStatus.COMPLETED == result.status


class TestInterrupt:
    """Runner.interrupt: letting go of a run on purpose, so it can be resumed at once."""

    def test_an_interrupted_run_is_released_and_resumed_at_once(
        self, manual_clock: ManualClock
    ) -> None:
        """The drive returns the run running with no lease; a resume takes it over unwaited."""
        jobs = Jobs(clock=manual_clock)
        tasks = Attempts()
        driver = Runner(
            jobs, [tasks.definition(first="waits_for_cancel")], clock=manual_clock, lease=LEASE
        )
        other = Runner(
            jobs, [tasks.definition(first="waits_for_cancel")], clock=manual_clock, lease=LEASE
        )

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(driver.invoke, "Nightly", run_id="run-1")
            assert tasks.started.wait(timeout=30)
            let_go = driver.interrupt("a second Ctrl-C")
            left: RunResult = running.result(timeout=30)
        released = state_of(jobs, "run-1")
        [interrupted] = load_launches(jobs, "run-1", 1)
        resumed = other.resume("run-1")

        assert ("run-1",) == let_go
        assert (RunStatus.RUNNING, None) == (left.status, released.lease)
        assert released.released is not None
        assert (1, "a second Ctrl-C") == (released.released.drive, released.released.reason)
        assert interrupted.state.error is not None
        assert (TaskStatus.CANCELED, "a second Ctrl-C") == (
            interrupted.status,
            interrupted.state.error.message,
        )
        assert resumed.state is not None
        assert resumed.state.drive is not None
        assert (RunStatus.COMPLETED, RunTrigger.TAKE_OVER) == (
            resumed.status,
            resumed.state.drive.kind,
        )
        assert [("export", 1), ("export", 2), ("sync", 1)] == tasks.ran

    def test_interrupting_a_runner_that_drives_nothing_lets_go_of_nothing(self, jobs: Jobs) -> None:
        """No drive, no run released."""
        runner = Runner(jobs, [Attempts().definition()])

        assert () == runner.interrupt("nothing to stop")
