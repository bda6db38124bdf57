"""Selections: which tasks of a definition a run runs."""

from __future__ import annotations

import pytest

from jobledger.runner import JobDefinition, Selection, SelectionError, Task, TaskContext


def work(context: TaskContext) -> None:
    """Do nothing; a task function for definitions under test."""


DEFINITION = JobDefinition(
    "Nightly",
    [
        Task("export_hr", work, type="export", launch_order=1),
        Task("export_ad", work, type="export", launch_order=1),
        Task("sync_hr", work, type="synchronize", launch_order=2, parents=["export_hr"]),
        Task("sync_ad", work, type="synchronize", launch_order=2, parents=["export_ad"]),
        Task("provision", work, type="provision", launch_order=3, parents=["sync_hr"]),
    ],
)


def selected(selection: Selection) -> list[str]:
    """Return the identifiers ``selection`` picks from DEFINITION."""
    return [task.identifier for task in selection.select(DEFINITION)]


class TestSelection:
    """Selection.select and its JSON form."""

    def test_no_field_selects_every_task_in_step_order(self) -> None:
        """An empty selection runs the whole definition."""
        assert ["export_hr", "export_ad", "sync_hr", "sync_ad", "provision"] == selected(
            Selection()
        )

    def test_begin_and_end_step_are_inclusive(self) -> None:
        """The range keeps the steps from begin to end, both included."""
        assert ["sync_hr", "sync_ad", "provision"] == selected(Selection(begin_step=2))
        assert ["export_hr", "export_ad", "sync_hr", "sync_ad"] == selected(Selection(end_step=2))
        assert ["sync_hr", "sync_ad"] == selected(Selection(begin_step=2, end_step=2))

    def test_a_task_identifier_selects_only_that_task(self) -> None:
        """``task`` runs the one task."""
        assert ["sync_ad"] == selected(Selection(task="sync_ad"))

    def test_a_task_type_selects_the_first_task_of_that_type(self) -> None:
        """``task_type`` runs the first task, in step order, of the type."""
        assert ["sync_hr"] == selected(Selection(task_type="synchronize"))

    def test_contains_selects_every_task_whose_identifier_contains_it(self) -> None:
        """``contains`` runs all tasks with the text in their identifier."""
        assert ["export_hr", "sync_hr"] == selected(Selection(contains="_hr"))

    def test_the_range_applies_before_the_pick(self) -> None:
        """A type is looked for only within the step range."""
        assert ["sync_ad"] == selected(Selection(begin_step=2, contains="_ad"))

    @pytest.mark.parametrize(
        ("selection", "reason"),
        [
            (Selection(task="ghost"), "no task 'ghost' in the definition"),
            (
                Selection(task="export_hr", begin_step=2),
                "no task 'export_hr' in the selected steps",
            ),
            (Selection(task_type="report"), "no task of type 'report' to run"),
            (Selection(contains="zz"), "no task identifier contains 'zz'"),
            (Selection(begin_step=4), "no step has a launch order from 4 to None"),
            (Selection(begin_step=3, end_step=1), "begin_step 3 comes after end_step 1"),
            (
                Selection(task="sync_hr", contains="hr"),
                "give at most one of task, task_type and contains, not task and contains",
            ),
            (Selection(task=""), "task must be a non-empty string"),
            (Selection(begin_step="2"), "begin_step must be a launch order (an integer)"),  # type: ignore[arg-type]
        ],
    )
    def test_an_invalid_selection_says_why(self, selection: Selection, reason: str) -> None:
        """A selection that selects nothing or contradicts itself raises SelectionError."""
        with pytest.raises(SelectionError) as caught:
            selection.select(DEFINITION)

        assert reason == caught.value.reason

    def test_json_round_trip_keeps_the_fields_that_are_set(self) -> None:
        """A run records its selection as JSON and reads it back unchanged."""
        selection = Selection(begin_step=2, task_type="synchronize")

        assert {"begin_step": 2, "task_type": "synchronize"} == selection.to_json()
        assert selection == Selection.from_json(selection.to_json())
