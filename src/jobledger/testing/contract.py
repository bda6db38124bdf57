"""The contract suite: prove that a :class:`~jobledger.Repository` keeps every rule.

Subclass :class:`RepositoryContract` in a test module, name the subclass
``Test...`` and say how to make a fresh, empty repository; pytest then collects
every test of the suite for your repository (subclass
:class:`AtomicBatchesContract` instead when the repository is also an
:class:`~jobledger.AtomicBatches`)::

    from jobledger.testing.contract import RepositoryContract


    class TestMyRepository(RepositoryContract):
        def make_repository(self, directory):
            return MyRepository(directory / "ledger")

The suite checks each method of the protocol and each error it raises, that a
refused save writes nothing, that values round-trip exactly (quotes,
semicolons, comment markers, any Unicode), that hostile input is refused as by
the in-memory ledger, that listings match the in-memory ledger's page for
page, the event feed and checkpoints, durable subscribers, the thread races of
:mod:`jobledger.testing.races`, and the ledger's state machine
(:func:`jobledger.testing.machine.ledger_machine`).

For backends that several processes share, :func:`race_processes`,
:func:`watch_feed_while_writers_race` and :func:`kill_and_resume_subscriber`
run the same checks across processes; each takes a picklable factory (for
example ``functools.partial(SQLiteRepository, path)``) that every process
calls to open its own repository.
"""


# (This module is test code shipped in the package: like tests/**, it states each
# expectation with `assert expected == actual` and literal values.)

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import random
import threading
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from jobledger import (
    ANY_ETAG,
    AtomicBatches,
    CompleteJob,
    ConcurrencyError,
    ConsumerLeases,
    EventFilter,
    InMemoryRepository,
    InvalidJobDataError,
    Job,
    JobAlreadyExistsError,
    JobCompleted,
    JobEvent,
    JobledgerError,
    JobNotFoundError,
    JobQuery,
    Jobs,
    JobStarted,
    JobUpdate,
    JobUpdated,
    Limits,
    ParkedEvent,
    ParkedEvents,
    Repository,
    RequestIdConflictError,
    RequestRecord,
    Retention,
    StartJob,
    StartRecords,
    UpdateJob,
)
from jobledger._application.subscriber import DurableSubscriber
from jobledger._core.decide import decide
from jobledger._core.events import started_job
from jobledger.testing import strategies as jst
from jobledger.testing.machine import ledger_machine
from jobledger.testing.races import (
    TwinKind,
    race_batches,
    race_request_twins,
    race_starts,
    race_updates,
    race_wildcard_updates,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from multiprocessing.connection import Connection
    from pathlib import Path

__all__ = [
    "AtomicBatchesContract",
    "FeedWatch",
    "LedgerAudit",
    "ProcessRace",
    "RepositoryContract",
    "SubscriberRestart",
    "check_ledger_consistent",
    "kill_and_resume_subscriber",
    "kill_writer_at_random",
    "race_processes",
    "watch_feed_while_writers_race",
]

#: Where the suite's clocks start.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

#: Strings that storage adapters have been known to mangle; each must come back as it went in.
TRICKY_STRINGS = (
    "'",
    '"',
    "O'Brien",
    "x'); DROP TABLE jobs; --",
    "a;b;c",
    "-- comment",
    "/* comment */",
    "*/",
    "%s %(name)s ? :name $1 @p",
    "back\\slash \\' \\\"",
    "line\nbreak\r\n\ttab",
    "\u2028\u2029",
    "é e\u0301",
    "\u0130stanbul \u00df",
    "日本語",
    "\U0001f600\U0001f3f3\ufe0f\u200d\U0001f308",
    "\ufeffbom \u202eright-to-left",
    "\ufffe\uffff",
    "\U0010ffff",
    "\x7f\x01",
    " leading and trailing ",
)


def _exact(value: object) -> object:
    """A form of a JSON value that tells ``1``, ``1.0``, ``True`` and ``-0.0`` apart.

    Objects compare without regard to key order: JSON objects are unordered,
    and some databases (PostgreSQL's ``jsonb``) reorder keys.
    """
    if isinstance(value, dict):
        return ("object", sorted((key.encode(), _exact(member)) for key, member in value.items()))
    if isinstance(value, list):
        return ("array", [_exact(item) for item in value])
    if isinstance(value, str):
        return ("string", value.encode("utf-8"))
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def _exact_job(job: Job) -> tuple[object, ...]:
    """Every field of ``job``, JSON exactly (see :func:`_exact`) and strings as UTF-8 bytes."""
    return tuple(
        _exact(value) if isinstance(value, (dict, list, str, float)) else value
        for value in attrs.astuple(job, recurse=False)
    )


class TickingClock:
    """A clock that reads :data:`EPOCH`, then ``step`` later at each reading.

    Args:
        step: How far the clock moves per reading; zero for a clock that
            stands still (jobs that start at the same moment).
    """

    def __init__(self, step: timedelta = timedelta(seconds=1)) -> None:
        self.step = step
        self.readings = 0

    def __call__(self) -> datetime:
        """The next time."""
        now = EPOCH + self.step * self.readings
        self.readings += 1
        return now


class CountingIds:
    """An id factory that hands out ``id-0001``, ``id-0002``, ... (sortable as text)."""

    def __init__(self, prefix: str = "id-") -> None:
        self.prefix = prefix
        self.count = 0

    def __call__(self) -> str:
        """The next id."""
        self.count += 1
        return f"{self.prefix}{self.count:04d}"


def _ledger(repository: Repository, *, step: timedelta = timedelta(seconds=1)) -> Jobs:
    return Jobs(repository, clock=TickingClock(step), id_factory=CountingIds())


def _refusal(action: Callable[[], object]) -> tuple[type[BaseException], tuple[str, ...]] | None:
    """What ``action`` raised, as a comparable value, or ``None`` when it did not raise."""
    try:
        action()
    except InvalidJobDataError as err:
        return (type(err), (err.field, err.path, err.reason))
    except (JobledgerError, TypeError, ValueError) as err:
        return (type(err), (str(err),))
    return None


class RepositoryContract:
    """Every rule a :class:`~jobledger.Repository` keeps, as tests; subclass to run them.

    Override :meth:`make_repository`; override :meth:`dispose_repository` when a
    repository needs more than ``close()`` to release it. Class attributes tune
    the suite: :attr:`machine_settings`, :attr:`property_examples` and
    :attr:`race_threads` and :attr:`race_attempts`.

    The fixtures it defines (``new_repository``, ``repository``, ``jobs``) are
    available to the subclass's own tests too.
    """

    #: Hypothesis settings of the state machine test.
    machine_settings: ClassVar[hypothesis.settings] = hypothesis.settings(
        max_examples=20, stateful_step_count=20, deadline=None
    )
    #: How many examples each property test of the suite tries.
    property_examples: ClassVar[int] = 25
    #: How many threads race in the thread tests.
    race_threads: ClassVar[int] = 8
    #: How many updates each thread sends in the ETag race.
    race_attempts: ClassVar[int] = 40

    def make_repository(self, directory: Path) -> Repository:
        """Return a new, empty repository; ``directory`` is a fresh, empty folder it may use.

        Every call must give a repository that shares nothing with earlier ones.
        """
        raise NotImplementedError

    def dispose_repository(self, repository: Repository) -> None:
        """Release ``repository`` at the end of a test; calls its ``close()`` if it has one."""
        close = getattr(repository, "close", None)
        if callable(close):
            close()

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def new_repository(self, tmp_path: Path) -> Iterator[Callable[[], Repository]]:
        """A factory of fresh repositories, each released when the test ends."""
        made: list[Repository] = []
        numbers = itertools.count(1)

        def make() -> Repository:
            directory = tmp_path / f"repository-{next(numbers)}"
            directory.mkdir()
            repository = self.make_repository(directory)
            made.append(repository)
            return repository

        yield make
        for repository in made:
            self.dispose_repository(repository)

    @pytest.fixture
    def repository(self, new_repository: Callable[[], Repository]) -> Repository:
        """A fresh, empty repository."""
        return new_repository()

    @pytest.fixture
    def jobs(self, repository: Repository) -> Jobs:
        """A ledger over ``repository`` with a ticking clock and counting ids."""
        return _ledger(repository)

    # ----------------------------------------------------------------- protocol

    def test_is_a_repository(self, repository: Repository) -> None:
        """The repository has every method of the Repository protocol."""
        assert isinstance(repository, Repository)

    def test_get_returns_the_job_as_saved(self, jobs: Jobs, repository: Repository) -> None:
        """Repository.get returns the job exactly as the last save left it."""
        started = jobs.start(service="hr", entity="employee", type="sync", state={"done": 0})
        updated = jobs.update(started.id, etag=started.etag, state_update={"done": 1})

        assert _exact_job(updated) == _exact_job(repository.get(started.id))

    def test_get_of_an_unknown_job_raises_job_not_found(self, repository: Repository) -> None:
        """Repository.get raises JobNotFoundError naming the id when no job has it."""
        with pytest.raises(JobNotFoundError) as raised:
            repository.get("no-such-job")

        assert "no-such-job" == raised.value.job_id

    def test_updates_lists_the_log_oldest_first(self, jobs: Jobs, repository: Repository) -> None:
        """Repository.updates returns every update of the job in update id order."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        job = jobs.update(job.id, etag=job.etag, status="exporting")
        job = jobs.update(job.id, etag=job.etag, state_update={"done": 5})
        job = jobs.complete(job.id, etag=job.etag)

        log = repository.updates(job.id)

        assert [1, 2, 3] == [update.update_id for update in log]
        assert ["exporting", "exporting", "completed"] == [update.status for update in log]
        assert {"done": 5} == log[1].state_update

    def test_updates_after_leaves_out_earlier_updates(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """updates(after=n) returns only the updates with ids greater than n."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        for step in range(4):
            job = jobs.update(job.id, etag=job.etag, state_update={"step": step})

        assert [3, 4] == [update.update_id for update in repository.updates(job.id, after=2)]
        assert [] == list(repository.updates(job.id, after=4))

    def test_updates_of_a_job_never_changed_is_empty(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Repository.updates of a job that was only started is empty, not an error."""
        job = jobs.start(service="hr", entity="employee", type="sync")

        assert [] == list(repository.updates(job.id))

    def test_updates_of_an_unknown_job_raises_job_not_found(self, repository: Repository) -> None:
        """Repository.updates raises JobNotFoundError when no job has the id."""
        with pytest.raises(JobNotFoundError):
            repository.updates("no-such-job")

    @pytest.mark.parametrize(
        "key", ["lone \ud800 surrogate", "nul \x00 inside", 123, None], ids=repr
    )
    def test_a_key_no_job_could_have_is_not_found(
        self, repository: Repository, key: object
    ) -> None:
        """A look-up by a value no stored id could have answers "not found", not a driver error."""
        with pytest.raises(JobNotFoundError):
            repository.get(key)  # type: ignore[arg-type]
        with pytest.raises(JobNotFoundError):
            repository.updates(key)  # type: ignore[arg-type]
        assert repository.find_request(key) is None  # type: ignore[arg-type]

    def test_find_request_of_an_unknown_id_is_none(self, repository: Repository) -> None:
        """Repository.find_request returns None for a request id never recorded."""
        assert repository.find_request("no-such-request") is None

    def test_find_request_returns_the_record_saved_with_the_change(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Repository.find_request returns the command's record, answering with the job it left."""
        job = jobs.start(service="hr", entity="employee", type="sync", request_id="start-1")
        changed = jobs.update(job.id, etag=job.etag, status="busy", request_id="update-1")

        record = repository.find_request("update-1")

        assert record is not None
        assert "update-1" == record.request_id
        assert _exact_job(changed) == _exact_job(record.job)
        started = repository.find_request("start-1")
        assert started is not None
        assert _exact_job(job) == _exact_job(started.job)

    def test_save_returns_consecutive_feed_positions(self, repository: Repository) -> None:
        """Each save returns the next feed position, starting at 1."""
        changes = _starts(3)

        assert [1, 2, 3] == [repository.save(change) for change in changes]

    def test_save_of_a_start_for_an_existing_job_raises_and_writes_nothing(
        self, repository: Repository
    ) -> None:
        """Saving a start for a taken job id raises JobAlreadyExistsError and changes nothing."""
        first, second = _starts(2, job_id="job-1")
        repository.save(first)

        with pytest.raises(JobAlreadyExistsError) as raised:
            repository.save(second)

        assert "job-1" == raised.value.job_id
        assert _exact_job(first.job) == _exact_job(repository.get("job-1"))
        assert 1 == repository.feed_head()

    def test_save_of_a_change_for_an_unknown_job_raises_job_not_found(
        self, repository: Repository
    ) -> None:
        """Saving a change for a job that does not exist raises JobNotFoundError."""
        (start,) = _starts(1, job_id="job-1")
        change = _update(start.job, status="busy")

        with pytest.raises(JobNotFoundError):
            repository.save(change)

        assert 0 == repository.feed_head()

    def test_save_with_a_stale_etag_raises_concurrency_error_and_writes_nothing(
        self, repository: Repository
    ) -> None:
        """A save expecting an old ETag raises ConcurrencyError with the current one."""
        (start,) = _starts(1, job_id="job-1")
        repository.save(start)
        winner = _update(start.job, status="first", etag="etag-winner")
        loser = _update(start.job, status="second", etag="etag-loser")
        repository.save(winner)

        with pytest.raises(ConcurrencyError) as raised:
            repository.save(loser)

        assert ("job-1", start.job.etag, "etag-winner") == (
            raised.value.job_id,
            raised.value.expected_etag,
            raised.value.current_etag,
        )
        assert "first" == repository.get("job-1").status
        assert [1] == [update.update_id for update in repository.updates("job-1")]
        assert 2 == repository.feed_head()

    def test_a_save_decided_on_an_earlier_version_is_a_conflict_even_if_its_etag_repeats(
        self, repository: Repository
    ) -> None:
        """A change decided on version 1 is refused when version 3 repeats version 1's ETag."""
        (start,) = _starts(1, job_id="job-1")
        repository.save(start)
        second = _update(start.job, status="second", etag="etag-2")
        repository.save(second)
        repository.save(_update(second.job, status="third", etag=start.job.etag))
        behind = _update(start.job, status="behind", etag="etag-behind")

        with pytest.raises(ConcurrencyError):
            repository.save(behind)

        assert ("third", 3) == (repository.get("job-1").status, repository.get("job-1").version)
        assert 3 == repository.feed_head()

    def test_a_stale_save_records_neither_its_request_nor_its_event(
        self, repository: Repository
    ) -> None:
        """A save refused for a stale ETag leaves its request id free and the feed as it was."""
        (start,) = _starts(1, job_id="job-1")
        repository.save(start)
        repository.save(_update(start.job, status="first", etag="etag-winner"))
        loser = _update(start.job, status="second", etag="etag-loser", request_id="request-9")

        with pytest.raises(ConcurrencyError):
            repository.save(loser)

        assert None is repository.find_request("request-9")
        assert 2 == repository.feed_head()
        assert [1] == [update.update_id for update in repository.updates("job-1")]

    def test_save_with_a_recorded_request_id_raises_and_writes_nothing(
        self, repository: Repository
    ) -> None:
        """A save whose request id is taken raises RequestIdConflictError; its job is untouched."""
        (start,) = _starts(1, job_id="job-1", request_id="request-1")
        repository.save(start)
        change = _update(start.job, status="busy", request_id="request-1")

        with pytest.raises(RequestIdConflictError) as raised:
            repository.save(change)

        assert "request-1" == raised.value.request_id
        assert _exact_job(start.job) == _exact_job(repository.get("job-1"))
        assert [] == list(repository.updates("job-1"))
        assert 1 == repository.feed_head()
        record = repository.find_request("request-1")
        assert record is not None
        assert start.job.etag == record.job.etag

    def test_a_start_refused_for_its_request_id_leaves_no_job(self, repository: Repository) -> None:
        """A start whose request id is recorded raises RequestIdConflictError and creates no job."""
        first, second = _starts(2, request_id="request-1")
        repository.save(first)

        with pytest.raises(RequestIdConflictError):
            repository.save(second)

        with pytest.raises(JobNotFoundError):
            repository.get(second.job.id)
        assert 1 == repository.feed_head()

    def test_values_read_back_are_read_only(self, jobs: Jobs, repository: Repository) -> None:
        """The JSON of a job read back refuses every change."""
        job = jobs.start(service="hr", entity="employee", type="sync", state={"items": [1]})

        stored = repository.get(job.id)

        with pytest.raises(TypeError):
            stored.state["items"] = []
        with pytest.raises(TypeError):
            stored.state["items"].append(2)  # type: ignore[union-attr]
        assert {"items": [1]} == repository.get(job.id).state

    # ---------------------------------------------------------------- listing

    def test_find_in_an_empty_repository_is_an_empty_last_page(
        self, repository: Repository
    ) -> None:
        """Repository.find on an empty repository returns no jobs and no cursor."""
        page = repository.find(JobQuery())

        assert ((), None) == (tuple(page.jobs), page.next_cursor)

    def test_find_agrees_with_the_in_memory_ledger_page_for_page(
        self, repository: Repository
    ) -> None:
        """Every filter, page by page, lists exactly what the in-memory ledger lists."""
        reference = InMemoryRepository()
        for target in (repository, reference):
            _populate(target)
        queries = [
            JobQuery(),
            JobQuery(limit=1),
            JobQuery(limit=4),
            JobQuery(service="hr", limit=3),
            JobQuery(service=["hr", "crm"], entity="employee"),
            JobQuery(type="sync", limit=2),
            JobQuery(status="exporting"),
            JobQuery(status=["completed", "failed"], limit=2),
            JobQuery(phase="active", limit=2),
            JobQuery(phase=["completed", "canceled"]),
            JobQuery(created_after=EPOCH + timedelta(seconds=3), limit=3),
            JobQuery(created_before=EPOCH + timedelta(seconds=5)),
            JobQuery(
                created_after=EPOCH + timedelta(seconds=2),
                created_before=EPOCH + timedelta(seconds=6),
                service="hr",
                limit=2,
            ),
            JobQuery(service="nobody"),
            JobQuery(service=TRICKY_STRINGS[3]),
            JobQuery(service=[]),
            JobQuery(phase=[], limit=1),
        ]
        for query in queries:
            expected = _all_pages(reference, query)
            assert expected == _all_pages(repository, query), query

    def test_find_pages_stay_stable_while_jobs_are_added(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """A cursor continues after its page however many newer jobs were started meanwhile."""
        for n in range(5):
            jobs.start(service="hr", entity="employee", type="sync", job_id=f"job-{n}")
        first = repository.find(JobQuery(limit=2))
        for n in range(5, 8):
            jobs.start(service="hr", entity="employee", type="sync", job_id=f"job-{n}")

        second = repository.find(JobQuery(limit=2, cursor=first.next_cursor))

        assert ["job-4", "job-3"] == [job.id for job in first.jobs]
        assert ["job-2", "job-1"] == [job.id for job in second.jobs]

    def test_find_with_a_cursor_it_did_not_make_raises_invalid_job_data(
        self, repository: Repository
    ) -> None:
        """Repository.find refuses a cursor that no ledger made with InvalidJobDataError."""
        with pytest.raises(InvalidJobDataError) as raised:
            repository.find(JobQuery(cursor="'; DROP TABLE jobs; --"))

        assert "cursor" == raised.value.field

    # --------------------------------------------------------------------- feed

    def test_the_feed_of_an_empty_repository_is_empty(self, repository: Repository) -> None:
        """A new repository's feed has head 0 and no entries."""
        assert (0, ()) == (repository.feed_head(), tuple(repository.read_feed()))

    def test_the_feed_holds_every_event_at_consecutive_positions(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Every change's event is in the feed, at positions 1, 2, 3, ... in commit order."""
        published: list[JobEvent] = []
        jobs.subscribe(published.append)
        first = jobs.start(service="hr", entity="employee", type="sync")
        second = jobs.start(service="crm", entity="account", type="import")
        jobs.update(first.id, etag=first.etag, status="busy")
        jobs.cancel(second.id, etag=second.etag)
        assert jobs.drain(timeout=30)

        feed = repository.read_feed()

        assert [1, 2, 3, 4] == [entry.position for entry in feed]
        assert published == [entry.event for entry in feed]
        assert 4 == repository.feed_head()

    def test_read_feed_starts_after_any_position_and_stops_at_the_limit(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """read_feed(after=a, limit=n) returns the n entries after position a."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        for step in range(5):
            job = jobs.update(job.id, etag=job.etag, state_update={"step": step})

        assert [3, 4] == [entry.position for entry in repository.read_feed(after=2, limit=2)]
        assert [6] == [entry.position for entry in repository.read_feed(after=5)]
        assert [] == list(repository.read_feed(after=6))
        assert [] == list(repository.read_feed(after=0, limit=0))

    def test_the_feed_matches_the_update_logs_one_to_one(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Each start has one JobStarted and each update one change event with its id and ETag."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        job = jobs.update(job.id, etag=job.etag, state_update={"a": 1})
        job = jobs.complete(job.id, etag=job.etag, state_update={"a": None})

        events = [entry.event for entry in repository.read_feed()]
        log = repository.updates(job.id)

        assert [JobStarted, JobUpdated, JobCompleted] == [type(event) for event in events]
        assert [(u.update_id, u.etag, u.state_update) for u in log] == [
            (e.update_id, e.etag, e.state_update)
            for e in events[1:]
            if isinstance(e, (JobUpdated, JobCompleted))
        ]

    # -------------------------------------------------------------- checkpoints

    def test_the_checkpoint_of_a_new_name_is_zero(self, repository: Repository) -> None:
        """Repository.load_checkpoint returns 0 for a subscription never checkpointed."""
        assert 0 == repository.load_checkpoint("new")

    def test_checkpoints_are_kept_per_name_and_overwritten(self, repository: Repository) -> None:
        """Repository.save_checkpoint records a position per name; saving again replaces it."""
        repository.save_checkpoint("audit", 5)
        repository.save_checkpoint("mail", 2)
        repository.save_checkpoint("audit", 9)

        assert (9, 2) == (repository.load_checkpoint("audit"), repository.load_checkpoint("mail"))

    def test_checkpoint_names_are_kept_exactly(self, repository: Repository) -> None:
        """Names with quotes, comment markers or any Unicode name their own checkpoints."""
        for position, name in enumerate(TRICKY_STRINGS, start=1):
            repository.save_checkpoint(name, position)

        assert list(range(1, len(TRICKY_STRINGS) + 1)) == [
            repository.load_checkpoint(name) for name in TRICKY_STRINGS
        ]

    def test_the_start_record_is_the_jobs_start_event(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """StartRecords.started returns the job's JobStarted as the feed holds it."""
        job = jobs.start(service="hr", entity="employee", type="sync", state={"n": 0})
        jobs.update(job.id, etag=job.etag, state_update={"n": 1})
        jobs.start(service="hr", entity="employee", type="sync")

        assert isinstance(repository, StartRecords)
        assert repository.read_feed()[0].event == repository.started(job.id)
        for missing in ("nope", "nul\x00", "\ud800"):
            with pytest.raises(JobNotFoundError):
                repository.started(missing)

    def test_a_job_as_of_any_version_is_rebuilt_as_it_was(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Jobs.get(version=N) equals the job each command returned, field for field."""
        seen = [jobs.start(service="hr", entity="employee", type="sync", state={"a": {"b": 1}})]
        patches: list[dict[str, Any]] = [{"a": {"c": 2}}, {"a": None, "d": [1]}, {"e": "x"}]
        for number, patch in enumerate(patches):
            seen.append(
                jobs.update(
                    seen[-1].id,
                    etag=seen[-1].etag,
                    status=f"step-{number}",
                    state_update=patch,
                    display_name=f"name-{number}" if number != 1 else None,
                )
            )
        seen.append(jobs.fail(seen[-1].id, etag=seen[-1].etag, description="broke"))

        rebuilt = [jobs.get(seen[0].id, version=v) for v in range(1, len(seen) + 1)]
        assert [_exact_job(job) for job in seen] == [_exact_job(job) for job in rebuilt]
        assert repository.get(seen[0].id) == rebuilt[-1]

    def test_actors_read_back_from_every_read(self, jobs: Jobs, repository: Repository) -> None:
        """Who started and who changed a job reads back from get, updates, the feed and as-of."""
        starter = "svc 'O''Brien'; --"
        seen = [jobs.start(service="hr", entity="e", type="t", actor=starter, request_id="r-1")]
        for actor in ("alice", None, "Zoë"):
            seen.append(jobs.update(seen[-1].id, etag=seen[-1].etag, status="x", actor=actor))
        seen.append(jobs.complete(seen[-1].id, etag=seen[-1].etag, actor="bob"))
        job_id = seen[0].id
        record = repository.find_request("r-1")

        assert [starter] * 5 == [job.started_by for job in seen]
        assert starter == repository.get(job_id).started_by
        assert ["alice", None, "Zoë", "bob"] == [u.actor for u in repository.updates(job_id)]
        assert [starter, "alice", None, "Zoë", "bob"] == [
            entry.event.actor for entry in repository.read_feed()
        ]
        assert isinstance(repository, StartRecords)
        assert starter == repository.started(job_id).actor
        assert [_exact_job(job) for job in seen] == [
            _exact_job(jobs.get(job_id, version=version)) for version in range(1, 6)
        ]
        assert record is not None
        assert starter == record.job.started_by

    def test_a_request_retried_by_another_actor_is_another_command(self, jobs: Jobs) -> None:
        """A request id sent again by the same actor is answered; by another, it conflicts."""
        job = jobs.start(service="hr", entity="e", type="t", actor="alice", request_id="r-1")
        update = functools.partial(jobs.update, job.id, etag=job.etag, request_id="r-2")
        changed = update(status="x", actor="alice")

        assert job == jobs.start(
            service="hr", entity="e", type="t", actor="alice", request_id="r-1"
        )
        assert changed == update(status="x", actor="alice")
        for actor in ("bob", None):
            with pytest.raises(RequestIdConflictError):
                jobs.start(service="hr", entity="e", type="t", actor=actor, request_id="r-1")
            with pytest.raises(RequestIdConflictError):
                update(status="x", actor=actor)

    def test_parked_events_are_kept_by_name_and_position(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """ParkedEvents.park keeps a record per (name, position), replaced on re-parking."""
        assert isinstance(repository, ParkedEvents)
        job = jobs.start(service="hr", entity="employee", type="sync")
        jobs.update(job.id, etag=job.etag, status="x")
        feed = repository.read_feed()
        for entry in reversed(feed):
            repository.park(
                ParkedEvent(
                    name="mail", position=entry.position, event=entry.event, error="E", attempts=1
                )
            )
        repository.park(
            ParkedEvent(
                name="mail", position=2, event=feed[1].event, error="F", attempts=3, retry=True
            )
        )
        repository.park(
            ParkedEvent(name="audit", position=1, event=feed[0].event, error="G", attempts=2)
        )

        mail = repository.parked_events("mail")
        assert [(1, "E", 1, False), (2, "F", 3, True)] == [
            (parked.position, parked.error, parked.attempts, parked.retry) for parked in mail
        ]
        assert [entry.event for entry in feed] == [parked.event for parked in mail]
        repository.unpark("mail", 1)
        repository.unpark("mail", 9)
        assert [2] == [parked.position for parked in repository.parked_events("mail")]
        assert [1] == [parked.position for parked in repository.parked_events("audit")]
        assert () == tuple(repository.parked_events("nobody"))

    def test_a_poison_event_is_parked_and_the_subscriber_goes_on(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """A handler failing max_attempts times parks the event; a retry that works forgets it."""
        first = jobs.start(service="hr", entity="employee", type="sync", job_id="poison")
        jobs.start(service="hr", entity="employee", type="sync", job_id="fine")
        handled: list[str] = []
        healed = False

        def handler(event: JobEvent) -> None:
            if event.job_id == "poison" and not healed:
                message = "cannot handle poison"
                raise ValueError(message)
            handled.append(event.job_id)

        subscriber = DurableSubscriber(repository, "mail", handler, max_attempts=3)
        with pytest.raises(ValueError, match="poison"):
            subscriber.run_once()
        with pytest.raises(ValueError, match="poison"):
            subscriber.run_once()
        assert 2 == subscriber.run_once()
        assert (["fine"], 2) == (handled, repository.load_checkpoint("mail"))
        (parked,) = jobs.parked_events("mail")
        assert (1, first.id, "ValueError: cannot handle poison", 3, False) == (
            parked.position,
            parked.event.job_id,
            parked.error,
            parked.attempts,
            parked.retry,
        )

        assert 1 == jobs.retry_parked("mail")
        assert 0 == subscriber.run_once()
        assert ["fine"] == handled
        (again,) = jobs.parked_events("mail")
        assert (4, False) == (again.attempts, again.retry)

        healed = True
        assert 1 == jobs.retry_parked("mail", position=1)
        subscriber.run_once()
        assert (["fine", "poison"], ()) == (handled, tuple(jobs.parked_events("mail")))

    def test_a_consumer_lease_has_one_holder_until_released_or_expired(
        self, repository: Repository
    ) -> None:
        """claim_consumer grants a name to one owner; others get it on release or expiry."""
        assert isinstance(repository, ConsumerLeases)
        now = datetime(2026, 1, 1, tzinfo=UTC)
        later = now + timedelta(seconds=10)
        claim = functools.partial(repository.claim_consumer, "mail")
        assert "a" == claim("a", now=now, until=later)
        assert "a" == claim("b", now=now + timedelta(seconds=5), until=later)
        assert "a" == claim("a", now=now + timedelta(seconds=5), until=later + timedelta(10))
        assert "a" == claim("b", now=later, until=later + timedelta(seconds=10))
        assert "b" == claim("b", now=later + timedelta(days=11), until=later + timedelta(days=12))
        repository.release_consumer("mail", "a")
        assert "b" == claim("c", now=later + timedelta(days=11), until=later + timedelta(days=12))
        repository.release_consumer("mail", "b")
        assert "c" == claim("c", now=later + timedelta(days=11), until=later + timedelta(days=12))
        assert "x" == repository.claim_consumer("audit", "x", now=now, until=later)

    def test_purge_deletes_ended_jobs_before_the_cut_except_held_ones(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Ended, unheld jobs before the cut go with their updates and requests; events stay."""
        assert isinstance(repository, Retention)
        done = jobs.start(service="hr", entity="employee", type="sync", request_id="r-1")
        done = jobs.complete(done.id, etag=done.etag, request_id="r-2")
        other = jobs.start(service="crm", entity="account", type="sync")
        other = jobs.fail(other.id, etag=other.etag)
        held = jobs.start(service="hr", entity="employee", type="sync")
        held = jobs.cancel(held.id, etag=held.etag)
        active = jobs.start(service="hr", entity="employee", type="sync")
        jobs.hold(held.id, reason="legal hold 42")
        cut = max(job.updated_at for job in (done, other, held, active)) + timedelta(seconds=1)
        feed = [entry.event for entry in repository.read_feed()]

        assert 0 == jobs.purge(finished_before=done.updated_at)
        assert (1, 1) == (
            jobs.purge(finished_before=cut, service="hr", dry_run=True),
            jobs.purge(finished_before=cut, service="hr"),
        )
        with pytest.raises(JobNotFoundError):
            repository.get(done.id)
        with pytest.raises(JobNotFoundError):
            repository.updates(done.id)
        assert (None, None) == (repository.find_request("r-1"), repository.find_request("r-2"))
        assert ("legal hold 42", held) == (repository.hold_reason(held.id), repository.get(held.id))
        assert feed == [entry.event for entry in repository.read_feed()]

        jobs.release(held.id)
        assert (2, None) == (jobs.purge(finished_before=cut), repository.hold_reason(held.id))
        assert [active.id] == [job.id for job in repository.find(JobQuery()).jobs]
        with pytest.raises(JobNotFoundError):
            jobs.hold("no-such-job", reason="x")

    def test_bad_reads_and_checkpoints_are_refused_as_in_memory(
        self, repository: Repository
    ) -> None:
        """Bad filters, subscriber names, positions and read bounds get memory's typed answer."""
        reference = InMemoryRepository()
        cases: list[tuple[str, Callable[[Repository], object]]] = [
            ("find NUL", lambda r: r.find(JobQuery(service="hr\x00"))),
            ("find surrogate", lambda r: r.find(JobQuery(entity="\ud800"))),
            ("find status NUL", lambda r: r.find(JobQuery(status=["ok", "\x00"]))),
            ("load NUL name", lambda r: r.load_checkpoint("a\x00")),
            ("load surrogate name", lambda r: r.load_checkpoint("\udc00")),
            ("load empty name", lambda r: r.load_checkpoint("")),
            ("load int name", lambda r: r.load_checkpoint(3)),  # type: ignore[arg-type]
            ("save long name", lambda r: r.save_checkpoint("n" * 201, 1)),
            ("save negative", lambda r: r.save_checkpoint("n", -1)),
            ("save text", lambda r: r.save_checkpoint("n", "3")),  # type: ignore[arg-type]
            ("save float", lambda r: r.save_checkpoint("n", 3.0)),  # type: ignore[arg-type]
            ("save bool", lambda r: r.save_checkpoint("n", True)),  # noqa: FBT003
            ("save 2**63", lambda r: r.save_checkpoint("n", 2**63)),
            ("feed after text", lambda r: r.read_feed(after="1")),  # type: ignore[arg-type]
            ("feed limit float", lambda r: r.read_feed(limit=1.5)),  # type: ignore[arg-type]
            ("updates after text", lambda r: r.updates("x", after="1")),  # type: ignore[arg-type]
        ]
        for case, action in cases:
            expected = _refusal(functools.partial(action, reference))
            actual = _refusal(functools.partial(action, repository))
            assert expected is not None, case
            assert InvalidJobDataError is expected[0], case
            assert expected == actual, case
        assert 0 == repository.load_checkpoint("n")

    def test_reads_past_any_position_answer_as_in_memory(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Reading after 2**70, before 0 or with an enormous limit answers, never overflows."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        jobs.update(job.id, etag=job.etag, status="x")
        repository.save_checkpoint("far", 2**63 - 1)

        assert [] == list(repository.read_feed(after=2**70))
        assert [1, 2] == [entry.position for entry in repository.read_feed(after=-5)]
        assert [1, 2] == [entry.position for entry in repository.read_feed(limit=2**70)]
        assert [] == list(repository.read_feed(limit=-1))
        assert [] == list(repository.updates(job.id, after=2**70))
        assert [1] == [update.update_id for update in repository.updates(job.id, after=-3)]
        assert 2**63 - 1 == repository.load_checkpoint("far")

    # -------------------------------------------------------------- round trips

    def test_tricky_strings_round_trip_byte_for_byte(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Quotes, semicolons, comment markers and any Unicode come back exactly, everywhere."""
        for text in TRICKY_STRINGS:
            name = text if text.isprintable() and text.strip() == text else repr(text)
            job = jobs.start(
                service=name,
                entity=name,
                type=name,
                display_name=text,
                description=text,
                input={text: [text, {text: text}]},
                state={text: text, "n": [1, 1.0, -0.0, True, None, 2**53 - 1, 1e-300]},
                job_id=f"job {name}",
                request_id=f"request {name}",
            )
            changed = jobs.update(
                job.id,
                etag=job.etag,
                status=name,
                display_name=text[::-1],
                description=text * 2,
                state_update={text: {"nested": text}},
                request_id=f"update {name}",
            )
            assert _exact_job(job) == _exact_job(_as_started(repository, job.id))
            assert _exact_job(changed) == _exact_job(repository.get(job.id))
            (update,) = repository.updates(job.id)
            assert _exact(update.state_update) == _exact({text: {"nested": text}})
            assert (text[::-1], text * 2) == (update.display_name, update.description)
            record = repository.find_request(f"update {name}")
            assert record is not None
            assert _exact_job(changed) == _exact_job(record.job)
            page = repository.find(JobQuery(service=name, status=name))
            assert [job.id] == [found.id for found in page.jobs]
        published = [entry.event for entry in repository.read_feed()]
        assert 2 * len(TRICKY_STRINGS) == len(published)

    def test_any_accepted_value_round_trips_exactly(
        self, new_repository: Callable[[], Repository]
    ) -> None:
        """Any job the ledger accepts reads back exactly as it was started and changed."""
        repository = new_repository()
        jobs = _ledger(repository)

        @hypothesis.settings(
            max_examples=self.property_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            start=jst.start_commands(job_id=None, request_id=None),
            patch=jst.merge_patches(),
        )
        def round_trip(start: StartJob, patch: dict[str, Any]) -> None:
            job = jobs.handle(start)
            (entry,) = repository.read_feed(after=repository.feed_head() - 1)
            assert isinstance(entry.event, JobStarted)
            assert (_exact(job.input), _exact(job.state)) == (
                _exact(entry.event.input),
                _exact(entry.event.state),
            )
            assert _exact_job(job) == _exact_job(repository.get(job.id))
            changed = jobs.update(job.id, etag=job.etag, state_update=patch)
            assert _exact_job(changed) == _exact_job(repository.get(job.id))
            (update,) = repository.updates(job.id)
            expected = UpdateJob(job_id=job.id, etag=job.etag, state_update=patch).state_update
            assert _exact(expected) == _exact(update.state_update)

        round_trip()

    # ------------------------------------------------------------- hostile input

    def test_hostile_json_is_refused_as_in_memory_and_nothing_is_written(
        self, new_repository: Callable[[], Repository]
    ) -> None:
        """JSON the ledger must refuse raises the same error as in memory; nothing is written."""
        repository = new_repository()
        jobs = _ledger(repository)
        reference = _ledger(InMemoryRepository())
        job = jobs.start(service="hr", entity="employee", type="sync", job_id="job-1")
        reference.start(service="hr", entity="employee", type="sync", job_id="job-1")

        @hypothesis.settings(max_examples=self.property_examples, deadline=None)
        @given(value=jst.hostile_json(), field=st.sampled_from(["input", "state", "patch"]))
        def refused(value: object, field: str) -> None:
            outcomes = []
            for ledger in (jobs, reference):
                if field == "patch":
                    send = functools.partial(
                        ledger.update, "job-1", etag=job.etag, state_update=value
                    )
                else:
                    arguments: dict[str, Any] = {field: value}
                    send = functools.partial(
                        ledger.start, service="hr", entity="employee", type="sync", **arguments
                    )
                outcomes.append(_refusal(send))
            expected, actual = outcomes[1], outcomes[0]
            assert expected is not None
            assert expected == actual
            assert 1 == repository.feed_head()
            assert _exact_job(job) == _exact_job(repository.get("job-1"))

        refused()

    def test_hostile_fields_are_refused_as_in_memory_and_nothing_is_written(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Bad names, texts, statuses and sizes raise what memory raises; nothing is written."""
        reference = _ledger(InMemoryRepository())
        small = Limits(max_bytes=64, max_depth=3, max_name_length=10, max_text_length=20)
        limited = Jobs(
            repository, clock=TickingClock(), id_factory=CountingIds("lim-"), limits=small
        )
        limited_reference = Jobs(
            InMemoryRepository(), clock=TickingClock(), id_factory=CountingIds("lim-"), limits=small
        )
        cases: list[dict[str, Any]] = [
            {"service": ""},
            {"service": "nul\x00"},
            {"service": "tab\there"},
            {"service": "x" * 201},
            {"entity": "\ud800"},
            {"type": 42},
            {"display_name": "nul\x00"},
            {"description": "x" * 10_001},
            {"state": ["not", "an", "object"]},
            {"job_id": "new\nline"},
            {"request_id": ""},
            {"actor": ""},
            {"actor": "nul\x00"},
            {"actor": "bell\x07"},
            {"actor": "\ud800"},
            {"actor": "x" * 201},
            {"actor": 42},
            {"actor": " alice"},
        ]
        for case in cases:
            arguments: dict[str, Any] = {
                "service": "hr",
                "entity": "employee",
                "type": "sync",
                **case,
            }
            expected = _refusal(functools.partial(reference.start, **arguments))
            actual = _refusal(functools.partial(jobs.start, **arguments))
            assert expected is not None, case
            assert expected == actual, case
        too_big: list[dict[str, Any]] = [
            {"service": "a-long-service"},
            {"actor": "a-long-actor"},
            {"state": {"deep": {"deeper": {"deepest": [1]}}}},
            {"input": ["x" * 100]},
        ]
        for case in too_big:
            arguments = {"service": "hr", "entity": "employee", "type": "sync", **case}
            expected = _refusal(functools.partial(limited_reference.start, **arguments))
            actual = _refusal(functools.partial(limited.start, **arguments))
            assert expected is not None, case
            assert expected == actual, case
        job = jobs.start(service="hr", entity="employee", type="sync", job_id="job-1")
        bad_changes: list[dict[str, Any]] = [
            {"status": "completed"},
            {"status": ""},
            {"state_update": [1]},
            {"display_name": "\udfff"},
            {"actor": ""},
            {"actor": "tab\there"},
        ]
        for case in bad_changes:
            actual = _refusal(functools.partial(jobs.update, "job-1", etag=job.etag, **case))
            assert actual is not None, case
            assert InvalidJobDataError is actual[0], case
        assert 1 == repository.feed_head()
        assert [job.id] == [found.id for found in repository.find(JobQuery()).jobs]
        assert _exact_job(job) == _exact_job(repository.get("job-1"))

    # ----------------------------------------------------------------- races

    def test_threads_racing_on_etags_lose_and_double_nothing(
        self, new_repository: Callable[[], Repository]
    ) -> None:
        """Threads racing on ETags: one winner per ETag, every acknowledged update logged once."""
        race = race_updates(
            new_repository,
            threads=self.race_threads,
            jobs=3,
            attempts_per_thread=self.race_attempts,
        )

        assert self.race_threads * self.race_attempts == race.acknowledged + race.conflicts

    def test_threads_starting_one_job_id_have_exactly_one_winner(
        self, new_repository: Callable[[], Repository]
    ) -> None:
        """Of threads starting the same job id at once, one succeeds; the rest are refused."""
        race = race_starts(new_repository, threads=self.race_threads, rounds=5)

        assert (5, 5 * (self.race_threads - 1)) == (race.started, race.refused)

    @pytest.mark.parametrize("kind", ["start", "start with job id", "update"])
    def test_twin_commands_with_one_request_id_are_written_once(
        self, new_repository: Callable[[], Repository], kind: TwinKind
    ) -> None:
        """One command sent by many threads with one request id is written once, answered to all."""
        race = race_request_twins(new_repository, kind=kind, threads=self.race_threads, rounds=3)

        assert 3 * self.race_threads == race.answered

    def test_threads_updating_with_the_wildcard_etag_all_land(
        self, new_repository: Callable[[], Repository]
    ) -> None:
        """Wildcard updates racing on one job all land, each exactly once, none lost."""
        race = race_wildcard_updates(
            new_repository, threads=self.race_threads, updates_per_thread=10
        )

        assert self.race_threads * 10 == race.acknowledged

    # -------------------------------------------------------- durable subscribers

    def test_a_durable_subscriber_delivers_in_feed_order_and_resumes(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """A durable subscriber delivers filtered events in order and a new one resumes after it."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        other = jobs.start(service="crm", entity="account", type="import")
        job = jobs.update(job.id, etag=job.etag, status="busy")
        seen: list[JobEvent] = []
        first = DurableSubscriber(repository, "audit", seen.append, service="hr", batch_size=2)

        while first.run_once():
            pass
        jobs.complete(job.id, etag=job.etag)
        jobs.cancel(other.id, etag=other.etag)
        second = DurableSubscriber(repository, "audit", seen.append, EventFilter(service="hr"))
        lag = second.lag
        second.run_once()

        assert (2, 5, 0) == (lag, repository.load_checkpoint("audit"), second.lag)
        assert ["started", "busy", "completed"] == [event.status for event in seen]

    # --------------------------------------------------------- the state machine

    def test_the_ledger_state_machine_holds(self, new_repository: Callable[[], Repository]) -> None:
        """The ledger's rules hold over this repository under random command sequences."""
        machine = ledger_machine(
            new_repository, settings=self.machine_settings, dispose=self.dispose_repository
        )
        _run_machine(machine, settings=self.machine_settings)


class AtomicBatchesContract(RepositoryContract):
    """The :class:`RepositoryContract`, and every rule of :class:`~jobledger.AtomicBatches`.

    Subclass it instead of :class:`RepositoryContract` for a repository that
    has ``save_all``.
    """

    def test_is_atomic_batches(self, repository: Repository) -> None:
        """The repository has save_all, the method of the AtomicBatches protocol."""
        assert isinstance(repository, AtomicBatches)

    def test_save_all_returns_consecutive_positions_in_change_order(
        self, repository: Repository
    ) -> None:
        """save_all returns the next feed positions, one per change, in order."""
        first, *rest = _starts(4)
        repository.save(first)

        positions = _batches(repository).save_all(rest)

        assert [2, 3, 4] == list(positions)
        assert [change.job.id for change in rest] == [
            entry.event.job_id for entry in repository.read_feed(after=1)
        ]

    def test_save_all_of_no_change_saves_nothing(self, repository: Repository) -> None:
        """An empty batch returns no position and writes nothing."""
        assert [] == list(_batches(repository).save_all([]))
        assert 0 == repository.feed_head()

    def test_save_all_chains_changes_of_one_job(self, repository: Repository) -> None:
        """A batch may start a job, then change it twice: each change follows the one before."""
        (start,) = _starts(1, job_id="job-1")
        first = _update(start.job, status="first", etag="etag-2")
        second = _update(first.job, status="second", etag="etag-3")

        positions = _batches(repository).save_all([start, first, second])

        assert [1, 2, 3] == list(positions)
        assert _exact_job(second.job) == _exact_job(repository.get("job-1"))
        assert [(1, "first"), (2, "second")] == [
            (update.update_id, update.status) for update in repository.updates("job-1")
        ]

    def test_a_stale_change_in_the_middle_saves_nothing_of_the_batch(
        self, repository: Repository
    ) -> None:
        """A batch whose middle change is stale raises ConcurrencyError and leaves no trace."""
        (start,) = _starts(1, job_id="job-1")
        repository.save(start)
        repository.save(_update(start.job, status="winner", etag="etag-winner"))
        other, late = _starts(2)
        other = _renamed(other, "job-other")
        before = _update(start.job, status="stale", etag="etag-stale", request_id="request-1")
        late = _with_request(_renamed(late, "job-late"), "request-2")

        with pytest.raises(ConcurrencyError) as raised:
            _batches(repository).save_all([other, before, late])

        assert ("job-1", start.job.etag, "etag-winner") == (
            raised.value.job_id,
            raised.value.expected_etag,
            raised.value.current_etag,
        )
        assert 2 == repository.feed_head()
        assert 2 == len(repository.read_feed())
        for job_id in ("job-other", "job-late"):
            with pytest.raises(JobNotFoundError):
                repository.get(job_id)
        assert (None, None) == (
            repository.find_request("request-1"),
            repository.find_request("request-2"),
        )
        assert "winner" == repository.get("job-1").status
        assert [1] == [update.update_id for update in repository.updates("job-1")]

    def test_a_start_of_a_taken_id_at_the_end_saves_nothing_of_the_batch(
        self, repository: Repository
    ) -> None:
        """A batch ending with a start of a taken id raises JobAlreadyExistsError, saves nothing."""
        (taken,) = _starts(1, job_id="job-1")
        repository.save(taken)
        fresh = _renamed(_starts(1)[0], "job-2")
        change = _update(taken.job, status="busy")
        again = _renamed(_starts(1)[0], "job-1")

        with pytest.raises(JobAlreadyExistsError) as raised:
            _batches(repository).save_all([fresh, change, again])

        assert "job-1" == raised.value.job_id
        assert 1 == repository.feed_head()
        assert _exact_job(taken.job) == _exact_job(repository.get("job-1"))
        with pytest.raises(JobNotFoundError):
            repository.get("job-2")

    def test_a_change_of_an_unknown_job_saves_nothing_of_the_batch(
        self, repository: Repository
    ) -> None:
        """A batch with a change of a job that does not exist raises JobNotFoundError."""
        (ghost,) = _starts(1, job_id="job-ghost")
        fresh = _renamed(_starts(1)[0], "job-2")

        with pytest.raises(JobNotFoundError) as raised:
            _batches(repository).save_all([fresh, _update(ghost.job, status="busy")])

        assert "job-ghost" == raised.value.job_id
        assert 0 == repository.feed_head()

    def test_a_request_id_used_twice_in_a_batch_saves_nothing(self, repository: Repository) -> None:
        """Two changes of one batch with one request id raise RequestIdConflictError."""
        first, second = (
            _with_request(_renamed(change, f"job-{n}"), "request-1")
            for n, change in enumerate(_starts(2))
        )

        with pytest.raises(RequestIdConflictError) as raised:
            _batches(repository).save_all([first, second])

        assert "request-1" == raised.value.request_id
        assert (0, None) == (repository.feed_head(), repository.find_request("request-1"))

    def test_a_recorded_request_id_saves_nothing_of_the_batch(self, repository: Repository) -> None:
        """A batch with a change whose request id is recorded raises RequestIdConflictError."""
        (recorded,) = _starts(1, job_id="job-1", request_id="request-1")
        repository.save(recorded)
        fresh = _renamed(_starts(1)[0], "job-2")
        change = _update(recorded.job, status="busy", request_id="request-1")

        with pytest.raises(RequestIdConflictError):
            _batches(repository).save_all([fresh, change])

        assert 1 == repository.feed_head()
        assert [] == list(repository.updates("job-1"))
        with pytest.raises(JobNotFoundError):
            repository.get("job-2")

    def test_threads_racing_batches_on_one_job_have_one_winner_a_round(
        self, new_repository: Callable[[], Repository]
    ) -> None:
        """Of batches racing on one job's ETag, one is saved a round; nothing of the others is."""
        race = race_batches(new_repository, threads=self.race_threads, rounds=5)

        assert (5, 5 * (self.race_threads - 1)) == (race.won, race.refused)

    def test_handle_all_saves_a_step_of_task_starts_and_its_run_update_at_once(
        self, jobs: Jobs, repository: Repository
    ) -> None:
        """Jobs.handle_all here: a run's update and its task starts and end commit together."""
        run = jobs.start(service="runner", entity="run", type="nightly", job_id="run-1")
        commands: list[Any] = [
            StartJob(service="runner", entity="task", type="export", job_id=f"task-{n}")
            for n in range(20)
        ]
        commands.append(UpdateJob(job_id="run-1", etag=run.etag, status="step-1"))
        commands.append(CompleteJob(job_id="task-0", etag=ANY_ETAG))

        done = jobs.handle_all(commands)

        assert ["started"] * 20 + ["step-1", "completed"] == [job.status for job in done]
        assert 23 == repository.feed_head()
        assert _exact_job(done[-1]) == _exact_job(repository.get("task-0"))


def _batches(repository: Repository) -> AtomicBatches:
    """``repository`` as the AtomicBatches it must be."""
    assert isinstance(repository, AtomicBatches)
    return repository


def _renamed(change: Any, job_id: str) -> Any:  # noqa: ANN401  (a Change)
    """The start ``change`` for the job id ``job_id`` instead."""
    return attrs.evolve(
        change,
        job=attrs.evolve(change.job, id=job_id),
        event=attrs.evolve(change.event, job_id=job_id),
    )


def _with_request(change: Any, request_id: str) -> Any:  # noqa: ANN401  (a Change)
    """``change`` recording ``request_id``."""
    return attrs.evolve(change, request=RequestRecord(request_id, "fingerprint", change.job))


#: Hypothesis's runner of a state machine, typed for mypy --strict.
_run_machine: Callable[..., None] = run_state_machine_as_test


def _as_started(repository: Repository, job_id: str) -> Job:
    """The job as its start left it, rebuilt from its JobStarted event in the feed."""
    for entry in repository.read_feed(limit=10**6):
        event = entry.event
        if isinstance(event, JobStarted) and event.job_id == job_id:
            return started_job(event)
    raise JobNotFoundError(job_id)


def _starts(count: int, *, job_id: str | None = None, request_id: str | None = None) -> list[Any]:
    """``count`` start changes, decided with a ticking clock (and one job id, if given)."""
    clock, ids = TickingClock(), CountingIds()
    return [
        decide(
            None,
            StartJob(
                service="hr",
                entity="employee",
                type="sync",
                job_id=job_id,
                request_id=request_id,
            ),
            now=clock(),
            new_id=ids,
            limits=Limits(),
        )
        for _ in range(count)
    ]


def _update(
    job: Job, *, status: str, etag: str | None = None, request_id: str | None = None
) -> Any:  # noqa: ANN401  (a Change)
    """The change that updates ``job`` to ``status``, giving the job ``etag`` if set."""
    ids = iter([etag or "etag-next", "event-next"])
    return decide(
        job,
        UpdateJob(job_id=job.id, etag=job.etag, status=status, request_id=request_id),
        now=job.updated_at + timedelta(seconds=1),
        new_id=lambda: next(ids),
        limits=Limits(),
    )


def _populate(repository: Repository) -> None:
    """The same mix of jobs in every repository: ties in creation time, every phase."""
    jobs = Jobs(
        repository,
        clock=_HalfTicks(),
        id_factory=CountingIds(),
    )
    services = ["hr", "crm", "hr", TRICKY_STRINGS[3], "hr", "crm"]
    for n in range(18):
        job = jobs.start(
            service=services[n % len(services)],
            entity="employee" if n % 3 else "account",
            type="sync" if n % 2 else "import",
            job_id=f"job-{(n * 7) % 18:02d}",
        )
        if n % 5 == 1:
            jobs.update(job.id, etag=job.etag, status="exporting")
        elif n % 5 == 2:
            jobs.complete(job.id, etag=job.etag)
        elif n % 5 == 3:
            jobs.fail(job.id, etag=job.etag)
        elif n % 5 == 4:
            jobs.cancel(job.id, etag=job.etag)


class _HalfTicks:
    """A clock that stands still for three readings at a time: jobs started at the same time."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        now = EPOCH + timedelta(seconds=self.readings // 3, microseconds=self.readings % 2)
        self.readings += 1
        return now


def _all_pages(repository: Repository, query: JobQuery) -> list[list[tuple[object, ...]]]:
    """Every page of ``query``, following cursors, as exact job tuples."""
    pages = []
    while True:
        page = repository.find(query)
        pages.append([_exact_job(job) for job in page.jobs])
        if page.next_cursor is None:
            return pages
        query = attrs.evolve(query, cursor=page.next_cursor)


# ===================================================================== processes


def _context(name: str) -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context(name)


def _report_failure(conn: Connection) -> None:
    conn.send(("error", traceback.format_exc()))


def _receive(conn: Connection, what: str, timeout: float) -> Any:  # noqa: ANN401  (a child's report)
    if not conn.poll(timeout):
        msg = f"{what} reported nothing within {timeout:g} s"
        raise AssertionError(msg)
    kind, payload = conn.recv()
    if kind == "error":
        msg = f"{what} failed:\n{payload}"
        raise AssertionError(msg)
    return payload


@attrs.frozen
class ProcessRace:
    """What :func:`race_processes` saw: every acknowledged update and every conflict.

    Attributes:
        acknowledged: ``(job_id, update_id, tag)`` of every update a process
            was told succeeded; the tag names the process and its attempt.
        conflicts: How many updates were refused with ConcurrencyError.
        winners: For each lock-step round, how many processes won it.
        logs: Each raced job's update log afterwards.
        feed_positions: Every position in the feed afterwards.
        batches: Whether the processes wrote batches (see :func:`race_processes`).
    """

    acknowledged: tuple[tuple[str, int, str], ...]
    conflicts: int
    winners: tuple[int, ...]
    logs: Mapping[str, tuple[JobUpdate, ...]]
    feed_positions: tuple[int, ...]
    batches: bool = False

    def check(self) -> None:
        """Assert that no acknowledged update was lost or doubled and every rule held.

        Raises:
            AssertionError: update ids are not consecutive, an acknowledged
                update is missing or logged twice or under another id, a
                round had other than one winner, the feed has a gap, or there
                were no conflicts at all (nothing was proved).
        """
        logged: list[tuple[str, int, str]] = []
        for job_id, log in self.logs.items():
            ids = [update.update_id for update in log]
            assert list(range(1, len(ids) + 1)) == ids, f"update ids of {job_id}: {ids}"
            for update in log:
                assert update.state_update is not None
                logged.append((job_id, update.update_id, str(update.state_update["tag"])))
        assert len(logged) == len(set(logged)), "an update was logged twice"
        assert sorted(self.acknowledged) == sorted(logged), "acknowledged updates != logged"
        assert all(count == 1 for count in self.winners), f"winners per round: {self.winners}"
        assert list(range(1, len(self.feed_positions) + 1)) == list(self.feed_positions)
        # Each batch saved starts a job of its own and updates a raced job twice.
        events_per_update = 1.5 if self.batches else 1
        expected_events = len(self.logs) + events_per_update * len(self.acknowledged)
        assert expected_events == len(self.feed_positions), "events of refused writes were saved"
        assert self.conflicts > 0, "no conflict happened: the race proved nothing"


def _raced_write(
    jobs: Jobs, job_id: str, etag: str, tag: str, *, batches: bool
) -> list[tuple[str, int, str]]:
    """Update ``job_id`` with ``etag``, tagged ``tag``; what to acknowledge.

    With ``batches``, one batch: the start of a job of its own (named by the
    tag, so a retry of a refused batch would find a leaked start), then two
    updates of ``job_id``, both with ``etag``.

    Raises:
        ConcurrencyError: ``etag`` is stale.
    """
    if not batches:
        done = jobs.update(job_id, etag=etag, state_update={"tag": tag})
        return [(job_id, done.version - 1, tag)]
    *_, done = jobs.handle_all(
        [
            StartJob(service="race", entity="side", type="process", job_id=f"side:{tag}"),
            UpdateJob(job_id=job_id, etag=etag, state_update={"tag": tag}),
            UpdateJob(job_id=job_id, etag=etag, state_update={"tag": f"{tag}/2"}),
        ]
    )
    return [(job_id, done.version - 2, tag), (job_id, done.version - 1, f"{tag}/2")]


def _race_worker(
    *,
    factory: Callable[[], Repository],
    job_ids: Sequence[str],
    writer: int,
    rounds: int,
    free_updates: int,
    barrier: threading.Barrier,
    conn: Connection,
    batches: bool,
) -> None:
    try:
        jobs = Jobs(factory())
        acknowledged: list[tuple[str, int, str]] = []
        won: list[int] = []
        conflicts = 0
        for round_number in range(rounds):
            job_id = job_ids[round_number % len(job_ids)]
            job = jobs.get(job_id)
            barrier.wait(60)
            tag = f"{writer}:round-{round_number}"
            try:
                acknowledged.extend(_raced_write(jobs, job_id, job.etag, tag, batches=batches))
            except ConcurrencyError:
                conflicts += 1
            else:
                won.append(round_number)
            barrier.wait(60)
        for step in range(free_updates):
            job_id = job_ids[(step + writer) % len(job_ids)]
            tag = f"{writer}:free-{step}"
            while True:
                job = jobs.get(job_id)
                try:
                    got = _raced_write(jobs, job_id, job.etag, tag, batches=batches)
                except ConcurrencyError:
                    conflicts += 1
                    continue
                acknowledged.extend(got)
                break
        conn.send(("done", (acknowledged, won, conflicts)))
    except BaseException:
        _report_failure(conn)
        raise
    finally:
        conn.close()


def race_processes(
    factory: Callable[[], Repository],
    *,
    processes: int = 4,
    jobs: int = 2,
    rounds: int = 12,
    free_updates: int = 15,
    context: str = "spawn",
    timeout: float = 120.0,
    batches: bool = False,
) -> ProcessRace:
    """Race ``processes`` processes on shared ETags; return what happened (call ``check()``).

    The jobs are started first. Then, for each of ``rounds`` lock-step rounds,
    every process reads the same job, waits for the others, and updates it
    with the ETag it read: exactly one must win. Then each process makes
    ``free_updates`` more updates, re-reading and retrying on every conflict.
    With ``batches``, each of those writes is a batch
    (:meth:`~jobledger.Jobs.handle_all`) that starts a job of its own and
    updates the raced job twice with the ETag it read: all or nothing of it
    must be saved.

    Args:
        factory: A picklable callable that opens the shared repository; each
            process calls it once.
        processes: How many processes race.
        jobs: How many jobs they share.
        rounds: How many lock-step rounds.
        free_updates: How many updates each process makes freely afterwards.
        context: The :mod:`multiprocessing` start method (``"spawn"`` or
            ``"forkserver"``; not ``"fork"``, which copies open connections).
        timeout: Seconds to wait for each process's report.
        batches: Race with batches instead of single updates.
    """
    repository = factory()
    ledger = Jobs(repository)
    job_ids = [ledger.start(service="race", entity="etag", type="process").id for _ in range(jobs)]
    ctx = _context(context)
    barrier = ctx.Barrier(processes)
    children = []
    for writer in range(processes):
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(  # type: ignore[attr-defined]
            target=_race_worker,
            kwargs={
                "factory": factory,
                "job_ids": job_ids,
                "writer": writer,
                "rounds": rounds,
                "free_updates": free_updates,
                "barrier": barrier,
                "conn": sender,
                "batches": batches,
            },
            daemon=True,
        )
        child.start()
        sender.close()
        children.append((child, receiver))
    acknowledged: list[tuple[str, int, str]] = []
    winners = [0] * rounds
    conflicts = 0
    try:
        for writer, (_child, receiver) in enumerate(children):
            got, won, lost = _receive(receiver, f"racing process {writer}", timeout)
            acknowledged.extend(tuple(entry) for entry in got)
            for round_number in won:
                winners[round_number] += 1
            conflicts += lost
    finally:
        for child, receiver in children:
            receiver.close()
            child.join(timeout)
            if child.is_alive():
                child.kill()
    return ProcessRace(
        acknowledged=tuple(acknowledged),
        conflicts=conflicts,
        winners=tuple(winners),
        logs={job_id: tuple(repository.updates(job_id)) for job_id in job_ids},
        feed_positions=tuple(entry.position for entry in _whole_feed(repository)),
        batches=batches,
    )


def _whole_feed(repository: Repository) -> list[Any]:
    entries: list[Any] = []
    while True:
        batch = repository.read_feed(after=len(entries), limit=1000)
        if not batch:
            return entries
        entries.extend(batch)


@attrs.frozen
class FeedWatch:
    """What :func:`watch_feed_while_writers_race` saw.

    Attributes:
        delivered: The event ids the subscriber was handed, in order.
        feed: The event ids in the feed afterwards, in position order.
        delivered_during_race: How many of the writers' events the subscriber
            had been handed before the last writer finished.
        conflicts: How many updates the writers had refused.
    """

    delivered: tuple[str, ...]
    feed: tuple[str, ...]
    delivered_during_race: int
    conflicts: int

    def check(self) -> None:
        """Assert that the subscriber saw every event once, in feed order, while writers ran.

        Raises:
            AssertionError: an event was missed, repeated or out of order, the
                subscriber read nothing while the writers were running, or
                the writers never conflicted.
        """
        assert list(self.feed) == list(self.delivered), "delivered events != the feed"
        assert self.delivered_during_race > 0, "the subscriber read nothing during the race"
        assert self.conflicts > 0, "the writers never conflicted: the race proved nothing"


def _feed_writer(
    *,
    factory: Callable[[], Repository],
    job_ids: Sequence[str],
    writer: int,
    changes: int,
    barrier: threading.Barrier,
    conn: Connection,
) -> None:
    try:
        jobs = Jobs(factory())
        conflicts = 0
        for step in range(changes):
            if step % 5 == 0:
                jobs.start(service="feed", entity=f"writer-{writer}", type="own")
                continue
            job_id = job_ids[step % len(job_ids)]
            job = jobs.get(job_id)
            # Every writer holds the same ETag here, so all but one conflict.
            barrier.wait(60)
            while True:
                try:
                    jobs.update(job_id, etag=job.etag, state_update={"tag": f"{writer}:{step}"})
                except ConcurrencyError:
                    conflicts += 1
                    job = jobs.get(job_id)
                    continue
                break
        conn.send(("done", conflicts))
    except BaseException:
        _report_failure(conn)
        raise
    finally:
        conn.close()


def watch_feed_while_writers_race(
    factory: Callable[[], Repository],
    *,
    writers: int = 2,
    changes: int = 60,
    context: str = "spawn",
    timeout: float = 120.0,
) -> FeedWatch:
    """Run a durable subscriber in this process while writer processes race; call ``check()``.

    Each writer makes ``changes`` changes: new jobs of its own and updates of
    two shared jobs, which all writers read and then update at once (so all
    but one conflict and retry). The subscriber reads the feed as it grows,
    until the writers are done and it has caught up.
    """
    repository = factory()
    ledger = Jobs(repository)
    job_ids = [ledger.start(service="feed", entity="shared", type="race").id for _ in range(2)]
    delivered: list[str] = []
    subscriber = DurableSubscriber(
        repository,
        "watch-feed",
        lambda event: delivered.append(event.event_id),
        batch_size=7,
        poll_interval=0.01,
    )
    ctx = _context(context)
    barrier = ctx.Barrier(writers)
    children = []
    subscriber.start()
    try:
        for writer in range(writers):
            receiver, sender = ctx.Pipe(duplex=False)
            child = ctx.Process(  # type: ignore[attr-defined]
                target=_feed_writer,
                kwargs={
                    "factory": factory,
                    "job_ids": job_ids,
                    "writer": writer,
                    "changes": changes,
                    "barrier": barrier,
                    "conn": sender,
                },
                daemon=True,
            )
            child.start()
            sender.close()
            children.append((child, receiver))
        conflicts = 0
        for writer, (child, receiver) in enumerate(children):
            conflicts += _receive(receiver, f"writer process {writer}", timeout)
            receiver.close()
            child.join(timeout)
        # Only the writers' events count: the shared jobs' starts were there before.
        during = max(len(delivered) - len(job_ids), 0)
        deadline = time.monotonic() + timeout
        while subscriber.lag and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        subscriber.stop(timeout)
        for child, _receiver in children:
            if child.is_alive():
                child.kill()
    if subscriber.last_error is not None:
        raise subscriber.last_error
    feed = tuple(entry.event.event_id for entry in _whole_feed(repository))
    return FeedWatch(tuple(delivered), feed, during, conflicts)


@attrs.frozen
class SubscriberRestart:
    """What :func:`kill_and_resume_subscriber` saw.

    Attributes:
        feed: The event ids in the feed, in position order.
        before_kill: The event ids the killed subscriber handled, in order.
        after_restart: The event ids the restarted subscriber handled, in order.
    """

    feed: tuple[str, ...]
    before_kill: tuple[str, ...]
    after_restart: tuple[str, ...]

    def check(self) -> None:
        """Assert that the restarted subscriber resumed from a checkpoint and missed nothing.

        Raises:
            AssertionError: either run delivered out of feed order, the restart
                began from the very start or after an event the killed one never
                handled, or some event was never delivered.
        """
        handled = len(self.before_kill)
        assert list(self.feed[:handled]) == list(self.before_kill), "killed run out of order"
        assert self.after_restart, "the restarted subscriber delivered nothing"
        resumed_at = self.feed.index(self.after_restart[0])
        assert 0 < resumed_at <= handled, f"resumed at {resumed_at}, had handled {handled}"
        assert list(self.feed[resumed_at:]) == list(self.after_restart), "restart out of order"


def _blocking_subscriber(
    factory: Callable[[], Repository], name: str, record: str, block_after: int, batch_size: int
) -> None:
    handled = itertools.count(1)
    descriptor = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def handle(event: JobEvent) -> None:
        os.write(descriptor, f"{event.event_id}\n".encode())
        if next(handled) >= block_after:
            threading.Event().wait()  # hang here until killed, mid-batch

    subscriber = DurableSubscriber(factory(), name, handle, batch_size=batch_size)
    subscriber.run_forever(threading.Event())


def kill_and_resume_subscriber(
    factory: Callable[[], Repository],
    record: Path,
    *,
    events: int = 60,
    kill_after: int = 25,
    batch_size: int = 10,
    context: str = "spawn",
    timeout: float = 60.0,
) -> SubscriberRestart:
    """Kill a durable subscriber's process with SIGKILL mid-batch, restart it; call ``check()``.

    The feed gets ``events`` events first. A child process runs a durable
    subscriber that writes each event id to ``record`` and hangs in its handler
    at event ``kill_after`` (mid-batch, its checkpoint behind it); the process
    is then killed, and a new subscriber of the same name finishes the feed in
    this process.
    """
    repository = factory()
    ledger = Jobs(repository)
    job = ledger.start(service="kill", entity="subscriber", type="restart")
    for step in range(events - 1):
        job = ledger.update(job.id, etag=job.etag, state_update={"step": step})
    name = "killed-subscriber"
    ctx = _context(context)
    child = ctx.Process(  # type: ignore[attr-defined]
        target=_blocking_subscriber,
        args=(factory, name, os.fspath(record), kill_after, batch_size),
        daemon=True,
    )
    child.start()
    try:
        deadline = time.monotonic() + timeout
        while _recorded(record).__len__() < kill_after:
            if not child.is_alive() or time.monotonic() > deadline:
                msg = f"the subscriber process stopped or stalled (exit code {child.exitcode})"
                raise AssertionError(msg)
            time.sleep(0.01)
    finally:
        child.kill()
        child.join(timeout)
    before = _recorded(record)
    after: list[str] = []
    restarted = DurableSubscriber(
        repository, name, lambda event: after.append(event.event_id), batch_size=batch_size
    )
    while restarted.run_once():
        pass
    feed = tuple(entry.event.event_id for entry in _whole_feed(repository))
    return SubscriberRestart(feed, tuple(before), tuple(after))


def _recorded(record: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        text = record.read_text(encoding="utf-8")
        # A line the kill cut short has no newline yet; it was never handled in full.
        return text.split("\n")[:-1]
    return []


def _context_of(context: str | multiprocessing.context.BaseContext) -> Any:  # noqa: ANN401  (a multiprocessing context)
    return _context(context) if isinstance(context, str) else context


def _crash_writer(factory: Callable[[], Repository], seed: int, conn: Connection) -> None:
    """Write changes forever, reporting each one after its save returned (so committed)."""
    try:
        rng = random.Random(seed)  # noqa: S311  (a reproducible mix of changes, not crypto)
        repository = factory()
        jobs = Jobs(repository)
        active = [job.id for job in repository.find(JobQuery(phase="active", limit=50)).jobs]
        conn.send(("ready", None))
        while True:
            if not active or rng.random() < 0.2:
                job = jobs.start(
                    service="crash",
                    entity=f"seed-{seed}",
                    type="write",
                    state={"blob": "x" * rng.randrange(4000)},
                )
                active.append(job.id)
            else:
                job_id = rng.choice(active)
                job = jobs.get(job_id)
                patch = {"n": job.version, "blob": "é" * rng.randrange(4000)}
                if rng.random() < 0.1:
                    job = jobs.complete(job_id, etag=job.etag, state_update=patch)
                    active.remove(job_id)
                else:
                    job = jobs.update(job_id, etag=job.etag, status="writing", state_update=patch)
            conn.send(("committed", (job.id, job.version, job.etag)))
    except BaseException:
        _report_failure(conn)
        raise


def kill_writer_at_random(
    factory: Callable[[], Repository],
    *,
    seed: int,
    max_delay: float = 0.2,
    context: str | multiprocessing.context.BaseContext = "spawn",
    timeout: float = 60.0,
) -> tuple[tuple[str, int, str], ...]:
    """Run a writer process and SIGKILL it at a random moment; return what it reported committed.

    The writer starts jobs and updates and completes them, with states of a few
    kilobytes so that transactions span several pages, and reports
    ``(job_id, version, etag)`` after each save returns. It is killed
    between 0 and ``max_delay`` seconds after it is ready (``seed`` picks the
    moment and the writes). Check the repository afterwards with
    :func:`check_ledger_consistent`.
    """
    ctx = _context_of(context)
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_crash_writer, args=(factory, seed, sender), daemon=True)
    child.start()
    sender.close()
    reported: list[tuple[str, int, str]] = []
    try:
        _receive(receiver, "the writer process", timeout)
        time.sleep(random.Random(seed).uniform(0, max_delay))  # noqa: S311  (not crypto)
    finally:
        child.kill()
        child.join(timeout)
    while True:
        try:
            kind, payload = receiver.recv()
        except (EOFError, OSError):
            break  # the pipe is drained (a message the kill cut short is dropped)
        if kind == "error":
            msg = f"the writer process failed:\n{payload}"
            raise AssertionError(msg)
        reported.append(tuple(payload))
    receiver.close()
    return tuple(reported)


@attrs.frozen
class LedgerAudit:
    """What :func:`check_ledger_consistent` counted.

    Attributes:
        jobs: How many jobs the repository holds.
        updates: How many updates, over all jobs.
        feed_head: The feed's last position.
    """

    jobs: int
    updates: int
    feed_head: int


def check_ledger_consistent(
    repository: Repository, committed: Sequence[tuple[str, int, str]] = ()
) -> LedgerAudit:
    """Assert that every committed change is there whole and nothing half-written is.

    Args:
        repository: The repository to audit.
        committed: ``(job_id, version, etag)`` of changes known to be committed.

    Raises:
        AssertionError: a committed change is missing; a job's update ids are
            not 1, 2, 3, ... or do not end at its version; its ETag is not its
            last change's; the feed has a gap, or does not hold exactly one
            event per start and per update, with the same ids and ETags.
    """
    all_jobs: list[Job] = []
    query = JobQuery(limit=1000)
    while True:
        page = repository.find(query)
        all_jobs.extend(page.jobs)
        if page.next_cursor is None:
            break
        query = attrs.evolve(query, cursor=page.next_cursor)
    by_id = {job.id: job for job in all_jobs}
    feed = _whole_feed(repository)
    assert list(range(1, len(feed) + 1)) == [entry.position for entry in feed], "feed gap"
    assert repository.feed_head() == len(feed), "feed head is not the last position"
    events: dict[str, list[tuple[int, str]]] = {}
    for entry in feed:
        event = entry.event
        events.setdefault(event.job_id, []).append((event.version, event.etag))
    assert set(by_id) == set(events), "jobs without a start event, or events without a job"
    updates = 0
    for job in all_jobs:
        log = repository.updates(job.id)
        updates += len(log)
        assert [n + 1 for n in range(len(log))] == [u.update_id for u in log], job.id
        assert job.version == len(log) + 1, f"{job.id}: version {job.version}, log {len(log)}"
        expected_events = [(1, events[job.id][0][1])] + [(u.update_id + 1, u.etag) for u in log]
        assert expected_events == events[job.id], f"{job.id}: feed does not match the log"
        assert job.etag == expected_events[-1][1], f"{job.id}: ETag is not the last change's"
    assert len(all_jobs) + updates == len(feed), "the feed does not match the logs one to one"
    for job_id, version, etag in committed:
        assert job_id in by_id, f"committed job {job_id} is missing"
        assert (version, etag) in events[job_id], f"committed change {job_id} v{version} missing"
    return LedgerAudit(len(all_jobs), updates, len(feed))
