"""The CLI reference, rendered as Markdown from the commands' own help.

``docs/cli.md`` holds what :func:`reference_markdown` returns, between two
markers, so the reference reads in the repository as on the docs site; a test
proves it says what ``jobledger COMMAND --help`` says, and the docs build
(``nox -s docs``) brings it up to date with :func:`update_reference`.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING

import click

from jobledger.cli._app import APP_ENV, DEFAULT_APP
from jobledger.cli._exit import EXIT_CODE_MEANINGS, ExitCode
from jobledger.cli._root import cli
from jobledger.cli._store import DEFAULT_STORE, STORE_ENV

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["REFERENCE_END", "reference_markdown", "update_reference"]

_WIDTH = 100
_GENERATED_NOTE = (
    "<!-- Generated from the commands' help by jobledger.cli.reference_markdown(); do not edit. -->"
)
#: The line after the generated reference in a page that holds it.
REFERENCE_END = "<!-- End of the generated reference. -->"
_EXIT_CODES_INTRO = (
    "Commands that drive a run (`invoke`, `resume`) exit with how the run ended; the others "
    "exit 0 when they did what was asked. `demo` exits 0 when its run blocked as designed."
)


def _paragraphs(text: str) -> Iterator[str]:
    """Click's help text as Markdown: paragraphs that click keeps as they are become text blocks."""
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b\n"):
            body = inspect.cleandoc(paragraph[2:])
            yield f"```text\n{body}\n```"
        else:
            yield _code_options(" ".join(paragraph.split()))


# An option in running text (--app, -j): shown as code, which also keeps Sphinx's
# smart quotes from turning its "--" into a dash.
_OPTION = re.compile(r"(?<![\w`-])(--?[A-Za-z][\w-]*)")


def _code_options(text: str) -> str:
    return _OPTION.sub(r"`\1`", text)


def _meaning(code: ExitCode) -> str:
    return _code_options(_cell(EXIT_CODE_MEANINGS[code]))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _command_section(command: click.Command, parent: click.Context) -> Iterator[str]:
    name = command.name or ""
    ctx = click.Context(command, info_name=name, parent=parent, max_content_width=_WIDTH)
    yield f"## `{ctx.command_path}`"
    yield from _paragraphs(command.help or "")
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    yield f"```text\n{usage}\n```"
    rows = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        options, text = record
        rows.append(f"| `{_cell(options)}` | {_code_options(_cell(text))} |")
    if rows:
        yield "\n".join(["| option | what it does |", "| --- | --- |", *rows])


def reference_markdown() -> str:
    """Every ``jobledger`` command's help, its options, the exit codes and the environment.

    The headings start at level 2 (``##``), for a page that gives the title.

    >>> text = reference_markdown()
    >>> "## `jobledger invoke`" in text, "| `-j, --job-identifier JOB` |" in text
    (True, True)
    """
    root = click.Context(cli, info_name="jobledger", max_content_width=_WIDTH)
    parts = [
        _GENERATED_NOTE,
        "## `jobledger`",
        *_paragraphs(cli.help or ""),
        "```text\njobledger [--version] [--debug] [--store PATH|URL] COMMAND [ARGS]...\n```",
    ]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        if command is not None:
            parts.extend(_command_section(command, root))
    parts += [
        "## Exit codes",
        _EXIT_CODES_INTRO,
        "\n".join(
            [
                "| code | name | meaning |",
                "| --- | --- | --- |",
                *(f"| {int(code)} | `{code.name}` | {_meaning(code)} |" for code in ExitCode),
            ]
        ),
        "## Environment",
        "\n".join(
            [
                "| variable | what it does |",
                "| --- | --- |",
                f"| `{STORE_ENV}` | the store, unless `--store` is given (`{DEFAULT_STORE}`) |",
                f"| `{APP_ENV}` | the job definitions, unless `--app` is given (`{DEFAULT_APP}`) |",
                "| `NO_COLOR` | when set, no colour, even on a terminal |",
                "| `COLUMNS` | the width of the output |",
            ]
        ),
    ]
    return "\n\n".join(parts) + "\n"


def update_reference(page: Path) -> bool:
    """Replace the generated reference in ``page`` with the current one; whether it changed.

    The reference sits from its first line (a comment that says it is
    generated) to :data:`REFERENCE_END`.

    Raises:
        ValueError: ``page`` has no generated reference to replace.
    """
    text = page.read_text(encoding="utf-8")
    start, end = text.find(_GENERATED_NOTE), text.find(REFERENCE_END)
    if start < 0 or end < start:
        msg = f"{page} has no generated reference (from {_GENERATED_NOTE!r} to {REFERENCE_END!r})"
        raise ValueError(msg)
    updated = text[:start] + reference_markdown() + "\n" + text[end:]
    if updated != text:
        page.write_text(updated, encoding="utf-8")
    return updated != text
