"""Tools for testing code that uses jobledger, and for proving storage adapters.

:mod:`jobledger.testing.strategies` holds the hypothesis strategies that make
every value the ledger accepts (and some it must refuse), and job definitions;
:mod:`jobledger.testing.runs` runs definitions in-process and synchronously,
with scripted task outcomes (crashes of the drive included), assertions on a
run's result and its launches, and leases that expire on the test's clock.
This package needs the ``testing`` extra: ``pip install "jobledger[testing]"``.

The fakes importable from here (:class:`ManualClock`, :class:`SequentialIds`,
:class:`RecordingPublisher`, :class:`EventMatch`, :class:`LedgerHarness`, from
:mod:`jobledger.testing.fakes`) and the pytest fixtures of
:mod:`jobledger.testing.plugin` need nothing beyond jobledger (and pytest for the
fixtures): importing this package never imports hypothesis.
"""

from jobledger.testing.fakes import (
    DEFAULT_START,
    EventMatch,
    LedgerHarness,
    ManualClock,
    RecordingPublisher,
    SequentialIds,
)

__all__ = [
    "DEFAULT_START",
    "EventMatch",
    "LedgerHarness",
    "ManualClock",
    "RecordingPublisher",
    "SequentialIds",
]
