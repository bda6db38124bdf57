"""``--app``: definitions in every form, and the module's optional run settings."""

from __future__ import annotations

import sys
import types
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import click
import pytest

from jobledger import Jobs, Limits
from jobledger.cli import LEASE_SECONDS, POLL_SECONDS, AppError, ExitCode, cli
from jobledger.cli._app import load_app, load_definitions
from jobledger.cli._root import make_runner
from jobledger.runner import DefinitionBuilder, JobDefinition, Task, TaskContext

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.unit.cli.conftest import Jobledger


_Result = TypeVar("_Result")


def work(_context: TaskContext) -> None:
    """A task that does nothing."""


def definition(name: str) -> JobDefinition:
    """A one-task definition called ``name``."""
    return JobDefinition(name, [Task("work", work)])


def builder(name: str) -> DefinitionBuilder:
    """A builder of a one-task definition called ``name``."""
    made = DefinitionBuilder(name)
    made.task(work)
    return made


class TestLoadDefinitions:
    """Finding the job definitions an --app names."""

    @pytest.mark.parametrize(
        "value",
        [
            definition("a"),
            builder("a"),
            [definition("a"), builder("b")],
            (definition("a"),),
            {"a": definition("a"), "b": definition("b")},
            lambda: [definition("a"), definition("b")],
            lambda: definition("a"),
        ],
    )
    def test_every_form_the_attribute_may_take_gives_definitions(
        self, monkeypatch: pytest.MonkeyPatch, value: object
    ) -> None:
        """A definition, a builder, a mapping, an iterable or a callable of any: all are read."""
        module = types.ModuleType("app_forms")
        module.jobs = value  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "app_forms", module)

        found = load_definitions("app_forms:jobs")

        assert {"a"} <= {item.identifier for item in found}

    def test_the_attribute_defaults_to_definitions(self) -> None:
        """``--app module`` reads the module's ``definitions``."""
        assert ("hr-nightly",) == tuple(
            item.identifier for item in load_definitions("jobledger.demo")
        )

    def test_a_module_in_the_working_directory_is_found(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The working directory is on the import path, as for ``python -m``."""
        (tmp_path / "beside_me.py").write_text(
            "from jobledger.demo import hr_nightly\nJOBS = [hr_nightly()]\n", encoding="utf-8"
        )
        monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in {"", "."}])
        monkeypatch.delitem(sys.modules, "beside_me", raising=False)

        assert ("hr-nightly",) == tuple(
            item.identifier for item in load_definitions("beside_me:JOBS")
        )

    def test_an_invalid_builder_is_reported_with_its_problems(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A builder whose definition is invalid is a bad --app that lists the problems."""
        broken = DefinitionBuilder("broken")
        broken.task(parents="nowhere")(work)
        module = types.ModuleType("app_broken")
        module.definitions = broken  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "app_broken", module)

        with pytest.raises(AppError) as raised:
            load_definitions("app_broken")

        assert "task 'work': parent 'nowhere' is not a task of this definition" in str(raised.value)

    @pytest.mark.parametrize("value", [[], [1], "text", 3])
    def test_values_that_are_not_definitions_are_refused(
        self, monkeypatch: pytest.MonkeyPatch, value: object
    ) -> None:
        """An empty collection, or anything holding something else, is a bad --app."""
        module = types.ModuleType("app_wrong")
        module.definitions = value  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "app_wrong", module)

        with pytest.raises(AppError):
            load_definitions("app_wrong")

    def test_a_module_that_fails_to_import_is_reported(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An import that raises is a bad --app whose line names the error."""
        (tmp_path / "fails_on_import.py").write_text(
            "raise ValueError('no config')\n", encoding="utf-8"
        )
        monkeypatch.delitem(sys.modules, "fails_on_import", raising=False)

        with pytest.raises(AppError) as raised:
            load_definitions("fails_on_import")

        assert "importing 'fails_on_import' failed: ValueError: no config" in str(raised.value)


class RecordingExecutor(ThreadPoolExecutor):
    """A thread pool that counts what it is given, and says it runs calls in this process."""

    runs_in_process = True

    def __init__(self) -> None:
        """One thread, nothing submitted yet."""
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(
        self, fn: Callable[..., _Result], /, *args: object, **kwargs: object
    ) -> Future[_Result]:
        """Count the call, then run it."""
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def app_module(monkeypatch: pytest.MonkeyPatch, **settings: object) -> str:
    """Register module ``app_settings`` holding one job, ``one``, and ``settings``; its --app."""
    module = types.ModuleType("app_settings")
    module.definitions = [definition("one")]  # type: ignore[attr-defined]
    for name, value in settings.items():
        setattr(module, name, value)
    monkeypatch.setitem(sys.modules, "app_settings", module)
    return "app_settings"


class TestAppSettings:
    """The --app module's optional run settings: executors, limits, lease, poll_interval."""

    def test_without_settings_the_command_lines_defaults_apply(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A module of definitions only gets no executors, no limits, and the default lease."""
        app = load_app(app_module(monkeypatch))

        assert (None, None, LEASE_SECONDS, POLL_SECONDS) == (
            app.executors,
            app.limits,
            app.lease,
            app.poll_interval,
        )

    def test_the_runner_gets_the_modules_lease_and_poll_interval(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The lease and poll interval reach the command's runner."""
        app = load_app(app_module(monkeypatch, lease=42, poll_interval=0.5))

        with click.Context(cli) as ctx:
            runner = make_runner(ctx, app, Jobs())

        assert (42.0, 0.5) == (runner.lease, runner.poll_interval)

    def test_the_modules_executors_run_the_tasks(
        self, jobledger: Jobledger, store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A module's executor for a side runs that side's tasks."""
        executor = RecordingExecutor()
        app = app_module(monkeypatch, executors={"server": executor})

        result = jobledger("invoke", "-j", "one", "--app", app, "--store", store)
        executor.shutdown()

        assert (ExitCode.OK, 1) == (result.exit_code, executor.submitted)

    def test_executors_a_callable_makes_are_shut_down_when_the_command_ends(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A callable's executors are the command's own: closing its context shuts them down."""
        made: list[RecordingExecutor] = []

        def executors() -> dict[str, RecordingExecutor]:
            made.append(RecordingExecutor())
            return {"server": made[-1]}

        app = load_app(app_module(monkeypatch, executors=executors))
        with click.Context(cli) as ctx:
            make_runner(ctx, app, Jobs())
            assert [False] == [executor._shutdown for executor in made]

        assert [True] == [executor._shutdown for executor in made]

    def test_the_modules_limits_hold_the_ledger(
        self, jobledger: Jobledger, store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The limits reach the ledger: a run whose name is over its text limit is refused (2)."""
        app = app_module(monkeypatch, limits=Limits(max_text_length=2))

        result = jobledger("invoke", "-j", "one", "--app", app, "--store", store)

        assert (ExitCode.USAGE, True) == (result.exit_code, "2 characters" in result.stderr)

    @pytest.mark.parametrize(
        ("settings", "problem"),
        [
            ({"executors": [1]}, "its module's executors is a list, not a mapping of side names"),
            ({"executors": {"agent": 1}}, "its module's executors is a dict, not a mapping of"),
            ({"limits": {"max_bytes": 10}}, "its module's limits is a dict, not a Limits"),
            ({"lease": 0}, "its module's lease must be a positive number of seconds, not 0"),
            ({"lease": True}, "its module's lease must be a positive number of seconds, not True"),
            ({"poll_interval": "1"}, "its module's poll_interval must be a positive number"),
        ],
    )
    def test_a_setting_of_the_wrong_kind_is_a_bad_app(
        self, monkeypatch: pytest.MonkeyPatch, settings: dict[str, object], problem: str
    ) -> None:
        """Each setting is checked when the --app is loaded; the error says which and why."""
        with pytest.raises(AppError) as raised:
            load_app(app_module(monkeypatch, **settings))

        assert problem in str(raised.value)
