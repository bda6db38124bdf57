"""In-process delivery of events to subscribers, in commit order, after commit."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from jobledger._core.events import EventFilter, JobEvent

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Self

    from jobledger._ports import EventPublisher

__all__ = ["Handler", "InProcessPublisher", "Outbox", "Subscription"]

logger = logging.getLogger(__name__)

#: A subscriber's callback: it receives one event at a time.
Handler = Callable[[JobEvent], object]


class Subscription:
    """A handler subscribed to the events that pass a filter; cancel to stop.

    Attributes:
        handler: The callback.
        filter: Which events it receives.
    """

    def __init__(
        self, handler: Handler, event_filter: EventFilter, owner: InProcessPublisher
    ) -> None:
        self.handler = handler
        self.filter = event_filter
        self._owner = owner
        self._active = True

    @property
    def active(self) -> bool:
        """Whether the subscription still receives events."""
        return self._active

    def cancel(self) -> None:
        """Stop delivering events to this handler; calling it again does nothing."""
        self._active = False
        self._owner.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cancel()

    def __repr__(self) -> str:
        state = "active" if self._active else "canceled"
        return f"<Subscription {getattr(self.handler, '__qualname__', self.handler)!r} {state}>"


class InProcessPublisher:
    """An :class:`~jobledger.EventPublisher` that calls subscribed handlers.

    Each event goes to every active subscription whose filter it passes, in
    subscription order. A handler that raises is logged (with the job and
    event ids) and skipped; the others still receive the event.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()

    def subscribe(self, handler: Handler, event_filter: EventFilter) -> Subscription:
        """Add ``handler`` for the events that pass ``event_filter``."""
        if not callable(cast("object", handler)):
            msg = f"handler must be callable, not {type(handler).__name__}"
            raise TypeError(msg)
        subscription = Subscription(handler, event_filter, self)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    @property
    def subscribed(self) -> bool:
        """Whether any subscription is active (if none, there is nobody to deliver to)."""
        return bool(self._subscriptions)

    def remove(self, subscription: Subscription) -> None:
        """Forget ``subscription``; see :meth:`Subscription.cancel`."""
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def publish(self, event: JobEvent) -> None:
        """Deliver ``event`` to every matching, active subscription."""
        for subscription in self._subscriptions:
            if not (subscription.active and subscription.filter.matches(event)):
                continue
            try:
                subscription.handler(event)
            except Exception:
                logger.exception(
                    "event handler %r failed; the change stays committed",
                    subscription,
                    extra={"job_id": event.job_id, "event_id": event.event_id},
                )


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
        self._pending: deque[JobEvent] = deque()
        self._lock = threading.Lock()
        self._draining = threading.local()

    @property
    def pending(self) -> bool:
        """Whether events wait to be handed out."""
        return bool(self._pending)

    def put(self, event: JobEvent) -> None:
        """Queue ``event``; call :meth:`drain` after releasing any locks."""
        self._pending.append(event)

    def drain(self) -> None:
        """Hand every queued event to every publisher; return when all are out."""
        if getattr(self._draining, "active", False):
            return
        with self._lock:
            self._draining.active = True
            try:
                while self._pending:
                    event = self._pending.popleft()
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
