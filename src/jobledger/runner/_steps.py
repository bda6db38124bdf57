"""Steps: the tasks of a definition grouped by launch order (Get-JobSteps).

The tasks of a step run together, concurrently; steps run one after the other,
in increasing launch order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from jobledger.runner._definition import Task

if TYPE_CHECKING:
    from collections.abc import Iterable

    from jobledger.runner._definition import JobDefinition

__all__ = ["Step", "group_steps", "in_step_order", "steps"]


@attrs.frozen
class Step:
    """The tasks that share a launch order.

    Attributes:
        launch_order: The launch order of every task in the step.
        tasks: The step's tasks, in definition order.
    """

    launch_order: int
    tasks: tuple[Task, ...]

    @property
    def identifiers(self) -> tuple[str, ...]:
        """The identifiers of the step's tasks, in definition order."""
        return tuple(task.identifier for task in self.tasks)


def _launch_order(task: Task) -> int:
    return task.launch_order


def in_step_order(tasks: Iterable[Task]) -> list[Task]:
    """``tasks`` in the order their steps run, in their given order within a step.

    The order of :func:`group_steps`'s tasks, without making the steps.
    """
    return sorted(tasks, key=_launch_order)


def group_steps(tasks: Iterable[Task]) -> tuple[Step, ...]:
    """Group ``tasks`` into steps by launch order; keep their order within a step."""
    groups: dict[int, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task.launch_order, []).append(task)
    return tuple(Step(order, tuple(groups[order])) for order in sorted(groups))


def steps(definition: JobDefinition) -> tuple[Step, ...]:
    """The steps of ``definition`` in the order they run: the Get-JobSteps listing.

    >>> from jobledger.runner import JobDefinition, Task
    >>> def work(context):
    ...     return None
    >>> definition = JobDefinition(
    ...     "Nightly",
    ...     [
    ...         Task("export_hr", work, launch_order=10),
    ...         Task("export_ad", work, launch_order=10),
    ...         Task("synchronize", work, launch_order=20, parents=["export_hr", "export_ad"]),
    ...     ],
    ... )
    >>> for step in steps(definition):
    ...     print(step.launch_order, step.identifiers)
    10 ('export_hr', 'export_ad')
    20 ('synchronize',)
    """
    return group_steps(definition.tasks)
