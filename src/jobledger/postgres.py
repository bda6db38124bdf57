"""Jobs kept in PostgreSQL, shared by every process and machine that reaches the server.

:class:`PostgresRepository` is the backend to move to when one machine is no
longer enough. It needs the ``postgres`` extra (``pip install
"jobledger[postgres]"``: psycopg 3 and psycopg_pool). Give it to
:class:`~jobledger.Jobs`::

    from jobledger import Jobs
    from jobledger.postgres import PostgresRepository

    repository = PostgresRepository("postgresql://app@db.example/app", schema="jobs")
    jobs = Jobs(repository=repository)

ETags guard every change across all processes; the event feed is gap-free
and never skips an event; durable subscribers wake on ``LISTEN``/``NOTIFY``.
Storage failures raise :class:`~jobledger.StorageError` and its subclasses, a server
that cannot be reached :class:`~jobledger.StorageUnavailableError`.
"""

from __future__ import annotations

from jobledger._adapters.postgres import SCHEMA_VERSION, PostgresRepository

__all__ = [
    "SCHEMA_VERSION",
    "PostgresRepository",
]
