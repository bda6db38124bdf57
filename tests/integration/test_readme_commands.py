"""The README's commands, word for word, on a fresh copy of the repository.

"Try it" in the README starts with one command: make a virtual environment,
install the package with its ``cli`` extra, and run ``jobledger demo``. This
test copies the files a clone would have (tracked, plus new ones not ignored)
into a temporary folder, runs that command there with ``sh``, as a person
would paste it, and checks what the demo prints. Then it runs the command the
demo prints, which must complete the run, exactly as the README writes it.

Then it runs the README's test command, as written, with no PostgreSQL server
named: the tests session must start one itself, so that nothing is skipped.
To stay within a CI budget, pytest gets a few files of the suite (PostgreSQL
tests among them) after ``--``; the rest of the command is the README's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

#: Environment variables that would make the command use something else than the copy.
LEAKS = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "JOBLEDGER_STORE",
    "JOBLEDGER_APP",
    "JOBLEDGER_TEST_POSTGRES",
    "JOBLEDGER_TEST_POSTGRES_DIR",
)

#: What the fresh clone's test run is narrowed to: unit tests and PostgreSQL tests.
SUITE_SAMPLE = (
    "tests/unit/cli/test_store.py",
    (
        "tests/integration/test_cli_processes.py::TestCommandLineProcesses"
        "::test_the_demo_runs_and_resumes_in_postgresql"
    ),
    "tests/integration/test_cli_processes.py::TestWorkingDirectory",
)

#: The files and folders a clone does not have.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    ".nox",
    "__pycache__",
    "*.egg-info",
    ".*_cache",
    ".hypothesis",
    "_build",
    "_generated",
    "*.db",
    "*.db-*",
    "build",
    "dist",
)


def suite_command(readme: str) -> str:
    """The README's one command that runs the whole test suite (the block that runs nox)."""
    section = readme.split("\n## Try it", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)
    (command,) = [
        block.strip() for block in blocks if "nox -s tests" in block and "\n" not in block
    ]
    return command


def try_it_commands(readme: str) -> list[str]:
    """The ``sh`` blocks of the README's "Try it" section, but those that run the tests.

    The first is the main command; the blocks that run nox (the test suite,
    this test among them) or start a PostgreSQL server are left out.
    """
    section = readme.split("\n## Try it", 1)[1].split("\n## ", 1)[0]
    blocks = [block.strip() for block in re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)]
    return [block for block in blocks if "nox" not in block and ".ci/postgres" not in block]


def fresh_copy(target: Path) -> Path:
    """Copy the files a clone of the repository would hold into ``target``."""
    git = shutil.which("git")
    listed = (
        subprocess.run(  # noqa: S603  (git, fixed arguments)
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPOSITORY,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        if git is not None and (REPOSITORY / ".git").exists()
        else None
    )
    if listed is None:
        shutil.copytree(REPOSITORY, target, ignore=NOT_IN_A_CLONE)
        return target
    for raw in filter(None, listed):
        name = os.fsdecode(raw)
        source = REPOSITORY / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``sh -c`` in ``cwd``, as pasted in a terminal."""
    environment = {name: value for name, value in os.environ.items() if name not in LEAKS}
    return subprocess.run(  # noqa: S603  (sh with the README's own command)
        ["sh", "-c", command],  # noqa: S607  (sh is found on the PATH, as for a person)
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="class")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the repository, shared by the README's commands."""
    return fresh_copy(tmp_path_factory.mktemp("readme") / "jobledger")


@pytest.mark.slow
class TestReadmeCommands:
    """Following the README from a fresh clone works word for word."""

    def test_the_main_command_runs_the_demo_and_the_next_one_completes_its_run(
        self, clone: Path
    ) -> None:
        """The demo blocks at its synchronization; the README's next command completes the run."""
        main, *others = try_it_commands((clone / "README.md").read_text(encoding="utf-8"))

        demo = shell(main, clone)

        assert 0 == demo.returncode, f"{main}\n{demo.stdout}\n{demo.stderr}"
        printed = [line.rstrip() for line in demo.stdout.splitlines()]
        blocked = [line for line in printed if " is blocked at step 2:" in line]
        hint = printed.index(
            "Resume it with repair (the blocked task's repair variant runs in its place):"
        )
        assert (1, "  synchronize: 66 changes cross the force threshold of 50") == (
            len(blocked),
            printed[printed.index(blocked[0]) + 1],
        )
        resume = [command for command in others if "--repair-job" in command]
        # The demo's own suggestion is the README's next command, word for word.
        assert ["    .venv/bin/jobledger invoke -j hr-nightly --repair-job"] == [printed[hint + 1]]
        assert [printed[hint + 1].strip()] == resume

        results = [(command, shell(command, clone)) for command in others]

        assert [] == [
            f"{command} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            for command, result in results
            if result.returncode != 0
        ]
        assert [True] == [
            any(" completed, " in line for line in result.stdout.splitlines())
            for command, result in results
            if command in resume
        ]

    def test_the_test_command_runs_postgresql_tests_with_nothing_skipped(self, clone: Path) -> None:
        """With no server named, the README's test command starts one: every test runs."""
        command = suite_command((clone / "README.md").read_text(encoding="utf-8"))

        result = shell(f"{command} -- -rs {' '.join(SUITE_SAMPLE)}", clone)

        summaries = re.findall(r"^=+ (.*) in [\d.]+s", result.stdout, re.MULTILINE)
        counted = re.findall(r"(\d+) (\w+)", summaries[-1]) if summaries else []
        assert (0, {"passed"}) == (result.returncode, {kind for _count, kind in counted}), (
            f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        left_running = [
            server
            for server in Path(tempfile.gettempdir()).glob("jobledger-pg.*")
            if (server / "started-by").is_file()
            and (server / "started-by").read_text(encoding="utf-8").strip() == str(clone)
        ]
        assert [] == left_running
