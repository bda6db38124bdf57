"""Timing launches out: when a launch elsewhere started, and ending a timed-out worker process.

The driver keeps each running launch's deadline; these are the parts of that
which read a launch's job or reach the worker process it recorded.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from jobledger._core.job import Job

__all__ = ["START_GRACE", "START_POLL", "recorded_start", "terminate_worker"]

#: Seconds between looks at the jobs of timed launches in other processes, for their start.
START_POLL: Final = 0.2
#: Seconds a launch elsewhere that its executor says runs has to record its start,
#: on top of its timeout, before it is timed out without one.
START_GRACE: Final = 1.0


def recorded_start(job: Job) -> datetime | None:
    """When the launch whose job is ``job`` recorded that it started, if it did."""
    started = job.state.get("started_at")
    return datetime.fromisoformat(started) if isinstance(started, str) else None


def terminate_worker(job: Job) -> int | None:
    """End the worker process that ``job``'s launch recorded; its process id, if it was ended.

    Only a worker on this machine, and never this process: a launch that
    recorded no worker, or one elsewhere, or one that ended meanwhile, is left
    alone (``None``).
    """
    worker = job.state.get("worker")
    if not isinstance(worker, dict):
        return None
    pid, host = worker.get("pid"), worker.get("host")
    if not isinstance(pid, int) or host != socket.gethostname() or pid == os.getpid():
        return None
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return None  # it ended meanwhile
    return pid
