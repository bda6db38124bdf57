"""Fixtures for the command line's tests: a store in a temporary folder, and a test app.

Commands run in-process through click's ``CliRunner``, in a temporary working
directory (so the default store, ``jobledger.db``, lands there), with the
environment variables the command line reads removed. The test app
(``--app cli_test_app``) holds the ``nightly`` job, whose tasks do what the
run's input says, so each exit code can be reached on purpose.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

from jobledger import Jobs
from jobledger.cli import ExitCode, cli
from jobledger.runner import (
    DefinitionBuilder,
    JobDefinition,
    TaskBlocked,
    TaskContext,
    TaskResult,
    load_run,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: The --app of the test definitions.
TEST_APP = "cli_test_app:definitions"

#: Set by the tests that release a waiting task.
RELEASE = threading.Event()
#: Set by the task of ``hold`` when it starts.
STARTED = threading.Event()


def _flag(context: TaskContext, name: str) -> bool:
    given = context.input
    return isinstance(given, dict) and given.get(name) is True


def export_people(_context: TaskContext) -> TaskResult:
    """Export from the HR system: always works."""
    return TaskResult(summary="12 people exported")


def export_accounts(context: TaskContext) -> TaskResult:
    """Export from the directory: fails when the input says ``directory_down``."""
    if _flag(context, "directory_down"):
        message = "the directory did not answer"
        raise ConnectionError(message)
    return TaskResult(summary="10 accounts exported")


def synchronize(context: TaskContext) -> TaskResult:
    """Synchronize: blocks when the input's ``changes`` exceed the threshold (5 by default)."""
    given = context.input
    changes = given.get("changes", 0) if isinstance(given, dict) else 0
    threshold = 5 if context.force is None else context.force
    if isinstance(changes, int) and changes > threshold:
        reason = f"{changes} changes cross the threshold of {threshold}"
        raise TaskBlocked(reason, details={"changes": changes, "threshold": threshold})
    return TaskResult(summary=f"{changes} changes synchronized")


def validate(_context: TaskContext) -> TaskResult:
    """The synchronization validation."""
    return TaskResult(summary="validated")


def provision(context: TaskContext) -> TaskResult:
    """Provision: fails when the input says ``provisioning_fails``."""
    if _flag(context, "provisioning_fails"):
        message = "the directory refused the changes"
        raise RuntimeError(message)
    return TaskResult(summary="provisioned")


def interrupt_once(context: TaskContext) -> TaskResult:
    """Press Ctrl-C (send this process SIGINT), then wait for the cancel it should request."""
    os.kill(os.getpid(), signal.SIGINT)
    return TaskResult(summary={"saw_cancel": context.wait_for_cancel(timeout=30)})


def interrupt_twice(context: TaskContext) -> TaskResult:
    """Press Ctrl-C, wait for the cancel, press it again, and hold on until released."""
    if context.attempt > 1:
        return TaskResult(summary="second attempt")
    os.kill(os.getpid(), signal.SIGINT)
    context.wait_for_cancel(timeout=30)
    os.kill(os.getpid(), signal.SIGINT)
    RELEASE.wait(timeout=30)
    return TaskResult(summary="released")


def hold(context: TaskContext) -> TaskResult:
    """Say it started, then wait for a cancel request; a second launch returns at once."""
    if context.attempt > 1:
        return TaskResult(summary="taken over")
    STARTED.set()
    return TaskResult(summary={"saw_cancel": context.wait_for_cancel(timeout=30)})


def terminate(context: TaskContext) -> TaskResult:
    """Send this process SIGTERM, then wait for a cancel; a second launch returns at once."""
    if context.attempt > 1:
        return TaskResult(summary="taken over")
    os.kill(os.getpid(), signal.SIGTERM)
    return TaskResult(summary={"saw_cancel": context.wait_for_cancel(timeout=30)})


def stuck(_context: TaskContext) -> None:
    """Ignore every request to stop until released (its timeout abandons it)."""
    RELEASE.wait(timeout=30)


def block_always(_context: TaskContext) -> None:
    """Block the run, always."""
    reason = "always blocks"
    raise TaskBlocked(reason)


def nightly_definitions() -> tuple[JobDefinition, ...]:
    """The test app's jobs: ``nightly``, those that press Ctrl-C or send SIGTERM, and more."""
    nightly = DefinitionBuilder("nightly", display_name="Nightly test job")
    nightly.task(identifier="export_people", type="export")(export_people)
    nightly.task(identifier="export_accounts", type="export", warning_mode=True)(export_accounts)
    nightly.task(
        identifier="synchronize",
        type="synchronize",
        launch_order=2,
        parents=("export_people", "export_accounts"),
        guarded=True,
    )(synchronize)
    nightly.repair("synchronize")(validate)
    nightly.task(identifier="provision", type="provision", launch_order=3, parents="synchronize")(
        provision
    )
    once = DefinitionBuilder("interrupt-once")
    once.task(identifier="wait")(interrupt_once)
    once.task(identifier="after", launch_order=2)(export_people)
    twice = DefinitionBuilder("interrupt-twice")
    twice.task(identifier="wait")(interrupt_twice)
    holding = DefinitionBuilder("hold")
    holding.task(identifier="wait")(hold)
    holding.task(identifier="after", launch_order=2)(export_people)
    terminated = DefinitionBuilder("terminate")
    terminated.task(identifier="wait")(terminate)
    stuck_job = DefinitionBuilder("stuck")
    stuck_job.task(identifier="stuck", timeout=0.2)(stuck)
    unrepaired = DefinitionBuilder("unrepaired")
    unrepaired.task(identifier="guard", guarded=True)(block_always)
    return tuple(
        builder.build()
        for builder in (nightly, once, twice, holding, terminated, stuck_job, unrepaired)
    )


@pytest.fixture(autouse=True)
def cli_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in a fresh folder, without the command line's environment variables."""
    for name in ("JOBLEDGER_STORE", "JOBLEDGER_APP", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # The --app loader puts the working directory on the import path: undo it after.
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = types.ModuleType("cli_test_app")
    module.definitions = nightly_definitions  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cli_test_app", module)
    monkeypatch.setattr("jobledger.demo.PACE", 0.0)
    RELEASE.clear()
    STARTED.clear()
    return tmp_path


@pytest.fixture
def store(tmp_path: Path) -> str:
    """The path of the test's store (an SQLite file)."""
    return str(tmp_path / "ledger.db")


@pytest.fixture
def ledger(store: str) -> Iterator[Jobs]:
    """A ledger on the test's store, as another process would open it."""
    repository = SQLiteRepository(store)
    yield Jobs(repository=repository)
    repository.close()


def last_drive(ledger: Jobs, run_id: str) -> tuple[int, str | None]:
    """Return the number and actor of the last drive of run ``run_id``."""
    state = load_run(ledger, run_id).state
    assert state is not None
    assert state.drive is not None
    return state.drive.number, state.drive.actor


class Jobledger:
    """Runs ``jobledger`` commands in-process, and reads what they printed.

    Attributes:
        app: The ``--app`` of the test definitions.
    """

    app = TEST_APP

    def __init__(self) -> None:
        """Make a runner whose standard error is kept apart from standard output."""
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run ``jobledger ARGS...``; never raises for the command's errors."""
        return self.runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    def invoke_blocked(self, store: str) -> str:
        """Invoke ``nightly`` with more changes than its threshold; return the blocked run's id."""
        invoked = self(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"changes": 9}',
            "--app",
            self.app,
            "--store",
            store,
        )
        assert ExitCode.BLOCKED == invoked.exit_code, invoked.output
        return self.run_id(invoked.stdout)

    @staticmethod
    def lines(text: str) -> list[str]:
        """The lines of ``text`` without trailing blanks, for exact comparison."""
        return [line.rstrip() for line in text.splitlines()]

    @staticmethod
    def run_id(output: str) -> str:
        """The run id a command printed in its first line (``Run ID of JOB``)."""
        words = output.splitlines()[0].split()
        return words[words.index("run" if "run" in words else "Run") + 1]

    @staticmethod
    def statuses(document: dict[str, Any]) -> dict[str, str]:
        """Each task's status in a run as ``--json`` printed it."""
        return {entry["Task"]: entry["Status"] for entry in document["Tasks"]}

    @staticmethod
    def task(document: dict[str, Any], name: str) -> dict[str, Any]:
        """Task ``name`` of a run as ``--json`` printed it."""
        found: dict[str, Any] = next(entry for entry in document["Tasks"] if entry["Task"] == name)
        return found


@pytest.fixture
def jobledger() -> Jobledger:
    """Run ``jobledger`` commands in-process."""
    return Jobledger()
