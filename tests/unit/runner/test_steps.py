"""Steps: tasks grouped by launch order (Get-JobSteps)."""

from __future__ import annotations

from jobledger.runner import JobDefinition, Step, Task, TaskContext, steps


def work(context: TaskContext) -> None:
    """Do nothing; a task function for definitions under test."""


class TestSteps:
    """steps(definition)."""

    def test_tasks_group_by_launch_order_in_increasing_order(self) -> None:
        """Steps come in launch order; tasks keep their definition order within a step."""
        definition = JobDefinition(
            "Nightly",
            [
                Task("provision", work, launch_order=30, parents=["sync_hr"]),
                Task("export_hr", work, launch_order=10),
                Task("sync_hr", work, launch_order=20, parents=["export_hr"]),
                Task("export_ad", work, launch_order=10),
            ],
        )

        listing = [(step.launch_order, step.identifiers) for step in steps(definition)]

        assert [
            (10, ("export_hr", "export_ad")),
            (20, ("sync_hr",)),
            (30, ("provision",)),
        ] == listing

    def test_a_step_holds_the_task_values(self) -> None:
        """Each step carries the Task values themselves."""
        task = Task("only", work)

        assert (Step(1, (task,)),) == steps(JobDefinition("One", [task]))
