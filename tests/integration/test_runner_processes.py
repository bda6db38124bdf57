"""The runner across processes, with the ledger in an SQLite file they share.

A second process cancels a run while its task runs, and a fresh process
resumes (and repairs) a run that blocked in this one: the ledger is all they
share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from jobledger import Jobs, thaw
from jobledger.runner import (
    DefinitionBuilder,
    JobDefinition,
    Runner,
    RunStatus,
    TaskBlocked,
    TaskContext,
    TaskResult,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

#: Asks for a cancel of run argv[2] in the ledger at argv[1]; prints what it got back.
CANCEL = """
import sys
from jobledger import Jobs, thaw
from jobledger.runner import request_cancel
from jobledger.sqlite import SQLiteRepository

result = request_cancel(Jobs(repository=SQLiteRepository(sys.argv[1])), sys.argv[2])
print(result.status.value, result.cancel_requested)
"""

#: Resumes run argv[2] of the ledger at argv[1] with repair; prints the statuses.
RESUME = """
import json, sys
from jobledger import Jobs, thaw
from jobledger.runner import Runner
from jobledger.sqlite import SQLiteRepository
from tests.integration.test_runner_processes import nightly

runner = Runner(Jobs(repository=SQLiteRepository(sys.argv[1])), [nightly()])
result = runner.resume(sys.argv[2], repair=True)
print(json.dumps([result.status.value, result.statuses()]))
"""


#: Invokes a run on the runner's own threads and exits without closing the runner.
UNCLOSED = """
import threading
from jobledger import Jobs
from jobledger.runner import JobDefinition, Runner, Task

def work(context):
    return None

runner = Runner(Jobs(), [JobDefinition("D", [Task("a", work), Task("b", work)])])
result = runner.invoke("D")
kept = [t for t in threading.enumerate() if t.name.startswith("jobledger-")]
print(result.status.value, len(kept) > 0)
"""


def in_another_process(
    script: str, *arguments: str, root: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh Python process that can import jobledger and the tests."""
    return subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", script, *arguments],
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def export_employees(_context: TaskContext) -> TaskResult:
    """Export: report the process it ran in."""
    return TaskResult(summary={"pid": os.getpid()})


def synchronize_employees(_context: TaskContext) -> TaskResult:
    """Synchronize: always blocks, as if over its change threshold."""
    reason = "too many changes"
    raise TaskBlocked(reason, details={"changes": 120, "threshold": 50})


def validate_synchronization(_context: TaskContext) -> TaskResult:
    """The repair variant of synchronize: validates, reporting its process."""
    return TaskResult(summary={"pid": os.getpid(), "validated": True})


def provision_accounts(_context: TaskContext) -> TaskResult:
    """Provision: report the process it ran in."""
    return TaskResult(summary={"pid": os.getpid()})


def nightly() -> JobDefinition:
    """The three-step job both processes know: export, guarded synchronize, provision."""
    builder = DefinitionBuilder("Nightly")
    builder.task(type="export")(export_employees)
    builder.task(launch_order=2, type="synchronize", parents="export_employees", guarded=True)(
        synchronize_employees
    )
    builder.repair("synchronize_employees")(validate_synchronization)
    builder.task(launch_order=3, type="provision", parents="synchronize_employees")(
        provision_accounts
    )
    return builder.build()


class TestRunnerAcrossProcesses:
    """Runs shared by processes through an SQLite ledger."""

    def test_a_second_process_cancels_a_run_while_its_task_runs(
        self, tmp_path: Path, pytestconfig: pytest.Config
    ) -> None:
        """The cancel written by another process reaches the running task; the run ends canceled."""
        path = tmp_path / "jobs.db"
        jobs = Jobs(repository=SQLiteRepository(path))
        started = threading.Event()

        def export(context: TaskContext) -> TaskResult:
            started.set()
            return TaskResult(summary={"saw_cancel": context.wait_for_cancel(timeout=60)})

        builder = DefinitionBuilder("Long")
        builder.task(identifier="export")(export)
        builder.task(identifier="sync", launch_order=2)(provision_accounts)
        runner = Runner(jobs, [builder.build()], poll_interval=0.05)

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Long", run_id="run-1")
            assert started.wait(timeout=60)
            answer = in_another_process(CANCEL, str(path), "run-1", root=pytestconfig.rootpath)
            result = running.result(timeout=60)

        stored = Jobs(repository=SQLiteRepository(path)).get("run-1")
        assert "running True\n" == answer.stdout
        assert (RunStatus.CANCELED, "canceled") == (result.status, stored.status)
        assert {"export": "completed", "sync": "pending"} == result.statuses()
        assert {"saw_cancel": True} == thaw(stored.state)["tasks"]["export"]["summary"]

    def test_a_fresh_process_resumes_a_blocked_run_with_repair(
        self, tmp_path: Path, pytestconfig: pytest.Config
    ) -> None:
        """A run blocked here is repaired and finished by another process, from the ledger alone."""
        path = tmp_path / "jobs.db"
        jobs = Jobs(repository=SQLiteRepository(path))
        blocked = Runner(jobs, [nightly()]).invoke("Nightly", run_id="run-2")

        answer = in_another_process(RESUME, str(path), "run-2", root=pytestconfig.rootpath)
        result = Runner(jobs, [nightly()]).result("run-2")
        pids = {name: outcome.summary for name, outcome in result.outcomes.items()}

        assert RunStatus.BLOCKED == blocked.status
        assert [
            "completed",
            {
                "export_employees": "completed",
                "synchronize_employees": "completed",
                "provision_accounts": "completed",
            },
        ] == json.loads(answer.stdout)
        assert result.outcomes["synchronize_employees"].repair
        assert {"pid": os.getpid()} == pids["export_employees"]
        assert os.getpid() != thaw(pids["provision_accounts"])["pid"]
        assert (2, "resume") == (
            thaw(jobs.get("run-2").state)["drive"]["number"],
            thaw(jobs.get("run-2").state)["drive"]["kind"],
        )

    def test_a_runner_left_open_does_not_keep_the_interpreter_from_exiting(
        self, pytestconfig: pytest.Config
    ) -> None:
        """A process whose runner still keeps its idle threads exits once its script ends."""
        answer = in_another_process(UNCLOSED, root=pytestconfig.rootpath)

        assert "completed True\n" == answer.stdout
