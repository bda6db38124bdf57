"""Fixtures for the runner's scenario tests: a clock the test moves by hand."""

from __future__ import annotations

import pytest

from jobledger.testing import ManualClock


@pytest.fixture
def manual_clock() -> ManualClock:
    """Return the testing kit's clock at 2024-01-01T00:00:00Z; it moves only when told.

    Unlike ``jobledger_clock`` in these unit tests, it does not tick on readings, so
    a run's silence is exactly what the test advances it by.
    """
    return ManualClock()
