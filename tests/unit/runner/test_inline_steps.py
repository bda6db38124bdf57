"""One-task steps run in the driving thread, with the lease kept and stops still heard."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs, UpdateJob
from jobledger.runner import (
    JobDefinition,
    RunActiveError,
    Runner,
    RunStatus,
    RunTakenOverError,
    Task,
    TaskContext,
    TaskStatus,
    load_launches,
    load_run,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from pathlib import Path

    from jobledger import Job
    from jobledger.runner import RunResult


class Threads:
    """Task functions that record the thread each launch ran on, and wait when told."""

    def __init__(self) -> None:
        """Nothing ran yet."""
        self.lock = threading.Lock()
        self.ran: list[tuple[str, threading.Thread]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.saw_cancel: list[bool] = []

    def record(self, context: TaskContext) -> None:
        """Record the task and its thread."""
        with self.lock:
            self.ran.append((context.task.identifier, threading.current_thread()))

    def wait_for_release(self, context: TaskContext) -> None:
        """Record, announce the start, and wait until the test lets go."""
        self.record(context)
        self.started.set()
        assert self.release.wait(timeout=30)

    def wait_for_cancel(self, context: TaskContext) -> None:
        """Record, announce the start, and wait for the cancel flag (or the test)."""
        self.record(context)
        self.started.set()
        self.saw_cancel.append(context.wait_for_cancel(timeout=30))

    def threads(self) -> dict[str, threading.Thread]:
        """The thread each task ran on."""
        with self.lock:
            return dict(self.ran)


def drive_in_thread(call: object) -> tuple[threading.Thread, list[RunResult | BaseException]]:
    """Start ``call()`` in a thread of its own; its result (or error) lands in the list."""
    outcome: list[RunResult | BaseException] = []

    def work() -> None:
        try:
            outcome.append(call())  # type: ignore[operator]
        except BaseException as error:  # noqa: BLE001  (handed to the test)
            outcome.append(error)

    thread = threading.Thread(target=work, name="test-driver")
    thread.start()
    return thread, outcome


class TestWhereOneTaskStepsRun:
    """Which thread runs a launch."""

    def test_a_one_task_step_runs_in_the_driving_thread(self, jobs: Jobs) -> None:
        """Each task alone in its step, with no timeout, runs in the thread that invoked."""
        log = Threads()
        definition = JobDefinition(
            "D", [Task("a", log.record), Task("b", log.record, launch_order=2)]
        )

        with Runner(jobs, [definition]) as runner:
            result = runner.invoke("D")

        assert {"a": "completed", "b": "completed"} == result.statuses()
        me = threading.current_thread()
        assert {"a": me, "b": me} == log.threads()

    def test_a_task_with_a_timeout_runs_on_a_pool_thread(self, jobs: Jobs) -> None:
        """A timed task alone in its step still goes to a pool, so its timeout can abandon it."""
        log = Threads()

        with Runner(jobs, [JobDefinition("D", [Task("a", log.record, timeout=60)])]) as runner:
            runner.invoke("D")

        assert log.threads()["a"] is not threading.current_thread()

    def test_the_tasks_of_a_wider_step_run_on_pool_threads(self, jobs: Jobs) -> None:
        """Two tasks in one step both go to the pool, to run at once."""
        log = Threads()
        definition = JobDefinition("D", [Task("a", log.record), Task("b", log.record)])

        with Runner(jobs, [definition]) as runner:
            runner.invoke("D")

        assert threading.current_thread() not in set(log.threads().values())

    def test_an_executor_given_to_the_runner_runs_one_task_steps(self, jobs: Jobs) -> None:
        """A side with an executor of the caller's always runs there, even a one-task step."""
        log = Threads()
        with ThreadPoolExecutor(1, thread_name_prefix="given") as given:
            runner = Runner(
                jobs, [JobDefinition("D", [Task("a", log.record)])], executors={"server": given}
            )
            runner.invoke("D")
            runner.close()

        assert log.threads()["a"].name.startswith("given")

    def test_a_task_that_exits_is_recorded_as_failed(self, jobs: Jobs) -> None:
        """SystemExit raised by a task run in the driving thread is its error, as on a pool."""

        def exits(_context: TaskContext) -> None:
            raise SystemExit(3)

        with Runner(jobs, [JobDefinition("D", [Task("a", exits)])]) as runner:
            result = runner.invoke("D")

        error = result.outcomes["a"].error
        assert (RunStatus.FAILED, "SystemExit") == (
            result.status,
            None if error is None else error.type,
        )

    def test_a_keyboard_interrupt_of_a_task_stops_the_drive(self, jobs: Jobs) -> None:
        """KeyboardInterrupt in the driving thread leaves invoke, as Ctrl-C would."""
        log = Threads()

        def interrupted(_context: TaskContext) -> None:
            raise KeyboardInterrupt

        definition = JobDefinition(
            "D", [Task("a", interrupted), Task("b", log.record, launch_order=2)]
        )
        with Runner(jobs, [definition]) as runner, pytest.raises(KeyboardInterrupt):
            runner.invoke("D", run_id="run-1")

        assert {} == log.threads()
        assert [TaskStatus.RUNNING] == [launch.status for launch in load_launches(jobs, "run-1", 1)]


class TestTheDriveWhileATaskRunsInline:
    """The lease, cancel requests, interrupts and takeovers while the driver runs a task."""

    def test_the_lease_is_renewed_while_a_task_outlives_it(self, jobs: Jobs) -> None:
        """A task running in the driving thread past three leases: every claim is refused."""
        log = Threads()
        definition = JobDefinition("D", [Task("a", log.wait_for_release)])
        driver = Runner(jobs, [definition], lease=1.0)
        claimer = Runner(jobs, [definition], lease=1.0)
        thread, outcome = drive_in_thread(lambda: driver.invoke("D", run_id="run-1"))
        refused: list[str] = []
        try:
            assert log.started.wait(timeout=30)
            until = time.monotonic() + 3.0
            while time.monotonic() < until:
                try:
                    claimer.resume("run-1")
                except RunActiveError as error:
                    refused.append(type(error).__name__)
                else:
                    refused.append("claimed")
                time.sleep(0.1)
        finally:
            log.release.set()
            thread.join(timeout=60)
            driver.close()
            claimer.close()

        result = outcome[0]
        assert not isinstance(result, BaseException)
        assert {"a": "completed"} == result.statuses()
        assert log.threads()["a"] is thread
        assert len(refused) >= 10
        assert {"RunActiveError"} == set(refused)

    def test_a_cancel_request_reaches_a_task_running_inline(self, jobs: Jobs) -> None:
        """A cancel request from another thread sets the task's flag; the run ends canceled."""
        log = Threads()
        definition = JobDefinition(
            "D", [Task("a", log.wait_for_cancel), Task("b", log.record, launch_order=2)]
        )
        runner = Runner(jobs, [definition])
        thread, outcome = drive_in_thread(lambda: runner.invoke("D", run_id="run-1"))
        try:
            assert log.started.wait(timeout=30)
            runner.request_cancel("run-1")
            thread.join(timeout=60)
        finally:
            runner.close()

        result = outcome[0]
        assert not isinstance(result, BaseException)
        assert (RunStatus.CANCELED, [True]) == (result.status, log.saw_cancel)
        assert {"a": thread} == log.threads()

    def test_a_cancel_request_from_another_ledger_is_read_by_the_poll(self, tmp_path: Path) -> None:
        """Without the run's events (another Jobs on the same file), the watcher's poll sees it."""
        path = tmp_path / "runs.db"
        log = Threads()
        definition = JobDefinition("D", [Task("a", log.wait_for_cancel)])
        runner = Runner(Jobs(repository=SQLiteRepository(path)), [definition], poll_interval=0.1)
        elsewhere = Runner(Jobs(repository=SQLiteRepository(path)), [definition])
        thread, outcome = drive_in_thread(lambda: runner.invoke("D", run_id="run-1"))
        try:
            assert log.started.wait(timeout=30)
            elsewhere.request_cancel("run-1")
            thread.join(timeout=60)
        finally:
            runner.close()
            elsewhere.close()

        result = outcome[0]
        assert not isinstance(result, BaseException)
        assert (RunStatus.CANCELED, [True]) == (result.status, log.saw_cancel)

    def test_an_interrupt_lets_go_of_a_run_whose_task_runs_inline(self, jobs: Jobs) -> None:
        """Runner.interrupt from another thread: the task is asked to stop; the run is resumable."""
        log = Threads()
        definition = JobDefinition(
            "D", [Task("a", log.wait_for_cancel), Task("b", log.record, launch_order=2)]
        )
        runner = Runner(jobs, [definition])
        thread, outcome = drive_in_thread(lambda: runner.invoke("D", run_id="run-1"))
        try:
            assert log.started.wait(timeout=30)
            assert ("run-1",) == runner.interrupt("closed pipe")
            thread.join(timeout=60)
        finally:
            runner.close()

        result = outcome[0]
        assert not isinstance(result, BaseException)
        assert (RunStatus.RUNNING, [True]) == (result.status, log.saw_cancel)
        recorded = load_run(jobs, "run-1")
        assert recorded.state is not None
        assert (None, "closed pipe") == (
            recorded.state.lease,
            None if recorded.state.released is None else recorded.state.released.reason,
        )
        assert [TaskStatus.CANCELED] == [
            launch.status for launch in load_launches(jobs, "run-1", 1)
        ]
        assert ["a"] == list(log.threads())

    def test_a_run_let_go_is_not_leased_again_while_its_task_finishes(self, jobs: Jobs) -> None:
        """After an interrupt, a task that ignores it runs on past renewals: no lease comes back."""
        log = Threads()
        definition = JobDefinition("D", [Task("a", log.wait_for_release)])
        runner = Runner(jobs, [definition], lease=0.3, poll_interval=0.05)
        thread, _ = drive_in_thread(lambda: runner.invoke("D", run_id="run-1"))
        try:
            assert log.started.wait(timeout=30)
            runner.interrupt("test")
            time.sleep(0.6)  # six renewals would have been due
            state = load_run(jobs, "run-1").state
        finally:
            log.release.set()
            thread.join(timeout=60)
            runner.close()

        assert state is not None
        assert (None, "test") == (
            state.lease,
            None if state.released is None else state.released.reason,
        )

    def test_a_deposed_driver_stops_its_task_and_launches_nothing(self, jobs: Jobs) -> None:
        """When another drive's claim shows up while a task runs inline, the drive ends there."""
        log = Threads()
        definition = JobDefinition(
            "D", [Task("a", log.wait_for_cancel), Task("b", log.record, launch_order=2)]
        )
        runner = Runner(jobs, [definition], poll_interval=0.1)
        thread, outcome = drive_in_thread(lambda: runner.invoke("D", run_id="run-1"))
        try:
            assert log.started.wait(timeout=30)
            run = jobs.get("run-1")
            jobs.handle(
                UpdateJob(
                    job_id="run-1", etag=run.etag, state_update={"drive": {"owner": "someone-else"}}
                )
            )
            thread.join(timeout=60)
        finally:
            runner.close()

        assert isinstance(outcome[0], RunTakenOverError)
        assert [True] == log.saw_cancel
        assert ["a"] == list(log.threads())


class TestTheWatcherThread:
    """The thread that looks after a runner's drives: one for all, ended by close."""

    @staticmethod
    def watchers() -> set[threading.Thread]:
        """The watcher threads alive now."""
        return {t for t in threading.enumerate() if t.name == "jobledger-runner-watcher"}

    def test_runs_one_after_the_other_share_one_watcher(self, jobs: Jobs) -> None:
        """A runner's second invoke finds the watcher of its first still there."""
        before = self.watchers()
        runner = Runner(jobs, [JobDefinition("D", [Task("a", Threads().record)])])

        runner.invoke("D")
        first = self.watchers() - before
        runner.invoke("D")
        second = self.watchers() - before
        runner.close()

        assert 1 == len(first)
        assert first == second

    def test_close_ends_the_watcher(self, jobs: Jobs) -> None:
        """After close, the runner's watcher thread has ended; a closed runner keeps none."""
        before = self.watchers()
        runner = Runner(jobs, [JobDefinition("D", [Task("a", Threads().record)])])
        runner.invoke("D")
        started = self.watchers() - before

        runner.close()
        after_close = self.watchers() - before
        runner.invoke("D")
        for thread in self.watchers() - before:
            thread.join(timeout=30)
        after_closed_invoke = self.watchers() - before

        assert (1, set(), set()) == (len(started), after_close, after_closed_invoke)


class CountingLedger:
    """A ledger that counts the reads of each job (and otherwise is the Jobs it wraps)."""

    def __init__(self, jobs: Jobs) -> None:
        """Wrap ``jobs``."""
        self.jobs = jobs
        self.reads: dict[str, int] = {}

    def get(self, job_id: str) -> Job:
        """Count the read, then read."""
        self.reads[job_id] = self.reads.get(job_id, 0) + 1
        return self.jobs.get(job_id)

    def __getattr__(self, name: str) -> object:
        """Everything else: the wrapped ledger's."""
        return getattr(self.jobs, name)


class TestReadsOfTheRun:
    """A drive reads its run only when someone else changed it (or its poll is due)."""

    def test_the_events_of_its_own_writes_make_no_read(self) -> None:
        """300 one-task steps, each a write whose event comes back late, on its thread: no read."""
        jobs = Jobs()  # events handed to subscribers on a thread of their own, as by default
        counting = CountingLedger(jobs)
        definition = JobDefinition(
            "D", [Task(f"t{n}", Threads().record, launch_order=n) for n in range(300)]
        )

        with Runner(counting, [definition], poll_interval=60) as runner:  # type: ignore[arg-type]
            result = runner.invoke("D", run_id="run-1")
            jobs.drain()

        assert RunStatus.COMPLETED == result.status
        assert 0 == counting.reads.get("run-1", 0)
