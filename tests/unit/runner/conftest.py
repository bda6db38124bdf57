"""Fixtures for the runner's scenario tests: a clock the test moves by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest


class ManualClock:
    """A thread-safe clock that stands still until the test advances it."""

    def __init__(self) -> None:
        """Start at 2024-01-01T00:00:00Z."""
        self._lock = threading.Lock()
        self._now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        """Return the current time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._lock:
            self._now += timedelta(seconds=seconds)


@pytest.fixture
def manual_clock() -> ManualClock:
    """Return a clock that moves only when the test says so."""
    return ManualClock()
