"""A run's writes outlast brief storage trouble, and give up after a bound."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    Change,
    InMemoryRepository,
    Jobs,
    StorageTimeoutError,
    StorageUnavailableError,
)
from jobledger.runner import JobDefinition, Runner, RunStatus, Task, TaskContext, _ledger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jobledger import Job


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

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Raise StorageTimeoutError while failures are left; save the batch otherwise."""
        if self.failures_left > 0:
            self.failures_left -= 1
            self.failed += 1
            raise StorageTimeoutError("flaky", "the database is locked")
        return super().save_all(changes)

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
        monkeypatch.setattr(_ledger, "STORAGE_RETRY_SECONDS", 0.2)
        repository = FlakyRepository()

        def arms(_context: TaskContext) -> None:
            repository.failures_left = 1_000_000

        runner = Runner(Jobs(repository), [JobDefinition("D", [Task("a", arms)])])

        with pytest.raises(StorageTimeoutError):
            runner.invoke("D")

        assert repository.failed > 1
