"""The in-memory repository: a real backend that lives as long as its process.

It keeps every rule the durable backends keep and passes the same contract
suite; it is the default of :class:`~jobledger.Jobs` and the backend of choice
for tests.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from jobledger._core.decide import batch_refusal, event_of, record_of, save_refusal, update_of
from jobledger._core.errors import (
    JobNotFoundError,
    RequestIdConflictError,
)
from jobledger._core.jsondoc import is_storable_key
from jobledger._core.positions import check_position, check_subscriber_name, window
from jobledger._core.query import JobPage
from jobledger._core.retention import check_reason
from jobledger._ports import FeedEntry

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from jobledger._core.decide import Change, ChangeRecord, RequestRecord
    from jobledger._core.events import JobStarted
    from jobledger._core.job import Job, JobUpdate
    from jobledger._core.parked import ParkedEvent
    from jobledger._core.query import JobQuery
    from jobledger._core.retention import PurgeRule

__all__ = ["InMemoryRepository"]


class InMemoryRepository:
    """A thread-safe :class:`~jobledger.Repository` held in this process's memory.

    It is also a :class:`~jobledger.FeedNotifier`, so durable subscribers wake as
    soon as an event is saved, and an :class:`~jobledger.AtomicBatches`, so a
    batch of commands is saved all together or not at all.

    One lock serializes saves, so every save is atomic and the feed has no gap.
    Stored values are immutable and shared, never copied.

    >>> from jobledger import Jobs, InMemoryRepository
    >>> jobs = Jobs(repository=InMemoryRepository())
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._feed_grew = threading.Condition(self._lock)
        # Threads in wait_for_feed: a save wakes them only if there are any (a
        # notification costs as much as a third of a small save).
        self._feed_waiters = 0
        self._jobs: dict[str, Job] = {}
        # Each job's changes, oldest first, as their records (a tuple each, see
        # ChangeRecord). Updates and events are made from them when read (an
        # update says nothing its event does not), so each fact is held once
        # and nothing is made that nobody reads.
        self._logs: dict[str, list[ChangeRecord]] = {}
        # Each job's start event: the start record that as-of-version reads replay from.
        self._starts: dict[str, JobStarted] = {}
        self._parked: dict[tuple[str, int], ParkedEvent] = {}
        # Each durable subscriber name's consumer: (owner, lease expiry).
        self._consumers: dict[str, tuple[str, datetime]] = {}
        # Legal holds: job id to reason.
        self._holds: dict[str, str] = {}
        self._requests: dict[str, RequestRecord] = {}
        self._feed: list[JobStarted | ChangeRecord] = []
        self._checkpoints: dict[str, int] = {}

    @property
    def loads_from_memory(self) -> bool:
        """Whether :meth:`get` is this class's own, answered from memory.

        It is then as cheap as :class:`~jobledger.Jobs` recalling a job it
        remembers, so a ledger on this repository remembers none. A subclass
        that overrides :meth:`get` (to load from other storage, say) is
        ``False``: its ledgers remember the jobs they save, as on any repository.
        """
        return type(self).get is InMemoryRepository.get

    def get(self, job_id: str) -> Job:
        """The job as last saved; see :meth:`jobledger.Repository.get`."""
        try:
            # No stored id is unhashable or unstorable: any such value is simply not found.
            return self._jobs[job_id]
        except (KeyError, TypeError):
            raise JobNotFoundError(job_id) from None

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """The job's updates after ``after``; see :meth:`jobledger.Repository.updates`."""
        after, _ = window(after, 0)
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._lock:
            try:
                log = self._logs[job_id]
            except KeyError:
                raise JobNotFoundError(job_id) from None
            kept = log[after:]
        return tuple(map(update_of, kept))

    def started(self, job_id: str) -> JobStarted:
        """The job's start event; see :meth:`jobledger.StartRecords.started`."""
        if not is_storable_key(job_id):
            raise JobNotFoundError(job_id)
        with self._lock:
            try:
                return self._starts[job_id]
            except KeyError:
                raise JobNotFoundError(job_id) from None

    def hold(self, job_id: str, reason: str) -> None:
        """Put a job on hold; see :meth:`jobledger.Retention.hold`."""
        reason = check_reason(reason)
        with self._lock:
            if not is_storable_key(job_id) or job_id not in self._jobs:
                raise JobNotFoundError(job_id)
            self._holds[job_id] = reason

    def release(self, job_id: str) -> None:
        """Lift a hold; see :meth:`jobledger.Retention.release`."""
        with self._lock:
            self._holds.pop(job_id, None)

    def hold_reason(self, job_id: str) -> str | None:
        """A job's hold; see :meth:`jobledger.Retention.hold_reason`."""
        with self._lock:
            return self._holds.get(job_id)

    def purge(self, rule: PurgeRule, *, dry_run: bool = False) -> int:
        """Delete ended jobs; see :meth:`jobledger.Retention.purge`."""
        with self._lock:
            doomed = [
                job_id
                for job_id, job in self._jobs.items()
                if rule.matches(job) and job_id not in self._holds
            ]
            if dry_run:
                return len(doomed)
            gone = set(doomed)
            for job_id in doomed:
                del self._jobs[job_id]
                self._logs.pop(job_id, None)
                self._starts.pop(job_id, None)
            for request_id in [
                request_id for request_id, record in self._requests.items() if record.job.id in gone
            ]:
                del self._requests[request_id]
        return len(doomed)

    def claim_consumer(self, name: str, owner: str, *, now: datetime, until: datetime) -> str:
        """Claim a consumer lease; see :meth:`jobledger.ConsumerLeases.claim_consumer`."""
        name = check_subscriber_name(name)
        with self._lock:
            held = self._consumers.get(name)
            if held is None or held[0] == owner or held[1] < now:
                self._consumers[name] = (owner, until)
                return owner
            return held[0]

    def release_consumer(self, name: str, owner: str) -> None:
        """Give up a consumer lease; see :meth:`jobledger.ConsumerLeases.release_consumer`."""
        name = check_subscriber_name(name)
        with self._lock:
            held = self._consumers.get(name)
            if held is not None and held[0] == owner:
                del self._consumers[name]

    def park(self, parked: ParkedEvent) -> None:
        """Keep a parked event; see :meth:`jobledger.ParkedEvents.park`."""
        name = check_subscriber_name(parked.name)
        position = check_position(parked.position)
        with self._lock:
            self._parked[name, position] = parked

    def parked_events(self, name: str) -> Sequence[ParkedEvent]:
        """The events parked under ``name``; see :meth:`jobledger.ParkedEvents.parked_events`."""
        name = check_subscriber_name(name)
        with self._lock:
            found = [parked for key, parked in self._parked.items() if key[0] == name]
        return tuple(sorted(found, key=lambda parked: parked.position))

    def unpark(self, name: str, position: int) -> None:
        """Forget a parked event; see :meth:`jobledger.ParkedEvents.unpark`."""
        name = check_subscriber_name(name)
        position = check_position(position)
        with self._lock:
            self._parked.pop((name, position), None)

    def find(self, query: JobQuery) -> JobPage:
        """A page of matching jobs, newest first; see :meth:`jobledger.Repository.find`."""
        after = query.after()
        with self._lock:
            candidates = list(self._jobs.values())
        candidates.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        page: list[Job] = []
        for job in candidates:
            if (after is None or after.follows(job)) and query.matches(job):
                if len(page) == query.limit:
                    return JobPage.of(page, more=True)
                page.append(job)
        return JobPage.of(page, more=False)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """The record of ``request_id``; see :meth:`jobledger.Repository.find_request`."""
        if not is_storable_key(request_id):
            return None
        # Under the lock: a save makes its job visible before its record, and a
        # twin refused on seeing that job must then find the record.
        with self._lock:
            return self._requests.get(request_id)

    def save(self, change: Change) -> int:
        """Save ``change`` atomically; see :meth:`jobledger.Repository.save`."""
        job = change.job
        with self._lock:
            stored = self._jobs.get(job.id)
            refusal = save_refusal(
                change, None if stored is None else (stored.etag, stored.version)
            )
            if refusal is not None:
                raise refusal
            if change.request is not None and change.request.request_id in self._requests:
                raise RequestIdConflictError(change.request.request_id)
            # Nothing below can fail, so the change is all-or-nothing.
            self._apply(change)
            if self._feed_waiters:
                self._feed_grew.notify_all()
            return len(self._feed)

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Save ``changes`` atomically, in order; see :meth:`jobledger.AtomicBatches.save_all`."""
        changes = tuple(changes)
        with self._lock:
            refusal = batch_refusal(changes, self._version_of, self._requests.__contains__)
            if refusal is not None:
                raise refusal
            # Every change was checked against the ones before it, and applying
            # one cannot fail, so the batch is all-or-nothing.
            first = len(self._feed) + 1
            for change in changes:
                self._apply(change)
            if changes and self._feed_waiters:
                self._feed_grew.notify_all()
            return tuple(range(first, first + len(changes)))

    def _version_of(self, job_id: str) -> tuple[str, int] | None:
        """The stored job's ``(etag, version)``, or ``None``; the caller holds the lock."""
        job = self._jobs.get(job_id)
        return None if job is None else (job.etag, job.version)

    def _apply(self, change: Change) -> None:
        """Write ``change``, which was checked; the caller holds the lock."""
        job = change.job
        self._jobs[job.id] = job
        record = change.record
        if record is None and change.update is None:
            self._logs[job.id] = []
            self._starts[job.id] = change.event  # type: ignore[assignment]  # a start's event
            self._feed.append(change.event)  # type: ignore[arg-type]  # a start's event
        else:
            if record is None:  # a change made with its values: kept as its record too
                record = record_of(change.event)  # type: ignore[arg-type]  # a change's event
            self._logs[job.id].append(record)
            self._feed.append(record)
        if change.request is not None:
            self._requests[change.request.request_id] = change.request

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """Feed entries after ``after``; see :meth:`jobledger.Repository.read_feed`."""
        start, count = window(after, limit)
        with self._lock:
            kept = self._feed[start : start + count]
        return tuple(
            FeedEntry(start + offset + 1, event_of(one) if type(one) is tuple else one)  # type: ignore[arg-type]  # a record, else a start's event
            for offset, one in enumerate(kept)
        )

    def wait_for_feed(self, after: int, timeout: float) -> bool:
        """Wait for an event after ``after``; see :meth:`jobledger.FeedNotifier.wait_for_feed`."""
        with self._feed_grew:
            self._feed_waiters += 1
            try:
                return self._feed_grew.wait_for(lambda: len(self._feed) > after, timeout)
            finally:
                self._feed_waiters -= 1

    def feed_head(self) -> int:
        """The last feed position; see :meth:`jobledger.Repository.feed_head`."""
        return len(self._feed)

    def load_checkpoint(self, name: str) -> int:
        """The checkpoint of ``name``; see :meth:`jobledger.Repository.load_checkpoint`."""
        return self._checkpoints.get(check_subscriber_name(name), 0)

    def save_checkpoint(self, name: str, position: int) -> None:
        """Record a checkpoint; see :meth:`jobledger.Repository.save_checkpoint`."""
        name = check_subscriber_name(name)
        position = check_position(position)
        with self._lock:
            self._checkpoints[name] = position
