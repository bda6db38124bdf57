"""The exit codes: one per way a command ends, documented, click's usage error kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger.cli import EXIT_CODE_MEANINGS, ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


class TestExitCode:
    """The numbers the process exits with."""

    def test_the_codes_are_these_numbers(self) -> None:
        """Each outcome has its documented number (a contract for scripts)."""
        assert {
            "OK": 0,
            "ERROR": 1,
            "USAGE": 2,
            "WARNINGS": 3,
            "FAILED": 4,
            "BLOCKED": 5,
            "CANCELED": 6,
            "NOT_FOUND": 7,
            "STORE_UNREACHABLE": 8,
            "CONFLICT": 9,
            "BUSY": 10,
            "INTERRUPTED": 130,
        } == {code.name: int(code) for code in ExitCode}

    def test_every_code_has_a_meaning(self) -> None:
        """Every code is explained for the help and the reference."""
        assert set(ExitCode) == set(EXIT_CODE_MEANINGS)

    def test_the_help_lists_every_code(self, jobledger: Jobledger) -> None:
        """Jobledger --help ends with the exit codes and their meanings."""
        result = jobledger("--help")

        assert [f"{int(code)}  {EXIT_CODE_MEANINGS[code]}" for code in ExitCode] == [
            line.strip() for line in result.stdout.split("Exit codes:")[1].strip().splitlines()
        ]

    def test_an_unknown_option_is_clicks_usage_error(self, jobledger: Jobledger) -> None:
        """Click's own usage errors keep its code, 2, which is ExitCode.USAGE."""
        assert ExitCode.USAGE == jobledger("list", "--no-such-option").exit_code
