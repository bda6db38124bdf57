"""The planner: pure functions that decide what a run does next, from its recorded facts.

No I/O, no clock, no ids: the driver hands in what the ledger holds (the
run's tasks, each task's latest outcome, the run's state and the time) and
does what the planner answers. Every rule of Usercube's Invoke-Job lives here:

* steps run in launch order; a step's tasks not yet done are launched
  together (:func:`next_step`);
* a task runs only when its parents that are part of the run all completed
  (or ran in warning mode, their error tolerated) and at least one produced
  output; otherwise it is skipped with the reason recorded (:func:`skip_reason`);
* a run ends by the first rule of :data:`RUN_ENDS` that applies (:func:`run_end`),
  along :data:`~jobledger.runner.RUN_TRANSITIONS`;
* who may drive a run: a new drive claims a blocked run, or a running one
  whose lease expired or was released (:func:`claim_trigger`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Final

import attrs

from jobledger.runner._definition import Task
from jobledger.runner._errors import RunActiveError, RunNotResumableError
from jobledger.runner._outcome import Breakpoint
from jobledger.runner._states import RunStatus, RunTrigger, TaskStatus, next_run_status

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
    from datetime import datetime

    from jobledger.runner._model import RunState
    from jobledger.runner._outcome import TaskOutcome
    from jobledger.runner._steps import Step

__all__ = [
    "RUN_ENDS",
    "EndFacts",
    "StepPlan",
    "breakpoint_of",
    "claim_trigger",
    "counts_of",
    "next_step",
    "run_end",
    "skip_reason",
]

#: Parent statuses that let a child run: the parent ran, its error tolerated in warning mode.
_PASSING: Final = frozenset({TaskStatus.COMPLETED, TaskStatus.WARNING})


@attrs.frozen
class StepPlan:
    """What to do for the next step of a run.

    Attributes:
        step: The step's launch order.
        launch: The tasks to launch now, in definition order.
        skip: The tasks not to launch, each with the reason.
        index: The index of the step among the run's steps.
    """

    step: int
    launch: tuple[Task, ...]
    skip: tuple[tuple[Task, str], ...]
    index: int = 0


def _status(outcomes: Mapping[str, TaskOutcome], identifier: str) -> TaskStatus:
    outcome = outcomes.get(identifier)
    return TaskStatus.PENDING if outcome is None else outcome.status


def skip_reason(
    task: Task, in_run: Collection[str], outcomes: Mapping[str, TaskOutcome]
) -> str | None:
    """Why ``task`` must not be launched, or ``None`` when its parents allow it.

    Only parents that are part of the run count. A parent in warning mode that
    raised ran with its error tolerated: it counts as completed with output.
    """
    parents = [parent for parent in task.parents if parent in in_run]
    if not parents:
        return None
    unfinished = [
        f"{parent!r} is {_status(outcomes, parent).value}"
        for parent in parents
        if _status(outcomes, parent) not in _PASSING
    ]
    if unfinished:
        return "parents did not complete: " + ", ".join(unfinished)

    def produced(parent: str) -> bool:
        outcome = outcomes[parent]
        return outcome.status is TaskStatus.WARNING or outcome.output is True

    if not any(produced(parent) for parent in parents):
        return "none of its parents produced output"
    return None


def next_step(
    steps: Sequence[Step],
    outcomes: Mapping[str, TaskOutcome],
    *,
    stopping: bool,
    start: int = 0,
    in_run: Collection[str] | None = None,
) -> StepPlan | None:
    """The first step with a task not yet done, and what to do with its tasks.

    Args:
        steps: The run's steps, in the order they run (:func:`~jobledger.runner.steps`
            of its tasks).
        outcomes: Each task's latest outcome; a task without one is pending.
        stopping: The run must launch nothing more (a cancel, a failure, a block).
        start: Where to look from: the steps before it are known to be done.
        in_run: The identifiers of the run's tasks (worked out from ``steps`` if ``None``).

    Returns:
        The plan, with the index of its step in :attr:`StepPlan.index`; ``None``
        when every task is done, or when the run is ``stopping``.
    """
    if in_run is None:
        in_run = frozenset(task.identifier for step in steps for task in step.tasks)
    for index in range(start, len(steps)):
        step = steps[index]
        todo = [task for task in step.tasks if not _status(outcomes, task.identifier).is_done]
        if not todo:
            continue
        if stopping:
            return None
        launch: list[Task] = []
        skip: list[tuple[Task, str]] = []
        for task in todo:
            reason = skip_reason(task, in_run, outcomes)
            if reason is None:
                launch.append(task)
            else:
                skip.append((task, reason))
        return StepPlan(step.launch_order, tuple(launch), tuple(skip), index)
    return None


@attrs.frozen
class EndFacts:
    """What decides how a drive ends its run.

    Attributes:
        cancel_requested: Someone asked the run to stop.
        failed: A task failed, or the ledger refused to record the run.
        blocked: A guarded task blocked.
    """

    cancel_requested: bool
    failed: bool
    blocked: bool


#: How a drive ends its run: the first rule whose condition holds gives the trigger,
#: which moves the running run along RUN_TRANSITIONS.
RUN_ENDS: Final[tuple[tuple[str, Callable[[EndFacts], bool], RunTrigger], ...]] = (
    ("a cancel was requested", lambda facts: facts.cancel_requested, RunTrigger.CANCEL),
    ("a task failed, or the ledger refused the run", lambda facts: facts.failed, RunTrigger.FAIL),
    ("a guarded task blocked", lambda facts: facts.blocked, RunTrigger.BLOCK),
    ("every task is done", lambda _facts: True, RunTrigger.COMPLETE),
)


def run_end(facts: EndFacts) -> tuple[RunTrigger, RunStatus]:
    """The trigger that ends a drive's run, and the status it moves the run to.

    >>> run_end(EndFacts(cancel_requested=False, failed=True, blocked=True))
    (<RunTrigger.FAIL: 'fail'>, <RunStatus.FAILED: 'failed'>)
    """
    trigger = next(trigger for _, holds, trigger in RUN_ENDS if holds(facts))
    after = next_run_status(RunStatus.RUNNING, trigger)
    assert after is not None  # noqa: S101  (the table allows every end of a running run)
    return trigger, after


def breakpoint_of(tasks: Iterable[Task], outcomes: Mapping[str, TaskOutcome]) -> Breakpoint:
    """Where a blocked run stopped: the first step with a blocked task, and its blocked tasks."""
    blocked = [task for task in tasks if _status(outcomes, task.identifier) is TaskStatus.BLOCKED]
    step = min(task.launch_order for task in blocked)
    return Breakpoint(step, tuple(task.identifier for task in blocked if task.launch_order == step))


def counts_of(tasks: Iterable[Task], outcomes: Mapping[str, TaskOutcome]) -> dict[str, int]:
    """How many of ``tasks`` are in each status (pending for those never launched)."""
    return dict(Counter(_status(outcomes, task.identifier).value for task in tasks))


def claim_trigger(
    run_id: str, status: RunStatus, state: RunState, now: datetime, *, repair: bool
) -> RunTrigger:
    """How a new drive may claim a run in ``status``, or why it may not.

    A blocked run is resumed. A running run is taken over only once its lease
    expired (by the lease its driver recorded) or was released on purpose.

    Raises:
        RunActiveError: a live drive holds the run's lease.
        RunNotResumableError: the run is over, or only a blocked run can be repaired.
    """
    if status is RunStatus.BLOCKED:
        trigger = RunTrigger.RESUME
    elif status is RunStatus.RUNNING:
        lease = state.lease
        if lease is not None and not lease.expired(now):
            raise RunActiveError(run_id, lease.owner, lease.expires_at)
        if repair:
            raise RunNotResumableError(run_id, status.value, "only a blocked run is repaired")
        trigger = RunTrigger.TAKE_OVER
    else:
        trigger = RunTrigger.RESUME
    if next_run_status(status, trigger) is None:
        raise RunNotResumableError(run_id, status.value, "the run is over")
    return trigger
