"""A process writing to SQLite, SIGKILLed at random moments, never leaves a broken ledger.

``JOBLEDGER_CRASH_ROUNDS`` sets how many kills one run makes (20 by default;
raise it for a soak test).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sqlite3
from typing import TYPE_CHECKING

from jobledger.sqlite import Durability, SQLiteRepository
from jobledger.testing.contract import check_ledger_consistent, kill_writer_at_random

if TYPE_CHECKING:
    from pathlib import Path

ROUNDS = int(os.environ.get("JOBLEDGER_CRASH_ROUNDS", "20"))


def _integrity(path: Path) -> list[tuple[str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


class TestSQLiteCrashSafety:
    """Every kill leaves a sound file holding every reported commit and nothing half-written."""

    def test_a_writer_killed_at_random_moments_leaves_every_commit_whole(
        self, tmp_path: Path
    ) -> None:
        """After each SIGKILL: integrity ok, reported commits there, logs and feed agree."""
        path = tmp_path / "jobs.db"
        # A fork server forks each writer from one process that imported jobledger
        # already, so a round costs a fork, not an interpreter start.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["jobledger.sqlite", "jobledger.testing.contract"])
        committed: list[tuple[str, int, str]] = []
        for round_number in range(ROUNDS):
            durability = Durability.FULL if round_number % 2 else Durability.NORMAL
            factory = functools.partial(SQLiteRepository, path, durability=durability)

            reported = kill_writer_at_random(factory, seed=round_number, context=context)

            assert [("ok",)] == _integrity(path), round_number
            committed.extend(reported)
            with SQLiteRepository(path) as repository:
                audit = check_ledger_consistent(repository, committed)
            assert audit.feed_head >= len(committed), round_number
        assert len(committed) >= ROUNDS
