"""Arguments made to break the command line: each is a usage or store error in one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


class TestHostileArguments:
    """What an attacker (or a slip of the keyboard) may type."""

    @pytest.mark.parametrize(
        ("args", "expected", "line"),
        [
            (
                ("invoke", "-j", "nightly", "--input", "[" * 10_000 + "]" * 10_000),
                ExitCode.USAGE,
                "Error: Invalid value for --input: it is nested too deeply to be read",
            ),
            (
                ("list", "--service", "\udcff"),
                ExitCode.USAGE,
                "Error: the argument '\\xff' is not valid UTF-8 text",
            ),
            (
                ("list", "--store", "postgresql://[::1"),
                ExitCode.USAGE,
                (
                    "jobledger: --store 'postgresql://[::1': it is not a URL that can be read "
                    "(Invalid IPv6 URL); give a file path, sqlite:///PATH or "
                    "postgresql://USER@HOST/DATABASE"
                ),
            ),
            (
                ("list", "--store", "postgresql://db:port/x"),
                ExitCode.USAGE,
                (
                    "jobledger: --store 'postgresql://db:port/x': it is not a URL that can be "
                    "read (Port could not be cast to integer value as 'port'); give a file "
                    "path, sqlite:///PATH or postgresql://USER@HOST/DATABASE"
                ),
            ),
        ],
        ids=["deep-input", "not-utf8", "broken-ipv6-url", "bad-port"],
    )
    def test_each_is_refused_with_its_code_in_one_line(
        self, jobledger: Jobledger, args: tuple[str, ...], expected: ExitCode, line: str
    ) -> None:
        """No traceback: the exit code of the error and one line that says what is wrong."""
        result = (
            jobledger(*args, "--app", jobledger.app) if args[0] == "invoke" else jobledger(*args)
        )

        assert (expected, line, False) == (
            result.exit_code,
            jobledger.lines(result.stderr)[-1],
            "Traceback" in result.output,
        )
