"""The public strategies make what they promise: values the ledger takes, or refuses."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, TypeVar

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from jobledger import (
    DEFAULT_LIMITS,
    EVENT_TYPES,
    CancelJob,
    ChangeCommand,
    Command,
    CompleteJob,
    FailJob,
    InvalidJobDataError,
    Job,
    JobEvent,
    Jobs,
    JobStarted,
    JobStatus,
    JobUpdate,
    JobUpdated,
    JsonArray,
    JsonObject,
    StartJob,
    UpdateJob,
    UpdateType,
    freeze,
    merge_patch,
)
from jobledger._core.actors import check_actor
from jobledger._core.jsondoc import check_name, check_text
from jobledger.testing import strategies as jst

if TYPE_CHECKING:
    from collections.abc import Callable

TERMINAL = {"completed", "failed", "canceled"}
T = TypeVar("T")


def first(strategy: st.SearchStrategy[T], condition: Callable[[T], bool]) -> T:
    """The first value ``strategy`` makes that meets ``condition`` (no shrinking: faster)."""
    return find(
        strategy,
        condition,
        settings=settings(max_examples=1_000, phases=[Phase.generate], database=None),
    )


class TestJsonStrategies:
    """json_values, json_objects and merge_patches make JSON that freeze accepts."""

    @given(jst.json_values())
    def test_json_values_are_accepted(self, value: object) -> None:
        """Every JSON value freezes to an equal read-only value and survives JSON text."""
        frozen = freeze(value, field="input")

        assert value == frozen
        assert value == json.loads(json.dumps(value, allow_nan=False))

    @given(jst.json_objects())
    def test_json_objects_are_objects(self, value: dict[str, object]) -> None:
        """Every JSON object freezes to a JsonObject, as a job's state must be."""
        assert JsonObject is type(freeze(value, field="state"))

    @given(jst.json_objects(), jst.merge_patches())
    def test_merge_patches_apply(self, state: dict[str, object], patch: dict[str, object]) -> None:
        """Every merge patch freezes to an object and applies to any state."""
        frozen_patch = freeze(patch, field="state_update")

        merged = merge_patch(freeze(state, field="state"), frozen_patch)

        assert JsonObject is type(frozen_patch)
        assert JsonObject is type(merged)

    def test_merge_patches_delete_sometimes(self) -> None:
        """Merge patches include deletions (null members), nested ones too."""

        def deletes_nested(patch: dict[str, object]) -> bool:
            return any(isinstance(v, dict) and None in v.values() for v in patch.values())

        assert None in first(jst.merge_patches(), lambda p: None in p.values()).values()
        assert deletes_nested(first(jst.merge_patches(), deletes_nested))

    @given(jst.hostile_json())
    def test_hostile_json_is_refused(self, value: object) -> None:
        """Every hostile value is refused by freeze, and so by the command that carries it."""
        with pytest.raises(InvalidJobDataError):
            freeze(value, field="input")
        with pytest.raises(InvalidJobDataError):
            StartJob(service="s", entity="e", type="t", input=value)
        with pytest.raises(InvalidJobDataError):
            UpdateJob(job_id="j", etag="e", state_update={"x": value})


class TestTextStrategies:
    """names, texts, ids, etags and custom_statuses pass the ledger's string checks."""

    @given(st.one_of(jst.names(), jst.ids(), jst.etags()))
    def test_names_are_valid_names(self, value: str) -> None:
        """Every name, id and ETag is a valid short identifying string."""
        assert value == check_name(value, field="service", limits=DEFAULT_LIMITS)

    @given(jst.actors())
    def test_actors_are_valid_actors(self, value: str | None) -> None:
        """Every actor is None or a valid actor (a name with no blanks around it)."""
        assert value == check_actor(value, DEFAULT_LIMITS)

    @given(jst.texts())
    def test_texts_are_valid_texts(self, value: str) -> None:
        """Every text is a valid display name or description."""
        assert value == check_text(value, field="description", limits=DEFAULT_LIMITS)

    @given(jst.custom_statuses())
    def test_custom_statuses_are_not_terminal(self, value: str) -> None:
        """Every custom status is a valid name that an update may set."""
        assert value == check_name(value, field="status", limits=DEFAULT_LIMITS)
        assert value not in TERMINAL

    def test_names_include_what_storage_adapters_mangle(self) -> None:
        """Names sometimes hold quotes, SQL comment markers, non-ASCII and 200 characters."""
        assert "'" in first(jst.names(), lambda name: "'" in name)
        assert "--" in first(jst.names(), lambda name: "--" in name)
        assert not first(jst.names(), lambda name: not name.isascii()).isascii()
        assert 200 == len(first(jst.names(), lambda name: len(name) == 200))


class TestCommandStrategies:
    """The command strategies make commands that a ledger handles."""

    @settings(max_examples=40, deadline=None)
    @given(jst.start_commands())
    def test_start_commands_are_handled(self, command: StartJob) -> None:
        """Every start command starts a job in a fresh ledger."""
        job = Jobs().handle(command)

        assert command.input == job.input
        assert command.state == job.state

    @settings(max_examples=40, deadline=None)
    @given(st.data())
    def test_change_commands_are_handled(self, data: st.DataObject) -> None:
        """Every change command aimed at an active job with its ETag is handled."""
        jobs = Jobs()
        job = jobs.start(service="hr", entity="employee", type="sync", state={"a": 1})
        command: ChangeCommand = data.draw(jst.change_commands(job_id=job.id, etag=job.etag))

        after = jobs.handle(command)

        assert job.version + 1 == after.version

    @settings(max_examples=40, deadline=None)
    @given(jst.command_sequences(max_updates=4))
    def test_command_sequences_are_lives_a_ledger_accepts(self, commands: list[Command]) -> None:
        """Every command of a sequence is accepted in order; the job ends terminal iff it ended."""
        jobs = Jobs()
        for command in commands:
            job = jobs.handle(command)

        ended = isinstance(commands[-1], (CompleteJob, FailJob, CancelJob))
        assert (len(commands), ended) == (job.version, job.phase.is_terminal)

    @given(jst.change_commands(job_id="job-1", etag="e1", request_id=None))
    def test_fixed_values_are_kept(self, command: ChangeCommand) -> None:
        """Values given instead of strategies appear in every command as given."""
        assert ("job-1", "e1", None) == (command.job_id, command.etag, command.request_id)

    @given(jst.cancel_commands(job_id=st.just("j"), etag=st.sampled_from(["*", "e"])))
    def test_strategies_are_drawn_from(self, command: CancelJob) -> None:
        """Strategies given for a field are drawn from."""
        assert CancelJob is type(command)
        assert command.etag in {"*", "e"}

    @given(jst.commands())
    def test_commands_are_any_of_the_five(self, command: object) -> None:
        """commands() makes only the five command types."""
        assert type(command).__name__ in {
            "StartJob", "UpdateJob", "CompleteJob", "FailJob", "CancelJob"
        }  # fmt: skip


class TestValueStrategies:
    """jobs, job_updates and events make consistent, frozen values with aware UTC times."""

    @given(jst.jobs())
    def test_jobs_are_consistent(self, job: Job) -> None:
        """A job's times are UTC and in order, and a first version is just started."""
        assert UTC == job.created_at.tzinfo
        assert job.created_at <= job.updated_at
        assert isinstance(job.state, JsonObject)
        assert job.state is freeze(job.state, field="state")
        if job.version == 1:
            assert (JobStatus.STARTED, job.created_at) == (job.status, job.updated_at)

    @given(jst.job_updates())
    def test_job_updates_match_their_type(self, update: JobUpdate) -> None:
        """An update's status matches its type, and a cancel has no state update."""
        terminal = {
            UpdateType.COMPLETED: "completed",
            UpdateType.FAILED: "failed",
            UpdateType.CANCELED: "canceled",
        }

        assert UTC == update.at.tzinfo
        if update.update_type is UpdateType.UPDATED:
            assert update.status not in TERMINAL
        else:
            assert terminal[update.update_type] == update.status
        if update.update_type is UpdateType.CANCELED:
            assert update.state_update is None

    @given(jst.events())
    def test_events_are_consistent(self, event: JobEvent) -> None:
        """An event's time is UTC, a start is version 1, a change one past its update id."""
        assert timedelta(0) == event.at.utcoffset()
        if isinstance(event, JobStarted):
            assert (1, "started") == (event.version, event.status)
            assert isinstance(event.state, JsonObject)
            if isinstance(event.input, (dict, list)):
                assert isinstance(event.input, (JsonObject, JsonArray))
        else:
            assert event.update_id + 1 == event.version
        if isinstance(event, JobUpdated):
            assert event.status not in TERMINAL
        elif not isinstance(event, JobStarted):
            assert type(event).__name__.removeprefix("Job").lower() == event.status

    @pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda kind: kind.__name__)
    @settings(max_examples=10)
    @given(data=st.data())
    def test_events_of_one_kind(self, kind: type[JobEvent], data: st.DataObject) -> None:
        """events(kind) makes events of that kind only."""
        assert kind is type(data.draw(jst.events(kind)))

    def test_events_refuse_other_types(self) -> None:
        """events() with a type that is not an event is a TypeError."""
        with pytest.raises(TypeError, match="not jobledger event types"):
            jst.events(StartJob)  # type: ignore[arg-type]
