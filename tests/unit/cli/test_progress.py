"""Following a run: the tracker that replays its events, the views, and stopping at once."""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING, NoReturn

import pytest
from rich.console import Console
from tests.unit.cli.conftest import RELEASE, STARTED, nightly_definitions

from jobledger import Jobs
from jobledger.cli import ExitCode
from jobledger.cli._progress import LIVE_ROWS, LineView, LiveView, NoView, RunTracker, follow
from jobledger.cli._render import Hints
from jobledger.demo import definitions
from jobledger.runner import (
    JobDefinition,
    Launch,
    Runner,
    RunResult,
    Task,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_run,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jobledger import JobEvent


class Exited(Exception):  # noqa: N818  (it says what happened, as SystemExit does)
    """Raised in place of ending the process."""

    def __init__(self, code: int) -> None:
        """Keep the exit code."""
        super().__init__(code)
        self.code = code


def exit_here(code: int) -> NoReturn:
    """End "the process" by raising :class:`Exited`."""
    raise Exited(code)


def _done(_context: TaskContext) -> None:
    """A task that does nothing."""


def _no_output(_context: TaskContext) -> TaskResult:
    """A task that produces no output."""
    return TaskResult(output=False)


def wide(count: int) -> JobDefinition:
    """A definition of ``count`` tasks that do nothing, ten to a step."""
    return JobDefinition(
        "wide", [Task(f"task-{n}", _done, launch_order=n // 10 + 1) for n in range(count)]
    )


def recorded_run(
    definition: JobDefinition, **options: object
) -> tuple[Jobs, RunResult, list[JobEvent]]:
    """Run ``definition`` in memory; return the ledger, the run and every event it made."""
    jobs = Jobs(delivery="inline")  # every event recorded by the time the run returns
    seen: list[JobEvent] = []
    jobs.subscribe(seen.append)
    with Runner(jobs, [definition]) as runner:
        result = runner.invoke(definition.identifier, **options)  # type: ignore[arg-type]
    return jobs, result, seen


def demo_definition() -> JobDefinition:
    """The demo's hr-nightly."""
    return definitions()[0]


class TestRunTracker:
    """Rebuilding a run from its events."""

    def test_the_events_of_a_run_rebuild_each_tasks_outcome(self) -> None:
        """Applying every event of a run, in order, gives each task's outcome as the run ended."""
        definition = demo_definition()
        jobs, result, seen = recorded_run(definition, input={"pace": 0}, force=100)
        tracker = RunTracker(jobs, result.run_id, tasks=definition.tasks)

        for event in seen:
            tracker.apply(event)

        assert (result.statuses(), result.progress, True) == (
            {name: outcome.status.value for name, outcome in tracker.outcomes.items()},
            tracker.progress,
            tracker.complete,
        )

    def test_following_a_run_reads_nothing_when_no_event_is_missing(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each event is decoded alone: a run of 200 tasks is followed without one read."""
        definition = wide(200)
        jobs, result, seen = recorded_run(definition)
        reads: list[str] = []
        get = jobs.get

        def counted(job_id: str) -> object:
            reads.append(job_id)
            return get(job_id)

        monkeypatch.setattr(jobs, "get", counted)
        tracker = RunTracker(jobs, result.run_id, tasks=definition.tasks)

        for event in seen:
            tracker.apply(event)

        assert ([], (200, 200)) == (reads, tracker.progress)

    def test_a_gap_in_a_launchs_versions_reads_that_launch_again(self) -> None:
        """A launch's events made elsewhere are missing here: the gap makes the tracker re-read."""
        definition = demo_definition()
        jobs, result, seen = recorded_run(definition, input={"pace": 0}, force=100)
        tracker = RunTracker(jobs, result.run_id, tasks=definition.tasks)
        first = f"{result.run_id}/1"
        started, *_, ended = [event for event in seen if event.job_id == first]

        tracker.apply(started)
        tracker.apply(ended)

        assert (
            Launch.of(jobs.get(first)).outcome()
            == tracker.outcomes[Launch.of(jobs.get(first)).input.task]
        )

    def test_a_resumed_run_starts_from_the_run_as_read(self) -> None:
        """Known tasks are kept; the tracker waits for a drive newer than the one it was given."""
        jobs = Jobs()
        runner = Runner(jobs, definitions())
        blocked = runner.invoke("hr-nightly", input={"pace": 0})
        known = load_run(jobs, blocked.run_id, definition=demo_definition())

        tracker = RunTracker(jobs, blocked.run_id, known=known)

        assert (known.statuses(), False, True) == (
            {name: outcome.status.value for name, outcome in tracker.outcomes.items()},
            tracker.claimed,
            tracker.complete,
        )


class TestLineView:
    """Progress off a terminal."""

    def test_each_launch_group_and_each_task_end_is_one_line(self) -> None:
        """Event by event, a step's launch is one line once all its launches are in."""
        definition = demo_definition()
        jobs, result, seen = recorded_run(definition, input={"pace": 0}, force=100)
        out = io.StringIO()
        view = LineView(Console(file=out, width=200))
        tracker = RunTracker(jobs, result.run_id, tasks=definition.tasks)

        for event in seen:
            tracker.apply(event)
            view.update(tracker, tracker.take_changes())

        printed = out.getvalue().splitlines()
        assert [
            "step 1: launching export-hr, export-directory",
            "step 2: launching synchronize",
            (
                "  synchronize: completed: 66 changes synchronized (21 to create, 38 to update, 7 "
                "to delete)"
            ),
            "step 3: launching provision-directory",
            (
                "  provision-directory: completed: 21 accounts created, 38 moved, 7 disabled in "
                "Active Directory"
            ),
        ] == [printed[0], *printed[3:]]

    def test_a_skipped_task_is_one_line_with_its_reason(self) -> None:
        """A task whose parents did not let it run is printed skipped, once."""
        definition = JobDefinition(
            "skips",
            [
                Task("first", _no_output),
                Task("second", _done, launch_order=2, parents=("first",)),
            ],
        )
        jobs, result, seen = recorded_run(definition)
        out = io.StringIO()
        view = LineView(Console(file=out, width=200))
        tracker = RunTracker(jobs, result.run_id, tasks=definition.tasks)

        for event in seen:
            tracker.apply(event)
            view.update(tracker, tracker.take_changes())

        assert [
            "step 1: launching first",
            "  first: completed",
            f"  second: skipped: {result.outcomes['second'].skip_reason}",
        ] == out.getvalue().splitlines()


class TestLiveView:
    """Progress on a terminal."""

    def test_a_big_run_shows_a_bounded_table_and_its_progress(self) -> None:
        """Past LIVE_ROWS tasks, the table shows at most that many rows, and the counts."""
        definition = wide(100)
        jobs, result, seen = recorded_run(definition)
        tracker = RunTracker(jobs, result.run_id, tasks=definition.tasks)
        out = io.StringIO()
        console = Console(file=out, width=200)
        view = LiveView(console)
        for event in seen:
            tracker.apply(event)
            view.update(tracker, tracker.take_changes())

        console.print(view.render(tracker))

        printed = out.getvalue().splitlines()
        assert ("100/100 tasks done (100 completed)", LIVE_ROWS + 3) == (
            printed[0],
            len(printed),
        )


class StopFollowing:
    """A view that closes "standard output" at its first update (as ``| head -1`` does)."""

    def __init__(self) -> None:
        """Close at the first update."""
        self.inner = NoView()

    def start(self, tracker: RunTracker) -> None:
        """Show nothing."""

    def headline(self, text: object) -> None:
        """Show nothing."""

    def update(self, tracker: RunTracker, launches: Sequence[Launch]) -> None:  # noqa: ARG002  (a view's signature)
        """Raise as a write to a closed pipe does, once the task runs."""
        if STARTED.is_set():
            raise BrokenPipeError

    def stop(self, tracker: RunTracker) -> None:
        """Nothing to stop."""


def _drive_threads_end() -> None:
    RELEASE.set()
    for thread in threading.enumerate():
        if thread.name.startswith(("jobledger-cli-drive", "jobledger-server", "jobledger-agent")):
            thread.join(timeout=30)


class TestStoppingAtOnce:
    """A second Ctrl-C, SIGTERM or a closed output: the run is let go, resumable at once."""

    def follow_until_exit(
        self, store: str, job: str, view: object = None
    ) -> tuple[int, RunResult, Jobs]:
        """Invoke ``job`` of the test app as run-1 and follow it until it exits "the process"."""
        jobs = Jobs(repository=SQLiteRepository(store))
        runner = Runner(jobs, nightly_definitions(), poll_interval=0.05)
        with pytest.raises(Exited) as exited:
            follow(
                jobs,
                runner,
                RunTracker(jobs, "run-1"),
                lambda: runner.invoke(job, run_id="run-1"),
                view or LineView(Console(file=io.StringIO())),  # type: ignore[arg-type]
                hints=Hints(),
                messages=Console(file=io.StringIO()),
                exit_with=exit_here,
            )
        left = load_run(jobs, "run-1")
        _drive_threads_end()
        return exited.value.code, left, jobs

    def test_a_second_ctrl_c_lets_the_run_go_with_its_cancel_request(self, store: str) -> None:
        """The exit comes while the task runs: the task is canceled, the lease released."""
        code, left, _ = self.follow_until_exit(store, "interrupt-twice")

        state = left.state
        assert state is not None
        assert (ExitCode.INTERRUPTED, "running", "canceled", None, "a second Ctrl-C", True) == (
            code,
            left.status.value,
            left.outcomes["wait"].status.value,
            state.lease,
            state.released.reason if state.released else None,
            left.cancel_requested,
        )

    def test_sigterm_lets_the_run_go_and_a_resume_finishes_it(self, store: str) -> None:
        """SIGTERM exits 130, the run resumable at once: a resume takes it over and completes."""
        code, left, jobs = self.follow_until_exit(store, "terminate")

        resumed = Runner(jobs, nightly_definitions()).resume("run-1")
        state = left.state
        assert state is not None
        assert (ExitCode.INTERRUPTED, "SIGTERM", TaskStatus.CANCELED) == (
            code,
            state.released.reason if state.released else None,
            left.outcomes["wait"].status,
        )
        assert ("completed", "taken over") == (
            resumed.status.value,
            resumed.outcomes["wait"].summary,
        )

    def test_a_closed_output_lets_the_run_go(
        self, store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A write that meets a closed pipe stops the drive: the run is let go, and exit 130."""
        silenced: list[bool] = []
        monkeypatch.setattr("jobledger.cli._progress.silence_stdout", lambda: silenced.append(True))

        code, left, _ = self.follow_until_exit(store, "hold", StopFollowing())

        state = left.state
        assert state is not None
        assert (ExitCode.INTERRUPTED, "the output was closed", True) == (
            code,
            state.released.reason if state.released else None,
            bool(silenced),
        )
