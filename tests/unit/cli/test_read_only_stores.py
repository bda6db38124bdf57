"""Commands that read or steer existing jobs never create a store; a missing one is exit 8."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest

from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.cli.conftest import Jobledger


class TestReadOnlyStores:
    """Where the commands find (and do not make) their store."""

    @pytest.mark.parametrize(
        "args",
        [
            ("list",),
            ("show", "x"),
            ("history", "x"),
            ("watch", "--timeout", "0"),
            ("cancel", "x"),
            ("resume", "x"),
        ],
        ids=lambda args: args[0],
    )
    def test_a_missing_store_is_named_and_not_made(
        self, jobledger: Jobledger, tmp_path: Path, args: tuple[str, ...]
    ) -> None:
        """Exit 8, one line naming the absolute path looked for, and no file left behind."""
        result = jobledger(*args, "--store", "nothing-here.db")

        path = tmp_path / "nothing-here.db"
        assert (
            ExitCode.STORE_UNREACHABLE,
            [
                (
                    f"jobledger: cannot open the store 'nothing-here.db': there is no store at "
                    f"{path} (this command never creates one; `jobledger invoke` or "
                    "`jobledger demo` does); check --store (or JOBLEDGER_STORE)"
                )
            ],
            [],
        ) == (
            result.exit_code,
            jobledger.lines(result.stderr),
            [entry.name for entry in tmp_path.iterdir()],
        )

    def test_steps_opens_no_store(self, jobledger: Jobledger, tmp_path: Path) -> None:
        """The steps command reads the job definitions only: no store is made or needed."""
        result = jobledger("steps", "-j", "hr-nightly")

        assert (ExitCode.OK, []) == (result.exit_code, list(tmp_path.iterdir()))

    def test_invoke_creates_the_store(self, jobledger: Jobledger, tmp_path: Path) -> None:
        """The invoke command starts a run, so it makes the store when there is none."""
        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", "new.db")

        assert (ExitCode.OK, True) == (result.exit_code, (tmp_path / "new.db").is_file())

    def test_the_store_may_come_before_the_command(self, jobledger: Jobledger, store: str) -> None:
        """With `jobledger --store S list`, list reads S, and the hints it prints repeat it."""
        jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", store)

        listed = jobledger("--store", store, "list", "--runs", "--limit", "1")
        shown = jobledger("--store", store, "show", "nope")

        assert (ExitCode.OK, "nightly", ExitCode.NOT_FOUND, True) == (
            listed.exit_code,
            listed.stdout.splitlines()[1].split()[1].rsplit("/", 1)[-1],
            shown.exit_code,
            f"`jobledger list --store {store}`" in shown.stderr,
        )

    def test_a_store_after_the_command_wins(
        self, jobledger: Jobledger, store: str, tmp_path: Path
    ) -> None:
        """Given before and after the command, the --store after it counts."""
        jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", store)

        result = jobledger("--store", str(tmp_path / "other.db"), "list", "--store", store)

        assert ExitCode.OK == result.exit_code


@pytest.mark.postgres
class TestReadOnlyPostgresStores:
    """A PostgreSQL schema with no ledger is not made by the commands that only read."""

    def test_a_schema_without_a_ledger_is_named_and_not_made(
        self, jobledger: Jobledger, postgres_conninfo: str
    ) -> None:
        """Exit 8 naming the schema, and the schema still does not exist afterwards."""
        schema = f"absent_{uuid.uuid4().hex[:12]}"

        result = jobledger("list", "--store", f"{postgres_conninfo}?schema={schema}")

        assert ExitCode.STORE_UNREACHABLE == result.exit_code
        assert f"holds no jobledger ledger in schema '{schema}'" in result.stderr
        with psycopg.connect(postgres_conninfo) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
        assert found is None
