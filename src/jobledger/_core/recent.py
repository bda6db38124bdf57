"""Jobs as they were last seen, kept so that work may skip reading them again.

A kept job is a hint, never the truth: whoever uses one checks it against the
stored job (its ETag and version say whether it still is the stored one) or
saves with a compare-and-set that refuses it when it is not.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from jobledger._core.jsondoc import encoded_size

if TYPE_CHECKING:
    from jobledger._core.job import Job

__all__ = ["RecentJobs"]


class RecentJobs:
    """The jobs last kept, newest last, up to ``capacity`` of them.

    Jobs whose state and input together are larger than ``max_bytes`` are not
    kept: reading a large job again costs little next to its size, and a few
    of them would hold a lot of memory. Kept jobs are immutable values, shared
    as they are.

    Threads may share a store made with a ``lock`` (any context manager: the
    core makes no threads and takes no locks itself, so the caller brings
    one, a :class:`threading.Lock` say).

    >>> from datetime import UTC, datetime
    >>> from jobledger import Job, freeze
    >>> now = datetime(2024, 1, 1, tzinfo=UTC)
    >>> def job(job_id):
    ...     empty = freeze({}, field="state")
    ...     return Job(
    ...         job_id,
    ...         "hr",
    ...         "employee",
    ...         "sync",
    ...         "",
    ...         "",
    ...         "started",
    ...         empty,
    ...         empty,
    ...         "etag-1",
    ...         1,
    ...         now,
    ...         now,
    ...     )
    >>> recent = RecentJobs(capacity=2)
    >>> for job_id in ("a", "b", "c"):
    ...     recent.keep(job(job_id))
    >>> recent.get("a") is None, recent.get("c").id
    (True, 'c')
    """

    def __init__(
        self,
        capacity: int = 128,
        max_bytes: int = 64 * 1024,
        *,
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._lock: AbstractContextManager[object] = nullcontext() if lock is None else lock
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: str) -> Job | None:
        """The job kept under ``job_id``, or ``None``."""
        with self._lock:
            return self._jobs.get(job_id)

    def keep(self, job: Job) -> None:
        """Keep ``job`` as the newest, unless its documents are too large."""
        large = encoded_size(job.state) + encoded_size(job.input) > self.max_bytes
        with self._lock:
            jobs = self._jobs
            if large:
                jobs.pop(job.id, None)
                return
            jobs[job.id] = job
            jobs.move_to_end(job.id)
            while len(jobs) > self.capacity:
                jobs.popitem(last=False)

    def forget(self, job_id: str) -> None:
        """Stop keeping the job ``job_id``, if it is kept."""
        with self._lock:
            self._jobs.pop(job_id, None)
