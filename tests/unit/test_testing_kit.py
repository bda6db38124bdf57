"""Specification of the testing kit: the fakes of jobledger.testing and its pytest plugin."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, TypeVar

import attrs
import pytest

from jobledger import (
    DEFAULT_LIMITS,
    EventPublisher,
    InMemoryRepository,
    Job,
    JobCanceled,
    JobChanged,
    JobCompleted,
    JobFailed,
    Jobs,
    JobStarted,
    JobUpdated,
    Limits,
)
from jobledger.testing import (
    DEFAULT_START,
    EventMatch,
    LedgerHarness,
    ManualClock,
    RecordingPublisher,
    SequentialIds,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from jobledger import JobEvent

pytest_plugins = ["pytester"]

THREADS = 6

T = TypeVar("T")


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Make the interpreter switch threads very often, so threads really interleave."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_together(work: Callable[[int], list[T]]) -> dict[int, list[T]]:
    """Run ``work(index)`` in THREADS threads released at once; return what each made."""
    barrier = threading.Barrier(THREADS)
    made: dict[int, list[T]] = {}

    def run(index: int) -> None:
        barrier.wait()
        made[index] = work(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return made


def switches(made: dict[int, list[T]], order: list[T]) -> int:
    """How often ``order`` passes from one thread's values to another's."""
    owner = {value: index for index, values in made.items() for value in values}
    return sum(1 for left, right in itertools.pairwise(order) if owner[left] != owner[right])


def is_exporting(event: JobEvent) -> bool:
    """A predicate for the assertion tests: the event leaves its job ``exporting``."""
    return "exporting" == event.status


def hr_script(ledger: LedgerHarness) -> tuple[Job, Job]:
    """Start job id-0001, update it, start job id-0006, complete id-0001; return both jobs."""
    jobs = ledger.jobs
    a = jobs.start(service="hr", entity="employee", type="sync")
    a = jobs.update(a.id, etag=a.etag, status="exporting", state_update={"done": 10})
    b = jobs.start(service="crm", entity="account", type="export")
    a = jobs.complete(a.id, etag=a.etag)
    return a, b


class TestManualClock:
    """ManualClock stands still, moves when told, ticks when asked, and is safe across threads."""

    def test_starts_at_the_documented_instant_and_stands_still(self) -> None:
        """A new clock reads 2024-01-01T00:00:00Z, aware and in UTC, on every reading."""
        clock = ManualClock()
        readings = [clock(), clock(), clock()]
        assert [datetime(2024, 1, 1, tzinfo=UTC)] * 3 == readings
        assert (UTC, DEFAULT_START, 3) == (readings[0].tzinfo, clock.now, clock.readings)

    def test_starts_where_told_in_utc(self) -> None:
        """An aware start in another zone is read back as the same instant in UTC."""
        clock = ManualClock(datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
        assert datetime(2025, 6, 1, 12, 0, tzinfo=UTC) == clock()
        assert UTC is clock().tzinfo

    def test_advance_takes_timedelta_keywords(self) -> None:
        """advance(...) moves the clock by the timedelta its keywords make, and returns the time."""
        clock = ManualClock()
        moved = clock.advance(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)
        assert datetime(2024, 1, 2, 2, 3, 4, 5000, tzinfo=UTC) == moved
        assert moved == clock()

    def test_advance_takes_a_timedelta(self) -> None:
        """advance(timedelta) moves the clock by that timedelta."""
        clock = ManualClock()
        clock.advance(timedelta(weeks=1, microseconds=7))
        assert datetime(2024, 1, 8, 0, 0, 0, 7, tzinfo=UTC) == clock()

    def test_advance_refuses_to_go_back(self) -> None:
        """A negative step raises ValueError and leaves the clock where it was."""
        clock = ManualClock()
        with pytest.raises(ValueError, match="use set\\(\\) to go back"):
            clock.advance(seconds=-1)
        with pytest.raises(ValueError, match="use set\\(\\) to go back"):
            clock.advance(timedelta(days=-1))
        assert DEFAULT_START == clock.now

    def test_advance_refuses_a_timedelta_with_keywords_or_a_number(self) -> None:
        """A timedelta together with keywords, or a bare number, raises TypeError."""
        clock = ManualClock()
        with pytest.raises(TypeError, match="either a timedelta or keywords"):
            clock.advance(timedelta(seconds=1), seconds=1)
        with pytest.raises(TypeError, match="takes a timedelta, not int"):
            clock.advance(5)  # type: ignore[arg-type]
        assert DEFAULT_START == clock.now

    def test_set_moves_the_clock_anywhere_and_keeps_utc(self) -> None:
        """set() puts the clock at any aware time, back in time too, converted to UTC."""
        clock = ManualClock()
        clock.set(datetime(2023, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))))
        reading = clock()
        assert (datetime(2024, 1, 1, 1, 0, tzinfo=UTC), UTC) == (reading, reading.tzinfo)
        clock.set(datetime(2000, 1, 1, tzinfo=UTC))
        assert datetime(2000, 1, 1, tzinfo=UTC) == clock()

    def test_naive_times_are_refused(self) -> None:
        """A naive start or set() raises ValueError: the ledger keeps aware UTC times."""
        with pytest.raises(ValueError, match="must be an aware datetime"):
            ManualClock(datetime(2024, 1, 1))  # noqa: DTZ001  (the naive time under test)
        clock = ManualClock()
        with pytest.raises(ValueError, match="when must be an aware datetime"):
            clock.set(datetime(2024, 1, 1))  # noqa: DTZ001  (the naive time under test)
        with pytest.raises(TypeError, match="when must be a datetime, not str"):
            clock.set("2024-01-01")  # type: ignore[arg-type]
        assert DEFAULT_START == clock.now

    def test_tick_moves_the_clock_after_each_reading(self) -> None:
        """With a tick, each reading returns the current time and then moves on by the tick."""
        clock = ManualClock(tick=timedelta(seconds=1))
        assert [0, 1, 2] == [clock().second for _ in range(3)]
        assert (datetime(2024, 1, 1, 0, 0, 3, tzinfo=UTC), 3) == (clock.now, clock.readings)
        assert timedelta(seconds=1) == clock.tick
        clock.advance(minutes=1)
        assert datetime(2024, 1, 1, 0, 1, 3, tzinfo=UTC) == clock()

    def test_tick_is_off_by_default_and_never_negative(self) -> None:
        """The default tick is zero; a negative tick or one that is not a timedelta is refused."""
        assert timedelta(0) == ManualClock().tick
        with pytest.raises(ValueError, match="tick must not be negative"):
            ManualClock(tick=timedelta(seconds=-1))
        with pytest.raises(TypeError, match="tick must be a timedelta, not int"):
            ManualClock(tick=1)  # type: ignore[arg-type]

    def test_the_ledger_records_its_times(self) -> None:
        """A Jobs on the clock stamps each change with the clock's time when it happened."""
        clock = ManualClock()
        jobs = Jobs(clock=clock)
        job = jobs.start(service="hr", entity="employee", type="sync")
        clock.advance(minutes=5)
        job = jobs.complete(job.id, etag=job.etag)
        assert (DEFAULT_START, DEFAULT_START + timedelta(minutes=5)) == (
            job.created_at,
            job.updated_at,
        )

    def test_repr_shows_the_time_and_tick(self) -> None:
        """The repr shows where the clock is, and its tick when it has one."""
        assert "<ManualClock at 2024-01-01T00:00:00+00:00>" == repr(ManualClock())
        ticking = ManualClock(tick=timedelta(seconds=2))
        assert (
            "<ManualClock at 2024-01-01T00:00:00+00:00, tick=datetime.timedelta(seconds=2)>"
            == repr(ticking)
        )

    @pytest.mark.usefixtures("frequent_switches")
    def test_a_ticking_clock_gives_every_thread_its_own_time(self) -> None:
        """Threads reading a ticking clock at once get every tick exactly once, none twice."""
        clock = ManualClock(tick=timedelta(microseconds=1))
        per_thread = 3_000
        made = run_together(lambda _: [clock() for _ in range(per_thread)])
        readings = sorted(reading for values in made.values() for reading in values)
        expected = [DEFAULT_START + timedelta(microseconds=n) for n in range(THREADS * per_thread)]
        assert expected == readings
        assert THREADS * per_thread == clock.readings
        assert switches(made, readings) > 0


class TestSequentialIds:
    """SequentialIds hands out numbered, zero-padded ids, each once, from any thread."""

    def test_counts_from_one_with_the_default_prefix(self) -> None:
        """The ids are id-0001, id-0002, ... and count says how many were handed out."""
        ids = SequentialIds()
        assert (0, ["id-0001", "id-0002", "id-0003"]) == (ids.count, [ids(), ids(), ids()])
        assert 3 == ids.count

    def test_prefix_and_width(self) -> None:
        """The prefix and the number of digits are the caller's to choose."""
        short = SequentialIds("job", width=2)
        assert ["job-01", "job-02"] == [short(), short()]
        ids = SequentialIds("etag", width=6)
        assert ["etag-000001", "etag-000002"] == [ids(), ids()]

    def test_an_empty_prefix_gives_bare_numbers(self) -> None:
        """With an empty prefix the ids are the padded numbers alone, with no dash."""
        ids = SequentialIds("")
        assert ["0001", "0002"] == [ids(), ids()]

    def test_numbers_grow_past_the_width(self) -> None:
        """After 10**width - 1 the ids go on with more digits."""
        ids = SequentialIds(width=1)
        assert ["id-1", "id-9", "id-10", "id-11"] == [
            value for n, value in enumerate(ids() for _ in range(11)) if n in {0, 8, 9, 10}
        ]

    def test_invalid_arguments_are_refused(self) -> None:
        """A prefix that is not a string, or a width that is not a positive integer, is refused."""
        with pytest.raises(TypeError, match="prefix must be a string, not int"):
            SequentialIds(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="width must be an integer, not bool"):
            SequentialIds(width=True)
        with pytest.raises(ValueError, match="width must be at least 1, not 0"):
            SequentialIds(width=0)

    def test_the_ledger_uses_them_in_a_known_order(self) -> None:
        """A start takes three ids (job, ETag, event) and a change two (ETag, event)."""
        events = RecordingPublisher()
        jobs = Jobs(id_factory=SequentialIds(), publishers=[events])
        job = jobs.start(service="hr", entity="employee", type="sync")
        job = jobs.update(job.id, etag=job.etag)
        assert ("id-0001", "id-0004") == (job.id, job.etag)
        assert ["id-0003", "id-0005"] == [event.event_id for event in events.events()]

    def test_repr_shows_the_prefix_and_count(self) -> None:
        """The repr shows the prefix and how many ids were handed out."""
        ids = SequentialIds("job")
        ids()
        assert "<SequentialIds 'job' after 1>" == repr(ids)

    @pytest.mark.usefixtures("frequent_switches")
    def test_unique_across_threads(self) -> None:
        """Threads taking ids at once get every number exactly once, in order within each thread."""
        ids = SequentialIds(width=5)
        per_thread = 3_000
        made = run_together(lambda _: [ids() for _ in range(per_thread)])
        everything = sorted(value for values in made.values() for value in values)
        assert [f"id-{n:05d}" for n in range(1, THREADS * per_thread + 1)] == everything
        assert dict.fromkeys(made, True) == {
            index: values == sorted(values) for index, values in made.items()
        }
        assert THREADS * per_thread == ids.count
        assert switches(made, everything) > 0


class TestEventMatch:
    """EventMatch matches events by kind and by field values, and reads as written."""

    @pytest.fixture
    def events(self) -> list[JobEvent]:
        """Return the events of the HR script: started, updated, started, completed."""
        ledger = LedgerHarness.create()
        hr_script(ledger)
        return ledger.events.events()

    def test_kind_alone(self, events: list[JobEvent]) -> None:
        """With a kind and no fields it matches every event of that kind."""
        assert [True, False, True, False] == list(map(EventMatch(JobStarted), events))

    def test_fields_alone(self, events: list[JobEvent]) -> None:
        """With fields and no kind it matches every event whose fields are equal."""
        assert [True, True, False, True] == list(map(EventMatch(job_id="id-0001"), events))
        assert [False, True, False, False] == list(map(EventMatch(status="exporting"), events))

    def test_kind_and_json_fields(self, events: list[JobEvent]) -> None:
        """JSON fields compare equal to plain dicts; every field must match."""
        progress = EventMatch(JobUpdated, state_update={"done": 10}, version=2)
        assert [False, True, False, False] == list(map(progress, events))
        assert not EventMatch(JobUpdated, state_update={"done": 11})(events[1])

    def test_a_union_of_kinds(self, events: list[JobEvent]) -> None:
        """A union of event types matches an event of any of them."""
        assert [False, True, False, True] == list(map(EventMatch(JobChanged), events))

    def test_a_field_the_event_lacks_does_not_match(self, events: list[JobEvent]) -> None:
        """Without a kind, a field that an event does not have makes it not match."""
        assert [False, False, False, True] == list(map(EventMatch(update_id=2), events))
        assert [False, False, False, False] == list(map(EventMatch(no_such_field=None), events))

    def test_unknown_kinds_and_fields_are_refused(self) -> None:
        """A kind that is not an event type, or a field the kind lacks, raises TypeError."""
        with pytest.raises(TypeError, match=r"expected jobledger event types .*, not Job$"):
            EventMatch(Job)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="JobStarted has no field 'update_id'"):
            EventMatch(JobStarted, update_id=1)
        with pytest.raises(TypeError, match="JobCanceled has no field 'state_update'"):
            EventMatch(JobChanged, state_update={})

    def test_repr_reads_as_written(self) -> None:
        """The repr is the call that makes the match, as failure messages show it."""
        assert "EventMatch(JobUpdated, status='exporting')" == repr(
            EventMatch(JobUpdated, status="exporting")
        )
        assert "EventMatch(job_id='a')" == repr(EventMatch(job_id="a"))
        assert "EventMatch(JobCompleted | JobFailed)" == repr(EventMatch(JobCompleted | JobFailed))


class TestRecordingPublisher:
    """RecordingPublisher records what the ledger publishes and asserts on it readably."""

    @pytest.fixture
    def ledger(self) -> LedgerHarness:
        """Return a fresh ledger that has run the HR script (jobs id-0001 and id-0006)."""
        ledger = LedgerHarness.create()
        hr_script(ledger)
        return ledger

    def test_is_an_event_publisher(self) -> None:
        """It satisfies the EventPublisher protocol."""
        assert isinstance(RecordingPublisher(), EventPublisher)

    def test_records_every_event_in_order(self, ledger: LedgerHarness) -> None:
        """events() returns every published event in the order it came."""
        assert [
            ("JobStarted", "id-0001"),
            ("JobUpdated", "id-0001"),
            ("JobStarted", "id-0006"),
            ("JobCompleted", "id-0001"),
        ] == [(type(event).__name__, event.job_id) for event in ledger.events.events()]

    def test_events_of_a_kind_for_a_job(self, ledger: LedgerHarness) -> None:
        """events() filters by kind (a type or a union) and by job id, together or apart."""
        events = ledger.events
        assert ["id-0001", "id-0006"] == [event.job_id for event in events.events(JobStarted)]
        assert [1] == [event.version for event in events.events(JobStarted, job_id="id-0006")]
        assert [2, 3] == [event.version for event in events.events(JobChanged, job_id="id-0001")]
        assert [] == events.events(JobFailed)
        assert [] == events.events(job_id="nobody")

    def test_events_returns_a_copy(self, ledger: LedgerHarness) -> None:
        """Changing the list events() returned does not change what is recorded."""
        ledger.events.events().clear()
        assert 4 == len(ledger.events.events())

    def test_events_refuses_what_is_not_an_event_type(self, ledger: LedgerHarness) -> None:
        """A kind that is not a jobledger event type raises TypeError."""
        with pytest.raises(TypeError, match=r"not Job$"):
            ledger.events.events(Job)  # type: ignore[type-var]

    def test_clear_forgets_everything(self, ledger: LedgerHarness) -> None:
        """After clear() nothing is recorded, and new events are recorded again."""
        ledger.events.clear()
        ledger.events.assert_nothing_published()
        ledger.jobs.start(service="hr", entity="employee", type="sync")
        assert ["id-0011"] == [event.job_id for event in ledger.events.events()]

    def test_assert_published_finds_events_in_order(self, ledger: LedgerHarness) -> None:
        """Expected events may have others between them; it returns the ones that matched."""
        matched = ledger.events.assert_published(
            JobStarted, is_exporting, EventMatch(JobCompleted, job_id="id-0001")
        )
        assert [("JobStarted", 1), ("JobUpdated", 2), ("JobCompleted", 3)] == [
            (type(event).__name__, event.version) for event in matched
        ]
        assert [] == ledger.events.assert_published()

    def test_assert_published_for_one_job(self, ledger: LedgerHarness) -> None:
        """With a job id only that job's events count."""
        matched = ledger.events.assert_published(JobStarted, job_id="id-0006")
        assert ["id-0006"] == [event.job_id for event in matched]

    def test_assert_published_out_of_order(self, ledger: LedgerHarness) -> None:
        """Events published in another order fail, saying which came and where."""
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_published(JobCompleted, JobUpdated, job_id="id-0001")
        assert (
            "expected events were not published in this order for job 'id-0001':\n"
            "  found    JobCompleted: #3\n"
            "  missing  JobUpdated: nothing after #3 matches it (#2 did, earlier)\n"
            "published for job 'id-0001' (3):\n"
            "    1  JobStarted(job_id='id-0001', version=1, status='started')\n"
            "    2  JobUpdated(job_id='id-0001', version=2, status='exporting',"
            " state_update={'done': 10})\n"
            "    3  JobCompleted(job_id='id-0001', version=3, status='completed')"
        ) == str(failure.value)

    def test_assert_published_missing(self, ledger: LedgerHarness) -> None:
        """An expected event that never came fails, listing what was published and what followed."""
        exporting = EventMatch(JobUpdated, status="importing")
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_published(exporting, JobFailed)
        assert (
            "expected events were not published in this order:\n"
            "  missing  EventMatch(JobUpdated, status='importing'): nothing published matches it\n"
            "  (after)  JobFailed\n"
            "published (4):\n"
            "    1  JobStarted(job_id='id-0001', version=1, status='started')\n"
            "    2  JobUpdated(job_id='id-0001', version=2, status='exporting',"
            " state_update={'done': 10})\n"
            "    3  JobStarted(job_id='id-0006', version=1, status='started')\n"
            "    4  JobCompleted(job_id='id-0001', version=3, status='completed')"
        ) == str(failure.value)

    def test_assert_published_with_nothing_published(self) -> None:
        """With no events at all the message says nothing was published."""
        with pytest.raises(AssertionError) as failure:
            RecordingPublisher().assert_published(JobStarted, job_id="a")
        assert (
            "expected events were not published in this order for job 'a':\n"
            "  missing  JobStarted: nothing published matches it\n"
            "published for job 'a': nothing"
        ) == str(failure.value)

    def test_assert_exactly_passes_on_the_same_events(self, ledger: LedgerHarness) -> None:
        """The same kinds and predicates, in the same order, pass and return the events."""
        published = ledger.events.assert_exactly(
            JobStarted, is_exporting, JobCompleted, job_id="id-0001"
        )
        assert [1, 2, 3] == [event.version for event in published]
        assert [] == RecordingPublisher().assert_exactly()

    def test_assert_exactly_marks_a_difference(self, ledger: LedgerHarness) -> None:
        """An event that differs fails, showing expected and published side by side."""
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_exactly(
                JobStarted,
                EventMatch(JobUpdated, status="blocked"),
                JobCompleted,
                job_id="id-0001",
            )
        assert (
            "expected exactly 3 event(s) for job 'id-0001', published 3;"
            " differences marked with >:\n"
            "      #  expected                                  published\n"
            "      1  JobStarted                                JobStarted(job_id='id-0001',"
            " version=1, status='started')\n"
            "  >   2  EventMatch(JobUpdated, status='blocked')  JobUpdated(job_id='id-0001',"
            " version=2, status='exporting', state_update={'done': 10})\n"
            "      3  JobCompleted                              JobCompleted(job_id='id-0001',"
            " version=3, status='completed')"
        ) == str(failure.value)

    def test_assert_exactly_marks_missing_and_extra_events(self, ledger: LedgerHarness) -> None:
        """Too few or too many events fail with the missing or extra ones marked."""
        predicate = f"is_exporting (test_testing_kit.py:{is_exporting.__code__.co_firstlineno})"
        column = len(predicate) + 2
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_exactly(
                JobStarted, is_exporting, JobCompleted, JobCanceled, job_id="id-0001"
            )
        assert (
            "expected exactly 4 event(s) for job 'id-0001', published 3;"
            " differences marked with >:\n"
            f"      #  {'expected':<{column}}published\n"
            f"      1  {'JobStarted':<{column}}JobStarted(job_id='id-0001', version=1,"
            " status='started')\n"
            f"      2  {predicate:<{column}}JobUpdated(job_id='id-0001',"
            " version=2, status='exporting', state_update={'done': 10})\n"
            f"      3  {'JobCompleted':<{column}}JobCompleted(job_id='id-0001',"
            " version=3, status='completed')\n"
            f"  >   4  {'JobCanceled':<{column}}(nothing)"
        ) == str(failure.value)
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_exactly(job_id="id-0006")
        assert (
            "expected exactly 0 event(s) for job 'id-0006', published 1;"
            " differences marked with >:\n"
            "      #  expected  published\n"
            "  >   1  (nothing)  JobStarted(job_id='id-0006', version=1, status='started')"
        ) == str(failure.value)

    def test_long_json_is_cut_short(self) -> None:
        """A long state update is shown cut to 60 characters, ending in an ellipsis."""
        ledger = LedgerHarness.create()
        job = ledger.jobs.start(service="hr", entity="employee", type="sync")
        ledger.jobs.update(job.id, etag=job.etag, state_update={"log": "x" * 100})
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_nothing_published()
        shown = "{'log': '" + "x" * 48 + "..."
        assert (
            "expected no events\n"
            "published (2):\n"
            "    1  JobStarted(job_id='id-0001', version=1, status='started')\n"
            "    2  JobUpdated(job_id='id-0001', version=2, status='started',"
            f" state_update={shown})"
        ) == str(failure.value)

    def test_assert_nothing_published(self, ledger: LedgerHarness) -> None:
        """It passes with no events (for the job) and fails listing them otherwise."""
        RecordingPublisher().assert_nothing_published()
        ledger.events.assert_nothing_published(job_id="nobody")
        with pytest.raises(AssertionError) as failure:
            ledger.events.assert_nothing_published(job_id="id-0006")
        assert (
            "expected no events for job 'id-0006'\n"
            "published for job 'id-0006' (1):\n"
            "    1  JobStarted(job_id='id-0006', version=1, status='started')"
        ) == str(failure.value)

    def test_assertions_refuse_what_is_neither_kind_nor_predicate(self) -> None:
        """An expected entry that is not an event type or callable raises TypeError."""
        events = RecordingPublisher()
        with pytest.raises(TypeError, match="or a predicate on events, not str"):
            events.assert_published("JobStarted")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"not Job$"):
            events.assert_exactly(Job)  # type: ignore[arg-type]

    def test_repr_counts_events(self, ledger: LedgerHarness) -> None:
        """The repr says how many events are recorded."""
        assert "<RecordingPublisher with 4 event(s)>" == repr(ledger.events)

    @pytest.mark.usefixtures("frequent_switches")
    def test_publishers_and_readers_on_many_threads(self) -> None:
        """Events published from many threads at once are all kept, each thread's in its order."""
        events = RecordingPublisher()
        template = LedgerHarness.create().jobs.start(service="hr", entity="employee", type="sync")
        started = JobStarted(
            event_id="",
            job_id=template.id,
            service="hr",
            entity="employee",
            type="sync",
            status="started",
            etag=template.etag,
            version=1,
            at=DEFAULT_START,
            display_name="",
            description="",
            input=template.input,
            state=template.state,
        )
        per_thread = 2_000
        seen_counts: list[int] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                seen_counts.append(len(events.events()))

        def publish(index: int) -> list[str]:
            mine = [attrs.evolve(started, event_id=f"{index}-{n}") for n in range(per_thread)]
            for event in mine:
                events.publish(event)
            return [event.event_id for event in mine]

        reader = threading.Thread(target=read)
        reader.start()
        made = run_together(publish)
        stop.set()
        reader.join()
        recorded = [event.event_id for event in events.events()]
        assert THREADS * per_thread == len(recorded)
        assert made == {
            index: [value for value in recorded if value in set(values)]
            for index, values in made.items()
        }
        assert seen_counts == sorted(seen_counts)
        assert switches(made, recorded) > 0


class TestLedgerHarness:
    """LedgerHarness wires a ledger to a manual clock, sequential ids and a recording publisher."""

    def test_defaults(self) -> None:
        """By default it is in memory, its clock stands at 2024-01-01Z, its ids are id-0001, ..."""
        ledger = LedgerHarness.create()
        job = ledger.jobs.start(service="hr", entity="employee", type="sync")
        assert ("id-0001", DEFAULT_START, DEFAULT_START) == (job.id, job.created_at, ledger.clock())
        assert isinstance(ledger.jobs.repository, InMemoryRepository)
        assert DEFAULT_LIMITS == ledger.jobs.limits
        assert (3, ["id-0003"]) == (
            ledger.ids.count,
            [event.event_id for event in ledger.events.events()],
        )

    def test_every_part_can_be_chosen(self) -> None:
        """The repository, start, tick, id prefix and limits are the caller's to choose."""
        repository = InMemoryRepository()
        limits = Limits(max_depth=3)
        ledger = LedgerHarness.create(
            repository,
            start=datetime(2030, 5, 6, tzinfo=UTC),
            tick=timedelta(seconds=10),
            id_prefix="hr",
            limits=limits,
        )
        first = ledger.jobs.start(service="hr", entity="employee", type="sync")
        second = ledger.jobs.start(service="hr", entity="employee", type="sync")
        assert (repository, limits) == (ledger.jobs.repository, ledger.jobs.limits)
        assert ("hr-0001", "hr-0004") == (first.id, second.id)
        assert datetime(2030, 5, 6, 0, 0, 10, tzinfo=UTC) == second.created_at
        assert first == repository.get("hr-0001")

    def test_each_harness_is_fresh(self) -> None:
        """Two harnesses share nothing: each starts its own ids and records its own events."""
        one, two = LedgerHarness.create(), LedgerHarness.create()
        one.jobs.start(service="hr", entity="employee", type="sync")
        assert "id-0001" == two.jobs.start(service="hr", entity="employee", type="sync").id
        assert [1, 1] == [len(one.events.events()), len(two.events.events())]

    def test_it_is_frozen(self) -> None:
        """Its parts cannot be swapped after it is made."""
        ledger = LedgerHarness.create()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            ledger.clock = ManualClock()  # type: ignore[misc]


#: A test module that the plugin tests run in a separate pytest session.
PLUGIN_TESTS = """
from datetime import UTC, datetime

from jobledger import InMemoryRepository, JobCompleted, JobStarted


def test_defaults(jobledger_jobs, jobledger_clock, jobledger_ids, jobledger_events,
                  jobledger_repository):
    job = jobledger_jobs.start(service="hr", entity="employee", type="sync")
    assert "id-0001" == job.id
    assert datetime(2024, 1, 1, tzinfo=UTC) == job.created_at == jobledger_clock()
    assert 3 == jobledger_ids.count
    assert jobledger_repository is jobledger_jobs.repository
    assert isinstance(jobledger_repository, InMemoryRepository)
    assert job == jobledger_repository.get("id-0001")
    jobledger_events.assert_exactly(JobStarted)


def test_clock_moves_only_when_told(jobledger_jobs, jobledger_clock, jobledger_events):
    job = jobledger_jobs.start(service="hr", entity="employee", type="sync")
    unmoved = jobledger_jobs.update(job.id, etag=job.etag)
    jobledger_clock.advance(minutes=5)
    job = jobledger_jobs.complete(job.id, etag=unmoved.etag)
    assert unmoved.updated_at == job.created_at
    assert "2024-01-01T00:05:00+00:00" == job.updated_at.isoformat()
    jobledger_events.assert_published(JobStarted, JobCompleted, job_id=job.id)


def test_fixtures_are_fresh_for_each_test(jobledger_jobs, jobledger_events):
    assert "id-0001" == jobledger_jobs.start(service="hr", entity="a", type="b").id
    assert 1 == len(jobledger_events.events())
"""

#: A conftest that overrides two of the plugin's fixtures for its folder.
OVERRIDING_CONFTEST = """
from datetime import UTC, datetime, timedelta

import pytest

from jobledger import InMemoryRepository
from jobledger.testing import ManualClock, SequentialIds

SHARED = InMemoryRepository()


@pytest.fixture
def jobledger_clock():
    return ManualClock(datetime(2030, 1, 1, tzinfo=UTC), tick=timedelta(seconds=1))


@pytest.fixture
def jobledger_ids():
    return SequentialIds("hr")


@pytest.fixture
def jobledger_repository():
    return SHARED
"""

OVERRIDDEN_TESTS = """
def test_overrides_are_used(jobledger_jobs, jobledger_clock):
    job = jobledger_jobs.start(service="hr", entity="employee", type="sync")
    job = jobledger_jobs.complete(job.id, etag=job.etag)
    assert "hr-0001" == job.id
    assert "2030-01-01T00:00:01+00:00" == job.updated_at.isoformat()
    assert "2030-01-01T00:00:02+00:00" == jobledger_clock.now.isoformat()
    from conftest import SHARED
    assert job == SHARED.get("hr-0001")
"""

#: Load the plugin from its module whether or not the installed distribution also
#: registers it through its entry point (named ``jobledger``): blocking the entry point
#: keeps pytest from registering the same module twice.
PLUGIN_ARGUMENTS = (
    "-p",
    "no:jobledger",
    "-p",
    "jobledger.testing.plugin",
    "-p",
    "no:cacheprovider",
)


class TestPlugin:
    """The pytest plugin gives fresh, wired jobledger_* fixtures that conftests can override."""

    def test_fixtures_are_wired_and_fresh(self, pytester: pytest.Pytester) -> None:
        """The fixtures give a ledger on the manual clock, sequential ids and recorded events."""
        pytester.makepyfile(test_ledger=PLUGIN_TESTS)
        result = pytester.runpytest(*PLUGIN_ARGUMENTS)
        result.assert_outcomes(passed=3)

    def test_a_conftest_overrides_a_fixture_for_the_others(self, pytester: pytest.Pytester) -> None:
        """An override of the clock, ids or repository in a conftest is what jobledger_jobs uses."""
        pytester.makeconftest(OVERRIDING_CONFTEST)
        pytester.makepyfile(test_overridden=OVERRIDDEN_TESTS)
        result = pytester.runpytest(*PLUGIN_ARGUMENTS)
        result.assert_outcomes(passed=1)

    def test_a_failing_event_assertion_reports_the_events(self, pytester: pytest.Pytester) -> None:
        """A failed event assertion fails the test and shows the published events."""
        pytester.makepyfile(
            test_failing="""
            from jobledger import JobCompleted

            def test_expects_a_completion(jobledger_jobs, jobledger_events):
                jobledger_jobs.start(service="hr", entity="employee", type="sync")
                jobledger_events.assert_published(JobCompleted)
            """
        )
        result = pytester.runpytest(*PLUGIN_ARGUMENTS)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*AssertionError: expected events were not published in this order:",
                "*missing  JobCompleted: nothing published matches it",
                "*1  JobStarted(job_id='id-0001', version=1, status='started')",
            ]
        )

    def test_importing_it_needs_no_hypothesis(self) -> None:
        """Loading the plugin imports neither hypothesis nor the heavier parts of jobledger."""
        heavy = [
            "cattrs",
            "hypothesis",
            "jobledger.runner",
            "jobledger.sqlite",
            "jobledger.testing.contract",
            "jobledger.testing.machine",
            "jobledger.testing.strategies",
            "jobledger.wire",
            "sqlite3",
        ]
        script = textwrap.dedent(
            f"""
            import sys
            import jobledger.testing.plugin
            print(sorted(name for name in {heavy!r} if name in sys.modules))
            """
        )
        output = subprocess.run(  # noqa: S603  (our own interpreter, a fixed script)
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        assert "[]\n" == output
