"""Specification of the Jobs facade: commands, ETags, retries, reads and isolation."""

from __future__ import annotations

import enum
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, Self

import attrs
import pytest

from jobledger import (
    ANY_ETAG,
    DEFAULT_LIMITS,
    CancelJob,
    CompleteJob,
    ConcurrencyError,
    FailJob,
    InMemoryRepository,
    InvalidJobDataError,
    InvalidTransitionError,
    Job,
    JobAlreadyExistsError,
    JobCanceled,
    JobNotFoundError,
    Jobs,
    JobStarted,
    JobUpdate,
    JobUpdated,
    JsonArray,
    JsonObject,
    Limits,
    RequestIdConflictError,
    StartJob,
    UpdateJob,
    UpdateType,
    freeze,
    thaw,
)
from jobledger._application import defaults
from jobledger._core.events import changed_job, started_job
from jobledger.testing import SequentialIds

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import Change, JobEvent, RequestRecord

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def second(n: int) -> datetime:
    """The ``clock`` fixture's reading number ``n`` (0 is the first)."""
    return EPOCH + timedelta(seconds=n)


def fresh_ledger() -> Jobs:
    """A ledger with its own deterministic clock and ids, like the ``jobs`` fixture's."""
    readings = iter(range(1_000))
    counter = iter(range(1, 10_000))
    return Jobs(
        clock=lambda: second(next(readings)),
        id_factory=lambda: f"id-{next(counter):04d}",
        delivery="inline",
    )


def start(jobs: Jobs, **fields: object) -> Job:
    """Start an hr/employee/sync job with ``fields`` on top."""
    arguments: dict[str, object] = {"service": "hr", "entity": "employee", "type": "sync"}
    arguments.update(fields)
    return jobs.start(**arguments)  # type: ignore[arg-type]


def written(jobs: Jobs, job_id: str) -> tuple[object, ...]:
    """Everything the ledger holds about ``job_id`` and its feed."""
    return (
        jobs.get(job_id),
        tuple(jobs.updates(job_id)),
        jobs.repository.feed_head(),
        tuple(jobs.repository.read_feed()),
    )


def collect(jobs: Jobs) -> list[JobEvent]:
    """Subscribe a list to every event of ``jobs`` and return it."""
    events: list[JobEvent] = []
    jobs.subscribe(events.append)
    return events


class TestStart:
    """A start makes a job with the injected clock and ids, and reads it back."""

    def test_start_uses_the_injected_clock_and_ids(self, jobs: Jobs) -> None:
        """The job's id, ETag, times and event id come from the injected clock and id factory."""
        job = start(jobs, display_name="Nightly", input={"a": 1}, state={"done": 0})
        assert (
            Job(
                id="id-0001",
                service="hr",
                entity="employee",
                type="sync",
                display_name="Nightly",
                description="",
                status="started",
                input=job.input,
                state=job.state,
                etag="id-0002",
                version=1,
                created_at=second(0),
                updated_at=second(0),
            )
            == job
        )
        assert ({"a": 1}, {"done": 0}) == (job.input, job.state)
        (entry,) = jobs.repository.read_feed()
        assert (1, "id-0003") == (entry.position, entry.event.event_id)

    def test_input_and_state_default_to_empty_objects(self, jobs: Jobs) -> None:
        """A start without input or state gives both as {}."""
        job = start(jobs)
        assert ({}, {}) == (job.input, job.state)

    def test_start_with_a_job_id(self, jobs: Jobs) -> None:
        """A start that names a job id gets it, and the factory only makes ETag and event id."""
        job = start(jobs, job_id="nightly-2024-01-01")
        assert ("nightly-2024-01-01", "id-0001") == (job.id, job.etag)

    def test_get_returns_the_job_as_started(self, jobs: Jobs) -> None:
        """Reading the job back gives the job the start returned."""
        job = start(jobs)
        assert job == jobs.get(job.id)

    def test_a_new_job_has_no_updates(self, jobs: Jobs) -> None:
        """A job's update log is empty after its start."""
        assert () == tuple(jobs.updates(start(jobs).id))

    def test_start_on_a_taken_id_raises_and_writes_nothing(self, jobs: Jobs) -> None:
        """A second start with the same job id raises JobAlreadyExistsError and changes nothing."""
        job = start(jobs, job_id="j")
        before = written(jobs, "j")
        with pytest.raises(JobAlreadyExistsError) as caught:
            start(jobs, job_id="j", display_name="other")
        assert "j" == caught.value.job_id
        assert before == written(jobs, "j")
        assert job == jobs.get("j")

    def test_invalid_data_on_start_writes_nothing(self, jobs: Jobs) -> None:
        """A start with invalid data raises InvalidJobDataError and leaves the feed empty."""
        with pytest.raises(InvalidJobDataError) as caught:
            start(jobs, state={"x": float("nan")})
        assert ("state", "/x") == (caught.value.field, caught.value.path)
        assert (0, ()) == (jobs.repository.feed_head(), tuple(jobs.find().jobs))


class TestConstruction:
    """Jobs takes a repository, limits, clock, ids and publishers, with sane defaults."""

    def test_default_repository_is_in_memory(self) -> None:
        """Without a repository, Jobs keeps jobs in a new InMemoryRepository."""
        assert isinstance(Jobs().repository, InMemoryRepository)

    def test_given_repository_is_used(self) -> None:
        """Jobs keeps its jobs in the repository it was given."""
        repository = InMemoryRepository()
        job = start(Jobs(repository=repository))
        assert job == repository.get(job.id)

    def test_limits_default_and_configured(self) -> None:
        """Jobs enforces DEFAULT_LIMITS unless given others."""
        limits = Limits(max_name_length=40)
        assert (DEFAULT_LIMITS, limits) == (Jobs().limits, Jobs(limits=limits).limits)
        with pytest.raises(InvalidJobDataError) as caught:
            start(Jobs(limits=limits), entity="e" * 41)
        assert "entity" == caught.value.field

    def test_limits_the_default_ids_cannot_fit_are_refused(self) -> None:
        """With the default id factory, a max_name_length under 36 is refused when Jobs is made."""
        with pytest.raises(ValueError, match="at least 36") as caught:
            Jobs(limits=Limits(max_name_length=20))
        assert not isinstance(caught.value, InvalidJobDataError)

    def test_short_names_are_allowed_with_an_id_factory_whose_ids_fit(self) -> None:
        """A custom id factory with short ids may run under a short max_name_length."""
        jobs = Jobs(limits=Limits(max_name_length=9), id_factory=SequentialIds("j"))
        job = start(jobs)
        assert "canceled" == jobs.cancel(job.id, etag="*").status

    @pytest.mark.parametrize("levels", [65, 129, 1_000])
    def test_depth_errors_name_the_path_and_the_configured_limit(self, levels: int) -> None:
        """Too deep a state_update is refused at the path of the first level past max_depth."""
        jobs = Jobs()
        job = start(jobs)
        patch: dict[str, object] = {}
        for _ in range(levels - 1):
            patch = {"a": patch}
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.update(job.id, etag=job.etag, state_update=patch)
        assert ("state_update", "/a" * 64, "nested deeper than 64 levels") == (
            caught.value.field,
            caught.value.path,
            caught.value.reason,
        )

    def test_depth_errors_of_frozen_documents_name_the_path(self) -> None:
        """A frozen document past max_depth is refused naming where it goes too deep."""
        jobs = Jobs(limits=Limits(max_depth=2))
        state = freeze({"ok": 1, "x": {"y": {"z": 1}}}, field="state")
        with pytest.raises(InvalidJobDataError) as caught:
            start(jobs, state=state)
        assert ("state", "/x/y", "nested deeper than 2 levels") == (
            caught.value.field,
            caught.value.path,
            caught.value.reason,
        )

    def test_a_command_past_the_hard_depth_says_so(self) -> None:
        """A command object built past 128 levels is refused citing the hard cap, not a limit."""
        patch: dict[str, object] = {}
        for _ in range(200):
            patch = {"a": patch}
        with pytest.raises(InvalidJobDataError) as caught:
            UpdateJob(job_id="j", etag="e", state_update=patch)
        assert ("/a" * 128, "nested deeper than 128 levels, the most jobledger accepts") == (
            caught.value.path,
            caught.value.reason,
        )

    def test_default_clock_and_ids(self) -> None:
        """By default, times are aware UTC datetimes, job ids UUIDv7 strings, ETags tokens."""
        job = start(Jobs())
        assert (UTC, 7, True) == (
            job.created_at.tzinfo,
            uuid.UUID(job.id).version,
            re.fullmatch("[0-9a-f]{16}-[0-9a-f]+", job.etag) is not None,
        )

    def test_default_etags_and_event_ids_are_never_reused(self) -> None:
        """The default ETags and event ids of two ledgers and all their changes are all distinct."""
        first, second = Jobs(), Jobs()
        seen: list[str] = []
        for jobs in (first, second):
            job = start(jobs)
            seen.append(job.etag)
            job = jobs.update(job.id, etag=job.etag, status="running")
            seen.append(job.etag)
            seen.extend(entry.event.event_id for entry in jobs.repository.read_feed())
        assert 8 == len(set(seen))

    def test_a_clock_that_returns_naive_times_is_refused(self) -> None:
        """A clock returning naive datetimes is a misconfiguration: ValueError, nothing written."""
        jobs = Jobs(clock=lambda: datetime(2026, 1, 1))  # noqa: DTZ001  (naive on purpose)
        with pytest.raises(ValueError, match="timezone-aware"):
            start(jobs)
        assert 0 == jobs.repository.feed_head()

    def test_same_script_gives_the_same_ledger(self) -> None:
        """Two ledgers with equal clocks and id factories record exactly the same things."""
        ledgers = (fresh_ledger(), fresh_ledger())
        for jobs in ledgers:
            job = start(jobs, state={"n": 0})
            job = jobs.update(job.id, etag=job.etag, state_update={"n": 1})
            jobs.complete(job.id, etag=job.etag)
        first, second_ledger = ledgers
        assert written(first, "id-0001") == written(second_ledger, "id-0001")


class TestChanges:
    """Update, complete, fail and cancel return the job after the change and log it."""

    def test_texts_given_as_str_subclasses_are_kept_as_plain_strings(self, jobs: Jobs) -> None:
        """An update's display name and description, given as a StrEnum, are stored as str."""

        class Label(enum.StrEnum):
            NIGHTLY = "Nightly"

        job = jobs.start(service="hr", entity="employee", type="sync")

        updated = jobs.update(
            job.id, etag=job.etag, display_name=Label.NIGHTLY, description=Label.NIGHTLY
        )

        assert (str, str, "Nightly") == (
            type(updated.display_name),
            type(jobs.get(job.id).description),
            updated.display_name,
        )

    def test_update_returns_the_job_after(self, jobs: Jobs) -> None:
        """An update changes status, texts and state and returns the job as stored."""
        job = start(jobs, state={"done": 0, "total": 42})
        job = jobs.update(
            job.id,
            etag=job.etag,
            status="exporting",
            display_name="Export",
            description="step 1",
            state_update={"done": 10},
        )
        assert (
            "exporting",
            "Export",
            "step 1",
            {"done": 10, "total": 42},
            2,
            "id-0004",
            second(1),
            second(0),
        ) == (
            job.status,
            job.display_name,
            job.description,
            job.state,
            job.version,
            job.etag,
            job.updated_at,
            job.created_at,
        )
        assert job == jobs.get(job.id)

    @pytest.mark.parametrize(
        ("command", "status"),
        [("complete", "completed"), ("fail", "failed"), ("cancel", "canceled")],
    )
    def test_final_commands(self, jobs: Jobs, command: str, status: str) -> None:
        """Complete, fail and cancel set their status and end the job."""
        job = start(jobs)
        job = getattr(jobs, command)(job.id, etag=job.etag, description="end")
        assert (status, "end", 2, True) == (
            job.status,
            job.description,
            job.version,
            job.phase.is_terminal,
        )
        assert job == jobs.get(job.id)

    def test_updates_are_oldest_first(self, jobs: Jobs) -> None:
        """The update log lists every change in order, with consecutive ids."""
        job = start(jobs)
        job = jobs.update(job.id, etag=job.etag, status="a", state_update={"n": 1})
        job = jobs.update(job.id, etag=job.etag, display_name="b")
        job = jobs.fail(job.id, etag=job.etag, state_update={"error": "x"})
        assert [
            JobUpdate(
                job_id="id-0001",
                update_id=1,
                update_type=UpdateType.UPDATED,
                status="a",
                state_update={"n": 1},  # type: ignore[arg-type]
                display_name=None,
                description=None,
                etag="id-0004",
                at=second(1),
            ),
            JobUpdate(
                job_id="id-0001",
                update_id=2,
                update_type=UpdateType.UPDATED,
                status="a",
                state_update=None,
                display_name="b",
                description=None,
                etag="id-0006",
                at=second(2),
            ),
            JobUpdate(
                job_id="id-0001",
                update_id=3,
                update_type=UpdateType.FAILED,
                status="failed",
                state_update={"error": "x"},  # type: ignore[arg-type]
                display_name=None,
                description=None,
                etag="id-0008",
                at=second(3),
            ),
        ] == list(jobs.updates(job.id))

    def test_each_change_publishes_its_event(self, jobs: Jobs) -> None:
        """Start, update and cancel publish JobStarted, JobUpdated and JobCanceled, in order."""
        events = collect(jobs)
        job = start(jobs)
        job = jobs.update(job.id, etag=job.etag)
        jobs.cancel(job.id, etag=job.etag)
        assert [(JobStarted, 1), (JobUpdated, 2), (JobCanceled, 3)] == [
            (type(event), event.version) for event in events
        ]

    @pytest.mark.parametrize(
        "read", [lambda jobs: jobs.get("nope"), lambda jobs: jobs.updates("nope")]
    )
    def test_reading_an_unknown_job_raises_not_found(
        self, jobs: Jobs, read: Callable[[Jobs], object]
    ) -> None:
        """Reading an unknown id raises JobNotFoundError, which is also a LookupError."""
        with pytest.raises(JobNotFoundError) as caught:
            read(jobs)
        assert "nope" == caught.value.job_id
        assert isinstance(caught.value, LookupError)

    @pytest.mark.parametrize(
        "change",
        [
            lambda jobs: jobs.update("nope", etag="e"),
            lambda jobs: jobs.complete("nope", etag="e"),
            lambda jobs: jobs.fail("nope", etag=ANY_ETAG),
            lambda jobs: jobs.cancel("nope", etag="e"),
        ],
        ids=["update", "complete", "fail", "cancel"],
    )
    def test_changing_an_unknown_job_raises_not_found(
        self, jobs: Jobs, change: Callable[[Jobs], object]
    ) -> None:
        """A change for an unknown id raises JobNotFoundError and publishes nothing."""
        events = collect(jobs)
        with pytest.raises(JobNotFoundError):
            change(jobs)
        assert ([], 0) == (events, jobs.repository.feed_head())


class TestEtags:
    """Every change is guarded by the ETag the sender last saw."""

    @pytest.mark.parametrize(
        "change",
        [
            lambda jobs, etag: jobs.update("id-0001", etag=etag, status="x"),
            lambda jobs, etag: jobs.complete("id-0001", etag=etag),
            lambda jobs, etag: jobs.fail("id-0001", etag=etag),
            lambda jobs, etag: jobs.cancel("id-0001", etag=etag),
        ],
        ids=["update", "complete", "fail", "cancel"],
    )
    def test_stale_etag_raises_and_changes_nothing(
        self, jobs: Jobs, change: Callable[[Jobs, str], Job]
    ) -> None:
        """A stale ETag raises ConcurrencyError with the current ETag and changes nothing."""
        first = start(jobs)
        current = jobs.update(first.id, etag=first.etag, status="moved")
        events = collect(jobs)
        before = written(jobs, first.id)
        with pytest.raises(ConcurrencyError) as caught:
            change(jobs, first.etag)
        assert ("id-0001", "id-0002", "id-0004") == (
            caught.value.job_id,
            caught.value.expected_etag,
            caught.value.current_etag,
        )
        assert current.etag == caught.value.current_etag
        assert before == written(jobs, first.id)
        assert [] == events

    def test_retry_with_the_current_etag_succeeds(self, jobs: Jobs) -> None:
        """After a ConcurrencyError, the command with the current ETag applies."""
        job = start(jobs)
        jobs.update(job.id, etag=job.etag, status="moved")
        with pytest.raises(ConcurrencyError) as caught:
            jobs.complete(job.id, etag=job.etag)
        assert "completed" == jobs.complete(job.id, etag=caught.value.current_etag).status

    def test_any_etag_applies_at_any_version(self, jobs: Jobs) -> None:
        """The wildcard ETag applies whatever the job's version."""
        job = start(jobs)
        for n in range(3):
            job = jobs.update(job.id, etag=ANY_ETAG, state_update={"n": n})
        job = jobs.complete(job.id, etag=ANY_ETAG)
        assert ("completed", 5, {"n": 2}) == (job.status, job.version, job.state)

    def test_every_change_gets_a_new_etag(self, jobs: Jobs) -> None:
        """Each change gives the job an ETag it never had before."""
        job = start(jobs)
        etags = [job.etag]
        for n in range(10):
            job = jobs.update(job.id, etag=job.etag, state_update={"n": n})
            etags.append(job.etag)
        assert 11 == len(set(etags))
        assert [update.etag for update in jobs.updates(job.id)] == etags[1:]

    def test_a_wildcard_change_that_loses_a_race_is_decided_again(self) -> None:
        """A wildcard command whose save loses to another writer is re-decided and applies."""
        repository = RacingRepository()
        jobs = Jobs(repository=repository)
        job = start(jobs)
        rival = Jobs(repository=repository)
        repository.before_next_save = lambda: rival.update(job.id, etag=job.etag, status="rival")
        result = jobs.update(job.id, etag=ANY_ETAG, state_update={"mine": True})
        assert 1 == repository.conflicts
        assert (3, "rival", {"mine": True}) == (result.version, result.status, result.state)


class RacingRepository(InMemoryRepository):
    """An in-memory repository that lets a rival act just before the next save or look-up."""

    def __init__(self) -> None:
        """Start with no rival waiting."""
        super().__init__()
        self.before_next_save: Callable[[], object] | None = None
        self.before_next_find_request: Callable[[], object] | None = None
        self.conflicts = 0

    def save(self, change: Change) -> int:
        """Let the rival act first, once, then save; count the ConcurrencyErrors."""
        rival, self.before_next_save = self.before_next_save, None
        if rival is not None:
            rival()
        try:
            return super().save(change)
        except ConcurrencyError:
            self.conflicts += 1
            raise

    def find_request(self, request_id: str) -> RequestRecord | None:
        """Let the rival act once, after the look-up has found nothing."""
        rival, self.before_next_find_request = self.before_next_find_request, None
        record = super().find_request(request_id)
        if rival is not None:
            rival()
        return record


class TestRequestIds:
    """A command sent again with its request id is answered, not redone."""

    def test_a_retried_update_is_answered_with_the_same_job(self, jobs: Jobs) -> None:
        """The same update sent twice with one request id returns the same job and writes once."""
        events = collect(jobs)
        job = start(jobs)
        first = jobs.update(job.id, etag=job.etag, status="x", request_id="msg-42")
        before = written(jobs, job.id)
        delivered = len(events)
        again = jobs.update(job.id, etag=job.etag, status="x", request_id="msg-42")
        assert first == again
        assert before == written(jobs, job.id)
        assert delivered == len(events)

    @pytest.mark.parametrize("command", ["complete", "fail", "cancel"])
    def test_retried_final_commands_are_answered(self, jobs: Jobs, command: str) -> None:
        """A retried complete, fail or cancel is answered even though the job is now terminal."""
        job = start(jobs)
        first = getattr(jobs, command)(job.id, etag=job.etag, request_id="r")
        before = written(jobs, job.id)
        assert first == getattr(jobs, command)(job.id, etag=job.etag, request_id="r")
        assert before == written(jobs, job.id)

    def test_a_retry_gets_the_job_as_the_first_command_left_it(self, jobs: Jobs) -> None:
        """A retry after later changes answers with the job as its own command left it."""
        job = start(jobs)
        first = jobs.update(job.id, etag=job.etag, status="x", request_id="r")
        jobs.update(job.id, etag=first.etag, status="later")
        assert first == jobs.update(job.id, etag=job.etag, status="x", request_id="r")

    def test_a_retried_start_makes_one_job(self, jobs: Jobs) -> None:
        """A start retried with its request id returns the first job and starts no other."""
        events = collect(jobs)
        first = start(jobs, state={"a": 1}, request_id="start-1")
        again = start(jobs, state={"a": 1}, request_id="start-1")
        assert first == again
        assert ([first], 1, 1) == (
            list(jobs.find().jobs),
            len(events),
            jobs.repository.feed_head(),
        )

    def test_a_start_with_its_own_job_id_is_answered_on_retry(self, jobs: Jobs) -> None:
        """A start that names its job id and a request id is answered when retried."""
        first = start(jobs, job_id="j-1", request_id="r-1")
        assert first == start(jobs, job_id="j-1", request_id="r-1")
        assert 1 == jobs.repository.feed_head()

    def test_a_start_with_a_taken_id_and_no_request_id_is_refused(self, jobs: Jobs) -> None:
        """Without a request id, a second start of the same job id is JobAlreadyExistsError."""
        start(jobs, job_id="j-1", request_id="r-1")
        with pytest.raises(JobAlreadyExistsError):
            start(jobs, job_id="j-1")

    @pytest.mark.parametrize(
        "other",
        [
            lambda jobs, job: jobs.update(job.id, etag=job.etag, status="y", request_id="r"),
            lambda jobs, job: jobs.update(job.id, etag=ANY_ETAG, status="x", request_id="r"),
            lambda jobs, job: jobs.complete(job.id, etag=job.etag, request_id="r"),
            lambda jobs, _job: start(jobs, request_id="r"),
        ],
        ids=["other-status", "other-etag", "other-command", "start"],
    )
    def test_the_same_request_id_for_another_command_conflicts(
        self, jobs: Jobs, other: Callable[[Jobs, Job], Job]
    ) -> None:
        """Reusing a request id for another command raises RequestIdConflictError, no write."""
        job = start(jobs)
        jobs.update(job.id, etag=job.etag, status="x", request_id="r")
        events = collect(jobs)
        before = written(jobs, job.id)
        with pytest.raises(RequestIdConflictError) as caught:
            other(jobs, job)
        assert "r" == caught.value.request_id
        assert before == written(jobs, job.id)
        assert [] == events

    def test_a_refused_command_does_not_use_up_its_request_id(self, jobs: Jobs) -> None:
        """A command refused for a stale ETag records nothing, so its request id stays free."""
        job = start(jobs)
        moved = jobs.update(job.id, etag=job.etag, status="moved")
        with pytest.raises(ConcurrencyError):
            jobs.update(job.id, etag=job.etag, status="x", request_id="r")
        assert "x" == jobs.update(job.id, etag=moved.etag, status="x", request_id="r").status

    def test_a_twin_completion_that_ends_the_job_before_the_load_is_the_answer(self) -> None:
        """A retried completion whose twin completes the job before it is loaded is answered."""
        repository = RacingRepository()
        job = start(Jobs(repository=repository))
        command = CompleteJob(job_id=job.id, etag=job.etag, request_id="r")
        twin: list[Job] = []
        repository.before_next_find_request = lambda: twin.append(
            Jobs(repository=repository).handle(command)
        )

        answer = Jobs(repository=repository).handle(command)

        assert (twin[0], 2) == (answer, repository.feed_head())

    def test_a_twin_update_that_commits_first_is_answered(self) -> None:
        """When a twin of a retried update commits just before it, the retry is answered."""
        repository = RacingRepository()
        jobs = Jobs(repository=repository)
        job = start(jobs)
        command = UpdateJob(job_id=job.id, etag=job.etag, status="x", request_id="r")
        twin = Jobs(repository=repository)
        repository.before_next_find_request = lambda: twin.handle(command)
        answer = jobs.handle(command)
        assert (2, "x") == (answer.version, answer.status)
        assert answer == jobs.get(job.id)

    def test_a_twin_start_with_a_job_id_that_commits_first_is_answered(self) -> None:
        """When a twin of a retried start with a job id commits first, the retry is answered."""
        repository = RacingRepository()
        jobs = Jobs(repository=repository)
        command = StartJob(service="hr", entity="e", type="t", job_id="j", request_id="r")
        twin = Jobs(repository=repository)
        repository.before_next_find_request = lambda: twin.handle(command)
        answer = jobs.handle(command)
        assert (answer, 1) == (jobs.get("j"), repository.feed_head())

    def test_a_twin_start_without_a_job_id_that_commits_first_is_answered(self) -> None:
        """When a twin of a retried start without a job id commits first, the retry is answered."""
        repository = RacingRepository()
        jobs = Jobs(repository=repository)
        command = StartJob(service="hr", entity="e", type="t", request_id="r")
        twin = Jobs(repository=repository)
        repository.before_next_find_request = lambda: twin.handle(command)
        answer = jobs.handle(command)
        assert ([answer], 1) == (list(jobs.find().jobs), repository.feed_head())


class TestMalformedKeys:
    """Job ids, request ids and ETags are checked before anything is read or written."""

    @pytest.mark.parametrize("etag", [None, 123, "", "a\x00b"], ids=repr)
    def test_an_etag_that_is_not_a_name_is_invalid_data(self, jobs: Jobs, etag: object) -> None:
        """A change whose ETag is not a non-empty string is InvalidJobDataError, not a conflict."""
        job = start(jobs)
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.update(job.id, etag=etag, status="x")  # type: ignore[arg-type]
        assert "etag" == caught.value.field
        assert 1 == jobs.get(job.id).version

    @pytest.mark.parametrize("key", ["a\x00b", "lone \ud800", 7], ids=repr)
    def test_a_request_id_that_is_not_a_name_is_invalid_data(self, jobs: Jobs, key: object) -> None:
        """A malformed request id is refused as invalid data before the ledger is read."""
        job = start(jobs)
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.update(job.id, etag=job.etag, request_id=key)  # type: ignore[arg-type]
        assert "request_id" == caught.value.field

    @pytest.mark.parametrize("key", ["a\x00b", "lone \ud800", 7], ids=repr)
    def test_a_job_id_that_is_not_a_name_is_invalid_data(self, jobs: Jobs, key: object) -> None:
        """A change naming a malformed job id is refused as invalid data."""
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.update(key, etag="*")  # type: ignore[arg-type]
        assert "job_id" == caught.value.field


class TestHandle:
    """Handling a command object does exactly what the matching method does."""

    def test_handle_is_the_methods(self) -> None:
        """A script of commands through handle records what the same script of methods does."""
        by_methods, by_commands = fresh_ledger(), fresh_ledger()
        job = start(by_methods, display_name="d", input=[1], state={"a": 1}, request_id="r1")
        job = by_methods.update(job.id, etag=job.etag, status="s", state_update={"b": 2})
        job = by_methods.complete(job.id, etag=job.etag, description="done")
        other = start(by_methods, job_id="other")
        other = by_methods.fail(other.id, etag=other.etag, state_update={"e": 1})
        third = start(by_methods, job_id="third")
        by_methods.cancel(third.id, etag=third.etag, display_name="c")
        job = by_commands.handle(
            StartJob(
                service="hr",
                entity="employee",
                type="sync",
                display_name="d",
                input=[1],
                state={"a": 1},
                request_id="r1",
            )
        )
        job = by_commands.handle(
            UpdateJob(job_id=job.id, etag=job.etag, status="s", state_update={"b": 2})
        )
        by_commands.handle(CompleteJob(job_id=job.id, etag=job.etag, description="done"))
        other = by_commands.handle(
            StartJob(service="hr", entity="employee", type="sync", job_id="other")
        )
        by_commands.handle(FailJob(job_id=other.id, etag=other.etag, state_update={"e": 1}))
        third = by_commands.handle(
            StartJob(service="hr", entity="employee", type="sync", job_id="third")
        )
        by_commands.handle(CancelJob(job_id=third.id, etag=third.etag, display_name="c"))
        for job_id in ("id-0001", "other", "third"):
            assert written(by_methods, job_id) == written(by_commands, job_id)

    def test_handle_returns_the_job(self, jobs: Jobs) -> None:
        """Handling a command returns the job as the command left it."""
        job = jobs.handle(StartJob(service="hr", entity="employee", type="sync"))
        assert job == jobs.get(job.id)

    def test_handle_refuses_what_is_not_a_command(self, jobs: Jobs) -> None:
        """Handing handle something that is not a command raises TypeError."""
        with pytest.raises(TypeError):
            jobs.handle("start")  # type: ignore[arg-type]


class TestIsolation:
    """Nobody changes a stored job or update by mutating what they passed in or got back."""

    def test_mutating_start_inputs_afterwards_changes_nothing(self, jobs: Jobs) -> None:
        """Changing the input and state dicts after start leaves the stored job as it was."""
        input_value: dict[str, list[int]] = {"ids": [1, 2]}
        state: dict[str, object] = {"done": 0, "nested": {"k": "v"}}
        job = start(jobs, input=input_value, state=state)
        input_value["ids"].append(3)
        state["done"] = 99
        nested = state["nested"]
        assert isinstance(nested, dict)
        nested["k"] = "changed"
        stored = jobs.get(job.id)
        assert ({"ids": [1, 2]}, {"done": 0, "nested": {"k": "v"}}) == (stored.input, stored.state)

    def test_mutating_a_state_update_afterwards_changes_nothing(self, jobs: Jobs) -> None:
        """Changing a state_update dict after the update leaves the job and its log as they were."""
        job = start(jobs)
        patch: dict[str, object] = {"items": [1]}
        job = jobs.update(job.id, etag=job.etag, state_update=patch)
        items = patch["items"]
        assert isinstance(items, list)
        items.append(2)
        patch["new"] = True
        (update,) = jobs.updates(job.id)
        assert ({"items": [1]}, {"items": [1]}) == (jobs.get(job.id).state, update.state_update)

    def test_read_values_cannot_be_mutated(self, jobs: Jobs) -> None:
        """The state, input and update log read back are read-only; the store stays unchanged."""
        job = start(jobs, input={"a": [1]}, state={"b": {"c": 1}})
        job = jobs.update(job.id, etag=job.etag, state_update={"d": [2]})
        got = jobs.get(job.id)
        (update,) = jobs.updates(job.id)
        inner, items, listed = got.state["b"], got.state["d"], got.input
        assert isinstance(inner, JsonObject)
        assert isinstance(items, JsonArray)
        assert isinstance(listed, JsonObject)
        assert update.state_update is not None
        attempts: list[Callable[[], object]] = [
            partial(got.state.__setitem__, "x", 1),
            partial(got.state.pop, "b"),
            partial(inner.__setitem__, "c", 2),
            partial(items.append, 3),
            partial(listed.__delitem__, "a"),
            update.state_update.clear,
        ]
        for attempt in attempts:
            with pytest.raises(TypeError):
                attempt()
        assert ({"a": [1]}, {"b": {"c": 1}, "d": [2]}) == (jobs.get(job.id).input, got.state)

    def test_jobs_and_updates_are_frozen(self, jobs: Jobs) -> None:
        """Setting an attribute of a Job or JobUpdate raises FrozenInstanceError."""
        job = start(jobs)
        job = jobs.update(job.id, etag=job.etag, status="x")
        (update,) = jobs.updates(job.id)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            job.status = "hacked"  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            update.status = "hacked"  # type: ignore[misc]
        assert ("x", "x") == (jobs.get(job.id).status, jobs.updates(job.id)[0].status)

    def test_a_thawed_copy_is_free_to_change(self, jobs: Jobs) -> None:
        """Thawing gives a copy of the state that may change without touching the job."""
        job = start(jobs, state={"list": [1]})
        copy = thaw(job.state)
        copy["list"].append(2)
        assert ({"list": [1]}, {"list": [1, 2]}) == (jobs.get(job.id).state, copy)

    def test_events_carry_read_only_values(self, jobs: Jobs) -> None:
        """The JSON in a published event is read-only too."""
        events = collect(jobs)
        job = start(jobs, state={"a": 1})
        jobs.update(job.id, etag=job.etag, state_update={"b": 2})
        started, updated = events
        assert isinstance(started, JobStarted)
        assert isinstance(updated, JobUpdated)
        with pytest.raises(TypeError):
            started.state["a"] = 2
        with pytest.raises(TypeError):
            updated.state_update["b"] = 3  # type: ignore[index]
        assert {"a": 1, "b": 2} == jobs.get(job.id).state


class CountingRepository(InMemoryRepository):
    """An in-memory repository that counts the jobs read from it."""

    def __init__(self) -> None:
        """Start with no read counted."""
        super().__init__()
        self.gets = 0

    def get(self, job_id: str) -> Job:
        """Count the read, then read."""
        self.gets += 1
        return super().get(job_id)


class TestRecall:
    """A ledger decides on the jobs it saved last without reading them, and is never fooled."""

    def test_a_job_this_ledger_saved_is_changed_without_being_read(self) -> None:
        """Commands on a job the ledger itself last saved read nothing from the repository."""
        repository = CountingRepository()
        jobs = Jobs(repository=repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        job = jobs.update(job.id, etag=job.etag, state_update={"done": 1})
        job = jobs.complete(job.id, etag=job.etag)

        assert (0, 3) == (repository.gets, job.version)

    def test_a_job_changed_by_another_ledger_is_read_and_the_command_applies(self) -> None:
        """With the ETag another ledger gave the job, the command succeeds on the stored job."""
        repository = InMemoryRepository()
        mine, theirs = Jobs(repository=repository), Jobs(repository=repository)
        job = mine.start(service="hr", entity="employee", type="sync", state={"a": 1})
        changed = theirs.update(job.id, etag=job.etag, state_update={"b": 2})

        result = mine.update(job.id, etag=changed.etag, state_update={"c": 3})

        assert (3, {"a": 1, "b": 2, "c": 3}) == (result.version, result.state)

    def test_a_stale_etag_is_refused_with_the_stored_one(self) -> None:
        """A stale ETag this ledger saw last is refused with the stored one; nothing is written."""
        repository = InMemoryRepository()
        mine, theirs = Jobs(repository=repository), Jobs(repository=repository)
        job = mine.start(service="hr", entity="employee", type="sync")
        changed = theirs.update(job.id, etag=job.etag, status="exporting")

        with pytest.raises(ConcurrencyError) as raised:
            mine.update(job.id, etag=job.etag, status="mine")

        assert (job.etag, changed.etag) == (raised.value.expected_etag, raised.value.current_etag)
        assert (2, "exporting") == (repository.feed_head(), repository.get(job.id).status)

    @pytest.mark.parametrize("carried", ["first", "final"])
    def test_a_job_ended_by_another_ledger_refuses_the_change_as_ended(self, carried: str) -> None:
        """A job completed elsewhere refuses a change as completed, whichever ETag it carries."""
        repository = InMemoryRepository()
        mine, theirs = Jobs(repository=repository), Jobs(repository=repository)
        job = mine.start(service="hr", entity="employee", type="sync")
        ended = theirs.complete(job.id, etag=job.etag)
        etag = job.etag if carried == "first" else ended.etag

        with pytest.raises(InvalidTransitionError):
            mine.update(job.id, etag=etag, status="mine")

    def test_a_wildcard_applies_to_the_stored_job(self) -> None:
        """The wildcard ETag applies the command to the job as stored, not as remembered."""
        repository = InMemoryRepository()
        mine, theirs = Jobs(repository=repository), Jobs(repository=repository)
        job = mine.start(service="hr", entity="employee", type="sync")
        theirs.update(job.id, etag=job.etag, state_update={"theirs": True})

        result = mine.update(job.id, etag=ANY_ETAG, state_update={"mine": True})

        assert (3, {"theirs": True, "mine": True}) == (result.version, result.state)

    def test_limits_are_checked_against_the_stored_state(self) -> None:
        """A patch too large for the remembered state but not for the stored one applies."""
        limits = Limits(max_bytes=200)
        repository = InMemoryRepository()
        mine = Jobs(repository=repository, limits=limits)
        theirs = Jobs(repository=repository, limits=limits)
        job = mine.start(service="hr", entity="employee", type="sync", state={"big": "x" * 150})
        shrunk = theirs.update(job.id, etag=job.etag, state_update={"big": None})

        result = mine.update(job.id, etag=shrunk.etag, state_update={"new": "y" * 150})

        assert {"new": "y" * 150} == result.state

    def test_a_twin_that_ended_the_job_first_is_the_answer(self) -> None:
        """A completion whose twin completed the remembered job first is answered by the twin."""
        repository = RacingRepository()
        mine, theirs = Jobs(repository=repository), Jobs(repository=repository)
        job = mine.start(service="hr", entity="employee", type="sync")
        twin: list[Job] = []
        repository.before_next_save = lambda: twin.append(
            theirs.complete(job.id, etag=job.etag, request_id="done-1")
        )

        answer = mine.complete(job.id, etag=job.etag, request_id="done-1")

        assert (twin[0], 2) == (answer, repository.feed_head())

    def test_a_stale_recall_takes_the_ids_and_time_of_one_decision(self) -> None:
        """Deciding again after a stale recall uses no more ids, nor clock readings, than once."""
        repository = InMemoryRepository()
        drawn: list[str] = []
        readings: list[datetime] = []

        def new_id() -> str:
            drawn.append(f"mine-{len(drawn)}")
            return drawn[-1]

        def clock() -> datetime:
            readings.append(second(len(readings)))
            return readings[-1]

        mine = Jobs(repository=repository, id_factory=new_id, clock=clock)
        theirs = Jobs(repository=repository)
        job = mine.start(service="hr", entity="employee", type="sync")
        theirs.update(job.id, etag=job.etag, status="theirs")

        result = mine.update(job.id, etag=ANY_ETAG, status="mine")

        assert (5, 2) == (len(drawn), len(readings))
        assert (drawn[3], readings[1]) == (result.etag, result.updated_at)

    def test_ledgers_whose_etags_repeat_still_change_the_job(self) -> None:
        """Two ledgers whose id factories repeat each other's ETags still apply a current ETag."""
        repository = InMemoryRepository()
        mine = Jobs(repository=repository, id_factory=SequentialIds())
        theirs = Jobs(repository=repository, id_factory=SequentialIds())
        job = mine.start(service="hr", entity="employee", type="sync", job_id="job-1")
        theirs_job = theirs.update(job.id, etag=job.etag, status="theirs")
        assert job.etag == theirs_job.etag  # the second version repeats the first's ETag

        result = mine.update(job.id, etag=theirs_job.etag, status="mine")

        assert (3, "mine") == (result.version, result.status)

    def test_a_command_on_a_job_this_ledger_ended_reads_how_it_ended(self) -> None:
        """A change to a job the ledger itself completed is refused after one read of the job."""
        repository = CountingRepository()
        jobs = Jobs(repository=repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        ended = jobs.complete(job.id, etag=job.etag)

        with pytest.raises(InvalidTransitionError):
            jobs.update(job.id, etag=ended.etag, status="late")

        assert 1 == repository.gets


class TestTimes:
    """Jobs keep their times in UTC, whatever the clock's time zone."""

    def test_a_clock_in_another_time_zone_gives_utc_times(self) -> None:
        """A job's times are the clock's instants, in UTC."""
        local = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        jobs = Jobs(clock=lambda: local)

        job = jobs.start(service="hr", entity="employee", type="sync")

        assert (datetime(2024, 6, 1, 12, 0, tzinfo=UTC), UTC) == (
            job.created_at,
            job.updated_at.tzinfo,
        )

    def test_the_default_clock_reads_the_time_as_patched_after_the_ledger_was_made(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Replacing the clock module's datetime (what freezegun does) reaches a ledger's starts."""
        frozen = datetime(2000, 1, 1, tzinfo=UTC)

        class FrozenDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Self:  # noqa: ANN401  (datetime's signature)
                return cls(2000, 1, 1, tzinfo=UTC).astimezone(tz)

        jobs = Jobs()
        monkeypatch.setattr(defaults, "datetime", FrozenDatetime)

        assert frozen == jobs.start(service="hr", entity="employee", type="sync").created_at

    def test_a_retry_pauses_through_time_sleep_as_patched_after_the_ledger_was_made(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A wildcard update that lost a race sleeps through ``time.sleep`` as patched since."""
        repository = InMemoryRepository()
        jobs, other = Jobs(repository), Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        save, raced = repository.save, list[object]()

        def save_after_a_rival(change: Any) -> Any:  # noqa: ANN401  (the repository's save)
            if not raced:
                raced.append(change)  # first, since the rival's own save comes through here
                other.update(job.id, etag=ANY_ETAG, status="rival")
            return save(change)

        monkeypatch.setattr(repository, "save", save_after_a_rival)
        pauses: list[float] = []
        monkeypatch.setattr(time, "sleep", pauses.append)

        updated = jobs.update(job.id, etag=ANY_ETAG, status="mine")

        assert (1, 3, "mine") == (len(pauses), updated.version, updated.status)


class TestRebuildFromEvents:
    """A job can be rebuilt from its events alone, as a subscriber would."""

    def test_replaying_a_jobs_events_gives_the_job_after_each_change(self) -> None:
        """The start event, then each change event applied in turn, give the job as it was."""
        jobs = Jobs()
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)
        job = jobs.start(service="hr", entity="employee", type="sync", state={"a": 1})
        states = [job]
        states.append(jobs.update(job.id, etag=job.etag, status="b", state_update={"b": 2}))
        states.append(
            jobs.update(states[-1].id, etag=states[-1].etag, display_name="n", description="d")
        )
        states.append(jobs.complete(job.id, etag=states[-1].etag, state_update={"a": None}))

        assert jobs.drain(timeout=30)
        first, *changes = seen
        assert isinstance(first, JobStarted)
        rebuilt = [started_job(first)]
        for event in changes:
            assert not isinstance(event, JobStarted)
            rebuilt.append(changed_job(rebuilt[-1], event))

        assert states == rebuilt


class TestReadsOverTime:
    """The log a page at a time, a job as of a version, and waiting for an end."""

    def test_updates_pages_the_log(self) -> None:
        """updates(after=, limit=) returns the page after an update id, at most limit long."""
        jobs = fresh_ledger()
        job = start(jobs)
        for step in range(5):
            job = jobs.update(job.id, etag=job.etag, status=f"s{step}")
        pages = [
            [update.update_id for update in jobs.updates(job.id, after=after, limit=2)]
            for after in (0, 2, 4, 5)
        ]
        assert [[1, 2], [3, 4], [5], []] == pages
        assert [1, 2, 3, 4, 5] == [update.update_id for update in jobs.updates(job.id)]
        assert [] == list(jobs.updates(job.id, limit=0))

    @pytest.mark.parametrize(
        ("arguments", "field"),
        [({"limit": -1}, "limit"), ({"limit": 1.5}, "limit"), ({"after": "1"}, "after")],
    )
    def test_bad_paging_arguments_are_refused(self, arguments: dict[str, Any], field: str) -> None:
        """A negative or non-integer limit, or a non-integer after, is InvalidJobDataError."""
        jobs = fresh_ledger()
        job = start(jobs)
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.updates(job.id, **arguments)
        assert field == caught.value.field

    def test_get_as_of_a_version_rebuilds_the_job(self) -> None:
        """get(version=N) is the job as the N-th change left it; version 1 is as started."""
        jobs = fresh_ledger()
        first = start(jobs, state={"done": 0}, display_name="first")
        second = jobs.update(first.id, etag=first.etag, status="x", state_update={"done": 1})
        third = jobs.cancel(first.id, etag=second.etag, display_name="gone")
        assert [first, second, third] == [jobs.get(first.id, version=v) for v in (1, 2, 3)]

    @pytest.mark.parametrize("version", [0, 4, -1, 1.0, "2", True])
    def test_a_version_the_job_never_had_is_refused(self, version: object) -> None:
        """A version under 1, past the job's, or not an integer is refused naming version."""
        jobs = fresh_ledger()
        job = start(jobs)
        job = jobs.update(job.id, etag=job.etag, status="x")
        job = jobs.update(job.id, etag=job.etag, status="y")
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.get(job.id, version=version)  # type: ignore[arg-type]
        assert "version" == caught.value.field

    def test_wait_returns_an_ended_job_at_once(self) -> None:
        """A job that has ended is returned without waiting."""
        jobs = fresh_ledger()
        job = start(jobs)
        done = jobs.complete(job.id, etag=job.etag)
        assert done == jobs.wait(job.id, timeout=0)

    def test_wait_is_woken_by_the_end(self) -> None:
        """A waiter returns the job once another thread ends it."""
        jobs = Jobs()
        job = start(jobs)
        ended = threading.Event()

        def finish() -> None:
            ended.wait(5)
            jobs.fail(job.id, etag=job.etag)

        worker = threading.Thread(target=finish)
        worker.start()
        ended.set()
        try:
            assert "failed" == jobs.wait(job.id, timeout=30).status
        finally:
            worker.join(5)

    def test_wait_raises_timeout_error_for_a_job_still_active(self) -> None:
        """A job still active after the timeout raises TimeoutError naming it."""
        jobs = fresh_ledger()
        job = start(jobs)
        with pytest.raises(TimeoutError, match=job.id):
            jobs.wait(job.id, timeout=0.05)

    def test_wait_for_an_unknown_job_raises_job_not_found(self) -> None:
        """Waiting for a job that does not exist raises JobNotFoundError at once."""
        with pytest.raises(JobNotFoundError):
            fresh_ledger().wait("nope", timeout=5)


class TestRetention:
    """purge's arguments are checked; a repository without retention says so."""

    def test_a_naive_cut_is_refused(self) -> None:
        """finished_before must be timezone-aware."""
        with pytest.raises(InvalidJobDataError) as caught:
            Jobs().purge(finished_before=datetime(2026, 1, 1))  # noqa: DTZ001  (naive on purpose)
        assert "finished_before" == caught.value.field

    def test_a_bad_filter_is_refused(self) -> None:
        """A service filter that is no name is refused naming service."""
        with pytest.raises(InvalidJobDataError) as caught:
            Jobs().purge(finished_before=datetime(2026, 1, 1, tzinfo=UTC), service="a\x00")
        assert "service" == caught.value.field

    def test_a_hold_reason_must_be_text(self) -> None:
        """A hold's reason is text without NUL."""
        jobs = Jobs()
        job = start(jobs)
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.hold(job.id, reason="a\x00")
        assert "reason" == caught.value.field

    def test_a_held_job_that_ends_later_is_still_kept(self) -> None:
        """A hold put on an active job protects it once it has ended too."""
        jobs = Jobs()
        job = start(jobs)
        jobs.hold(job.id, reason="litigation")
        job = jobs.complete(job.id, etag=job.etag)
        cut = job.updated_at + timedelta(days=1)
        assert (0, job) == (jobs.purge(finished_before=cut), jobs.get(job.id))
