"""Parked events: what a durable subscriber set aside after too many failed attempts."""

from __future__ import annotations

import attrs

from jobledger._core.events import JobEvent

__all__ = ["ParkedEvent"]


@attrs.frozen(kw_only=True)
class ParkedEvent:
    """An event a durable subscriber gave up on, kept in the repository until retried.

    Attributes:
        name: The durable subscriber's name.
        position: The event's feed position.
        event: The event itself.
        error: The last error its handler raised, as text (type and message).
        attempts: How many times the handler failed on it.
        retry: Whether it was put back (:meth:`jobledger.Jobs.retry_parked`) and
            waits for the subscriber's next batch.
    """

    name: str
    position: int
    event: JobEvent
    error: str
    attempts: int
    retry: bool = False
