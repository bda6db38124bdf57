"""pytest fixtures for testing workflows that use jobledger, in-process and deterministic.

The plugin is registered through the ``pytest11`` entry point named
``jobledger``, so its fixtures are there in every test as soon as jobledger is
installed: no ``conftest.py`` line, no import. Every fixture is new for each
test, and every name starts with ``jobledger_`` so it never clashes with yours.

``jobledger_jobs``
    A :class:`~jobledger.Jobs` on ``jobledger_repository``, reading
    ``jobledger_clock``, taking ids from ``jobledger_ids`` and publishing every
    event to ``jobledger_events``.
``jobledger_clock``
    A :class:`~jobledger.testing.ManualClock` at 2024-01-01T00:00:00Z that
    moves only when the test calls ``advance(...)`` or ``set(...)``.
``jobledger_ids``
    A :class:`~jobledger.testing.SequentialIds`: ``id-0001``, ``id-0002``, ...
    A start takes three ids (job id unless given, ETag, event id), every
    change two (ETag, event id).
``jobledger_events``
    A :class:`~jobledger.testing.RecordingPublisher` with every event the
    ledger committed, and assertions on them.
``jobledger_repository``
    The fresh :class:`~jobledger.InMemoryRepository` the ledger keeps its jobs in.

An example test::

    from jobledger import JobCompleted, JobStarted, JobUpdated


    def test_sync_reports_progress(jobledger_jobs, jobledger_clock, jobledger_events):
        job = jobledger_jobs.start(service="hr", entity="employee", type="sync")
        jobledger_clock.advance(minutes=5)
        job = jobledger_jobs.update(job.id, etag=job.etag, state_update={"done": 10})
        job = jobledger_jobs.complete(job.id, etag=job.etag)

        assert "2024-01-01T00:05:00+00:00" == job.updated_at.isoformat()
        jobledger_events.assert_exactly(JobStarted, JobUpdated, JobCompleted, job_id=job.id)

To change a fixture for a folder of tests, override it in that folder's
``conftest.py``; the others pick the override up. For example, a clock that
ticks one second per reading, and jobs kept in SQLite::

    from datetime import timedelta

    import pytest

    from jobledger.sqlite import SQLiteRepository
    from jobledger.testing import ManualClock


    @pytest.fixture
    def jobledger_clock():
        return ManualClock(tick=timedelta(seconds=1))


    @pytest.fixture
    def jobledger_repository(tmp_path):
        with SQLiteRepository(tmp_path / "jobs.db") as repository:
            yield repository

The plugin needs only jobledger and pytest (never hypothesis), and imports
nothing else when pytest loads it. Without the entry point (jobledger not
installed as a distribution) load it by hand with
``pytest -p jobledger.testing.plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import InMemoryRepository, Jobs
from jobledger.testing.fakes import ManualClock, RecordingPublisher, SequentialIds

if TYPE_CHECKING:
    from jobledger import Repository

__all__ = [
    "jobledger_clock",
    "jobledger_events",
    "jobledger_ids",
    "jobledger_jobs",
    "jobledger_repository",
]


@pytest.fixture
def jobledger_clock() -> ManualClock:
    """A manual clock at 2024-01-01T00:00:00Z; it moves only when the test moves it."""
    return ManualClock()


@pytest.fixture
def jobledger_ids() -> SequentialIds:
    """An id factory that hands out ``id-0001``, ``id-0002``, ..."""
    return SequentialIds()


@pytest.fixture
def jobledger_events() -> RecordingPublisher:
    """A publisher that records every event ``jobledger_jobs`` commits."""
    return RecordingPublisher()


@pytest.fixture
def jobledger_repository() -> Repository:
    """A fresh, empty in-memory repository for ``jobledger_jobs``."""
    return InMemoryRepository()


@pytest.fixture
def jobledger_jobs(
    jobledger_repository: Repository,
    jobledger_clock: ManualClock,
    jobledger_ids: SequentialIds,
    jobledger_events: RecordingPublisher,
) -> Jobs:
    """A ledger on ``jobledger_repository``, wired to the clock, ids and events fixtures."""
    return Jobs(
        jobledger_repository,
        publishers=[jobledger_events],
        clock=jobledger_clock,
        id_factory=jobledger_ids,
    )
