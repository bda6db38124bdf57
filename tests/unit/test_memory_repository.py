"""Specification of InMemoryRepository: save rules, the event feed and checkpoints."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from jobledger import (
    ANY_ETAG,
    DEFAULT_LIMITS,
    CancelJob,
    Change,
    CompleteJob,
    ConcurrencyError,
    InMemoryRepository,
    Job,
    JobAlreadyExistsError,
    JobNotFoundError,
    JobQuery,
    Repository,
    RequestIdConflictError,
    StartJob,
    UpdateJob,
)
from jobledger._core.decide import decide

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import Command

NOW = datetime(2024, 1, 1, tzinfo=UTC)


class Decider:
    """Builds changes with decide, with one counting id factory across calls."""

    def __init__(self) -> None:
        """Start counting ids at 1."""
        counter = itertools.count(1)
        self.new_id: Callable[[], str] = lambda: f"id-{next(counter):04d}"

    def __call__(self, job: Job | None, command: Command) -> Change:
        """Decide ``command`` for ``job`` at NOW."""
        return decide(job, command, now=NOW, new_id=self.new_id, limits=DEFAULT_LIMITS)

    def start(self, job_id: str, request_id: str | None = None) -> Change:
        """The change that starts ``job_id``."""
        command = StartJob(
            service="hr", entity="employee", type="sync", job_id=job_id, request_id=request_id
        )
        return self(None, command)


def contents(repository: InMemoryRepository, job_id: str) -> tuple[object, ...]:
    """Everything ``repository`` holds about ``job_id`` and its feed."""
    return (
        repository.get(job_id),
        tuple(repository.updates(job_id)),
        repository.feed_head(),
        tuple(repository.read_feed()),
    )


@pytest.fixture
def repository() -> InMemoryRepository:
    """Return an empty in-memory repository."""
    return InMemoryRepository()


@pytest.fixture
def decider() -> Decider:
    """Return a deterministic change builder."""
    return Decider()


class TestSave:
    """save applies a change atomically, or refuses it and writes nothing."""

    def test_it_is_a_repository(self, repository: InMemoryRepository) -> None:
        """InMemoryRepository implements the Repository protocol."""
        assert isinstance(repository, Repository)

    def test_a_start_is_saved(self, repository: InMemoryRepository, decider: Decider) -> None:
        """A saved start is readable, with an empty update log and its event at position 1."""
        change = decider.start("j")
        assert 1 == repository.save(change)
        assert (change.job, (), 1) == (
            repository.get("j"),
            tuple(repository.updates("j")),
            repository.feed_head(),
        )

    def test_a_change_is_saved(self, repository: InMemoryRepository, decider: Decider) -> None:
        """A saved change replaces the job and appends its update and event."""
        started = decider.start("j")
        repository.save(started)
        change = decider(started.job, UpdateJob(job_id="j", etag=started.job.etag, status="x"))
        assert 2 == repository.save(change)
        assert (change.job, (change.update,)) == (
            repository.get("j"),
            tuple(repository.updates("j")),
        )

    def test_starting_twice_raises_already_exists(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A second start of the same id raises JobAlreadyExistsError and writes nothing."""
        repository.save(decider.start("j"))
        before = contents(repository, "j")
        with pytest.raises(JobAlreadyExistsError) as caught:
            repository.save(decider.start("j"))
        assert "j" == caught.value.job_id
        assert before == contents(repository, "j")

    def test_a_change_for_an_unknown_job_raises_not_found(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A change for a job the repository does not hold raises JobNotFoundError."""
        started = decider.start("j")
        change = decider(started.job, UpdateJob(job_id="j", etag=started.job.etag))
        with pytest.raises(JobNotFoundError) as caught:
            repository.save(change)
        assert ("j", 0) == (caught.value.job_id, repository.feed_head())

    def test_a_stale_expected_etag_raises_and_writes_nothing(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """Of two changes expecting the same ETag, the second raises ConcurrencyError."""
        started = decider.start("j")
        repository.save(started)
        first = decider(started.job, UpdateJob(job_id="j", etag=started.job.etag, status="a"))
        second = decider(started.job, CompleteJob(job_id="j", etag=started.job.etag))
        repository.save(first)
        before = contents(repository, "j")
        with pytest.raises(ConcurrencyError) as caught:
            repository.save(second)
        assert ("j", started.job.etag, first.job.etag) == (
            caught.value.job_id,
            caught.value.expected_etag,
            caught.value.current_etag,
        )
        assert before == contents(repository, "j")

    def test_a_duplicate_request_id_raises_and_writes_nothing(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A change whose request id is recorded raises RequestIdConflictError; nothing changes."""
        started = decider.start("j", request_id="r")
        repository.save(started)
        change = decider(
            started.job, UpdateJob(job_id="j", etag=started.job.etag, status="x", request_id="r")
        )
        before = contents(repository, "j")
        with pytest.raises(RequestIdConflictError) as caught:
            repository.save(change)
        assert "r" == caught.value.request_id
        assert before == contents(repository, "j")
        assert started.request == repository.find_request("r")

    def test_a_duplicate_request_id_on_start_creates_no_job(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A start whose request id is recorded raises and leaves no trace of the new job."""
        repository.save(decider.start("j", request_id="r"))
        with pytest.raises(RequestIdConflictError):
            repository.save(decider.start("k", request_id="r"))
        with pytest.raises(JobNotFoundError):
            repository.get("k")
        assert 1 == repository.feed_head()

    def test_an_update_that_skips_a_version_is_refused(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A change whose update id does not follow the stored version is refused, unwritten."""
        started = decider.start("j")
        repository.save(started)
        change = decider(started.job, UpdateJob(job_id="j", etag=started.job.etag))
        assert change.update is not None
        skipping = attrs.evolve(change, update=attrs.evolve(change.update, update_id=5))
        before = contents(repository, "j")
        with pytest.raises(ValueError, match="does not follow version 1"):
            repository.save(skipping)
        assert before == contents(repository, "j")

    def test_one_of_many_racing_saves_wins(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """Threads saving changes that expect the same ETag: exactly one wins, the rest conflict."""
        started = decider.start("j")
        repository.save(started)
        changes = [
            decider(started.job, UpdateJob(job_id="j", etag=started.job.etag, status=f"s{n}"))
            for n in range(8)
        ]
        barrier = threading.Barrier(len(changes))
        outcomes: list[str] = []
        lock = threading.Lock()

        def save(change: Change) -> None:
            barrier.wait()
            try:
                repository.save(change)
                outcome = "saved"
            except ConcurrencyError:
                outcome = "conflict"
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=save, args=(change,)) for change in changes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (1, 7) == (outcomes.count("saved"), outcomes.count("conflict"))
        assert (2, 2, 1) == (
            repository.get("j").version,
            repository.feed_head(),
            len(repository.updates("j")),
        )


class TestReads:
    """get, updates, find and find_request read what was saved."""

    def test_get_unknown_raises_not_found(self, repository: InMemoryRepository) -> None:
        """Getting an unknown id raises JobNotFoundError."""
        with pytest.raises(JobNotFoundError):
            repository.get("nope")

    def test_updates_unknown_raises_not_found(self, repository: InMemoryRepository) -> None:
        """Listing the updates of an unknown id raises JobNotFoundError."""
        with pytest.raises(JobNotFoundError):
            repository.updates("nope")

    def test_updates_after(self, repository: InMemoryRepository, decider: Decider) -> None:
        """updates(after=n) lists only the updates with ids greater than n, oldest first."""
        repository.save(decider.start("j"))
        job = repository.get("j")
        for n in range(4):
            change = decider(job, UpdateJob(job_id="j", etag=job.etag, state_update={"n": n}))
            repository.save(change)
            job = change.job
        assert ([3, 4], [1, 2, 3, 4], []) == (
            [update.update_id for update in repository.updates("j", after=2)],
            [update.update_id for update in repository.updates("j", after=-1)],
            [update.update_id for update in repository.updates("j", after=4)],
        )

    def test_find_request_unknown_is_none(self, repository: InMemoryRepository) -> None:
        """find_request of an id never recorded is None."""
        assert repository.find_request("r") is None

    def test_a_record_is_found_once_its_job_is_seen(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A look-up made while a save is half applied waits for the save, then finds its record."""
        repository.save(decider.start("j"))
        job = repository.get("j")
        change = decider(job, UpdateJob(job_id="j", etag=job.etag, status="x", request_id="r"))
        entered, release = threading.Event(), threading.Event()

        class Paused(dict):  # type: ignore[type-arg]
            def __setitem__(self, key: str, value: object) -> None:
                entered.set()  # the save holds the lock; its job is already written
                release.wait(10)
                super().__setitem__(key, value)

        repository._requests = Paused()  # pause the save inside its write of the record
        saving = threading.Thread(target=repository.save, args=(change,))
        saving.start()
        assert entered.wait(10)
        found: list[object] = []
        looking = threading.Thread(target=lambda: found.append(repository.find_request("r")))
        looking.start()
        looking.join(0.2)  # without the lock, the look-up would already have answered None
        seen = repository.get("j").status
        release.set()
        saving.join(10)
        looking.join(10)
        assert ("x", [change.request]) == (seen, found)

    def test_find_lists_saved_jobs(self, repository: InMemoryRepository, decider: Decider) -> None:
        """Finding lists the saved jobs that match the query."""
        repository.save(decider.start("j"))
        assert ["j"] == [job.id for job in repository.find(JobQuery(service="hr")).jobs]
        assert [] == list(repository.find(JobQuery(service="crm")).jobs)


class TestFeed:
    """The feed numbers events 1, 2, 3, ... with no gap and reads them in order."""

    def save_events(self, repository: InMemoryRepository, decider: Decider, count: int) -> None:
        """Save ``count`` starts of jobs j1, j2, ..."""
        for n in range(1, count + 1):
            repository.save(decider.start(f"j{n}"))

    def test_an_empty_feed(self, repository: InMemoryRepository) -> None:
        """An empty repository has feed head 0 and no entries."""
        assert (0, ()) == (repository.feed_head(), tuple(repository.read_feed()))

    def test_positions_are_gap_free(self, repository: InMemoryRepository, decider: Decider) -> None:
        """Saves return positions 1..n and the feed lists them in order, with their events."""
        positions = [repository.save(decider.start(f"j{n}")) for n in range(1, 6)]
        entries = repository.read_feed()
        assert [1, 2, 3, 4, 5] == positions
        assert [(1, "j1"), (2, "j2"), (3, "j3"), (4, "j4"), (5, "j5")] == [
            (entry.position, entry.event.job_id) for entry in entries
        ]
        assert 5 == repository.feed_head()

    def test_refused_saves_leave_no_gap(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A refused save takes no position: the next saved event gets the next number."""
        repository.save(decider.start("j1"))
        with pytest.raises(JobAlreadyExistsError):
            repository.save(decider.start("j1"))
        assert 2 == repository.save(decider.start("j2"))

    @pytest.mark.parametrize(
        ("after", "limit", "expected"),
        [
            (0, 1000, [1, 2, 3, 4, 5]),
            (2, 1000, [3, 4, 5]),
            (2, 2, [3, 4]),
            (0, 1, [1]),
            (4, 10, [5]),
            (5, 10, []),
            (9, 10, []),
            (-3, 2, [1, 2]),
            (0, 0, []),
        ],
    )
    def test_read_feed_after_and_limit(
        self,
        repository: InMemoryRepository,
        decider: Decider,
        after: int,
        limit: int,
        expected: list[int],
    ) -> None:
        """read_feed returns up to limit entries with positions greater than after."""
        self.save_events(repository, decider, 5)
        entries = repository.read_feed(after=after, limit=limit)
        assert expected == [entry.position for entry in entries]
        assert [f"j{position}" for position in expected] == [
            entry.event.job_id for entry in entries
        ]


class TestKeptChanges:
    """Changes are kept as records; their updates and events are made, equal, when read."""

    def test_updates_and_feed_read_what_the_changes_announce(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """Updates and feed entries read back equal the updates and events the changes carry."""
        started = decider.start("j")
        repository.save(started)
        job, changes = started.job, []
        for command in (
            UpdateJob(job_id="j", etag=ANY_ETAG, status="x", state_update={"n": 1}),
            CancelJob(job_id="j", etag=ANY_ETAG, description="enough"),
        ):
            change = decider(job, command)
            repository.save(change)
            changes.append(change)
            job = change.job
        assert (
            [change.update for change in changes],
            [started.event, *(change.event for change in changes)],
        ) == (
            list(repository.updates("j")),
            [entry.event for entry in repository.read_feed()],
        )

    def test_a_change_built_with_its_values_is_kept_as_well(
        self, repository: InMemoryRepository, decider: Decider
    ) -> None:
        """A change made field by field (no record), as an adapter's test might, reads the same."""
        started = decider.start("j")
        repository.save(started)
        decided = decider(started.job, UpdateJob(job_id="j", etag=ANY_ETAG, status="x"))
        plain = Change(decided.job, decided.update, decided.event, decided.expected_etag, None)
        repository.save(plain)
        assert (None, (decided.update,), decided.event) == (
            plain.record,
            tuple(repository.updates("j")),
            repository.read_feed()[1].event,
        )

    def test_it_loads_from_memory_unless_a_subclass_overrides_get(self) -> None:
        """loads_from_memory is True for the class itself, False for a subclass with its own get."""

        class Elsewhere(InMemoryRepository):
            def get(self, job_id: str) -> Job:
                return super().get(job_id)

        class Counting(InMemoryRepository):
            pass

        assert (True, False, True) == (
            InMemoryRepository().loads_from_memory,
            Elsewhere().loads_from_memory,
            Counting().loads_from_memory,
        )


class TestCheckpoints:
    """Checkpoints remember how far each named subscription has read."""

    def test_default_is_zero(self, repository: InMemoryRepository) -> None:
        """A subscription that never saved a checkpoint is at 0."""
        assert 0 == repository.load_checkpoint("mailer")

    def test_round_trip_per_name(self, repository: InMemoryRepository) -> None:
        """A saved checkpoint loads back, per name, and the last save wins."""
        repository.save_checkpoint("mailer", 3)
        repository.save_checkpoint("audit", 7)
        repository.save_checkpoint("mailer", 5)
        assert (5, 7, 0) == (
            repository.load_checkpoint("mailer"),
            repository.load_checkpoint("audit"),
            repository.load_checkpoint("other"),
        )
