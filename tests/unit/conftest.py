"""The unit tests' ledger: the jobledger pytest plugin's, with a clock that ticks.

The tests use the plugin's fixtures (:mod:`jobledger.testing.plugin`), changed in
one way: ``jobledger_clock`` here reads 2024-01-01T00:00:00Z first and one second
later on every further reading, so each change gets its own time. Ids are the
plugin's: ``id-0001``, ``id-0002``, ... A start reads the clock once and takes three
ids (job id unless given, ETag, event id); a change reads the clock once and takes
two (ETag, event id). So the literal times and ids the tests expect follow from the
commands they send. ``jobs`` is the plugin's ``jobledger_jobs`` under a short name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from jobledger.testing import ManualClock

if TYPE_CHECKING:
    from jobledger import Jobs


@pytest.fixture
def jobledger_clock() -> ManualClock:
    """Return a clock that reads 2024-01-01T00:00:00Z first, then one second later each time."""
    return ManualClock(tick=timedelta(seconds=1))


@pytest.fixture
def jobs(jobledger_jobs: Jobs) -> Jobs:
    """Return the plugin's in-memory ledger, on the ticking clock and sequential ids."""
    return jobledger_jobs
