"""Which tasks of a definition a run runs: the Invoke-Job selection flags.

A :class:`Selection` narrows a definition to a range of steps and, within
it, to one task, the first task of a type, or the tasks whose identifier
contains a text. Parents left out of the selection do not gate the tasks
that remain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from jobledger.runner._errors import SelectionError
from jobledger.runner._steps import in_step_order

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jobledger._core.jsondoc import JsonValue
    from jobledger.runner._definition import JobDefinition, Task

__all__ = ["Selection"]

_FIELDS = ("begin_step", "end_step", "task", "task_type", "contains")


def _is_step(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@attrs.frozen(kw_only=True)
class Selection:
    """Which tasks of a definition to run; with no field set, all of them.

    The step range applies first; then at most one of ``task``,
    ``task_type`` and ``contains`` picks tasks within it.

    Attributes:
        begin_step: The first launch order to run (inclusive); ``None`` for the first step.
        end_step: The last launch order to run (inclusive); ``None`` for the last step.
        task: Run only the task with this identifier.
        task_type: Run only the first task (in step order) of this type.
        contains: Run every task whose identifier contains this text.

    >>> from jobledger.runner import JobDefinition, Task
    >>> def work(context):
    ...     return None
    >>> definition = JobDefinition(
    ...     "Nightly",
    ...     [
    ...         Task("export_hr", work, type="export"),
    ...         Task("export_ad", work, type="export"),
    ...         Task("sync_hr", work, type="synchronize", launch_order=2),
    ...     ],
    ... )
    >>> [task.identifier for task in Selection(contains="_hr").select(definition)]
    ['export_hr', 'sync_hr']
    >>> [task.identifier for task in Selection(task_type="export").select(definition)]
    ['export_hr']
    >>> [task.identifier for task in Selection(begin_step=2).select(definition)]
    ['sync_hr']
    """

    begin_step: int | None = None
    end_step: int | None = None
    task: str | None = None
    task_type: str | None = None
    contains: str | None = None

    def select(self, definition: JobDefinition) -> tuple[Task, ...]:
        """The tasks of ``definition`` this selection runs, in step order.

        Raises:
            SelectionError: a field has the wrong type, the range is empty or
                reversed, more than one of ``task``, ``task_type`` and
                ``contains`` is set, or nothing matches.
        """
        name = definition.identifier
        for bound in ("begin_step", "end_step"):
            value = getattr(self, bound)
            if value is not None and not _is_step(value):
                raise SelectionError(name, f"{bound} must be a launch order (an integer)")
        for field in ("task", "task_type", "contains"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                raise SelectionError(name, f"{field} must be a non-empty string")
        picks = [field for field in ("task", "task_type", "contains") if getattr(self, field)]
        if len(picks) > 1:
            raise SelectionError(
                name, f"give at most one of task, task_type and contains, not {' and '.join(picks)}"
            )
        begin, end = self.begin_step, self.end_step
        if begin is not None and end is not None and begin > end:
            raise SelectionError(name, f"begin_step {begin} comes after end_step {end}")
        ordered = in_step_order(definition.tasks)
        in_range = [
            task
            for task in ordered
            if (begin is None or task.launch_order >= begin)
            and (end is None or task.launch_order <= end)
        ]
        if not in_range:
            raise SelectionError(name, f"no step has a launch order from {begin} to {end}")
        return self._pick(name, in_range, ordered)

    def _pick(self, name: str, in_range: list[Task], ordered: list[Task]) -> tuple[Task, ...]:
        if self.task is not None:
            chosen = [task for task in in_range if task.identifier == self.task]
            if not chosen:
                where = (
                    "in the selected steps"
                    if any(task.identifier == self.task for task in ordered)
                    else "in the definition"
                )
                raise SelectionError(name, f"no task {self.task!r} {where}")
            return tuple(chosen)
        if self.task_type is not None:
            chosen = [task for task in in_range if task.type == self.task_type]
            if not chosen:
                raise SelectionError(name, f"no task of type {self.task_type!r} to run")
            return (chosen[0],)
        if self.contains is not None:
            contains = self.contains
            chosen = [task for task in in_range if contains in task.identifier]
            if not chosen:
                raise SelectionError(name, f"no task identifier contains {contains!r}")
            return tuple(chosen)
        return tuple(in_range)

    def to_json(self) -> dict[str, JsonValue]:
        """The fields that are set, as a JSON object (how a run records its selection)."""
        return {
            field: getattr(self, field) for field in _FIELDS if getattr(self, field) is not None
        }

    @classmethod
    def from_json(cls, value: Mapping[str, JsonValue]) -> Selection:
        """The selection :meth:`to_json` recorded."""
        fields: dict[str, Any] = {field: value[field] for field in _FIELDS if field in value}
        return cls(**fields)
