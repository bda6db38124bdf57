"""The service's writer: commands queued together go as one batch, each with its own outcome."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    ANY_ETAG,
    ConcurrencyError,
    Job,
    Jobs,
    StartJob,
    StorageTimeoutError,
    UpdateJob,
)
from jobledger.http._writer import ALONE, CommandWriter
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from jobledger import Command


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[SQLiteRepository]:
    """A new SQLite ledger file, with a short busy timeout."""
    opened = SQLiteRepository(str(tmp_path / "jobs.db"), busy_timeout=0.2)
    yield opened
    opened.close()


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

    def test_a_refused_batch_answers_each_alone_and_writes_nothing(
        self, repository: SQLiteRepository
    ) -> None:
        """One stale ETag among eight: nothing is written and every command is to go alone."""
        jobs = Jobs(repository)
        before = started(jobs, 8)
        commands: list[Command] = [
            UpdateJob(job_id=job.id, etag="stale" if n == 3 else job.etag, status="next")
            for n, job in enumerate(before)
        ]
        answers = queued_together(jobs, commands)
        assert [ALONE] * 8 == answers
        assert before == [jobs.get(job.id) for job in before]

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
