"""What every case shares: repetitions, results, and fresh databases to run in."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from benchmarks.sizes import Sizes

__all__ = ["Metric", "Setting", "fresh_directory", "fresh_schema", "repeat"]

#: One metric of a case: ``{"unit": ..., "values": [one per repetition], "info": {...}}``.
Metric = dict[str, Any]


class Setting:
    """Where a case runs: its sizes, its scratch directory, its PostgreSQL server.

    Attributes:
        sizes: The sizes of the run.
        directory: A scratch directory of the case's own.
        postgres: The PostgreSQL conninfo, or ``None`` when no server was given.
    """

    def __init__(self, sizes: Sizes, directory: str, postgres: str | None) -> None:
        """Describe a setting; see the class for the arguments."""
        self.sizes = sizes
        self.directory = directory
        self.postgres = postgres

    def database(self, name: str) -> str:
        """A path for a new SQLite database file (in a directory of its own)."""
        folder = tempfile.mkdtemp(prefix=f"{name}-", dir=self.directory)
        return os.path.join(folder, "jobs.db")  # noqa: PTH118  (the adapters take str paths)


def repeat(
    run: Callable[[], float],
    sizes: Sizes,
    *,
    warm_up: bool | Callable[[], object] = True,
    reps: int | None = None,
) -> list[float]:
    """Call ``run`` (one timed repetition, returning its figure) several times.

    One untimed warm-up first: ``run`` itself when ``warm_up`` is true, or the
    callable given (a smaller run of the same code, for slow cases); then ``reps`` (default
    ``sizes.reps``) repetitions, stopping early once ``sizes.case_seconds``
    have passed and at least one repetition is done.
    """
    if callable(warm_up):
        warm_up()
    elif warm_up:
        run()
    values: list[float] = []
    began = time.perf_counter()
    for _ in range(sizes.reps if reps is None else reps):
        values.append(run())
        if time.perf_counter() - began > sizes.case_seconds:
            break
    return values


def fresh_directory() -> contextlib.AbstractContextManager[str]:
    """A scratch directory removed afterwards."""
    return tempfile.TemporaryDirectory(prefix="jobledger-bench-")


@contextlib.contextmanager
def fresh_schema(conninfo: str, prefix: str) -> Iterator[str]:
    """A name for a new PostgreSQL schema, dropped (with its tables) afterwards."""
    import psycopg  # noqa: PLC0415  (psycopg is only needed with a server)
    from psycopg import sql  # noqa: PLC0415

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
