"""The service's writer: commands queued together go as one batch, each with its own outcome."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    ANY_ETAG,
    ConcurrencyError,
    InvalidJobDataError,
    Job,
    JobAlreadyExistsError,
    Jobs,
    StartJob,
    StorageTimeoutError,
    UpdateJob,
)
from jobledger.http import _writer
from jobledger.http._writer import ALONE, MAX_BATCH, CommandWriter
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from jobledger import Change, Command, JobEvent


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[SQLiteRepository]:
    """A new SQLite ledger file, with a short busy timeout."""
    opened = SQLiteRepository(str(tmp_path / "jobs.db"), busy_timeout=0.2)
    yield opened
    opened.close()


class RefusingBatches(SQLiteRepository):
    """A SQLite ledger refusing every batch with an error that names no job."""

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Refuse the batch, as a store with a data rule of its own would."""
        raise InvalidJobDataError("state", "", f"{len(changes)} changes too large for this store")


class Gate:
    """A publisher that holds the thread publishing each event until the test lets it go."""

    def __init__(self) -> None:
        """Closed: each event waits for a :meth:`let_one_go`."""
        self.entered = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)

    def publish(self, event: JobEvent) -> None:
        """Say an event is here, then wait to be let go (bounded)."""
        del event
        self.entered.release()
        self.gate.acquire(timeout=10)

    async def reached(self) -> None:
        """Wait (bounded) until an event is being published."""
        assert await asyncio.to_thread(self.entered.acquire, timeout=10)

    def let_one_go(self) -> None:
        """Let one event waiting (or the next) go on."""
        self.gate.release()


def queued_together(jobs: Jobs, commands: list[Command]) -> list[object]:
    """Each command's answer (or error), all queued before the writer's thread starts."""

    async def run() -> list[object]:
        writer = CommandWriter(jobs)
        tasks = [asyncio.ensure_future(writer.handle(command)) for command in commands]
        await asyncio.sleep(0)  # every command is queued
        writer.start()
        try:
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            writer.stop()

    return asyncio.run(run())


def started(jobs: Jobs, count: int) -> list[Job]:
    """``count`` new jobs."""
    return [jobs.start(service="hr", entity="employee", type="sync") for _ in range(count)]


class TestCommandWriter:
    """CommandWriter."""

    def test_commands_queued_together_are_one_batch(
        self, repository: SQLiteRepository, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Eight updates queued together are written as one batch, each answered with its job."""
        jobs = Jobs(repository)
        before = started(jobs, 8)
        commands: list[Command] = [
            UpdateJob(job_id=job.id, etag=job.etag, status=f"step-{n}")
            for n, job in enumerate(before)
        ]
        with caplog.at_level(logging.DEBUG, logger="jobledger.http._writer"):
            answers = queued_together(jobs, commands)
        assert ["a batch of 8 commands"] == [record.getMessage() for record in caplog.records]
        assert [f"step-{n}" for n in range(8)] == [answer.status for answer in answers]  # type: ignore[attr-defined]
        assert [jobs.get(job.id) for job in before] == answers

    def test_the_commands_of_one_turn_of_the_loop_cross_in_one_handoff(
        self, repository: SQLiteRepository
    ) -> None:
        """Three commands handed over in one turn are one item of the thread's queue."""
        jobs = Jobs(repository)
        commands = [StartJob(service="hr", entity="e", type="t") for _ in range(3)]

        async def run() -> tuple[int, list[object]]:
            writer = CommandWriter(jobs)
            tasks = [asyncio.ensure_future(writer.handle(command)) for command in commands]
            await asyncio.sleep(0)  # each task hands its command over
            await asyncio.sleep(0)  # the turn's commands are queued
            queued = writer._queue.qsize()
            writer.start()
            try:
                return queued, await asyncio.gather(*tasks)
            finally:
                writer.stop()

        queued, answers = asyncio.run(run())
        assert (1, [Job] * 3) == (queued, [type(answer) for answer in answers])

    def test_a_refused_command_has_its_error_and_the_others_are_written_as_one_batch(
        self, repository: SQLiteRepository, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One stale ETag among eight: it gets its error, the seven others one batch together."""
        jobs = Jobs(repository)
        before = started(jobs, 8)
        commands: list[Command] = [
            UpdateJob(job_id=job.id, etag="stale" if n == 3 else job.etag, status="next")
            for n, job in enumerate(before)
        ]
        with caplog.at_level(logging.DEBUG, logger="jobledger.http._writer"):
            answers = queued_together(jobs, commands)
        assert ["a batch of 8 commands", "a batch of 7 commands"] == [
            record.getMessage() for record in caplog.records
        ]
        refused = answers.pop(3)
        assert isinstance(refused, ConcurrencyError)
        # Its request sent one command: its error names no place in the writer's batch.
        assert (before[3].id, "stale", before[3].etag, None) == (
            refused.job_id,
            refused.expected_etag,
            refused.current_etag,
            refused.batch_index,
        )
        assert ["next"] * 7 == [answer.status for answer in answers]  # type: ignore[attr-defined]
        assert [jobs.get(job.id) for n, job in enumerate(before) if n != 3] == answers
        assert before[3] == jobs.get(before[3].id)

    def test_a_start_of_a_taken_id_is_refused_without_its_batch(
        self, repository: SQLiteRepository, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A start with a taken job id, refused on saving, costs its batch one more attempt."""
        jobs = Jobs(repository)
        taken = jobs.start(service="hr", entity="employee", type="sync", job_id="taken")
        commands: list[Command] = [
            StartJob(service="hr", entity="employee", type="sync", job_id=job_id)
            for job_id in ("job-1", "taken", "job-2", "job-3")
        ]
        with caplog.at_level(logging.DEBUG, logger="jobledger.http._writer"):
            answers = queued_together(jobs, commands)
        assert ["a batch of 4 commands", "a batch of 3 commands"] == [
            record.getMessage() for record in caplog.records
        ]
        assert [Job, JobAlreadyExistsError, Job, Job] == [type(answer) for answer in answers]
        assert "taken" == answers[1].job_id  # type: ignore[attr-defined]
        assert taken == jobs.get("taken")
        assert 4 == len(jobs.find().jobs)

    def test_refusals_past_the_bound_leave_the_rest_alone(
        self, repository: SQLiteRepository, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With two redos allowed, four stale ETags among five: three get errors, two go alone."""
        monkeypatch.setattr(_writer, "MAX_REDOS", 2)
        jobs = Jobs(repository)
        before = started(jobs, 5)
        commands: list[Command] = [
            UpdateJob(job_id=job.id, etag="stale" if n < 4 else job.etag, status="next")
            for n, job in enumerate(before)
        ]
        answers = queued_together(jobs, commands)
        assert [ConcurrencyError] * 3 == [type(answer) for answer in answers[:3]]
        assert [ALONE, ALONE] == answers[3:]
        assert before == [jobs.get(job.id) for job in before]

    def test_a_refusal_naming_no_command_answers_each_alone(self, tmp_path: Path) -> None:
        """A batch refused without a command named: nothing is written, every command goes alone."""
        repository = RefusingBatches(str(tmp_path / "jobs.db"))
        try:
            jobs = Jobs(repository)
            before = started(jobs, 3)
            commands: list[Command] = [
                UpdateJob(job_id=job.id, etag=job.etag, status="next") for job in before
            ]
            answers = queued_together(jobs, commands)
            assert [ALONE] * 3 == answers
            assert before == [jobs.get(job.id) for job in before]
        finally:
            repository.close()

    def test_a_batch_holds_one_command_per_job(self, repository: SQLiteRepository) -> None:
        """Two updates of one job with the same ETag, queued together: exactly one wins."""
        jobs = Jobs(repository)
        (job,) = started(jobs, 1)
        commands: list[Command] = [
            UpdateJob(job_id=job.id, etag=job.etag, status="first"),
            UpdateJob(job_id=job.id, etag=job.etag, status="second"),
        ]
        first, second = queued_together(jobs, commands)
        assert "first" == first.status  # type: ignore[attr-defined]
        assert isinstance(second, ConcurrencyError)
        assert first.etag == second.current_etag  # type: ignore[attr-defined]

    def test_a_batch_holds_one_command_per_request_id(self, repository: SQLiteRepository) -> None:
        """Two starts with one request id queued together: the second is answered with the first."""
        jobs = Jobs(repository)
        commands: list[Command] = [
            StartJob(service="hr", entity="employee", type="sync", request_id="msg-1"),
            StartJob(service="hr", entity="employee", type="sync", request_id="msg-1"),
        ]
        first, second = queued_together(jobs, commands)
        assert first == second
        assert 1 == len(jobs.find().jobs)

    def test_a_storage_failure_is_every_commands_answer(self, repository: SQLiteRepository) -> None:
        """Another writer holding the file's lock past the busy timeout fails the whole batch."""
        jobs = Jobs(repository)
        before = started(jobs, 3)
        commands: list[Command] = [
            UpdateJob(job_id=job.id, etag=job.etag, status="next") for job in before
        ]
        other = sqlite3.connect(repository.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            answers = queued_together(jobs, commands)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert [StorageTimeoutError] * 3 == [type(answer) for answer in answers]
        assert before == [jobs.get(job.id) for job in before]

    def test_what_the_writer_takes(self, repository: SQLiteRepository) -> None:
        """Only a running writer takes commands, and never one with the wildcard ETag."""
        jobs = Jobs(repository)
        start = StartJob(service="hr", entity="employee", type="sync")
        wildcard = UpdateJob(job_id="job-1", etag=ANY_ETAG, status="next")

        async def takes() -> tuple[bool, bool, bool]:
            writer = CommandWriter(jobs)
            idle = writer.takes(start)
            writer.start()
            try:
                return idle, writer.takes(start), writer.takes(wildcard)
            finally:
                writer.stop()

        assert (False, True, False) == asyncio.run(takes())

    def test_a_command_queued_while_the_writer_stops_is_answered_alone(
        self, repository: SQLiteRepository
    ) -> None:
        """A stopping writer takes nothing; a command queued after its last batch goes alone."""
        gate = Gate()
        jobs = Jobs(repository, publishers=[gate])

        def start(n: int) -> StartJob:
            return StartJob(service="hr", entity="employee", type="sync", job_id=f"job-{n}")

        async def run() -> tuple[bool, tuple[object, object, object]]:
            loop = asyncio.get_running_loop()
            writer = CommandWriter(jobs)
            writer.start()
            first = asyncio.ensure_future(writer.handle(start(1)))
            await gate.reached()  # the thread holds the first batch
            last = asyncio.ensure_future(writer.handle(start(2)))
            await asyncio.sleep(0)  # queued
            stopping = loop.run_in_executor(None, writer.stop)
            for _ in range(1000):  # the stop is queued after the last command
                if 2 == writer._queue.qsize():
                    break
                await asyncio.sleep(0.01)
            gate.let_one_go()
            await gate.reached()  # the thread holds its last batch, the stop taken
            takes = writer.takes(start(3))
            late = asyncio.ensure_future(writer.handle(start(3)))  # as if taken just before
            await asyncio.sleep(0)
            gate.let_one_go()
            await stopping
            answers = await asyncio.wait_for(asyncio.gather(first, last, late), 10)
            return takes, answers

        takes, answers = asyncio.run(run())
        assert False is takes
        assert [Job, Job] == [type(answer) for answer in answers[:2]]
        assert ALONE is answers[2]
        assert ["job-1", "job-2"] == sorted(job.id for job in jobs.find().jobs)

    def test_a_stopped_writer_answers_alone(self, repository: SQLiteRepository) -> None:
        """A command handed to a writer whose thread has ended is answered alone at once."""
        jobs = Jobs(repository)

        async def run() -> object:
            writer = CommandWriter(jobs)
            writer.start()
            writer.stop()
            command = StartJob(service="hr", entity="employee", type="sync")
            return await asyncio.wait_for(writer.handle(command), 10)

        assert ALONE is asyncio.run(run())
        assert () == jobs.find().jobs

    def test_held_commands_and_new_ones_make_no_batch_above_the_most(
        self, repository: SQLiteRepository, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Commands held back for a job and new ones queued together fill at most MAX_BATCH."""
        jobs = Jobs(repository)
        (busy,) = started(jobs, 1)
        others = started(jobs, MAX_BATCH)
        # The first MAX_BATCH commands are all for one job: one goes, the others are held.
        commands: list[Command] = [
            UpdateJob(job_id=busy.id, etag=busy.etag, status=f"by-{n}") for n in range(MAX_BATCH)
        ]
        commands += [UpdateJob(job_id=job.id, etag=job.etag, status="next") for job in others]
        with caplog.at_level(logging.DEBUG, logger="jobledger.http._writer"):
            answers = queued_together(jobs, commands)
        sizes = [int(record.getMessage().split()[3]) for record in caplog.records]
        assert MAX_BATCH >= max(sizes)
        assert "by-0" == answers[0].status  # type: ignore[attr-defined]
        assert [ConcurrencyError] * (MAX_BATCH - 1) == [
            type(answer) for answer in answers[1:MAX_BATCH]
        ]
        assert ["next"] * MAX_BATCH == [answer.status for answer in answers[MAX_BATCH:]]  # type: ignore[attr-defined]
