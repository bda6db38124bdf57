"""Durable subscribers: feed order, filters, checkpoints, retries with backoff, lag, wake-ups."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from jobledger import (
    DurableSubscriber,
    EventFilter,
    FeedNotifier,
    InMemoryRepository,
    InvalidJobDataError,
    JobCompleted,
    JobEvent,
    Jobs,
    JobStarted,
)
from jobledger._application.subscriber import backoff_delay

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jobledger import Change, FeedEntry, Job, JobPage, JobQuery, JobUpdate, RequestRecord

#: Long enough that a test relying on it to elapse would visibly hang.
FOREVER = 600.0


class Recorder:
    """A handler that records what it receives and fails for the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        """Fail the first ``failures`` calls."""
        self.failures = failures
        self.calls: list[str] = []
        self.handled = threading.Event()

    def __call__(self, event: JobEvent) -> None:
        """Record ``event``'s status and job; raise while failures remain."""
        self.calls.append(f"{event.job_id}:{event.status}")
        if self.failures:
            self.failures -= 1
            msg = "the handler failed"
            raise RuntimeError(msg)
        self.handled.set()


class FailingFeed(InMemoryRepository):
    """An in-memory repository whose read_feed fails the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        """Fail the first ``failures`` reads of the feed."""
        super().__init__()
        self.failures = failures

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """Raise while failures remain; then read as usual."""
        if self.failures:
            self.failures -= 1
            msg = "storage is down"
            raise OSError(msg)
        return super().read_feed(after=after, limit=limit)


class NotifyingRepository(InMemoryRepository):
    """An in-memory repository that implements FeedNotifier with a condition variable."""

    def __init__(self) -> None:
        """Start with an empty feed and no waiters."""
        super().__init__()
        self.changed = threading.Condition()
        self.waits = 0

    def save(self, change: Change) -> int:
        """Save, then wake every waiter."""
        position = super().save(change)
        with self.changed:
            self.changed.notify_all()
        return position

    def wait_for_feed(self, after: int, timeout: float) -> bool:
        """Wait until the head passes ``after`` or ``timeout`` elapses."""
        self.waits += 1
        with self.changed:
            return self.changed.wait_for(lambda: self.feed_head() > after, timeout)


@pytest.fixture
def jobs() -> Jobs:
    """A ledger over a plain in-memory repository, with ids job-1, job-2, ..."""
    numbers = iter(range(1, 10_000))
    return Jobs(InMemoryRepository(), id_factory=lambda: f"id-{next(numbers)}")


def _three_jobs(jobs: Jobs) -> None:
    """Start hr/a, crm/b, hr/c and complete hr/a: five feed entries."""
    first = jobs.start(service="hr", entity="employee", type="sync", job_id="a")
    jobs.start(service="crm", entity="account", type="import", job_id="b")
    jobs.start(service="hr", entity="employee", type="import", job_id="c")
    jobs.complete(first.id, etag=first.etag)


class TestBackoffDelay:
    """backoff_delay doubles from the first delay up to the cap."""

    def test_the_delay_doubles_and_is_capped(self) -> None:
        """Failures 1..6 wait 0.1, 0.2, 0.4, 0.8, 1.0, 1.0 seconds with a cap of 1."""
        delays = [backoff_delay(n, first=0.1, maximum=1.0) for n in range(1, 7)]

        assert [0.1, 0.2, 0.4, 0.8, 1.0, 1.0] == pytest.approx(delays)

    def test_no_failure_means_no_wait(self) -> None:
        """With no failure the delay is zero."""
        assert 0.0 == backoff_delay(0, first=0.1, maximum=1.0)

    def test_a_very_long_run_of_failures_stays_at_the_cap(self) -> None:
        """A thousand failures in a row still wait the cap, without overflowing."""
        assert 30.0 == backoff_delay(1000, first=0.1, maximum=30.0)


class PollOnlyRepository:
    """An in-memory repository without ``wait_for_feed``, so subscribers must poll."""

    def __init__(self) -> None:
        """Wrap a new, empty in-memory repository."""
        self._inner = InMemoryRepository()

    def get(self, job_id: str) -> Job:
        """See Repository.get."""
        return self._inner.get(job_id)

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """See Repository.updates."""
        return self._inner.updates(job_id, after=after)

    def find(self, query: JobQuery) -> JobPage:
        """See Repository.find."""
        return self._inner.find(query)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """See Repository.find_request."""
        return self._inner.find_request(request_id)

    def save(self, change: Change) -> int:
        """See Repository.save."""
        return self._inner.save(change)

    def read_feed(self, *, after: int = 0, limit: int = 1000) -> Sequence[FeedEntry]:
        """See Repository.read_feed."""
        return self._inner.read_feed(after=after, limit=limit)

    def feed_head(self) -> int:
        """See Repository.feed_head."""
        return self._inner.feed_head()

    def load_checkpoint(self, name: str) -> int:
        """See Repository.load_checkpoint."""
        return self._inner.load_checkpoint(name)

    def save_checkpoint(self, name: str, position: int) -> None:
        """See Repository.save_checkpoint."""
        self._inner.save_checkpoint(name, position)


class TestDurableSubscriber:
    """A durable subscriber delivers the feed in order, at least once, resuming by name."""

    def test_run_once_delivers_every_event_in_feed_order(self, jobs: Jobs) -> None:
        """run_once hands each event to the handler in feed order and reports how many it read."""
        _three_jobs(jobs)
        recorder = Recorder()
        subscriber = DurableSubscriber(jobs.repository, "all", recorder)

        consumed = subscriber.run_once()

        assert 4 == consumed
        assert ["a:started", "b:started", "c:started", "a:completed"] == recorder.calls
        assert 0 == subscriber.run_once()

    def test_keyword_filters_deliver_only_matching_events(self, jobs: Jobs) -> None:
        """Filters by service and event type deliver matches only; the rest still advance."""
        _three_jobs(jobs)
        recorder = Recorder()
        subscriber = DurableSubscriber(
            jobs.repository, "hr-starts", recorder, service="hr", events=JobStarted
        )

        subscriber.run_once()

        assert ["a:started", "c:started"] == recorder.calls
        assert 4 == jobs.repository.load_checkpoint("hr-starts")

    def test_an_event_filter_works_as_the_keywords_do(self, jobs: Jobs) -> None:
        """An EventFilter selects the same events as the matching keywords."""
        _three_jobs(jobs)
        recorder = Recorder()

        DurableSubscriber(
            jobs.repository, "done", recorder, EventFilter(events=JobCompleted)
        ).run_once()

        assert ["a:completed"] == recorder.calls

    def test_a_filter_and_keywords_together_are_refused(self, jobs: Jobs) -> None:
        """Giving an EventFilter and filter keywords raises TypeError."""
        with pytest.raises(TypeError, match="either"):
            DurableSubscriber(jobs.repository, "x", Recorder(), EventFilter(), service="hr")

    @pytest.mark.parametrize(
        ("name", "batch_size", "poll_interval"),
        [("", 10, 1.0), ("x", 0, 1.0), ("x", 10, -1.0), ("x", 10, float("nan"))],
    )
    def test_bad_settings_are_refused(
        self, jobs: Jobs, name: str, batch_size: int, poll_interval: float
    ) -> None:
        """An empty name, a batch size below 1 and a negative or NaN interval raise ValueError."""
        with pytest.raises(ValueError, match="must be"):
            DurableSubscriber(
                jobs.repository,
                name,
                Recorder(),
                batch_size=batch_size,
                poll_interval=poll_interval,
            )

    def test_a_handler_that_cannot_be_called_is_refused(self, jobs: Jobs) -> None:
        """A handler that is not callable raises TypeError at once."""
        with pytest.raises(TypeError, match="callable"):
            DurableSubscriber(jobs.repository, "x", "print")  # type: ignore[arg-type]

    def test_the_checkpoint_is_saved_after_each_batch(self, jobs: Jobs) -> None:
        """With batches of 3, the checkpoint stands at 3 after the first run, then at 4."""
        _three_jobs(jobs)
        subscriber = DurableSubscriber(jobs.repository, "batches", Recorder(), batch_size=3)

        subscriber.run_once()
        first = jobs.repository.load_checkpoint("batches")
        subscriber.run_once()

        assert (3, 4) == (first, jobs.repository.load_checkpoint("batches"))

    def test_a_new_subscriber_of_the_same_name_resumes_after_the_checkpoint(
        self, jobs: Jobs
    ) -> None:
        """After a restart the subscriber delivers only events after its checkpoint."""
        _three_jobs(jobs)
        DurableSubscriber(jobs.repository, "resume", Recorder(), batch_size=2).run_once()
        recorder = Recorder()

        DurableSubscriber(jobs.repository, "resume", recorder).run_once()

        assert ["c:started", "a:completed"] == recorder.calls

    def test_a_failing_handler_keeps_the_checkpoint_before_its_event(self, jobs: Jobs) -> None:
        """When the handler raises, events before it are checkpointed and it is delivered again."""
        _three_jobs(jobs)
        recorder = Recorder()
        calls_before_failure = 2

        def fail_on_third(event: JobEvent) -> None:
            recorder(event)
            if len(recorder.calls) == calls_before_failure + 1:
                msg = "third event fails once"
                raise RuntimeError(msg)

        subscriber = DurableSubscriber(jobs.repository, "retry", fail_on_third)
        with pytest.raises(RuntimeError, match="third event"):
            subscriber.run_once()
        checkpoint = jobs.repository.load_checkpoint("retry")
        subscriber.run_once()

        assert 2 == checkpoint
        assert ["a:started", "b:started", "c:started", "c:started", "a:completed"] == (
            recorder.calls
        )

    def test_lag_is_the_feed_head_minus_the_checkpoint(self, jobs: Jobs) -> None:
        """Lag counts the feed entries not yet handled, and drops to 0 when caught up."""
        _three_jobs(jobs)
        subscriber = DurableSubscriber(jobs.repository, "lag", Recorder(), batch_size=3)

        before = subscriber.lag
        subscriber.run_once()
        middle = subscriber.lag
        subscriber.run_once()

        assert (4, 1, 0) == (before, middle, subscriber.lag)

    def test_run_forever_retries_a_failing_handler_until_it_succeeds(self, jobs: Jobs) -> None:
        """A handler failing three times is retried with backoff and never skips its event."""
        jobs.start(service="hr", entity="employee", type="sync", job_id="a")
        jobs.start(service="hr", entity="employee", type="sync", job_id="b")
        recorder = Recorder(failures=3)
        subscriber = DurableSubscriber(
            jobs.repository,
            "forever",
            recorder,
            poll_interval=0.001,
            retry_delay=0.001,
            max_backoff=0.004,
        )

        with subscriber.start():
            while subscriber.lag:
                recorder.handled.wait(0.01)

        assert ["a:started"] * 4 + ["b:started"] == recorder.calls
        assert (0, None, False) == (
            subscriber.failures,
            subscriber.last_error,
            subscriber.running,
        )

    def test_run_forever_survives_storage_failures(self) -> None:
        """A feed that fails to read twice is read again after backoff; nothing is lost."""
        repository = FailingFeed(failures=2)
        Jobs(repository).start(service="hr", entity="employee", type="sync", job_id="a")
        recorder = Recorder()
        subscriber = DurableSubscriber(repository, "storage", recorder, retry_delay=0.001)

        with subscriber.start():
            recorder.handled.wait(FOREVER)

        assert ["a:started"] == recorder.calls
        assert 0 == repository.failures

    def test_the_failure_count_and_error_are_visible_while_failing(self, jobs: Jobs) -> None:
        """While the handler keeps failing, failures counts up and last_error holds the error."""
        jobs.start(service="hr", entity="employee", type="sync", job_id="a")
        recorder = Recorder(failures=10**9)
        subscriber = DurableSubscriber(
            jobs.repository, "broken", recorder, retry_delay=0.001, max_backoff=0.001
        )

        with subscriber.start():
            while len(recorder.calls) < 3:
                recorder.handled.wait(0.001)

        assert subscriber.failures >= 3
        assert isinstance(subscriber.last_error, RuntimeError)
        assert 0 == jobs.repository.load_checkpoint("broken")

    def test_a_feed_notifier_wakes_an_idle_subscriber(self) -> None:
        """A repository that notifies wakes a subscriber whose poll interval would never elapse."""
        repository = NotifyingRepository()
        recorder = Recorder()
        subscriber = DurableSubscriber(repository, "woken", recorder, poll_interval=FOREVER)

        with subscriber.start():
            while not repository.waits:
                recorder.handled.wait(0.001)
            Jobs(repository).start(service="hr", entity="employee", type="sync", job_id="a")
            recorder.handled.wait(FOREVER)

        assert isinstance(repository, FeedNotifier)
        assert ["a:started"] == recorder.calls

    def test_a_repository_without_a_notifier_is_polled(self) -> None:
        """Without a notifier the subscriber polls, and picks up events committed later."""
        repository = PollOnlyRepository()
        jobs = Jobs(repository)
        recorder = Recorder()
        subscriber = DurableSubscriber(repository, "polled", recorder, poll_interval=0.001)

        with subscriber.start():
            jobs.start(service="hr", entity="employee", type="sync", job_id="a")
            recorder.handled.wait(FOREVER)

        assert not isinstance(repository, FeedNotifier)
        assert ["a:started"] == recorder.calls

    def test_stop_leaves_the_rest_of_the_batch_for_later(self, jobs: Jobs) -> None:
        """stop() ends the loop after the event being handled; the next start resumes after it."""
        for n in range(5):
            jobs.start(service="hr", entity="employee", type="sync", job_id=f"job-{n}")
        stop = threading.Event()
        seen: list[str] = []

        def handler(event: JobEvent) -> None:
            seen.append(event.job_id)
            if len(seen) == 2:
                stop.set()

        subscriber = DurableSubscriber(jobs.repository, "stops", handler, batch_size=100)
        subscriber.run_forever(stop)

        assert (["job-0", "job-1"], 2) == (seen, subscriber.position)
        subscriber.run_once()
        assert ["job-0", "job-1", "job-2", "job-3", "job-4"] == seen

    def test_starting_twice_is_refused(self, jobs: Jobs) -> None:
        """Starting a running subscriber raises RuntimeError; after stop it may start again."""
        subscriber = DurableSubscriber(jobs.repository, "twice", Recorder(), poll_interval=0.001)

        subscriber.start()
        with pytest.raises(RuntimeError, match="already running"):
            subscriber.start()
        subscriber.stop()
        subscriber.start().stop()

        assert not subscriber.running

    def test_stop_without_start_does_nothing(self, jobs: Jobs) -> None:
        """Stopping a subscriber that never ran returns at once and leaves it stopped."""
        subscriber = DurableSubscriber(jobs.repository, "idle", Recorder())

        subscriber.stop()

        assert (False, 0) == (subscriber.running, subscriber.position)


class TestParking:
    """max_attempts parks a poison event; the ledger lists and retries what was parked."""

    @pytest.mark.parametrize(
        ("value", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]
    )
    def test_max_attempts_must_be_a_positive_integer(
        self, value: object, error: type[Exception]
    ) -> None:
        """max_attempts is None or a positive integer."""
        with pytest.raises(error, match="max_attempts"):
            DurableSubscriber(InMemoryRepository(), "mail", print, max_attempts=value)  # type: ignore[arg-type]

    def test_parking_needs_a_repository_that_keeps_parked_events(self) -> None:
        """A repository without ParkedEvents cannot back max_attempts, nor the ledger's reads."""
        bare = _WithoutParking(InMemoryRepository())
        with pytest.raises(TypeError, match="parked"):
            DurableSubscriber(bare, "mail", print, max_attempts=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="parked"):
            Jobs(bare).parked_events("mail")  # type: ignore[arg-type]

    def test_retry_of_a_bad_position_is_refused(self) -> None:
        """retry_parked's position is a feed position."""
        with pytest.raises(InvalidJobDataError):
            Jobs().retry_parked("mail", position=-1)

    def test_a_failure_short_of_max_attempts_is_retried_not_parked(self) -> None:
        """Until the last allowed attempt, a failure raises and nothing is parked."""
        jobs = Jobs()
        jobs.start(service="hr", entity="employee", type="sync")
        attempts: list[int] = []

        def flaky(_event: JobEvent) -> None:
            attempts.append(1)
            if len(attempts) < 3:
                message = "not yet"
                raise RuntimeError(message)

        subscriber = DurableSubscriber(jobs.repository, "mail", flaky, max_attempts=3)
        for _ in range(2):
            with pytest.raises(RuntimeError):
                subscriber.run_once()
        assert 1 == subscriber.run_once()
        assert ((), 3) == (tuple(jobs.parked_events("mail")), len(attempts))


class _WithoutParking:
    """A repository that only forwards the Repository protocol (no ParkedEvents)."""

    def __init__(self, inner: InMemoryRepository) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name in {"park", "parked_events", "unpark"}:
            raise AttributeError(name)
        return getattr(self._inner, name)


class TestOneConsumerPerName:
    """Two consumers of one name: one is active, the other stands by and takes over."""

    def test_the_second_consumer_stands_by_then_takes_over_on_stop(self) -> None:
        """While the first runs the second handles nothing; after the first stops, it does."""
        jobs = Jobs()
        first_seen: list[str] = []
        second_seen: list[str] = []
        first = DurableSubscriber(
            jobs.repository, "mail", lambda e: first_seen.append(e.job_id), poll_interval=0.01
        ).start()
        _until(lambda: first.holding)
        second = DurableSubscriber(
            jobs.repository, "mail", lambda e: second_seen.append(e.job_id), poll_interval=0.01
        ).start()
        try:
            jobs.start(service="hr", entity="employee", type="sync", job_id="one")
            _until(lambda: first_seen == ["one"])
            assert (True, False, []) == (first.holding, second.holding, second_seen)
            first.stop(timeout=10)
            jobs.start(service="hr", entity="employee", type="sync", job_id="two")
            _until(lambda: second_seen == ["two"])
            assert (["one"], False, True) == (first_seen, first.holding, second.holding)
        finally:
            first.stop(timeout=10)
            second.stop(timeout=10)

    def test_a_consumer_that_died_is_taken_over_after_its_lease(self) -> None:
        """A holder that stops renewing (it died) loses the name once its lease ran out."""
        repository = InMemoryRepository()
        jobs = Jobs(repository)
        now = datetime.now(UTC)
        repository.claim_consumer("mail", "dead", now=now, until=now + timedelta(seconds=0.3))
        seen: list[str] = []
        survivor = DurableSubscriber(
            repository, "mail", lambda e: seen.append(e.job_id), poll_interval=0.01, lease=5
        ).start()
        try:
            jobs.start(service="hr", entity="employee", type="sync", job_id="one")
            _until(lambda: seen == ["one"])
            assert survivor.holding
        finally:
            survivor.stop(timeout=10)

    def test_lease_must_be_positive(self) -> None:
        """A lease of zero seconds or less is refused."""
        with pytest.raises(ValueError, match="lease"):
            DurableSubscriber(InMemoryRepository(), "mail", print, lease=0)


def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait (bounded) until ``condition`` holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)
