"""Every launch (and skip) of a task is its own job; the run's job stays the same size."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from jobledger import Jobs, JobUpdated
from jobledger._core.jsondoc import encoded_size
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    TASK_ENTITY,
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_launches,
    load_run,
)
from jobledger.testing import ManualClock
from jobledger.testing.runs import inline_runner

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import JobEvent


def done(_context: TaskContext) -> None:
    """Return normally: produced output."""


def no_output(_context: TaskContext) -> TaskResult:
    """Return without output."""
    return TaskResult(output=False)


def broken(_context: TaskContext) -> None:
    """Fail."""
    message = "broken"
    raise ValueError(message)


def blocks(_context: TaskContext) -> None:
    """Block."""
    reason = "over the threshold"
    raise TaskBlocked(reason)


def fixed_width_ids() -> Callable[[], str]:
    """Ids of one length, so the sizes of two runs compare."""
    counter = itertools.count(1)
    return lambda: f"id-{next(counter):06}"


def run_state_sizes(tasks: int) -> list[int]:
    """Run ``tasks`` no-op tasks in steps of 10 inline: the run state's size at each launch."""
    jobs = Jobs(clock=ManualClock(), delivery="inline")
    sizes: list[int] = []

    def measure(event: JobEvent) -> None:
        sizes.append(encoded_size(jobs.get(event.job_id).state))

    jobs.subscribe(measure, events=JobUpdated, entity=RUN_ENTITY)
    definition = JobDefinition(
        "D", [Task(f"t{index:05}", done, launch_order=index // 10 + 1) for index in range(tasks)]
    )
    runner = inline_runner(jobs, [definition], clock=ManualClock(), id_factory=fixed_width_ids())
    assert RunStatus.COMPLETED == runner.invoke("D", run_id="run-1").status
    return sizes


class TestLaunchJobs:
    """The jobs of a run's launches."""

    def test_each_launch_and_skip_is_a_job_named_after_the_run(self, jobs: Jobs) -> None:
        """Launch jobs are ``<run>/1..n`` in launch order, with the task's type and identifier."""
        definition = JobDefinition(
            "D",
            [
                Task("export", no_output, type="export"),
                Task("warn", broken, warning_mode=True),
                Task("sync", done, launch_order=2, parents="export", type="synchronize"),
                Task("guard", blocks, launch_order=2, guarded=True),
                Task("broken", broken, launch_order=2),
            ],
        )

        result = Runner(jobs, [definition]).invoke("D", run_id="run-1")
        launches = load_launches(jobs, "run-1", 5)

        assert RunStatus.FAILED == result.status
        assert [f"run-1/{number}" for number in range(1, 6)] == [
            launch.job_id for launch in launches
        ]
        assert [1, 1, 2, 2, 2] == [launch.input.step for launch in launches]
        assert {
            "export": ("export", "completed", TaskStatus.COMPLETED, 1),
            "warn": ("task", "completed", TaskStatus.WARNING, 1),
            "sync": ("synchronize", "canceled", TaskStatus.SKIPPED, None),
            "guard": ("task", "failed", TaskStatus.BLOCKED, 2),
            "broken": ("task", "failed", TaskStatus.FAILED, 2),
        } == {
            launch.input.task: (
                launch.type,
                jobs.get(launch.job_id).status,
                launch.status,
                launch.input.group,
            )
            for launch in launches
        }
        assert all(
            (RUN_SERVICE, TASK_ENTITY, launch.input.task, "run-1")
            == (job.service, job.entity, job.display_name, launch.input.run)
            for launch in launches
            if (job := jobs.get(launch.job_id))
        )

    def test_a_running_launch_is_an_active_job(self, jobs: Jobs) -> None:
        """While its task runs, the launch reads running and its job is active, with no outcome."""
        seen: list[tuple[TaskStatus, str, object]] = []

        def look(context: TaskContext) -> None:
            [launch] = load_launches(jobs, context.run_id, 1)
            seen.append((launch.status, jobs.get(launch.job_id).phase, launch.state.outcome))

        Runner(jobs, [JobDefinition("D", [Task("look", look)])]).invoke("D", run_id="run-1")

        assert [(TaskStatus.RUNNING, "active", None)] == seen

    def test_a_task_launched_again_has_a_new_job_and_the_run_reads_the_latest(
        self, jobs: Jobs
    ) -> None:
        """A resumed blocked task is launched as a new job, attempt 2; the old one stays blocked."""

        def guard(context: TaskContext) -> None:
            if context.force is None:
                blocks(context)

        runner = Runner(jobs, [JobDefinition("D", [Task("guard", guard, guarded=True)])])
        runner.invoke("D", run_id="run-1")
        resumed = runner.resume("run-1", force=1)
        launches = load_launches(jobs, "run-1", 2)

        assert [(TaskStatus.BLOCKED, 1, 1), (TaskStatus.COMPLETED, 2, 2)] == [
            (launch.status, launch.input.attempt, launch.input.drive) for launch in launches
        ]
        assert (RunStatus.COMPLETED, 2) == (resumed.status, resumed.outcomes["guard"].attempts)
        assert resumed == load_run(jobs, "run-1", definition=runner.definition("D"))

    def test_the_run_counts_its_tasks_and_launches(self, jobs: Jobs) -> None:
        """The run's state counts tasks, launches, groups and statuses; progress reads from it."""
        definition = JobDefinition(
            "D",
            [
                Task("a", no_output),
                Task("b", done),
                Task("c", done, launch_order=2, parents="a"),
                Task("d", done, launch_order=3),
            ],
        )

        result = Runner(jobs, [definition]).invoke("D", run_id="run-1", end_step=2)
        state = result.state

        assert state is not None
        assert (3, 3, 1, 2) == (state.tasks, state.launches, state.groups, state.step)
        assert {"completed": 2, "skipped": 1} == dict(state.counts)
        assert (3, 3) == result.progress
        assert state.lease is None

    def test_the_run_state_does_not_grow_with_its_tasks(self) -> None:
        """The run's state is as large for 2,000 tasks as for 30, but for a few digits."""
        small, large = run_state_sizes(30), run_state_sizes(2_000)

        assert (3, 200) == (len(small), len(large))
        assert 0 <= max(large) - max(small) <= 16


class TestNullsInRecordedValues:
    """A launch's end is a merge patch; the values it records keep their nulls all the same."""

    def test_a_summary_and_blockage_details_keep_their_nulls(self) -> None:
        """Nulls inside a summary and inside a blockage's details read back from the ledger."""

        def summarize(_context: TaskContext) -> TaskResult:
            return TaskResult(summary={"input": None, "rows": [None, 1]})

        def block(_context: TaskContext) -> None:
            raise TaskBlocked("too many deletions", details={"threshold": None})

        jobs = Jobs()
        definition = JobDefinition(
            "Nulls",
            [Task("summarize", summarize), Task("block", block, guarded=True, launch_order=2)],
        )

        inline_runner(jobs, [definition]).invoke("Nulls", run_id="nulls")

        recorded = load_run(jobs, "nulls").outcomes
        assert {"input": None, "rows": [None, 1]} == recorded["summarize"].summary
        blocked = recorded["block"].blocked
        assert blocked is not None
        assert {"threshold": None} == blocked.details
