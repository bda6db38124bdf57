"""A repository without save_all still serves Jobs.handle_all, change by change (not atomically)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import (
    ANY_ETAG,
    AtomicBatches,
    CompleteJob,
    ConcurrencyError,
    InMemoryRepository,
    JobAlreadyExistsError,
    JobEvent,
    Jobs,
    Repository,
    StartJob,
    UpdateJob,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jobledger import Change, FeedEntry, Job, JobPage, JobQuery, JobUpdate, RequestRecord


class PlainRepository:
    """A minimal custom repository: the Repository protocol only, kept in another one."""

    def __init__(self) -> None:
        """Keep everything in an in-memory repository, reached only through the protocol."""
        self._inner = InMemoryRepository()
        self.saves = 0
        #: A job id, and what a rival does once, just before the next save of that job.
        self.rival: tuple[str, Callable[[], object]] | None = None

    def get(self, job_id: str) -> Job:
        """The stored job."""
        return self._inner.get(job_id)

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """The job's updates."""
        return self._inner.updates(job_id, after=after)

    def find(self, query: JobQuery) -> JobPage:
        """A page of jobs."""
        return self._inner.find(query)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """A request record."""
        return self._inner.find_request(request_id)

    def save(self, change: Change) -> int:
        """Save one change, counting the saves."""
        if self.rival is not None and self.rival[0] == change.job.id:
            (_, act), self.rival = self.rival, None
            act()
        position = self._inner.save(change)
        self.saves += 1
        return position

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """Feed entries."""
        return self._inner.read_feed(after=after, limit=limit)

    def feed_head(self) -> int:
        """The feed's head."""
        return self._inner.feed_head()

    def load_checkpoint(self, name: str) -> int:
        """A checkpoint."""
        return self._inner.load_checkpoint(name)

    def save_checkpoint(self, name: str, position: int) -> None:
        """Record a checkpoint."""
        self._inner.save_checkpoint(name, position)


def task(job_id: str, request_id: str | None = None) -> StartJob:
    """The start of a task job."""
    return StartJob(
        service="runner", entity="task", type="export", job_id=job_id, request_id=request_id
    )


class TestWithoutSaveAll:
    """Jobs.handle_all over a repository that is no AtomicBatches."""

    def test_the_repository_is_a_repository_but_saves_no_batches(self) -> None:
        """The custom repository keeps the Repository protocol and not the AtomicBatches one."""
        repository = PlainRepository()

        assert (True, False) == (
            isinstance(repository, Repository),
            isinstance(repository, AtomicBatches),
        )

    def test_a_batch_is_saved_change_by_change(self) -> None:
        """A batch lands whole, one save per change, in command order."""
        repository = PlainRepository()
        jobs = Jobs(repository)
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)

        done = jobs.handle_all(
            [task("task-1"), task("task-2"), CompleteJob(job_id="task-1", etag=ANY_ETAG)]
        )

        assert jobs.drain(timeout=30)
        assert 3 == repository.saves
        assert [("task-1", 1), ("task-2", 1), ("task-1", 2)] == [
            (job.id, job.version) for job in done
        ]
        assert ["JobStarted", "JobStarted", "JobCompleted"] == [
            type(event).__name__ for event in seen
        ]

    def test_a_refusal_leaves_the_changes_before_it_saved_and_published(self) -> None:
        """Without atomic batches, changes saved before a refused one stay saved and published."""
        repository = PlainRepository()
        jobs, rival = Jobs(repository), Jobs(repository)
        run = jobs.start(service="runner", entity="run", type="nightly", job_id="run-1")
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)
        # Another process takes the run over between the batch's first and second save.
        repository.rival = ("run-1", lambda: rival.update(run.id, etag=run.etag, status="over"))

        with pytest.raises(ConcurrencyError):
            jobs.handle_all(
                [task("task-1"), UpdateJob(job_id="run-1", etag=run.etag, status="step-1")]
            )

        assert jobs.drain(timeout=30)
        assert ("started", "over") == (jobs.get("task-1").status, jobs.get("run-1").status)
        assert [("task-1", "JobStarted")] == [
            (event.job_id, type(event).__name__) for event in seen
        ]

    def test_a_retry_with_request_ids_answers_the_saved_commands(self) -> None:
        """After a partly saved batch, a retry answers the saved command from its request record."""
        repository = PlainRepository()
        jobs = Jobs(repository)
        jobs.start(service="runner", entity="task", type="export", job_id="taken")
        commands = [task("task-1", request_id="start-task-1"), task("taken")]
        with pytest.raises(JobAlreadyExistsError):
            jobs.handle_all(commands)
        saved = jobs.get("task-1")

        again = jobs.handle_all([task("task-1", request_id="start-task-1"), task("task-2")])

        assert (saved, "task-2") == (again[0], again[1].id)
        assert 3 == repository.feed_head()
