"""Timeouts: counted from a task's start, honouring warning mode, and never waited out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from jobledger import Jobs
from jobledger.runner import (
    DefinitionBuilder,
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskContext,
    TaskStatus,
    load_launches,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from jobledger.runner import RunResult


_P = ParamSpec("_P")
_T = TypeVar("_T")


def done(_context: TaskContext) -> None:
    """Return normally: produced output."""


class TestTimeouts:
    """A task's timeout counts from when it starts, and honours warning mode."""

    def test_a_task_queued_behind_another_is_not_timed_while_it_waits(self, jobs: Jobs) -> None:
        """On a one-worker pool, tasks that wait longer than their timeout still complete."""
        nightly = DefinitionBuilder("D")

        @nightly.task(type="export", side="agent")
        def hold(_context: TaskContext) -> None:
            # Holds the only worker for twice the others' timeout.
            time.sleep(0.6)

        for name in ("b", "c"):
            nightly.task(identifier=name, type="export", side="agent", timeout=0.3)(done)

        with ThreadPoolExecutor(max_workers=1) as pool:
            result = Runner(jobs, [nightly.build()], executors={"agent": pool}).invoke("D")

        assert {"hold": "completed", "b": "completed", "c": "completed"} == result.statuses()
        assert RunStatus.COMPLETED == result.status

    def test_a_timed_out_task_records_when_it_started(self, jobs: Jobs) -> None:
        """A task that outlives its timeout fails with its start time recorded."""

        def slow(context: TaskContext) -> None:
            context.wait_for_cancel(timeout=30)

        definition = JobDefinition("D", [Task("slow", slow, timeout=0.05)])

        result = Runner(jobs, [definition]).invoke("D")

        outcome = result.outcomes["slow"]
        assert outcome.error is not None
        assert (TaskStatus.FAILED, "jobledger.runner.TaskTimeoutError") == (
            outcome.status,
            outcome.error.type,
        )
        assert outcome.started_at is not None

    def test_a_timeout_in_warning_mode_is_a_warning(self, jobs: Jobs) -> None:
        """A task in warning mode that times out is recorded as a warning; the run goes on."""

        def slow(context: TaskContext) -> None:
            context.wait_for_cancel(timeout=30)

        definition = JobDefinition(
            "D",
            [
                Task("slow", slow, timeout=0.05, warning_mode=True),
                Task("after", done, launch_order=2),
            ],
        )

        result = Runner(jobs, [definition]).invoke("D")

        assert {"slow": "warning", "after": "completed"} == result.statuses()
        assert RunStatus.COMPLETED == result.status
        assert ("jobledger.runner.TaskTimeoutError",) == tuple(w.type for w in result.warnings)

    def test_a_thread_task_past_its_timeout_is_not_waited_for(self, jobs: Jobs) -> None:
        """A task that ignores its cancel flag is recorded failed at its timeout; invoke returns."""
        release = threading.Event()
        stuck_thread: list[threading.Thread] = []

        def stuck(_context: TaskContext) -> None:
            stuck_thread.append(threading.current_thread())
            release.wait(timeout=30)

        definition = JobDefinition(
            "D", [Task("stuck", stuck, timeout=0.05), Task("after", done, launch_order=2)]
        )
        runner = Runner(jobs, [definition])
        try:
            result = runner.invoke("D", run_id="run-1")
            still_running = stuck_thread[0].is_alive() and not release.is_set()
            abandoned = runner.abandoned
        finally:
            release.set()
            runner.close()
        [launch] = load_launches(jobs, "run-1", 1)

        assert still_running
        assert abandoned
        assert (RunStatus.FAILED, {"stuck": "failed", "after": "pending"}) == (
            result.status,
            result.statuses(),
        )
        assert launch.state.error is not None
        assert (TaskStatus.FAILED, "jobledger.runner.TaskTimeoutError") == (
            launch.status,
            launch.state.error.type,
        )
        assert "failed" == jobs.get("run-1/1").status

    def test_a_runner_whose_tasks_all_ended_abandoned_nothing(self, jobs: Jobs) -> None:
        """Runner.abandoned stays false when every task ended within its timeout."""
        runner = Runner(jobs, [JobDefinition("D", [Task("quick", done, timeout=30)])])

        result = runner.invoke("D")
        runner.close()

        assert (RunStatus.COMPLETED, False) == (result.status, runner.abandoned)


class Lost(Executor):
    """An executor elsewhere that takes calls and never runs them: a lost task.

    ``running`` says whether its futures report the call running (a worker
    took it) or leave it pending (still queued).
    """

    def __init__(self, *, running: bool) -> None:
        """Report the calls running, or queued."""
        self.running = running
        self.futures: list[Future[object]] = []

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Keep the call, never run it."""
        del fn, args, kwargs
        future: Future[_T] = Future()
        if self.running:
            future.set_running_or_notify_cancel()
        self.futures.append(future)  # type: ignore[arg-type]
        return future


class TestLaunchesElsewhereThatNeverStart:
    """A launch in another process whose start never shows up in its job."""

    def test_one_its_executor_says_runs_fails_on_its_timeout(self, tmp_path: Path) -> None:
        """Taken by a worker but never recorded as started: failed at its timeout plus a grace."""
        jobs = Jobs(repository=SQLiteRepository(tmp_path / "runs.db"))
        definition = JobDefinition("D", [Task("lost", done, timeout=0.2, side="agent")])
        runner = Runner(jobs, [definition], executors={"agent": Lost(running=True)})
        finished: list[RunResult] = []
        driving = threading.Thread(target=lambda: finished.append(runner.invoke("D")))

        driving.start()
        driving.join(timeout=30)
        if driving.is_alive():  # not timed out: let go of it, so the suite does not hang
            runner.interrupt()
            driving.join(timeout=30)

        outcome = finished[0].outcomes["lost"]
        assert (TaskStatus.FAILED, "jobledger.runner.TaskTimeoutError") == (
            outcome.status,
            None if outcome.error is None else outcome.error.type,
        )

    def test_one_still_queued_is_not_timed(self, tmp_path: Path) -> None:
        """A launch its executor keeps queued waits past its timeout, still running."""
        jobs = Jobs(repository=SQLiteRepository(tmp_path / "runs.db"))
        definition = JobDefinition("D", [Task("queued", done, timeout=0.1, side="agent")])
        runner = Runner(jobs, [definition], executors={"agent": Lost(running=False)})
        finished: list[RunResult] = []
        driving = threading.Thread(
            target=lambda: finished.append(runner.invoke("D", run_id="run-1"))
        )

        driving.start()
        driving.join(timeout=1.5)  # the timeout and its grace pass
        waited = driving.is_alive()
        runner.interrupt("test over")
        driving.join(timeout=30)

        assert waited
        assert [TaskStatus.CANCELED] == [
            launch.status for launch in load_launches(jobs, "run-1", 1)
        ]
