"""The real ``jobledger`` entry point in subprocesses, sharing an SQLite store.

Each command runs as ``python -m jobledger`` (what the console script runs).
A second process cancels a run that the first one drives; Ctrl-C (SIGINT)
asks a run to cancel, and a second one stops the command at once, leaving a
run that a later ``resume`` takes over; the demo's blocked run is resumed
with ``--repair-job``. The job ``hold`` of this module's definitions keeps
its task running until it is asked to stop, and writes a marker file when it
starts, so the tests act at the right moment without timing anything.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from jobledger import Jobs
from jobledger.cli import ExitCode
from jobledger.runner import DefinitionBuilder, JobDefinition, RunResult, TaskContext, TaskResult
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Iterator

REPOSITORY = Path(__file__).resolve().parents[2]
APP = "tests.integration.test_cli_processes:definitions"
#: Generous waits for a loaded machine; nothing is timed.
PATIENCE = 120.0


def hold(context: TaskContext) -> TaskResult:
    """Write the run id to the marker file, then wait for a cancel request.

    With ``{"stubborn": true}`` it goes on running after the request, until
    its process ends. A second launch (a takeover) returns at once.
    """
    given = context.input if isinstance(context.input, dict) else {}
    if context.attempt > 1:
        return TaskResult(summary="taken over")
    marker = given.get("marker")
    if isinstance(marker, str):
        Path(marker).write_text(context.run_id, encoding="utf-8")
    saw_cancel = context.wait_for_cancel(timeout=PATIENCE)
    if given.get("stubborn") is True:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return TaskResult(summary={"saw_cancel": saw_cancel})


def after(_context: TaskContext) -> TaskResult:
    """The step after the one that holds."""
    return TaskResult(summary="after")


def definitions() -> tuple[JobDefinition, ...]:
    """This module's job, ``hold``: a task that waits, then one more step."""
    builder = DefinitionBuilder("hold")
    builder.task(identifier="wait")(hold)
    builder.task(identifier="after", launch_order=2)(after)
    return (builder.build(),)


def environment() -> dict[str, str]:
    """The environment of the commands: this repository importable, no jobledger settings."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("JOBLEDGER_") and name not in {"PYTHONPATH", "COLUMNS"}
    }
    # src first: the checkout's own jobledger, even where another copy is installed.
    return {**kept, "PYTHONPATH": os.pathsep.join([str(REPOSITORY / "src"), str(REPOSITORY)])}


def jobledger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jobledger ARGS...`` to its end."""
    return subprocess.run(  # noqa: S603  (our own interpreter and module)
        [sys.executable, "-m", "jobledger", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


class Command:
    """A ``python -m jobledger`` process that runs while the test acts, its output read live."""

    def __init__(self, *args: str, cwd: Path) -> None:
        """Start the command."""
        self.process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            [sys.executable, "-m", "jobledger", *args],
            cwd=cwd,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, text: str) -> None:
        """Wait until the command prints a line that contains ``text``."""
        deadline = time.monotonic() + PATIENCE
        while not any(text in line for line in self.seen):
            self.seen.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0.0)))

    def interrupt(self) -> None:
        """Press Ctrl-C: send the process SIGINT."""
        self.process.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, list[str]]:
        """Wait for the command to end; return its exit code and everything it printed."""
        code = self.process.wait(timeout=PATIENCE)
        self._close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, self.seen

    def _close(self) -> None:
        for reader in self.readers:
            reader.join(timeout=PATIENCE)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def stop(self) -> None:
        """Kill the command if it is still running (after a failed test); close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=PATIENCE)
        self._close()


@pytest.fixture
def commands() -> Iterator[list[Command]]:
    """The commands a test starts; any still running at its end is killed."""
    started: list[Command] = []
    yield started
    for command in started:
        command.stop()


def wait_for_file(path: Path) -> str:
    """Wait until ``path`` exists and holds text; return it."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text(encoding="utf-8")):
            return text
        time.sleep(0.02)
    pytest.fail(f"{path} was never written")


def run_of(store: Path, run_id: str) -> RunResult:
    """The run as the store holds it."""
    repository = SQLiteRepository(store)
    try:
        return RunResult.of(Jobs(repository=repository).get(run_id))
    finally:
        repository.close()


class TestCommandLineProcesses:
    """The command line's processes, cooperating through the store alone."""

    def test_a_cancel_from_a_second_process_ends_the_run_canceled(
        self, tmp_path: Path, commands: list[Command]
    ) -> None:
        """`jobledger cancel` in another process reaches the running task; invoke exits 6."""
        marker = tmp_path / "started"
        invoke = Command(
            "invoke",
            "-j",
            "hold",
            "--app",
            APP,
            "--input",
            json.dumps({"marker": str(marker)}),
            cwd=tmp_path,
        )
        commands.append(invoke)
        run_id = wait_for_file(marker)

        canceled = jobledger("cancel", run_id, cwd=tmp_path)
        code, printed = invoke.finish()

        assert (ExitCode.OK, ExitCode.CANCELED) == (canceled.returncode, code)
        assert f"Run {run_id} was canceled." in printed
        run = run_of(tmp_path / "jobledger.db", run_id)
        assert ({"saw_cancel": True}, "pending") == (
            run.outcomes["wait"].summary,
            run.outcomes["after"].status.value,
        )

    def test_ctrl_c_during_invoke_requests_cancellation(
        self, tmp_path: Path, commands: list[Command]
    ) -> None:
        """SIGINT asks the run to cancel: the running task finishes, the run ends canceled (6)."""
        marker = tmp_path / "started"
        invoke = Command(
            "invoke",
            "-j",
            "hold",
            "--app",
            APP,
            "--input",
            json.dumps({"marker": str(marker)}),
            cwd=tmp_path,
        )
        commands.append(invoke)
        run_id = wait_for_file(marker)

        invoke.interrupt()
        code, printed = invoke.finish()

        assert ExitCode.CANCELED == code
        assert any(line.startswith("Ctrl-C: cancel requested") for line in printed)
        run = run_of(tmp_path / "jobledger.db", run_id)
        assert ("canceled", {"saw_cancel": True}) == (
            run.status.value,
            run.outcomes["wait"].summary,
        )

    def test_a_second_ctrl_c_stops_at_once_and_resume_takes_the_run_over(
        self, tmp_path: Path, commands: list[Command]
    ) -> None:
        """The second SIGINT exits 130 while the task runs; `resume` then finishes the run."""
        marker = tmp_path / "started"
        invoke = Command(
            "invoke",
            "-j",
            "hold",
            "--app",
            APP,
            "--input",
            json.dumps({"marker": str(marker), "stubborn": True}),
            cwd=tmp_path,
        )
        commands.append(invoke)
        run_id = wait_for_file(marker)
        invoke.interrupt()
        invoke.wait_for_line("Ctrl-C: cancel requested")

        invoke.interrupt()
        code, printed = invoke.finish()
        left = run_of(tmp_path / "jobledger.db", run_id)
        resumed = jobledger("resume", run_id, "--app", APP, cwd=tmp_path)

        assert (ExitCode.INTERRUPTED, "running", False) == (
            code,
            left.status.value,
            left.cancel_requested,
        )
        assert any(f"Run {run_id} is left running" in line for line in printed)
        run = run_of(tmp_path / "jobledger.db", run_id)
        assert (ExitCode.OK, "completed", "taken over") == (
            resumed.returncode,
            run.status.value,
            run.outcomes["wait"].summary,
        )

    def test_the_demos_blocked_run_is_resumed_with_repair_job(self, tmp_path: Path) -> None:
        """`jobledger demo` blocks; the command it prints completes the run."""
        demo = jobledger("demo", cwd=tmp_path)
        printed = demo.stdout.splitlines()
        command = printed[
            printed.index(
                "Resume it with repair (the blocked task's repair variant runs in its place):"
            )
            + 1
        ].split()

        resumed = jobledger(*command[1:], "--json", cwd=tmp_path)

        assert (ExitCode.OK, ["jobledger", "invoke", "-j", "hr-nightly", "--repair-job"]) == (
            demo.returncode,
            command,
        )
        document = json.loads(resumed.stdout)
        assert (ExitCode.OK, "completed", True) == (
            resumed.returncode,
            document["Status"],
            document["State"]["tasks"]["synchronize"]["repair"],
        )

    def test_the_demo_runs_and_resumes_in_postgresql(
        self, tmp_path: Path, postgres_conninfo: str
    ) -> None:
        """With --store postgresql://...?schema=..., the demo blocks and its resume completes."""
        store = f"{postgres_conninfo}?schema=cli_{uuid.uuid4().hex[:12]}"

        demo = jobledger("demo", "--store", store, cwd=tmp_path)
        resumed = jobledger(
            "invoke", "-j", "hr-nightly", "-r", "--store", store, "--json", cwd=tmp_path
        )

        assert (ExitCode.OK, ExitCode.OK, "completed") == (
            demo.returncode,
            resumed.returncode,
            json.loads(resumed.stdout)["Status"],
        ), demo.stderr + resumed.stderr

    def test_a_store_that_cannot_be_opened_exits_8_in_one_line(self, tmp_path: Path) -> None:
        """The real entry point reports an unreachable store in one line, without a traceback."""
        store = tmp_path / "missing" / "jobs.db"

        result = jobledger("list", "--store", str(store), cwd=tmp_path)

        assert (ExitCode.STORE_UNREACHABLE, "", 1) == (
            result.returncode,
            result.stdout,
            len(result.stderr.splitlines()),
        )


class TestWorkingDirectory:
    """What the command line imports from the folder it runs in."""

    def test_a_module_named_like_a_dependency_is_never_run(
        self, tmp_path: Path, postgres_conninfo: str
    ) -> None:
        """A psycopg.py (or click.py) in the working directory is never imported."""
        marker = tmp_path / "PWNED"
        for name in ("psycopg", "psycopg_pool", "click", "rich"):
            (tmp_path / f"{name}.py").write_text(
                f"open({str(marker)!r}, 'a').write({name!r})\n", encoding="utf-8"
            )
        store = f"{postgres_conninfo}?schema=cwd_{uuid.uuid4().hex[:12]}"

        result = jobledger("demo", "-f", "100", "--store", store, cwd=tmp_path)

        assert (ExitCode.OK, False) == (result.returncode, marker.exists()), result.stderr

    def test_the_app_module_is_found_in_the_working_directory(self, tmp_path: Path) -> None:
        """--app names a module beside the command: it is looked up there, after the library's."""
        (tmp_path / "my_jobs.py").write_text(
            "from jobledger.demo import definitions\n", encoding="utf-8"
        )

        result = jobledger("steps", "-j", "hr-nightly", "--app", "my_jobs", cwd=tmp_path)

        assert (ExitCode.OK, "hr-nightly (") == (result.returncode, result.stdout[:12])

    def test_ctrl_c_while_the_command_starts_exits_130_in_one_line(self, tmp_path: Path) -> None:
        """A Ctrl-C while the --app loads ends the command with 130 and one line, no traceback."""
        (tmp_path / "interrupting.py").write_text(
            "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n", encoding="utf-8"
        )

        result = jobledger("steps", "-j", "x", "--app", "interrupting", cwd=tmp_path)

        assert (ExitCode.INTERRUPTED, "", ["jobledger: interrupted"]) == (
            result.returncode,
            result.stdout,
            result.stderr.splitlines(),
        )
