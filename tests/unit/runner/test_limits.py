"""A run whose state outgrows the ledger's limits ends failed, saying why.

Every test first runs its definition on a ledger without a tight limit to learn
how large the run's state is after each write (a manual clock makes the times,
and so the sizes, the same from run to run), then runs it again on a ledger
whose ``max_bytes`` refuses exactly the write under test.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    Command,
    InMemoryRepository,
    InvalidJobDataError,
    Job,
    JobEvent,
    Jobs,
    JobStarted,
    JobUpdated,
    Limits,
    UpdateJob,
)
from jobledger._core.jsondoc import encoded_size
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunResult,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    request_cancel,
)
from jobledger.testing import ManualClock
from jobledger.testing.runs import inline_runner

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

REFUSED = "the ledger refused to record the run: invalid state: the document is larger than"
STOPPING = "; no task is launched after this, and the run ends once those running finish"


def done(_context: TaskContext) -> None:
    """Return normally: produced output."""


def ledger(max_bytes: int = 1_048_576) -> Jobs:
    """An in-memory ledger with a manual clock (so sizes repeat) and ``max_bytes``."""
    return Jobs(clock=ManualClock(), limits=Limits(max_bytes=max_bytes))


def failure_at(max_bytes: int) -> str:
    """The failure a run records when a ledger of ``max_bytes`` refuses it."""
    return f"{REFUSED} {max_bytes} bytes"


def room_for_failure(max_bytes: int) -> int:
    """The bytes the failure takes in the state: its member, its comma."""
    return len(f',"failure":"{failure_at(max_bytes)}"')


class Ran(list[str]):
    """A task function that records the identifier of every task it runs, in order."""

    def __call__(self, context: TaskContext) -> None:
        """Run as a task: record which."""
        self.append(context.task.identifier)


def huge(_context: TaskContext) -> TaskResult:
    """Return a summary larger than any ledger in these tests takes."""
    return TaskResult(summary="x" * 200_000)


def state_sizes(
    definition: JobDefinition, run: Callable[[Jobs, JobDefinition], RunResult]
) -> list[tuple[frozenset[str], int]]:
    """Run ``definition`` on a roomy ledger: per write, the keys it patched, and the size after.

    The keys are the state's top-level members the write patched; the start
    comes first, with none.
    """
    jobs = ledger()
    sizes: list[tuple[frozenset[str], int]] = []

    def measure(event: JobEvent) -> None:
        patch = event.state_update if isinstance(event, JobUpdated) else None
        keys = frozenset(patch or {})
        sizes.append((keys, encoded_size(jobs.get(event.job_id).state)))

    jobs.subscribe(measure, events=(JobStarted, JobUpdated))
    run(jobs, definition)
    return sizes


def around(
    sizes: Sequence[tuple[frozenset[str], int]], key: str, occurrence: int = 1
) -> tuple[int, int]:
    """The state's size before and after the ``occurrence``-th write that patched ``key``."""
    found = [index for index, (keys, _) in enumerate(sizes) if key in keys]
    index = found[occurrence - 1]
    return sizes[index - 1][1], sizes[index][1]


def invoke_inline(jobs: Jobs, definition: JobDefinition) -> RunResult:
    """Invoke ``definition`` on ``jobs`` with every task inline, as run ``run-1``."""
    return inline_runner(jobs, [definition], clock=ManualClock()).invoke("D", run_id="run-1")


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The runner's error records that say the ledger refused the run."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "jobledger.runner" and record.levelno == logging.ERROR
    ]


class TestARunOverTheLimits:
    """The writes the ledger may refuse, and how the run ends each time."""

    def test_a_refused_launch_fails_the_run_before_its_tasks_start(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Step 2's launch does not fit: its tasks never run and the run fails, saying why."""
        ran = Ran()
        wide = [Task(f"wide-{index:02}", ran, launch_order=2) for index in range(40)]
        definition = JobDefinition("D", [Task("first", ran), *wide])
        before, after = around(state_sizes(definition, invoke_inline), "launch_groups", 2)
        ran.clear()
        limit = (before + after) // 2
        jobs = ledger(max_bytes=limit)

        result = invoke_inline(jobs, definition)

        assert ["first"] == ran
        assert RunStatus.FAILED == result.status
        assert result.failure is not None
        assert failure_at(limit) == result.failure
        assert "completed" == result.statuses()["first"]
        assert {"pending"} == {result.statuses()[task.identifier] for task in wide}
        assert jobs.get("run-1").phase.is_terminal
        assert result == Runner(jobs, [definition]).result("run-1")
        assert [result.failure + STOPPING] == refusals(caplog)

    def test_a_new_run_the_ledger_cannot_claim_fails_at_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The start fits but the drive's claim does not: no task runs, the run fails."""
        ran = Ran()
        definition = JobDefinition("D", [Task("only", ran)])
        before, after = around(state_sizes(definition, invoke_inline), "drive")
        ran.clear()
        # Room for the failure, not for the claim (checked, or the test proves nothing).
        limit = before + room_for_failure(before)
        assert limit < after
        jobs = ledger(max_bytes=limit)

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert [] == ran
        assert RunStatus.FAILED == result.status
        assert failure_at(limit) == result.failure
        assert {"only": "pending"} == result.statuses()
        assert jobs.get("run-1").phase.is_terminal
        assert 1 == len(refusals(caplog))

    def test_a_resume_the_ledger_cannot_claim_raises_and_leaves_the_run_blocked(self) -> None:
        """A ledger with smaller limits refuses the claim: the run stays blocked, resumable."""

        def guard(context: TaskContext) -> None:
            if context.force is None:
                raise TaskBlocked("over the threshold")

        definition = JobDefinition("D", [Task("guard", guard, guarded=True)])
        repository = InMemoryRepository()
        roomy = Jobs(repository=repository)
        assert (
            RunStatus.BLOCKED
            == inline_runner(roomy, [definition]).invoke("D", run_id="run-1").status
        )
        blocked = roomy.get("run-1")
        tight = Jobs(repository=repository, limits=Limits(max_bytes=200))

        with pytest.raises(InvalidJobDataError, match="larger than 200 bytes"):
            inline_runner(tight, [definition]).resume("run-1", force=10)

        assert blocked == roomy.get("run-1")
        resumed = inline_runner(roomy, [definition]).resume("run-1", force=10)
        assert RunStatus.COMPLETED == resumed.status

    def test_an_end_refused_even_as_an_error_fails_the_run_without_room_to_say_why(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """No room for the task's end nor for the failure: the run still ends failed."""
        definition = JobDefinition("D", [Task("first", done), Task("big", huge, launch_order=2)])
        _, launched = around(state_sizes(definition, invoke_inline), "launch_groups", 2)
        jobs = ledger(max_bytes=launched + 20)

        result = invoke_inline(jobs, definition)

        assert RunStatus.FAILED == result.status
        assert result.failure is None
        assert jobs.get("run-1").phase.is_terminal
        # What the ledger holds: the end of "big" could not be recorded.
        assert {"first": "completed", "big": "running"} == result.statuses()
        assert [failure_at(launched + 20) + STOPPING] == refusals(caplog)

    def test_a_breakpoint_that_does_not_fit_fails_the_run(self) -> None:
        """A guarded task blocks, but the breakpoint cannot be recorded: the run fails."""

        def guard(_context: TaskContext) -> None:
            raise TaskBlocked("over the threshold")

        definition = JobDefinition(
            "D", [Task("first", done), Task("guard", guard, launch_order=2, guarded=True)]
        )
        before, after = around(state_sizes(definition, invoke_inline), "breakpoint", 2)
        jobs = ledger(max_bytes=before + 10)
        assert before + 10 < after

        result = invoke_inline(jobs, definition)

        assert RunStatus.FAILED == result.status
        assert result.breakpoint is None
        assert {"first": "completed", "guard": "blocked"} == result.statuses()
        assert jobs.get("run-1").phase.is_terminal

    def test_a_cancel_requested_run_over_the_limits_ends_canceled_saying_why(self) -> None:
        """The cancel request and the failure fit, the task's end does not: canceled, with why."""
        # The sizes up to step 2's launch do not depend on what its task does.
        sizing = JobDefinition("D", [Task("first", done), Task("big", done, launch_order=2)])
        _, launched = around(state_sizes(sizing, invoke_inline), "launch_groups", 2)
        cancel_request = len(',"cancel_requested":true')
        # Room for the cancel request and the failure (with a few bytes to spare),
        # not for the task's end, even as an error.
        limit = launched + cancel_request + room_for_failure(launched) + 5
        jobs = ledger(max_bytes=limit)

        def cancels(context: TaskContext) -> TaskResult:
            request_cancel(jobs, context.run_id)
            return huge(context)

        definition = JobDefinition("D", [Task("first", done), Task("big", cancels, launch_order=2)])

        result = invoke_inline(jobs, definition)

        assert RunStatus.CANCELED == result.status
        assert result.cancel_requested
        assert failure_at(limit) == result.failure
        assert {"first": "completed", "big": "running"} == result.statuses()
        assert jobs.get("run-1").phase.is_terminal

    def test_a_new_run_canceled_before_a_refused_claim_ends_canceled(self) -> None:
        """A cancel lands between the start and a claim the ledger refuses: the run is canceled."""
        definition = JobDefinition("D", [Task("only", done)])
        before, after = around(state_sizes(definition, invoke_inline), "drive")
        cancel_request = len(',"cancel_requested":true')
        limit = before + cancel_request + 5
        assert limit < after
        jobs = ledger(max_bytes=limit)

        def cancel_at_start(event: JobEvent) -> None:
            request_cancel(jobs, event.job_id)

        # In-process delivery runs the handler before start() returns, so the
        # runner's first read of the run is already stale when it claims it.
        jobs.subscribe(cancel_at_start, events=JobStarted)

        result = invoke_inline(jobs, definition)

        assert RunStatus.CANCELED == result.status
        assert result.cancel_requested
        assert {"only": "pending"} == result.statuses()
        assert 2 == len(jobs.updates("run-1"))  # the cancel request, then the cancel

    def test_a_refused_heartbeat_is_followed_by_heartbeats_with_no_state(self) -> None:
        """After a refused heartbeat the drive keeps the run alive with changes that add nothing."""
        with_time: list[object] = []
        bare = threading.Event()

        class WatchedJobs(Jobs):
            def handle(self, command: Command) -> Job:
                if isinstance(command, UpdateJob):
                    patch = command.state_update
                    if isinstance(patch, dict) and "heartbeat_at" in patch:
                        with_time.append(patch)
                    elif patch is None and command.status is None:
                        bare.set()
                return super().handle(command)

        def waits(_context: TaskContext) -> None:
            # Runs until the drive has written a heartbeat with no state (or the sizing run).
            bare.wait(timeout=30)

        definition = JobDefinition("D", [Task("waits", waits)])

        def invoke_threaded(jobs: Jobs, definition: JobDefinition) -> RunResult:
            bare.set()
            with Runner(jobs, [definition]) as runner:
                return runner.invoke("D", run_id="run-1")

        _, launched = around(state_sizes(definition, invoke_threaded), "launch_groups")
        bare.clear()
        jobs = WatchedJobs(clock=ManualClock(), limits=Limits(max_bytes=launched + 20))
        with Runner(jobs, [definition], heartbeat=0.01) as runner:
            result = runner.invoke("D", run_id="run-1")

        assert bare.is_set()
        assert 1 == len(with_time)
        assert RunStatus.FAILED == result.status
        assert {"waits": "running"} == result.statuses()
