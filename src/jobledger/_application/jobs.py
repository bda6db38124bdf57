"""The :class:`Jobs` facade: load, decide, save, publish."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Literal

import attrs

from jobledger._application.defaults import new_id, new_tag, utc_now
from jobledger._application.delivery import DEFAULT_MAX_PENDING, InProcessPublisher, Outbox
from jobledger._application.handling import Handling, Storage
from jobledger._application.job_commands import JobCommands
from jobledger._application.subscriber import DurableSubscriber
from jobledger._core.decide import record_admitted
from jobledger._core.errors import InvalidJobDataError, JobledgerError
from jobledger._core.events import (
    EventFilter,
    EventKinds,
    changed_job,
    event_admitted,
    started_job,
)
from jobledger._core.job import TERMINAL_STATUSES
from jobledger._core.jsondoc import DEFAULT_LIMITS, Limits, freeze
from jobledger._core.positions import check_position, window
from jobledger._core.query import JobQuery
from jobledger._core.recent import RecentJobs
from jobledger._core.retention import PurgeRule
from jobledger._ports import AtomicBatches, FeedNotifier, ParkedEvents, Retention, StartRecords

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence
    from datetime import datetime

    from jobledger._application.delivery import Handler, Subscription
    from jobledger._core.commands import Command
    from jobledger._core.decide import Change
    from jobledger._core.job import Job, JobUpdate
    from jobledger._core.parked import ParkedEvent
    from jobledger._core.query import JobPage
    from jobledger._ports import EventPublisher, Repository

__all__ = ["Jobs"]

_STRIPES = 64

# The longest a wait sleeps before it reads the job again (a notifier may miss a commit).
_WAIT_POLL = 1.0

# The length of the default job ids (a UUID's text); the default ETags are shorter.
_DEFAULT_ID_LENGTH = 36


def _pause(seconds: float) -> None:
    """Sleep before a retry (``time.sleep`` looked up at each call: patching it reaches here)."""
    time.sleep(seconds)


class _PartlySaved(Exception):  # noqa: N818  (never escapes: handle_all raises its error)
    """A batch saved change by change was refused after some of its changes were saved.

    It is no :class:`~jobledger.JobledgerError`, so the batch is not decided
    again (which would redo the saved changes): :meth:`Jobs.handle_all`
    raises :attr:`error` itself.
    """

    def __init__(self, error: JobledgerError) -> None:
        super().__init__(error)
        self.error = error


class Jobs(JobCommands):
    """The ledger of jobs: start, change and read jobs, and subscribe to their events.

    Args:
        repository: Where jobs are kept; a new :class:`~jobledger.InMemoryRepository`
            when ``None``.
        publishers: Extra :class:`~jobledger.EventPublisher` s that receive every
            event this ledger commits (after the in-process subscribers).
        clock: Returns the current time, timezone-aware; UTC now by default.
            Jobs keep their times in UTC, whatever zone the clock reads in.
        id_factory: Returns a new unique id for jobs, ETags and events. By
            default, job ids are UUIDv7 strings (they sort by creation time), and
            ETags and event ids, which nothing orders, are cheaper tokens that are
            just as unique: a random 64-bit prefix per process and a counter.
        delivery: ``"threads"`` (the default): each subscription's handler runs
            on its own worker thread; ``"inline"``: handlers run in the thread
            that committed, before its command returns (for tests).
        limits: The data limits to enforce; :class:`~jobledger.Limits` defaults.
            With the default ``id_factory``, ``max_name_length`` must be at
            least 36 (``ValueError`` otherwise), so that the ledger's own ids
            and ETags fit; a custom ``id_factory`` must make ids that fit.

    Every command is atomic: the job, its update, its event and its request
    record are saved together or not at all. Every change command carries the
    ETag the sender last saw (or :data:`~jobledger.ANY_ETAG`); a stale ETag
    raises :class:`~jobledger.ConcurrencyError` and changes nothing.

    Any command may carry a ``request_id``. Sent again with the same
    ``request_id``, the command is answered with the job as the first one left
    it, and nothing is written or published; the same ``request_id`` with a
    different command raises :class:`~jobledger.RequestIdConflictError`.
    The ``actor`` is part of the command: a retry must name the same actor
    (or none, as the first did), or it is a different command.

    Any command may also name its ``actor``, the service or person acting.
    It is kept with the change (:attr:`~jobledger.Job.started_by` for the
    start, :attr:`~jobledger.JobUpdate.actor` for every later change) and
    carried by the change's event (``actor``); ``None`` names no one.

    A ledger remembers the jobs it saved last (a hundred or so, small ones)
    and decides the next command on such a job without reading it again. The
    save's compare-and-set catches a job that another process or ledger has
    changed meanwhile, and the command is then decided again on the job as
    stored: the outcome is the same, one read later.

    Subscribers (:meth:`subscribe`) receive the events this ledger commits,
    after the commit, in commit order for each job. By default each
    subscription has its own bounded queue and worker thread, so no handler,
    however slow or failing, delays a command or another subscriber, and a
    committed command never raises because of a handler; :meth:`drain` waits
    until every handler has caught up. ``delivery="inline"`` instead runs the
    handlers in the committing thread before the command returns (the
    testing mode: :mod:`jobledger.testing`'s ``jobledger_jobs`` fixture uses
    it).

    >>> from jobledger import Jobs
    >>> jobs = Jobs()
    >>> job = jobs.start(
    ...     service="hr",
    ...     entity="employee",
    ...     type="sync",
    ...     display_name="Nightly HR sync",
    ...     state={"done": 0},
    ... )
    >>> job = jobs.update(job.id, etag=job.etag, status="exporting", state_update={"done": 10})
    >>> job = jobs.complete(job.id, etag=job.etag, state_update={"done": 42})
    >>> job.status, job.state, job.version
    ('completed', {'done': 42}, 3)
    >>> [update.update_type.name for update in jobs.updates(job.id)]
    ['UPDATED', 'COMPLETED']
    """

    def __init__(
        self,
        repository: Repository | None = None,
        *,
        publishers: Iterable[EventPublisher] = (),
        clock: Callable[[], datetime] = utc_now,
        id_factory: Callable[[], str] = new_id,
        limits: Limits = DEFAULT_LIMITS,
        delivery: Literal["threads", "inline"] = "threads",
    ) -> None:
        if repository is None:
            # The composition root's one outward import: the default backend.
            from jobledger._adapters.memory import InMemoryRepository  # noqa: PLC0415

            repository = InMemoryRepository()
        self._repository = repository
        # Where batches are saved atomically; None saves them change by change.
        self._batches = repository if isinstance(repository, AtomicBatches) else None
        # ETags and event ids need only be unique: with the default factory
        # they come from a cheaper source than job ids (see new_tag).
        self._new_tag = new_tag if id_factory is new_id else id_factory
        if id_factory is new_id and limits.max_name_length < _DEFAULT_ID_LENGTH:
            msg = (
                f"limits.max_name_length is {limits.max_name_length}, but the job ids "
                f"this ledger makes are {_DEFAULT_ID_LENGTH} characters long, so no command "
                f"could name a job; allow at least {_DEFAULT_ID_LENGTH}, or give an "
                "id_factory whose ids fit"
            )
            raise ValueError(msg)
        self._limits = limits
        if delivery not in {"threads", "inline"}:
            msg = f"delivery must be 'threads' or 'inline', not {delivery!r}"
            raise ValueError(msg)
        self._subscribers = InProcessPublisher(inline=delivery == "inline")
        publishers = tuple(publishers)
        self._publishers_given = bool(publishers)
        self._outbox = Outbox((self._subscribers, *publishers))
        self._stripes = tuple(threading.Lock() for _ in range(_STRIPES))
        # The jobs this ledger saved last: the next command on one of them is
        # decided on it without reading it again (see handling).
        self._recent = RecentJobs(lock=threading.Lock())
        # A repository that holds its jobs in this process's memory loads one as
        # cheaply as the remembered jobs would recall it: remember none for it.
        self._recall = not getattr(repository, "loads_from_memory", False)
        # What handling asks of this ledger, as bound methods: one call per step.
        storage = Storage(
            recall=self._recent.get,
            load=repository.get,
            find_request=repository.find_request,
            save=self._save,
            save_all=self._save_all,
            pause=_pause,
        )
        self._handling = Handling(
            storage,
            clock=clock,
            new_id=id_factory,
            new_tag=self._new_tag,
            limits=limits,
            recall=self._recall,
        )

    @property
    def repository(self) -> Repository:
        """The repository this ledger keeps its jobs in."""
        return self._repository

    @property
    def limits(self) -> Limits:
        """The data limits this ledger enforces."""
        return self._limits

    def handle(self, command: Command) -> Job:
        """Carry out ``command``; return the job as it left it.

        Raises:
            JobNotFoundError: a change for a job that does not exist.
            JobAlreadyExistsError: a start whose ``job_id`` is taken.
            ConcurrencyError: the command's ETag is stale.
            InvalidTransitionError: the job's phase does not allow the command.
            InvalidJobDataError: a field breaks the data rules or limits.
            RequestIdConflictError: the ``request_id`` was used for another command.
        """
        job, change = self._handling.one(command)
        if change is not None and (
            self._publishers_given or self._subscribers.subscribed or self._outbox.queued
        ):
            self._outbox.drain()
        return job

    def handle_all(self, commands: Sequence[Command]) -> tuple[Job, ...]:
        """Carry out ``commands`` in order, as one atomic unit; return the jobs as each left them.

        Either every change is saved, or none is and the first refusal is
        raised. Events are published after the commit, in command order. An
        empty batch does nothing and returns ``()``.

        Each command is decided as :meth:`handle` decides it, on the jobs as
        the commands before it in the batch leave them:

        * **A job the batch already changed** (started or changed by an earlier
          command of the batch) is decided on as that command left it. Its
          ``etag`` must be the ETag the job had *before the batch* (the one the
          batch's first change of it was checked against, once, on commit), or
          :data:`~jobledger.ANY_ETAG`: the sender cannot know the ETags the
          batch makes. A job the batch starts has no earlier ETag, so later
          commands on it carry the wildcard. Any other ETag raises
          :class:`~jobledger.ConcurrencyError`.
        * **Request ids** work per command: a command whose ``request_id`` is
          recorded (by an earlier call, or an earlier command of this batch) is
          answered with the job as that command left it, and nothing of it is
          saved again. A batch retried with the same request ids is therefore
          answered, not redone. Give every command of a batch a request id to
          make it safe to retry; a command without one is carried out again.

        The batch is atomic on a repository that is also an
        :class:`~jobledger.AtomicBatches` (the in-memory, SQLite and PostgreSQL
        ones are). On any other repository the changes are saved one at a
        time, in order, which is **not atomic**: when one is refused, those
        before it stay saved (their events are published) and the refusal is
        raised; a retry with the same request ids answers the saved commands.

        >>> from jobledger import Jobs, StartJob, CompleteJob, UpdateJob, ANY_ETAG
        >>> jobs = Jobs()
        >>> run = jobs.start(service="hr", entity="employee", type="sync", job_id="run-1")
        >>> task, run, done = jobs.handle_all(
        ...     [
        ...         StartJob(service="hr", entity="task", type="export", job_id="task-1"),
        ...         UpdateJob(job_id="run-1", etag=run.etag, status="step-1"),
        ...         CompleteJob(job_id="task-1", etag=ANY_ETAG),
        ...     ]
        ... )
        >>> task.status, run.status, done.status, done.version
        ('started', 'step-1', 'completed', 2)

        Raises:
            JobNotFoundError: a change for a job that does not exist.
            JobAlreadyExistsError: a start whose ``job_id`` is taken.
            ConcurrencyError: a command's ETag is stale.
            InvalidTransitionError: the job's phase does not allow a command.
            InvalidJobDataError: a field breaks the data rules or limits.
            RequestIdConflictError: a ``request_id`` was used for another command.
        """
        try:
            handled = self._handling.all(commands)
        except _PartlySaved as partly:
            self._outbox.drain()
            raise partly.error from None
        jobs = []
        changed = False
        for job, change in handled:
            jobs.append(job)
            changed = changed or change is not None
        if changed and (self._listening() or self._outbox.pending):
            self._outbox.drain()
        return tuple(jobs)

    def _listening(self) -> bool:
        """Whether anyone receives this ledger's events (a ledger nobody hears skips the outbox)."""
        return self._publishers_given or self._subscribers.subscribed

    def _save(self, change: Change) -> None:
        """Save ``change``, remember its job and queue its event."""
        # Saving and queueing under the job's lock keeps each job's events in
        # commit order on their way to the subscribers.
        with self._stripes[hash(change.job.id) % _STRIPES]:
            self._repository.save(change)
            if self._recall or self._publishers_given or self._subscribers.subscribed:
                self._saved(change)  # which has nothing to do otherwise

    def _saved(self, change: Change) -> None:
        """Remember the job ``change`` saved, and queue its event; under the job's lock."""
        if self._recall:
            if change.job.status in TERMINAL_STATUSES:
                # Nothing can change an ended job: a command on it is refused
                # after a read, which says how it ended.
                self._recent.forget(change.job.id)
            else:
                self._recent.keep(change.job)
        if self._publishers_given:
            self._outbox.put(change.event)
        elif self._subscribers.subscribed and self._admitted(change):
            # Made only when a subscription may want it (a change's event is
            # made from its record when first read).
            self._outbox.put(change.event)

    def _admitted(self, change: Change) -> bool:
        """Whether a subscription may want ``change``'s event, told without making it."""
        record = change.record
        if record is not None:
            return record_admitted(record, self._subscribers.admits)
        return event_admitted(change.event, self._subscribers.admits)  # a start's, made with it

    def _save_all(self, changes: tuple[Change, ...]) -> None:
        """Save a batch's ``changes`` under the locks of all their jobs (taken in one order).

        Raises:
            _PartlySaved: the repository has no ``save_all``, and a change was
                refused after others were saved.
        """
        indexes = sorted({hash(change.job.id) % _STRIPES for change in changes})
        stripes = [self._stripes[index] for index in indexes]
        for stripe in stripes:
            stripe.acquire()
        saved = 0
        try:
            if self._batches is not None:
                self._batches.save_all(changes)
                saved = len(changes)
            else:
                for change in changes:
                    self._repository.save(change)
                    saved += 1
        except JobledgerError as error:
            if saved:
                raise _PartlySaved(error) from error
            raise
        finally:
            for change in changes[:saved]:
                self._saved(change)
            for stripe in reversed(stripes):
                stripe.release()

    def _json(self, value: object, field: str) -> object:
        """``value`` frozen under this ledger's limits, so a refusal names them and the path."""
        return None if value is None else freeze(value, field=field, limits=self._limits)

    def get(self, job_id: str, *, version: int | None = None) -> Job:
        """The job with ``job_id`` (the GetJobById query), now or as it was at ``version``.

        With ``version=N`` the job is rebuilt as it was after its N-th change
        (version 1 is the job as started) from its start record and its first
        N-1 updates, without reading the event feed.

        >>> from jobledger import Jobs
        >>> jobs = Jobs()
        >>> job = jobs.start(service="hr", entity="employee", type="sync", state={"done": 0})
        >>> job = jobs.update(job.id, etag=job.etag, status="exporting", state_update={"done": 5})
        >>> job = jobs.complete(job.id, etag=job.etag, state_update={"done": 9})
        >>> [
        ...     (then.status, then.state["done"])
        ...     for then in (jobs.get(job.id, version=n) for n in (1, 2, 3))
        ... ]
        [('started', 0), ('exporting', 5), ('completed', 9)]

        Raises:
            JobNotFoundError: no job has this id.
            InvalidJobDataError: ``version`` is not an integer from 1 to the
                job's version (naming ``version``).
            TypeError: ``version`` was given and the repository keeps no start
                records (it is no :class:`~jobledger.StartRecords`).
        """
        job = self._repository.get(job_id)
        if version is None:
            return job
        if not isinstance(version, int) or isinstance(version, bool) or not version >= 1:
            reason = f"must be an integer from 1 to {job.version}, not {version!r}"
            raise InvalidJobDataError("version", "", reason)
        if version > job.version:
            reason = f"job {job_id!r} is at version {job.version}; there is no version {version}"
            raise InvalidJobDataError("version", "", reason)
        if version == job.version:
            return job
        if not isinstance(self._repository, StartRecords):
            msg = f"{type(self._repository).__name__} keeps no start records to rebuild jobs from"
            raise TypeError(msg)
        then = started_job(self._repository.started(job_id))
        for update in self._repository.updates(job_id)[: version - 1]:
            then = changed_job(then, update)
        return then

    def updates(
        self, job_id: str, *, after: int = 0, limit: int | None = None
    ) -> Sequence[JobUpdate]:
        """The job's update log, oldest first, a page at a time.

        ``after`` leaves out the updates up to that ``update_id``; ``limit``
        (``None`` for all) caps how many come back. The next page starts
        after the last ``update_id`` of this one.

        >>> from jobledger import Jobs
        >>> jobs = Jobs()
        >>> job = jobs.start(service="hr", entity="employee", type="sync")
        >>> for n in range(5):
        ...     job = jobs.update(job.id, etag=job.etag, status=f"step-{n}")
        >>> [u.update_id for u in jobs.updates(job.id, after=1, limit=2)]
        [2, 3]

        Raises:
            JobNotFoundError: no job has this id.
            InvalidJobDataError: ``after`` or ``limit`` is not an integer
                (``limit`` not one of at least 0).
        """
        if limit is None:
            return self._repository.updates(job_id, after=window(after, 0)[0])
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            reason = f"must be an integer of at least 0, or None, not {limit!r}"
            raise InvalidJobDataError("limit", "", reason)
        return tuple(self._repository.updates(job_id, after=window(after, 0)[0])[:limit])

    def wait(self, job_id: str, *, timeout: float) -> Job:
        """Wait until the job has ended (completed, failed or canceled); return it.

        It returns at once for a job that has already ended. Otherwise it
        sleeps until the repository's feed grows (woken by its notifier:
        ``LISTEN``/``NOTIFY`` on PostgreSQL, at once in memory, within a few
        hundredths of a second on SQLite), then reads the job again; a
        repository that is no :class:`~jobledger.FeedNotifier` is polled.

        Raises:
            TimeoutError: the job had not ended after ``timeout`` seconds.
            JobNotFoundError: no job has this id.
        """
        deadline = time.monotonic() + max(float(timeout), 0.0)
        notifier = self._repository if isinstance(self._repository, FeedNotifier) else None
        while True:
            head = self._repository.feed_head()
            job = self._repository.get(job_id)
            if job.phase.is_terminal:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                msg = (
                    f"job {job_id!r} had not ended after {timeout} s (its status is {job.status!r})"
                )
                raise TimeoutError(msg)
            if notifier is not None:
                notifier.wait_for_feed(head, min(left, _WAIT_POLL))
            else:
                time.sleep(min(left, _WAIT_POLL))

    def find(self, query: JobQuery | None = None, **filters: object) -> JobPage:
        """List jobs, newest first, a page at a time.

        Give a :class:`~jobledger.JobQuery`, or its fields as keywords
        (``service``, ``entity``, ``type``, ``status``, ``phase``,
        ``created_after``, ``created_before``, ``limit``, ``cursor``).

        >>> from jobledger import Jobs
        >>> jobs = Jobs()
        >>> for n in range(3):
        ...     _ = jobs.start(service="hr", entity="employee", type="sync", job_id=f"job-{n}")
        >>> page = jobs.find(service="hr", limit=2)
        >>> [job.id for job in page.jobs], page.next_cursor is not None
        (['job-2', 'job-1'], True)
        >>> [job.id for job in jobs.find(service="hr", cursor=page.next_cursor).jobs]
        ['job-0']

        Raises:
            InvalidJobDataError: a filter or the cursor is not valid.
        """
        return self._repository.find(JobQuery.given(query, **filters))

    def subscribe(
        self,
        handler: Handler,
        event_filter: EventFilter | None = None,
        *,
        service: str | Collection[str] | None = None,
        entity: str | Collection[str] | None = None,
        type: str | Collection[str] | None = None,
        events: EventKinds | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> Subscription:
        """Call ``handler`` with every event this ledger commits that passes the filter.

        Give either an :class:`~jobledger.EventFilter` or its fields as keywords;
        with neither, the handler receives every event. Returns a
        :class:`~jobledger.Subscription`; cancel it (or use it as a context
        manager) to stop.

        The handler runs on the subscription's own thread, one event at a
        time, in commit order for each job; it may be slow, raise, or issue
        commands without delaying anyone. At most ``max_pending`` events wait
        for it; past that, new ones are dropped for this subscription (see
        :class:`~jobledger.Subscription`). Call :meth:`drain` to wait until it
        has caught up.

        >>> from jobledger import Jobs, JobCompleted
        >>> jobs = Jobs()
        >>> seen = []
        >>> subscription = jobs.subscribe(seen.append, service="hr", events=JobCompleted)
        >>> job = jobs.start(service="hr", entity="employee", type="sync")
        >>> job = jobs.complete(job.id, etag=job.etag)
        >>> jobs.drain()
        True
        >>> [type(event).__name__ for event in seen]
        ['JobCompleted']
        >>> subscription.cancel()
        """
        event_filter = EventFilter.given(
            event_filter, service=service, entity=entity, type=type, events=events
        )
        return self._subscribers.subscribe(handler, event_filter, max_pending=max_pending)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every in-process subscriber has handled every event committed so far.

        Returns:
            ``True`` once delivery is idle; ``False`` if ``timeout`` seconds
            passed first (``None`` waits as long as it takes). A handler that
            calls it does not wait for itself.
        """
        self._outbox.drain()
        return self._subscribers.wait_idle(timeout)

    def subscribe_durable(
        self,
        name: str,
        handler: Handler,
        event_filter: EventFilter | None = None,
        *,
        service: str | Collection[str] | None = None,
        entity: str | Collection[str] | None = None,
        type: str | Collection[str] | None = None,
        events: EventKinds | None = None,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        max_attempts: int | None = None,
        lease: float = 10.0,
    ) -> DurableSubscriber:
        """Feed the repository's event feed to ``handler`` in a background thread.

        Unlike :meth:`subscribe`, this delivers every event in the repository's
        feed, whichever process committed it, at least once, in feed order, and
        resumes after the checkpoint stored under ``name`` when restarted. A
        handler that raises is retried with backoff, never skipped, unless
        ``max_attempts`` is given: then an event it failed on that many times
        is parked (see :meth:`parked_events`) and the subscriber goes on. One
        name has one active consumer at a time: on a repository that is a
        :class:`~jobledger.ConsumerLeases` (every built-in one), a second
        subscriber of the name stands by until the first stops, or until its
        ``lease`` (seconds) runs out when it died. Stop the
        returned :class:`~jobledger.DurableSubscriber` with ``stop()`` (or use it
        as a context manager).
        """
        return DurableSubscriber(
            self._repository,
            name,
            handler,
            event_filter,
            service=service,
            entity=entity,
            type=type,
            events=events,
            batch_size=batch_size,
            poll_interval=poll_interval,
            max_attempts=max_attempts,
            lease=lease,
        ).start()

    def parked_events(self, name: str) -> Sequence[ParkedEvent]:
        """The events the durable subscriber ``name`` parked, by feed position.

        Each has ``position``, ``event``, ``error`` (the last one, as text),
        ``attempts`` and ``retry`` (put back and not yet tried again).

        Raises:
            InvalidJobDataError: ``name`` is not a subscriber name.
            TypeError: the repository keeps no parked events.
        """
        return self._parking().parked_events(name)

    def retry_parked(self, name: str, position: int | None = None) -> int:
        """Put back the events ``name`` parked (or only the one at ``position``); return how many.

        The durable subscriber tries each once more at the start of its next
        batch: one that succeeds is forgotten, one that fails is parked again
        with one more attempt and its new error.

        Raises:
            InvalidJobDataError: ``name`` or ``position`` is not valid.
            TypeError: the repository keeps no parked events.
        """
        parking = self._parking()
        if position is not None:
            check_position(position)
        count = 0
        for parked in parking.parked_events(name):
            if (position is None or parked.position == position) and not parked.retry:
                parking.park(attrs.evolve(parked, retry=True))
                count += 1
        return count

    def hold(self, job_id: str, *, reason: str) -> None:
        """Put the job on legal hold: :meth:`purge` leaves it alone until :meth:`release`.

        Holding a held job again replaces its reason; an active job may be held.

        Raises:
            JobNotFoundError: no job has this id.
            InvalidJobDataError: ``reason`` is not valid text.
            TypeError: the repository keeps no holds (it is no :class:`~jobledger.Retention`).
        """
        self._retention().hold(job_id, reason)

    def release(self, job_id: str) -> None:
        """Lift the job's legal hold (nothing happens if it has none).

        Raises:
            TypeError: the repository keeps no holds.
        """
        self._retention().release(job_id)

    def purge(
        self,
        *,
        finished_before: datetime,
        service: str | None = None,
        entity: str | None = None,
        type: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete the jobs that ended before ``finished_before``; return how many.

        A job goes when it has ended (completed, failed or canceled), its last
        change is before the cut, it matches the filters given, and it is not
        on hold. Each job goes atomically with its updates and its request
        records (a retry of one of its commands is then carried out anew).
        Its events stay in the event feed: positions never change, and durable
        subscribers behind still receive them. ``dry_run`` counts without
        deleting.

        >>> from datetime import UTC, datetime, timedelta
        >>> from jobledger import Jobs
        >>> jobs = Jobs()
        >>> old = jobs.start(service="hr", entity="employee", type="sync")
        >>> old = jobs.complete(old.id, etag=old.etag)
        >>> kept = jobs.start(service="hr", entity="employee", type="sync")
        >>> kept = jobs.complete(kept.id, etag=kept.etag)
        >>> jobs.hold(kept.id, reason="audit 2026-12")
        >>> jobs.purge(finished_before=datetime.now(UTC) + timedelta(seconds=1))
        1

        Raises:
            InvalidJobDataError: a filter or the cut is not valid.
            TypeError: the repository cannot purge.
        """
        rule = PurgeRule(finished_before=finished_before, service=service, entity=entity, type=type)
        return self._retention().purge(rule, dry_run=dry_run)

    def _retention(self) -> Retention:
        if not isinstance(self._repository, Retention):
            msg = f"{type(self._repository).__name__} cannot purge or hold jobs"
            raise TypeError(msg)
        return self._repository

    def _parking(self) -> ParkedEvents:
        if not isinstance(self._repository, ParkedEvents):
            msg = f"{type(self._repository).__name__} keeps no parked events"
            raise TypeError(msg)
        return self._repository
