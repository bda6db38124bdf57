"""Specification of RecentJobs: the jobs last kept, newest last, within a capacity."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from jobledger import Job, JsonObject, freeze
from jobledger._core.recent import RecentJobs

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def job(job_id: str, *, state: object = None, version: int = 1) -> Job:
    """A job with ``job_id``, ``state`` (empty by default) and ``version``."""
    frozen = freeze({} if state is None else state, field="state")
    assert isinstance(frozen, JsonObject)
    empty = freeze({}, field="input")
    return Job(job_id, "hr", "employee", "sync", "", "", "started", empty, frozen,
               f"etag-{version}", version, NOW, NOW)  # fmt: skip


class TestRecentJobs:
    """RecentJobs keeps the newest jobs, drops the oldest, and never keeps large ones."""

    def test_a_kept_job_is_handed_back_as_it_was_kept(self) -> None:
        """A kept job is handed back, the very object, by its id; any other id gives None."""
        recent = RecentJobs()
        kept = job("a")
        recent.keep(kept)

        assert (kept, None) == (recent.get("a"), recent.get("b"))
        assert recent.get("a") is kept

    def test_keeping_a_job_again_replaces_it_and_makes_it_the_newest(self) -> None:
        """A newer version replaces the kept one, and the job is the last to be dropped."""
        recent = RecentJobs(capacity=2)
        recent.keep(job("a"))
        recent.keep(job("b"))
        recent.keep(job("a", version=2))
        recent.keep(job("c"))

        assert (2, None, "c") == (
            getattr(recent.get("a"), "version", None),
            recent.get("b"),
            getattr(recent.get("c"), "id", None),
        )

    def test_a_job_with_large_documents_is_not_kept_and_its_older_copy_is_dropped(self) -> None:
        """A job whose state is over max_bytes is not kept, nor is its earlier, smaller version."""
        recent = RecentJobs(max_bytes=100)
        recent.keep(job("a"))
        recent.keep(job("a", state={"text": "x" * 200}, version=2))

        assert None is recent.get("a")

    def test_forget_drops_a_kept_job(self) -> None:
        """Forgetting a job stops keeping it; forgetting an unknown id does nothing."""
        recent = RecentJobs()
        recent.keep(job("a"))
        recent.forget("a")
        recent.forget("unknown")

        assert (None, 0) == (recent.get("a"), len(recent))

    def test_threads_keeping_at_once_stay_within_the_capacity(self) -> None:
        """Many threads keeping jobs through a store with a lock leave exactly the capacity."""
        recent = RecentJobs(capacity=16, lock=threading.Lock())
        barrier = threading.Barrier(8)

        def keep_many(thread: int) -> None:
            barrier.wait()
            for n in range(2_000):
                recent.keep(job(f"{thread}-{n}"))

        threads = [threading.Thread(target=keep_many, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert 16 == len(recent)
