"""In-process delivery of events to subscribers, after commit, in commit order per job."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from jobledger._core.events import EventFilter, EventType, JobEvent

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Self

    from jobledger._ports import EventPublisher

__all__ = ["DEFAULT_MAX_PENDING", "Handler", "InProcessPublisher", "Outbox", "Subscription"]

logger = logging.getLogger(__name__)

#: A subscriber's callback: it receives one event at a time.
Handler = Callable[[JobEvent], object]


#: How many events a subscription holds for its handler before it drops new ones.
DEFAULT_MAX_PENDING = 10_000


class Subscription:
    """A handler subscribed to the events that pass a filter; cancel to stop.

    In the default (threaded) delivery, each subscription has its own queue
    and worker thread: the handler receives the events one at a time, in
    commit order for each job, on that thread, and nothing it does (sleep,
    raise, even ``SystemExit``) delays a command or another subscriber. The
    queue holds at most ``max_pending`` events; when it is full, a new event
    is **dropped** for this subscription (counted in :attr:`dropped`, and
    logged as a warning), so a stuck handler costs memory only up to the bound
    and never stalls the ledger. Subscribers that must not miss an event use
    :meth:`jobledger.Jobs.subscribe_durable`.

    Attributes:
        handler: The callback.
        filter: Which events it receives.
        max_pending: The bound of its queue.
    """

    def __init__(
        self,
        handler: Handler,
        event_filter: EventFilter,
        owner: InProcessPublisher,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.handler = handler
        self.filter = event_filter
        self.max_pending = max_pending
        self._owner = owner
        self._active = True
        self._dropped = 0
        self._pending: deque[JobEvent] = deque()
        self._changed = threading.Condition(threading.Lock())
        self._busy = False
        self._worker: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether the subscription still receives events."""
        return self._active

    @property
    def dropped(self) -> int:
        """How many events were dropped because the queue was full."""
        return self._dropped

    def cancel(self) -> None:
        """Stop delivering events to this handler; calling it again does nothing.

        Events queued and not yet handed to the handler are discarded; the
        event being handled, if any, finishes.
        """
        self._active = False
        self._owner.remove(self)
        with self._changed:
            self._pending.clear()
            self._changed.notify_all()

    def offer(self, event: JobEvent) -> None:
        """Queue ``event`` for the handler's thread (never blocks); see the class for the bound."""
        with self._changed:
            if not self._active:
                return
            if len(self._pending) >= self.max_pending:
                self._dropped += 1
                dropped = self._dropped
            else:
                dropped = 0
                self._pending.append(event)
                if self._worker is None:
                    name = getattr(self.handler, "__qualname__", type(self.handler).__name__)
                    self._worker = threading.Thread(
                        target=self._deliver, name=f"jobledger-delivery-{name}", daemon=True
                    )
                    self._worker.start()
                self._changed.notify_all()
        if dropped & (dropped - 1) == 0 and dropped:  # the 1st, 2nd, 4th, 8th, ... drop
            logger.warning(
                "subscription %r is %d events behind; %d events dropped so far",
                self,
                self.max_pending,
                dropped,
                extra={"job_id": event.job_id, "event_id": event.event_id},
            )

    def _deliver(self) -> None:
        """The worker: hand queued events to the handler, one at a time, until canceled."""
        while True:
            with self._changed:
                while not self._pending and self._active:
                    self._changed.wait()
                if not self._pending:
                    self._worker = None
                    self._changed.notify_all()
                    return
                event = self._pending.popleft()
                self._busy = True
            try:
                self.handler(event)
            except BaseException:
                logger.exception(
                    "event handler %r failed; the change stays committed",
                    self,
                    extra={"job_id": event.job_id, "event_id": event.event_id},
                )
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    @property
    def idle(self) -> bool:
        """Whether the handler has handled every event given (seen from its own thread: yes)."""
        if threading.current_thread() is self._worker:
            return True
        with self._changed:
            return not (self._pending or self._busy)

    def wait_idle(self, deadline: float | None) -> bool:
        """Wait until the handler has handled every queued event; ``False`` past ``deadline``."""
        if threading.current_thread() is self._worker:
            return True  # a handler waiting for itself would wait forever
        with self._changed:
            while self._pending or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        state = "active" if self._active else "canceled"
        return f"<Subscription {getattr(self.handler, '__qualname__', self.handler)!r} {state}>"


class InProcessPublisher:
    """An :class:`~jobledger.EventPublisher` that hands events to subscribed handlers.

    Each event goes to every active subscription whose filter it passes. By
    default each subscription's handler runs on its own worker thread (see
    :class:`Subscription`); with ``inline=True`` (the testing mode) handlers
    are called in the publishing thread, in subscription order, before
    :meth:`publish` returns. Either way, a handler that raises is logged (with
    the job and event ids) and the others still receive the event.
    """

    def __init__(self, *, inline: bool = False) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        # Each subscription with what screens a change before its event is made
        # (its filter's admits), or None when only its event can tell.
        self._screens: tuple[tuple[Subscription, _Screen | None], ...] = ()
        # Whether any subscription is active (see subscribed).
        self._subscribed = False
        self.inline = inline

    @property
    def subscribed(self) -> bool:
        """Whether any subscription is active (if none, there is nobody to deliver to)."""
        return self._subscribed

    def subscribe(
        self,
        handler: Handler,
        event_filter: EventFilter,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> Subscription:
        """Add ``handler`` for the events that pass ``event_filter``."""
        if not callable(cast("object", handler)):
            msg = f"handler must be callable, not {type(handler).__name__}"
            raise TypeError(msg)
        if not isinstance(max_pending, int) or isinstance(max_pending, bool) or max_pending < 1:
            msg = f"max_pending must be a positive integer, not {max_pending!r}"
            raise ValueError(msg)
        subscription = Subscription(handler, event_filter, self, max_pending)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self._screens = (*self._screens, (subscription, _screen(event_filter)))
            self._subscribed = True
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Forget ``subscription``; see :meth:`Subscription.cancel`."""
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self._screens = tuple(pair for pair in self._screens if pair[0] is not subscription)
            self._subscribed = bool(self._subscriptions)

    def admits(  # noqa: PLR0917  (an event's plain fields, by position: asked per change)
        self,
        kind: EventType,
        job_id: str,
        service: str,
        entity: str,
        type_: str,
        version: int,
        etag: str,
    ) -> bool:
        """Whether an active subscription may want the event of ``kind`` with these fields.

        Asked before the event is made (see :meth:`EventFilter.admits
        <jobledger.EventFilter.admits>`): ``False`` means :meth:`publish` would
        give that event to no one, so it need not be made. A subscription
        whose filter overrides only ``matches`` always may, and so does one
        whose filter raises: the event is made, and ``matches`` raising again
        when it is published is logged there, as any failure to publish is.
        """
        for subscription, admits in self._screens:
            if not subscription.active:
                continue
            if admits is None:
                return True
            try:
                if admits(kind, job_id, service, entity, type_, version, etag):
                    return True
            except Exception:  # noqa: BLE001  (never fails the saved change: told at publishing)
                return True
        return False

    def publish(self, event: JobEvent) -> None:
        """Deliver ``event`` to every matching, active subscription (queue it, unless inline)."""
        for subscription in self._subscriptions:
            if not (subscription.active and subscription.filter.matches(event)):
                continue
            if not self.inline:
                subscription.offer(event)
                continue
            try:
                subscription.handler(event)
            except (Exception, SystemExit):
                logger.exception(
                    "event handler %r failed; the change stays committed",
                    subscription,
                    extra={"job_id": event.job_id, "event_id": event.event_id},
                )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every subscription's handler has handled what it was given.

        Returns:
            ``True`` when delivery is idle, ``False`` if ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Until one pass finds every handler idle: a handler that issues commands
        # gives events to subscriptions already passed.
        while True:
            waited = False
            for subscription in self._subscriptions:
                if subscription.idle:
                    continue
                waited = True
                if not subscription.wait_idle(deadline):
                    return False
            if not waited:
                return True


#: A filter's :meth:`~jobledger.EventFilter.admits`, bound.
_Screen = Callable[[EventType, str, str, str, str, int, str], bool]

# The methods a filter's class may override, as EventFilter defines them.
_MATCHES = EventFilter.matches
_ADMITS = EventFilter.admits


def _screen(event_filter: EventFilter) -> _Screen | None:
    """What tells, before an event is made, whether ``event_filter`` may match it.

    ``None`` for a filter whose class overrides ``matches`` but not
    ``admits``: its ``admits`` would not say what its ``matches`` does.
    """
    cls = type(event_filter)
    if cls.matches is not _MATCHES and cls.admits is _ADMITS:
        return None
    return event_filter.admits


class Outbox:
    """Events committed by this process, waiting to be handed to the publishers.

    Events go in in commit order for each job (the facade appends under a
    per-job lock right after the save). :meth:`drain` hands them out in that
    order, one thread at a time. A handler that issues commands does not
    deliver their events from inside itself: the drain that is running picks
    them up after the handler returns, so every subscriber sees every job's
    events in order.
    """

    def __init__(self, publishers: Iterable[EventPublisher]) -> None:
        self._publishers = tuple(publishers)
        #: The events waiting to be handed out, oldest first (read it; :meth:`put` adds).
        self.queued: deque[JobEvent] = deque()
        self._lock = threading.Lock()
        self._draining = threading.local()

    @property
    def pending(self) -> bool:
        """Whether events wait to be handed out."""
        return bool(self.queued)

    def put(self, event: JobEvent) -> None:
        """Queue ``event``; call :meth:`drain` after releasing any locks."""
        self.queued.append(event)

    def drain(self) -> None:
        """Hand every queued event to every publisher; return when all are out."""
        if getattr(self._draining, "active", False):
            return
        with self._lock:
            self._draining.active = True
            try:
                while self.queued:
                    event = self.queued.popleft()
                    for publisher in self._publishers:
                        try:
                            publisher.publish(event)
                        except Exception:
                            logger.exception(
                                "publisher %r failed; the change stays committed",
                                publisher,
                                extra={"job_id": event.job_id, "event_id": event.event_id},
                            )
            finally:
                self._draining.active = False
