"""Invoking a job definition: steps, parents, outcomes, context and history."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pytest

from jobledger import InvalidJobDataError, Jobs, JobUpdated, Limits, thaw
from jobledger.runner import (
    TASK_ENTITY,
    TASK_LOGGER,
    DefinitionBuilder,
    JobDefinition,
    Runner,
    RunStatus,
    Selection,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    UnknownDefinitionError,
    load_launches,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import JobEvent


def done(context: TaskContext) -> None:
    """Return normally: produced output."""


def no_output(_context: TaskContext) -> TaskResult:
    """Return without output."""
    return TaskResult(output=False, summary="nothing new")


def broken(_context: TaskContext) -> None:
    """Fail with a ValueError."""
    message = "row 7 has no employee id"
    raise ValueError(message)


def when_recorded(jobs: Jobs, matches: Callable[[JobEvent], bool]) -> threading.Event:
    """Return an event set once the ledger commits a change of a launch job that ``matches``."""
    seen = threading.Event()

    def handler(event: JobEvent) -> None:
        if matches(event):
            seen.set()

    jobs.subscribe(handler, entity=TASK_ENTITY)
    return seen


def launch_ended(outcome: str) -> Callable[[JobEvent], bool]:
    """Match the end of a launch job whose task came to ``outcome``."""

    def matches(event: JobEvent) -> bool:
        patch = getattr(event, "state_update", None) or {}
        return (
            event.status in {"completed", "failed", "canceled"} and patch.get("outcome") == outcome
        )

    return matches


def progress_written(event: JobEvent) -> bool:
    """Match a change of a launch job that writes its progress."""
    return "progress" in (getattr(event, "state_update", None) or {})


class TestInvoke:
    """Runner.invoke."""

    def test_the_run_is_a_job_in_the_ledger(self, jobs: Jobs) -> None:
        """The run's job names the runner, the definition and the run's request."""
        definition = JobDefinition("Nightly", [Task("a", done)], display_name="Nightly HR")

        result = Runner(jobs, [definition]).invoke(
            "Nightly", task="a", force=5, input={"tenant": "acme"}, run_id="run-1"
        )
        job = jobs.get("run-1")

        assert ("run-1", RunStatus.COMPLETED) == (result.run_id, result.status)
        assert ("jobledger.runner", "job", "Nightly", "Nightly HR", "completed") == (
            job.service,
            job.entity,
            job.type,
            job.display_name,
            job.status,
        )
        assert {
            "definition": "Nightly",
            "selection": {"task": "a"},
            "force": 5,
            "input": {"tenant": "acme"},
        } == job.input

    def test_steps_run_in_launch_order_and_the_history_shows_launch_groups(
        self, jobs: Jobs
    ) -> None:
        """Each step is one launch group: its tasks' launch jobs, made in launch order."""
        definition = JobDefinition(
            "Nightly",
            [
                Task("sync", done, launch_order=2, parents=["export_hr", "export_ad"]),
                Task("export_hr", done),
                Task("export_ad", done),
                Task("provision", done, launch_order=3, parents="sync"),
            ],
        )

        result = Runner(jobs, [definition]).invoke("Nightly", run_id="run-1")
        launches = [
            (launch.job_id, launch.input.group, launch.input.step, launch.input.task)
            for launch in load_launches(jobs, "run-1", 4)
        ]

        assert [
            ("run-1/1", 1, 1, "export_hr"),
            ("run-1/2", 1, 1, "export_ad"),
            ("run-1/3", 2, 2, "sync"),
            ("run-1/4", 3, 3, "provision"),
        ] == launches
        assert [(1, 1), (2, 2), (3, 3)] == [
            (group.number, group.step) for group in result.launch_groups
        ]
        assert {"export_hr": 1, "export_ad": 1, "sync": 2, "provision": 3} == {
            name: outcome.launch_group for name, outcome in result.outcomes.items()
        }

    def test_the_tasks_of_a_step_run_at_the_same_time(self, jobs: Jobs) -> None:
        """Three tasks of one step all reach a three-party barrier, so they overlap."""
        barrier = threading.Barrier(3)

        def meet(_context: TaskContext) -> None:
            barrier.wait(timeout=30)

        definition = JobDefinition("Wide", [Task(name, meet) for name in ("a", "b", "c")])

        result = Runner(jobs, [definition]).invoke("Wide")

        assert {"a": "completed", "b": "completed", "c": "completed"} == result.statuses()

    def test_no_task_starts_before_the_earlier_step_has_finished(self, jobs: Jobs) -> None:
        """The second step's task starts only after both tasks of the first step ended."""
        log: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(2)

        def logged(context: TaskContext) -> None:
            with lock:
                log.append(f"start {context.task.identifier}")
            if context.task.launch_order == 1:
                barrier.wait(timeout=30)
            with lock:
                log.append(f"end {context.task.identifier}")

        definition = JobDefinition(
            "Ordered", [Task("a", logged), Task("b", logged), Task("c", logged, launch_order=2)]
        )

        Runner(jobs, [definition]).invoke("Ordered")

        assert ["start c", "end c"] == log[4:]
        assert {"start a", "start b", "end a", "end b"} == set(log[:4])

    def test_a_task_whose_parents_produced_no_output_is_skipped(self, jobs: Jobs) -> None:
        """No parent with output: the child is skipped, its reason recorded, the run completes."""
        definition = JobDefinition(
            "Quiet",
            [
                Task("export", no_output),
                Task("sync", done, launch_order=2, parents="export"),
                Task("provision", done, launch_order=3, parents="sync"),
            ],
        )

        result = Runner(jobs, [definition]).invoke("Quiet")

        assert RunStatus.COMPLETED == result.status
        assert {"export": "completed", "sync": "skipped", "provision": "skipped"} == (
            result.statuses()
        )
        assert (False, "nothing new") == (
            result.outcomes["export"].output,
            result.outcomes["export"].summary,
        )
        assert "none of its parents produced output" == result.outcomes["sync"].skip_reason
        assert "parents did not complete: 'sync' is skipped" == (
            result.outcomes["provision"].skip_reason
        )

    def test_one_parent_with_output_is_enough(self, jobs: Jobs) -> None:
        """A child runs when all its parents completed and at least one produced output."""
        definition = JobDefinition(
            "Mixed",
            [
                Task("export_hr", no_output),
                Task("export_ad", done),
                Task("sync", done, launch_order=2, parents=["export_hr", "export_ad"]),
            ],
        )

        result = Runner(jobs, [definition]).invoke("Mixed")

        assert "completed" == result.statuses()["sync"]

    def test_a_returned_value_that_is_not_a_task_result_counts_as_output(self, jobs: Jobs) -> None:
        """Any plain return value means the task produced output."""

        def returns_a_count(_context: TaskContext) -> int:
            return 0

        definition = JobDefinition(
            "Plain", [Task("a", returns_a_count), Task("b", done, launch_order=2, parents="a")]
        )

        result = Runner(jobs, [definition]).invoke("Plain")

        assert (True, "completed") == (result.outcomes["a"].output, result.statuses()["b"])

    def test_parents_outside_the_selection_do_not_gate(self, jobs: Jobs) -> None:
        """With only step 2 selected, its task runs though its parent never ran."""
        definition = JobDefinition(
            "Nightly",
            [Task("export", broken), Task("sync", done, launch_order=2, parents="export")],
        )

        result = Runner(jobs, [definition]).invoke("Nightly", begin_step=2)

        assert {"sync": "completed"} == result.statuses()

    def test_an_error_fails_the_run_after_the_running_tasks_finish(self, jobs: Jobs) -> None:
        """An error fails the run; its sibling finishes and is recorded; no new step starts."""
        b_started = threading.Event()
        a_failed = when_recorded(jobs, launch_ended("failed"))

        def a(context: TaskContext) -> None:
            assert b_started.wait(timeout=30)
            broken(context)

        def b(_context: TaskContext) -> TaskResult:
            b_started.set()
            assert a_failed.wait(timeout=30)
            return TaskResult(summary="finished after a failed")

        definition = JobDefinition(
            "Failing", [Task("a", a), Task("b", b), Task("c", done, launch_order=2)]
        )

        result = Runner(jobs, [definition]).invoke("Failing")

        assert RunStatus.FAILED == result.status
        assert {"a": "failed", "b": "completed", "c": "pending"} == result.statuses()
        assert "finished after a failed" == result.outcomes["b"].summary
        assert ["a"] == [
            launch.input.task
            for launch in load_launches(jobs, result.run_id, 2)
            if launch.status is TaskStatus.FAILED
        ]

    def test_the_error_is_recorded_with_type_message_and_traceback(self, jobs: Jobs) -> None:
        """The failed task's outcome holds the exception's class, message and last frames."""
        result = Runner(jobs, [JobDefinition("Failing", [Task("a", broken)])]).invoke("Failing")
        error = result.outcomes["a"].error

        assert error is not None
        assert ("ValueError", "row 7 has no employee id") == (error.type, error.message)
        assert "in broken" in error.traceback
        assert error.traceback.endswith("ValueError: row 7 has no employee id\n")

    def test_an_error_in_warning_mode_is_a_warning_and_its_children_run(self, jobs: Jobs) -> None:
        """The run goes on and completes listing the warning; the task counts as having output."""
        definition = JobDefinition(
            "Lenient",
            [
                Task("export_hr", broken, type="export", warning_mode=True),
                Task("export_ad", done, type="export"),
                Task("sync_hr", done, launch_order=2, parents="export_hr"),
                Task("sync_ad", done, launch_order=2, parents="export_ad"),
            ],
        )

        result = Runner(jobs, [definition]).invoke("Lenient")

        assert RunStatus.COMPLETED == result.status
        assert {
            "export_hr": "warning",
            "export_ad": "completed",
            "sync_hr": "completed",
            "sync_ad": "completed",
        } == result.statuses()
        assert [("export_hr", "ValueError", "row 7 has no employee id")] == [
            (warning.task, warning.type, warning.message) for warning in result.warnings
        ]
        assert result.outcomes["sync_hr"].skip_reason is None

    def test_a_guarded_task_that_blocks_stops_the_run_at_a_breakpoint(self, jobs: Jobs) -> None:
        """The run stays active, blocked, with its breakpoint and the reason recorded."""

        def sync(_context: TaskContext) -> None:
            raise TaskBlocked("too many deletions", details={"deletions": 120, "threshold": 50})

        definition = JobDefinition(
            "Guarded",
            [
                Task("export", done),
                Task("sync", sync, launch_order=2, parents="export", guarded=True),
                Task("provision", done, launch_order=3, parents="sync"),
            ],
        )

        result = Runner(jobs, [definition]).invoke("Guarded")
        job = jobs.get(result.run_id)
        blocked = result.outcomes["sync"].blocked

        assert (RunStatus.BLOCKED, "blocked", "active") == (result.status, job.status, job.phase)
        assert {"export": "completed", "sync": "blocked", "provision": "pending"} == (
            result.statuses()
        )
        assert result.breakpoint is not None
        assert (2, ("sync",)) == (result.breakpoint.step, result.breakpoint.tasks)
        assert blocked is not None
        assert ("too many deletions", {"deletions": 120, "threshold": 50}) == (
            blocked.reason,
            blocked.details,
        )

    def test_a_task_that_is_not_guarded_may_not_block(self, jobs: Jobs) -> None:
        """TaskBlocked from an unguarded task is an error: the run fails."""

        def sync(_context: TaskContext) -> None:
            message = "too many deletions"
            raise TaskBlocked(message)

        result = Runner(jobs, [JobDefinition("Unguarded", [Task("sync", sync)])]).invoke(
            "Unguarded"
        )
        error = result.outcomes["sync"].error

        assert (RunStatus.FAILED, "failed") == (result.status, result.statuses()["sync"])
        assert error is not None
        assert (
            "jobledger.runner.TaskBlocked",
            "task 'sync' is not guarded, so it may not block: too many deletions",
        ) == (error.type, error.message)

    def test_a_task_past_its_timeout_fails_the_run_and_is_asked_to_stop(self, jobs: Jobs) -> None:
        """A timeout is recorded as the task's error, and the task's cancellation flag is raised."""
        stopped = threading.Event()

        def hangs(context: TaskContext) -> None:
            if context.wait_for_cancel(timeout=30):
                stopped.set()

        definition = JobDefinition(
            "Slow", [Task("hangs", hangs, timeout=0.01), Task("after", done, launch_order=2)]
        )

        result = Runner(jobs, [definition]).invoke("Slow")
        error = result.outcomes["hangs"].error

        assert RunStatus.FAILED == result.status
        assert {"hangs": "failed", "after": "pending"} == result.statuses()
        assert error is not None
        assert (
            "jobledger.runner.TaskTimeoutError",
            "task 'hangs' did not finish within its timeout of 0.01s",
        ) == (error.type, error.message)
        assert stopped.wait(timeout=30)

    def test_the_context_carries_the_run(self, jobs: Jobs) -> None:
        """A task sees the run id, its task, the run's input, its launch; force if it is guarded."""
        seen: list[tuple[object, ...]] = []

        def look(context: TaskContext) -> None:
            seen.append(
                (
                    context.run_id,
                    context.task.identifier,
                    context.input,
                    context.force,
                    context.repair,
                    context.attempt,
                    context.cancel_requested,
                    context.launch_id,
                )
            )

        definition = JobDefinition(
            "Look", [Task("look", look), Task("guarded", look, launch_order=2, guarded=True)]
        )
        Runner(jobs, [definition]).invoke("Look", input={"tenant": "acme"}, force=7, run_id="run-7")

        assert [
            ("run-7", "look", {"tenant": "acme"}, None, False, 1, False, "run-7/1"),
            ("run-7", "guarded", {"tenant": "acme"}, 7, False, 1, False, "run-7/2"),
        ] == seen

    def test_the_logger_binds_the_run_and_the_task(
        self, jobs: Jobs, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Records logged through the context carry the run and task ids."""

        def chatty(context: TaskContext) -> None:
            context.logger.info("exporting")

        with caplog.at_level(logging.INFO, logger=TASK_LOGGER):
            Runner(jobs, [JobDefinition("Log", [Task("chatty", chatty)])]).invoke(
                "Log", run_id="run-9"
            )
        records = [record for record in caplog.records if record.name == TASK_LOGGER]

        assert [("exporting", "run-9", "chatty")] == [
            (record.getMessage(), getattr(record, "run_id", None), getattr(record, "task_id", None))
            for record in records
        ]

    def test_progress_reports_land_in_the_ledger(self, jobs: Jobs) -> None:
        """What a task reports is merged into the progress of its launch job."""
        reported = when_recorded(jobs, progress_written)

        def export(context: TaskContext) -> None:
            context.report_progress(done=10, total=42)
            assert reported.wait(timeout=30)
            context.report_progress(done=42)

        result = Runner(jobs, [JobDefinition("Progress", [Task("export", export)])]).invoke(
            "Progress", run_id="run-1"
        )
        [launch] = load_launches(jobs, "run-1", 1)

        assert {"done": 42, "total": 42} == result.outcomes["export"].progress
        assert {"done": 42, "total": 42} == launch.state.progress
        assert {"done": 10, "total": 42} == next(
            thaw(update.state_update)["progress"]
            for update in jobs.updates("run-1/1")
            if update.state_update is not None and "progress" in update.state_update
        )

    def test_progress_that_is_not_json_fails_the_task(self, jobs: Jobs) -> None:
        """report_progress refuses values the ledger cannot hold."""

        def export(context: TaskContext) -> None:
            context.report_progress(ratio=float("nan"))

        result = Runner(jobs, [JobDefinition("Bad", [Task("export", export)])]).invoke("Bad")
        error = result.outcomes["export"].error

        assert error is not None
        assert "jobledger.InvalidJobDataError" == error.type

    def test_progress_the_ledger_refuses_is_left_out_and_the_run_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A report over the ledger's limits is logged and dropped, and the run completes."""
        jobs = Jobs(limits=Limits(max_bytes=4096))

        def export(context: TaskContext) -> None:
            context.report_progress(blob="x" * 5000)

        with caplog.at_level(logging.WARNING, logger="jobledger.runner"):
            result = Runner(jobs, [JobDefinition("Big", [Task("export", export)])]).invoke(
                "Big", run_id="run-1"
            )

        [launch] = load_launches(jobs, "run-1", 1)
        assert (RunStatus.COMPLETED, TaskStatus.COMPLETED) == (result.status, launch.status)
        assert launch.state.progress is None
        assert ["run-1/1"] == [
            getattr(record, "launch_id", None)
            for record in caplog.records
            if "refused progress" in record.getMessage()
        ]

    def test_a_refused_report_costs_only_its_own_task(self) -> None:
        """Each task writes its own launch job: a refused report leaves its sibling's progress."""
        jobs = Jobs(limits=Limits(max_bytes=4096))

        def small(context: TaskContext) -> None:
            context.report_progress(done=2)

        def large(context: TaskContext) -> None:
            context.report_progress(blob="x" * 5000)

        definition = JobDefinition("Two", [Task("small", small), Task("large", large)])
        result = Runner(jobs, [definition]).invoke("Two", run_id="run-1")

        assert RunStatus.COMPLETED == result.status
        assert [("small", {"done": 2}), ("large", None)] == [
            (launch.input.task, launch.state.progress) for launch in load_launches(jobs, "run-1", 2)
        ]

    def test_the_runner_renews_its_lease_while_tasks_run(self, jobs: Jobs) -> None:
        """A drive whose tasks run long renews its lease in the run's job, later each time."""
        two_renewals = threading.Event()
        renewals: list[str] = []

        def count(event: JobEvent) -> None:
            lease = (getattr(event, "state_update", None) or {}).get("lease")
            if isinstance(lease, dict) and set(lease) == {"expires_at"}:
                renewals.append(str(lease["expires_at"]))
                if len(renewals) >= 2:
                    two_renewals.set()

        jobs.subscribe(count, events=JobUpdated, entity="job")

        def long(_context: TaskContext) -> None:
            assert two_renewals.wait(timeout=30)

        runner = Runner(jobs, [JobDefinition("Long", [Task("long", long)])], lease=0.03)
        result = runner.invoke("Long")

        assert RunStatus.COMPLETED == result.status
        assert len(renewals) >= 2
        assert renewals == sorted(renewals)
        assert len(set(renewals)) == len(renewals)

    def test_force_reaches_guarded_tasks(self, jobs: Jobs) -> None:
        """A guarded task proceeds when the force threshold covers its changes."""

        def sync(context: TaskContext) -> TaskResult:
            changes = 120
            if context.force is None or context.force < changes:
                reason = "too many changes"
                raise TaskBlocked(reason, details={"changes": changes})
            return TaskResult(summary={"applied": changes})

        runner = Runner(jobs, [JobDefinition("Sync", [Task("sync", sync, guarded=True)])])

        assert RunStatus.BLOCKED == runner.invoke("Sync").status
        forced = runner.invoke("Sync", force=500, exclusive=False)
        assert {"applied": 120} == forced.outcomes["sync"].summary

    def test_outcomes_record_when_and_how_long(self, jobs: Jobs) -> None:
        """Every launched task has its launch, start and end times, duration and attempt."""
        result = Runner(jobs, [JobDefinition("Timed", [Task("a", done)])]).invoke("Timed")
        outcome = result.outcomes["a"]

        assert 1 == outcome.attempts
        assert outcome.launched_at is not None
        assert outcome.started_at is not None
        assert outcome.ended_at is not None
        assert outcome.duration is not None
        assert outcome.started_at <= outcome.ended_at

    def test_a_selection_object_or_keywords_but_not_both(self, jobs: Jobs) -> None:
        """Mixing a Selection with selection keywords is refused before any run starts."""
        runner = Runner(jobs, [JobDefinition("One", [Task("a", done)])])

        with pytest.raises(TypeError):
            runner.invoke("One", selection=Selection(task="a"), contains="a")
        assert "completed" == runner.invoke("One", selection=Selection(task="a")).status

    def test_an_unknown_definition_is_refused(self, jobs: Jobs) -> None:
        """Invoke names the definitions the runner knows."""
        runner = Runner(jobs, [JobDefinition("One", [Task("a", done)])])

        with pytest.raises(UnknownDefinitionError) as caught:
            runner.invoke("Two")

        assert "no job definition 'Two' in this runner; it knows: 'One'" == str(caught.value)

    def test_force_must_be_an_integer(self, jobs: Jobs) -> None:
        """A force threshold that is not an integer is refused before any run starts."""
        runner = Runner(jobs, [JobDefinition("One", [Task("a", done)])])

        with pytest.raises(InvalidJobDataError):
            runner.invoke("One", force="100")  # type: ignore[arg-type]
        assert 0 == len(jobs.find().jobs)

    def test_builder_definitions_run_like_any_other(self, jobs: Jobs) -> None:
        """A definition written with decorators runs its steps."""
        nightly = DefinitionBuilder("Nightly")
        nightly.task(type="export")(done)
        nightly.task(identifier="sync", launch_order=2, parents="done")(done)

        result = Runner(jobs, [nightly.build()]).invoke("Nightly")

        assert {"done": "completed", "sync": "completed"} == result.statuses()
