"""``--app``: definitions given as a definition, a builder, a mapping, an iterable, a callable."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

import pytest

from jobledger.cli import AppError
from jobledger.cli._app import load_definitions
from jobledger.runner import DefinitionBuilder, JobDefinition, Task, TaskContext

if TYPE_CHECKING:
    from pathlib import Path


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
