"""A probe, not a floor: the least work per command that uses jobledger's own values.

:class:`ValuesLedger` does what any ledger with jobledger's guarantees must do
for a command, and nothing else: it freezes the patch (the I-JSON rules), merges
it into the state, makes the new ETag and the event id (the default tokens),
builds the job as jobledger's immutable value and the change's record (the
tuple its update and event are made from when read, as the in-memory
repository keeps it), checks the ETag and stores the job and the record in the
job's log and the feed under one lock. It has no command objects, no handling
steps, no request records, no limits besides the JSON rules and no subscribers.

Its time per command is where a design built on these values starts, whatever
its facade does: the gap between it and the dict floor is the cost of the
values themselves (immutable, validated JSON, ids), and the gap between it
and ``w/jobledger/memory`` is the cost of everything else ``Jobs`` does.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from jobledger import (
    Job,
    JobCompleted,
    JobEvent,
    JobStarted,
    JobUpdated,
    JsonObject,
    freeze,
    merge_patch,
)
from jobledger._application.defaults import new_tag as new_id

__all__ = ["ValuesLedger"]

UPDATED = 0


class ValuesLedger:
    """Jobs as jobledger values in a dict; one lock; every event kept in a log and a feed.

    It has the floors' interface (:class:`~benchmarks.floors.DictLedger`), with
    the job's ETag as the concurrency token instead of a version number.
    """

    def __init__(self) -> None:
        """An empty ledger."""
        self._jobs: dict[str, Job] = {}
        self._logs: dict[str, list[tuple[object, ...]]] = {}
        self._feed: list[JobEvent | tuple[object, ...]] = []
        self._lock = threading.Lock()

    def start(self, job_id: str, state: dict[str, Any]) -> str:
        """Start a job; return its ETag."""
        frozen = freeze(state, field="state")
        assert isinstance(frozen, JsonObject)  # noqa: S101  (a dict freezes to an object)
        now = datetime.now(UTC)
        etag = new_id()
        job = Job(
            job_id, "bench", "item", "w", "", "", "started", frozen, frozen, etag, 1, now, now
        )
        event = JobStarted(
            event_id=new_id(),
            job_id=job_id,
            service=job.service,
            entity=job.entity,
            type=job.type,
            status=job.status,
            etag=etag,
            version=1,
            at=now,
            display_name="",
            description="",
            input=frozen,
            state=frozen,
        )
        with self._lock:
            if job_id in self._jobs:
                raise KeyError(job_id)
            self._jobs[job_id] = job
            self._logs[job_id] = []
            self._feed.append(event)
        return etag

    def change(
        self, job_id: str, etag: str, update_type: int, status: str, patch: dict[str, Any]
    ) -> str:
        """Apply one change if the job has ``etag``; return its new ETag."""
        frozen = freeze(patch, field="state_update")
        assert isinstance(frozen, JsonObject)  # noqa: S101
        now = datetime.now(UTC)
        kind = JobUpdated if update_type == UPDATED else JobCompleted
        with self._lock:
            job = self._jobs[job_id]
            if job.etag != etag:
                raise KeyError(job_id)
            state = merge_patch(job.state, frozen)
            assert isinstance(state, JsonObject)  # noqa: S101  (an object patched onto one)
            new_etag = new_id()
            version = job.version + 1
            after = Job(
                job_id,
                job.service,
                job.entity,
                job.type,
                job.display_name,
                job.description,
                status,
                job.input,
                state,
                new_etag,
                version,
                job.created_at,
                now,
            )
            record = (
                kind,
                new_id(),
                job_id,
                job.service,
                job.entity,
                job.type,
                status,
                new_etag,
                now,
                job.version,
                None,
                None,
                frozen,
                None,
            )
            self._jobs[job_id] = after
            self._logs[job_id].append(record)
            self._feed.append(record)
        return new_etag
