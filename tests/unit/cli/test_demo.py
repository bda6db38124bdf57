"""``jobledger demo``: the bundled job blocks, and the command it prints completes the run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.cli.conftest import Jobledger


class TestDemo:
    """The newcomer's first command."""

    def test_the_demo_blocks_shows_why_and_exits_0(
        self, jobledger: Jobledger, cli_environment: Path
    ) -> None:
        """The synchronization blocks on 66 changes over 50; the block and its details print."""
        result = jobledger("demo")

        printed = jobledger.lines(result.stdout)
        run_id = jobledger.run_id("\n".join(line for line in printed if line.startswith("Run ")))
        assert (ExitCode.OK, "") == (result.exit_code, result.stderr)
        assert [
            "jobledger demo: hr-nightly, the nightly job of an identity-management system.",
            f"Ledger: SQLite {cli_environment / 'jobledger.db'}",
        ] == printed[:2]
        start = printed.index(f"Run {run_id} is blocked at step 2:")
        assert [
            "  synchronize: 66 changes cross the force threshold of 50",
            "    changes: 66",
            "    threshold: 50",
            "    create: 21",
            "    update: 38",
            "    delete: 7",
            (
                '    accounts to delete: ["E0901", "E0902", "E0903", "E0904", "E0905", "E0906", '
                '"E0907"]'
            ),
            "Resume it with repair (the blocked task's repair variant runs in its place):",
            "    jobledger invoke -j hr-nightly --repair-job",
        ] == printed[start + 1 : start + 10]

    def test_the_printed_command_completes_the_run(self, jobledger: Jobledger) -> None:
        """`jobledger invoke -j hr-nightly --repair-job`, as printed, validates and provisions."""
        jobledger("demo")

        result = jobledger("invoke", "-j", "hr-nightly", "--repair-job", "--json")

        document = json.loads(result.stdout)
        assert (ExitCode.OK, "completed") == (result.exit_code, document["Status"])
        assert (
            "66 changes validated and synchronized (21 to create, 38 to update, 7 to delete)",
            "21 accounts created, 38 moved, 7 disabled in Active Directory",
        ) == (
            jobledger.task(document, "synchronize")["Summary"],
            jobledger.task(document, "provision-directory")["Summary"],
        )

    def test_the_printed_command_repeats_the_store_given(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """With --store, the command to resume names the same store, and it works."""
        result = jobledger("demo", "--store", store)
        hint = f"jobledger invoke -j hr-nightly --repair-job --store {store}"

        assert f"    {hint}" in jobledger.lines(result.stdout)
        resumed = jobledger(*hint.split()[1:])
        assert ExitCode.OK == resumed.exit_code

    def test_the_printed_command_names_the_demo_when_another_app_is_set(
        self, jobledger: Jobledger
    ) -> None:
        """With JOBLEDGER_APP set to other definitions, the command names the demo's with --app."""
        result = jobledger("demo", env={"JOBLEDGER_APP": jobledger.app})

        hint = "jobledger invoke -j hr-nightly --repair-job --app jobledger.demo:definitions"
        assert f"    {hint}" in jobledger.lines(result.stdout)

    def test_with_a_force_threshold_the_run_completes(self, jobledger: Jobledger) -> None:
        """-f 66 lets the synchronization through: the demo's run completes, exit 0."""
        result = jobledger("demo", "-f", "66")

        assert (ExitCode.OK, True) == (
            result.exit_code,
            any(" completed, " in line for line in jobledger.lines(result.stdout)),
        )

    def test_the_printed_commands_call_the_program_as_it_was_called(
        self, jobledger: Jobledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Run as .venv/bin/jobledger, not on the PATH: every hint says .venv/bin/jobledger."""
        program = tmp_path / ".venv" / "bin" / "jobledger"
        program.parent.mkdir(parents=True)
        program.write_text("#!/bin/sh\n", encoding="utf-8")
        monkeypatch.setattr("sys.argv", [".venv/bin/jobledger", "demo"])
        monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))

        result = jobledger("demo")

        printed = jobledger.lines(result.stdout)
        assert (True, True, []) == (
            "Steps (.venv/bin/jobledger steps -j hr-nightly):" in printed,
            "    .venv/bin/jobledger invoke -j hr-nightly --repair-job" in printed,
            [line for line in printed if "`jobledger " in line or line.startswith("    jobledger")],
        )

    @pytest.mark.parametrize("option", ["-f", "--force", "--force-synchronization-provisioning"])
    def test_the_force_threshold_has_a_short_and_two_long_names(
        self, jobledger: Jobledger, option: str
    ) -> None:
        """-f, --force (as resume names it) and Invoke-Job's long name all set the threshold."""
        result = jobledger("demo", option, "100")

        assert (ExitCode.OK, True) == (
            result.exit_code,
            any(" completed, " in line for line in jobledger.lines(result.stdout)),
        )
