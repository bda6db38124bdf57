"""SQLite group commit: threads' saves share one transaction, each with its own outcome.

Most tests hold SQLite's write lock from a connection of their own while the
threads save, so that they all queue behind it; when the lock is let go, one
transaction commits them together. The repository logs every transaction that
held several saves (``saves``, ``refused``), which is how the tests see that
the saves really did share one.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    ConcurrencyError,
    Jobs,
    StartJob,
    StorageError,
    StorageTimeoutError,
    UpdateJob,
)
from jobledger._adapters import sqlite as sqlite_adapter
from jobledger._core.decide import Change, decide
from jobledger._core.jsondoc import Limits
from jobledger.sqlite import SQLiteRepository
from jobledger.testing.contract import check_ledger_consistent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.queues import Queue
    from pathlib import Path

    from jobledger import Job

NOW = datetime(2024, 1, 1, tzinfo=UTC)

# How long the threads get to queue behind the held lock (a bound, not a measurement).
QUEUE_SECONDS = 1.0


def _start(job_id: str) -> Change:
    ids = iter([f"{job_id}-etag", f"{job_id}-event"])
    return decide(
        None,
        StartJob(service="hr", entity="employee", type="sync", job_id=job_id),
        now=NOW,
        new_id=lambda: next(ids),
        limits=Limits(),
    )


def _update(job: Job, status: str, *, request_id: str | None = None) -> Change:
    ids = iter([f"{job.id}-{status}-etag", f"{job.id}-{status}-event"])
    return decide(
        job,
        UpdateJob(job_id=job.id, etag=job.etag, status=status, request_id=request_id),
        now=NOW,
        new_id=lambda: next(ids),
        limits=Limits(),
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the test's database file goes."""
    return tmp_path / "jobs.db"


@pytest.fixture
def repository(path: Path) -> Iterator[SQLiteRepository]:
    """A repository in a new file."""
    with SQLiteRepository(path) as repository:
        yield repository


@pytest.fixture
def groups(caplog: pytest.LogCaptureFixture) -> Callable[[], list[tuple[int, int]]]:
    """``(saves, refused)`` of every transaction that held several saves, so far."""
    caplog.set_level(logging.DEBUG, logger="jobledger._adapters.sqlite")

    def logged() -> list[tuple[int, int]]:
        return [
            (record.__dict__["saves"], record.__dict__["refused"])
            for record in caplog.records
            if "saves" in record.__dict__
        ]

    return logged


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt, reaching a thread in the middle of a commit."""


def _interrupted(_conn: object, _change: Change) -> int:
    raise Interrupt


def _saved_together(path: Path, saves: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run each save in a thread of its own while the write lock is held; return each outcome.

    The outcome is what the save returned, or the error it raised.
    """
    outcomes: dict[str, object] = {}
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    def run(name: str, save: Callable[[], object]) -> None:
        try:
            outcomes[name] = save()
        except BaseException as error:  # noqa: BLE001  (the outcome under test)
            outcomes[name] = error

    threads = [threading.Thread(target=run, args=item) for item in saves.items()]
    try:
        for thread in threads:
            thread.start()
        time.sleep(QUEUE_SECONDS)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for thread in threads:
        thread.join(30)
    return outcomes


class TestGroupCommit:
    """Saves that meet in one transaction keep their own compare-and-set, outcome and error."""

    def test_a_conflict_inside_a_group_fails_only_its_own_save(
        self,
        repository: SQLiteRepository,
        path: Path,
        groups: Callable[[], list[tuple[int, int]]],
    ) -> None:
        """Seven updates and one with a stale ETag share a commit: only the stale one fails."""
        jobs = [_start(f"job-{n}").job for n in range(8)]
        repository.save_all([_start(job.id) for job in jobs])
        repository.save(_update(jobs[7], "moved-on"))
        saves: dict[str, Callable[[], object]] = {
            job.id: functools.partial(repository.save, _update(job, "busy")) for job in jobs
        }

        outcomes = _saved_together(path, saves)

        refused = outcomes.pop("job-7")
        assert isinstance(refused, ConcurrencyError)
        assert "job-7-moved-on-etag" == refused.current_etag
        assert [10, 11, 12, 13, 14, 15, 16] == sorted(outcomes.values())  # type: ignore[type-var]
        assert [(8, 1)] == groups()
        assert ["busy"] * 7 + ["moved-on"] == [repository.get(job.id).status for job in jobs]
        assert list(range(1, 17)) == [entry.position for entry in repository.read_feed()]

    def test_a_batch_inside_a_group_stays_all_or_nothing(
        self,
        repository: SQLiteRepository,
        path: Path,
        groups: Callable[[], list[tuple[int, int]]],
    ) -> None:
        """A refused batch rolls back whole; the saves committed with it stay."""
        jobs = [_start(f"job-{n}").job for n in range(4)]
        repository.save_all([_start(job.id) for job in jobs])
        repository.save(_update(jobs[3], "moved-on"))
        saves: dict[str, Callable[[], object]] = {
            "batch": lambda: repository.save_all(
                [_update(jobs[0], "batched"), _update(jobs[3], "stale")]
            ),
            "one": lambda: repository.save(_update(jobs[1], "alone")),
            "two": lambda: repository.save(_update(jobs[2], "alone")),
        }

        outcomes = _saved_together(path, saves)

        assert isinstance(outcomes.pop("batch"), ConcurrencyError)
        assert [6, 7] == sorted(outcomes.values())  # type: ignore[type-var]
        assert [(3, 1)] == groups()
        assert ["started", "alone", "alone", "moved-on"] == [
            repository.get(job.id).status for job in jobs
        ]
        assert [] == list(repository.updates("job-0"))

    def test_a_request_id_taken_inside_the_group_refuses_the_later_save_only(
        self,
        repository: SQLiteRepository,
        path: Path,
        groups: Callable[[], list[tuple[int, int]]],
    ) -> None:
        """Two saves with one request id in one commit: one is recorded, the other refused."""
        jobs = [_start(f"job-{n}").job for n in range(3)]
        repository.save_all([_start(job.id) for job in jobs])
        saves: dict[str, Callable[[], object]] = {
            job.id: functools.partial(repository.save, _update(job, "busy", request_id="request-1"))
            for job in jobs[:2]
        }
        saves["other"] = lambda: repository.save(_update(jobs[2], "busy"))

        outcomes = _saved_together(path, saves)

        kinds = sorted(type(outcome).__name__ for outcome in outcomes.values())
        assert ["RequestIdConflictError", "int", "int"] == kinds
        assert [(3, 1)] == groups()
        recorded = repository.find_request("request-1")
        assert recorded is not None
        winner = next(
            name
            for name, outcome in outcomes.items()
            if isinstance(outcome, int) and name != "other"
        )
        assert winner == recorded.job.id
        assert [4, 5] == [entry.position for entry in repository.read_feed(after=3)]

    def test_a_save_failing_after_it_wrote_leaves_the_others_to_the_next_commit(
        self,
        repository: SQLiteRepository,
        path: Path,
        groups: Callable[[], list[tuple[int, int]]],
    ) -> None:
        """SQLite failing midway through one save fails it alone; the rest commit next."""
        jobs = [_start(f"job-{n}").job for n in range(3)]
        repository.save_all([_start(job.id) for job in jobs])
        # A stray log row makes job-2's first update fail after its compare-and-set wrote.
        stray = sqlite3.connect(path)
        stray.execute(
            "INSERT INTO updates (job_id, update_id, update_type, status, etag, at) "
            "VALUES ('job-2', 1, 0, 'stray', 'stray-etag', 0)"
        )
        stray.commit()
        stray.close()
        saves: dict[str, Callable[[], object]] = {
            job.id: functools.partial(repository.save, _update(job, "busy")) for job in jobs
        }

        outcomes = _saved_together(path, saves)

        failed = outcomes.pop("job-2")
        assert isinstance(failed, StorageError)
        assert isinstance(failed.__cause__, sqlite3.IntegrityError)
        assert [4, 5] == sorted(outcomes.values())  # type: ignore[type-var]
        assert [(2, 0)] == groups()
        assert ["busy", "busy", "started"] == [repository.get(job.id).status for job in jobs]

    def test_a_leader_interrupted_midway_leaves_no_thread_waiting(
        self, repository: SQLiteRepository, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An interrupt in the committing thread fails the whole group; the ledger works on."""
        jobs = [_start(f"job-{n}").job for n in range(3)]
        repository.save_all([_start(job.id) for job in jobs])
        monkeypatch.setattr(sqlite_adapter, "write_change", _interrupted)
        saves: dict[str, Callable[[], object]] = {
            job.id: functools.partial(repository.save, _update(job, "busy")) for job in jobs
        }

        outcomes = _saved_together(path, saves)
        monkeypatch.undo()

        kinds = sorted(type(outcome).__name__ for outcome in outcomes.values())
        assert ["Interrupt", "StorageError", "StorageError"] == kinds
        assert 3 == repository.feed_head()
        assert 4 == repository.save(_update(jobs[0], "after"))

    def test_a_thread_interrupted_while_it_waits_withdraws_its_save(
        self,
        repository: SQLiteRepository,
        path: Path,
        groups: Callable[[], list[tuple[int, int]]],
    ) -> None:
        """Ctrl-C in a thread queued behind a commit takes its save back; the others go on."""
        jobs = [_start(f"job-{n}").job for n in range(3)]
        repository.save_all([_start(job.id) for job in jobs])
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        first = threading.Thread(target=repository.save, args=(_update(jobs[0], "busy"),))
        last = threading.Thread(target=repository.save, args=(_update(jobs[2], "busy"),))
        main = threading.main_thread().ident
        assert main is not None
        later = threading.Timer(QUEUE_SECONDS / 2, last.start)
        interrupt = threading.Timer(2 * QUEUE_SECONDS, signal.pthread_kill, (main, signal.SIGINT))
        try:
            first.start()
            time.sleep(QUEUE_SECONDS)  # the first leads, and waits for the lock
            later.start()
            interrupt.start()
            with pytest.raises(KeyboardInterrupt):
                repository.save(_update(jobs[1], "busy"))  # queued between them
        finally:
            later.join(30)
            interrupt.cancel()
            holder.execute("ROLLBACK")
            holder.close()
        first.join(30)
        last.join(30)

        assert ["busy", "started", "busy"] == [repository.get(job.id).status for job in jobs]
        assert [(2, 0)] == groups()

    def test_saves_queued_behind_a_lock_held_too_long_each_time_out(self, path: Path) -> None:
        """Behind another process's lock, every queued save gives up with StorageTimeoutError."""
        with SQLiteRepository(path, busy_timeout=0.2) as repository:
            jobs = [_start(f"job-{n}").job for n in range(3)]
            repository.save_all([_start(job.id) for job in jobs])
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            outcomes: dict[str, object] = {}

            def run(job: Job) -> None:
                try:
                    outcomes[job.id] = repository.save(_update(job, "busy"))
                except StorageTimeoutError as error:
                    outcomes[job.id] = error

            threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
            try:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(30)
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            assert [StorageTimeoutError] * 3 == [type(outcomes[job.id]) for job in jobs]
            assert 3 == repository.feed_head()
            assert 4 == repository.save(_update(jobs[0], "after"))

    def test_saves_one_after_another_are_never_grouped(
        self, repository: SQLiteRepository, groups: Callable[[], list[tuple[int, int]]]
    ) -> None:
        """A thread alone commits its save at once, in a transaction of its own."""
        positions = [repository.save(_start(f"job-{n}")) for n in range(5)]

        assert [1, 2, 3, 4, 5] == positions
        assert [] == groups()

    def test_ledger_threads_share_commits_and_keep_every_change(
        self, repository: SQLiteRepository, groups: Callable[[], list[tuple[int, int]]]
    ) -> None:
        """Eight threads of one Jobs on their own jobs: commits are shared, nothing is lost."""
        jobs = Jobs(repository=repository)
        barrier = threading.Barrier(8)
        finished: list[Job] = []

        def writer(index: int) -> None:
            barrier.wait(30)
            job = jobs.start(service="hr", entity="employee", type="sync", job_id=f"w-{index}")
            for done in range(20):
                job = jobs.update(job.id, etag=job.etag, state_update={"done": done})
            finished.append(jobs.complete(job.id, etag=job.etag))

        threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert [22] * 8 == [job.version for job in finished]
        assert 8 * 22 == repository.feed_head()
        assert list(range(1, 177)) == [entry.position for entry in repository.read_feed(limit=1000)]
        assert any(saves > 1 for saves, _ in groups())
        assert all(refused == 0 for _, refused in groups())


# Threads of each writer process, and the changes each thread makes.
PROCESS_THREADS = 4
THREAD_CHANGES = 30


class _GroupCounter(logging.Handler):
    """Counts the transactions of several saves the repository logs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.groups = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.__dict__.get("saves", 0) > 1:
            self.groups += 1


def _threaded_writer(path: str, name: str, results: Queue[object]) -> None:
    """A process of threads, each writing a job of its own; reports what was acknowledged."""
    counter = _GroupCounter()
    sqlite_logger = logging.getLogger("jobledger._adapters.sqlite")
    sqlite_logger.setLevel(logging.DEBUG)
    sqlite_logger.addHandler(counter)
    with SQLiteRepository(path) as repository:
        jobs = Jobs(repository=repository)
        acknowledged: list[tuple[str, int, str]] = []
        barrier = threading.Barrier(PROCESS_THREADS)

        def writer(index: int) -> None:
            barrier.wait(30)
            job = jobs.start(service="hr", entity=name, type="sync", job_id=f"{name}-{index}")
            for done in range(THREAD_CHANGES - 2):
                job = jobs.update(job.id, etag=job.etag, state_update={"done": done})
            job = jobs.complete(job.id, etag=job.etag)
            acknowledged.append((job.id, job.version, job.etag))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(PROCESS_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    results.put((acknowledged, counter.groups))


class TestGroupCommitAcrossProcesses:
    """Processes grouping their own threads' saves still take turns at the file's lock."""

    def test_two_processes_of_threads_keep_every_change_and_a_reader_skips_nothing(
        self, path: Path
    ) -> None:
        """Each process groups its threads' saves; the feed read meanwhile has no gap or skip."""
        SQLiteRepository(path).close()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["jobledger.sqlite", "jobledger.testing.contract"])
        results = context.Queue()
        writers = [
            context.Process(target=_threaded_writer, args=(str(path), name, results))
            for name in ("left", "right")
        ]
        total = 2 * PROCESS_THREADS * THREAD_CHANGES
        seen: list[int] = []
        with SQLiteRepository(path) as reader:
            for process in writers:
                process.start()
            deadline = time.monotonic() + 120
            while len(seen) < total and time.monotonic() < deadline:
                reader.wait_for_feed(len(seen), 0.05)
                seen.extend(entry.position for entry in reader.read_feed(after=len(seen)))
            reports = [results.get(timeout=120) for _ in writers]
            for process in writers:
                process.join(60)

            assert list(range(1, total + 1)) == seen
            committed = [change for acknowledged, _ in reports for change in acknowledged]
            assert 2 * PROCESS_THREADS == len(committed)
            check_ledger_consistent(reader, committed)
        assert all(groups > 0 for _, groups in reports)
