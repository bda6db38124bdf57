"""What the output looks like: live and coloured on a terminal, plain elsewhere, NO_COLOR kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

GREEN = "\x1b[32m"  # how rich colours "completed"


class TestOutput:
    """The same command on a terminal, in a pipe, and with NO_COLOR."""

    def test_off_a_terminal_the_output_has_no_escape_codes(self, jobledger: Jobledger) -> None:
        """Piped or captured, progress is plain lines: no colour, no cursor movement."""
        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app)

        assert (ExitCode.OK, False) == (result.exit_code, "\x1b" in result.stdout)

    def test_on_a_terminal_progress_is_a_live_coloured_table(self, jobledger: Jobledger) -> None:
        """On a terminal (FORCE_COLOR stands in for one) the tasks show in a live table."""
        result = jobledger(
            "invoke", "-j", "nightly", "--app", jobledger.app, env={"FORCE_COLOR": "1"}
        )

        assert (ExitCode.OK, True, True) == (
            result.exit_code,
            GREEN in result.stdout,
            "\x1b[?25l" in result.stdout,  # the live display hides the cursor while it draws
        )

    def test_no_color_keeps_the_live_table_without_colours(self, jobledger: Jobledger) -> None:
        """NO_COLOR removes the colours, even on a terminal."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--app",
            jobledger.app,
            env={"FORCE_COLOR": "1", "NO_COLOR": "1"},
        )

        assert (ExitCode.OK, False, True) == (
            result.exit_code,
            GREEN in result.stdout,
            "provision" in result.stdout,
        )
