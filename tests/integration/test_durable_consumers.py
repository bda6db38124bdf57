"""Two consumer processes of one durable subscriber name: one active, the other takes over."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from jobledger import DurableSubscriber, JobEvent, Jobs
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Callable

LEASE_SECONDS = 1.0


def _consume(database: str, record: str) -> None:
    """A consumer process: append each job id it handles to ``record``, until killed."""

    def handle(event: JobEvent) -> None:
        with Path(record).open("a", encoding="utf-8") as out:
            out.write(event.job_id + "\n")

    repository = SQLiteRepository(database)
    DurableSubscriber(
        repository, "mail", handle, poll_interval=0.02, lease=LEASE_SECONDS
    ).run_forever(threading.Event())


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


class TestOneConsumerAcrossProcesses:
    """The lease of a durable subscriber name holds across processes and survives SIGKILL."""

    def test_the_standby_takes_over_after_the_active_one_is_killed(self, tmp_path: Path) -> None:
        """Only one of two consumers handles events; after SIGKILL the other handles the rest."""
        database = str(tmp_path / "jobs.db")
        jobs = Jobs(SQLiteRepository(database))
        records = [tmp_path / "a.txt", tmp_path / "b.txt"]
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=_consume, args=(database, str(record)), daemon=True)
            for record in records
        ]
        for worker in workers:
            worker.start()
        try:
            for number in range(5):
                jobs.start(service="hr", entity="e", type="t", job_id=f"before-{number}")
            _until(lambda: sum(len(_lines(record)) for record in records) == 5)
            time.sleep(3 * LEASE_SECONDS)  # the standby had every chance to consume too
            counts = [len(_lines(record)) for record in records]
            active = counts.index(5)
            assert sorted(counts) == [0, 5]

            pid = workers[active].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            workers[active].join(10)
            for number in range(5):
                jobs.start(service="hr", entity="e", type="t", job_id=f"after-{number}")
            standby = records[1 - active]
            _until(lambda: len(_lines(standby)) == 5)
            assert [f"after-{n}" for n in range(5)] == _lines(standby)
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.kill()
                worker.join(10)
