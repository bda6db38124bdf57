"""How task ends reach the ledger: each as soon as it is seen, together when seen together."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from jobledger import (
    CancelJob,
    CompleteJob,
    FailJob,
    Job,
    JobCompleted,
    Jobs,
    Limits,
)
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_launches,
)
from jobledger.testing.runs import inline_runner

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jobledger import Command, JobEvent


def done(_context: TaskContext) -> None:
    """Return normally: produced output."""


class BatchingJobs(Jobs):
    """A ledger that records each batch of commands (``handle_all``) it carries out."""

    def __init__(self, **options: object) -> None:
        """Start with no batch recorded."""
        super().__init__(**options)  # type: ignore[arg-type]
        self.batches: list[list[Command]] = []

    def handle_all(self, commands: Sequence[Command]) -> tuple[Job, ...]:
        """Record the batch, then carry out its commands in one transaction."""
        self.batches.append(list(commands))
        return super().handle_all(commands)

    def ended_in(self, run_id: str) -> list[list[str]]:
        """Per batch that ends launches of ``run_id``: the launch jobs it ends, in order."""
        ends = (CompleteJob, FailJob, CancelJob)
        found = []
        for batch in self.batches:
            ended = [
                command.job_id
                for command in batch
                if isinstance(command, ends) and command.job_id.startswith(f"{run_id}/")
            ]
            if ended:
                found.append(ended)
        return found


class TestTaskEndWrites:
    """The writes that record the ends of a step's tasks."""

    def test_ends_taken_in_together_are_written_in_one_batch(self) -> None:
        """Two tasks run inline end before the runner looks: one batch records both ends."""
        jobs = BatchingJobs()
        definition = JobDefinition(
            "D", [Task("a", done), Task("b", done), Task("c", done, launch_order=2)]
        )

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert {"a": "completed", "b": "completed", "c": "completed"} == result.statuses()
        assert [["run-1/1", "run-1/2"], ["run-1/3"]] == jobs.ended_in("run-1")

    def test_the_last_ends_go_with_the_runs_end_in_one_batch_before_it(self) -> None:
        """The last step's ends and the run's end are one batch, the ends first."""
        jobs = BatchingJobs()
        definition = JobDefinition("D", [Task("a", done), Task("b", done, launch_order=2)])

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        last = [(type(command).__name__, command.job_id) for command in jobs.batches[-1]]
        assert RunStatus.COMPLETED == result.status
        assert [("CompleteJob", "run-1/2"), ("CompleteJob", "run-1")] == last[:2]

    def test_an_end_is_written_as_soon_as_it_is_seen(self, jobs: Jobs) -> None:
        """A task's end is in its launch job while its sibling still runs, not at the step's end."""
        recorded = threading.Event()

        def watch(event: JobEvent) -> None:
            if event.job_id == "run-1/1":
                recorded.set()

        jobs.subscribe(watch, events=JobCompleted)

        def waits(_context: TaskContext) -> TaskResult:
            return TaskResult(summary={"saw_sibling_end": recorded.wait(timeout=30)})

        definition = JobDefinition("D", [Task("quick", done), Task("waits", waits)])
        with Runner(jobs, [definition]) as runner:
            result = runner.invoke("D", run_id="run-1")

        assert {"saw_sibling_end": True} == result.outcomes["waits"].summary
        assert [("quick", "completed"), ("waits", "completed")] == [
            (launch.input.task, jobs.get(launch.job_id).status)
            for launch in load_launches(jobs, "run-1", 2)
        ]

    def test_a_refused_end_among_others_fails_only_its_own_task(self) -> None:
        """Ended together, a summary over the ledger's limits fails its task, not its sibling."""
        jobs = Jobs(limits=Limits(max_bytes=20_000))

        def huge(_context: TaskContext) -> TaskResult:
            return TaskResult(summary="x" * 30_000)

        definition = JobDefinition("D", [Task("big", huge), Task("ok", done)])

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        error = result.outcomes["big"].error
        assert error is not None
        assert "jobledger.InvalidJobDataError" == error.type
        assert {"big": "failed", "ok": "completed"} == result.statuses()
        assert RunStatus.FAILED == result.status
        assert [TaskStatus.FAILED, TaskStatus.COMPLETED] == [
            launch.status for launch in load_launches(jobs, "run-1", 2)
        ]

    def test_a_refused_end_stops_the_next_step_from_launching(self) -> None:
        """An end the ledger refuses fails its task, so the next step is never launched."""
        jobs = Jobs(limits=Limits(max_bytes=20_000))
        ran: list[str] = []

        def huge(_context: TaskContext) -> TaskResult:
            return TaskResult(summary="x" * 30_000)

        def after(context: TaskContext) -> None:
            ran.append(context.task.identifier)

        definition = JobDefinition("D", [Task("big", huge), Task("after", after, launch_order=2)])

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert [] == ran
        assert (RunStatus.FAILED, {"big": "failed", "after": "pending"}) == (
            result.status,
            result.statuses(),
        )

    def test_a_warning_whose_end_is_refused_is_recorded_once(self) -> None:
        """A warning too large to record is replaced by the refusal: one warning, as stored."""
        jobs = Jobs(limits=Limits(max_bytes=20_000))

        def loud(_context: TaskContext) -> None:
            raise ValueError("x" * 30_000)

        definition = JobDefinition("D", [Task("loud", loud, warning_mode=True)])
        runner = inline_runner(jobs, [definition])

        result = runner.invoke("D", run_id="run-1")

        assert ["jobledger.InvalidJobDataError"] == [warning.type for warning in result.warnings]
        assert result == runner.result("run-1")

    def test_warnings_ended_together_are_all_recorded_in_order(self) -> None:
        """Two tasks in warning mode that fail in one step both land in the run's warnings."""
        jobs = BatchingJobs()

        def broken(context: TaskContext) -> None:
            raise ValueError(context.task.identifier)

        definition = JobDefinition(
            "D",
            [
                Task("first", broken, warning_mode=True),
                Task("second", broken, warning_mode=True),
                Task("after", done, launch_order=2),
            ],
        )

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert RunStatus.COMPLETED == result.status
        assert [("first", "first"), ("second", "second")] == [
            (warning.task, warning.message) for warning in result.warnings
        ]
        assert [["run-1/1", "run-1/2"], ["run-1/3"]] == jobs.ended_in("run-1")

    def test_progress_goes_to_the_launch_job_and_not_to_the_run(self) -> None:
        """A task's progress report changes its own launch job; the run's job is not written."""
        jobs = BatchingJobs()
        written: list[str] = []

        def export(context: TaskContext) -> None:
            before = len(jobs.updates("run-1"))
            context.report_progress(done=1, total=2)
            written.append(str(len(jobs.updates("run-1")) - before))

        definition = JobDefinition("D", [Task("export", export)])

        with Runner(jobs, [definition]) as runner:
            result = runner.invoke("D", run_id="run-1")

        [launch] = load_launches(jobs, "run-1", 1)
        progress_updates = [
            update
            for update in jobs.updates("run-1/1")
            if update.state_update is not None and "progress" in update.state_update
        ]
        assert ["0"] == written
        assert {"done": 1, "total": 2} == launch.state.progress
        assert {"done": 1, "total": 2} == result.outcomes["export"].progress
        assert 1 <= len(progress_updates)
