"""Specification of decide: the pure rule that turns a job and a command into a Change."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from jobledger import (
    ANY_ETAG,
    DEFAULT_LIMITS,
    CancelJob,
    Change,
    CompleteJob,
    ConcurrencyError,
    FailJob,
    InvalidJobDataError,
    InvalidTransitionError,
    Job,
    JobCanceled,
    JobCompleted,
    JobFailed,
    JobNotFoundError,
    JobStarted,
    JobUpdate,
    JobUpdated,
    JsonObject,
    Limits,
    RequestRecord,
    StartJob,
    UpdateJob,
    UpdateType,
    freeze,
)
from jobledger._core.decide import command_kind, decide, event_of, fingerprint, record_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import ChangeCommand, Command

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def doc(value: dict[str, object]) -> JsonObject:
    """Freeze ``value`` into the JsonObject the ledger would hold."""
    frozen = freeze(value, field="state")
    assert isinstance(frozen, JsonObject)
    return frozen


def id_factory(prefix: str = "id") -> Callable[[], str]:
    """Return an id factory that hands out ``<prefix>-1``, ``<prefix>-2``, ..."""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter)}"


def start(command: StartJob | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Change:
    """Decide a start (a default one unless given) at NOW with ids ``s-1``, ``s-2``, ..."""
    command = command or StartJob(
        service="hr", entity="employee", type="sync", state={"done": 0, "keep": True}
    )
    return decide(None, command, now=NOW, new_id=id_factory("s"), limits=limits)


def change(job: Job, command: Command, *, limits: Limits = DEFAULT_LIMITS) -> Change:
    """Decide ``command`` for ``job`` at LATER with ids ``c-1``, ``c-2``, ..."""
    return decide(job, command, now=LATER, new_id=id_factory("c"), limits=limits)


def refused(job: Job | None, command: Command, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """Decide ``command`` and return the field named by the InvalidJobDataError it raises."""
    with pytest.raises(InvalidJobDataError) as caught:
        decide(job, command, now=LATER, new_id=id_factory(), limits=limits)
    return caught.value.field


def active_job() -> Job:
    """An active job with state ``{"done": 0, "keep": True}``, etag ``s-2``."""
    return start().job


class TestDecideStart:
    """A start makes a version-1 job, its JobStarted event, and no update."""

    def test_start_makes_the_job_and_its_event(self) -> None:
        """A start gives the job, a JobStarted event with every field, and nothing to expect."""
        command = StartJob(
            service="hr",
            entity="employee",
            type="sync",
            display_name="Nightly",
            description="HR sync",
            input={"source": "ldap"},
            state={"done": 0},
        )
        job = Job(
            id="s-1",
            service="hr",
            entity="employee",
            type="sync",
            display_name="Nightly",
            description="HR sync",
            status="started",
            input=doc({"source": "ldap"}),
            state=doc({"done": 0}),
            etag="s-2",
            version=1,
            created_at=NOW,
            updated_at=NOW,
        )
        event = JobStarted(
            event_id="s-3",
            job_id="s-1",
            service="hr",
            entity="employee",
            type="sync",
            status="started",
            etag="s-2",
            version=1,
            at=NOW,
            display_name="Nightly",
            description="HR sync",
            input=doc({"source": "ldap"}),
            state=doc({"done": 0}),
        )
        assert Change(job=job, update=None, event=event, expected_etag=None, request=None) == (
            start(command)
        )

    def test_start_with_a_job_id_uses_it(self) -> None:
        """A start that names its job id keeps it and takes only the etag and event ids."""
        result = start(StartJob(service="hr", entity="employee", type="sync", job_id="mine"))
        assert ("mine", "s-1", "s-2") == (result.job.id, result.job.etag, result.event.event_id)

    def test_start_with_a_request_id_records_it(self) -> None:
        """A start with a request id carries a RequestRecord of its fingerprint and job."""
        command = StartJob(service="hr", entity="employee", type="sync", request_id="msg-1")
        result = start(command)
        assert RequestRecord("msg-1", fingerprint(command), result.job) == result.request

    def test_start_state_must_be_an_object(self) -> None:
        """A start whose state is not an object is refused naming the state."""
        command = StartJob(service="hr", entity="employee", type="sync", state=[1])
        assert "state" == refused(None, command)

    def test_start_input_may_be_any_json_value(self) -> None:
        """A start's input may be an array or a scalar."""
        for value in ([1, 2], "text", 3, False):
            command = StartJob(service="hr", entity="employee", type="sync", input=value)
            assert value == start(command).job.input

    def test_start_input_and_state_none_mean_an_empty_object(self) -> None:
        """A start built with input=None and state=None gets {} for both."""
        command = StartJob(service="hr", entity="employee", type="sync", input=None, state=None)
        job = start(command).job
        assert ({}, {}) == (job.input, job.state)

    def test_start_checks_input_and_state_against_limits(self) -> None:
        """Input and state over the ledger's limits are refused naming their field."""
        limits = Limits(max_bytes=20, max_depth=2)
        too_big = {"text": "x" * 30}
        too_deep: dict[str, object] = {"a": {"b": {}}}
        for field in ("input", "state"):
            for value in (too_big, too_deep):
                command = StartJob(service="s", entity="e", type="t", **{field: value})  # type: ignore[arg-type]
                assert field == refused(None, command, limits=limits)

    def test_start_checks_a_scalar_input_against_the_size_limit(self) -> None:
        """A string input larger than max_bytes is refused like any other too-large input."""
        command = StartJob(service="s", entity="e", type="t", input="x" * 100)
        assert "input" == refused(None, command, limits=Limits(max_bytes=50))

    def test_decide_is_deterministic(self) -> None:
        """The same command, time and id sequence give the same change."""
        assert start() == start()


class TestDecideChanges:
    """Each change command gives its update, event, status and expected etag."""

    @pytest.mark.parametrize(
        ("command_type", "update_type", "event_type", "status"),
        [
            (CompleteJob, UpdateType.COMPLETED, JobCompleted, "completed"),
            (FailJob, UpdateType.FAILED, JobFailed, "failed"),
        ],
    )
    def test_final_commands(
        self,
        command_type: type[CompleteJob | FailJob],
        update_type: UpdateType,
        event_type: type[JobCompleted | JobFailed],
        status: str,
    ) -> None:
        """Complete and fail set their status, merge the patch, and announce it."""
        job = active_job()
        command = command_type(
            job_id="s-1", etag="s-2", display_name="Done", state_update={"done": 9}
        )
        result = change(job, command)
        assert (
            attrs.evolve(
                job,
                status=status,
                display_name="Done",
                state=doc({"done": 9, "keep": True}),
                etag="c-1",
                version=2,
                updated_at=LATER,
            )
            == result.job
        )
        assert (
            JobUpdate(
                job_id="s-1",
                update_id=1,
                update_type=update_type,
                status=status,
                state_update=doc({"done": 9}),
                display_name="Done",
                description=None,
                etag="c-1",
                at=LATER,
            )
            == result.update
        )
        assert (
            event_type(
                event_id="c-2",
                job_id="s-1",
                service="hr",
                entity="employee",
                type="sync",
                status=status,
                etag="c-1",
                version=2,
                at=LATER,
                update_id=1,
                display_name="Done",
                description=None,
                state_update=doc({"done": 9}),
            )
            == result.event
        )
        assert ("s-2", None) == (result.expected_etag, result.request)

    def test_update(self) -> None:
        """An update sets a custom status, texts and state, and announces JobUpdated."""
        job = active_job()
        command = UpdateJob(
            job_id="s-1",
            etag="s-2",
            status="exporting",
            description="Exporting",
            state_update={"done": None, "n": [1]},
        )
        result = change(job, command)
        assert ("exporting", "Exporting", {"keep": True, "n": [1]}) == (
            result.job.status,
            result.job.description,
            result.job.state,
        )
        assert (
            JobUpdate(
                job_id="s-1",
                update_id=1,
                update_type=UpdateType.UPDATED,
                status="exporting",
                state_update=doc({"done": None, "n": [1]}),
                display_name=None,
                description="Exporting",
                etag="c-1",
                at=LATER,
            )
            == result.update
        )
        assert (
            JobUpdated(
                event_id="c-2",
                job_id="s-1",
                service="hr",
                entity="employee",
                type="sync",
                status="exporting",
                etag="c-1",
                version=2,
                at=LATER,
                update_id=1,
                display_name=None,
                description="Exporting",
                state_update=doc({"done": None, "n": [1]}),
            )
            == result.event
        )

    def test_cancel(self) -> None:
        """A cancel sets canceled, keeps the state, and announces JobCanceled."""
        job = active_job()
        result = change(job, CancelJob(job_id="s-1", etag="s-2", description="user asked"))
        assert ("canceled", job.state, "user asked") == (
            result.job.status,
            result.job.state,
            result.job.description,
        )
        assert result.update is not None
        assert (UpdateType.CANCELED, None) == (
            result.update.update_type,
            result.update.state_update,
        )
        assert (
            JobCanceled(
                event_id="c-2",
                job_id="s-1",
                service="hr",
                entity="employee",
                type="sync",
                status="canceled",
                etag="c-1",
                version=2,
                at=LATER,
                update_id=1,
                display_name=None,
                description="user asked",
            )
            == result.event
        )

    def test_update_ids_are_version_minus_one(self) -> None:
        """Over several changes, each update id is the job's new version minus one."""
        job = active_job()
        seen: list[tuple[int, int]] = []
        ids = id_factory("u")
        for n in range(5):
            command = UpdateJob(job_id=job.id, etag=job.etag, state_update={"n": n})
            result = decide(job, command, now=LATER, new_id=ids, limits=DEFAULT_LIMITS)
            assert result.update is not None
            seen.append((result.job.version, result.update.update_id))
            job = result.job
        assert [(2, 1), (3, 2), (4, 3), (5, 4), (6, 5)] == seen

    def test_every_change_has_a_new_etag(self) -> None:
        """Each change gives the job an ETag it never had before."""
        job = active_job()
        etags = [job.etag]
        ids = id_factory("u")
        for _ in range(4):
            command = UpdateJob(job_id=job.id, etag=job.etag)
            job = decide(job, command, now=LATER, new_id=ids, limits=DEFAULT_LIMITS).job
            etags.append(job.etag)
        assert ["s-2", "u-1", "u-3", "u-5", "u-7"] == etags

    def test_update_without_status_keeps_it(self) -> None:
        """An update with status None keeps the job's current, even custom, status."""
        job = change(active_job(), UpdateJob(job_id="s-1", etag="s-2", status="blocked")).job
        result = change(job, UpdateJob(job_id="s-1", etag=job.etag, description="d"))
        assert "blocked" == result.job.status

    def test_update_without_anything_still_changes_version_and_etag(self) -> None:
        """An empty update is a change: new version, new etag, same state, no patch."""
        job = active_job()
        result = change(job, UpdateJob(job_id="s-1", etag="s-2"))
        assert (2, "c-1", job.state) == (result.job.version, result.job.etag, result.job.state)
        assert result.update is not None
        assert (None, None, None) == (
            result.update.state_update,
            result.update.display_name,
            result.update.description,
        )

    @pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
    def test_update_to_a_terminal_status_is_refused(self, status: str) -> None:
        """An update may not set a terminal status; the error names the status field."""
        assert "status" == refused(active_job(), UpdateJob(job_id="s-1", etag="s-2", status=status))

    @pytest.mark.parametrize(
        "status",
        [
            "Completed",
            "cancelled",
            "CANCELED",
            "completed ",
            "Failed",
            "  CANCELLED  ",
            "\uff43\uff4f\uff4d\uff50\uff4c\uff45\uff54\uff45\uff44",
            "fail\u200bed",
        ],
    )
    def test_look_alike_terminal_statuses_are_refused(self, status: str) -> None:
        """A status that reads as a terminal one (case, spaces, spelling, width) is refused."""
        assert "status" == refused(active_job(), UpdateJob(job_id="s-1", etag="s-2", status=status))

    def test_look_alike_refusal_names_the_terminal_status_and_its_command(self) -> None:
        """The refusal says which terminal status the value reads as and which command sets it."""
        with pytest.raises(InvalidJobDataError) as caught:
            change(active_job(), UpdateJob(job_id="s-1", etag="s-2", status="Cancelled"))
        assert (
            "'Cancelled' is (or reads as) the terminal status 'canceled', which only its own "
            "command sets (use cancel instead of update)"
        ) == caught.value.reason

    @pytest.mark.parametrize("status", ["completing", "failed-over", "not canceled", "Started"])
    def test_statuses_that_only_contain_a_terminal_word_are_allowed(self, status: str) -> None:
        """A custom status that merely contains a terminal word is kept as given."""
        result = change(active_job(), UpdateJob(job_id="s-1", etag="s-2", status=status))
        assert status == result.job.status

    def test_update_back_to_started_is_allowed(self) -> None:
        """The started status is not terminal, so an update may set it again."""
        job = change(active_job(), UpdateJob(job_id="s-1", etag="s-2", status="x")).job
        assert (
            "started"
            == change(job, UpdateJob(job_id="s-1", etag=job.etag, status="started")).job.status
        )

    def test_any_etag_applies_at_any_version(self) -> None:
        """The wildcard ETag is accepted whatever the job's ETag is, and expects the current one."""
        result = change(active_job(), CompleteJob(job_id="s-1", etag=ANY_ETAG))
        assert ("completed", "s-2") == (result.job.status, result.expected_etag)

    def test_stale_etag_raises_concurrency_error(self) -> None:
        """A command whose ETag is not the job's raises ConcurrencyError with both ETags."""
        with pytest.raises(ConcurrencyError) as caught:
            change(active_job(), UpdateJob(job_id="s-1", etag="old"))
        assert ("s-1", "old", "s-2") == (
            caught.value.job_id,
            caught.value.expected_etag,
            caught.value.current_etag,
        )

    def test_change_without_a_job_raises_not_found(self) -> None:
        """A change command for no job raises JobNotFoundError naming the id."""
        with pytest.raises(JobNotFoundError) as caught:
            decide(
                None,
                CancelJob(job_id="gone", etag="e"),
                now=NOW,
                new_id=id_factory(),
                limits=DEFAULT_LIMITS,
            )
        assert "gone" == caught.value.job_id

    def test_change_on_a_terminal_job_raises_invalid_transition(self) -> None:
        """A change for a completed job raises InvalidTransitionError, whatever its ETag."""
        job = change(active_job(), CompleteJob(job_id="s-1", etag="s-2")).job
        for etag in (job.etag, "stale", ANY_ETAG):
            with pytest.raises(InvalidTransitionError):
                change(job, FailJob(job_id="s-1", etag=etag))

    def test_change_with_a_request_id_records_the_job_after(self) -> None:
        """A change with a request id records the job as the change leaves it."""
        command = UpdateJob(job_id="s-1", etag="s-2", status="x", request_id="r-1")
        result = change(active_job(), command)
        assert RequestRecord("r-1", fingerprint(command), result.job) == result.request

    def test_decide_leaves_the_job_as_it_was(self) -> None:
        """Deciding never changes the job it was given."""
        job = active_job()
        before = attrs.asdict(job, recurse=False)
        change(job, UpdateJob(job_id="s-1", etag="s-2", state_update={"done": 5}))
        assert before == attrs.asdict(job, recurse=False)

    def test_command_kind_refuses_other_objects(self) -> None:
        """Something that is not one of the five commands is a TypeError."""
        with pytest.raises(TypeError, match="not a jobledger command: str"):
            command_kind("start")  # type: ignore[arg-type]


class TestDecideValidation:
    """Names and texts are checked, and refused naming their field."""

    @pytest.mark.parametrize("field", ["service", "entity", "type"])
    @pytest.mark.parametrize(
        "value",
        ["", "x" * 201, "a\nb", "tab\there", "esc\x1b", "nul\x00", "\ud800", 5, None],
        ids=["empty", "too-long", "newline", "tab", "escape", "nul", "surrogate", "int", "none"],
    )
    def test_bad_names_on_start(self, field: str, value: object) -> None:
        """service, entity and type must be short, printable, non-empty strings."""
        fields: dict[str, object] = {"service": "hr", "entity": "employee", "type": "sync"}
        fields[field] = value
        assert field == refused(None, StartJob(**fields))  # type: ignore[arg-type]

    @pytest.mark.parametrize("field", ["job_id", "request_id"])
    @pytest.mark.parametrize(
        "value", ["", "x" * 201, "a\nb", 7], ids=["empty", "too-long", "newline", "int"]
    )
    def test_bad_ids_on_start(self, field: str, value: object) -> None:
        """A start's job_id and request_id must be valid names when given."""
        command = StartJob(service="hr", entity="employee", type="sync", **{field: value})  # type: ignore[arg-type]
        assert field == refused(None, command)

    @pytest.mark.parametrize(
        "value", ["", "x" * 201, "a\nb", "\x00"], ids=["empty", "too-long", "newline", "nul"]
    )
    def test_bad_request_id_on_change(self, value: str) -> None:
        """A change's request_id must be a valid name when given."""
        command = UpdateJob(job_id="s-1", etag="s-2", request_id=value)
        assert "request_id" == refused(active_job(), command)

    @pytest.mark.parametrize(
        "value", ["", "x" * 201, "a\nb", 3], ids=["empty", "too-long", "newline", "int"]
    )
    def test_bad_status_on_update(self, value: object) -> None:
        """An update's status must be a valid name."""
        command = UpdateJob(job_id="s-1", etag="s-2", status=value)  # type: ignore[arg-type]
        assert "status" == refused(active_job(), command)

    def test_names_at_the_length_limit_are_accepted(self) -> None:
        """A name of exactly max_name_length characters is accepted."""
        name = "n" * 200
        job = start(StartJob(service=name, entity=name, type=name, job_id=name)).job
        assert (name, name, name, name) == (job.service, job.entity, job.type, job.id)

    def test_configured_name_length_is_enforced(self) -> None:
        """A ledger with a shorter max_name_length refuses longer names."""
        command = StartJob(service="abcdefghij", entity="e", type="t")
        assert "service" == refused(None, command, limits=Limits(max_name_length=9))

    @pytest.mark.parametrize("field", ["display_name", "description"])
    @pytest.mark.parametrize(
        "value",
        ["x" * 10_001, "nul\x00", "\udc00", 1, None],
        ids=["too-long", "nul", "surrogate", "int", "none"],
    )
    def test_bad_texts_on_start(self, field: str, value: object) -> None:
        """display_name and description must be strings of at most 10,000 characters, no NUL."""
        command = StartJob(service="hr", entity="employee", type="sync", **{field: value})  # type: ignore[arg-type]
        assert field == refused(None, command)

    @pytest.mark.parametrize("command_type", [UpdateJob, CompleteJob, FailJob, CancelJob])
    @pytest.mark.parametrize("field", ["display_name", "description"])
    def test_bad_texts_on_changes(self, command_type: type[ChangeCommand], field: str) -> None:
        """Every change command checks a new display_name and description."""
        command = command_type(job_id="s-1", etag="s-2", **{field: "x" * 10_001})
        assert field == refused(active_job(), command)

    def test_texts_may_be_empty_or_multi_line(self) -> None:
        """Free texts may be empty and may hold newlines and tabs."""
        command = StartJob(
            service="hr", entity="employee", type="sync", display_name="", description="a\n\tb"
        )
        job = start(command).job
        assert ("", "a\n\tb") == (job.display_name, job.description)

    def test_state_result_is_checked_against_the_size_limit(self) -> None:
        """A patch whose merged state is over max_bytes is refused naming the state."""
        limits = Limits(max_bytes=60)
        command = StartJob(service="s", entity="e", type="t", state={"a": "x" * 40})
        job = start(command, limits=limits).job
        patch = UpdateJob(job_id=job.id, etag=job.etag, state_update={"b": "y" * 15})
        assert "state" == refused(job, patch, limits=limits)

    def test_patch_itself_is_checked_against_the_depth_limit(self) -> None:
        """A patch nested deeper than max_depth is refused naming state_update."""
        limits = Limits(max_depth=3)
        job = start(limits=limits).job
        patch = UpdateJob(job_id=job.id, etag=job.etag, state_update={"a": {"b": {"c": {}}}})
        assert "state_update" == refused(job, patch, limits=limits)

    def test_patch_itself_is_checked_against_the_limits(self) -> None:
        """A patch over max_bytes is refused naming state_update."""
        job = active_job()
        patch = FailJob(job_id=job.id, etag=job.etag, state_update={"error": "x" * 100})
        assert "state_update" == refused(job, patch, limits=Limits(max_bytes=50))

    def test_patch_that_shrinks_the_state_under_the_limit_is_accepted(self) -> None:
        """Only the merged state counts: a patch that removes a big member is accepted."""
        limits = Limits(max_bytes=60)
        command = StartJob(service="s", entity="e", type="t", state={"a": "x" * 40})
        job = start(command, limits=limits).job
        patch = UpdateJob(job_id=job.id, etag=job.etag, state_update={"a": None, "b": 1})
        assert {"b": 1} == change(job, patch, limits=limits).job.state


class TestFingerprint:
    """A fingerprint identifies a command's content, its request id aside."""

    BASE: tuple[Command, ...] = (
        StartJob(service="s", entity="e", type="t", display_name="d", input=[1], state={"a": 1}),
        UpdateJob(job_id="j", etag="e", status="x", display_name="d", state_update={"a": 1}),
        CompleteJob(job_id="j", etag="e", description="d", state_update={"a": 1}),
        FailJob(job_id="j", etag="e", description="d", state_update={"a": 1}),
        CancelJob(job_id="j", etag="e", display_name="d"),
    )

    @pytest.mark.parametrize("command", BASE, ids=lambda command: type(command).__name__)
    def test_equal_commands_have_equal_fingerprints(self, command: Command) -> None:
        """Two equal commands built separately have the same fingerprint."""
        twin = attrs.evolve(command)
        assert fingerprint(command) == fingerprint(twin)

    @pytest.mark.parametrize("command", BASE, ids=lambda command: type(command).__name__)
    def test_request_id_is_ignored(self, command: Command) -> None:
        """Commands that differ only in request id have the same fingerprint."""
        assert fingerprint(attrs.evolve(command, request_id="r-1")) == fingerprint(
            attrs.evolve(command, request_id="r-2")
        )

    @pytest.mark.parametrize("command", BASE, ids=lambda command: type(command).__name__)
    def test_any_other_field_changes_it(self, command: Command) -> None:
        """Changing any field but the request id changes the fingerprint."""
        replacements: dict[str, object] = {
            "service": "s2",
            "entity": "e2",
            "type": "t2",
            "display_name": "other",
            "description": "other",
            "input": [2],
            "state": {"a": 2},
            "job_id": "other",
            "etag": "other",
            "status": "other",
            "state_update": {"a": 2},
            "actor": "ops",
        }
        names = [field.name for field in attrs.fields(type(command)) if field.name != "request_id"]
        original = fingerprint(command)
        differs = {}
        for name in names:
            fields = attrs.asdict(command, recurse=False)
            fields[name] = replacements[name]
            differs[name] = fingerprint(type(command)(**fields)) != original
        assert dict.fromkeys(names, True) == differs

    def test_no_actor_keeps_the_fingerprint_recorded_before_actors(self) -> None:
        """A command without an actor has the digest it had before commands had actors."""
        expected = "a919351c264786df35b6fb0ec8f606f86d318c063f9b72d57fefe21e24f6ef91"
        assert expected == fingerprint(CancelJob(job_id="j", etag="e"))

    def test_another_actor_is_another_command(self) -> None:
        """The same command sent by two actors, or by an actor and by no one, differs."""
        prints = {
            fingerprint(CancelJob(job_id="j", etag="e", actor=actor))
            for actor in (None, "alice", "bob")
        }
        assert 3 == len(prints)

    def test_none_and_empty_differ(self) -> None:
        """A field left out (None) and the same field set empty are different commands."""
        assert fingerprint(UpdateJob(job_id="j", etag="e", state_update={})) != fingerprint(
            UpdateJob(job_id="j", etag="e")
        )
        assert fingerprint(UpdateJob(job_id="j", etag="e", display_name="")) != fingerprint(
            UpdateJob(job_id="j", etag="e")
        )

    def test_command_type_is_part_of_it(self) -> None:
        """Complete and fail with the same fields have different fingerprints."""
        assert fingerprint(CompleteJob(job_id="j", etag="e")) != fingerprint(
            FailJob(job_id="j", etag="e")
        )

    def test_numbers_keep_their_json_type(self) -> None:
        """1, 1.0 and true in a patch make three different commands."""
        prints = {
            fingerprint(UpdateJob(job_id="j", etag="e", state_update={"a": value}))
            for value in (1, 1.0, True)
        }
        assert 3 == len(prints)

    def test_member_order_does_not_matter(self) -> None:
        """The same JSON object written in another member order is the same command."""
        assert fingerprint(UpdateJob(job_id="j", etag="e", state_update={"a": 1, "b": 2})) == (
            fingerprint(UpdateJob(job_id="j", etag="e", state_update={"b": 2, "a": 1}))
        )


class TestChangeRecord:
    """A decided change keeps one record; its update and event are made from it when read."""

    def decided(self) -> Change:
        """An update by ``ops`` decided on the active job."""
        command = UpdateJob(job_id="s-1", etag="s-2", state_update={"n": 1}, actor="ops")
        return change(active_job(), command)

    def test_the_record_holds_every_fact_of_the_change(self) -> None:
        """The record lists event type, ids, job, status, ETag, time, update id, patch, actor."""
        assert (
            JobUpdated,
            "c-2",
            "s-1",
            "hr",
            "employee",
            "sync",
            "started",
            "c-1",
            LATER,
            1,
            None,
            None,
            doc({"n": 1}),
            "ops",
        ) == self.decided().record

    def test_update_and_event_are_made_once(self) -> None:
        """Reading the update or the event twice gives the very same value."""
        result = self.decided()
        assert (True, True) == (result.update is result.update, result.event is result.event)

    def test_evolve_gives_a_change_made_with_its_values(self) -> None:
        """attrs.evolve gives an equal change with no record, its update and event in place."""
        result = self.decided()
        evolved = attrs.evolve(result, expected_etag="other")
        assert (None, result.update, result.event, "other") == (
            evolved.record,
            evolved.update,
            evolved.event,
            evolved.expected_etag,
        )

    def test_with_request_and_expecting_keep_the_record(self) -> None:
        """with_request and expecting give what attrs.evolve gives, the record still kept."""
        result = self.decided()
        record = RequestRecord("r-1", "fingerprint", result.job)
        carried, expecting = result.with_request(record), result.expecting("e-9")
        assert (
            attrs.evolve(result, request=record),
            attrs.evolve(result, expected_etag="e-9"),
            result.record,
            result.record,
        ) == (carried, expecting, carried.record, expecting.record)

    def test_a_plain_change_has_no_record(self) -> None:
        """A change built field by field has no record, and with_request evolves it."""
        started = start()
        record = RequestRecord("r-1", "fingerprint", started.job)
        assert (None, attrs.evolve(started, request=record)) == (
            started.record,
            started.with_request(record),
        )

    def test_it_pickles_as_a_change_with_its_values(self) -> None:
        """A pickled change comes back equal, as a change made with its values."""
        result = self.decided()
        back = pickle.loads(pickle.dumps(result))  # noqa: S301  (our own bytes)
        assert (result, Change) == (back, type(back))

    def test_tags_come_from_new_tag(self) -> None:
        """With new_tag, a start's job id comes from new_id, its ETag and event id from new_tag."""
        command = StartJob(service="hr", entity="employee", type="sync")
        started = decide(
            None,
            command,
            now=NOW,
            new_id=id_factory("id"),
            new_tag=id_factory("tag"),
            limits=DEFAULT_LIMITS,
        )
        assert ("id-1", "tag-1", "tag-2") == (
            started.job.id,
            started.job.etag,
            started.event.event_id,
        )

    def test_it_equals_the_change_made_with_its_values(self) -> None:
        """A decided change equals, hashes and reads like the change made with its values."""
        result = self.decided()
        plain = Change(result.job, result.update, result.event, result.expected_etag, None)
        assert (True, True, True, hash(plain), repr(plain)) == (
            result == plain,
            plain == result,
            result != attrs.evolve(plain, expected_etag="other"),
            hash(result),
            repr(result),
        )

    @pytest.mark.parametrize(
        "command",
        [
            UpdateJob(job_id="s-1", etag="s-2", status="x", state_update={"n": 1}),
            CompleteJob(job_id="s-1", etag="s-2", display_name="Done", actor="ops"),
            FailJob(job_id="s-1", etag="s-2", state_update={"error": "E"}),
            CancelJob(job_id="s-1", etag="s-2", description="enough", actor="alice"),
        ],
    )
    def test_an_event_and_its_record_make_each_other(self, command: ChangeCommand) -> None:
        """record_of an event gives the change's record, and event_of that record the event."""
        result = change(active_job(), command)
        event = result.event
        assert not isinstance(event, JobStarted)
        assert (result.record, event) == (record_of(event), event_of(record_of(event)))
