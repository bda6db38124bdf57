"""Durable subscribers: handlers fed from the repository's event feed, resuming after restarts.

A :class:`DurableSubscriber` reads the feed in position order, hands each event
that passes its filter to its handler, and records how far it got (its
checkpoint) in the repository under its name. Stopped, crashed or killed, a
subscriber with the same name resumes after the last checkpoint, so every
event is delivered at least once; events handled after the last checkpoint
are delivered again.

A repository that implements :class:`~jobledger.FeedNotifier` wakes an idle subscriber as
soon as new events are committed; with any other repository the subscriber
polls.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Self

import attrs

from jobledger._core.events import EventFilter, EventKinds
from jobledger._core.parked import ParkedEvent
from jobledger._ports import ConsumerLeases, FeedNotifier, ParkedEvents

if TYPE_CHECKING:
    from collections.abc import Collection

    from jobledger._application.delivery import Handler
    from jobledger._core.events import JobEvent
    from jobledger._ports import Repository

__all__ = ["DurableSubscriber", "backoff_delay"]

logger = logging.getLogger(__name__)

# The longest an idle subscriber waits before it looks at its stop event again.
_STOP_CHECK_SECONDS = 0.1


def _parking_of(repository: Repository, max_attempts: int | None) -> ParkedEvents | None:
    """Where events are parked: ``None`` without ``max_attempts``; else checked.

    Raises:
        TypeError: ``max_attempts`` is not an integer, or the repository
            cannot keep parked events.
        ValueError: ``max_attempts`` is less than 1.
    """
    if max_attempts is None:
        return None
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        msg = f"max_attempts must be a positive integer or None, not {max_attempts!r}"
        raise TypeError(msg)
    if max_attempts < 1:
        msg = f"max_attempts must be a positive integer or None, not {max_attempts!r}"
        raise ValueError(msg)
    if not isinstance(repository, ParkedEvents):
        msg = f"{repository.__class__.__name__} cannot keep parked events (max_attempts)"
        raise TypeError(msg)
    return repository


def _described(error: BaseException) -> str:
    """An error as a parked event records it: its type and its message."""
    return f"{type(error).__name__}: {error}"


def backoff_delay(failures: int, *, first: float, maximum: float) -> float:
    """How long to wait after ``failures`` failures in a row: doubling from ``first``, capped.

    >>> [backoff_delay(n, first=0.5, maximum=3.0) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 3.0, 3.0]
    """
    if failures < 1:
        return 0.0
    # Capping the exponent keeps the arithmetic small however long failures last.
    return min(maximum, first * 2.0 ** min(failures - 1, 64))


class DurableSubscriber:
    """Deliver the feed's events to ``handler`` in feed order, at least once, resuming by name.

    Args:
        repository: The repository whose feed to read; the checkpoint is kept
            in it too.
        name: The subscription's name. Subscribers with the same name share a
            checkpoint: run one at a time per name.
        handler: Called with each event that passes the filter, one at a time,
            in feed order (so in order for each job).
        event_filter: Which events to deliver; give either it or the keyword
            filters (``service``, ``entity``, ``type``, ``events``), as for
            :meth:`jobledger.Jobs.subscribe`. With neither, every event.
        service: Deliver only events of these services.
        entity: Deliver only events about these entities.
        type: Deliver only events of these job types.
        events: Deliver only these event types.
        batch_size: How many feed entries one :meth:`run_once` reads; the
            checkpoint is saved after each batch.
        poll_interval: Seconds an idle subscriber waits before it reads the
            feed again (a :class:`FeedNotifier` repository wakes it earlier).
        retry_delay: Seconds to wait after a handler's first failure; the wait
            doubles with each failure in a row.
        max_backoff: The longest wait between retries, in seconds.
        max_attempts: ``None`` (the default) retries a failing event until it
            succeeds. A number parks an event after that many failed attempts
            on it: a :class:`~jobledger.ParkedEvent` (this subscriber's name,
            the position, the event, the last error, the attempts) is kept in
            the repository, which must be a :class:`~jobledger.ParkedEvents`,
            and the subscriber goes on with the next event. A parked event put
            back with :meth:`jobledger.Jobs.retry_parked` is tried once more at
            the start of the next batch: on success it is forgotten, on
            failure parked again with one more attempt.
        lease: Seconds a running consumer's lease on its name lasts (renewed as
            it goes), on a repository that is a :class:`~jobledger.ConsumerLeases`:
            a second consumer of the name takes over at most this long after
            the first died. Only :meth:`run_forever` (and so :meth:`start`)
            takes the lease; :meth:`run_once` does not.

    Delivery is at least once: the checkpoint is saved after each batch (and
    up to the last handled event when the handler raises), so after a crash the
    events handled since the last checkpoint are delivered again. A handler
    that raises is retried with the same event, after a growing delay, until
    it succeeds: no event is ever skipped. Events the filter rejects are
    passed over and count as handled.

    >>> from jobledger import Jobs
    >>> jobs = Jobs()
    >>> job = jobs.start(service="hr", entity="employee", type="sync")
    >>> seen = []
    >>> subscriber = DurableSubscriber(jobs.repository, "audit", seen.append, service="hr")
    >>> subscriber.lag, subscriber.run_once(), subscriber.lag
    (1, 1, 0)
    >>> [type(event).__name__ for event in seen], jobs.repository.load_checkpoint("audit")
    (['JobStarted'], 1)
    """

    def __init__(
        self,
        repository: Repository,
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
        retry_delay: float = 0.1,
        max_backoff: float = 30.0,
        max_attempts: int | None = None,
        lease: float = 10.0,
    ) -> None:
        if not isinstance(name, str) or not name:
            msg = f"name must be a non-empty string, not {name!r}"
            raise ValueError(msg)
        given: object = handler  # checked at run time: callers need not be typed
        if not callable(given):
            msg = f"handler must be callable, not {given.__class__.__name__}"
            raise TypeError(msg)
        event_filter = EventFilter.given(
            event_filter, service=service, entity=entity, type=type, events=events
        )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"batch_size must be a positive integer, not {batch_size!r}"
            raise ValueError(msg)
        for label, seconds in (
            ("poll_interval", poll_interval),
            ("retry_delay", retry_delay),
            ("max_backoff", max_backoff),
        ):
            if not seconds >= 0:
                msg = f"{label} must be zero or more seconds, not {seconds!r}"
                raise ValueError(msg)
        parking = _parking_of(repository, max_attempts)
        self._parking = parking
        if not lease > 0:
            msg = f"lease must be more than zero seconds, not {lease!r}"
            raise ValueError(msg)
        self._leases = repository if isinstance(repository, ConsumerLeases) else None
        self._lease = float(lease)
        # How long a consumer that stands by waits before it tries to claim again.
        self._standby = min(max(self._lease / 4, 0.01), 1.0)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._holding = False
        self._renewed = 0.0
        self._max_attempts = max_attempts
        # Failed attempts on the event at the position (only one is ever in the way).
        self._attempts: tuple[int, int] = (0, 0)
        self._repository = repository
        self._name = name
        self._handler = handler
        self._filter = event_filter
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_delay = retry_delay
        self._max_backoff = max_backoff
        self._position: int | None = None
        self._failures = 0
        self._last_error: Exception | None = None
        self._run_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        """The subscription's name, under which its checkpoint is kept."""
        return self._name

    @property
    def filter(self) -> EventFilter:
        """Which events the handler receives."""
        return self._filter

    @property
    def position(self) -> int:
        """The feed position handled up to: the checkpoint (0 before the first event)."""
        if self._position is None:
            self._position = self._repository.load_checkpoint(self._name)
        return self._position

    @property
    def lag(self) -> int:
        """How many feed entries are not yet handled: the feed's head minus :attr:`position`."""
        return max(self._repository.feed_head() - self.position, 0)

    @property
    def failures(self) -> int:
        """How many times in a row the latest attempts failed; 0 after a success."""
        return self._failures

    @property
    def last_error(self) -> Exception | None:
        """The error of the latest failed attempt, until an attempt succeeds."""
        return self._last_error

    @property
    def running(self) -> bool:
        """Whether the background thread of :meth:`start` is running."""
        return self._thread is not None and self._thread.is_alive()

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Deliver the next batch of the feed; return how many feed entries it consumed.

        Returns 0 when the subscriber has caught up with the feed. The
        checkpoint is saved before this returns or raises. When ``stop`` is set
        during the batch, the rest of the batch is left for later.

        Raises:
            Exception: whatever the handler raised; the checkpoint then stands
                just before the event that failed, which is delivered again by
                the next call.
        """
        with self._run_lock:
            if self._parking is not None:
                self._retry_parked(self._parking)
            # Reloaded on every batch so that a checkpoint moved elsewhere (a
            # replay, an operator's reset) is honoured.
            start = self._position = self._repository.load_checkpoint(self._name)
            handled = start
            entries = self._repository.read_feed(after=start, limit=self._batch_size)
            consumed = 0
            try:
                for entry in entries:
                    if (stop is not None and stop.is_set()) or not self._still_holding():
                        break
                    if self._filter.matches(entry.event):
                        self._deliver(entry.position, entry.event)
                    handled = entry.position
                    consumed += 1
            finally:
                if handled != start:
                    self._repository.save_checkpoint(self._name, handled)
                    self._position = handled
            return consumed

    def _deliver(self, position: int, event: JobEvent) -> None:
        """Hand ``event`` to the handler; park it instead of raising once it failed too often."""
        try:
            self._handler(event)
        except Exception as error:
            if self._parking is None or self._max_attempts is None:
                raise
            failed_at, failures = self._attempts
            failures = failures + 1 if failed_at == position else 1
            if failures < self._max_attempts:
                self._attempts = (position, failures)
                raise
            self._attempts = (0, 0)
            self._parking.park(
                ParkedEvent(
                    name=self._name,
                    position=position,
                    event=event,
                    error=_described(error),
                    attempts=failures,
                )
            )
            logger.warning(
                "durable subscriber %r parked the event at position %d after %d attempts",
                self._name,
                position,
                failures,
                extra={"subscription": self._name, "position": position},
            )
        else:
            self._attempts = (0, 0)

    def _retry_parked(self, parking: ParkedEvents) -> None:
        """Try once more each event put back (:meth:`jobledger.Jobs.retry_parked`)."""
        for parked in parking.parked_events(self._name):
            if not parked.retry:
                continue
            try:
                self._handler(parked.event)
            except Exception as error:  # noqa: BLE001  (parked again, with the error)
                parking.park(
                    attrs.evolve(
                        parked, retry=False, attempts=parked.attempts + 1, error=_described(error)
                    )
                )
            else:
                parking.unpark(self._name, parked.position)

    def run_forever(self, stop: threading.Event) -> None:
        """Deliver events until ``stop`` is set, waiting for new ones when caught up.

        A failing attempt (the handler raised, or storage failed) is logged
        and retried after :func:`backoff_delay`; it never ends the loop and
        never skips the event.

        On a repository that is a :class:`~jobledger.ConsumerLeases`, it first
        claims the lease of its name (for ``lease`` seconds, renewed as it
        goes): while another consumer holds it, this one stands by, and takes
        over once the holder releases it (on stop) or its lease expires (the
        holder died). So one name has one active consumer at a time.
        """
        try:
            self._consume(stop)
        finally:
            self._let_go()

    def _consume(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._hold_lease(stop):
                continue
            try:
                consumed = self.run_once(stop)
            except Exception as err:
                self._failures += 1
                self._last_error = err
                delay = backoff_delay(
                    self._failures, first=self._retry_delay, maximum=self._max_backoff
                )
                logger.exception(
                    "durable subscriber %r failed (%d in a row); retrying in %.3g s",
                    self._name,
                    self._failures,
                    delay,
                    extra={"subscription": self._name, "position": self._position},
                )
                stop.wait(delay)
                continue
            self._failures = 0
            self._last_error = None
            if consumed < self._batch_size and not stop.is_set():
                self._idle(stop)

    @property
    def holding(self) -> bool:
        """Whether this consumer holds its name's lease (it stands by when another does)."""
        return self._holding

    def _hold_lease(self, stop: threading.Event) -> bool:
        """Claim or renew the name's lease; if another holds it, stand by a while: ``False``."""
        if self._leases is None:
            return True
        try:
            held = self._renew()
        except Exception:
            logger.exception(
                "durable subscriber %r could not claim its lease",
                self._name,
                extra={"subscription": self._name},
            )
            held = False
        if held:
            return True
        stop.wait(self._standby)
        return False

    def _renew(self) -> bool:
        """Claim or renew the lease now; whether this consumer holds it."""
        assert self._leases is not None  # noqa: S101  (called only with leases)
        now = datetime.now(UTC)
        holder = self._leases.claim_consumer(
            self._name, self._owner, now=now, until=now + timedelta(seconds=self._lease)
        )
        held = holder == self._owner
        if held != self._holding:
            logger.info(
                "durable subscriber %r %s",
                self._name,
                "is the active consumer" if held else f"stands by for {holder!r}",
                extra={"subscription": self._name},
            )
        self._holding = held
        self._renewed = time.monotonic()
        return held

    def _still_holding(self) -> bool:
        """Inside a batch: renew the lease when a third of it has passed; whether still held."""
        if self._leases is None or not self._holding:
            return True
        if time.monotonic() - self._renewed < self._lease / 3:
            return True
        return self._renew()

    def _let_go(self) -> None:
        """Release the lease, if held, so a standing-by consumer takes over at once."""
        if self._leases is not None and self._holding:
            self._holding = False
            try:
                self._leases.release_consumer(self._name, self._owner)
            except Exception:
                logger.exception(
                    "durable subscriber %r could not release its lease",
                    self._name,
                    extra={"subscription": self._name},
                )

    def _idle(self, stop: threading.Event) -> None:
        """Wait for new events, for at most the poll interval, or until ``stop`` is set."""
        notifier = self._repository if isinstance(self._repository, FeedNotifier) else None
        if notifier is None:
            stop.wait(self._poll_interval)
            return
        deadline = time.monotonic() + self._poll_interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if notifier.wait_for_feed(self.position, min(remaining, _STOP_CHECK_SECONDS)):
                return

    def start(self) -> Self:
        """Run :meth:`run_forever` in a background (daemon) thread; return this subscriber.

        Raises:
            RuntimeError: it is already running.
        """
        if self.running:
            msg = f"durable subscriber {self._name!r} is already running"
            raise RuntimeError(msg)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.run_forever,
            args=(self._stop,),
            name=f"jobledger-subscriber-{self._name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background thread after the event it is handling; wait up to ``timeout``.

        Calling it when the subscriber is not running does nothing.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DurableSubscriber {self._name!r} at {self._position} {state}>"
