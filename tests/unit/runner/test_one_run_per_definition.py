"""One active run per definition: a second invoke is refused while a run is running or blocked."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jobledger.runner import (
    DEFINITION_ENTITY,
    RUN_SERVICE,
    DefinitionBusyError,
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
    request_cancel,
)

if TYPE_CHECKING:
    from jobledger import Jobs

RECORD = f"{RUN_SERVICE}:{DEFINITION_ENTITY}:D"


def done(_context: TaskContext) -> None:
    """Return normally."""


def blocks(context: TaskContext) -> None:
    """Block unless forced."""
    if context.force is None:
        reason = "over the threshold"
        raise TaskBlocked(reason)


class TestOneActiveRun:
    """Runner.invoke(exclusive=...) and the definition's record of its active run."""

    def test_a_running_run_refuses_a_second_invoke_naming_it(self, jobs: Jobs) -> None:
        """While a run is running, an invoke raises DefinitionBusyError with its id and status."""
        started, release = threading.Event(), threading.Event()

        def waits(_context: TaskContext) -> None:
            started.set()
            assert release.wait(timeout=30)

        runner = Runner(jobs, [JobDefinition("D", [Task("a", waits)])])
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(runner.invoke, "D", run_id="run-1")
            assert started.wait(timeout=30)
            with pytest.raises(DefinitionBusyError) as caught:
                runner.invoke("D", run_id="run-2")
            release.set()
            assert RunStatus.COMPLETED == first.result(timeout=30).status

        assert ("D", "run-1", "running") == (
            caught.value.definition,
            caught.value.run_id,
            caught.value.status,
        )
        assert "run-1" in str(caught.value)
        assert ["run-1"] == [job.id for job in jobs.find(entity="job").jobs]

    def test_a_blocked_run_refuses_a_second_invoke_until_it_is_resumed(self, jobs: Jobs) -> None:
        """A blocked run is active: invoke is refused; once resumed to its end, invoke runs."""
        runner = Runner(jobs, [JobDefinition("D", [Task("a", blocks, guarded=True)])])
        blocked = runner.invoke("D", run_id="run-1")

        with pytest.raises(DefinitionBusyError) as caught:
            runner.invoke("D", run_id="run-2")
        resumed = runner.resume("run-1", force=1)
        after = runner.invoke("D", run_id="run-3", force=1)

        assert (RunStatus.BLOCKED, "blocked") == (blocked.status, caught.value.status)
        assert (RunStatus.COMPLETED, RunStatus.COMPLETED) == (resumed.status, after.status)

    def test_a_canceled_run_frees_its_definition(self, jobs: Jobs) -> None:
        """A blocked run canceled from outside is over: the next invoke is not refused."""
        runner = Runner(jobs, [JobDefinition("D", [Task("a", blocks, guarded=True)])])
        runner.invoke("D", run_id="run-1")
        request_cancel(jobs, "run-1")

        assert RunStatus.COMPLETED == runner.invoke("D", run_id="run-2", force=1).status

    def test_a_concurrent_run_is_started_when_asked_for(self, jobs: Jobs) -> None:
        """exclusive=False starts a run beside a blocked one."""
        runner = Runner(jobs, [JobDefinition("D", [Task("a", blocks, guarded=True)])])
        runner.invoke("D", run_id="run-1")

        concurrent = runner.invoke("D", run_id="run-2", force=1, exclusive=False)

        assert RunStatus.COMPLETED == concurrent.status
        assert RunStatus.BLOCKED == runner.result("run-1").status

    def test_the_record_names_the_active_run_and_is_freed_at_its_end(self, jobs: Jobs) -> None:
        """The definition's record holds the run while it is active, and null once it is over."""
        seen: list[object] = []

        def look(_context: TaskContext) -> None:
            seen.append(jobs.get(RECORD).state["active_run"])

        runner = Runner(jobs, [JobDefinition("D", [Task("a", look)])])
        runner.invoke("D", run_id="run-1")
        record = jobs.get(RECORD)

        assert ["run-1"] == seen
        assert (RUN_SERVICE, DEFINITION_ENTITY, "D") == (record.service, record.entity, record.type)
        assert record.state.get("active_run") is None

    def test_definitions_do_not_block_each_other(self, jobs: Jobs) -> None:
        """A blocked run of one definition leaves another definition free."""
        runner = Runner(
            jobs,
            [
                JobDefinition("D", [Task("a", blocks, guarded=True)]),
                JobDefinition("E", [Task("b", done)]),
            ],
        )
        runner.invoke("D")

        assert RunStatus.COMPLETED == runner.invoke("E").status
