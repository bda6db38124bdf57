"""Following a run: the tracker that replays its events, the line view, and the second Ctrl-C."""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING, NoReturn

import pytest
from rich.console import Console

from jobledger import Jobs
from jobledger.cli import ExitCode
from jobledger.cli._progress import LineView, RunTracker, follow, mark_interrupted
from jobledger.cli._render import Hints, is_interrupted
from jobledger.demo import definitions
from jobledger.runner import Runner, RunResult
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
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


class TestRunTracker:
    """Rebuilding a run from its events."""

    def test_the_events_of_a_run_rebuild_the_stored_run(self) -> None:
        """Applying every event of a run, in order, gives the job the ledger holds."""
        jobs = Jobs()
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)
        result = Runner(jobs, definitions()).invoke("hr-nightly", input={"pace": 0})
        tracker = RunTracker(jobs, result.run_id)

        changed = [tracker.apply(event) for event in seen]

        assert (jobs.get(result.run_id), True) == (tracker.job, all(changed))

    def test_a_gap_in_the_versions_reads_the_run_again(self) -> None:
        """Events made elsewhere are missing here: a version gap makes the tracker re-read."""
        jobs = Jobs()
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)
        result = Runner(jobs, definitions()).invoke("hr-nightly", input={"pace": 0})
        tracker = RunTracker(jobs, result.run_id)
        tracker.apply(seen[0])

        tracker.apply(seen[-1])

        assert jobs.get(result.run_id) == tracker.job


class TestLineView:
    """Progress off a terminal."""

    def test_each_launch_and_each_task_end_is_one_line(self) -> None:
        """Replaying a run's events prints the steps launched and the tasks ended, in order."""
        jobs = Jobs()
        out = io.StringIO()
        view = LineView(Console(file=out, width=200))
        tracker: list[RunTracker] = []

        def show(event: JobEvent) -> None:
            if not tracker:
                tracker.append(RunTracker(jobs, event.job_id))
                view.start(None)
            if tracker[0].apply(event) and tracker[0].result is not None:
                view.show(tracker[0].result)

        jobs.subscribe(show)
        Runner(jobs, definitions()).invoke("hr-nightly", input={"pace": 0}, force=100)

        printed = out.getvalue().splitlines()
        assert [
            "step 1: launching export-hr, export-directory",
            "step 2: launching synchronize",
            (
                "  synchronize: completed: 66 changes synchronized (21 to create, 38 to update, 7 "
                "to "
                "delete)"
            ),
            "step 3: launching provision-directory",
            (
                "  provision-directory: completed: 21 accounts created, 38 moved, 7 disabled in "
                "Active Directory"
            ),
        ] == [printed[0], *printed[3:]]


class TestSecondCtrlC:
    """A second Ctrl-C during invoke: stop at once, the run left resumable."""

    def test_it_stops_at_once_leaving_the_run_running_and_marked(self, store: str) -> None:
        """The exit comes while the task still runs; the run is running, uncanceled, interrupted."""
        from tests.unit.cli.conftest import RELEASE, nightly_definitions  # noqa: PLC0415

        jobs = Jobs(repository=SQLiteRepository(store))
        runner = Runner(jobs, nightly_definitions(), poll_interval=0.05)
        with pytest.raises(Exited) as exited:
            follow(
                jobs,
                "run-1",
                lambda: runner.invoke("interrupt-twice", run_id="run-1"),
                LineView(Console(file=io.StringIO())),
                Hints(),
                exit_now=exit_here,
            )
        stopped = jobs.get("run-1")
        drives = [
            thread for thread in threading.enumerate() if thread.name == "jobledger-cli-drive"
        ]
        RELEASE.set()
        for thread in drives:
            thread.join(timeout=30)

        assert (ExitCode.INTERRUPTED, "running", "running", True, False) == (
            exited.value.code,
            stopped.status,
            RunResult.of(stopped).statuses()["wait"],
            is_interrupted(stopped),
            "cancel_requested" in stopped.state,
        )

    def test_marking_a_finished_run_changes_nothing(self) -> None:
        """A run that ended before the second Ctrl-C is left as it is."""
        jobs = Jobs()
        result = Runner(jobs, definitions()).invoke("hr-nightly", input={"pace": 0}, force=100)

        before = jobs.get(result.run_id)

        assert before == mark_interrupted(jobs, result.run_id) == jobs.get(result.run_id)
