"""Every case of the suite, by name: what it runs and the metrics it returns.

A case is a function of a :class:`~benchmarks.measure.Setting` that returns
its metrics (name -> unit and one figure per repetition). ``benchmarks.case``
runs one case in a process of its own; ``benchmarks.run`` runs them all.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import json
import logging
import multiprocessing
import os
import threading
import time
import tracemalloc
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from typing import TYPE_CHECKING, Any

from benchmarks import service
from benchmarks.floors import (
    COMPLETED,
    UPDATED,
    DictLedger,
    PsycopgLedger,
    PsycopgOneLedger,
    SQLiteLedger,
    postgres_floor_schema,
)
from benchmarks.measure import Metric, Setting, fresh_schema, repeat
from benchmarks.probe import ValuesLedger
from jobledger import Jobs
from jobledger._application.defaults import new_id, utc_now

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Executor

    from benchmarks.sizes import Sizes
    from jobledger import Job, Repository
    from jobledger.runner import JobDefinition, Runner

__all__ = ["CASES", "RUNS_WHEN", "SKIP", "InlineExecutor"]

#: What a case returns when it cannot run here (no PostgreSQL server, no peer).
SKIP = "skipped"

# -- workload W ------------------------------------------------------------------------------


def _per_command(began: float, jobs: int, updates: int) -> float:
    """Microseconds per command of a workload W run that began at ``began``."""
    return (time.perf_counter() - began) / (jobs * (updates + 2)) * 1e6


def w_jobledger(jobs: Jobs, n_jobs: int, updates: int) -> float:
    """Workload W through the :class:`~jobledger.Jobs` facade; microseconds per command."""
    began = time.perf_counter()
    for _ in range(n_jobs):
        job = jobs.start(service="bench", entity="item", type="w", state={"done": 0})
        for done in range(1, updates + 1):
            job = jobs.update(job.id, etag=job.etag, state_update={"done": done})
        jobs.complete(job.id, etag=job.etag, state_update={"done": updates})
    return _per_command(began, n_jobs, updates)


def w_floor(
    ledger: DictLedger | SQLiteLedger | PsycopgLedger | PsycopgOneLedger | ValuesLedger,
    n_jobs: int,
    updates: int,
) -> float:
    """Workload W on a floor (or the probe); microseconds per command."""
    prefix = os.urandom(6).hex()
    began = time.perf_counter()
    for index in range(n_jobs):
        job_id = f"{prefix}-{index}"
        token: Any = ledger.start(job_id, {"done": 0})  # a version, or the probe's ETag
        for done in range(1, updates + 1):
            token = ledger.change(job_id, token, UPDATED, "started", {"done": done})
        ledger.change(job_id, token, COMPLETED, "completed", {"done": updates})
    return _per_command(began, n_jobs, updates)


def w_peer(environment: dict[str, str], n_jobs: int, updates: int) -> float:
    """Workload W on eventsourcing: get, trigger, save per command; microseconds per command."""
    from benchmarks.peer import JobAggregate, Ledger  # noqa: PLC0415  (the peer is optional)

    app = Ledger(env=environment)
    try:
        began = time.perf_counter()
        for _ in range(n_jobs):
            job = JobAggregate(service="bench", entity="item", type="w", state={"done": 0})
            app.save(job)
            job_id = job.id
            for done in range(1, updates + 1):
                job = app.repository.get(job_id)
                job.update(state_update={"done": done})
                app.save(job)
            job = app.repository.get(job_id)
            job.complete(state_update={"done": updates})
            app.save(job)
        return _per_command(began, n_jobs, updates)
    finally:
        app.close()


def _w_metric(values: list[float], info: dict[str, Any] | None = None) -> dict[str, Metric]:
    return {"w": {"unit": "us/command", "values": values, "info": info or {}}}


def case_w_jobledger_memory(setting: Setting) -> dict[str, Metric]:
    """W, jobledger with its in-memory repository (``Jobs()``)."""
    sizes = setting.sizes
    values = repeat(lambda: w_jobledger(Jobs(), sizes.memory_jobs, sizes.updates), sizes)
    return _w_metric(values, {"jobs": sizes.memory_jobs, "updates": sizes.updates})


def case_w_floor_dict(setting: Setting) -> dict[str, Metric]:
    """W, the dict floor."""
    sizes = setting.sizes
    values = repeat(lambda: w_floor(DictLedger(), sizes.memory_jobs, sizes.updates), sizes)
    return _w_metric(values, {"jobs": sizes.memory_jobs, "updates": sizes.updates})


def case_w_probe_values(setting: Setting) -> dict[str, Metric]:
    """W, the probe: the least work per command with jobledger's own values (not a floor)."""
    sizes = setting.sizes
    values = repeat(lambda: w_floor(ValuesLedger(), sizes.memory_jobs, sizes.updates), sizes)
    return _w_metric(values, {"jobs": sizes.memory_jobs, "updates": sizes.updates})


def _sqlite_repository(path: str, durability: str) -> Repository:
    from jobledger.sqlite import SQLiteRepository  # noqa: PLC0415

    return SQLiteRepository(path, durability=durability)


def _jobs_for(setting: Setting, durability: str) -> int:
    sizes = setting.sizes
    return sizes.durable_jobs if durability == "full" else sizes.sql_jobs


def case_w_jobledger_sqlite(durability: str) -> Callable[[Setting], dict[str, Metric]]:
    """W, jobledger on SQLite at ``durability``."""

    def run(setting: Setting) -> dict[str, Metric]:
        sizes = setting.sizes
        n_jobs = _jobs_for(setting, durability)

        def once() -> float:
            repository = _sqlite_repository(setting.database("jobledger"), durability)
            try:
                return w_jobledger(Jobs(repository=repository), n_jobs, sizes.updates)
            finally:
                repository.close()  # type: ignore[attr-defined]

        values = repeat(once, sizes, warm_up=durability != "full")
        return _w_metric(values, {"jobs": n_jobs, "updates": sizes.updates})

    return run


def case_w_floor_sqlite(durability: str) -> Callable[[Setting], dict[str, Metric]]:
    """W, the raw sqlite3 floor at ``durability``."""

    def run(setting: Setting) -> dict[str, Metric]:
        sizes = setting.sizes
        n_jobs = _jobs_for(setting, durability)

        def once() -> float:
            ledger = SQLiteLedger(setting.database("floor"), durability)
            try:
                return w_floor(ledger, n_jobs, sizes.updates)
            finally:
                ledger.close()

        values = repeat(once, sizes, warm_up=durability != "full")
        return _w_metric(values, {"jobs": n_jobs, "updates": sizes.updates})

    return run


def case_w_jobledger_postgres(setting: Setting) -> dict[str, Metric]:
    """W, jobledger on PostgreSQL (its own pool, default settings)."""
    from jobledger.postgres import PostgresRepository  # noqa: PLC0415

    if setting.postgres is None:
        return {}
    conninfo = setting.postgres
    sizes = setting.sizes

    def once() -> float:
        with (
            fresh_schema(conninfo, "bench_jobledger") as schema,
            PostgresRepository(conninfo, schema=schema) as repository,
        ):
            return w_jobledger(Jobs(repository=repository), sizes.sql_jobs, sizes.updates)

    values = repeat(once, sizes)
    return _w_metric(values, {"jobs": sizes.sql_jobs, "updates": sizes.updates})


def case_w_floor_psycopg(
    ledger: type[PsycopgLedger | PsycopgOneLedger], prefix: str
) -> Callable[[Setting], dict[str, Metric]]:
    """W, a raw psycopg floor (``ledger``) over loopback, each repetition in a new schema."""

    def run(setting: Setting) -> dict[str, Metric]:
        import psycopg  # noqa: PLC0415

        if setting.postgres is None:
            return {}
        conninfo = setting.postgres
        sizes = setting.sizes

        def once() -> float:
            with (
                fresh_schema(conninfo, prefix) as schema,
                psycopg.connect(conninfo, autocommit=True) as conn,
            ):
                postgres_floor_schema(conn, schema)
                return w_floor(ledger(conn, schema), sizes.sql_jobs, sizes.updates)

        values = repeat(once, sizes)
        return _w_metric(values, {"jobs": sizes.sql_jobs, "updates": sizes.updates})

    return run


def _postgres_settings(conninfo: str, schema: str) -> dict[str, str]:
    """Eventsourcing's PostgreSQL settings for ``conninfo``, its tables in ``schema``."""
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    parts = conninfo_to_dict(conninfo)
    settings = {
        "POSTGRES_DBNAME": str(parts.get("dbname", "")),
        "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(parts.get("port", "5432")),
        "POSTGRES_USER": str(parts.get("user", "")),
        # eventsourcing insists on a password; a server that trusts loopback ignores it.
        "POSTGRES_PASSWORD": str(parts.get("password") or "unused"),
        "POSTGRES_SCHEMA": schema,
    }
    return {key: value for key, value in settings.items() if value}


def case_w_peer(persistence: str, cache: str) -> Callable[[Setting], dict[str, Metric]]:
    """W, eventsourcing with ``persistence`` (popo, sqlite, postgres) and ``cache``."""

    def run(setting: Setting) -> dict[str, Metric]:
        from benchmarks.peer import environment  # noqa: PLC0415

        sizes = setting.sizes
        if persistence == "popo":
            n_jobs = sizes.memory_jobs
        elif persistence == "sqlite":
            n_jobs = sizes.durable_jobs
        else:
            n_jobs = sizes.sql_jobs
        if persistence == "postgres" and setting.postgres is None:
            return {}

        def once(n_jobs: int = n_jobs) -> float:
            if persistence == "popo":
                return w_peer(environment("popo", cache), n_jobs, sizes.updates)
            if persistence == "sqlite":
                path = setting.database("peer")
                return w_peer(
                    environment("sqlite", cache, SQLITE_DBNAME=path), n_jobs, sizes.updates
                )
            assert setting.postgres is not None  # noqa: S101  (checked above)
            import psycopg  # noqa: PLC0415
            from psycopg import sql  # noqa: PLC0415

            with fresh_schema(setting.postgres, "bench_peer") as schema:
                with psycopg.connect(setting.postgres, autocommit=True) as conn:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                settings = _postgres_settings(setting.postgres, schema)
                return w_peer(environment("postgres", cache, **settings), n_jobs, sizes.updates)

        # The warm-up is a tenth of the work: the peer without its cache is slow.
        values = repeat(once, sizes, warm_up=lambda: once(max(1, n_jobs // 10)))
        info: dict[str, Any] = {"jobs": n_jobs, "updates": sizes.updates}
        if persistence == "sqlite":
            info["synchronous"] = _sqlite_default_synchronous()
        return _w_metric(values, info)

    return run


def _sqlite_default_synchronous() -> str:
    """The ``synchronous`` setting a plain sqlite3 connection in WAL mode has here."""
    import sqlite3  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(os.path.join(folder, "probe.db"))  # noqa: PTH118
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            level = conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            conn.close()
    return {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(level, str(level))


# -- read cost -------------------------------------------------------------------------------


def _extend(jobs: Jobs, job: Job, updates: int) -> Job:
    """Append ``updates`` updates to ``job``'s log through the repository's own save.

    What ``jobs.update`` does, less its read of the job before each change
    (this loop holds the job already), so a long log is written sooner.
    """
    from jobledger._core.commands import UpdateJob  # noqa: PLC0415
    from jobledger._core.decide import decide  # noqa: PLC0415

    repository = jobs.repository
    done = job.version - 1
    for _ in range(updates):
        done += 1
        command = UpdateJob(job_id=job.id, etag=job.etag, state_update={"done": done})
        change = decide(job, command, now=utc_now(), new_id=new_id, limits=jobs.limits)
        repository.save(change)
        job = change.job
    return job


def _reads(setting: Setting, jobs: Jobs, gets: int) -> dict[str, Metric]:
    """get-by-id of jobs with each of ``read_sizes`` updates; microseconds per get.

    One job per size, all in the same ledger. Each repetition times the sizes
    in turns of a twentieth of its gets each, so a change in the machine's
    speed during the case (these figures are fractions of a microsecond in
    memory) touches every size alike.
    """
    sizes = setting.sizes
    job_ids: dict[int, str] = {}
    built: dict[int, float] = {}
    for size in sizes.read_sizes:
        building = time.perf_counter()
        job = jobs.start(service="bench", entity="item", type="read", state={"done": 0})
        job = _extend(jobs, job, size)
        built[size] = time.perf_counter() - building
        assert jobs.get(job.id).version == size + 1  # noqa: S101  (the log is as long as said)
        job_ids[size] = job.id

    turns = 20
    per_turn = max(gets // turns, 1)

    def timed(job_id: str) -> float:
        get = jobs.get
        began = time.perf_counter()
        for _ in range(per_turn):
            get(job_id)
        return time.perf_counter() - began

    figures: dict[int, list[float]] = {size: [] for size in sizes.read_sizes}

    def once() -> float:
        spent = dict.fromkeys(job_ids, 0.0)
        for _ in range(turns):
            for size, job_id in job_ids.items():
                spent[size] += timed(job_id)
        for size, seconds in spent.items():
            figures[size].append(seconds / (turns * per_turn) * 1e6)
        return 0.0

    repeat(once, sizes, warm_up=lambda: [timed(job_id) for job_id in job_ids.values()])
    return {
        f"get@{size}": {
            "unit": "us/get",
            "values": figures[size],
            "info": {"updates": size, "build_seconds": round(built[size], 3)},
        }
        for size in sizes.read_sizes
    }


def case_reads_memory(setting: Setting) -> dict[str, Metric]:
    """get-by-id in memory."""
    return _reads(setting, Jobs(), setting.sizes.memory_gets)


def case_reads_sqlite(setting: Setting) -> dict[str, Metric]:
    """get-by-id on SQLite (the log written at ``NORMAL``; reads do not flush)."""
    repository = _sqlite_repository(setting.database("reads"), "normal")
    try:
        return _reads(setting, Jobs(repository=repository), setting.sizes.sql_gets)
    finally:
        repository.close()  # type: ignore[attr-defined]


def case_reads_postgres(setting: Setting) -> dict[str, Metric]:
    """get-by-id on PostgreSQL."""
    from jobledger.postgres import PostgresRepository  # noqa: PLC0415

    if setting.postgres is None:
        return {}
    with (
        fresh_schema(setting.postgres, "bench_reads") as schema,
        PostgresRepository(setting.postgres, schema=schema) as repository,
    ):
        return _reads(setting, Jobs(repository=repository), setting.sizes.sql_gets)


# -- concurrency -----------------------------------------------------------------------------


def _open_repository(backend: str, target: str) -> Repository:
    if backend == "postgres":
        from jobledger.postgres import PostgresRepository  # noqa: PLC0415

        schema, _, conninfo = target.partition("|")
        return PostgresRepository(conninfo, schema=schema)
    durability, _, path = target.partition("|")
    return _sqlite_repository(path, durability)


def _writer_process(
    backend: str,
    target: str,
    *,
    n_jobs: int,
    updates: int,
    rounds: int,
    barrier: Any,  # noqa: ANN401  (a multiprocessing barrier proxy)
    results: Any,  # noqa: ANN401  (a multiprocessing queue)
) -> None:
    """One writer process: ``rounds`` rounds of W on jobs of its own, each after a barrier.

    ``backend`` ``psycopg`` is the raw psycopg floor (``target`` names its schema
    and server as for ``postgres``); the others are jobledger's repositories.
    """
    with contextlib.ExitStack() as stack:
        if backend == "psycopg":
            import psycopg  # noqa: PLC0415

            schema, _, conninfo = target.partition("|")
            conn = stack.enter_context(psycopg.connect(conninfo, autocommit=True))
            ledger = PsycopgLedger(conn, schema)

            def w() -> float:
                return w_floor(ledger, n_jobs, updates)

        else:
            repository = _open_repository(backend, target)
            close = getattr(repository, "close", None)
            if close is not None:
                stack.callback(close)
            jobs = Jobs(repository=repository)

            def w() -> float:
                return w_jobledger(jobs, n_jobs, updates)

        for _ in range(rounds):
            barrier.wait()
            began = time.monotonic()
            w()
            results.put((began, time.monotonic()))


def _throughputs(rounds: list[list[tuple[float, float]]], commands: int) -> list[float]:
    """Commands per second of each round, from its writers' (began, ended) times."""
    return [
        commands / (max(end for _, end in spans) - min(began for began, _ in spans))
        for spans in rounds
    ]


def _cpu_times() -> tuple[int, int]:
    """The machine's busy and total CPU time so far, in clock ticks (Linux ``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:  # noqa: PTH123
            fields = [int(part) for part in stat.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + fields[4]  # idle and iowait
    total = sum(fields[:8])
    return total - idle, total


def _concurrency_processes(
    backend: str, target: str, *, writers: int, n_jobs: int, updates: int, reps: int
) -> tuple[list[float], list[float]]:
    """Throughput of each round, and the share of the machine's CPU that was busy."""
    context = multiprocessing.get_context("spawn")
    rounds = reps + 1  # the first is a warm-up
    barrier = context.Barrier(writers + 1)  # this process starts each round's clock too
    results = context.Queue()
    processes = [
        context.Process(
            target=_writer_process,
            args=(backend, target),
            kwargs={
                "n_jobs": n_jobs,
                "updates": updates,
                "rounds": rounds,
                "barrier": barrier,
                "results": results,
            },
        )
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    spans = []
    busy_shares = []
    for _ in range(rounds):
        barrier.wait()
        busy, total = _cpu_times()
        spans.append([results.get(timeout=600) for _ in range(writers)])
        busy_after, total_after = _cpu_times()
        busy_shares.append((busy_after - busy) / max(total_after - total, 1))
    for process in processes:
        process.join(timeout=60)
    return _throughputs(spans[1:], writers * n_jobs * (updates + 2)), busy_shares[1:]


def _thread_round(jobs: Jobs, writers: int, n_jobs: int, updates: int) -> float:
    """One round of ``writers`` threads running W on jobs of their own; commands per second."""
    barrier = threading.Barrier(writers)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def writer() -> None:
        barrier.wait()
        began = time.monotonic()
        w_jobledger(jobs, n_jobs, updates)
        ended = time.monotonic()
        with lock:
            spans.append((began, ended))

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _throughputs([spans], writers * n_jobs * (updates + 2))[0]


class _GroupCommits(logging.Handler):
    """Counts the saves of the SQLite repository's group commits (its ``DEBUG`` log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.groups = 0
        self.saves = 0

    def emit(self, record: logging.LogRecord) -> None:
        saves = record.__dict__.get("saves")
        if saves is not None:
            self.groups += 1
            self.saves += saves

    def commands_per_commit(self, commands: int) -> float:
        """Commands per transaction since the last call, of ``commands`` saves in all."""
        commits = self.groups + commands - self.saves
        self.groups = self.saves = 0
        return round(commands / max(commits, 1), 2)


def _concurrency_threads(
    setting: Setting, backend: str, n_jobs: int, reps: int
) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """Throughput of each round of each thread count, a fresh ledger per count.

    After a warm-up round each, the counts take their rounds in turns, so that
    every count meets the (shared, noisy) machine in the same states. Also
    returns the commands per commit of each round on SQLite (its group
    commits, counted from its ``DEBUG`` log).
    """
    sizes = setting.sizes
    counts = sizes.thread_writers
    log = logging.getLogger("jobledger._adapters.sqlite")
    groups = _GroupCommits()
    with contextlib.ExitStack() as stack:
        log.setLevel(logging.DEBUG)
        log.addHandler(groups)
        stack.callback(log.removeHandler, groups)
        ledgers = []
        for _ in counts:
            _, repository = stack.enter_context(_concurrency_target(setting, backend))
            ledgers.append(Jobs(repository=repository()))
        for jobs, writers in zip(ledgers, counts, strict=True):
            _thread_round(jobs, writers, n_jobs, sizes.updates)
        values: dict[int, list[float]] = {writers: [] for writers in counts}
        per_commit: dict[int, list[float]] = {writers: [] for writers in counts}
        for _ in range(reps):
            for jobs, writers in zip(ledgers, counts, strict=True):
                groups.commands_per_commit(0)  # forget what came before
                values[writers].append(_thread_round(jobs, writers, n_jobs, sizes.updates))
                if backend.startswith("sqlite"):
                    commands = writers * n_jobs * (sizes.updates + 2)
                    per_commit[writers].append(groups.commands_per_commit(commands))
    return values, per_commit


def case_concurrency(backend: str, mode: str) -> Callable[[Setting], dict[str, Metric]]:
    """Throughput of 1, 4, 8 writers on distinct jobs as processes, or 1, 2, 4, 8 as threads."""

    def run(setting: Setting) -> dict[str, Metric]:
        sizes = setting.sizes
        if backend in {"postgres", "psycopg"} and setting.postgres is None:
            return {}
        threads = mode == "threads"
        # Threads run as many jobs at FULL as elsewhere: one thread's round (a
        # flush per command) must be long enough to time against the others'.
        durable = backend == "sqlite-full" and not threads
        n_jobs = sizes.durable_writer_jobs if durable else sizes.writer_jobs
        reps = min(sizes.reps, 3)
        metrics: dict[str, Metric] = {}
        in_turns, per_commit = (
            _concurrency_threads(setting, backend, n_jobs, sizes.reps) if threads else ({}, {})
        )
        for writers in sizes.thread_writers if threads else sizes.writers:
            busy: list[float] = []
            if threads:
                values = in_turns[writers]
            else:
                with _concurrency_target(setting, backend) as (target, _):
                    values, busy = _concurrency_processes(
                        backend.partition("-")[0],
                        target,
                        writers=writers,
                        n_jobs=n_jobs,
                        updates=sizes.updates,
                        reps=reps,
                    )
            metrics[f"writers={writers}"] = {
                "unit": "commands/s",
                "values": values,
                "info": {
                    "writers": writers,
                    "jobs_per_writer": n_jobs,
                    "updates": sizes.updates,
                    "mode": mode,
                    "cpu_busy": [round(share, 3) for share in busy],
                    "commands_per_commit": per_commit.get(writers, []),
                },
            }
        return metrics

    return run


@contextlib.contextmanager
def _concurrency_target(
    setting: Setting, backend: str
) -> Iterator[tuple[str, Callable[[], Repository]]]:
    """A fresh database for one concurrency measurement: its target, and how to open it."""
    if backend == "psycopg":
        import psycopg  # noqa: PLC0415

        assert setting.postgres is not None  # noqa: S101
        conninfo = setting.postgres
        with fresh_schema(conninfo, "bench_floor_writers") as schema:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                postgres_floor_schema(conn, schema)

            def no_repository() -> Repository:
                msg = "the psycopg floor has no repository: it runs in processes only"
                raise TypeError(msg)

            yield f"{schema}|{conninfo}", no_repository
        return
    if backend == "postgres":
        assert setting.postgres is not None  # noqa: S101
        conninfo = setting.postgres
        with fresh_schema(conninfo, "bench_writers") as schema:
            target = f"{schema}|{conninfo}"
            opened: list[Repository] = []

            def open_postgres() -> Repository:
                repository = _open_repository("postgres", target)
                opened.append(repository)
                return repository

            # Create the schema before the writers race to.
            first = _open_repository("postgres", target)
            first.close()  # type: ignore[attr-defined]
            try:
                yield target, open_postgres
            finally:
                for repository in opened:
                    repository.close()  # type: ignore[attr-defined]
        return
    durability = backend.partition("-")[2]
    target = f"{durability}|{setting.database('writers')}"
    _open_repository("sqlite", target).close()  # type: ignore[attr-defined]
    yield target, lambda: _open_repository("sqlite", target)


# -- memory ----------------------------------------------------------------------------------


def _held_per_update(build: Callable[[], Callable[[int], None]], updates: int) -> float:
    """Bytes held per update: traced memory after ``updates`` changes, less before, over them."""
    gc.collect()
    tracemalloc.start()
    try:
        change = build()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for done in range(1, updates + 1):
            change(done)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / updates


def case_memory_jobledger(setting: Setting) -> dict[str, Metric]:
    """Bytes held per stored small update by the in-memory repository (with its event)."""
    held: list[object] = []

    def build() -> Callable[[int], None]:
        jobs = Jobs()
        job = jobs.start(service="bench", entity="item", type="memory", state={"done": 0})
        current = [job]
        held.append(jobs)

        def change(done: int) -> None:
            job = current[0]
            current[0] = jobs.update(job.id, etag=job.etag, state_update={"done": done})

        return change

    updates = setting.sizes.memory_updates
    value = _held_per_update(build, updates)
    jobs = held[0]
    assert isinstance(jobs, Jobs)  # noqa: S101
    head = jobs.repository.feed_head()
    return {
        "bytes": {
            "unit": "bytes/update",
            "values": [value],
            "info": {"updates": updates, "feed": head},
        }
    }


def case_memory_floor(setting: Setting) -> dict[str, Metric]:
    """Bytes held per stored small update by the dict floor."""

    def build() -> Callable[[int], None]:
        ledger = DictLedger()
        ledger.start("job", {"done": 0})

        def change(done: int) -> None:
            ledger.change("job", done, UPDATED, "started", {"done": done})

        return change

    updates = setting.sizes.memory_updates
    value = _held_per_update(build, updates)
    return {"bytes": {"unit": "bytes/update", "values": [value], "info": {"updates": updates}}}


# -- runner ----------------------------------------------------------------------------------


def _noop(_context: object) -> None:
    """The no-op task."""


class InlineExecutor(ThreadPoolExecutor):
    """Runs each submitted call at once, in the submitting thread.

    A :class:`~concurrent.futures.ThreadPoolExecutor` by type only, so that the
    runner hands its tasks in-process cancellation flags and progress queues.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:  # noqa: ANN401
        """Run ``fn`` now; return its settled future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001  (the future carries any failure)
            future.set_exception(err)
        return future


def _inline_executors() -> dict[str, Executor]:
    # jobledger.testing.runs ships an inline executor in newer versions; use it if here.
    try:
        runs: object = importlib.import_module("jobledger.testing.runs")
    except ImportError:
        runs = None
    factory = getattr(runs, "InlineExecutor", None)
    if factory is None:
        return {"server": InlineExecutor(), "agent": InlineExecutor()}
    return {"server": factory(), "agent": factory()}


def case_runner(backend: str, executor: str) -> Callable[[Setting], dict[str, Metric]]:
    """Overhead per no-op task of the runner over a plain loop calling the same functions."""

    def run(setting: Setting) -> dict[str, Metric]:
        from jobledger.runner import JobDefinition, Runner, Task  # noqa: PLC0415

        sizes = setting.sizes
        durable = backend == "sqlite"
        count = sizes.durable_runner_tasks if durable else sizes.runner_tasks
        per_step = count // sizes.runner_steps
        tasks = [
            Task(f"task-{step}-{index}", _noop, launch_order=step)
            for step in range(1, sizes.runner_steps + 1)
            for index in range(per_step)
        ]
        definition = JobDefinition("Bench", tasks)
        functions = [task.function for task in definition.tasks]
        count = len(functions)
        plain: list[float] = []
        if backend == "memory":
            jobs = Jobs()
        else:
            jobs = Jobs(repository=_sqlite_repository(setting.database("runner"), "full"))
        executors = _inline_executors() if executor == "inline" else None
        # One runner for every repetition, as an application keeps one: the thread pools
        # it keeps between invokes are part of what is measured.
        runner = Runner(jobs, [definition], executors=executors)

        def once() -> float:
            began = time.perf_counter()
            for function in functions:
                function(None)
            loop = time.perf_counter() - began
            plain.append(loop / count * 1e6)
            began = time.perf_counter()
            result = runner.invoke("Bench")
            elapsed = time.perf_counter() - began
            assert result.status == "completed", result.status  # noqa: S101
            return (elapsed - loop) / count * 1e6

        with runner:
            values = repeat(once, sizes, warm_up=not durable)
        return {
            "overhead": {
                "unit": "us/task",
                "values": values,
                "info": {
                    "tasks": count,
                    "steps": sizes.runner_steps,
                    "executor": executor,
                    "runner": "one Runner for every repetition (one ledger, pools kept)",
                    "plain_loop_us_per_task": round(min(plain), 4),
                },
            }
        }

    return run


# -- runner: runs of many tasks, their scale, and DBOS beside them ----------------------------


def _steps_of(identifier: str, tasks: int, width: int) -> JobDefinition:
    """A definition of ``tasks`` no-op tasks in steps of ``width`` (a launch order each)."""
    from jobledger.runner import JobDefinition, Task  # noqa: PLC0415

    return JobDefinition(
        identifier,
        [
            Task(f"task-{step}-{index}", _noop, launch_order=step)
            for step in range(1, tasks // width + 1)
            for index in range(width)
        ],
    )


def _per_task(runner: Runner, identifier: str, tasks: int, cpu: list[float]) -> float:
    """Invoke ``identifier`` once; microseconds per task of the whole invoke.

    The process's CPU time per task (every thread) is appended to ``cpu``: on
    a busy machine it moves far less than the wall time.
    """
    began, cpu_began = time.perf_counter(), time.process_time()
    result = runner.invoke(identifier)
    elapsed = time.perf_counter() - began
    cpu.append(round((time.process_time() - cpu_began) / tasks * 1e6, 1))
    assert result.status == "completed", result.status  # noqa: S101
    return elapsed / tasks * 1e6


def _journal_mode(path: str) -> str:
    """The journal mode kept in a SQLite file."""
    import sqlite3  # noqa: PLC0415

    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


@contextlib.contextmanager
def _runner_ledger(setting: Setting, backend: str, name: str) -> Iterator[tuple[Jobs, Metric]]:
    """A new ledger on ``backend`` at its default settings, and what describes it."""
    if backend == "memory":
        yield Jobs(), {"ledger": "Jobs()"}
        return
    if backend in {"sqlite", "sqlite-normal"}:
        from jobledger.sqlite import SQLiteRepository  # noqa: PLC0415

        path = setting.database(name)
        if backend == "sqlite":
            repository = SQLiteRepository(path)  # the default durability: FULL
            ledger, synchronous = "default durability", "full (durability FULL, the default)"
        else:
            repository = SQLiteRepository(path, durability="normal")
            ledger, synchronous = "durability NORMAL", "normal (durability NORMAL)"
        try:
            about = {
                "ledger": f"SQLiteRepository(path): {ledger}",
                "journal_mode": _journal_mode(path),
                "synchronous": synchronous,
            }
            yield Jobs(repository=repository), about
        finally:
            repository.close()
        return
    from jobledger.postgres import PostgresRepository  # noqa: PLC0415

    assert setting.postgres is not None  # noqa: S101  (the case checks)
    with (
        fresh_schema(setting.postgres, "bench_runner") as schema,
        PostgresRepository(setting.postgres, schema=schema) as repository,
    ):
        yield Jobs(repository=repository), {"ledger": "PostgresRepository(conninfo, schema=...)"}


def _shape_runs(
    setting: Setting, backend: str, tasks: int, width: int, *, reps: int | None = None
) -> Metric:
    """Per-task cost of runs of ``tasks`` no-op tasks in steps of ``width``.

    A new ledger and one default ``Runner`` for all the repetitions; the warm-up is
    a run of ten tasks of the same width through that runner.
    """
    from jobledger.runner import Runner  # noqa: PLC0415

    sizes = setting.sizes
    with _runner_ledger(setting, backend, f"runner-{tasks}x{width}") as (jobs, about):
        definitions = [_steps_of("Bench", tasks, width), _steps_of("WarmUp", 10 * width, width)]
        cpu: list[float] = []
        with Runner(jobs, definitions) as runner:
            values = repeat(
                lambda: _per_task(runner, "Bench", tasks, cpu),
                sizes,
                warm_up=lambda: runner.invoke("WarmUp"),
                reps=reps,
            )
    info: Metric = {"tasks": tasks, "steps": tasks // width, "width": width}
    info["cpu_us_per_task"] = cpu
    info |= {"runner": "Runner(jobs, definitions): default executors and lease"}
    return {"unit": "us/task", "values": values, "info": info | about}


def case_runner_runs(backend: str) -> Callable[[Setting], dict[str, Metric]]:
    """Per-task cost of sequential runs (N tasks, each its own step) and of 10-wide steps."""

    def run(setting: Setting) -> dict[str, Metric]:
        if backend == "postgres" and setting.postgres is None:
            return {}
        sizes = setting.sizes
        metrics = {
            f"sequential@{tasks}": _shape_runs(setting, backend, tasks, 1)
            for tasks in sizes.sequential_tasks
        }
        wide = f"{sizes.wide_width}-wide@{sizes.wide_tasks}"
        metrics[wide] = _shape_runs(setting, backend, sizes.wide_tasks, sizes.wide_width)
        return metrics

    return run


def case_runner_scale(setting: Setting) -> dict[str, Metric]:
    """Per-task cost on SQLite of a run of ``scale_tasks`` and of one of ``scale_base``.

    Both in steps of ``scale_width``, each on a new SQLite file at the default
    durability, through a default ``Runner``; the large run once.
    """
    sizes = setting.sizes
    width = sizes.scale_width
    base = f"{width}-wide@{sizes.scale_base}"
    metrics = {base: _shape_runs(setting, "sqlite", sizes.scale_base, width)}
    large = _shape_runs(setting, "sqlite", sizes.scale_tasks, width, reps=1)
    large["info"]["seconds"] = round(large["values"][0] * sizes.scale_tasks / 1e6, 1)
    metrics[f"{width}-wide@{sizes.scale_tasks}"] = large
    return metrics


def case_dbos_workflows(synchronous: str) -> Callable[[Setting], dict[str, Metric]]:
    """DBOS Transact: per-step cost of workflows of N sequential no-op steps on SQLite."""

    def run(setting: Setting) -> dict[str, Metric]:
        from benchmarks.workflows import Workflows  # noqa: PLC0415  (the peer is optional)

        sizes = setting.sizes
        metrics: dict[str, Metric] = {}
        for count in sizes.sequential_tasks:
            # A new system database for each N, as the runner's cases have a new ledger.
            workflows = Workflows(setting.database(f"dbos-{count}"), synchronous)
            try:
                values = repeat(
                    functools.partial(workflows.per_step, count),
                    sizes,
                    warm_up=functools.partial(workflows.per_step, 10),
                )
            finally:
                workflows.close()
            journal = sorted({mode for mode, _ in workflows.seen})
            levels = sorted({level for _, level in workflows.seen})
            metrics[f"sequential@{count}"] = {
                "unit": "us/step",
                "values": values,
                "info": {
                    "steps": count,
                    "system_database": "sqlite (a local file)",
                    "journal_mode": ",".join(journal),
                    "synchronous": ",".join(levels),
                    "dbos": _version("dbos"),
                },
            }
        return metrics

    return run


def case_runner_floor(setting: Setting) -> dict[str, Metric]:
    """The durable floor of a sequential task: one raw sqlite3 transaction of 3 small rows, FULL.

    What a sequential task of the runner writes at least, done with nothing
    else: in one ``BEGIN IMMEDIATE`` transaction, in WAL mode at
    ``synchronous=FULL``, the run's row is updated, the ended task's row is
    updated and the next task's row is inserted (each a few dozen bytes of
    JSON). Its cost is about one fsync: the least a durable task can cost here.
    """
    import sqlite3  # noqa: PLC0415

    sizes = setting.sizes
    tasks = max(sizes.sequential_tasks)
    conn = sqlite3.connect(setting.database("floor-runner"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, version INTEGER, state TEXT)")
        conn.execute("INSERT INTO jobs VALUES ('run', 1, '{}')")
        made = [0]

        def once() -> float:
            began = time.perf_counter()
            for _ in range(tasks):
                made[0] += 1
                number = made[0]
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "UPDATE jobs SET version = version + 1, state = ? WHERE id = 'run'",
                    (json.dumps({"launches": number, "step": number}),),
                )
                conn.execute(
                    "UPDATE jobs SET version = version + 1, state = ? WHERE id = ?",
                    (json.dumps({"outcome": "completed", "output": True}), f"run/{number - 1}"),
                )
                conn.execute(
                    "INSERT INTO jobs VALUES (?, 1, ?)",
                    (f"run/{number}", json.dumps({"task": f"task-{number}", "launch": number})),
                )
                conn.execute("COMMIT")
            return (time.perf_counter() - began) / tasks * 1e6

        values = repeat(once, sizes)
    finally:
        conn.close()
    info = {
        "tasks": tasks,
        "transaction": "BEGIN IMMEDIATE; 2 UPDATEs and 1 INSERT of small rows; COMMIT",
        "journal_mode": "wal",
        "synchronous": "full",
    }
    return {"transaction": {"unit": "us/task", "values": values, "info": info}}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


# -- batches ---------------------------------------------------------------------------------

#: The batch sizes the batch case times: one change, a narrow step, a 100-wide step.
BATCH_SIZES = (1, 10, 100)

#: Changes each repetition of the batch case writes per batch size, by backend (a FULL
#: commit flushes the disk, so that backend writes fewer).
BATCH_CHANGES = {"memory": 3000, "sqlite-full": 300, "sqlite-normal": 1000, "postgres": 1000}


def _batch_round(jobs: Jobs, size: int, changes: int) -> float:
    """``changes`` task starts sent as batches of ``size`` through handle_all; us per change."""
    from jobledger import StartJob  # noqa: PLC0415

    batches = max(changes // size, 1)
    began = time.perf_counter()
    for _ in range(batches):
        jobs.handle_all(
            [StartJob(service="bench", entity="task", type="launch") for _ in range(size)]
        )
    return (time.perf_counter() - began) / (batches * size) * 1e6


def case_batches(backend: str) -> Callable[[Setting], dict[str, Metric]]:
    """Jobs.handle_all on ``backend``: microseconds per change in batches of 1, 10 and 100."""

    def run(setting: Setting) -> dict[str, Metric]:
        if backend == "postgres" and setting.postgres is None:
            return {}
        conninfo = setting.postgres or ""
        changes = BATCH_CHANGES[backend]
        figures: dict[int, list[float]] = {size: [] for size in BATCH_SIZES}

        def once() -> float:
            for size in BATCH_SIZES:
                with contextlib.ExitStack() as stack:
                    if backend == "memory":
                        repository: Repository | None = None
                    elif backend == "postgres":
                        from jobledger.postgres import PostgresRepository  # noqa: PLC0415

                        schema = stack.enter_context(fresh_schema(conninfo, "bench_batches"))
                        repository = stack.enter_context(
                            PostgresRepository(conninfo, schema=schema)
                        )
                    else:
                        durability = backend.removeprefix("sqlite-")
                        repository = _sqlite_repository(setting.database("batches"), durability)
                        stack.callback(repository.close)  # type: ignore[attr-defined]
                    figures[size].append(_batch_round(Jobs(repository), size, changes))
            return 0.0

        repeat(once, setting.sizes, warm_up=backend == "memory")
        return {
            f"change@{size}": {
                "unit": "us/change",
                "values": figures[size],
                "info": {"batch": size, "changes": changes},
            }
            for size in BATCH_SIZES
        }

    return run


# -- the service (issue 16) ------------------------------------------------------------------


def _store_address(conninfo: str, schema: str) -> str:
    """The ``--store`` address of ``schema`` on the PostgreSQL server ``conninfo``."""
    if "://" in conninfo:
        return f"{conninfo}{'&' if '?' in conninfo else '?'}schema={schema}"
    return f"{conninfo} schema={schema}"


def _latency_metrics(side: str, clients: int, rounds: list[service.Round]) -> dict[str, Metric]:
    """Commands per second, p50 and p99 (all commands, and p50 by kind in the info)."""
    by_kind = {
        kind: [round(service.Round.quantile(done.latencies[kind], 0.5), 1) for done in rounds]
        for kind in service.KINDS
    }
    info: dict[str, Any] = {
        "clients": clients,
        "commands": len(rounds[0].all()),
        "p50_by_kind": by_kind,
        "cpu_us_per_command": [done.cpu_per_command() for done in rounds],
    }
    return {
        f"{side}/commands-per-s@{clients}": {
            "unit": "commands/s",
            "values": [done.per_second() for done in rounds],
            "info": info,
        },
        f"{side}/p50@{clients}": {
            "unit": "us",
            "values": [service.Round.quantile(done.all(), 0.5) for done in rounds],
            "info": info,
        },
        f"{side}/p99@{clients}": {
            "unit": "us",
            "values": [service.Round.quantile(done.all(), 0.99) for done in rounds],
            "info": info,
        },
    }


def _service_store(
    stack: contextlib.ExitStack[Any], setting: Setting, backend: str, name: str
) -> tuple[str, Repository]:
    """A fresh store on ``backend``: its ``--store`` address and the repository opened on it."""
    if backend == "postgres":
        from jobledger.postgres import PostgresRepository  # noqa: PLC0415

        assert setting.postgres is not None  # noqa: S101  (the case checks it first)
        schema = stack.enter_context(fresh_schema(setting.postgres, f"bench_{name}"))
        repository: Repository = PostgresRepository(setting.postgres, schema=schema)
        address = _store_address(setting.postgres, schema)
    else:
        from jobledger.sqlite import SQLiteRepository  # noqa: PLC0415

        address = setting.database(name)
        repository = SQLiteRepository(address)  # the durable default, as `serve` opens it
    stack.callback(repository.close)  # type: ignore[attr-defined]
    return address, repository


def _service_repetition(
    setting: Setting,
    backend: str,
    rounds: dict[tuple[str, int], list[service.Round]],
    floors: dict[tuple[str, int], list[float]],
) -> None:
    """One repetition of the service case: each side at each width, then the HTTP floors."""
    sizes = setting.sizes
    widths = sorted({width for _, width in rounds}, reverse=True)

    def timed(side: str, ledgers: list[Any], server: service.Server | None = None) -> None:
        for width in widths:
            # One client runs as many jobs as all the concurrent clients together.
            jobs = sizes.service_jobs * (sizes.service_clients // width)
            rounds[side, width].append(
                service.run_round(
                    ledgers[:width], jobs, sizes.service_updates, sizes.service_warm_jobs, server
                )
            )

    with contextlib.ExitStack() as stack:
        _, repository = _service_store(stack, setting, backend, "direct")
        timed("direct", [Jobs(repository)] * max(widths))
    with contextlib.ExitStack() as stack:
        store, repository = _service_store(stack, setting, backend, "service")
        # The store is made; the server opens its own.
        repository.close()  # type: ignore[attr-defined]
        secret = service.add_client(store)
        log = os.path.join(setting.directory, "serve.log")  # noqa: PTH118
        server = stack.enter_context(service.serve(store, log))
        clients = [service.client_for(server.url, secret) for _ in range(max(widths))]
        raw_clients = [service.raw_client_for(server.url, secret) for _ in range(max(widths))]
        for client in (*clients, *raw_clients):
            stack.callback(client.close)
        timed("service", clients, server)
        timed("raw", raw_clients, server)
        for (prefix, width), values in floors.items():
            refused = service.http_floor(
                server.url, sizes.service_floor_requests, clients=width, raw=prefix == "raw/"
            )
            values.append(service.Round.quantile(refused, 0.5))


def _server_cpu(side: str, clients: int, rounds: list[service.Round]) -> dict[str, Metric]:
    """The server process's CPU per command (the service's own cost, whatever the client)."""
    return {
        f"{side}/server-cpu@{clients}": {
            "unit": "us",
            "values": [done.cpu_per_command()["server"] for done in rounds],
            "info": {"what": "CPU time of the server process / commands, over the timed part"},
        }
    }


def case_service(backend: str) -> Callable[[Setting], dict[str, Metric]]:
    """The service against the library called directly, on ``backend`` (sqlite, postgres).

    Each repetition, on fresh stores: the workload with ``service_clients``
    concurrent clients and then with one, directly (threads sharing one
    ``Jobs``, as the server shares one) and through a ``jobledger serve``
    process of its own, first with a ``JobsClient`` per thread, then with a
    ``RawClient`` (``http.client``) per thread; then the HTTP floors, requests
    the service refuses before any token check, from one client and from
    ``service_clients`` together, on each client side. At least three
    repetitions, up to ``reps`` while ``3 * case_seconds`` last.
    """

    def run(setting: Setting) -> dict[str, Metric]:
        # Without the server extra the case fails here, with ModuleNotFoundError, as a peer's do.
        importlib.import_module("jobledger.http")
        if backend == "postgres" and setting.postgres is None:
            return {}
        sizes = setting.sizes
        widths = (sizes.service_clients, 1)
        rounds: dict[tuple[str, int], list[service.Round]] = {
            (side, width): [] for side in ("direct", "service", "raw") for width in widths
        }
        floors: dict[tuple[str, int], list[float]] = {
            (prefix, width): [] for prefix in ("", "raw/") for width in widths
        }
        began = time.perf_counter()
        for done in range(1, sizes.reps + 1):
            _service_repetition(setting, backend, rounds, floors)
            if done >= 3 and time.perf_counter() - began > 3 * sizes.case_seconds:  # noqa: PLR2004
                break
        metrics: dict[str, Metric] = {}
        for width in widths:
            here = rounds["direct", width]
            metrics.update(_latency_metrics("direct", width, here))
            # JobsClient's figures keep their first names; the lean client's go under raw/.
            for side, added in (("service", "added-p50"), ("raw", "raw/added-p50")):
                there = rounds[side, width]
                metrics.update(_latency_metrics(side, width, there))
                metrics.update(_server_cpu(side, width, there))
                metrics[f"{added}@{width}"] = {
                    "unit": "us",
                    "values": [
                        service.Round.quantile(far.all(), 0.5)
                        - service.Round.quantile(near.all(), 0.5)
                        for near, far in zip(here, there, strict=True)
                    ],
                    "info": {"what": f"{side} p50 - direct p50, per repetition"},
                }
        for (prefix, width), values in floors.items():
            client = "http.client (RawClient)" if prefix else "httpx (as JobsClient)"
            metrics[f"{prefix}http-floor/p50@{width}"] = {
                "unit": "us",
                "values": values,
                "info": {
                    "requests": sizes.service_floor_requests * width,
                    "clients": width,
                    "what": f"POST /jobs without a token (401): uvicorn, routing, {client}; "
                    "no ledger",
                },
            }
        return metrics

    return run


# -- the registry ----------------------------------------------------------------------------

CASES: dict[str, Callable[[Setting], dict[str, Metric]]] = {
    "w/jobledger/memory": case_w_jobledger_memory,
    "w/floor/dict": case_w_floor_dict,
    "w/probe/values": case_w_probe_values,
    "w/eventsourcing/popo/nocache": case_w_peer("popo", "nocache"),
    "w/eventsourcing/popo/cache": case_w_peer("popo", "cache"),
    "w/eventsourcing/popo/cache-noff": case_w_peer("popo", "cache-noff"),
    "w/jobledger/sqlite-full": case_w_jobledger_sqlite("full"),
    "w/floor/sqlite3-full": case_w_floor_sqlite("full"),
    "w/jobledger/sqlite-normal": case_w_jobledger_sqlite("normal"),
    "w/floor/sqlite3-normal": case_w_floor_sqlite("normal"),
    "w/eventsourcing/sqlite/nocache": case_w_peer("sqlite", "nocache"),
    "w/eventsourcing/sqlite/cache": case_w_peer("sqlite", "cache"),
    "w/eventsourcing/sqlite/cache-noff": case_w_peer("sqlite", "cache-noff"),
    "w/jobledger/postgres": case_w_jobledger_postgres,
    # The five-round-trip floor (a reference) and the one-statement floor (the target's).
    "w/floor/psycopg": case_w_floor_psycopg(PsycopgLedger, "bench_floor"),
    "w/floor/psycopg-one": case_w_floor_psycopg(PsycopgOneLedger, "bench_floor_one"),
    "w/eventsourcing/postgres/nocache": case_w_peer("postgres", "nocache"),
    "w/eventsourcing/postgres/cache": case_w_peer("postgres", "cache"),
    "w/eventsourcing/postgres/cache-noff": case_w_peer("postgres", "cache-noff"),
    "reads/memory": case_reads_memory,
    "reads/sqlite": case_reads_sqlite,
    "reads/postgres": case_reads_postgres,
    "writers/postgres/processes": case_concurrency("postgres", "processes"),
    "writers/postgres/threads": case_concurrency("postgres", "threads"),
    "writers/floor/psycopg/processes": case_concurrency("psycopg", "processes"),
    "writers/sqlite-full/processes": case_concurrency("sqlite-full", "processes"),
    "writers/sqlite-normal/processes": case_concurrency("sqlite-normal", "processes"),
    "writers/sqlite-full/threads": case_concurrency("sqlite-full", "threads"),
    "writers/sqlite-normal/threads": case_concurrency("sqlite-normal", "threads"),
    "memory/jobledger": case_memory_jobledger,
    "memory/floor/dict": case_memory_floor,
    "runner/memory/inline": case_runner("memory", "inline"),
    "runner/memory/threads": case_runner("memory", "threads"),
    "runner/sqlite/inline": case_runner("sqlite", "inline"),
    "runner/sqlite/threads": case_runner("sqlite", "threads"),
    "runner/runs/memory": case_runner_runs("memory"),
    "runner/runs/sqlite": case_runner_runs("sqlite"),
    "runner/runs/postgres": case_runner_runs("postgres"),
    "runner/runs/sqlite-normal": case_runner_runs("sqlite-normal"),
    "runner/floor/sqlite3-full": case_runner_floor,
    "dbos/workflows/sqlite": case_dbos_workflows("full"),
    "dbos/workflows/sqlite-normal": case_dbos_workflows("normal"),
    "runner/scale/sqlite": case_runner_scale,
    "batches/memory": case_batches("memory"),
    "batches/sqlite-full": case_batches("sqlite-full"),
    "batches/sqlite-normal": case_batches("sqlite-normal"),
    "batches/postgres": case_batches("postgres"),
    "service/sqlite": case_service("sqlite"),
    "service/postgres": case_service("postgres"),
}

#: Cases that run only when the sizes of the run ask for them (the rest always run).
RUNS_WHEN: dict[str, Callable[[Sizes], bool]] = {
    "runner/scale/sqlite": lambda sizes: sizes.scale_tasks > 0,
}
