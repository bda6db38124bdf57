"""Driving a run from the command line: live progress, and how a drive is stopped.

The runner drives the run in a worker thread; the main thread follows the
events of the run's job and of its launches' jobs (in commit order, through
the ledger's in-process subscription) and shows them: a live table on a
terminal, one line per change elsewhere. An event costs the same at task 10
and at task 10,000: only the job it is about is decoded, and the views draw
what changed (the live table shows the running tasks and the last ones that
ended, never the whole run).

The first Ctrl-C (SIGINT) asks the run to cancel: the running tasks finish,
then the run ends ``canceled``. A second Ctrl-C, SIGTERM, or the output
closing (``jobledger invoke -j JOB | head -1``) stops at once:
:meth:`~jobledger.runner.Runner.interrupt` lets go of the run (its running
launches end ``canceled``, its lease is released, so ``jobledger resume``
takes it over at once), a message goes to standard error, and the process
exits with :attr:`~jobledger.cli.ExitCode.INTERRUPTED` without waiting for
the tasks' threads.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NoReturn, Protocol, Self

import attrs
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from jobledger import JobEvent, JobNotFoundError, Jobs, JobStarted
from jobledger._core.events import changed_job, started_job
from jobledger.cli._exit import ExitCode, exit_code_of
from jobledger.cli._printable import literal
from jobledger.cli._render import Hints, run_table, task_detail, task_status
from jobledger.runner import (
    RUN_SERVICE,
    Launch,
    Runner,
    RunNotFoundError,
    RunResult,
    TaskOutcome,
    TaskStatus,
    request_cancel,
    run_result,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import FrameType

    from rich.console import RenderableType

    from jobledger import Job
    from jobledger.runner import Task

__all__ = [
    "LIVE_ROWS",
    "LineView",
    "LiveView",
    "NoView",
    "ProgressView",
    "RunTracker",
    "exit_now",
    "follow",
    "silence_stdout",
]

#: Seconds the main thread waits for an event before it looks at signals and the worker.
_TICK: Final = 0.1

# The longest a finished drive waits for its last events to reach the display.
_DRAIN_SECONDS: Final = 10.0
#: Seconds a stop waits for the drive to let go of its run before it exits anyway.
_STOP_PATIENCE: Final = 10.0
#: The most task rows the live table shows (the running tasks first, then the last ended).
LIVE_ROWS: Final = 30


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` at once, without waiting for the tasks' threads.

    The streams are flushed first; a standard output whose reader went away
    is let go quietly.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


def silence_stdout() -> None:
    """Point standard output at the null device: its reader went away (a closed pipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # not a real file (a test's capture): nothing to protect


def _pending(task: Task) -> TaskOutcome:
    return TaskOutcome(task.identifier, task.type, task.launch_order, task.side, TaskStatus.PENDING)


class RunTracker:
    """The run as its events tell it: its job, and each task's latest launch.

    Each event updates the one job it is about (events of changes made in
    other processes do not reach this process: a gap in a job's versions
    makes the tracker read that job again).

    Args:
        jobs: The ledger, read when events are missing.
        run_id: The run.
        tasks: The run's tasks, listed as pending until launched (a new run).
        known: The run as read before following it (a resume): its tasks and
            launches so far.
    """

    def __init__(
        self,
        jobs: Jobs,
        run_id: str,
        *,
        tasks: Iterable[Task] = (),
        known: RunResult | None = None,
    ) -> None:
        self.jobs = jobs
        self.run_id = run_id
        self.run: RunResult | None = known
        self.job: Job | None = None
        self.outcomes: dict[str, TaskOutcome] = (
            dict(known.outcomes)
            if known is not None
            else {task.identifier: _pending(task) for task in tasks}
        )
        #: Each task's place in the run (step order), for the views.
        self.order = {name: position for position, name in enumerate(self.outcomes)}
        self.counts: collections.Counter[TaskStatus] = collections.Counter(
            outcome.status for outcome in self.outcomes.values()
        )
        #: The tasks running now, in the order they were launched.
        self.running: dict[str, None] = {
            name: None
            for name, outcome in self.outcomes.items()
            if outcome.status is TaskStatus.RUNNING
        }
        state = known.state if known is not None else None
        self.first_drive = state.drive.number if state is not None and state.drive else 0
        self.seen = state.launches if state is not None else 0
        self.latest: dict[str, int] = {}
        self.launch_jobs: dict[str, Job] = {}
        self.changes: list[Launch] = []

    @property
    def claimed(self) -> bool:
        """Whether the drive being followed has claimed the run (its first write is in)."""
        state = self.run.state if self.run is not None else None
        return (
            state is not None and state.drive is not None and state.drive.number > self.first_drive
        )

    @property
    def complete(self) -> bool:
        """Whether every launch the run's job counts has been seen (a step's launches are in)."""
        state = self.run.state if self.run is not None else None
        return state is None or self.seen >= state.launches

    @property
    def progress(self) -> tuple[int, int]:
        """Tasks settled and tasks in all."""
        done = sum(count for status, count in self.counts.items() if status.is_done)
        state = self.run.state if self.run is not None else None
        total = max(len(self.outcomes), state.tasks if state is not None else 0)
        return done, total

    def apply(self, event: JobEvent) -> None:
        """Take in one event of the run's job or of one of its launches' jobs."""
        if event.job_id == self.run_id:
            job = self._follow(self.job, event)
            if job is not None:
                self.job = job
                self.run = run_result(job)
            return
        job = self._follow(self.launch_jobs.get(event.job_id), event)
        if job is None:
            return
        if job.phase.is_terminal:
            self.launch_jobs.pop(job.id, None)  # nothing follows an end
        else:
            self.launch_jobs[job.id] = job
        try:
            launch = Launch.of(job)
        except ValueError:
            return  # not a launch of this layout
        self._take(launch)

    def _follow(self, job: Job | None, event: JobEvent) -> Job | None:
        """The job after ``event``, or ``None`` when the event changes nothing known."""
        if isinstance(event, JobStarted):
            return started_job(event) if job is None else None
        if job is not None and event.version <= job.version:
            return None
        if job is None or event.version != job.version + 1:
            try:
                return self.jobs.get(event.job_id)
            except JobNotFoundError:
                return None
        return changed_job(job, event)

    def _take(self, launch: Launch) -> None:
        record = launch.input
        name = record.task
        if record.launch < self.latest.get(name, 0):
            return  # an older launch of a task launched again since
        self.latest[name] = record.launch
        self.seen = max(self.seen, record.launch)
        outcome = launch.outcome()
        self.order.setdefault(name, len(self.order))
        previous = self.outcomes.get(name)
        if previous is not None:
            self.counts[previous.status] -= 1
        self.counts[outcome.status] += 1
        self.outcomes[name] = outcome
        if outcome.status is TaskStatus.RUNNING:
            self.running[name] = None
        else:
            self.running.pop(name, None)
        self.changes.append(launch)

    def take_changes(self) -> list[Launch]:
        """The launches changed since the last call, in the order their events came."""
        changes, self.changes = self.changes, []
        return changes


class ProgressView(Protocol):
    """Shows a run while it goes."""

    def start(self, tracker: RunTracker) -> None:
        """Begin showing the run as it stands."""
        ...

    def headline(self, text: Text) -> None:
        """Say what is driven, once the drive claimed the run."""
        ...

    def update(self, tracker: RunTracker, launches: Sequence[Launch]) -> None:
        """Show what changed: ``launches`` changed, in order (maybe none: the run did)."""
        ...

    def stop(self, tracker: RunTracker) -> None:
        """Stop showing; what was shown stays on the screen."""
        ...


class NoView:
    """Shows nothing (``--json``)."""

    def start(self, tracker: RunTracker) -> None:
        """Show nothing."""

    def headline(self, text: Text) -> None:
        """Show nothing."""

    def update(self, tracker: RunTracker, launches: Sequence[Launch]) -> None:
        """Show nothing."""

    def stop(self, tracker: RunTracker) -> None:
        """Nothing to stop."""


class LineView:
    """One line per change that matters: a step launched, a task ended or skipped."""

    def __init__(self, out: Console) -> None:
        self.out = out
        # Launch groups seen but not printed yet: a step's launches arrive one event each.
        self.groups: dict[int, tuple[int, list[str]]] = {}
        self.shown: dict[int, TaskStatus] = {}

    def start(self, tracker: RunTracker) -> None:
        """Nothing to print before the first change."""

    def headline(self, text: Text) -> None:
        """Print the headline."""
        self.out.print(text)

    def update(self, tracker: RunTracker, launches: Sequence[Launch]) -> None:
        """Print each launch group once its launches are all in, and each launch's end."""
        for launch in launches:
            record = launch.input
            status = launch.status
            if record.group is not None and record.launch not in self.shown:
                self.groups.setdefault(record.group, (record.step, []))[1].append(record.task)
            if self.shown.get(record.launch) is status:
                continue
            self.shown[record.launch] = status
            if status in {TaskStatus.PENDING, TaskStatus.RUNNING}:
                continue
            self._print_groups()
            line = literal(f"  {record.task}: ")
            outcome = launch.outcome()
            line.append_text(task_status(outcome))
            detail = task_detail(outcome)
            if detail:
                line.append(f": {detail}")
            self.out.print(line)
        if tracker.complete:
            self._print_groups()

    def _print_groups(self) -> None:
        for step, tasks in self.groups.values():
            self.out.print(literal(f"step {step}: launching {', '.join(tasks)}"))
        self.groups.clear()

    def stop(self, tracker: RunTracker) -> None:  # noqa: ARG002  (the views' signature)
        """Print the launch groups not printed yet."""
        self._print_groups()


class LiveView:
    """A live table on a terminal: the run's progress, its running tasks and the last ended."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.live: Live | None = None
        self.recent: collections.deque[str] = collections.deque(maxlen=LIVE_ROWS)
        self.drawn_at = 0.0

    def start(self, tracker: RunTracker) -> None:
        """Start the live display."""
        self.live = Live(
            self.render(tracker),
            console=self.out,
            refresh_per_second=10,
            transient=False,
        )
        self.live.start()

    def headline(self, text: Text) -> None:
        """Print the headline above the table."""
        self.out.print(text)

    def update(self, tracker: RunTracker, launches: Sequence[Launch]) -> None:
        """Redraw the table, at most ten times a second."""
        for launch in launches:
            name = launch.input.task
            if name in self.recent:
                self.recent.remove(name)
            self.recent.append(name)
        now = time.monotonic()
        if self.live is not None and now - self.drawn_at >= _TICK:
            self.drawn_at = now
            self.live.update(self.render(tracker))

    def render(self, tracker: RunTracker) -> RenderableType:
        """The progress line and the table of the tasks worth seeing now."""
        done, total = tracker.progress
        counts = ", ".join(
            f"{count} {status.value}" for status, count in tracker.counts.items() if count
        )
        header = Text(f"{done}/{total} tasks done ({counts})", style="dim")
        outcomes = tracker.outcomes
        if len(outcomes) <= LIVE_ROWS:
            return Group(header, run_table(outcomes.values()))
        names = list(tracker.running)[:LIVE_ROWS]
        for name in reversed(self.recent):
            if len(names) >= LIVE_ROWS:
                break
            if name not in tracker.running:
                names.append(name)
        rows = sorted(
            (outcomes[name] for name in names),
            key=lambda outcome: (outcome.launch_order, tracker.order[outcome.identifier]),
        )
        footer = Text(
            f"showing {len(rows)} of {total} tasks: the running ones and the last that changed",
            style="dim",
        )
        return Group(header, run_table(rows), footer)

    def stop(self, tracker: RunTracker) -> None:
        """Draw the run as it ended and stop redrawing; the last table stays."""
        if self.live is not None:
            self.live.update(self.render(tracker))
            self.live.stop()
            self.live = None


class _Signals:
    """Counts SIGINTs and notes SIGTERM while installed, in place of their default actions."""

    def __init__(self) -> None:
        self.interrupts = 0
        self.terminated = False
        self.previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def _interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        self.interrupts += 1

    def _terminate(self, _signum: int, _frame: FrameType | None) -> None:
        self.terminated = True

    def __enter__(self) -> Self:
        # Signal handlers can only be set in the main thread (not, say, in a test's thread).
        if threading.current_thread() is threading.main_thread():
            self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._interrupt)
            self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._terminate)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self.previous.items():
            # None: the handler before was not set from Python; the default is the safe bet.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)


@attrs.define
class _Follow:
    jobs: Jobs
    runner: Runner
    tracker: RunTracker
    view: ProgressView
    messages: Console
    hints: Hints
    headline: Text | None
    worker: threading.Thread
    outcome: list[RunResult | BaseException]
    events: queue.SimpleQueue[JobEvent]
    exit_with: Callable[[int], NoReturn]
    announced: bool = False
    cancel_wanted: bool = False
    cancel_asked: bool = False

    def take_in(self, timeout: float) -> bool:
        """Apply the events that came (waiting up to ``timeout`` for one); return if any did."""
        batch: list[JobEvent] = []
        try:
            batch.append(self.events.get(timeout=timeout))
            while True:
                batch.append(self.events.get_nowait())
        except queue.Empty:
            pass
        for event in batch:
            self.tracker.apply(event)
        return bool(batch)

    def watch(self, signals: _Signals) -> None:
        """Show the run's events until the drive ends, acting on signals meanwhile."""
        while self.worker.is_alive() or not self.events.empty():
            batch = self.take_in(_TICK)
            try:
                self.show(force=batch)
            except BrokenPipeError:
                self.stop_at_once("the output was closed", output_closed=True)
            if signals.terminated:
                self.stop_at_once("SIGTERM")
            if signals.interrupts >= 2:  # noqa: PLR2004  (the second Ctrl-C)
                self.stop_at_once("a second Ctrl-C")
            if signals.interrupts == 1:
                self.on_first_interrupt()
        self.worker.join()

    def show(self, *, force: bool) -> None:
        if self.headline is not None and not self.announced and self.tracker.claimed:
            self.announced = True
            self.view.headline(self.headline)
        changes = self.tracker.take_changes()
        if changes or force:
            self.view.update(self.tracker, changes)

    def on_first_interrupt(self) -> None:
        if not self.cancel_asked:
            self.cancel_asked = self.cancel_wanted = True
            self.messages.print(
                Text(
                    "Ctrl-C: cancel requested; the running tasks finish, then the run ends "
                    "canceled. Press Ctrl-C again to stop at once.",
                    style="yellow",
                )
            )
        if self.cancel_wanted:
            try:
                request_cancel(self.jobs, self.tracker.run_id)
            except RunNotFoundError:
                return  # not started yet: asked again at the next tick
            self.cancel_wanted = False

    def stop_at_once(self, reason: str, *, output_closed: bool = False) -> NoReturn:
        """Let go of the run (resumable at once), say so on standard error, and exit."""
        run_id = self.tracker.run_id
        deadline = time.monotonic() + _STOP_PATIENCE
        let_go: tuple[str, ...] = ()
        while self.worker.is_alive() and not let_go and time.monotonic() < deadline:
            let_go = self.runner.interrupt(reason)
            if not let_go:
                self.worker.join(_TICK)  # the drive has not claimed the run yet
        self.worker.join(max(deadline - time.monotonic(), 0.0))
        ended = self.outcome[0] if self.outcome else None
        code = ExitCode.INTERRUPTED
        text = f"Stopped at once ({reason})."
        if isinstance(ended, RunResult) and ended.status.is_terminal:
            code = exit_code_of(ended)
            text = f"Stopped ({reason}); run {run_id} had ended {ended.status.value}."
        elif let_go or isinstance(ended, RunResult):
            text += (
                f" Run {run_id} is left running with no runner: "
                f"`{self.hints.command('resume', run_id, app=True)}` takes it over at once"
                + (
                    " and ends it canceled, as asked"
                    if isinstance(ended, RunResult) and ended.cancel_requested
                    else ""
                )
                + f", `{self.hints.command('cancel', run_id)}` cancels it."
            )
        if output_closed:
            silence_stdout()
        try:
            self.take_in(0.0)  # the launches the stop ended
            self.show(force=True)
            self.view.stop(self.tracker)
        except BrokenPipeError:
            silence_stdout()
        self.messages.print(literal(text, style="yellow"))
        self.exit_with(code)


def follow(
    jobs: Jobs,
    runner: Runner,
    tracker: RunTracker,
    drive: Callable[[], RunResult],
    view: ProgressView,
    *,
    hints: Hints,
    messages: Console,
    headline: Text | None = None,
    exit_with: Callable[[int], NoReturn] | None = None,
) -> RunResult:
    """Call ``drive`` (``runner`` driving the tracker's run) in a worker thread, showing the run.

    ``headline`` is shown once the drive claimed the run. Signals and a
    closed output are handled as the module says while ``drive`` runs; a stop
    at once calls ``exit_with`` (:func:`exit_now` by default) with the exit code.

    Returns:
        What ``drive`` returned.

    Raises:
        Exception: whatever ``drive`` raised.
    """
    events: queue.SimpleQueue[JobEvent] = queue.SimpleQueue()
    run_id = tracker.run_id
    prefix = f"{run_id}/"

    def collect(event: JobEvent) -> None:
        if event.job_id == run_id or event.job_id.startswith(prefix):
            events.put(event)

    outcome: list[RunResult | BaseException] = []

    def work() -> None:
        try:
            outcome.append(drive())
        except BaseException as err:  # noqa: BLE001  (handed to the main thread)
            outcome.append(err)
        finally:
            # Delivery runs on its own threads: the run's last events reach
            # ``collect`` before this worker is seen to end. A remote ledger
            # (the HTTP client) has nothing to wait for.
            drain = getattr(jobs, "drain", None)
            if drain is not None:
                drain(timeout=_DRAIN_SECONDS)

    worker = threading.Thread(target=work, name="jobledger-cli-drive", daemon=True)
    following = _Follow(
        jobs,
        runner,
        tracker,
        view,
        messages,
        hints,
        headline,
        worker,
        outcome,
        events,
        exit_with or exit_now,
    )
    subscription = jobs.subscribe(collect, service=RUN_SERVICE)
    try:
        with _Signals() as signals:
            view.start(tracker)
            worker.start()
            following.watch(signals)
            try:
                following.show(force=True)
                view.stop(tracker)
            except BrokenPipeError:
                silence_stdout()
    finally:
        subscription.cancel()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result
