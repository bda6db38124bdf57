"""The statuses of runs and tasks, and the run's state machine as an explicit table.

:data:`RUN_TRANSITIONS` maps (run status, trigger) to the status that follows;
the engine moves a run only along it, and :func:`run_state_mermaid` draws it,
so the docs show the rules the code runs.
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "RUN_TRANSITIONS",
    "RunStatus",
    "RunTrigger",
    "TaskStatus",
    "next_run_status",
    "run_state_mermaid",
]


class RunStatus(enum.StrEnum):
    """A run's status; it is the status of the run's job in the ledger.

    ``running`` and ``blocked`` are custom statuses of an active job;
    ``completed``, ``failed`` and ``canceled`` are the ledger's terminal ones.
    A run that completed with warnings is ``completed`` and lists them.
    """

    RUNNING = "running"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """Whether the run is over for good (not running, not blocked)."""
        return self not in {RunStatus.RUNNING, RunStatus.BLOCKED}


class RunTrigger(enum.StrEnum):
    """What moves a run from one status to the next."""

    INVOKE = "invoke"
    COMPLETE = "complete"
    FAIL = "fail"
    BLOCK = "block"
    CANCEL = "cancel"
    RESUME = "resume"
    TAKE_OVER = "take over"


#: Every allowed move of a run: ``(status before, trigger) -> status after``.
#: ``None`` stands for "no run yet". Moves not listed are refused.
RUN_TRANSITIONS: Mapping[tuple[RunStatus | None, RunTrigger], RunStatus] = MappingProxyType(
    {
        (None, RunTrigger.INVOKE): RunStatus.RUNNING,
        (RunStatus.RUNNING, RunTrigger.COMPLETE): RunStatus.COMPLETED,
        (RunStatus.RUNNING, RunTrigger.FAIL): RunStatus.FAILED,
        (RunStatus.RUNNING, RunTrigger.BLOCK): RunStatus.BLOCKED,
        (RunStatus.RUNNING, RunTrigger.CANCEL): RunStatus.CANCELED,
        (RunStatus.RUNNING, RunTrigger.TAKE_OVER): RunStatus.RUNNING,
        (RunStatus.BLOCKED, RunTrigger.RESUME): RunStatus.RUNNING,
        (RunStatus.BLOCKED, RunTrigger.CANCEL): RunStatus.CANCELED,
    }
)


def next_run_status(status: RunStatus | None, trigger: RunTrigger) -> RunStatus | None:
    """The status a run in ``status`` moves to on ``trigger``, or ``None`` if it may not.

    >>> next_run_status(RunStatus.BLOCKED, RunTrigger.RESUME)
    <RunStatus.RUNNING: 'running'>
    >>> next_run_status(RunStatus.COMPLETED, RunTrigger.RESUME) is None
    True
    """
    return RUN_TRANSITIONS.get((status, trigger))


def run_state_mermaid() -> str:
    """Render :data:`RUN_TRANSITIONS` as a Mermaid state diagram.

    >>> print(run_state_mermaid())  # doctest: +ELLIPSIS
    stateDiagram-v2
        [*] --> running: invoke
        running --> completed: complete
        ...
        canceled --> [*]
    """
    lines = ["stateDiagram-v2"]
    for (before, trigger), after in RUN_TRANSITIONS.items():
        source = "[*]" if before is None else before.value
        lines.append(f"    {source} --> {after.value}: {trigger.value}")
    lines.extend(f"    {status.value} --> [*]" for status in RunStatus if status.is_terminal)
    return "\n".join(lines)


class TaskStatus(enum.StrEnum):
    """Where a task of a run is.

    ``pending``: not launched (yet). ``running``: launched, not finished.
    ``completed``: returned normally. ``warning``: a task in warning mode
    raised; the run went on. ``failed``: raised, or timed out; the run fails.
    ``blocked``: a guarded task raised :class:`~jobledger.runner.TaskBlocked`.
    ``skipped``: not launched because its parents did not allow it.
    ``canceled``: stopped early on a cancel request.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    WARNING = "warning"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    CANCELED = "canceled"

    @property
    def is_done(self) -> bool:
        """Whether the task is settled for this run: a resume does not run it again."""
        return self in _DONE


# Looked up for every task at every step: built once, not on each look.
_DONE = frozenset({TaskStatus.COMPLETED, TaskStatus.WARNING, TaskStatus.FAILED, TaskStatus.SKIPPED})
