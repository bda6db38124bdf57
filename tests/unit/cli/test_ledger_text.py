r"""Text from the ledger is printed as it is: markup never read, control characters escaped.

The ledger holds text that anybody who may write to it chose: names, statuses,
task errors. Every command that prints such text shows it literally; an escape
sequence (ESC, a C1 control such as CSI, BEL) is written as its ``\\x..``
escape, so a stored name cannot clear the screen or set the window title.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs
from jobledger.cli import ExitCode
from jobledger.cli._printable import printable
from jobledger.runner import JobDefinition, Runner, Task, TaskContext
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

#: What no output may hold: C0 controls but newline, DEL, C1 controls, bidi overrides.
RAW_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

NAME = "Nightly\x1b]0;pwned\x07 \x1b[2J\x9b[31m [link=https://example.com]click[/link] \u202e"
WRITTEN = (
    "Nightly\\x1b]0;pwned\\x07 \\x1b[2J\\x9b[31m [link=https://example.com]click[/link] \\u202e"
)
ERROR = "boom \x1b[5m[/bold]\x9d"


def _explodes(_context: TaskContext) -> None:
    """A task whose error message holds an escape sequence and markup."""
    raise RuntimeError(ERROR)


@pytest.fixture
def hostile(ledger: Jobs, store: str) -> str:
    """A job with markup in its names and escapes in its texts, and a run failing likewise."""
    job = ledger.start(
        service="hr[/bold]",
        entity="e[red]",
        type="t[link=https://example.com]x",
        display_name=NAME,
        description=NAME,
        job_id="job-1",
        state={"note": NAME},
    )
    ledger.update(job.id, etag=job.etag, status="st[/]", state_update={"note": ERROR})
    repository = SQLiteRepository(store)
    jobs = Jobs(repository=repository)
    with Runner(jobs, [JobDefinition("explodes", [Task("t[/]", _explodes)])]) as runner:
        runner.invoke("explodes", run_id="run-1")
    repository.close()
    return store


class TestLedgerText:
    """Every command that prints ledger text."""

    @pytest.mark.parametrize(
        "args",
        [
            ("list",),
            ("show", "job-1"),
            ("show", "run-1"),
            ("show", "run-1/1"),
            ("history", "job-1"),
            ("history", "run-1"),
            ("history", "run-1/1"),
            ("list", "--runs"),
            ("watch", "--from-start", "--timeout", "0"),
            ("watch", "--run", "run-1", "--from-start", "--timeout", "0"),
            ("cancel", "job-1"),
        ],
        ids=" ".join,
    )
    def test_no_command_prints_a_control_character_or_reads_markup(
        self, jobledger: Jobledger, hostile: str, args: tuple[str, ...]
    ) -> None:
        """Each command succeeds, prints no raw control character, and keeps markup as text."""
        result = jobledger(*args, "--store", hostile)

        assert (ExitCode.OK, []) == (result.exit_code, RAW_CONTROLS.findall(result.output))

    def test_list_shows_names_literally(self, jobledger: Jobledger, hostile: str) -> None:
        """The service/entity/type and the display name read as stored, escapes written out."""
        result = jobledger(
            "list", "--service", "hr[/bold]", "--store", hostile, env={"COLUMNS": "400"}
        )

        row = result.stdout.splitlines()[1]
        assert (["job-1", "hr[/bold]/e[red]/t[link=https://example.com]x", "st[/]"], True) == (
            row.split()[:3],
            row.rstrip().endswith(WRITTEN),
        )

    def test_show_writes_each_escape_out(self, jobledger: Jobledger, hostile: str) -> None:
        """The display name and description are the stored text with its escapes written."""
        result = jobledger("show", "job-1", "--store", hostile)

        assert [f"display name  {WRITTEN}", f"description   {WRITTEN}"] == [
            line.rstrip()
            for line in result.stdout.splitlines()
            if line.startswith(("display name", "description"))
        ]

    def test_a_task_error_is_shown_literally(self, jobledger: Jobledger, hostile: str) -> None:
        """A failed run's task error keeps its markup and writes its escapes out."""
        result = jobledger("show", "run-1", "--store", hostile)

        assert "  t[/]: RuntimeError: boom \\x1b[5m[/bold]\\x9d" in result.stdout.splitlines()

    @pytest.mark.parametrize("job_id", ["run-1", "run-1/1"])
    def test_a_traceback_is_shown_literally(
        self, jobledger: Jobledger, hostile: str, job_id: str
    ) -> None:
        """The error's traceback, under a run or its launch, ends in the message as stored."""
        result = jobledger("show", job_id, "--store", hostile)

        assert "    RuntimeError: boom \\x1b[5m[/bold]\\x9d" in result.stdout.splitlines()

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("plain [bold]text[/bold]", "plain [bold]text[/bold]"),
            ("a\x1bb\x07c\x00d\x7fe", "a\\x1bb\\x07c\\x00d\\x7fe"),
            ("csi\x9b osc\x9d", "csi\\x9b osc\\x9d"),
            ("line\nbreak\ttab\r", "line\\x0abreak\\x09tab\\x0d"),
            ("rtl\u202eltr\u2066\u2028", "rtl\\u202eltr\\u2066\\u2028"),
            ("Zoë 東京 ✓", "Zoë 東京 ✓"),
        ],
    )
    def test_printable_escapes_exactly_the_control_characters(
        self, given: str, expected: str
    ) -> None:
        """C0, DEL, C1, separators and bidi controls are escaped; all other text is kept."""
        assert expected == printable(given)
