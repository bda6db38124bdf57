"""Job definitions: tasks, the builder, and validation that lists every problem."""

from __future__ import annotations

import pytest

from jobledger import JobledgerError
from jobledger.runner import (
    DefinitionBuilder,
    DefinitionError,
    JobDefinition,
    Runner,
    Task,
    TaskContext,
)


def work(context: TaskContext) -> None:
    """Do nothing; a task function for definitions under test."""


def other_work(context: TaskContext) -> None:
    """Do nothing else; a second task function."""


class TestTask:
    """A task's fields and defaults."""

    def test_defaults(self) -> None:
        """A task runs on the server, in launch order 1, with no parents, guard or timeout."""
        task = Task("export", work)

        assert ("task", 1, (), "server", False, False, None, None) == (
            task.type,
            task.launch_order,
            task.parents,
            task.side,
            task.warning_mode,
            task.guarded,
            task.repair,
            task.timeout,
        )

    def test_a_single_parent_may_be_given_as_a_string(self) -> None:
        """``parents="a"`` means the one parent ``a``, not the letters of a name."""
        assert ("export_hr",) == Task("sync", work, parents="export_hr").parents


class TestJobDefinition:
    """Validation of a definition when it is built."""

    def test_a_valid_definition_keeps_its_tasks_in_order(self) -> None:
        """The tasks stay in definition order, and a task is found by identifier."""
        definition = JobDefinition(
            "Nightly", [Task("b", work), Task("a", work, launch_order=2, parents=["b"])]
        )

        assert ["b", "a"] == [task.identifier for task in definition.tasks]
        assert "a" == definition.task("a").identifier

    def test_every_problem_is_listed_in_one_error(self) -> None:
        """Duplicates, unknown or late parents, cycles and bad repairs all show at once."""
        tasks = [
            Task("a", work, launch_order=2, parents=["c"]),
            Task("a", work),
            Task("b", work, parents=["ghost"]),
            Task("c", work, launch_order=2, parents=["a"]),
            Task("d", work, repair=other_work),
            Task("e", work, timeout=0),
        ]

        with pytest.raises(DefinitionError) as caught:
            JobDefinition("Nightly", tasks)

        assert [
            "task 'a' is defined more than once",
            "task 'd': has a repair variant but is not guarded (only guarded tasks block)",
            "task 'e': timeout must be a positive number of seconds, not 0",
            "task 'a': parent 'c' has launch order 2, which is not earlier than the task's 2",
            "task 'b': parent 'ghost' is not a task of this definition",
            "task 'c': parent 'a' has launch order 2, which is not earlier than the task's 2",
            "parent links form a cycle: 'a' -> 'c' -> 'a'",
        ] == list(caught.value.problems)

    def test_the_error_message_lists_the_problems(self) -> None:
        """The message names the definition and has one line per problem."""
        with pytest.raises(DefinitionError) as caught:
            JobDefinition("Nightly", [Task("a", work, parents="a")])

        assert (
            "job definition 'Nightly' has 1 problem:\n  - parent links form a cycle: 'a' -> 'a'"
        ) == str(caught.value)

    def test_an_empty_definition_and_bad_names_are_problems(self) -> None:
        """An empty identifier and no tasks are both reported."""
        with pytest.raises(DefinitionError) as caught:
            JobDefinition("", [])

        assert [
            "identifier '' must not be empty",
            "a job definition needs at least one task",
        ] == list(caught.value.problems)

    def test_fields_of_the_wrong_type_are_problems(self) -> None:
        """A non-callable function, a text launch order and an empty type are reported."""
        bad = Task("a", "not callable", type="", launch_order="1")  # type: ignore[arg-type]

        with pytest.raises(DefinitionError) as caught:
            JobDefinition("Nightly", [bad])

        assert [
            "task 'a': function must be callable, not str",
            "task 'a': type '' must not be empty",
            "task 'a': launch_order must be an integer, not '1'",
        ] == list(caught.value.problems)

    def test_definition_error_is_a_jobledger_error_and_a_value_error(self) -> None:
        """Callers can catch it as JobledgerError or ValueError."""
        with pytest.raises(DefinitionError) as caught:
            JobDefinition("Nightly", [])

        assert isinstance(caught.value, JobledgerError)
        assert isinstance(caught.value, ValueError)

    def test_a_missing_task_is_a_key_error(self) -> None:
        """Looking up a task that is not defined raises KeyError."""
        definition = JobDefinition("Nightly", [Task("a", work)])

        with pytest.raises(KeyError):
            definition.task("b")


class TestDefinitionBuilder:
    """Definitions written with decorators."""

    def test_decorators_return_the_function_itself(self) -> None:
        """A decorated function stays a plain function (and so stays picklable)."""
        builder = DefinitionBuilder("Nightly")

        assert work is builder.task(work)
        assert other_work is builder.task(launch_order=2)(other_work)

    def test_the_identifier_defaults_to_the_function_name(self) -> None:
        """Tasks are named after their functions unless given an identifier."""
        builder = DefinitionBuilder("Nightly", display_name="Nightly HR")
        builder.task(work)
        builder.task(identifier="export_ad", type="export", side="agent")(other_work)

        definition = builder.build()

        assert ("Nightly HR", ["work", "export_ad"]) == (
            definition.display_name,
            [task.identifier for task in definition.tasks],
        )
        assert ("export", "agent") == (definition.tasks[1].type, definition.tasks[1].side)

    def test_repair_attaches_to_the_named_guarded_task(self) -> None:
        """``@builder.repair(name)`` makes the function that task's repair variant."""
        builder = DefinitionBuilder("Nightly")
        builder.task(guarded=True)(work)
        builder.repair("work")(other_work)

        assert other_work is builder.build().task("work").repair

    def test_builder_problems_join_the_definition_problems(self) -> None:
        """A repair for an unknown task is listed with the definition's own problems."""
        builder = DefinitionBuilder("Nightly")
        builder.task(parents="ghost")(work)
        builder.repair("nobody")(other_work)

        with pytest.raises(DefinitionError) as caught:
            builder.build()

        assert [
            "repair 'other_work' is for 'nobody', which is not a task",
            "task 'work': parent 'ghost' is not a task of this definition",
        ] == list(caught.value.problems)

    def test_two_repairs_for_one_task_are_a_problem(self) -> None:
        """A guarded task has at most one repair variant."""
        builder = DefinitionBuilder("Nightly")
        builder.task(guarded=True)(work)
        builder.repair("work")(other_work)
        builder.repair("work")(work)

        with pytest.raises(DefinitionError) as caught:
            builder.build()

        assert ["task 'work' has more than one repair variant"] == list(caught.value.problems)

    def test_add_takes_a_prebuilt_task(self) -> None:
        """Tasks built as values mix with decorated ones."""
        builder = DefinitionBuilder("Nightly")
        builder.add(Task("export", work))
        builder.task(launch_order=2, parents="export")(other_work)

        assert ["export", "other_work"] == [task.identifier for task in builder.build().tasks]


class TestRunnerDefinitions:
    """What a runner checks of the definitions it is given."""

    def test_sides_without_an_executor_and_duplicates_are_listed(self) -> None:
        """A task on an unknown side and a definition given twice are both reported."""
        from jobledger import Jobs  # noqa: PLC0415  (local to this one test)

        definition = JobDefinition("Nightly", [Task("gpu_task", work, side="gpu")])

        with pytest.raises(DefinitionError) as caught:
            Runner(Jobs(), [definition, definition])

        assert [
            (
                "definition 'Nightly': task 'gpu_task' runs on side 'gpu', which has no executor "
                "(known: agent, server)"
            ),
            "definition 'Nightly' is given more than once",
        ] == list(caught.value.problems)
