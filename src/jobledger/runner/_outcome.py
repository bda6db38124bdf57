"""What tasks return, and what a run came to: results read back from the ledger.

A task returns a :class:`TaskResult` (or anything else, which counts as
"produced output"). :class:`RunResult` is a run as its job in the ledger
records it: its status and one :class:`TaskOutcome` per task of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from jobledger._core.jsondoc import JsonObject, JsonValue, freeze
from jobledger.runner._states import RunStatus, TaskStatus

if TYPE_CHECKING:
    from jobledger._core.job import Job

__all__ = [
    "Blockage",
    "Breakpoint",
    "LaunchGroup",
    "RunResult",
    "RunWarning",
    "TaskError",
    "TaskOutcome",
    "TaskResult",
]


def _summary(value: object) -> JsonValue:
    return freeze(value, field="summary")


@attrs.frozen
class TaskResult:
    """What a task function may return to describe its work.

    A task that returns anything else (``None`` included) produced output.

    Attributes:
        output: Whether the task produced output. Children of a task run only
            when at least one of their parents in the run produced output.
        summary: A JSON value recorded with the task's outcome, e.g.
            ``"42 employees exported"`` or ``{"exported": 42}``.

    Raises:
        InvalidJobDataError: ``summary`` is not a JSON value.

    >>> TaskResult(output=False, summary="no changes since the last export")
    TaskResult(output=False, summary='no changes since the last export')
    """

    output: bool = True
    summary: JsonValue = attrs.field(default=None, converter=_summary)


@attrs.frozen
class TaskError:
    """An error a task raised (or its timeout), as recorded.

    Attributes:
        type: The exception's class, e.g. ``"ValueError"`` or ``"myapp.SyncError"``.
        message: The exception's message.
        traceback: The last frames of its traceback, as text.
    """

    type: str
    message: str
    traceback: str = ""


@attrs.frozen
class Blockage:
    """Why a guarded task blocked its run.

    Attributes:
        reason: The reason the task gave.
        details: The JSON details the task gave.
    """

    reason: str
    details: JsonValue = None


@attrs.frozen
class Breakpoint:
    """Where a blocked run stopped, and where :meth:`~jobledger.runner.Runner.resume` restarts.

    Attributes:
        step: The launch order of the step that blocked.
        tasks: The tasks that blocked, in step order.
    """

    step: int
    tasks: tuple[str, ...]


@attrs.frozen
class RunWarning:
    """An error of a task in warning mode: recorded, and the run went on.

    Attributes:
        task: The task's identifier.
        type: The exception's class.
        message: The exception's message.
    """

    task: str
    type: str
    message: str


@attrs.frozen
class LaunchGroup:
    """Tasks launched together: one step's tasks that passed their parent checks.

    Attributes:
        number: 1 for the run's first launch group, then 2, 3, ... across resumes.
        step: The launch order of the step.
        tasks: The tasks launched, in step order.
        launched_at: When they were launched.
        drive: The drive (1 for the invoke, then one more per resume) that launched them.
    """

    number: int
    step: int
    tasks: tuple[str, ...]
    launched_at: datetime
    drive: int


@attrs.frozen
class TaskOutcome:
    """One task of a run, as the ledger records it.

    Attributes:
        identifier: The task's identifier.
        type: The task's type.
        launch_order: The task's launch order (its step).
        side: The executor it runs on.
        status: Where the task is.
        attempts: How many times it was launched in this run (resumes add some).
        launch_group: The number of the launch group of its last launch, if any.
        launched_at: When it was last launched.
        started_at: When its function last started running.
        ended_at: When it last ended.
        duration: How long it last ran, in seconds.
        output: Whether it produced output (``None`` until it completed).
        summary: The summary its :class:`TaskResult` gave.
        error: Its error (status ``failed`` or ``warning``).
        blocked: Why it blocked (status ``blocked``).
        skip_reason: Why it was skipped (status ``skipped``).
        repair: Whether its last launch ran its repair variant.
        progress: What it last reported with
            :meth:`~jobledger.runner.TaskContext.report_progress`.
    """

    identifier: str
    type: str
    launch_order: int
    side: str
    status: TaskStatus
    attempts: int = 0
    launch_group: int | None = None
    launched_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: float | None = None
    output: bool | None = None
    summary: JsonValue = None
    error: TaskError | None = None
    blocked: Blockage | None = None
    skip_reason: str | None = None
    repair: bool = False
    progress: JsonObject | None = None

    @classmethod
    def of(cls, identifier: str, entry: Mapping[str, JsonValue]) -> TaskOutcome:
        """Read a task's entry of a run's state (see :mod:`jobledger.runner`)."""
        # Every run's result reads every task's entry: the members an entry rarely has
        # are looked at only when present.
        get = entry.get
        status = get("status")
        error = get("error")
        blocked = get("blocked")
        progress = get("progress")
        output = get("output")
        skip_reason = get("skip_reason")
        return cls(
            identifier,
            _text(get("type")) or "",
            _integer(get("launch_order")) or 0,
            _text(get("side")) or "",
            (_STATUSES.get(status) if isinstance(status, str) else None)
            or TaskStatus(_text(status) or TaskStatus.PENDING),
            _integer(get("attempts")) or 0,
            _integer(get("launch_group")),
            _time(get("launched_at")),
            _time(get("started_at")),
            _time(get("ended_at")),
            _number(get("duration")),
            output if output is True or output is False else None,
            get("summary"),
            _error(error) if isinstance(error, dict) else None,
            (
                Blockage(_text(blocked.get("reason")) or "", blocked.get("details"))
                if isinstance(blocked, dict)
                else None
            ),
            skip_reason if isinstance(skip_reason, str) else None,
            get("repair") is True,
            progress if isinstance(progress, JsonObject) else None,
        )


# Statuses by their text, for reading entries without a call of the enum per task.
_STATUSES: Mapping[str, TaskStatus] = MappingProxyType(
    {status.value: status for status in TaskStatus}
)


def _text(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: JsonValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: JsonValue) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _time(value: JsonValue) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _error(value: Mapping[str, JsonValue]) -> TaskError:
    return TaskError(
        _text(value.get("type")) or "",
        _text(value.get("message")) or "",
        _text(value.get("traceback")) or "",
    )


def _status(job: Job) -> RunStatus:
    if job.status == RunStatus.BLOCKED or job.phase.is_terminal:
        return RunStatus(job.status)
    # "started" lasts only until the runner's claim; any other active status is a run.
    return RunStatus.RUNNING


def _outcomes(state: JsonObject) -> Mapping[str, TaskOutcome]:
    tasks = state.get("tasks")
    if not isinstance(tasks, dict):
        return MappingProxyType({})

    def order(item: tuple[str, JsonValue]) -> tuple[int, int]:
        entry = item[1]
        if not isinstance(entry, dict):
            return (0, 0)
        return (_integer(entry.get("launch_order")) or 0, _integer(entry.get("index")) or 0)

    return MappingProxyType(
        {
            identifier: TaskOutcome.of(identifier, entry)
            for identifier, entry in sorted(tasks.items(), key=order)
            if isinstance(entry, dict)
        }
    )


def _launch_groups(state: JsonObject) -> tuple[LaunchGroup, ...]:
    groups = state.get("launch_groups")
    if not isinstance(groups, dict):
        return ()
    found = []
    for number, group in groups.items():
        if not isinstance(group, dict):
            continue
        tasks = group.get("tasks")
        found.append(
            LaunchGroup(
                number=int(number),
                step=_integer(group.get("step")) or 0,
                tasks=tuple(t for t in tasks if isinstance(t, str))
                if isinstance(tasks, list)
                else (),
                launched_at=_time(group.get("launched_at")) or datetime.min.replace(tzinfo=UTC),
                drive=_integer(group.get("drive")) or 0,
            )
        )
    return tuple(sorted(found, key=lambda group: group.number))


def _read_only(outcomes: Mapping[str, TaskOutcome]) -> Mapping[str, TaskOutcome]:
    return MappingProxyType(dict(outcomes))


@attrs.frozen
class RunResult:
    """A run as the ledger records it: what :meth:`~jobledger.runner.Runner.invoke` returns.

    Attributes:
        run_id: The run's id: the id of its job in the ledger.
        definition: The identifier of the job definition it runs.
        status: The run's status.
        outcomes: One outcome per task of the run (the selected tasks), in
            step order. No outcome is ever lost: a task that was running when
            the run was canceled has its outcome here too.
        warnings: The errors of tasks in warning mode, in the order they happened.
        breakpoint: Where a blocked run stopped; ``None`` unless ``blocked``.
        launch_groups: The run's launch groups, in order.
        cancel_requested: Whether a cancel was requested.
        force: The force threshold handed to guarded tasks.
        failure: What stopped the run when it was not a task: the ledger
            refused to record the run (its state would outgrow the ledger's
            :class:`~jobledger.Limits`). Set on a run that ended ``failed``
            for it (or ``canceled``, when a cancel was requested too);
            ``None`` otherwise, and when even this did not fit.
    """

    run_id: str
    definition: str
    status: RunStatus
    outcomes: Mapping[str, TaskOutcome] = attrs.field(converter=_read_only)
    warnings: tuple[RunWarning, ...] = ()
    breakpoint: Breakpoint | None = None
    launch_groups: tuple[LaunchGroup, ...] = ()
    cancel_requested: bool = False
    force: int | None = None
    failure: str | None = None

    @classmethod
    def of(cls, job: Job) -> RunResult:
        """Read a run from its job in the ledger."""
        state = job.state
        warnings = state.get("warnings")
        point = state.get("breakpoint")
        blocked = point.get("tasks") if isinstance(point, dict) else None
        force = state.get("force")
        return cls(
            run_id=job.id,
            definition=job.type,
            status=_status(job),
            outcomes=_outcomes(state),
            warnings=tuple(
                RunWarning(
                    _text(item.get("task")) or "",
                    _text(item.get("type")) or "",
                    _text(item.get("message")) or "",
                )
                for item in (warnings if isinstance(warnings, list) else ())
                if isinstance(item, dict)
            ),
            breakpoint=(
                Breakpoint(
                    _integer(point.get("step")) or 0,
                    tuple(t for t in blocked if isinstance(t, str))
                    if isinstance(blocked, list)
                    else (),
                )
                if isinstance(point, dict) and job.status == RunStatus.BLOCKED
                else None
            ),
            launch_groups=_launch_groups(state),
            cancel_requested=state.get("cancel_requested") is True,
            force=_integer(force),
            failure=_text(state.get("failure")),
        )

    def statuses(self) -> dict[str, str]:
        """Each task's status, by identifier: a compact view for logs and tests.

        >>> from jobledger.runner import RunStatus
        >>> RunResult("run-1", "Nightly", RunStatus.RUNNING, {}).statuses()
        {}
        """
        return {identifier: outcome.status.value for identifier, outcome in self.outcomes.items()}
