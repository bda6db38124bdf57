"""How big each case's work is: the flags of the suite, with a quick and a full preset."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The sizes every case reads its work from.

    Attributes:
        updates: U, the updates of each job in workload W (between its start and
            its completion), for every backend.
        memory_jobs: J of workload W in memory (jobledger, the dict floor, the peer).
        sql_jobs: J of workload W on PostgreSQL and on SQLite at ``NORMAL``.
        durable_jobs: J of workload W on SQLite at ``FULL`` (every commit is a disk flush).
        read_sizes: The update counts of one job at which get-by-id is timed.
        memory_gets: get-by-id calls per timing, in memory.
        sql_gets: get-by-id calls per timing, on SQLite and PostgreSQL.
        writers: The writer counts of the concurrency case (processes).
        thread_writers: The writer counts of the concurrency case as threads of
            one process sharing one ``Jobs`` (the group-commit scaling table).
        writer_jobs: Jobs each concurrent writer runs workload W on (U updates each).
        durable_writer_jobs: The same, on SQLite at ``FULL``.
        memory_updates: Updates of the one job whose memory is measured.
        runner_tasks: No-op tasks of the runner case in memory.
        durable_runner_tasks: No-op tasks of the runner case on SQLite (its state
            holds every task, so each task's write costs more as the run grows).
        runner_steps: Steps (launch orders) those tasks are spread over.
        sequential_tasks: The run lengths N of the sequential runner cases and of
            the DBOS workflows they are compared with (each task its own step).
        wide_tasks: Tasks of the runner's 10-wide case.
        wide_width: Tasks per step of that case.
        scale_tasks: Tasks of the runner's scale case on SQLite (0: not run).
        scale_base: Tasks of the run the scale case compares its per-task cost with.
        scale_width: Tasks per step of both runs of the scale case.
        service_clients: Concurrent clients of the service cases (threads).
        service_jobs: Jobs each of those clients runs (start, updates, complete);
            the single-client round runs as many as all of them together.
        service_updates: Updates of each job of the service cases.
        service_warm_jobs: Untimed jobs each client runs first in every round.
        service_floor_requests: Refused requests timed for the service's HTTP floor.
        reps: Timed repetitions of each case (after one untimed warm-up where cheap).
        case_seconds: A case stops repeating once this much time is spent (at
            least three repetitions are always made).
    """

    updates: int
    memory_jobs: int
    sql_jobs: int
    durable_jobs: int
    read_sizes: tuple[int, ...]
    memory_gets: int
    sql_gets: int
    writers: tuple[int, ...]
    thread_writers: tuple[int, ...]
    writer_jobs: int
    durable_writer_jobs: int
    memory_updates: int
    runner_tasks: int
    durable_runner_tasks: int
    runner_steps: int
    sequential_tasks: tuple[int, ...]
    wide_tasks: int
    wide_width: int
    scale_tasks: int
    scale_base: int
    scale_width: int
    service_clients: int
    service_jobs: int
    service_updates: int
    service_warm_jobs: int
    service_floor_requests: int
    reps: int
    case_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The sizes as a JSON object."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Sizes:
        """Sizes from :meth:`to_json`'s object."""
        values = dict(document)
        for name in ("read_sizes", "writers", "thread_writers", "sequential_tasks"):
            values[name] = tuple(values[name])
        return cls(**values)


QUICK = Sizes(
    updates=20,
    memory_jobs=100,
    sql_jobs=10,
    durable_jobs=3,
    read_sizes=(10, 1_000, 3_000),
    memory_gets=200_000,
    sql_gets=1_000,
    writers=(1, 4, 8),
    thread_writers=(1, 2, 4, 8),
    writer_jobs=4,
    durable_writer_jobs=1,
    memory_updates=10_000,
    runner_tasks=1_000,
    durable_runner_tasks=200,
    runner_steps=10,
    sequential_tasks=(10, 100),
    wide_tasks=100,
    wide_width=10,
    scale_tasks=0,
    scale_base=1_000,
    scale_width=100,
    service_clients=8,
    service_jobs=8,
    service_updates=3,
    service_warm_jobs=1,
    service_floor_requests=200,
    reps=3,
    case_seconds=4.0,
)

FULL = Sizes(
    updates=100,
    memory_jobs=100,
    sql_jobs=20,
    durable_jobs=5,
    read_sizes=(10, 1_000, 100_000),
    memory_gets=1_000_000,
    sql_gets=3_000,
    writers=(1, 4, 8),
    thread_writers=(1, 2, 4, 8),
    writer_jobs=4,
    durable_writer_jobs=1,
    memory_updates=100_000,
    runner_tasks=1_000,
    durable_runner_tasks=1_000,
    runner_steps=10,
    sequential_tasks=(10, 100, 1_000),
    wide_tasks=1_000,
    wide_width=10,
    scale_tasks=100_000,
    scale_base=1_000,
    scale_width=100,
    service_clients=8,
    service_jobs=50,
    service_updates=3,
    service_warm_jobs=2,
    service_floor_requests=1000,
    reps=5,
    case_seconds=10.0,
)
