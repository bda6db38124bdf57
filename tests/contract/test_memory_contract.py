"""The in-memory repository keeps every rule of the repository contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger import InMemoryRepository
from jobledger.testing.contract import AtomicBatchesContract

if TYPE_CHECKING:
    from pathlib import Path


class TestInMemoryRepositoryContract(AtomicBatchesContract):
    """The contract suite over InMemoryRepository."""

    def make_repository(self, directory: Path) -> InMemoryRepository:  # noqa: ARG002  (nothing to keep on disk)
        """Return a new, empty in-memory repository."""
        return InMemoryRepository()
