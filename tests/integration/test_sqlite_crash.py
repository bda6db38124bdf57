"""A process writing to SQLite, SIGKILLed at random moments, never leaves a broken ledger.

``JOBLEDGER_CRASH_ROUNDS`` sets how many kills one run makes (20 by default;
raise it for a soak test).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import random
import sqlite3
import threading
import time
import traceback
from typing import TYPE_CHECKING

from jobledger import Jobs
from jobledger.sqlite import Durability, SQLiteRepository
from jobledger.testing.contract import check_ledger_consistent, kill_writer_at_random

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from pathlib import Path

ROUNDS = int(os.environ.get("JOBLEDGER_CRASH_ROUNDS", "20"))

# Threads of the group-commit writer, and its rounds (each ends in a SIGKILL).
GROUP_THREADS = 8
GROUP_ROUNDS = max(4, ROUNDS // 4)


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


class _GroupReporter(logging.Handler):
    """Sends the size of every group commit the repository logs down the pipe."""

    def __init__(self, send: Callable[[str, object], None]) -> None:
        super().__init__(logging.DEBUG)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        if "saves" in record.__dict__:
            self._send("group", record.__dict__["saves"])


def _group_writer(path: str, durability: str, seed: int, conn: Connection) -> None:
    """Threads of one ledger writing their own jobs; each change reported once its save returned."""
    lock = threading.Lock()

    def send(kind: str, payload: object) -> None:
        with lock:
            conn.send((kind, payload))

    sqlite_logger = logging.getLogger("jobledger._adapters.sqlite")
    sqlite_logger.setLevel(logging.DEBUG)
    sqlite_logger.addHandler(_GroupReporter(send))
    jobs = Jobs(SQLiteRepository(path, durability=durability))
    barrier = threading.Barrier(GROUP_THREADS + 1)

    def writer(index: int) -> None:
        rng = random.Random(seed * GROUP_THREADS + index)  # noqa: S311  (not crypto)
        try:
            barrier.wait()
            while True:
                job = jobs.start(service="crash", entity=f"thread-{index}", type="group")
                send("committed", (job.id, job.version, job.etag))
                for done in range(rng.randrange(1, 20)):
                    patch = {"done": done, "blob": "x" * rng.randrange(2000)}
                    job = jobs.update(job.id, etag=job.etag, state_update=patch)
                    send("committed", (job.id, job.version, job.etag))
                job = jobs.complete(job.id, etag=job.etag)
                send("committed", (job.id, job.version, job.etag))
        except BaseException:
            send("error", traceback.format_exc())
            raise

    for index in range(GROUP_THREADS):
        threading.Thread(target=writer, args=(index,), daemon=True).start()
    barrier.wait()
    send("ready", None)
    while True:
        time.sleep(1)


def _kill_group_writer(
    path: Path, durability: str, seed: int, context: multiprocessing.context.BaseContext
) -> tuple[list[tuple[str, int, str]], list[int]]:
    """Run the group writer, SIGKILL it a moment after it is ready; what it reported."""
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(  # type: ignore[attr-defined]
        target=_group_writer, args=(str(path), durability, seed, sender), daemon=True
    )
    child.start()
    sender.close()
    try:
        assert receiver.poll(60), "the writer process never got ready"
        assert ("ready", None) == receiver.recv()
        time.sleep(random.Random(seed).uniform(0.05, 0.4))  # noqa: S311  (not crypto)
    finally:
        child.kill()
        child.join(60)
    committed: list[tuple[str, int, str]] = []
    groups: list[int] = []
    while True:
        try:
            kind, payload = receiver.recv()
        except (EOFError, OSError):
            break  # drained (a message the kill cut short is dropped)
        assert "error" != kind, payload
        if kind == "group":
            groups.append(payload)
        else:
            committed.append(tuple(payload))
    receiver.close()
    return committed, groups


class TestSQLiteGroupCommitCrashSafety:
    """A kill in the middle of group commits loses no save that was acknowledged."""

    def test_a_writer_of_eight_threads_killed_at_random_loses_no_acknowledged_change(
        self, tmp_path: Path
    ) -> None:
        """After each SIGKILL: integrity ok, every acknowledged change kept, logs and feed agree."""
        path = tmp_path / "jobs.db"
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["jobledger.sqlite", "jobledger.testing.contract"])
        committed: list[tuple[str, int, str]] = []
        groups: list[int] = []
        for round_number in range(GROUP_ROUNDS):
            durability = "full" if round_number % 2 == 0 else "normal"

            reported, grouped = _kill_group_writer(path, durability, round_number, context)

            assert [("ok",)] == _integrity(path), round_number
            committed.extend(reported)
            groups.extend(grouped)
            with SQLiteRepository(path) as repository:
                check_ledger_consistent(repository, committed)
        assert len(committed) >= GROUP_ROUNDS
        assert max(groups) > 1
