"""Executors: sides run on any concurrent.futures executor, a process pool included."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskContext,
    TaskResult,
    load_launches,
    request_cancel,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def report_pid(context: TaskContext) -> TaskResult:
    """Report and return the process id the task runs in (module level, so picklable)."""
    context.report_progress(pid=os.getpid())
    return TaskResult(summary={"pid": os.getpid(), "input": context.input})


def wait_for_cancel(context: TaskContext) -> TaskResult:
    """Say it is waiting, then wait for the cancellation flag (module level, so picklable)."""
    context.report_progress(waiting=True)
    saw = context.wait_for_cancel(timeout=60)
    return TaskResult(summary={"saw_cancel": saw})


def waiting(jobs: Jobs, run_id: str) -> bool:
    """Whether the run's first launch exists and its task said it is waiting."""
    launches = load_launches(jobs, run_id, 1)
    progress = launches[0].state.progress if launches else None
    return progress is not None and progress.get("waiting") is True


def in_this_process(_context: TaskContext) -> TaskResult:
    """Return the process id, for a task on the server side."""
    return TaskResult(summary={"pid": os.getpid()})


@pytest.fixture
def process_pool(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProcessPoolExecutor]:
    """Return a spawning process pool whose workers can import this test module."""
    # Workers unpickle task functions by module name; the root makes `tests.…` importable.
    monkeypatch.syspath_prepend(str(pytestconfig.rootpath))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        yield pool


class TestExecutors:
    """Runner(executors=...)."""

    def test_agent_tasks_run_in_a_process_pool(
        self, jobs: Jobs, process_pool: ProcessPoolExecutor
    ) -> None:
        """Agent tasks run in worker processes and report progress; server tasks stay here."""
        definition = JobDefinition(
            "Agents",
            [
                Task("export", report_pid, side="agent"),
                Task("sync", in_this_process, launch_order=2, parents="export"),
            ],
        )
        runner = Runner(jobs, [definition], executors={"agent": process_pool})

        result = runner.invoke("Agents", input={"tenant": "acme"})
        export = result.outcomes["export"]

        assert RunStatus.COMPLETED == result.status
        assert isinstance(export.summary, dict)
        assert os.getpid() != export.summary["pid"]
        assert {"tenant": "acme"} == export.summary["input"]
        assert {"pid": export.summary["pid"]} == export.progress
        assert {"pid": os.getpid()} == result.outcomes["sync"].summary

    def test_a_cancel_reaches_a_task_in_another_process(
        self, tmp_path: Path, process_pool: ProcessPoolExecutor
    ) -> None:
        """A task in a worker process sees a cancel request through its launch job (SQLite file)."""
        jobs = Jobs(repository=SQLiteRepository(tmp_path / "jobs.db"))
        definition = JobDefinition("Agents", [Task("export", wait_for_cancel, side="agent")])
        runner = Runner(jobs, [definition], executors={"agent": process_pool}, poll_interval=0.05)

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Agents", run_id="run-1")
            deadline = time.monotonic() + 60
            while not waiting(jobs, "run-1"):
                assert time.monotonic() < deadline, "the task never reported it was waiting"
                time.sleep(0.02)
            request_cancel(jobs, "run-1")
            result = running.result(timeout=60)

        assert RunStatus.CANCELED == result.status
        assert {"saw_cancel": True} == result.outcomes["export"].summary

    def test_a_task_in_another_process_on_a_ledger_in_memory_reports_with_its_end(
        self, jobs: Jobs, process_pool: ProcessPoolExecutor
    ) -> None:
        """A ledger in memory cannot be opened elsewhere: the progress comes back with the end."""
        definition = JobDefinition("Agents", [Task("export", report_pid, side="agent")])
        runner = Runner(jobs, [definition], executors={"agent": process_pool})

        result = runner.invoke("Agents", run_id="run-1", input="acme")
        [launch] = load_launches(jobs, "run-1", 1)

        assert RunStatus.COMPLETED == result.status
        assert launch.state.progress is not None
        assert launch.state.summary == {**launch.state.progress, "input": "acme"}

    def test_a_task_that_cannot_be_pickled_fails_on_a_process_pool(
        self, jobs: Jobs, process_pool: ProcessPoolExecutor
    ) -> None:
        """A task function a process pool cannot take fails the run with the pickling error."""
        definition = JobDefinition("Agents", [Task("export", lambda _context: None, side="agent")])
        runner = Runner(jobs, [definition], executors={"agent": process_pool})

        result = runner.invoke("Agents")
        error = result.outcomes["export"].error

        assert RunStatus.FAILED == result.status
        assert error is not None
        assert "pickle" in (error.type + error.message).lower()

    def test_executors_given_to_the_runner_are_left_running(self, jobs: Jobs) -> None:
        """The runner never shuts down an executor it was given."""
        with ThreadPoolExecutor(2) as server:
            runner = Runner(
                jobs,
                [JobDefinition("One", [Task("a", in_this_process)])],
                executors={"server": server},
            )
            runner.invoke("One")

            assert 1 == server.submit(int, "1").result(timeout=30)
