"""Specification of who changed a job: the actor kept on the job, its updates and events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from jobledger import (
    ANY_ETAG,
    DEFAULT_LIMITS,
    CancelJob,
    CompleteJob,
    FailJob,
    InMemoryRepository,
    InvalidJobDataError,
    Jobs,
    Limits,
    RequestIdConflictError,
    StartJob,
    UpdateJob,
    wire,
)
from jobledger._core.decide import decide

if TYPE_CHECKING:
    from jobledger import ChangeCommand, Job, JobEvent

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CHANGES: tuple[type[ChangeCommand], ...] = (UpdateJob, CompleteJob, FailJob, CancelJob)


def _ids() -> Any:  # noqa: ANN401  (a callable id factory)
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def _started(actor: str | None) -> Job:
    command = StartJob(service="hr", entity="employee", type="sync", actor=actor)
    return decide(None, command, now=NOW, new_id=_ids(), limits=DEFAULT_LIMITS).job


class TestCommands:
    """Every command may name its actor; none is named by default."""

    @pytest.mark.parametrize("kind", CHANGES, ids=lambda kind: kind.__name__)
    def test_a_change_names_no_one_by_default(self, kind: type[ChangeCommand]) -> None:
        """A change command built without an actor has actor None."""
        assert None is kind(job_id="j", etag="e").actor

    def test_a_start_names_no_one_by_default(self) -> None:
        """A start built without an actor has actor None."""
        assert None is StartJob(service="s", entity="e", type="t").actor


class TestDecide:
    """The start's actor becomes the job's starter; a change's, its update's and event's."""

    def test_the_start_records_who_started_the_job(self) -> None:
        """A start's actor is the job's started_by and its JobStarted's actor."""
        command = StartJob(service="hr", entity="employee", type="sync", actor="hr-sync")
        change = decide(None, command, now=NOW, new_id=_ids(), limits=DEFAULT_LIMITS)

        assert ("hr-sync", "hr-sync") == (change.job.started_by, change.event.actor)

    @pytest.mark.parametrize("kind", CHANGES, ids=lambda kind: kind.__name__)
    def test_a_change_records_who_made_it(self, kind: type[ChangeCommand]) -> None:
        """A change's actor is on its update and event; the job keeps its starter."""
        job = _started("hr-sync")
        command = kind(job_id=job.id, etag=ANY_ETAG, actor="alice")
        change = decide(job, command, now=NOW, new_id=_ids(), limits=DEFAULT_LIMITS)

        assert change.update is not None
        assert ("alice", "alice", "hr-sync") == (
            change.update.actor,
            change.event.actor,
            change.job.started_by,
        )

    def test_a_change_without_an_actor_names_no_one(self) -> None:
        """A change with no actor has actor None on its update and event."""
        job = _started(None)
        command = UpdateJob(job_id=job.id, etag=job.etag, status="x")
        change = decide(job, command, now=NOW, new_id=_ids(), limits=DEFAULT_LIMITS)

        assert change.update is not None
        assert (None, None, None) == (
            change.update.actor,
            change.event.actor,
            change.job.started_by,
        )


BAD_ACTORS: list[tuple[object, str]] = [
    ("", "must not be empty"),
    ("nul\x00", "NUL"),
    ("bell\x07", "control characters"),
    ("line\nfeed", "control characters"),
    ("\ud800", "surrogate"),
    ("x" * 11, "10"),
    (42, "string"),
    (" alice", "leading or trailing blanks"),
    ("alice ", "leading or trailing blanks"),
]


class TestValidation:
    """An actor is checked like a name; a bad one is refused naming the field ``actor``."""

    @pytest.mark.parametrize(("actor", "reason"), BAD_ACTORS)
    def test_a_start_with_a_bad_actor_is_refused(self, actor: object, reason: str) -> None:
        """A start's bad actor raises InvalidJobDataError for field actor."""
        command = StartJob(service="hr", entity="e", type="t", actor=actor)  # type: ignore[arg-type]
        with pytest.raises(InvalidJobDataError) as raised:
            decide(None, command, now=NOW, new_id=_ids(), limits=Limits(max_name_length=10))

        assert "actor" == raised.value.field
        assert reason in raised.value.reason

    @pytest.mark.parametrize("kind", CHANGES, ids=lambda kind: kind.__name__)
    @pytest.mark.parametrize(("actor", "reason"), BAD_ACTORS)
    def test_a_change_with_a_bad_actor_is_refused(
        self, kind: type[ChangeCommand], actor: object, reason: str
    ) -> None:
        """A change's bad actor raises InvalidJobDataError for field actor."""
        job = _started(None)
        command = kind(job_id=job.id, etag=job.etag, actor=actor)  # type: ignore[arg-type]
        with pytest.raises(InvalidJobDataError) as raised:
            decide(job, command, now=NOW, new_id=_ids(), limits=Limits(max_name_length=10))

        assert "actor" == raised.value.field
        assert reason in raised.value.reason


class TestRequestsRecordedBeforeActors:
    """A request recorded before commands had actors is answered when retried naming one."""

    @staticmethod
    def _recorded_before_actors(repository: InMemoryRepository, command: StartJob) -> Job:
        """Save ``command``'s start with a request record that predates actors."""
        change = decide(None, command, now=NOW, new_id=_ids(), limits=DEFAULT_LIMITS)
        assert change.request is not None
        legacy = attrs.evolve(change.request, predates_actors=True)
        repository.save(attrs.evolve(change, request=legacy))
        return change.job

    def test_a_retry_naming_an_actor_is_answered(self) -> None:
        """The same start with an actor is answered with the recorded job; nothing is written."""
        repository = InMemoryRepository()
        command = StartJob(service="hr", entity="e", type="t", request_id="r-1")
        job = self._recorded_before_actors(repository, command)

        answered = Jobs(repository).handle(attrs.evolve(command, actor="hr-app"))

        assert (job, 1) == (answered, repository.feed_head())

    def test_another_command_still_conflicts(self) -> None:
        """A different command with the old request id raises RequestIdConflictError."""
        repository = InMemoryRepository()
        command = StartJob(service="hr", entity="e", type="t", request_id="r-1")
        self._recorded_before_actors(repository, command)

        with pytest.raises(RequestIdConflictError):
            Jobs(repository).handle(attrs.evolve(command, type="other", actor="hr-app"))

    def test_a_record_made_with_actors_conflicts_with_an_actor(self) -> None:
        """A request recorded with no actor today conflicts with a retry naming one."""
        jobs = Jobs()
        jobs.start(service="hr", entity="e", type="t", request_id="r-1")

        with pytest.raises(RequestIdConflictError):
            jobs.start(service="hr", entity="e", type="t", request_id="r-1", actor="hr-app")


class TestJobs:
    """The facade's methods take ``actor=``, and reads give it back."""

    def test_every_method_records_its_actor(self) -> None:
        """start, update, complete, fail and cancel each record the actor they were given."""
        jobs = Jobs()
        job = jobs.start(service="hr", entity="e", type="t", actor="starter")
        job = jobs.update(job.id, etag=job.etag, status="x", actor="updater")
        jobs.complete(job.id, etag=job.etag, actor="completer")
        other = jobs.start(service="hr", entity="e", type="t")
        jobs.fail(other.id, etag=other.etag, actor="failer")
        third = jobs.start(service="hr", entity="e", type="t")
        jobs.cancel(third.id, etag=third.etag, actor="canceler")

        assert ("starter", None, None) == tuple(
            jobs.get(one.id).started_by for one in (job, other, third)
        )
        assert [["updater", "completer"], ["failer"], ["canceler"]] == [
            [update.actor for update in jobs.updates(one.id)] for one in (job, other, third)
        ]

    def test_a_batch_records_each_commands_actor(self) -> None:
        """handle_all keeps the actor of every command it carries out."""
        jobs = Jobs()
        started, updated = jobs.handle_all(
            [
                StartJob(service="hr", entity="e", type="t", job_id="j", actor="a"),
                UpdateJob(job_id="j", etag=ANY_ETAG, status="x", actor="b"),
            ]
        )

        assert ("a", "a", ["b"]) == (
            started.started_by,
            updated.started_by,
            [update.actor for update in jobs.updates("j")],
        )

    def test_subscribers_see_each_events_actor(self) -> None:
        """Every event delivered to a subscriber carries the actor of its change."""
        jobs = Jobs(delivery="inline")
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)
        job = jobs.start(service="hr", entity="e", type="t", actor="a")
        jobs.cancel(job.id, etag=job.etag, actor="b")

        assert ["a", "b"] == [event.actor for event in seen]


class TestWire:
    """Actor and StartedBy go on the wire, and read back."""

    def test_a_commands_actor_round_trips(self) -> None:
        """A command's actor is written as Actor and read back."""
        command = CancelJob(job_id="j", etag="e", actor="alice")

        assert "alice" == wire.encode(command)["Actor"]
        assert command == wire.decode_command(wire.dumps(command))

    def test_a_command_without_actor_decodes_with_none(self) -> None:
        """A command message with no Actor key names no one."""
        assert (
            None
            is wire.decode_command({"MessageType": "CancelJob", "JobId": "j", "ETag": "e"}).actor
        )

    def test_jobs_updates_and_events_round_trip_their_actors(self) -> None:
        """A job's StartedBy, an update's Actor and each event's Actor survive the wire."""
        jobs = Jobs(delivery="inline")
        seen: list[JobEvent] = []
        jobs.subscribe(seen.append)
        job = jobs.start(service="hr", entity="e", type="t", actor="a")
        jobs.update(job.id, etag=job.etag, actor="b")
        (update,) = jobs.updates(job.id)

        assert "a" == wire.encode(job)["StartedBy"]
        assert job == wire.decode_job(wire.dumps(job))
        assert update == wire.decode_update(wire.dumps(update))
        assert seen == [wire.decode_event(wire.dumps(event)) for event in seen]
        assert ["a", "b"] == [wire.encode(event)["Actor"] for event in seen]
