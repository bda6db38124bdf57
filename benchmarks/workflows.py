"""The runner's peer: DBOS Transact, a workflow of N sequential no-op steps on SQLite.

DBOS keeps each workflow and the output of each of its steps in its *system
database*; with a ``sqlite:///`` URL that is a local file, and nothing else is
reached (no Conductor key, no OTLP endpoint). It opens that file in SQLite's
default rollback-journal mode (``journal_mode=DELETE``) with the library's
default ``synchronous`` (FULL here); it sets neither itself. To measure it at
jobledger's durable default, the file is put in WAL mode before DBOS opens it
(the journal mode is kept in the file) and every connection DBOS opens is set
to ``synchronous=FULL`` (or ``NORMAL``, to compare with jobledger's
``Durability.NORMAL``); what each connection then had is recorded.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig

__all__ = ["SYNCHRONOUS_NAMES", "Workflows"]

#: ``PRAGMA synchronous`` values by number.
SYNCHRONOUS_NAMES = {0: "off", 1: "normal", 2: "full", 3: "extra"}


@DBOS.step()
def noop_step() -> None:
    """The no-op step: DBOS records its (empty) output before the next one runs."""


@DBOS.workflow()
def sequential(count: int) -> int:
    """A workflow of ``count`` no-op steps, one after the other."""
    for _ in range(count):
        noop_step()
    return count


class Workflows:
    """DBOS launched on one SQLite system database, in WAL mode at a ``synchronous`` setting.

    DBOS is one instance per process: use one ``Workflows`` at a time.

    Args:
        path: The SQLite file of the system database (created here).
        synchronous: The ``PRAGMA synchronous`` of every connection DBOS
            opens: ``"full"`` (jobledger's default durability) or ``"normal"``.
    """

    def __init__(self, path: str, synchronous: str = "full") -> None:
        """Put ``path`` in WAL mode, then launch DBOS on it."""
        if synchronous not in {"full", "normal"}:
            msg = f"synchronous must be 'full' or 'normal', not {synchronous!r}"
            raise ValueError(msg)
        self.synchronous = synchronous
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        #: What each connection DBOS opened had: (journal_mode, synchronous).
        self.seen: set[tuple[str, str]] = set()
        sa.event.listen(sa.Engine, "connect", self._set_pragmas)
        config: DBOSConfig = {
            "name": "jobledger-bench",
            "system_database_url": f"sqlite:///{path}",
            "log_level": "WARNING",
        }
        DBOS(config=config)
        DBOS.launch()

    def _set_pragmas(self, dbapi_conn: Any, _record: object) -> None:  # noqa: ANN401  (any DB-API connection)
        if not isinstance(dbapi_conn, sqlite3.Connection):
            return
        dbapi_conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        journal = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
        level = dbapi_conn.execute("PRAGMA synchronous").fetchone()[0]
        self.seen.add((str(journal), SYNCHRONOUS_NAMES.get(level, str(level))))

    def per_step(self, count: int) -> float:
        """Run a workflow of ``count`` no-op steps; microseconds per step."""
        began = time.perf_counter()
        done = sequential(count)
        elapsed = time.perf_counter() - began
        assert done == count, done  # noqa: S101  (the workflow ran to its end)
        return elapsed / count * 1e6

    def close(self) -> None:
        """Stop DBOS (its threads and its engine)."""
        DBOS.destroy()
        sa.event.remove(sa.Engine, "connect", self._set_pragmas)
