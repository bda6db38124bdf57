"""Processes share a PostgreSQL ledger safely: from creating its schema to racing on ETags."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest
from psycopg import sql

from jobledger._adapters.postgres import _Names
from jobledger.postgres import SCHEMA_VERSION, PostgresRepository
from jobledger.testing.contract import race_processes

pytestmark = pytest.mark.postgres

#: How long a test waits for something that should happen at once before it gives up.
PATIENCE = 30.0

#: Seconds to wait for a child process before the test gives up.
PATIENCE = 60.0

# Opens the repository (creating its schema if need be) and reports the feed's head.
OPENING_CLIENT = """
import sys
from jobledger.postgres import PostgresRepository

conninfo, schema = sys.argv[1:3]
with PostgresRepository(conninfo, schema=schema) as repository:
    print(repository.feed_head(), flush=True)
"""


class TestProcesses:
    """Several processes on one PostgreSQL schema."""

    def test_processes_racing_on_shared_etags_lose_and_double_nothing(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Four processes racing on two jobs' ETags keep every acknowledged update exactly once."""
        factory = functools.partial(PostgresRepository, postgres_conninfo, schema=schema)

        race = race_processes(factory, processes=4, rounds=10, free_updates=10)

        race.check()
        assert race.conflicts > 0

    def test_processes_racing_batches_on_shared_etags_save_all_or_nothing(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Four processes racing batches on two jobs: one winner a round, all or nothing of each."""
        factory = functools.partial(PostgresRepository, postgres_conninfo, schema=schema)

        race = race_processes(factory, processes=4, rounds=10, free_updates=10, batches=True)

        race.check()
        assert [1] * 10 == list(race.winners)

    def test_processes_opening_a_new_schema_at_once_all_succeed(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """Six processes waiting at the migration lock at once all open the new schema."""
        lock_key = _Names(schema).lock_key
        with psycopg.connect(postgres_conninfo, autocommit=True) as holder:
            with holder.transaction():
                holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                clients = [_opening_client(postgres_conninfo, schema) for _ in range(6)]
                waiting = _wait_for_lock_waiters(holder, 6)
            outputs = [client.communicate(timeout=PATIENCE)[0] for client in clients]

        assert 6 == waiting
        assert [0] * 6 == [client.returncode for client in clients]
        assert ["0\n"] * 6 == outputs
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            row = conn.execute(
                sql.SQL("SELECT value FROM {} WHERE name = 'schema_version'").format(
                    sql.Identifier(schema, "jobledger_meta")
                )
            ).fetchone()
        assert (str(SCHEMA_VERSION),) == row


def _opening_client(conninfo: str, schema: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603  (our own interpreter running our own code)
        [sys.executable, "-c", OPENING_CLIENT, conninfo, schema],
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_for_lock_waiters(conn: psycopg.Connection[tuple[Any, ...]], count: int) -> int:
    """Wait until ``count`` sessions wait for an advisory lock; return how many do."""
    deadline = time.monotonic() + PATIENCE
    while True:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        waiting = 0 if row is None else int(row[0])
        if waiting >= count or time.monotonic() > deadline:
            return waiting
        time.sleep(0.02)
