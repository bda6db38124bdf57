"""The peer: the ``eventsourcing`` library, given workload W the way its documentation shows.

One aggregate per job; each command gets the aggregate from the application's
repository, triggers one event (a method decorated with ``@event``) and saves
the application. The persistence module and the aggregate cache are chosen
with eventsourcing's own environment variables, passed to the application.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

__all__ = ["CACHE_VARIANTS", "JobAggregate", "Ledger", "environment"]

#: The aggregate cache settings measured: none; the cache with its default
#: fast-forward (each get still reads the events recorded since, so that several
#: processes may write); the cache without fast-forward (no read at all: right
#: only when this one application object writes these aggregates).
CACHE_VARIANTS: dict[str, dict[str, str]] = {
    "nocache": {},
    "cache": {"AGGREGATE_CACHE_MAXSIZE": "10000"},
    "cache-noff": {"AGGREGATE_CACHE_MAXSIZE": "10000", "AGGREGATE_CACHE_FASTFORWARD": "n"},
}


class JobAggregate(Aggregate):
    """A job: started, updated with a merge patch, completed."""

    @event("Started")
    def __init__(self, service: str, entity: str, type: str, state: dict[str, Any]) -> None:
        """Start the job (the ``Started`` event)."""
        self.service = service
        self.entity = entity
        self.type = type
        self.status = "started"
        self.state = dict(state)

    @event("Updated")
    def update(self, state_update: dict[str, Any]) -> None:
        """Apply a (flat) patch to the state."""
        self.state.update(state_update)

    @event("Completed")
    def complete(self, state_update: dict[str, Any]) -> None:
        """Apply a last patch and complete the job."""
        self.state.update(state_update)
        self.status = "completed"


class Ledger(Application[Any]):
    """The application that keeps the job aggregates."""


def environment(persistence: str, cache: str, **settings: str) -> dict[str, str]:
    """The eventsourcing settings of one variant.

    Args:
        persistence: ``popo``, ``sqlite`` or ``postgres`` (eventsourcing's modules).
        cache: A key of :data:`CACHE_VARIANTS`.
        settings: The persistence module's own settings (``SQLITE_DBNAME``, ...).
    """
    return {
        "PERSISTENCE_MODULE": f"eventsourcing.{persistence}",
        **CACHE_VARIANTS[cache],
        **settings,
    }
