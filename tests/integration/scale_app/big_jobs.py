"""A job of many no-op tasks, for the command line's scale test (an --app module)."""

from __future__ import annotations

import os

from jobledger.runner import JobDefinition, Task, TaskContext

#: How many tasks, and how many to a step (JOBLEDGER_SCALE_TASKS sizes it).
TASKS = int(os.environ.get("JOBLEDGER_SCALE_TASKS", "10000"))
WIDTH = 100


def nothing(_context: TaskContext) -> None:
    """Do nothing: the runner's own cost is what is measured."""


definitions = [
    JobDefinition(
        "big",
        [Task(f"t{number:05d}", nothing, launch_order=number // WIDTH) for number in range(TASKS)],
    )
]
