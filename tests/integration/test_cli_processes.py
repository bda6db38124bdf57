"""The real ``jobledger`` entry point in subprocesses, sharing an SQLite store.

Each command runs as ``python -m jobledger`` (what the console script runs).
A second process cancels a run that the first one drives; Ctrl-C (SIGINT)
asks a run to cancel, and a second one, SIGTERM or a closed output stops the
command at once, leaving a run that a later ``resume`` takes over at once;
two invokes of one job never both run; a task abandoned past its timeout
does not keep the command alive; the demo's blocked run is resumed with
``--repair-job``. The job ``hold`` of this module's definitions keeps its
task running until it is asked to stop, and writes a marker file when it
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
from jobledger.runner import (
    DefinitionBuilder,
    JobDefinition,
    RunResult,
    TaskContext,
    TaskResult,
    load_run,
)
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


def wait_for_path(path: Path) -> None:
    """Wait until ``path`` exists (at most PATIENCE)."""
    deadline = time.monotonic() + PATIENCE
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def input_path(context: TaskContext, name: str) -> Path:
    """The path the run's input gives under ``name``."""
    given = context.input if isinstance(context.input, dict) else {}
    return Path(str(given[name]))


def until_go(context: TaskContext) -> TaskResult:
    """Write the marker, then wait until the file the input's ``go`` names exists."""
    input_path(context, "marker").write_text(context.run_id, encoding="utf-8")
    wait_for_path(input_path(context, "go"))
    return TaskResult(summary="went")


def until_released(context: TaskContext) -> TaskResult:
    """Wait until the file the input's ``release`` names exists."""
    wait_for_path(input_path(context, "release"))
    return TaskResult(summary="released")


def sleep_on(_context: TaskContext) -> None:
    """Sleep, deaf to any request to stop (its timeout abandons it)."""
    time.sleep(2 * PATIENCE)


def definitions() -> tuple[JobDefinition, ...]:
    """This module's jobs: ``hold`` (a task that waits, then a step), ``pipe`` and ``stuck``."""
    builder = DefinitionBuilder("hold")
    builder.task(identifier="wait")(hold)
    builder.task(identifier="after", launch_order=2)(after)
    pipe = DefinitionBuilder("pipe")
    pipe.task(identifier="go")(until_go)
    pipe.task(identifier="wait", launch_order=2)(until_released)
    stuck = DefinitionBuilder("stuck")
    stuck.task(identifier="sleep", timeout=0.5)(sleep_on)
    return (builder.build(), pipe.build(), stuck.build())


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

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Press Ctrl-C: send the process SIGINT (or ``signum``)."""
        self.process.send_signal(signum)

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


def first_to_end(commands: list[Command]) -> Command:
    """Wait until one of ``commands`` ends; return it."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        for command in commands:
            if command.process.poll() is not None:
                return command
        time.sleep(0.02)
    pytest.fail("no command ended")


def run_of(store: Path, run_id: str) -> RunResult:
    """The run as the store holds it."""
    repository = SQLiteRepository(store)
    try:
        jobs = Jobs(repository=repository)
        kind = jobs.get(run_id).type
        definition = next(found for found in definitions() if found.identifier == kind)
        return load_run(jobs, run_id, definition=definition)
    finally:
        repository.close()


def released(run: RunResult) -> str | None:
    """Why the run's last runner let it go, if it did."""
    state = run.state
    return None if state is None or state.released is None else state.released.reason


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

    def test_a_second_ctrl_c_lets_the_run_go_and_resume_ends_it_as_asked(
        self, tmp_path: Path, commands: list[Command]
    ) -> None:
        """The second SIGINT exits 130 while the task runs; `resume` then ends the run canceled."""
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

        assert (ExitCode.INTERRUPTED, "running", True, "a second Ctrl-C", "canceled") == (
            code,
            left.status.value,
            left.cancel_requested,
            released(left),
            left.outcomes["wait"].status.value,
        )
        assert any(f"Run {run_id} is left running with no runner" in line for line in printed)
        assert (ExitCode.CANCELED, "canceled") == (
            resumed.returncode,
            run_of(tmp_path / "jobledger.db", run_id).status.value,
        )

    def test_sigterm_lets_the_run_go_and_resume_finishes_it(
        self, tmp_path: Path, commands: list[Command]
    ) -> None:
        """SIGTERM exits 130 with a line on stderr; the run is resumable at once and completes."""
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

        invoke.interrupt(signal.SIGTERM)
        code, printed = invoke.finish()
        left = run_of(tmp_path / "jobledger.db", run_id)
        resumed = jobledger("resume", run_id, "--app", APP, cwd=tmp_path)

        assert (ExitCode.INTERRUPTED, "running", "SIGTERM", "canceled") == (
            code,
            left.status.value,
            released(left),
            left.outcomes["wait"].status.value,
        )
        assert any(line.startswith("Stopped at once (SIGTERM).") for line in printed)
        run = run_of(tmp_path / "jobledger.db", run_id)
        assert (ExitCode.OK, "completed", "taken over") == (
            resumed.returncode,
            run.status.value,
            run.outcomes["wait"].summary,
        )

    def test_a_closed_output_lets_the_run_go_with_a_line_on_stderr(self, tmp_path: Path) -> None:
        """`invoke | head -1`: the next write meets the closed pipe; exit 130, the run resumable."""
        marker, go, release = tmp_path / "started", tmp_path / "go", tmp_path / "release"
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            [
                sys.executable,
                "-m",
                "jobledger",
                "invoke",
                "-j",
                "pipe",
                "--app",
                APP,
                "--input",
                json.dumps({"marker": str(marker), "go": str(go), "release": str(release)}),
            ],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            process.stdout.close()  # what `head -1` does once it has its line
            run_id = wait_for_file(marker)
            go.write_text("go", encoding="utf-8")
            code = process.wait(timeout=PATIENCE)
            assert process.stderr is not None
            errors = process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=PATIENCE)
            if process.stderr is not None:
                process.stderr.close()
        left = run_of(tmp_path / "jobledger.db", run_id)
        release.write_text("release", encoding="utf-8")
        resumed = jobledger("resume", run_id, "--app", APP, cwd=tmp_path)

        assert (f"Run {run_id} of pipe", ExitCode.INTERRUPTED, "the output was closed") == (
            first.strip(),
            code,
            released(left),
        )
        assert errors.startswith("Stopped at once (the output was closed).")
        assert (ExitCode.OK, "completed") == (
            resumed.returncode,
            run_of(tmp_path / "jobledger.db", run_id).status.value,
        )

    def test_two_invokes_of_one_job_never_both_run(
        self, tmp_path: Path, commands: list[Command]
    ) -> None:
        """Started together, one invoke runs and the other is refused (10), naming the run."""
        for round_number in range(3):
            marker = tmp_path / f"started-{round_number}"
            pair = [
                Command(
                    "invoke",
                    "-j",
                    "hold",
                    "--app",
                    APP,
                    "--input",
                    json.dumps({"marker": str(marker)}),
                    cwd=tmp_path,
                )
                for _ in range(2)
            ]
            commands.extend(pair)
            run_id = wait_for_file(marker)
            refused = first_to_end(pair)
            canceled = jobledger("cancel", run_id, cwd=tmp_path)
            codes = sorted(command.finish()[0] for command in pair)

            assert ([ExitCode.CANCELED, ExitCode.BUSY], ExitCode.OK) == (
                codes,
                canceled.returncode,
            )
            assert any(
                f"already has a running run, {run_id}" in line for line in refused.finish()[1]
            )
        listed = jobledger("list", "--runs", "--json", cwd=tmp_path)
        assert 3 == len(json.loads(listed.stdout)["Jobs"])

    def test_a_task_abandoned_past_its_timeout_does_not_keep_the_command_alive(
        self, tmp_path: Path
    ) -> None:
        """The task sleeps long after its 0.5 s timeout; the command exits 4 without waiting."""
        result = jobledger("invoke", "-j", "stuck", "--app", APP, cwd=tmp_path)

        assert (ExitCode.FAILED, True) == (
            result.returncode,
            "did not finish within its timeout of 0.5s" in result.stdout,
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
        synchronize = next(task for task in document["Tasks"] if task["Task"] == "synchronize")
        assert (ExitCode.OK, "completed", True) == (
            resumed.returncode,
            document["Status"],
            synchronize["Repair"],
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
