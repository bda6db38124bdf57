"""The PostgreSQL feed is gap-free, never skips an event, and wakes subscribers.

The pitfall it must avoid: writer A takes position 2, writer B takes 3 and
commits first; a reader that sees 3 and moves its checkpoint past it never
reads 2. These tests hold a writer's transaction open after it took its
position and watch what other writers and readers can do meanwhile.
"""

from __future__ import annotations

import functools
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from jobledger import DurableSubscriber, FeedNotifier, Jobs, Limits, StartJob
from jobledger._core.decide import Change, decide
from jobledger.postgres import PostgresRepository
from jobledger.testing.contract import kill_and_resume_subscriber, watch_feed_while_writers_race

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from jobledger import JobEvent

pytestmark = pytest.mark.postgres

#: How long a test waits for something that should happen at once before it gives up.
PATIENCE = 30.0


def _start(job_id: str) -> Change:
    """The change that starts a job with ``job_id``."""
    ids = iter(f"{job_id}-{n}" for n in range(10))
    return decide(
        None,
        StartJob(service="feed", entity="order", type="held", job_id=job_id),
        now=datetime(2024, 1, 1, tzinfo=UTC),
        new_id=lambda: next(ids),
        limits=Limits(),
    )


def _positions(repository: PostgresRepository) -> list[int]:
    return [entry.position for entry in repository.read_feed()]


def _eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds; fail after :data:`PATIENCE` seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.01)


def _waiting_on_a_lock(conninfo: str, schema: str) -> Callable[[], bool]:
    """Whether some session is waiting for a lock in a statement on ``schema``'s tables."""
    marker = f'"{schema}".'

    def waiting() -> bool:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND strpos(query, %s) > 0",
                (marker,),
            ).fetchone()
        return row is not None and row[0] > 0

    return waiting


class TestFeedOrder:
    """Positions commit in the order they are taken, so readers see a prefix of the feed."""

    def test_a_later_writer_waits_for_an_open_one_and_readers_see_neither(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """While a writer holds position 2 uncommitted, a second writer cannot commit 3."""
        Jobs(repository).start(service="feed", entity="order", type="first")
        second: list[int] = []
        writer = threading.Thread(target=lambda: second.append(repository.save(_start("late"))))
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            with conn.transaction():
                held = repository._write_change(conn, _start("held"))
                writer.start()
                _eventually(
                    _waiting_on_a_lock(postgres_conninfo, schema), "the second writer to wait"
                )
                seen_meanwhile = (_positions(repository), repository.feed_head(), writer.is_alive())
            writer.join(PATIENCE)

        assert ([1], 1, True) == seen_meanwhile
        assert (2, [3]) == (held, second)
        assert [1, 2, 3] == _positions(repository)
        assert ["held", "late"] == [entry.event.job_id for entry in repository.read_feed(after=1)]

    def test_a_position_rolled_back_is_taken_by_the_next_writer(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """A writer that rolls back after taking its position leaves no hole in the feed."""
        Jobs(repository).start(service="feed", entity="order", type="first")
        second: list[int] = []
        writer = threading.Thread(target=lambda: second.append(repository.save(_start("late"))))
        with psycopg.connect(postgres_conninfo) as conn:
            held = repository._write_change(conn, _start("held"))
            writer.start()
            _eventually(_waiting_on_a_lock(postgres_conninfo, schema), "the second writer to wait")
            conn.rollback()
            writer.join(PATIENCE)

        assert (2, [2]) == (held, second)
        assert [(1, "first"), (2, "held")] == [
            (entry.position, entry.event.type) for entry in repository.read_feed()
        ]

    def test_readers_racing_writers_only_ever_see_a_gap_free_prefix(
        self, repository: PostgresRepository
    ) -> None:
        """Each read during a race returns consecutive positions, and the feed ends gap-free."""
        jobs = Jobs(repository)
        writers_done = threading.Event()
        reads: list[list[int]] = []

        def write(writer: int) -> None:
            for step in range(15):
                jobs.start(service="feed", entity=f"writer-{writer}", type=f"step-{step}")

        def read() -> None:
            after = 0
            while not writers_done.is_set() or after < repository.feed_head():
                batch = [entry.position for entry in repository.read_feed(after=after, limit=5)]
                reads.append(batch)
                after = batch[-1] if batch else after

        reader = threading.Thread(target=read)
        reader.start()
        writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        writers_done.set()
        reader.join(PATIENCE)

        seen = [position for batch in reads for position in batch]
        assert list(range(1, 61)) == seen
        assert list(range(1, 61)) == _positions(repository)


class TestFeedAcrossProcesses:
    """Writer processes race while a durable subscriber in this process reads the feed."""

    def test_a_subscriber_sees_every_event_in_feed_order_while_writers_race(
        self, postgres_conninfo: str, schema: str
    ) -> None:
        """A durable subscriber gets every event of two racing writer processes, once, in order."""
        factory = functools.partial(PostgresRepository, postgres_conninfo, schema=schema)

        watch = watch_feed_while_writers_race(factory, writers=2, changes=40)

        watch.check()

    def test_a_subscriber_killed_mid_batch_resumes_and_misses_nothing(
        self, postgres_conninfo: str, schema: str, tmp_path: Path
    ) -> None:
        """A durable subscriber killed with SIGKILL resumes from its checkpoint, missing nothing."""
        factory = functools.partial(PostgresRepository, postgres_conninfo, schema=schema)

        restart = kill_and_resume_subscriber(factory, tmp_path / "handled.txt", events=40)

        restart.check()


class TestWakeUps:
    """Saves notify on commit; subscribers wake on it, and poll when no notification comes."""

    def test_the_repository_is_a_feed_notifier(self, repository: PostgresRepository) -> None:
        """PostgresRepository offers wait_for_feed, so durable subscribers need not poll."""
        assert isinstance(repository, FeedNotifier)

    def test_a_waiter_wakes_when_another_process_commits(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """wait_for_feed returns True once a save through another pool has committed."""
        assert not repository.wait_for_feed(0, 0.0)
        _eventually(repository._listener.listening.is_set, "the listener to listen")
        with PostgresRepository(postgres_conninfo, schema=schema) as other:
            Jobs(other).start(service="feed", entity="order", type="wake")

            assert repository.wait_for_feed(0, PATIENCE)
            assert not repository.wait_for_feed(1, 0.0)

    def test_a_subscriber_that_never_polls_is_woken_by_the_notification(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """An idle subscriber polling once an hour delivers a new event on its notification."""
        delivered: list[JobEvent] = []
        subscriber = DurableSubscriber(repository, "wake", delivered.append, poll_interval=3600)
        with subscriber.start(), PostgresRepository(postgres_conninfo, schema=schema) as other:
            _eventually(repository._listener.listening.is_set, "the subscriber to listen")
            Jobs(other).start(service="feed", entity="order", type="wake")
            _eventually(lambda: bool(delivered), "the subscriber to deliver")

        assert ["wake"] == [event.type for event in delivered]

    def test_a_subscriber_delivers_by_polling_when_no_notification_is_sent(
        self, repository: PostgresRepository, postgres_conninfo: str, schema: str
    ) -> None:
        """With the writer's notifications turned off, the subscriber still delivers by polling."""
        delivered: list[JobEvent] = []
        subscriber = DurableSubscriber(repository, "poll", delivered.append, poll_interval=0.05)
        quiet = PostgresRepository(postgres_conninfo, schema=schema, notify=False)
        with subscriber.start(), quiet:
            _eventually(repository._listener.listening.is_set, "the subscriber to listen")
            Jobs(quiet).start(service="feed", entity="order", type="silent")
            _eventually(lambda: bool(delivered), "the subscriber to deliver")

        assert ["silent"] == [event.type for event in delivered]
        assert 0 == repository._listener._head

    @pytest.mark.parametrize("notify", [False, True])
    def test_changes_with_and_without_request_ids_take_their_positions(
        self, postgres_conninfo: str, schema: str, *, notify: bool
    ) -> None:
        """Updates and a completion, with or without a request id, each take the next position."""
        with PostgresRepository(postgres_conninfo, schema=schema, notify=notify) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="feed", entity="order", type="changes")
            job = jobs.update(job.id, etag=job.etag, state_update={"n": 1})
            job = jobs.update(job.id, etag=job.etag, state_update={"n": 2}, request_id="r-2")
            job = jobs.complete(job.id, etag=job.etag, request_id="r-3")

            entries = repository.read_feed()
            record = repository.find_request("r-2")
            updates = jobs.updates(job.id)

        assert [(1, 1), (2, 2), (3, 3), (4, 4)] == [
            (entry.position, entry.event.version) for entry in entries
        ]
        assert record is not None
        assert {"n": 2} == record.job.state
        assert [1, 2, 3] == [update.update_id for update in updates]

    def test_notify_false_sends_no_notification(self, postgres_conninfo: str, schema: str) -> None:
        """A save with notify=False sends nothing; one with notify=True sends its position."""
        quiet = PostgresRepository(postgres_conninfo, schema=schema, notify=False)
        loud = PostgresRepository(postgres_conninfo, schema=schema)
        with psycopg.connect(postgres_conninfo, autocommit=True) as listener, quiet, loud:
            channel = loud._names.channel
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            Jobs(quiet).start(service="feed", entity="order", type="quiet")
            Jobs(loud).start(service="feed", entity="order", type="loud")
            # Notifications arrive in commit order: a notification of the first save
            # would come before the second's.
            (first,) = listener.notifies(timeout=PATIENCE, stop_after=1)

        assert (channel, "2") == (first.channel, first.payload)
