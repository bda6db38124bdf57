"""Timeouts stop the work: a process-pool task past its timeout has its worker terminated.

Real processes: a spawn-context ProcessPoolExecutor made by the runner from a
factory, and an SQLite ledger file the workers reach from their own processes.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from jobledger import Jobs
from jobledger.runner import JobDefinition, Runner, RunStatus, Task, TaskContext, load_launches
from jobledger.sqlite import SQLiteRepository


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config) -> None:
    """Put the project's root on the path, which spawned workers inherit.

    The workers unpickle the task functions by their module's name,
    ``tests.integration.test_runner_timeouts``, which the root makes importable.
    """
    monkeypatch.syspath_prepend(str(pytestconfig.rootpath))


def sleep_long(context: TaskContext) -> None:
    """Sleep far past any timeout, ignoring cancel requests (work that must be stopped)."""
    assert isinstance(context.input, dict)
    marker = context.input["marker"]
    assert isinstance(marker, str)
    with Path(marker).open("a", encoding="utf-8") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(60)


def quick(_context: TaskContext) -> None:
    """Return at once."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class TestProcessTimeouts:
    """A process-pool task past its timeout."""

    def test_the_worker_is_terminated_and_replaced_so_the_next_task_starts_at_once(
        self, tmp_path: Path
    ) -> None:
        """The stuck worker is killed and the next step runs at once on a fresh pool.

        The task fails on its timeout; the run ends within seconds, not after its 60 s.
        """
        jobs = Jobs(repository=SQLiteRepository(tmp_path / "jobs.db"))
        definition = JobDefinition(
            "Night",
            [
                Task("stuck", sleep_long, side="agent", timeout=1.0, warning_mode=True),
                Task("after", quick, side="agent", launch_order=2),
            ],
        )
        marker = tmp_path / "pids.txt"
        factory = functools.partial(ProcessPoolExecutor, 1, mp_context=get_context("spawn"))
        began = time.monotonic()
        with Runner(jobs, [definition], executors={"agent": factory}, poll_interval=0.2) as runner:
            result = runner.invoke("Night", input={"marker": str(marker)}, run_id="night")
        elapsed = time.monotonic() - began
        assert RunStatus.COMPLETED == result.status
        assert {"stuck": "warning", "after": "completed"} == result.statuses()
        error = result.outcomes["stuck"].error
        assert error is not None
        assert "jobledger.runner.TaskTimeoutError" == error.type
        assert elapsed < 30  # the stuck task alone would take 60 s
        (pid,) = (int(line) for line in marker.read_text().split())
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pid_alive(pid)
        launches = load_launches(jobs, "night", 2)
        assert ["stuck", "after"] == [launch.input.task for launch in launches]
        worker = launches[0].state.worker
        assert worker is not None
        assert pid == worker["pid"]
