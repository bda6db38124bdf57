"""Task functions for tests/integration/test_runner_executors.py, run in worker processes.

Workers of a process pool, loky or a dask.distributed cluster unpickle a task
function by its module's name, so they live here, in a module the workers
import as ``tests.integration.executor_tasks`` (the project's root on their
path) and that imports nothing heavier than jobledger. A run's input is a
mapping that may name ``marker``: a file the task writes when it sees a cancel
request, and ``release``: a file whose appearance lets a stubborn task go.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from jobledger.runner import TaskResult

if TYPE_CHECKING:
    from jobledger.runner import TaskContext

#: The longest any of these tasks waits, so a lost signal never hangs a worker for good.
LONGEST_WAIT = 30.0


def _path(context: TaskContext, name: str) -> Path:
    """The file the run's input names under ``name``."""
    assert isinstance(context.input, dict)
    value = context.input[name]
    assert isinstance(value, str)
    return Path(value)


def report_where(context: TaskContext) -> TaskResult:
    """Report progress twice, then return the process it ran in and the run's input."""
    context.report_progress(done=1, total=2, pid=os.getpid())
    context.report_progress(done=2)
    return TaskResult(summary={"pid": os.getpid(), "input": context.input})


def take_time(context: TaskContext) -> TaskResult:
    """Work for the run input's ``seconds``, then return when it started and ended."""
    assert isinstance(context.input, dict)
    seconds = context.input["seconds"]
    assert isinstance(seconds, float)
    began = time.time()
    time.sleep(seconds)
    return TaskResult(summary={"began": began, "ended": time.time()})


def wait_for_cancel(context: TaskContext) -> TaskResult:
    """Say it waits (progress), wait for a cancel request, note it in a marker file, stop."""
    context.report_progress(waiting=True, pid=os.getpid())
    saw = context.wait_for_cancel(LONGEST_WAIT)
    context.report_progress(waiting=False, saw_cancel=saw)
    if saw:
        _path(context, "marker").write_text(f"{os.getpid()} saw the cancel", encoding="utf-8")
    context.raise_if_cancel_requested()
    return TaskResult(summary={"saw_cancel": saw})


def ignore_cancel(context: TaskContext) -> TaskResult:
    """Never look at the context: run until the test's release file appears (or 30 s)."""
    context.report_progress(pid=os.getpid())
    release = _path(context, "release")
    deadline = time.monotonic() + LONGEST_WAIT
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return TaskResult(summary={"released": release.exists()})
