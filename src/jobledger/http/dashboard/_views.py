"""What the dashboard's pages show, computed from the ledger's values: rows, steps, a timeline.

Pure functions of jobs, launches and updates (the time passed in), so the
templates only lay the values out and the tests check them without a server.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import attrs

from jobledger import Job, JobUpdate, JsonObject, UpdateType, merge_patch, thaw
from jobledger.runner import (
    Drive,
    Launch,
    RunNotFoundError,
    RunResult,
    RunStatus,
    TaskOutcome,
    TaskStatus,
    run_result,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

__all__ = [
    "EVENT_OF_UPDATE",
    "Bar",
    "RunRow",
    "StepView",
    "TaskView",
    "Timeline",
    "TimelineRow",
    "drives_of",
    "duration_text",
    "pretty_json",
    "run_row",
    "steps_of",
    "timeline_of",
]

#: The integration event each kind of update published.
EVENT_OF_UPDATE: Final = {
    UpdateType.UPDATED: "JobUpdated",
    UpdateType.COMPLETED: "JobCompleted",
    UpdateType.FAILED: "JobFailed",
    UpdateType.CANCELED: "JobCanceled",
}

# The timeline's drawing, in SVG user units: a column of task names, then the chart.
_LABEL_WIDTH: Final = 170
_CHART_WIDTH: Final = 620
_ROW_HEIGHT: Final = 26
_AXIS_HEIGHT: Final = 24
_TICKS: Final = 4
# A bar narrower than this is drawn this wide, so that a quick task is still seen.
_MIN_BAR: Final = 2.0


def duration_text(seconds: float | None) -> str:
    """A duration as people read it: ``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 04 min``.

    >>> duration_text(0.42), duration_text(12.3), duration_text(185), duration_text(7440)
    ('0.4 s', '12 s', '3 min 05 s', '2 h 04 min')
    >>> duration_text(None)
    '-'
    """
    if seconds is None:
        return "-"
    if seconds < 10:  # noqa: PLR2004  (tenths below ten seconds)
        return f"{max(seconds, 0.0):.1f} s"
    whole = round(seconds)
    if whole < 60:  # noqa: PLR2004
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:  # noqa: PLR2004
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def pretty_json(value: object) -> str:
    """A JSON value indented for reading (frozen jobledger values included).

    >>> print(pretty_json({"b": 1, "a": [1, 2]}))
    {
      "b": 1,
      "a": [
        1,
        2
      ]
    }
    """
    return json.dumps(thaw(value), indent=2, ensure_ascii=False)  # type: ignore[arg-type]


def _elapsed(job: Job, now: datetime) -> float:
    end = now if job.status == RunStatus.RUNNING else job.updated_at
    return max((end - job.created_at).total_seconds(), 0.0)


@attrs.frozen(kw_only=True)
class RunRow:
    """One run in the runs list.

    Attributes:
        job: The run's job.
        result: The run as its job alone records it (status, counts, no launches).
        done: Tasks settled.
        total: Tasks in all.
        warnings: Tasks that ended with a warning.
        duration: How long it ran, or has run so far.
    """

    job: Job
    result: RunResult
    done: int
    total: int
    warnings: int
    duration: float

    @property
    def status(self) -> str:
        """The run's status, ``completed with warnings`` when it had some."""
        if self.result.status is RunStatus.COMPLETED and self.warnings:
            return "completed with warnings"
        return self.result.status.value


def run_row(job: Job, now: datetime) -> RunRow:
    """The runs list's row of the run ``job``.

    Raises:
        RunNotFoundError: ``job`` does not hold a run.
    """
    result = run_result(job)
    done, total = result.progress
    counts: Mapping[str, int] = result.state.counts if result.state is not None else {}
    return RunRow(
        job=job,
        result=result,
        done=done,
        total=total,
        warnings=counts.get(TaskStatus.WARNING.value, 0),
        duration=_elapsed(job, now),
    )


@attrs.frozen(kw_only=True)
class TaskView:
    """One task of a run's page.

    Attributes:
        outcome: The task's outcome.
        progress_done: Work done, as the task last reported it (``None`` if it did not).
        progress_total: Work in all, as the task last reported it.
    """

    outcome: TaskOutcome
    progress_done: int | None
    progress_total: int | None


@attrs.frozen(kw_only=True)
class StepView:
    """One step (launch order) of a run's page.

    Attributes:
        launch_order: The step's launch order.
        tasks: Its tasks, in the run's order.
    """

    launch_order: int
    tasks: tuple[TaskView, ...]


def _progress(progress: JsonObject | None) -> tuple[int | None, int | None]:
    if progress is None:
        return None, None
    done, total = progress.get("done"), progress.get("total")
    if (
        isinstance(done, int)
        and isinstance(total, int)
        and not isinstance(done, bool)
        and not isinstance(total, bool)
        and 0 <= done <= total
        and total > 0
    ):
        return done, total
    return None, None


def steps_of(result: RunResult) -> tuple[StepView, ...]:
    """The run's tasks grouped into steps, in launch order.

    >>> from jobledger.runner import RunResult, RunStatus, TaskOutcome, TaskStatus
    >>> outcomes = {
    ...     "b": TaskOutcome("b", "sync", 2, "server", TaskStatus.PENDING),
    ...     "a": TaskOutcome("a", "export", 1, "agent", TaskStatus.COMPLETED),
    ... }
    >>> steps = steps_of(RunResult("run-1", "Nightly", RunStatus.RUNNING, outcomes))
    >>> [(step.launch_order, [task.outcome.identifier for task in step.tasks]) for step in steps]
    [(1, ['a']), (2, ['b'])]
    """
    steps: dict[int, list[TaskView]] = {}
    for outcome in result.outcomes.values():
        done, total = _progress(outcome.progress)
        steps.setdefault(outcome.launch_order, []).append(
            TaskView(outcome=outcome, progress_done=done, progress_total=total)
        )
    return tuple(StepView(launch_order=order, tasks=tuple(steps[order])) for order in sorted(steps))


@attrs.frozen(kw_only=True)
class Bar:
    """One launch on the timeline.

    Attributes:
        x: Where it starts, in SVG units.
        width: How long it ran, in SVG units.
        status: Its task's status after it.
        label: What it was, for people (its title).
    """

    x: float
    width: float
    status: str
    label: str


@attrs.frozen(kw_only=True)
class TimelineRow:
    """One task's row on the timeline.

    Attributes:
        task: The task's identifier.
        y: The row's top, in SVG units.
        bars: Its launches.
    """

    task: str
    y: float
    bars: tuple[Bar, ...]


@attrs.frozen(kw_only=True)
class Tick:
    """A mark on the timeline's time axis.

    Attributes:
        x: Where, in SVG units.
        label: The time since the run started.
    """

    x: float
    label: str


@attrs.frozen(kw_only=True)
class Timeline:
    """A Gantt chart of a run's task launches: one row per task, one bar per launch.

    Attributes:
        rows: The tasks' rows, in the order they were first launched.
        ticks: The time axis's marks.
        width: The drawing's width, in SVG units.
        height: The drawing's height, in SVG units.
        label_width: The width of the column of task names.
        span: The seconds the chart covers.
    """

    rows: tuple[TimelineRow, ...]
    ticks: tuple[Tick, ...]
    width: float
    height: float
    label_width: float
    span: float


def timeline_of(run: Job, launches: Iterable[Launch], now: datetime) -> Timeline:
    """The timeline of run ``run`` from its ``launches`` (skips have no bar), as of ``now``.

    A running launch's bar reaches ``now``; the chart spans from the run's
    start to its last end (``now`` while something runs).

    >>> from datetime import UTC, datetime
    >>> from jobledger import Jobs
    >>> run = Jobs().start(service="s", entity="job", type="Nightly")
    >>> timeline = timeline_of(run, (), datetime.now(UTC))
    >>> timeline.rows, len(timeline.ticks)
    ((), 5)
    """
    spans: list[tuple[Launch, datetime, datetime]] = []
    for launch in launches:
        if launch.input.group is None:
            continue
        begin = launch.state.started_at or launch.launched_at
        if launch.status is TaskStatus.RUNNING:
            end = max(now, begin)
        else:
            end = launch.state.ended_at or launch.updated_at
        spans.append((launch, begin, end))
    origin = run.created_at
    last = max((end for _, _, end in spans), default=origin)
    if run.status == RunStatus.RUNNING:
        last = max(last, now)
    span = max((last - origin).total_seconds(), 0.001)
    scale = _CHART_WIDTH / span
    order: dict[str, list[Bar]] = {}
    for launch, begin, end in spans:
        x = _LABEL_WIDTH + max((begin - origin).total_seconds(), 0.0) * scale
        width = max((end - begin).total_seconds() * scale, _MIN_BAR)
        record = launch.input
        what = "repair of " if record.repair else ""
        label = (
            f"{what}{record.task}: {launch.status.value}, launch {record.launch}, "
            f"drive {record.drive}, {duration_text((end - begin).total_seconds())}"
        )
        order.setdefault(record.task, []).append(
            Bar(x=x, width=width, status=launch.status.value, label=label)
        )
    rows = tuple(
        TimelineRow(task=task, y=_AXIS_HEIGHT + index * _ROW_HEIGHT, bars=tuple(bars))
        for index, (task, bars) in enumerate(order.items())
    )
    ticks = tuple(
        Tick(
            x=_LABEL_WIDTH + _CHART_WIDTH * step / _TICKS,
            label="+" + _tick_text(span * step / _TICKS, span),
        )
        for step in range(_TICKS + 1)
    )
    return Timeline(
        rows=rows,
        ticks=ticks,
        width=_LABEL_WIDTH + _CHART_WIDTH + 20,
        height=_AXIS_HEIGHT + max(len(rows), 1) * _ROW_HEIGHT + 4,
        label_width=_LABEL_WIDTH,
        span=span,
    )


def _tick_text(seconds: float, span: float) -> str:
    """A time on an axis that spans ``span`` seconds: milliseconds for spans under a second.

    >>> _tick_text(0.125, 0.5), _tick_text(2.5, 5.0), _tick_text(90.0, 120.0)
    ('125 ms', '2.5 s', '1 min 30 s')
    """
    if span < 1:
        return f"{seconds * 1000:.0f} ms"
    return duration_text(seconds)


def drives_of(
    first: Job, updates: Sequence[JobUpdate], current: Job | None = None
) -> tuple[Drive, ...]:
    """Every drive of a run (invoke, resumes, takeovers), replaying its update log.

    Args:
        first: The run's job as it was started (version 1).
        updates: Its update log from the first update on, oldest first (or a
            first part of it: the drives that part holds).
        current: The run's job now, whose drive is listed too (when
            ``updates`` is only a first part of the log).
    """
    found: dict[int, Drive] = {}
    job = first
    states: list[Job] = []
    for update in (None, *updates):
        if update is not None:
            state = job.state
            if update.state_update is not None:
                patched = merge_patch(job.state, update.state_update)
                state = patched if isinstance(patched, JsonObject) else state
            job = attrs.evolve(job, state=state, status=update.status)
        states.append(job)
    if current is not None:
        states.append(current)
    for each in states:
        try:
            run_state = run_result(each).state
        except RunNotFoundError:
            continue
        if run_state is not None and run_state.drive is not None:
            found[run_state.drive.number] = run_state.drive
    return tuple(found[number] for number in sorted(found))
