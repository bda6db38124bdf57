"""Jobs kept durably in an SQLite file, shared safely by threads and processes.

:class:`SQLiteRepository` is jobledger's embedded durable backend: standard
library only, nothing to install or run. Give it to :class:`~jobledger.Jobs`::

    from jobledger import Jobs
    from jobledger.sqlite import SQLiteRepository

    jobs = Jobs(repository=SQLiteRepository("jobs.db"))

Every process that opens the same file sees the same jobs; ETags guard every
change across all of them. :class:`Durability` says what a commit survives
(see also the durability how-to). Storage failures raise
:class:`~jobledger.StorageError` and its subclasses.
"""

from __future__ import annotations

from jobledger._adapters.sqlite import APPLICATION_ID, SCHEMA_VERSION, Durability, SQLiteRepository

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Durability",
    "SQLiteRepository",
]
