"""How task ends reach the ledger: each as soon as it is seen, together when seen together."""

from __future__ import annotations

import threading

from jobledger import Jobs, JobUpdated, Limits, thaw
from jobledger.runner import JobDefinition, Runner, RunStatus, Task, TaskContext, TaskResult
from jobledger.testing.runs import inline_runner


def done(_context: TaskContext) -> None:
    """Return normally: produced output."""


def ended_in(jobs: Jobs, run_id: str) -> list[list[str]]:
    """Return, per update of the run that records task ends, the tasks whose end it records."""
    found = []
    for update in jobs.updates(run_id):
        tasks = thaw(update.state_update).get("tasks", {}) if update.state_update else {}
        ended = [name for name, entry in tasks.items() if "ended_at" in (entry or {})]
        if ended:
            found.append(ended)
    return found


class TestTaskEndWrites:
    """The writes that record the ends of a step's tasks."""

    def test_ends_taken_in_together_are_written_in_one_update(self, jobs: Jobs) -> None:
        """Three tasks run inline end before the runner looks: one update records all three."""
        definition = JobDefinition(
            "D", [Task("a", done), Task("b", done), Task("c", done, launch_order=2)]
        )

        result = inline_runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert {"a": "completed", "b": "completed", "c": "completed"} == result.statuses()
        assert [["a", "b"], ["c"]] == ended_in(jobs, "run-1")

    def test_an_end_is_written_as_soon_as_it_is_seen(self, jobs: Jobs) -> None:
        """A task's end is in the ledger while its sibling still runs, not at the step's end."""
        recorded = threading.Event()

        def watch(event: object) -> None:
            tasks = (getattr(event, "state_update", None) or {}).get("tasks") or {}
            if (tasks.get("quick") or {}).get("status") == "completed":
                recorded.set()

        jobs.subscribe(watch, events=JobUpdated)

        def waits(_context: TaskContext) -> TaskResult:
            return TaskResult(summary={"saw_sibling_end": recorded.wait(timeout=30)})

        definition = JobDefinition("D", [Task("quick", done), Task("waits", waits)])
        with Runner(jobs, [definition]) as runner:
            result = runner.invoke("D", run_id="run-1")

        assert {"saw_sibling_end": True} == result.outcomes["waits"].summary
        assert [["quick"], ["waits"]] == ended_in(jobs, "run-1")

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

    def test_warnings_ended_together_are_all_recorded_in_order(self, jobs: Jobs) -> None:
        """Two tasks in warning mode that fail in one step both land in the run's warnings."""

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
        assert [["first", "second"], ["after"]] == ended_in(jobs, "run-1")
