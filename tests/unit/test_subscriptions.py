"""Specification of subscriptions and publishers: filters, order, isolation of failures."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from jobledger import (
    EVENT_TYPES,
    EventFilter,
    EventPublisher,
    InProcessPublisher,
    Job,
    JobCanceled,
    JobChanged,
    JobCompleted,
    JobFailed,
    Jobs,
    JobStarted,
    JobUpdated,
)
from jobledger._core import decide
from jobledger._core.decide import event_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import JobEvent
    from jobledger._core.events import EventType


def run_script(jobs: Jobs) -> None:
    """Send a fixed script of commands to three jobs in different services, entities, types."""
    a = jobs.start(service="hr", entity="employee", type="sync", job_id="a")
    b = jobs.start(service="crm", entity="account", type="export", job_id="b")
    a = jobs.update("a", etag=a.etag, status="working")
    c = jobs.start(service="hr", entity="account", type="export", job_id="c")
    jobs.complete("a", etag=a.etag)
    jobs.fail("b", etag=b.etag)
    jobs.cancel("c", etag=c.etag)


def seen(events: list[JobEvent]) -> list[tuple[str, str]]:
    """Each event as (job id, event type name)."""
    return [(event.job_id, type(event).__name__) for event in events]


class RecordingPublisher:
    """A publisher that keeps what it receives."""

    def __init__(self) -> None:
        """Start with nothing received."""
        self.events: list[JobEvent] = []

    def publish(self, event: JobEvent) -> None:
        """Keep ``event``."""
        self.events.append(event)


class FailingPublisher:
    """A publisher that always raises."""

    def publish(self, event: JobEvent) -> None:
        """Raise, whatever the event."""
        msg = f"broker down for {event.event_id}"
        raise ConnectionError(msg)


ALL = [
    ("a", "JobStarted"),
    ("b", "JobStarted"),
    ("a", "JobUpdated"),
    ("c", "JobStarted"),
    ("a", "JobCompleted"),
    ("b", "JobFailed"),
    ("c", "JobCanceled"),
]


class TestFilters:
    """A subscriber receives exactly the events its filter lets through."""

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, ALL),
            ({"service": "crm"}, [("b", "JobStarted"), ("b", "JobFailed")]),
            ({"service": ["crm", "nobody"]}, [("b", "JobStarted"), ("b", "JobFailed")]),
            (
                {"entity": "account"},
                [
                    ("b", "JobStarted"),
                    ("c", "JobStarted"),
                    ("b", "JobFailed"),
                    ("c", "JobCanceled"),
                ],
            ),
            (
                {"type": {"sync"}},
                [("a", "JobStarted"), ("a", "JobUpdated"), ("a", "JobCompleted")],
            ),
            ({"events": JobUpdated}, [("a", "JobUpdated")]),
            (
                {"events": [JobCompleted, JobFailed, JobCanceled]},
                [("a", "JobCompleted"), ("b", "JobFailed"), ("c", "JobCanceled")],
            ),
            ({"events": EVENT_TYPES}, ALL),
            ({"service": "hr", "entity": "account"}, [("c", "JobStarted"), ("c", "JobCanceled")]),
            ({"service": "hr", "events": JobStarted}, [("a", "JobStarted"), ("c", "JobStarted")]),
            ({"service": "hr", "type": "export", "events": JobCanceled}, [("c", "JobCanceled")]),
            ({"service": "crm", "events": JobCompleted}, []),
            ({"service": []}, []),
        ],
    )
    def test_keyword_filters(
        self, jobs: Jobs, filters: dict[str, object], expected: list[tuple[str, str]]
    ) -> None:
        """Filtering by service, entity, type and event kind, alone or together, keeps matches."""
        events: list[JobEvent] = []
        jobs.subscribe(events.append, None, **filters)  # type: ignore[arg-type]
        run_script(jobs)
        assert expected == seen(events)

    def test_an_event_filter_object_works_like_keywords(self, jobs: Jobs) -> None:
        """Subscribing with an EventFilter delivers what the same keywords deliver."""
        by_object: list[JobEvent] = []
        by_keywords: list[JobEvent] = []
        jobs.subscribe(by_object.append, EventFilter(service="hr", events=JobStarted))
        jobs.subscribe(by_keywords.append, service="hr", events=JobStarted)
        run_script(jobs)
        assert [("a", "JobStarted"), ("c", "JobStarted")] == seen(by_object)
        assert by_object == by_keywords

    def test_an_event_filter_and_keywords_together_are_refused(self, jobs: Jobs) -> None:
        """Giving both an EventFilter and filter keywords is a TypeError."""
        with pytest.raises(TypeError, match="not both"):
            jobs.subscribe(print, EventFilter(), service="hr")

    def test_a_handler_must_be_callable(self, jobs: Jobs) -> None:
        """Subscribing something that cannot be called is a TypeError."""
        with pytest.raises(TypeError, match="callable"):
            jobs.subscribe("handler")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "events",
        [str, [JobStarted, int], "JobStarted", Job, [JobStarted, "JobUpdated"]],
        ids=["str-type", "int-in-list", "name", "job-type", "name-in-list"],
    )
    def test_event_filter_refuses_what_is_not_an_event_type(self, events: object) -> None:
        """EventFilter's events must be jobledger event types."""
        with pytest.raises(TypeError):
            EventFilter(events=events)  # type: ignore[arg-type]

    def test_event_filter_takes_a_union_of_event_types(self) -> None:
        """A union such as JobChanged stands for every event type it unites."""
        event_filter = EventFilter(events=JobChanged)
        assert frozenset({JobUpdated, JobCompleted, JobFailed, JobCanceled}) == event_filter.events

    def test_event_filter_refuses_a_union_of_other_types(self) -> None:
        """A union of types that are not event types is refused."""
        with pytest.raises(TypeError):
            EventFilter(events=JobStarted | int)

    def test_event_filter_refuses_non_string_names(self) -> None:
        """EventFilter's service, entity and type must be strings."""
        with pytest.raises(TypeError, match="must be strings"):
            EventFilter(service=[1])  # type: ignore[list-item]

    def test_event_filter_keeps_sets(self) -> None:
        """A single value becomes a one-element set; None means any."""
        event_filter = EventFilter(service="hr", events=JobStarted)
        assert (frozenset({"hr"}), None, None, frozenset({JobStarted})) == (
            event_filter.service,
            event_filter.entity,
            event_filter.type,
            event_filter.events,
        )


class TestDelivery:
    """Events are delivered after commit, in order, and failures stay isolated."""

    def test_whether_anyone_listens_is_read_only(self) -> None:
        """A publisher says whether it has subscriptions; nobody can set it and stop delivery."""
        publisher = InProcessPublisher(inline=True)
        publisher.subscribe(print, EventFilter())

        with pytest.raises(AttributeError):
            publisher.subscribed = False  # type: ignore[misc]
        assert publisher.subscribed

    def test_handlers_run_after_commit(self, jobs: Jobs) -> None:
        """When a handler runs, the job is already stored at the event's version."""
        versions: list[tuple[int, int]] = []
        jobs.subscribe(
            lambda event: versions.append((event.version, jobs.get(event.job_id).version))
        )
        run_script(jobs)
        assert [(1, 1), (1, 1), (2, 2), (1, 1), (3, 3), (2, 2), (2, 2)] == versions

    def test_delivered_before_the_command_returns(self, jobs: Jobs) -> None:
        """The event of a command has been delivered by the time the command returns."""
        events: list[JobEvent] = []
        jobs.subscribe(events.append)
        job = jobs.start(service="hr", entity="employee", type="sync")
        assert [job.etag] == [event.etag for event in events]

    def test_events_of_a_job_arrive_in_version_order(self, jobs: Jobs) -> None:
        """Every event of a job arrives, in version order, with consecutive versions."""
        events: list[JobEvent] = []
        jobs.subscribe(events.append, events=(JobStarted, JobUpdated, JobCompleted))
        job = jobs.start(service="hr", entity="employee", type="sync")
        for n in range(5):
            job = jobs.update(job.id, etag=job.etag, state_update={"n": n})
        jobs.complete(job.id, etag=job.etag)
        assert [1, 2, 3, 4, 5, 6, 7] == [event.version for event in events]

    def test_a_raising_handler_is_logged_and_isolated(
        self, jobs: Jobs, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A handler that raises is logged; the change stays and other handlers and events go on."""
        before: list[JobEvent] = []
        after: list[JobEvent] = []
        calls: list[int] = []

        def explode(event: JobEvent) -> None:
            calls.append(event.version)
            msg = "handler bug"
            raise RuntimeError(msg)

        jobs.subscribe(before.append)
        jobs.subscribe(explode)
        jobs.subscribe(after.append)
        with caplog.at_level(logging.ERROR, logger="jobledger"):
            job = jobs.start(service="hr", entity="employee", type="sync")
            job = jobs.update(job.id, etag=job.etag, status="x")
        assert [1, 2] == calls
        assert [1, 2] == [event.version for event in before]
        assert [1, 2] == [event.version for event in after]
        assert (2, "x") == (jobs.get(job.id).version, jobs.get(job.id).status)
        failures = [record for record in caplog.records if "event handler" in record.getMessage()]
        assert 2 == len(failures)
        assert [job.id, job.id] == [record.__dict__["job_id"] for record in failures]
        assert all(record.exc_info is not None for record in failures)

    def test_cancel_stops_delivery(self, jobs: Jobs) -> None:
        """A canceled subscription receives nothing more; canceling twice is harmless."""
        events: list[JobEvent] = []
        subscription = jobs.subscribe(events.append)
        job = jobs.start(service="hr", entity="employee", type="sync")
        subscription.cancel()
        subscription.cancel()
        jobs.update(job.id, etag=job.etag)
        assert ([1], False) == ([event.version for event in events], subscription.active)

    def test_a_subscription_is_a_context_manager(self, jobs: Jobs) -> None:
        """Leaving a subscription's with block cancels it."""
        events: list[JobEvent] = []
        with jobs.subscribe(events.append) as subscription:
            job = jobs.start(service="hr", entity="employee", type="sync")
            assert subscription.active
        jobs.update(job.id, etag=job.etag)
        assert ([1], False) == ([event.version for event in events], subscription.active)

    def test_a_handler_can_cancel_itself(self, jobs: Jobs) -> None:
        """A handler that cancels its own subscription receives no further event."""
        events: list[JobEvent] = []

        def once(event: JobEvent) -> None:
            events.append(event)
            subscription.cancel()

        subscription = jobs.subscribe(once)
        job = jobs.start(service="hr", entity="employee", type="sync")
        jobs.update(job.id, etag=job.etag)
        assert [1] == [event.version for event in events]

    def test_a_handler_that_changes_the_job_keeps_everyones_order(self) -> None:
        """When a handler completes the job it hears of, every subscriber sees version order."""
        publisher = RecordingPublisher()
        jobs = Jobs(publishers=[publisher], clock=jobs_clock(), id_factory=jobs_ids())
        earlier: list[JobEvent] = []
        later: list[JobEvent] = []

        def complete_on_update(event: JobEvent) -> None:
            if isinstance(event, JobUpdated):
                jobs.complete(event.job_id, etag=event.etag)

        jobs.subscribe(earlier.append)
        jobs.subscribe(complete_on_update)
        jobs.subscribe(later.append)
        job = jobs.start(service="hr", entity="employee", type="sync")
        updated = jobs.update(job.id, etag=job.etag, status="x")
        assert jobs.drain(timeout=30)
        expected = [("JobStarted", 1), ("JobUpdated", 2), ("JobCompleted", 3)]
        for events in (earlier, later, publisher.events):
            assert expected == [(type(event).__name__, event.version) for event in events]
        assert (2, 3) == (updated.version, jobs.get(job.id).version)


def jobs_clock() -> Callable[[], datetime]:
    """A fixed clock for a ledger built inside a test (any aware time will do)."""
    return lambda: datetime(2024, 1, 1, tzinfo=UTC)


def jobs_ids() -> Callable[[], str]:
    """A fresh counting id factory for a ledger built inside a test."""
    counter = iter(range(1, 1_000))
    return lambda: f"x-{next(counter):04d}"


class TestPublishers:
    """Extra publishers receive every committed event, in order, isolated from each other."""

    def test_publishers_receive_every_event_in_order(self) -> None:
        """Each publisher receives every event, in commit order."""
        first, second = RecordingPublisher(), RecordingPublisher()
        jobs = Jobs(publishers=[first, second], clock=jobs_clock(), id_factory=jobs_ids())
        run_script(jobs)
        assert (ALL, ALL) == (seen(first.events), seen(second.events))

    def test_publishers_are_event_publishers(self) -> None:
        """A class with a publish method is an EventPublisher."""
        assert isinstance(RecordingPublisher(), EventPublisher)

    def test_a_raising_publisher_is_isolated(self, caplog: pytest.LogCaptureFixture) -> None:
        """A publisher that raises is logged; the others, the subscribers and the change go on."""
        recording = RecordingPublisher()
        jobs = Jobs(
            publishers=[FailingPublisher(), recording], clock=jobs_clock(), id_factory=jobs_ids()
        )
        subscribed: list[JobEvent] = []
        jobs.subscribe(subscribed.append)
        with caplog.at_level(logging.ERROR, logger="jobledger"):
            run_script(jobs)
        assert jobs.drain(timeout=30)
        assert (ALL, ALL) == (seen(recording.events), seen(subscribed))
        assert "completed" == jobs.get("a").status
        failures = [record for record in caplog.records if "publisher" in record.getMessage()]
        assert 7 == len(failures)

    def test_publishers_see_what_subscribers_see(self) -> None:
        """Publishers receive the very events subscribers receive."""
        recording = RecordingPublisher()
        jobs = Jobs(publishers=[recording], clock=jobs_clock(), id_factory=jobs_ids())
        subscribed: list[JobEvent] = []
        jobs.subscribe(subscribed.append)
        run_script(jobs)
        assert jobs.drain(timeout=30)
        assert subscribed == recording.events
        assert [entry.event for entry in jobs.repository.read_feed()] == recording.events


class TestThreadedDelivery:
    """By default each subscription has its own queue and thread: no handler stalls the ledger."""

    def test_a_sleeping_handler_delays_no_command(self) -> None:
        """Commands from other threads finish while a handler sleeps on every event."""
        jobs = Jobs()
        release = threading.Event()
        jobs.subscribe(lambda _event: release.wait(30))
        timings: list[float] = []

        def commands() -> None:
            for _ in range(20):
                began = time.monotonic()
                job = jobs.start(service="hr", entity="employee", type="sync")
                jobs.complete(job.id, etag=job.etag)
                timings.append(time.monotonic() - began)

        workers = [threading.Thread(target=commands) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(20)
        blocked = not release.is_set()
        release.set()
        assert blocked  # the handler was still stuck on its first event throughout
        assert 80 == len(timings)
        assert max(timings) < 10  # far under the 30 s the handler would have cost each
        assert jobs.drain(timeout=30)

    @pytest.mark.parametrize("error", [ValueError("boom"), SystemExit(3), KeyboardInterrupt()])
    def test_a_failing_handler_never_fails_a_committed_command(
        self, error: BaseException, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A handler raising anything, SystemExit included, is logged; the command returns."""
        jobs = Jobs()
        after: list[JobEvent] = []

        def fail(_event: JobEvent) -> None:
            raise error

        jobs.subscribe(fail)
        jobs.subscribe(after.append)
        with caplog.at_level(logging.ERROR, logger="jobledger"):
            job = jobs.start(service="hr", entity="employee", type="sync")
            job = jobs.update(job.id, etag=job.etag, status="x")
            assert jobs.drain(timeout=30)
        assert [1, 2] == [event.version for event in after]
        assert 2 == len([r for r in caplog.records if "event handler" in r.getMessage()])

    def test_each_job_arrives_in_commit_order_across_threads(self) -> None:
        """Jobs changed from several threads reach a subscriber each in version order."""
        jobs = Jobs()
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)

        def changes(number: int) -> None:
            job = jobs.start(service="hr", entity="employee", type="sync", job_id=f"j-{number}")
            for step in range(10):
                job = jobs.update(job.id, etag=job.etag, status=f"s{step}")

        workers = [threading.Thread(target=changes, args=(n,)) for n in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert jobs.drain(timeout=30)
        for number in range(6):
            versions = [e.version for e in seen if e.job_id == f"j-{number}"]
            assert list(range(1, 12)) == versions

    def test_a_full_queue_drops_new_events_and_counts_them(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Past max_pending waiting events, new ones are dropped for that subscription only."""
        jobs = Jobs()
        release = threading.Event()
        stuck: list[JobEvent] = []
        everything: list[JobEvent] = []

        def slow(event: JobEvent) -> None:
            release.wait(30)
            stuck.append(event)

        subscription = jobs.subscribe(slow, max_pending=3)
        jobs.subscribe(everything.append)
        with caplog.at_level(logging.WARNING, logger="jobledger"):
            for _ in range(10):
                jobs.start(service="hr", entity="employee", type="sync")
            # The first event is being handled, three wait; the other six were dropped.
            assert 6 == subscription.dropped
            release.set()
            assert jobs.drain(timeout=30)
        assert (4, 10) == (len(stuck), len(everything))
        assert [r for r in caplog.records if "events dropped" in r.getMessage()]

    def test_max_pending_must_be_positive(self) -> None:
        """A subscription's bound is a positive integer."""
        with pytest.raises(ValueError, match="max_pending"):
            Jobs().subscribe(print, max_pending=0)

    def test_drain_reports_a_handler_still_busy(self) -> None:
        """drain(timeout) returns False while a handler is still at work."""
        jobs = Jobs()
        release = threading.Event()
        jobs.subscribe(lambda _event: release.wait(30))
        jobs.start(service="hr", entity="employee", type="sync")
        try:
            assert not jobs.drain(timeout=0.05)
        finally:
            release.set()
        assert jobs.drain(timeout=30)

    def test_a_handler_may_drain_without_waiting_for_itself(self) -> None:
        """A handler that calls drain does not deadlock on its own event."""
        jobs = Jobs()
        answers: list[bool] = []
        jobs.subscribe(lambda _event: answers.append(jobs.drain(timeout=5)))
        jobs.start(service="hr", entity="employee", type="sync")
        assert jobs.drain(timeout=30)
        assert [True] == answers

    def test_inline_delivery_calls_handlers_before_the_command_returns(self) -> None:
        """With delivery="inline" (the testing mode) a handler has run when the command returns."""
        jobs = Jobs(delivery="inline")
        threads: list[threading.Thread] = []
        jobs.subscribe(lambda _event: threads.append(threading.current_thread()))
        jobs.start(service="hr", entity="employee", type="sync")
        assert [threading.current_thread()] == threads

    def test_inline_delivery_survives_a_handler_raising_system_exit(self) -> None:
        """Inline, a handler's SystemExit is logged; the committed command still returns."""
        jobs = Jobs(delivery="inline")

        def leave(_event: JobEvent) -> None:
            raise SystemExit(1)

        jobs.subscribe(leave)
        assert "started" == jobs.start(service="hr", entity="employee", type="sync").status

    def test_an_unknown_delivery_is_refused(self) -> None:
        """Delivery is 'threads' or 'inline'."""
        with pytest.raises(ValueError, match="delivery"):
            Jobs(delivery="async")  # type: ignore[arg-type]


@attrs.frozen
class JobsNamed(EventFilter):
    """A filter of the events of some jobs, by id, through the ``admits`` hook; counts its asks."""

    ids: frozenset[str] = attrs.field(default=frozenset(), kw_only=True)
    asked: list[str] = attrs.field(factory=list, kw_only=True, eq=False)

    def admits(  # noqa: PLR0917  (EventFilter.admits's signature)
        self,
        kind: EventType,
        job_id: str,
        service: str,
        entity: str,
        type: str,
        version: int,
        etag: str,
    ) -> bool:
        """Whether the job is one of :attr:`ids` (and the base filter admits it)."""
        self.asked.append(job_id)
        return job_id in self.ids and super().admits(
            kind, job_id, service, entity, type, version, etag
        )


@attrs.frozen
class UpdatesByMatches(EventFilter):
    """A filter that overrides only ``matches``: it keeps the JobUpdated events."""

    def matches(self, event: JobEvent) -> bool:
        """Whether ``event`` is a JobUpdated."""
        return isinstance(event, JobUpdated)


@attrs.frozen
class RaisingFilter(EventFilter):
    """A filter whose ``admits`` always raises."""

    def admits(  # noqa: PLR0917  (EventFilter.admits's signature)
        self,
        kind: EventType,
        job_id: str,
        service: str,
        entity: str,
        type: str,
        version: int,
        etag: str,
    ) -> bool:
        """Raise, whatever the change."""
        msg = f"filter down for {kind.__name__} {version} of {job_id} ({etag})"
        msg += f" in {service}, {entity}, {type}"
        raise RuntimeError(msg)


class TestEventsMadeForSubscribers:
    """A change's event is made only when a subscription may want it, and is the same for all.

    Each test has a ledger of its own with no publisher (a publisher gets every
    event, so every event would be made).
    """

    @pytest.fixture
    def jobs(self) -> Jobs:
        """Return an in-memory ledger with inline delivery and no publisher."""
        return Jobs(delivery="inline")

    def test_filtered_and_unfiltered_subscribers_get_the_same_values(self, jobs: Jobs) -> None:
        """A filtered subscription gets the unfiltered one's events that it matches, in order."""
        every: list[JobEvent] = []
        filters = [
            EventFilter(service="hr"),
            EventFilter(entity="account", events=JobChanged),
            EventFilter(events=JobUpdated),
            JobsNamed(ids=frozenset({"a", "c"})),
            UpdatesByMatches(),
        ]
        received: list[list[JobEvent]] = [[] for _ in filters]
        for event_filter, events in zip(filters, received, strict=True):
            jobs.subscribe(events.append, event_filter)
        jobs.subscribe(every.append)
        run_script(jobs)
        feed = [entry.event for entry in jobs.repository.read_feed()]
        assert feed == every
        for event_filter, events in zip(filters, received, strict=True):
            assert [event for event in feed if event_filter.matches(event)] == events
        assert [("a", "JobUpdated")] == seen(received[4])
        assert seen(received[3]) == [pair for pair in ALL if pair[0] in {"a", "c"}]

    def test_a_filtered_subscription_alone_gets_the_feeds_events(self, jobs: Jobs) -> None:
        """A filtered subscription alone gets the feed's events it matches, ids and versions."""
        events: list[JobEvent] = []
        jobs.subscribe(events.append, entity="account")
        run_script(jobs)
        feed = [entry.event for entry in jobs.repository.read_feed()]
        assert [event for event in feed if event.entity == "account"] == events
        assert [("b", 1), ("c", 1), ("b", 2), ("c", 2)] == [
            (event.job_id, event.version) for event in events
        ]

    def test_no_event_is_made_that_no_subscription_admits(
        self, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A change no subscription admits makes no event; one that some admits makes one."""
        made: list[str] = []

        def counted(record: decide.ChangeRecord) -> JobChanged:
            made.append(record[2])
            return event_of(record)

        monkeypatch.setattr(decide, "event_of", counted)
        events: list[JobEvent] = []
        elsewhere = JobsNamed(ids=frozenset({"b"}))
        jobs.subscribe(events.append, elsewhere)
        job = jobs.start(service="hr", entity="employee", type="sync", job_id="a")
        job = jobs.update("a", etag=job.etag, status="working")
        jobs.complete("a", etag=job.etag)
        assert [] == made
        assert ["a", "a", "a"] == elsewhere.asked
        assert [] == events
        other = jobs.start(service="hr", entity="employee", type="sync", job_id="b")
        jobs.complete("b", etag=other.etag)
        assert ["b"] == made
        assert [("b", "JobStarted"), ("b", "JobCompleted")] == seen(events)

    def test_a_filter_overriding_only_matches_gets_every_event_it_matches(self, jobs: Jobs) -> None:
        """A filter class that overrides only ``matches`` is never screened by ``admits``."""
        events: list[JobEvent] = []
        jobs.subscribe(events.append, UpdatesByMatches(service="nobody"))
        run_script(jobs)
        assert [("a", "JobUpdated")] == seen(events)

    def test_a_raising_filter_never_fails_a_committed_command(
        self, jobs: Jobs, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A filter whose ``admits`` raises fails no command; publishing its event logs it."""
        jobs.subscribe(lambda _event: None, RaisingFilter())
        with caplog.at_level(logging.ERROR, logger="jobledger"):
            job = jobs.start(service="hr", entity="employee", type="sync", job_id="a")
            job = jobs.update("a", etag=job.etag, status="working")
        assert (2, "working") == (job.version, job.status)
        assert ["filter down for JobStarted 1", "filter down for JobUpdated 2"] == [
            str(record.exc_info[1])[:28] for record in caplog.records if record.exc_info
        ]

    def test_a_subscription_canceled_admits_nothing(self, jobs: Jobs) -> None:
        """Once canceled, a subscription is asked about no change."""
        asked = JobsNamed(ids=frozenset({"a"}))
        jobs.subscribe(lambda _event: None, asked).cancel()
        run_script(jobs)
        assert [] == asked.asked

    def test_admits_answers_what_matches_answers(self) -> None:
        """EventFilter.admits, asked of an event's fields, says what matches says of the event."""
        event = JobUpdated(
            event_id="e",
            job_id="a",
            service="hr",
            entity="employee",
            type="sync",
            status="working",
            etag="t",
            version=2,
            at=datetime(2024, 1, 1, tzinfo=UTC),
            update_id=1,
            display_name=None,
            description=None,
            state_update=None,
        )
        filters = [
            EventFilter(),
            EventFilter(service="hr", entity="employee", type="sync", events=JobUpdated),
            EventFilter(service="crm"),
            EventFilter(entity="account"),
            EventFilter(type="export"),
            EventFilter(events=JobStarted),
        ]
        fields = ("a", "hr", "employee", "sync", 2, "t")
        assert [True, True, False, False, False, False] == [
            one.admits(JobUpdated, *fields) for one in filters
        ]
        assert [one.matches(event) for one in filters] == [
            one.admits(JobUpdated, *fields) for one in filters
        ]
