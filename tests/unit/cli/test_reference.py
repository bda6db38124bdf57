"""The CLI reference in the docs: generated from the commands' help, and kept in step."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from jobledger.cli import ExitCode, cli, reference_markdown
from jobledger.cli._reference import REFERENCE_END, update_reference

DOCS = Path(__file__).resolve().parents[3] / "docs"


def commands_in(markdown: str) -> list[list[str]]:
    """The ``jobledger ...`` commands of the ``$ `` lines of the Markdown's code blocks."""
    found = []
    for line in markdown.splitlines():
        if line.startswith("$ jobledger "):
            words = shlex.split(line.removeprefix("$ "))
            found.append(words[1:])
    return found


class TestReferenceMarkdown:
    """reference_markdown(), and the pages that show commands."""

    def test_every_command_and_option_is_in_the_reference(self) -> None:
        """Each command has a section, and each of its options a row, with its help."""
        text = reference_markdown()
        ctx = click.Context(cli, info_name="jobledger")
        missing = []
        for name in cli.list_commands(ctx):
            command = cli.get_command(ctx, name)
            assert command is not None
            if f"## `jobledger {name}`" not in text:
                missing.append(name)
            missing.extend(
                f"{name} {option}"
                for param in command.params
                if isinstance(param, click.Option)
                for option in param.opts
                if f"`{option}" not in text and f" {option}" not in text
            )
        assert [] == missing

    def test_every_exit_code_is_in_the_reference(self) -> None:
        """The exit codes table has one row per code."""
        text = reference_markdown()

        assert [] == [
            code.name for code in ExitCode if f"| {int(code)} | `{code.name}` |" not in text
        ]

    def test_the_reference_is_the_same_every_time(self) -> None:
        """The generated text depends on nothing but the code (no terminal width, no time)."""
        assert reference_markdown() == reference_markdown()

    def test_the_cli_page_holds_the_current_reference(self) -> None:
        """docs/cli.md holds the reference as the help says it today (nox -s docs updates it)."""
        page = (DOCS / "cli.md").read_text(encoding="utf-8")

        assert f"\n{reference_markdown()}\n{REFERENCE_END}\n" in page

    def test_updating_the_page_replaces_the_reference_only(self, tmp_path: Path) -> None:
        """update_reference rewrites what lies between the markers and keeps the rest."""
        page = tmp_path / "cli.md"
        old = reference_markdown().replace("Launch a job", "Start a job")
        page.write_text(f"# Title\n\n{old}\n{REFERENCE_END}\n\nAfter.\n", encoding="utf-8")

        changed = [update_reference(page), update_reference(page)]

        assert (
            [True, False],
            f"# Title\n\n{reference_markdown()}\n{REFERENCE_END}\n\nAfter.\n",
        ) == (
            changed,
            page.read_text(encoding="utf-8"),
        )

    @pytest.mark.parametrize("page", ["quickstart-cli.md", "cli.md"])
    def test_every_command_a_page_shows_is_valid(self, page: str) -> None:
        """The commands the docs show parse: their command and options exist."""
        shown = commands_in((DOCS / page).read_text(encoding="utf-8"))
        problems = []
        for words in shown:
            root = click.Context(cli, info_name="jobledger")
            command = cli.get_command(root, words[0])
            if command is None:
                problems.append(f"{shlex.join(words)}: no command {words[0]!r}")
                continue
            try:
                command.make_context(words[0], list(words[1:]), parent=root)
            except click.ClickException as error:
                problems.append(f"{shlex.join(words)}: {error.format_message()}")
        assert ([], True) == (problems, len(shown) > 0 or page == "cli.md")
