"""Driving a run from the command line: live progress, and what Ctrl-C does.

The runner drives the run in a worker thread; the main thread follows the
run's events (in commit order, through the ledger's in-process subscription)
and shows them: a live table on a terminal, one line per change elsewhere.
The first Ctrl-C (SIGINT) asks the run to cancel (the running tasks finish,
then the run ends ``canceled``); a second one stops the process at once. The
run is then left ``running`` with its cancel request withdrawn and marked
``interrupted``, so ``jobledger resume`` takes it over at once.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, Protocol, Self

import attrs
from rich.live import Live
from rich.text import Text

from jobledger import (
    ConcurrencyError,
    InvalidTransitionError,
    Job,
    JobNotFoundError,
    Jobs,
    JobStarted,
    JsonObject,
)
from jobledger._application.defaults import utc_now
from jobledger._core.events import changed_job, started_job
from jobledger.cli._exit import ExitCode
from jobledger.cli._printable import literal
from jobledger.cli._render import INTERRUPTED, Hints, run_table, task_detail, task_status
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    RunNotFoundError,
    RunResult,
    TaskStatus,
    request_cancel,
)

if TYPE_CHECKING:
    from types import FrameType

    from rich.console import Console

    from jobledger import JobEvent

__all__ = [
    "LineView",
    "LiveView",
    "NoView",
    "ProgressView",
    "RunTracker",
    "follow",
    "mark_interrupted",
]

# Seconds the main thread waits for an event before it looks at Ctrl-C and the worker.
_TICK = 0.1


class RunTracker:
    """The run as its events tell it, change by change, without reading the ledger each time.

    Events of changes made in other processes do not reach this process; a
    gap in the versions makes the tracker read the run again.

    Args:
        jobs: The ledger, read when events are missing.
        run_id: The run.
        job: The run's job as read before following it; ``None`` when the run
            is about to be started.
    """

    def __init__(self, jobs: Jobs, run_id: str, job: Job | None = None) -> None:
        self.jobs = jobs
        self.run_id = run_id
        self.job = job

    def apply(self, event: JobEvent) -> bool:
        """Take in one event of the run; return whether the run changed."""
        if isinstance(event, JobStarted):
            if self.job is not None:
                return False
            self.job = started_job(event)
            return True
        if self.job is not None and event.version <= self.job.version:
            return False
        if self.job is None or event.version != self.job.version + 1:
            return self.refresh()
        self.job = changed_job(self.job, event)
        return True

    def refresh(self) -> bool:
        """Read the run from the ledger; return whether it was found."""
        try:
            self.job = self.jobs.get(self.run_id)
        except JobNotFoundError:
            return False
        return True

    @property
    def result(self) -> RunResult | None:
        """The run as last seen, or ``None`` before it starts."""
        return None if self.job is None else RunResult.of(self.job)


class ProgressView(Protocol):
    """Shows a run while it goes."""

    def start(self, result: RunResult | None) -> None:
        """Begin showing; ``result`` is the run as it stands before this drive, if it exists."""
        ...

    def show(self, result: RunResult) -> None:
        """Show the run as it is now."""
        ...

    def say(self, text: Text) -> None:
        """Show a message (about Ctrl-C, say)."""
        ...

    def stop(self) -> None:
        """Stop showing; what was shown stays on the screen."""
        ...


class NoView:
    """Shows nothing (``--json``): only the messages, on standard error."""

    def __init__(self, messages: Console) -> None:
        self.messages = messages

    def start(self, result: RunResult | None) -> None:
        """Show nothing."""

    def show(self, result: RunResult) -> None:
        """Show nothing."""

    def say(self, text: Text) -> None:
        """Print the message on standard error."""
        self.messages.print(text)

    def stop(self) -> None:
        """Nothing to stop."""


class LineView:
    """One line per change that matters: a step launched, a task ended, the run claimed."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.statuses: dict[str, TaskStatus] = {}
        self.groups = 0
        self.drive = 0

    def start(self, result: RunResult | None) -> None:
        """Remember where the run stands, so that only what changes from here is printed."""
        if result is not None:
            self._remember(result)

    def _remember(self, result: RunResult) -> None:
        self.statuses = {name: outcome.status for name, outcome in result.outcomes.items()}
        self.groups = len(result.launch_groups)

    def show(self, result: RunResult) -> None:
        """Print what changed since the last call."""
        for group in result.launch_groups[self.groups :]:
            self.out.print(literal(f"step {group.step}: launching {', '.join(group.tasks)}"))
        for name, outcome in result.outcomes.items():
            status = outcome.status
            if status is self.statuses.get(name):
                continue
            if status not in {TaskStatus.PENDING, TaskStatus.RUNNING}:
                line = literal(f"  {name}: ")
                line.append_text(task_status(outcome))
                detail = task_detail(outcome)
                if detail:
                    line.append(f": {detail}")
                self.out.print(line)
        self._remember(result)

    def say(self, text: Text) -> None:
        """Print the message."""
        self.out.print(text)

    def stop(self) -> None:
        """Nothing to stop."""


class LiveView:
    """A live table of the run's tasks on a terminal."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.live: Live | None = None

    def start(self, result: RunResult | None) -> None:
        """Start the live display."""
        self.live = Live(
            Text("starting…") if result is None else run_table(result),
            console=self.out,
            refresh_per_second=10,
            transient=False,
        )
        self.live.start()

    def show(self, result: RunResult) -> None:
        """Redraw the table."""
        if self.live is not None:
            self.live.update(run_table(result))

    def say(self, text: Text) -> None:
        """Print the message above the table."""
        self.out.print(text)

    def stop(self) -> None:
        """Stop redrawing; the last table stays."""
        if self.live is not None:
            self.live.stop()
            self.live = None


class _Interrupts:
    """Counts SIGINTs while installed, in place of Python's KeyboardInterrupt."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: Callable[[int, FrameType | None], object] | int | None = None
        self.installed = False

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1

    def __enter__(self) -> Self:
        # Signal handlers can only be set in the main thread (not, say, in a test's thread).
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.installed = True
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.installed:
            # None: the handler before was not set from Python; the default is the safe bet.
            previous = signal.SIG_DFL if self.previous is None else self.previous
            signal.signal(signal.SIGINT, previous)


def mark_interrupted(jobs: Jobs, run_id: str) -> Job | None:
    """Withdraw the run's cancel request and mark its current drive as stopped by Ctrl-C.

    A later ``resume`` takes a run marked so over at once, instead of waiting
    for its runner's silence. Returns the run as left, or ``None`` if it does
    not exist.
    """
    while True:
        try:
            job = jobs.get(run_id)
        except JobNotFoundError:
            return None
        if job.phase.is_terminal:
            return job
        drive = job.state.get("drive")
        mark = {
            "drive": drive.get("id") if isinstance(drive, JsonObject) else None,
            "at": utc_now().isoformat(),
            "by": f"a second Ctrl-C in process {os.getpid()}",
        }
        try:
            return jobs.update(
                run_id,
                etag=job.etag,
                state_update={"cancel_requested": None, INTERRUPTED: mark},
            )
        except (ConcurrencyError, InvalidTransitionError):
            continue


@attrs.define
class _Follow:
    jobs: Jobs
    tracker: RunTracker
    view: ProgressView
    hints: Hints
    exit_now: Callable[[int], NoReturn]
    cancel_wanted: bool = False
    cancel_asked: bool = False

    def on_interrupts(self, count: int) -> None:
        if count >= 2:  # noqa: PLR2004  (the second Ctrl-C)
            self.stop_at_once()
        if count == 1 and not self.cancel_asked:
            self.cancel_asked = self.cancel_wanted = True
            self.view.say(
                Text(
                    "Ctrl-C: cancel requested; the running tasks finish, then the run ends "
                    "canceled. Press Ctrl-C again to stop at once (the run stays resumable).",
                    style="yellow",
                )
            )
        if self.cancel_wanted:
            try:
                request_cancel(self.jobs, self.tracker.run_id)
            except RunNotFoundError:
                return  # not started yet: asked again at the next tick
            self.cancel_wanted = False

    def watch(
        self,
        worker: threading.Thread,
        events: queue.SimpleQueue[JobEvent],
        interrupts: _Interrupts,
    ) -> None:
        """Show the run's events until ``worker`` ends, acting on Ctrl-C meanwhile."""
        while worker.is_alive() or not events.empty():
            try:
                event: JobEvent | None = events.get(timeout=_TICK)
            except queue.Empty:
                event = None
            if event is not None and self.tracker.apply(event):
                result = self.tracker.result
                if result is not None:
                    self.view.show(result)
            if interrupts.count:
                self.on_interrupts(interrupts.count)
        worker.join()

    def stop_at_once(self) -> NoReturn:
        run_id = self.tracker.run_id
        job = mark_interrupted(self.jobs, run_id)
        if job is not None and not job.phase.is_terminal:
            message = (
                f"Ctrl-C again: stopped at once. Run {run_id} is left running with no runner; "
                f"resume it with `{self.hints.command('resume', run_id, app=True)}` or cancel it "
                f"with `{self.hints.command('cancel', run_id)}`."
            )
        else:
            message = "Ctrl-C again: stopped at once."
        self.view.say(Text(message, style="yellow"))
        self.view.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        self.exit_now(ExitCode.INTERRUPTED)


def follow(
    jobs: Jobs,
    run_id: str,
    drive: Callable[[], RunResult],
    view: ProgressView,
    hints: Hints,
    *,
    job: Job | None = None,
    exit_now: Callable[[int], NoReturn] = os._exit,
) -> RunResult:
    """Call ``drive`` (which drives run ``run_id``) in a worker thread, showing the run.

    Ctrl-C is handled as the module says while ``drive`` runs; the second one
    calls ``exit_now`` with :attr:`ExitCode.INTERRUPTED` (``os._exit`` by
    default: the process ends without waiting for the tasks' threads).

    Returns:
        What ``drive`` returned.

    Raises:
        Exception: whatever ``drive`` raised.
    """
    tracker = RunTracker(jobs, run_id, job)
    events: queue.SimpleQueue[JobEvent] = queue.SimpleQueue()

    def collect(event: JobEvent) -> None:
        if event.job_id == run_id:
            events.put(event)

    outcome: list[RunResult | BaseException] = []

    def work() -> None:
        try:
            outcome.append(drive())
        except BaseException as err:  # noqa: BLE001  (handed to the main thread)
            outcome.append(err)

    following = _Follow(jobs, tracker, view, hints, exit_now)
    subscription = jobs.subscribe(collect, service=RUN_SERVICE, entity=RUN_ENTITY)
    worker = threading.Thread(target=work, name="jobledger-cli-drive", daemon=True)
    view.start(tracker.result)
    try:
        with _Interrupts() as interrupts:
            worker.start()
            following.watch(worker, events, interrupts)
        if tracker.refresh() and tracker.result is not None:
            view.show(tracker.result)
    finally:
        subscription.cancel()
        view.stop()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
