"""Review fixes: recordable error text, timeouts from the start, storage retries, failed tasks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    Change,
    InMemoryRepository,
    JobFailed,
    Jobs,
    JobUpdated,
    Limits,
    StorageTimeoutError,
    StorageUnavailableError,
    thaw,
)
from jobledger.runner import (
    DefinitionBuilder,
    JobDefinition,
    Runner,
    RunStatus,
    RunWarning,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    _record,
    request_cancel,
)

if TYPE_CHECKING:
    from jobledger import Job, JobEvent

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


class TestTimeouts:
    """A task's timeout counts from when it starts, and honours warning mode."""

    def test_a_task_queued_behind_another_is_not_timed_while_it_waits(self, jobs: Jobs) -> None:
        """On a one-worker pool, tasks that wait longer than their timeout still complete."""
        nightly = DefinitionBuilder("D")

        @nightly.task(type="export", side="agent")
        def hold(_context: TaskContext) -> None:
            # Holds the only worker for twice the others' timeout.
            time.sleep(0.6)

        for name in ("b", "c"):
            nightly.task(identifier=name, type="export", side="agent", timeout=0.3)(done)

        with ThreadPoolExecutor(max_workers=1) as pool:
            result = Runner(jobs, [nightly.build()], executors={"agent": pool}).invoke("D")

        assert {"hold": "completed", "b": "completed", "c": "completed"} == result.statuses()
        assert RunStatus.COMPLETED == result.status

    def test_a_timed_out_task_records_when_it_started(self, jobs: Jobs) -> None:
        """A task that outlives its timeout fails with its start time recorded."""

        def slow(context: TaskContext) -> None:
            context.wait_for_cancel(timeout=30)

        definition = JobDefinition("D", [Task("slow", slow, timeout=0.05)])

        result = Runner(jobs, [definition]).invoke("D")

        outcome = result.outcomes["slow"]
        assert outcome.error is not None
        assert (TaskStatus.FAILED, "jobledger.runner.TaskTimeoutError") == (
            outcome.status,
            outcome.error.type,
        )
        assert outcome.started_at is not None

    def test_a_timeout_in_warning_mode_is_a_warning(self, jobs: Jobs) -> None:
        """A task in warning mode that times out is recorded as a warning; the run goes on."""

        def slow(context: TaskContext) -> None:
            context.wait_for_cancel(timeout=30)

        definition = JobDefinition(
            "D",
            [
                Task("slow", slow, timeout=0.05, warning_mode=True),
                Task("after", done, launch_order=2),
            ],
        )

        result = Runner(jobs, [definition]).invoke("D")

        assert {"slow": "warning", "after": "completed"} == result.statuses()
        assert RunStatus.COMPLETED == result.status
        assert ("jobledger.runner.TaskTimeoutError",) == tuple(w.type for w in result.warnings)


class FlakyRepository(InMemoryRepository):
    """An in-memory repository whose next saves can be made to time out."""

    def __init__(self) -> None:
        """Start with no failures armed."""
        super().__init__()
        self.failures_left = 0
        self.failed = 0
        self.read_failures_left = 0
        self.failed_reads = 0

    def save(self, change: Change) -> int:
        """Raise StorageTimeoutError while failures are left; save otherwise."""
        if self.failures_left > 0:
            self.failures_left -= 1
            self.failed += 1
            raise StorageTimeoutError("flaky", "the database is locked")
        return super().save(change)

    def get(self, job_id: str) -> Job:
        """Raise StorageUnavailableError while read failures are left; read otherwise."""
        if self.read_failures_left > 0:
            self.read_failures_left -= 1
            self.failed_reads += 1
            raise StorageUnavailableError("flaky", "the server went away")
        return super().get(job_id)


class TestStorageRetries:
    """A run's writes outlast brief storage trouble, and give up after a bound."""

    def test_a_task_end_is_recorded_after_brief_storage_timeouts(self) -> None:
        """Three timed-out saves of a task's end are retried and the run completes."""
        repository = FlakyRepository()

        def arms(_context: TaskContext) -> None:
            repository.failures_left = 3

        runner = Runner(Jobs(repository), [JobDefinition("D", [Task("a", arms)])])

        result = runner.invoke("D", run_id="run-1")

        assert 3 == repository.failed
        assert RunStatus.COMPLETED == runner.result("run-1").status
        assert RunStatus.COMPLETED == result.status

    def test_polls_that_cannot_read_the_run_are_skipped(self) -> None:
        """Reads of the run that fail while a task runs are skipped, and the run completes."""
        repository = FlakyRepository()

        def waits_for_two_failed_polls(_context: TaskContext) -> None:
            repository.read_failures_left = 2
            deadline = time.monotonic() + 30
            while repository.failed_reads < 2 and time.monotonic() < deadline:
                time.sleep(0.01)

        definition = JobDefinition("D", [Task("a", waits_for_two_failed_polls)])
        runner = Runner(Jobs(repository), [definition], poll_interval=0.02)

        result = runner.invoke("D")

        assert (2, RunStatus.COMPLETED) == (repository.failed_reads, result.status)

    def test_a_storage_that_stays_down_is_given_up_on(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Saves that keep timing out are retried, then the error is raised."""
        monkeypatch.setattr(_record, "STORAGE_RETRY_SECONDS", 0.2)
        repository = FlakyRepository()

        def arms(_context: TaskContext) -> None:
            repository.failures_left = 1_000_000

        runner = Runner(Jobs(repository), [JobDefinition("D", [Task("a", arms)])])

        with pytest.raises(StorageTimeoutError):
            runner.invoke("D")

        assert repository.failed > 1


class TestFailedTasksOnCancel:
    """The tasks that failed are recorded whatever the run's end status."""

    def test_a_cancel_after_a_failure_still_records_the_failed_tasks(self, jobs: Jobs) -> None:
        """A run canceled after a task failed ends canceled with failed_tasks written."""
        failed = threading.Event()

        def on_failure(event: JobEvent) -> None:
            patch = getattr(event, "state_update", None)
            entry = thaw(patch).get("tasks", {}).get("broken", {}) if patch is not None else {}
            if entry.get("status") == "failed":
                failed.set()

        jobs.subscribe(on_failure, events=(JobUpdated, JobFailed))

        def broken(_context: TaskContext) -> None:
            message = "row 7 has no employee id"
            raise ValueError(message)

        def cancels(context: TaskContext) -> None:
            assert failed.wait(timeout=30)
            request_cancel(jobs, context.run_id)
            context.wait_for_cancel(timeout=30)

        definition = JobDefinition("D", [Task("broken", broken), Task("cancels", cancels)])

        result = Runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert RunStatus.CANCELED == result.status
        assert ["broken"] == thaw(jobs.get("run-1").state)["failed_tasks"]
