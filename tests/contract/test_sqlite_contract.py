"""The SQLite repository keeps every rule of the repository contract, on a real file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger.sqlite import SQLiteRepository
from jobledger.testing.contract import AtomicBatchesContract

if TYPE_CHECKING:
    from pathlib import Path


class TestSQLiteRepositoryContract(AtomicBatchesContract):
    """The contract suite over SQLiteRepository, each repository a new file."""

    def make_repository(self, directory: Path) -> SQLiteRepository:
        """Return a repository in a new database file in ``directory``."""
        return SQLiteRepository(directory / "jobs.db")
