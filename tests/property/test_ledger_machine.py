"""The ledger's ETag and lifecycle rules, proved by the state machine on the in-memory backend."""

from __future__ import annotations

from jobledger import InMemoryRepository
from jobledger.testing.machine import ledger_machine

TestInMemoryLedger = ledger_machine(InMemoryRepository).TestCase
