"""Executors: sides run on any concurrent.futures executor, a process pool included."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jobledger import JobUpdated
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskContext,
    TaskResult,
    request_cancel,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jobledger import JobEvent, Jobs


def report_pid(context: TaskContext) -> TaskResult:
    """Report and return the process id the task runs in (module level, so picklable)."""
    context.report_progress(pid=os.getpid())
    return TaskResult(summary={"pid": os.getpid(), "input": context.input})


def wait_for_cancel(context: TaskContext) -> TaskResult:
    """Say it is waiting, then wait for the cancellation flag (module level, so picklable)."""
    context.report_progress(waiting=True)
    saw = context.wait_for_cancel(timeout=60)
    return TaskResult(summary={"saw_cancel": saw})


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
        self, jobs: Jobs, process_pool: ProcessPoolExecutor
    ) -> None:
        """The cancellation flag of a task in a worker process is raised by a cancel request."""
        waiting = threading.Event()

        def watch(event: JobEvent) -> None:
            if "waiting" in str(getattr(event, "state_update", "")):
                waiting.set()

        jobs.subscribe(watch, events=JobUpdated)
        definition = JobDefinition("Agents", [Task("export", wait_for_cancel, side="agent")])
        runner = Runner(jobs, [definition], executors={"agent": process_pool})

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Agents", run_id="run-1")
            assert waiting.wait(timeout=60)
            request_cancel(jobs, "run-1")
            result = running.result(timeout=60)

        assert RunStatus.CANCELED == result.status
        assert {"saw_cancel": True} == result.outcomes["export"].summary

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
