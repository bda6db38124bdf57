"""Deterministic clocks, id factories and ledgers for the unit tests.

The ``clock`` fixture reads 2024-01-01T00:00:00Z first and one second later on
every further reading; the ``ids`` fixture hands out ``id-0001``, ``id-0002``, ...
A start reads the clock once and takes three ids (job id unless given, ETag,
event id); a change reads the clock once and takes two (ETag, event id). So the
literal times and ids the tests expect follow from the commands they send.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs

if TYPE_CHECKING:
    from collections.abc import Callable

#: The first reading of the ``clock`` fixture.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


class TickingClock:
    """A clock that reads :data:`EPOCH` first and one second later on each reading."""

    def __init__(self) -> None:
        """Start before the first reading."""
        self.readings = 0

    def __call__(self) -> datetime:
        """Return the next time."""
        now = EPOCH + timedelta(seconds=self.readings)
        self.readings += 1
        return now


class CountingIds:
    """An id factory that hands out ``id-0001``, ``id-0002``, ... (sortable as text)."""

    def __init__(self) -> None:
        """Start before the first id."""
        self.count = 0

    def __call__(self) -> str:
        """Return the next id."""
        self.count += 1
        return f"id-{self.count:04d}"


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """Return a fresh deterministic clock (see the module docstring)."""
    return TickingClock()


@pytest.fixture
def ids() -> Callable[[], str]:
    """Return a fresh deterministic id factory (see the module docstring)."""
    return CountingIds()


@pytest.fixture
def jobs(clock: Callable[[], datetime], ids: Callable[[], str]) -> Jobs:
    """Return an in-memory ledger that uses the deterministic ``clock`` and ``ids``."""
    return Jobs(clock=clock, id_factory=ids)
