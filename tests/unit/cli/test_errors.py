"""Errors for a person: one line saying what happened and what to do; a traceback on --debug."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from jobledger import ConcurrencyError, JobNotFoundError, StorageError
from jobledger.cli import ExitCode
from jobledger.cli._errors import explain
from jobledger.runner import (
    DefinitionBusyError,
    RunActiveError,
    RunNotResumableError,
    SelectionError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.cli.conftest import Jobledger


def broken_store(_address: object, **_options: object) -> None:
    """Stand in for opening a store, failing as nothing jobledger knows would."""
    message = "the disk caught fire"
    raise RuntimeError(message)


class TestErrorReporting:
    """How every command reports what stops it."""

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (JobNotFoundError("42"), ExitCode.NOT_FOUND),
            (ConcurrencyError("42", "e1", "e2"), ExitCode.CONFLICT),
            (RunNotResumableError("42", "completed", "the run is over"), ExitCode.CONFLICT),
            (DefinitionBusyError("nightly", "42", "running"), ExitCode.BUSY),
            (RunActiveError("42", "drive-1", datetime(2026, 1, 1, tzinfo=UTC)), ExitCode.BUSY),
            (SelectionError("nightly", "no task 'x'"), ExitCode.USAGE),
            (StorageError("jobs.db", "disk I/O error"), ExitCode.STORE_UNREACHABLE),
            (ValueError("boom"), ExitCode.ERROR),
        ],
    )
    def test_each_error_has_its_exit_code(self, error: Exception, expected: ExitCode) -> None:
        """Not found, conflicts, usage, storage and unexpected errors map to their own codes."""
        assert expected == explain(error)[0]

    def test_a_store_in_a_missing_folder_is_unreachable_in_one_line(
        self, jobledger: Jobledger, tmp_path: Path
    ) -> None:
        """A store that cannot be opened exits 8 with one line and no traceback."""
        store = str(tmp_path / "missing" / "jobs.db")

        result = jobledger("list", "--store", store)

        assert (
            ExitCode.STORE_UNREACHABLE,
            [
                (
                    f"jobledger: cannot open the store '{store}': there is no store at {store} "
                    "(this command never creates one; `jobledger invoke` or `jobledger demo` "
                    "does); check --store (or JOBLEDGER_STORE)"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    def test_a_file_that_is_not_a_ledger_is_unreachable(
        self, jobledger: Jobledger, tmp_path: Path
    ) -> None:
        """A file that is not a jobledger database is refused untouched, exit 8."""
        store = tmp_path / "notes.db"
        store.write_text("shopping list", encoding="utf-8")

        result = jobledger("list", "--store", str(store))

        assert (ExitCode.STORE_UNREACHABLE, "shopping list") == (
            result.exit_code,
            store.read_text(encoding="utf-8"),
        )

    def test_the_store_comes_from_the_environment(
        self, jobledger: Jobledger, tmp_path: Path
    ) -> None:
        """JOBLEDGER_STORE names the store when --store is not given."""
        store = str(tmp_path / "missing" / "jobs.db")

        result = jobledger("list", env={"JOBLEDGER_STORE": store})

        assert (ExitCode.STORE_UNREACHABLE, True) == (result.exit_code, store in result.stderr)

    def test_an_unknown_kind_of_store_is_a_usage_error(self, jobledger: Jobledger) -> None:
        """Only SQLite paths and PostgreSQL URLs are stores: anything else exits 2."""
        result = jobledger("list", "--store", "mysql://db/jobs")

        assert (
            ExitCode.USAGE,
            [
                (
                    "jobledger: --store 'mysql://db/jobs': mysql:// is not a kind of store "
                    "jobledger "
                    "knows; give a file path, sqlite:///PATH or postgresql://USER@HOST/DATABASE"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    def test_a_postgresql_server_that_does_not_answer_is_unreachable_in_one_line(
        self, jobledger: Jobledger, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A refused connection exits 8 after the wait, with one line (the pool's logs hidden)."""
        pytest.importorskip("psycopg")
        monkeypatch.setattr("jobledger.cli._store.POSTGRES_TIMEOUT", 0.2)

        result = jobledger("list", "--store", "postgresql://nobody@127.0.0.1:1/jobs")

        assert (ExitCode.STORE_UNREACHABLE, 1) == (
            result.exit_code,
            len(jobledger.lines(result.stderr)),
        )
        assert result.stderr.startswith(
            "jobledger: cannot open the store 'postgresql://nobody@127.0.0.1:1/jobs': "
        )

    @pytest.mark.parametrize(
        ("app", "problem"),
        [
            ("no_such_module:definitions", "no module named 'no_such_module' can be imported here"),
            ("cli_test_app:missing", "'cli_test_app' has no attribute 'missing'"),
            ("cli_test_app:definitions.x-y", "it is not of the form module:attribute"),
            ("jobledger:__version__", "it is a str, not job definitions"),
            ("jobledger.demo:DEMO_JOB", "it is a str, not job definitions"),
            ("jobledger.demo:FORCE_THRESHOLD", "it is an int, not job definitions"),
        ],
    )
    def test_a_bad_app_is_a_usage_error_saying_what_is_wrong(
        self, jobledger: Jobledger, app: str, problem: str
    ) -> None:
        """--app that names no job definitions exits 2 with one line saying why."""
        result = jobledger("steps", "-j", "nightly", "--app", app)

        assert (
            ExitCode.USAGE,
            [
                (
                    f"jobledger: --app '{app}': {problem}; give --app (or JOBLEDGER_APP) as "
                    "module:attribute naming your job definitions"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    def test_an_unexpected_error_exits_1_and_suggests_debug(
        self, jobledger: Jobledger, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error jobledger does not know exits 1, in one line that suggests --debug."""
        monkeypatch.setattr("jobledger.cli._root.open_store", broken_store)

        result = jobledger("list")

        assert (
            ExitCode.ERROR,
            [
                (
                    "jobledger: unexpected error: RuntimeError: the disk caught fire; run again "
                    "with "
                    "--debug for the traceback"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    @pytest.mark.parametrize("where", ["before", "after"])
    def test_debug_adds_the_traceback(
        self, jobledger: Jobledger, monkeypatch: pytest.MonkeyPatch, where: str
    ) -> None:
        """--debug (on the group or on the command) prints the traceback before the line."""
        monkeypatch.setattr("jobledger.cli._root.open_store", broken_store)
        args = ["--debug", "list"] if where == "before" else ["list", "--debug"]

        result = jobledger(*args)

        printed = jobledger.lines(result.stderr)
        assert (ExitCode.ERROR, "Traceback (most recent call last):", True) == (
            result.exit_code,
            printed[0],
            printed[-1].startswith("jobledger: unexpected error: RuntimeError"),
        )
