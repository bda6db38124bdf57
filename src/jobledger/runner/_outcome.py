"""What tasks return, and what a run came to: results read back from the ledger.

A task returns a :class:`TaskResult` (or anything else, which counts as
"produced output"). :class:`RunResult` is a run as its job in the ledger
records it: its status and one :class:`TaskOutcome` per task of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from jobledger._core.jsondoc import JsonObject, JsonValue, freeze
from jobledger.runner._states import RunStatus, TaskStatus

if TYPE_CHECKING:
    # Only annotated: RunResult is built in code, never structured from its annotations.
    from jobledger.runner._model import RunState  # noqa: TC004

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
    return None if value is None else freeze(value, field="summary")


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
        failure: What stopped the run when it was not a task's error (the
            ledger refused to record a launch, say); ``None`` otherwise.
        state: The run's job's state as the run model reads it: counts,
            drive, lease, breakpoint (``None`` for a result built by hand).
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
    state: RunState | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def progress(self) -> tuple[int, int]:
        """Tasks settled and tasks in all, as the run's job last counted them.

        >>> from jobledger.runner import RunStatus
        >>> RunResult("run-1", "Nightly", RunStatus.RUNNING, {}).progress
        (0, 0)
        """
        if self.state is None:
            done = sum(1 for outcome in self.outcomes.values() if outcome.status.is_done)
            return done, len(self.outcomes)
        return self.state.done, self.state.tasks

    def statuses(self) -> dict[str, str]:
        """Each task's status, by identifier: a compact view for logs and tests.

        >>> from jobledger.runner import RunStatus
        >>> RunResult("run-1", "Nightly", RunStatus.RUNNING, {}).statuses()
        {}
        """
        return {identifier: outcome.status.value for identifier, outcome in self.outcomes.items()}
