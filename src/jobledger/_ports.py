"""The ports: what the application needs from storage and from a message bus.

Implement :class:`Repository` to keep jobs somewhere new, and prove the
implementation with the contract suite in :mod:`jobledger.testing`.
Implement :class:`EventPublisher` to forward events to a broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from jobledger._core.events import JobEvent, JobStarted

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from jobledger._core.decide import Change, RequestRecord
    from jobledger._core.job import Job, JobUpdate
    from jobledger._core.parked import ParkedEvent
    from jobledger._core.query import JobPage, JobQuery
    from jobledger._core.retention import PurgeRule

__all__ = [
    "AtomicBatches",
    "ConsumerLeases",
    "EventPublisher",
    "FeedEntry",
    "FeedNotifier",
    "ParkedEvents",
    "Repository",
    "Retention",
    "StartRecords",
]


@attrs.frozen
class FeedEntry:
    """An event at its position in the repository's event feed.

    Attributes:
        position: 1 for the first event ever saved, then 2, 3, ... with no gap.
        event: The event.
    """

    position: int
    event: JobEvent


@runtime_checkable
class Repository(Protocol):
    """Where jobs, their update logs and the event feed are kept.

    The contract every implementation keeps (the contract suite in
    :mod:`jobledger.testing` checks each point):

    * **Atomicity.** :meth:`save` writes the job, its update, its event and its
      request record all together or not at all. When it raises, nothing of the
      change is visible to anyone, ever.
    * **Compare-and-set.** :meth:`save` applies a change only if the stored job's
      ETag is still ``change.expected_etag``; of several saves expecting the same
      ETag, exactly one succeeds, across threads and processes.
    * **Isolation of values.** What is saved cannot be changed through the objects
      passed in, and what is read cannot change what is stored. (Jobledger's
      values are immutable, so sharing them is safe.)
    * **The feed.** Every saved event gets the next position, 1, 2, 3, ... with no
      gap, and :meth:`read_feed` returns events in position order. A reader never
      skips an event: an event becomes readable only when every event before it is.
    * **Errors.** Only the library's errors escape: a driver's errors are
      translated at the boundary.

    Methods that take a ``job_id`` raise :class:`~jobledger.JobNotFoundError`
    when no such job exists, also for a value no stored id could equal (not a
    string, or holding NUL or a lone surrogate); :meth:`find_request` answers
    ``None`` for such a request id.
    """

    def get(self, job_id: str) -> Job:
        """The job as last saved.

        Raises:
            JobNotFoundError: no job has this id.
        """
        ...

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """The job's updates with ``update_id`` greater than ``after``, oldest first.

        Raises:
            JobNotFoundError: no job has this id.
        """
        ...

    def find(self, query: JobQuery) -> JobPage:
        """The page of jobs that ``query`` asks for, newest first.

        Order is by ``created_at`` descending, then by id descending; a page
        holds at most ``query.limit`` jobs and has a ``next_cursor`` exactly when
        more jobs match after it.

        Raises:
            InvalidJobDataError: the query's cursor is not one this ledger made.
        """
        ...

    def find_request(self, request_id: str) -> RequestRecord | None:
        """The record of the command saved with ``request_id``, or ``None``."""
        ...

    def save(self, change: Change) -> int:
        """Save ``change`` atomically; return its event's feed position.

        For a start (``change.expected_etag is None``) the job must not exist;
        otherwise its stored ETag must equal ``change.expected_etag`` and
        ``change.update.update_id`` must be its version.

        A change the ledger decided makes ``change.update`` and
        ``change.event`` when they are first read; a repository that keeps
        changes in memory may store ``change.record`` instead (``None`` for a
        start and for a change made with its values), and make the update and
        the event from it when they are read (see
        :func:`~jobledger._core.decide.update_of`).

        Raises:
            JobAlreadyExistsError: a start for a job id that exists.
            JobNotFoundError: a change for a job that does not exist.
            ConcurrencyError: the stored ETag is not ``change.expected_etag``,
                or the stored job is past the version the change was decided
                on (an ETag that repeats an earlier one); carries the stored
                ETag.
            RequestIdConflictError: ``change.request`` names a request id that
                is already recorded (request ids are unique across all jobs).
            ValueError: the change contradicts itself or the stored job (its
                update is missing or ahead of the stored version): a bug in
                the caller, never a race.
        """
        ...

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """Up to ``limit`` feed entries with positions greater than ``after``, in order."""
        ...

    def feed_head(self) -> int:
        """The position of the last readable event; 0 when the feed is empty."""
        ...

    def load_checkpoint(self, name: str) -> int:
        """The feed position the subscription ``name`` has handled up to; 0 if none."""
        ...

    def save_checkpoint(self, name: str, position: int) -> None:
        """Record that the subscription ``name`` has handled the feed up to ``position``."""
        ...


@runtime_checkable
class EventPublisher(Protocol):
    """Something that receives every event after its change is committed.

    :class:`~jobledger.Jobs` calls :meth:`publish` once per committed change, in
    commit order for each job, after the change is durable. Publishing never
    undoes a change: if :meth:`publish` raises, the error is logged and the
    next publisher and the next event are still served. Events stay in the
    repository's feed, so a publisher that must not miss any can be fed from
    the feed instead.
    """

    def publish(self, event: JobEvent) -> None:
        """Take one committed event."""
        ...


@runtime_checkable
class FeedNotifier(Protocol):
    """A repository that can tell when its feed grows; subscribers then need not poll.

    Optional: a :class:`~jobledger.Repository` that also has this method wakes
    idle :class:`DurableSubscriber` s early. It may wake spuriously and may
    oversleep a little (subscribers also poll), but must not report an event
    that is not yet readable.
    """

    def wait_for_feed(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the feed's head to pass ``after``.

        Returns:
            Whether the feed now holds an event after position ``after``.
        """
        ...


@runtime_checkable
class StartRecords(Protocol):
    """A repository that reads a job's start record by its id, without scanning the feed.

    Optional: :meth:`jobledger.Jobs.get` with ``version=`` replays the start
    record and the update log to rebuild a job as it was; the in-memory,
    SQLite and PostgreSQL repositories have it.
    """

    def started(self, job_id: str) -> JobStarted:
        """The :class:`~jobledger.JobStarted` event of the job ``job_id``.

        Raises:
            JobNotFoundError: no job has this id.
        """
        ...


@runtime_checkable
class ParkedEvents(Protocol):
    """A repository that keeps the events durable subscribers parked.

    Optional: :meth:`jobledger.Jobs.subscribe_durable` with ``max_attempts``
    parks an event its handler failed on that many times and goes on;
    :meth:`jobledger.Jobs.parked_events` lists them and
    :meth:`jobledger.Jobs.retry_parked` puts them back. The in-memory, SQLite
    and PostgreSQL repositories have it. Records are keyed by the subscriber's
    name and the event's position; parking the same one again replaces it.
    """

    def park(self, parked: ParkedEvent) -> None:
        """Keep ``parked`` (replacing the record of the same name and position)."""
        ...

    def parked_events(self, name: str) -> Sequence[ParkedEvent]:
        """The events parked under ``name``, by position."""
        ...

    def unpark(self, name: str, position: int) -> None:
        """Forget the record of ``name`` at ``position``, if there is one."""
        ...


@runtime_checkable
class ConsumerLeases(Protocol):
    """A repository that leases each durable subscriber name to one consumer at a time.

    Optional: a :class:`~jobledger.DurableSubscriber` started on such a
    repository holds its name's lease while it consumes; a second consumer of
    the name stands by until the lease is released or expires. The in-memory,
    SQLite and PostgreSQL repositories have it.
    """

    def claim_consumer(self, name: str, owner: str, *, now: datetime, until: datetime) -> str:
        """Claim (or renew) ``name``'s lease for ``owner`` until ``until``; return the holder.

        The claim succeeds, atomically, when nobody holds the lease, when
        ``owner`` does, or when the holder's lease expired before ``now``.
        The result is the holder after the call: ``owner`` on success.
        """
        ...

    def release_consumer(self, name: str, owner: str) -> None:
        """Give up ``name``'s lease if ``owner`` holds it."""
        ...


@runtime_checkable
class Retention(Protocol):
    """A repository that deletes ended jobs (purge) and keeps legal holds that exempt them.

    Optional: :meth:`jobledger.Jobs.purge`, :meth:`~jobledger.Jobs.hold` and
    :meth:`~jobledger.Jobs.release` need it; the in-memory, SQLite and
    PostgreSQL repositories have it. Purging deletes each job with its
    updates and its request records, atomically per job; the job's events stay
    in the feed (positions never change and subscribers behind still receive
    them).
    """

    def hold(self, job_id: str, reason: str) -> None:
        """Exempt the job from purging until released (again: the reason is replaced).

        Raises:
            JobNotFoundError: no job has this id.
        """
        ...

    def release(self, job_id: str) -> None:
        """Lift the job's hold, if it has one."""
        ...

    def hold_reason(self, job_id: str) -> str | None:
        """The reason of the job's hold, or ``None``."""
        ...

    def purge(self, rule: PurgeRule, *, dry_run: bool = False) -> int:
        """Delete the jobs ``rule`` matches that are not on hold; return how many.

        With ``dry_run`` nothing is deleted and the count is of what would be.
        """
        ...


@runtime_checkable
class AtomicBatches(Protocol):
    """A repository that saves several changes in one transaction.

    Optional: :meth:`jobledger.Jobs.handle_all` saves a batch of commands with
    :meth:`save_all` when the :class:`~jobledger.Repository` also has it, and
    otherwise saves the changes one at a time with ``save`` (which is not
    atomic: a refused change leaves those before it saved).

    The contract (the contract suite in :mod:`jobledger.testing` checks each
    point when the repository has :meth:`save_all`):

    * **All or nothing.** Either every change is saved, or none is: when
      :meth:`save_all` raises, no job, update, event or request record of any
      change of the batch is visible to anyone, ever.
    * **In order, as one.** The changes apply one after another, each by the
      rules of :meth:`jobledger.Repository.save`, and each sees the ones before
      it: a change may follow an earlier change of the same job in the batch
      (its ``expected_etag`` is then the ETag that change gave the job), or
      a start of it. No other writer's change comes between two of them.
    * **The feed.** The batch's events get consecutive positions, in change
      order; a reader sees all of them or none.
    """

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Save ``changes`` atomically, in order; return their events' feed positions.

        An empty batch saves nothing and returns an empty sequence.

        Raises:
            JobAlreadyExistsError: a start for a job id that exists (or that an
                earlier change of the batch started).
            JobNotFoundError: a change for a job that neither exists nor is
                started earlier in the batch.
            ConcurrencyError: a change's ``expected_etag`` is not the ETag its
                job has at that point of the batch; carries that ETag.
            RequestIdConflictError: a change's request id is already recorded,
                or used by an earlier change of the batch.
            ValueError: a change contradicts itself or the job it follows (a
                bug in the caller, never a race).

        Whichever it raises, nothing of the batch was saved; the error is the
        one the first refused change (in batch order) would raise.
        """
        ...
