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
``jobledger_runner``
    Makes a :class:`~jobledger.runner.Runner` of the definitions it is given,
    on ``jobledger_jobs`` and ``jobledger_clock``, with an
    :class:`~jobledger.testing.runs.InlineExecutor` on every side (see
    :func:`~jobledger.testing.runs.inline_runner`; other keywords go to it):
    ``jobledger_runner(definition).invoke("Nightly")`` runs every task in the
    test's thread and returns when the run ends. The runners share one
    sequence of ids, ``drive-0001``, ``drive-0002``, ...: each drive's, and each
    run's that ``invoke`` is not given. Their leases are read on
    ``jobledger_clock``, so :func:`~jobledger.testing.runs.expire_lease` with
    it lets a test take a run over.

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

from typing import TYPE_CHECKING, Any

import pytest

from jobledger import InMemoryRepository, Jobs
from jobledger.testing.fakes import ManualClock, RecordingPublisher, SequentialIds

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import Repository
    from jobledger.runner import JobDefinition, Runner

# The contract suite and the ledger machine assert inside the library; rewriting
# them lets a failure show the values, as in the user's own tests.
pytest.register_assert_rewrite(
    "jobledger.testing.contract", "jobledger.testing.machine", "jobledger.testing.races"
)

__all__ = [
    "jobledger_clock",
    "jobledger_events",
    "jobledger_ids",
    "jobledger_jobs",
    "jobledger_repository",
    "jobledger_runner",
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
    """A ledger on ``jobledger_repository``, wired to the clock, ids and events fixtures.

    Its subscribers are called inline (``delivery="inline"``): a handler has
    seen an event by the time the command that committed it returns.
    """
    return Jobs(
        jobledger_repository,
        publishers=[jobledger_events],
        clock=jobledger_clock,
        id_factory=jobledger_ids,
        delivery="inline",
    )


@pytest.fixture
def jobledger_runner(jobledger_jobs: Jobs, jobledger_clock: ManualClock) -> Callable[..., Runner]:
    """Make runners of the given definitions that run every task inline, on ``jobledger_jobs``.

    Call it with the definitions (and any keyword of
    :func:`~jobledger.testing.runs.inline_runner`); the runners read
    ``jobledger_clock`` and share one sequence of ids for drives and runs.
    """
    from jobledger.testing.runs import inline_runner  # noqa: PLC0415  (loading the plugin must not import the runner)

    drive_ids = SequentialIds("drive")

    def make(*definitions: JobDefinition, **options: Any) -> Runner:  # noqa: ANN401  (the keywords of inline_runner, passed on)
        options.setdefault("clock", jobledger_clock)
        options.setdefault("id_factory", drive_ids)
        return inline_runner(jobledger_jobs, definitions, **options)

    return make
