"""Task error text the ledger would refuse is recorded escaped, and the run still ends."""

from __future__ import annotations

from jobledger import Jobs, Limits
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunStatus,
    RunWarning,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
)

#: A file name as ``surrogateescape`` decodes bytes that are not UTF-8: a lone surrogate.
UNDECODABLE = b"\xff.csv".decode("utf-8", "surrogateescape")


def done(_context: TaskContext) -> None:
    """Return normally: produced output."""


class TestRecordableErrorText:
    """Task error text the ledger would refuse is recorded escaped, and the run ends."""

    def test_a_nul_in_an_error_message_is_recorded_as_an_escape(self, jobs: Jobs) -> None:
        """A NUL in a task's error is written as a visible escape; its sibling's end is kept."""

        def nul(_context: TaskContext) -> None:
            message = "row 3 has a NUL: a\x00b"
            raise ValueError(message)

        runner = Runner(jobs, [JobDefinition("D", [Task("bad", nul), Task("ok", done)])])

        result = runner.invoke("D", run_id="run-1")

        error = result.outcomes["bad"].error
        assert error is not None
        assert "row 3 has a NUL: a\\x00b" == error.message
        assert "\x00" not in error.traceback
        assert RunStatus.FAILED == runner.result("run-1").status
        assert {"bad": "failed", "ok": "completed"} == runner.result("run-1").statuses()

    def test_a_lone_surrogate_in_an_error_message_is_recorded_escaped(self, jobs: Jobs) -> None:
        """A lone surrogate in a task's error is written as its backslash escape."""

        def undecodable(_context: TaskContext) -> None:
            message = "cannot read " + UNDECODABLE
            raise ValueError(message)

        runner = Runner(jobs, [JobDefinition("D", [Task("bad", undecodable)])])

        result = runner.invoke("D")

        error = result.outcomes["bad"].error
        assert error is not None
        assert "cannot read \\udcff.csv" == error.message
        assert RunStatus.FAILED == result.status

    def test_a_warning_with_a_lone_surrogate_is_recorded_escaped(self, jobs: Jobs) -> None:
        """The run's warning list holds the escaped message of a task in warning mode."""

        def undecodable(_context: TaskContext) -> None:
            raise ValueError(UNDECODABLE)

        definition = JobDefinition("D", [Task("bad", undecodable, warning_mode=True)])

        result = Runner(jobs, [definition]).invoke("D")

        assert RunStatus.COMPLETED == result.status
        assert (RunWarning("bad", "ValueError", "\\udcff.csv"),) == result.warnings

    def test_a_blocked_reason_with_a_lone_surrogate_is_recorded_escaped(self, jobs: Jobs) -> None:
        """A guarded task's block reason is written escaped and the run is blocked."""

        def blocks(_context: TaskContext) -> None:
            raise TaskBlocked("threshold for " + UNDECODABLE, details={"deletions": 120})

        definition = JobDefinition("D", [Task("bad", blocks, guarded=True), Task("ok", done)])

        result = Runner(jobs, [definition]).invoke("D")

        blocked = result.outcomes["bad"].blocked
        assert blocked is not None
        assert ("threshold for \\udcff.csv", {"deletions": 120}) == (
            blocked.reason,
            blocked.details,
        )
        assert RunStatus.BLOCKED == result.status

    def test_block_details_that_are_not_json_are_the_tasks_error(self, jobs: Jobs) -> None:
        """TaskBlocked details replaced by a non-JSON value fail the task, not the drive."""

        def blocks(_context: TaskContext) -> None:
            blocked = TaskBlocked("too many deletions")
            blocked.details = {"when": object()}  # type: ignore[assignment]  # not JSON on purpose
            raise blocked

        definition = JobDefinition("D", [Task("bad", blocks, guarded=True), Task("ok", done)])

        result = Runner(jobs, [definition]).invoke("D")

        error = result.outcomes["bad"].error
        assert error is not None
        assert "jobledger.InvalidJobDataError" == error.type
        assert {"bad": "failed", "ok": "completed"} == result.statuses()
        assert RunStatus.FAILED == result.status

    def test_an_end_the_ledger_refuses_is_recorded_as_the_tasks_error(self) -> None:
        """A summary over the ledger's limits fails its task and the run still ends."""
        jobs = Jobs(limits=Limits(max_bytes=20_000))

        def huge(_context: TaskContext) -> TaskResult:
            return TaskResult(summary="x" * 30_000)

        runner = Runner(jobs, [JobDefinition("D", [Task("big", huge), Task("ok", done)])])

        result = runner.invoke("D", run_id="run-1")

        error = result.outcomes["big"].error
        assert error is not None
        assert "jobledger.InvalidJobDataError" == error.type
        assert RunStatus.FAILED == runner.result("run-1").status
        assert {"big": "failed", "ok": "completed"} == runner.result("run-1").statuses()
