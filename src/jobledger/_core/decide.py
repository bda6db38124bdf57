"""The pure decision: given a job and a command, what changes.

:func:`decide` does no I/O. It is handed the job as loaded (or ``None`` for a
start), the time and an id factory, and returns a :class:`Change`: the job as
it will be, the update to append to its log, the event to publish, and the
ETag the stored job must still have when the change is saved.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

from jobledger._core.actors import check_actor
from jobledger._core.commands import (
    ANY_ETAG,
    CancelJob,
    Command,
    CompleteJob,
    FailJob,
    StartJob,
    UpdateJob,
)
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidJobDataError,
    JobAlreadyExistsError,
    JobNotFoundError,
    RequestIdConflictError,
)
from jobledger._core.events import (
    Admits,
    JobCanceled,
    JobChanged,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobStarted,
    JobUpdated,
)
from jobledger._core.job import (
    TERMINAL_STATUSES,
    Job,
    JobPhase,
    JobStatus,
    JobUpdate,
    UpdateType,
    job_of,
)
from jobledger._core.jsondoc import (
    JsonObject,
    JsonValue,
    Limits,
    check_limits,
    check_name,
    check_text,
    merge_patch,
    within_limits,
)
from jobledger._core.lifecycle import TRANSITIONS, CommandKind, next_phase

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "RECORD_EVENT_ID",
    "UPDATE_TYPES",
    "Change",
    "ChangeRecord",
    "RequestRecord",
    "batch_refusal",
    "check_keys",
    "command_kind",
    "decide",
    "decide_checked",
    "event_of",
    "fingerprint",
    "record_admitted",
    "record_of",
    "save_refusal",
    "terminal_look_alike",
    "update_of",
]


@attrs.frozen
class RequestRecord:
    """What the ledger remembers of a command sent with a ``request_id``.

    Attributes:
        request_id: The id the sender gave the command.
        fingerprint: :func:`fingerprint` of the command, to tell a retry from a
            different command that reuses the id.
        job: The job as the command left it: the answer to every retry.
        predates_actors: The record was stored before commands had actors, so
            the command it remembers named no one (see :meth:`answers`).
    """

    request_id: str
    fingerprint: str
    job: Job
    predates_actors: bool = False

    def answers(self, command: Command) -> bool:
        """Whether ``command`` is the command this record remembers, so a retry of it.

        A record stored before commands had actors also answers the same
        command naming an actor: the sender could not name one then (the jobs
        service, say, now names its client in every command).
        """
        if self.fingerprint == fingerprint(command):
            return True
        return self.predates_actors and self.fingerprint == fingerprint(
            attrs.evolve(command, actor=None)
        )


@attrs.frozen
class Change:
    """Everything one command changes, to be saved atomically.

    Attributes:
        job: The job after the change.
        update: The update to append to the job's log; ``None`` for a start.
        event: The integration event that announces the change.
        expected_etag: The ETag the stored job must have for the change to
            apply; ``None`` for a start, which needs the job not to exist.
        request: The record of the command's ``request_id``, if it had one.
    """

    job: Job
    update: JobUpdate | None
    event: JobEvent
    expected_etag: str | None
    request: RequestRecord | None

    @property
    def record(self) -> ChangeRecord | None:
        """The change's facts as one tuple, when its update and event are made on demand.

        ``None`` for a change made with its update and event (a start, or a
        change built field by field); see :func:`update_of` and :func:`event_of`.
        """
        return None

    def with_request(self, request: RequestRecord | None) -> Change:
        """This change, carrying ``request`` (``attrs.evolve``, short of making its values)."""
        return attrs.evolve(self, request=request)

    def expecting(self, expected_etag: str | None) -> Change:
        """This change, saved over a job with ``expected_etag`` instead."""
        return attrs.evolve(self, expected_etag=expected_etag)


#: A change after the start as the ledger keeps it inside: one flat tuple,
#: ``(event type, event id, job id, service, entity, type, status, etag, at,
#: update id, display name, description, state update, actor)``. Its
#: :class:`~jobledger.JobUpdate` and its event are made from it when someone
#: reads them (:func:`update_of`, :func:`event_of`); a ledger nobody listens to
#: never makes its events.
ChangeRecord: TypeAlias = tuple[
    "type[JobChanged]",
    str,
    str,
    str,
    str,
    str,
    str,
    str,
    datetime,
    int,
    "str | None",
    "str | None",
    "JsonObject | None",
    "str | None",
]

# Where a record keeps its event id and its update id.
RECORD_EVENT_ID: Final = 1
_RECORD_UPDATE_ID: Final = 9

#: The update type of each kind of change, by the type of the event that announces it.
UPDATE_TYPES: Mapping[type[JobChanged], UpdateType] = {
    JobUpdated: UpdateType.UPDATED,
    JobCompleted: UpdateType.COMPLETED,
    JobFailed: UpdateType.FAILED,
    JobCanceled: UpdateType.CANCELED,
}


def record_of(event: JobChanged) -> ChangeRecord:
    """The record of the change ``event`` announces: :func:`event_of` gives ``event`` back."""
    return (
        type(event),
        event.event_id,
        event.job_id,
        event.service,
        event.entity,
        event.type,
        event.status,
        event.etag,
        event.at,
        event.update_id,
        event.display_name,
        event.description,
        None if isinstance(event, JobCanceled) else event.state_update,
        event.actor,
    )


def update_of(record: ChangeRecord) -> JobUpdate:
    """The :class:`~jobledger.JobUpdate` of the change ``record`` keeps."""
    kind, _, job_id, _, _, _, status, etag, at, update_id, name, text, patch, actor = record
    update_type = UPDATE_TYPES[kind]
    return JobUpdate(job_id, update_id, update_type, status, patch, name, text, etag, at, actor)


def record_admitted(record: ChangeRecord, admits: Admits) -> bool:
    """What ``admits`` (an :meth:`~jobledger.EventFilter.admits`) says of :func:`event_of`'s event.

    It is asked of the record's fields, so the event is not made.
    """
    kind, _, job_id, service, entity, type_, _, etag, _, update_id, _, _, _, _ = record
    return admits(kind, job_id, service, entity, type_, update_id + 1, etag)


def event_of(record: ChangeRecord) -> JobChanged:
    """The event that announces the change ``record`` keeps."""
    (
        kind,
        event_id,
        job_id,
        service,
        entity,
        type_,
        status,
        etag,
        at,
        update_id,
        name,
        text,
        patch,
        actor,
    ) = record
    if kind is JobCanceled:
        return JobCanceled(
            event_id=event_id,
            job_id=job_id,
            service=service,
            entity=entity,
            type=type_,
            status=status,
            etag=etag,
            version=update_id + 1,
            at=at,
            update_id=update_id,
            display_name=name,
            description=text,
            actor=actor,
        )
    return kind(  # type: ignore[call-arg]  # every other change event has a state_update
        event_id=event_id,
        job_id=job_id,
        service=service,
        entity=entity,
        type=type_,
        status=status,
        etag=etag,
        version=update_id + 1,
        at=at,
        update_id=update_id,
        display_name=name,
        description=text,
        actor=actor,
        state_update=patch,
    )


# Change's own slots, which _Recorded's properties fill on first read.
_UPDATE_SLOT: Any = Change.__dict__["update"]
_EVENT_SLOT: Any = Change.__dict__["event"]
_SET = object.__setattr__


class _Recorded(Change):
    """A :class:`Change` whose update and event are made from its record when first read.

    It is equal to, and reads exactly like, the change made with them; only
    the cost moves to whoever reads them (a durable repository saving it, a
    subscriber), so the in-memory ledger keeps the record and makes neither.
    ``attrs.evolve`` gives a plain change made with them.
    """

    # A slot, not Change's property: read on every save, it costs no call.
    __slots__ = ("record",)
    record: ChangeRecord | None

    def __init__(
        self,
        job: Job,
        update: JobUpdate | None,
        event: JobEvent,
        expected_etag: str | None,
        request: RequestRecord | None,
    ) -> None:
        # What attrs.evolve calls: a change with its values, and no record.
        _SET(self, "job", job)
        _UPDATE_SLOT.__set__(self, update)
        _EVENT_SLOT.__set__(self, event)
        _SET(self, "expected_etag", expected_etag)
        _SET(self, "request", request)
        _SET(self, "record", None)

    @classmethod
    def of(
        cls,
        job: Job,
        record: ChangeRecord,
        expected_etag: str | None,
        request: RequestRecord | None,
    ) -> _Recorded:
        """The change of ``job`` that ``record`` keeps, its update and event not yet made."""
        change = _NEW(cls)
        _set_job(change, job)
        _set_expected_etag(change, expected_etag)
        _set_request(change, request)
        _set_record(change, record)
        return change

    @property
    def update(self) -> JobUpdate | None:
        try:
            return _UPDATE_SLOT.__get__(self, Change)  # type: ignore[no-any-return]
        except AttributeError:
            assert self.record is not None  # noqa: S101  (made with values, or with a record)
            update = update_of(self.record)
            _UPDATE_SLOT.__set__(self, update)
            return update

    @property
    def event(self) -> JobEvent:
        try:
            return _EVENT_SLOT.__get__(self, Change)  # type: ignore[no-any-return]
        except AttributeError:
            assert self.record is not None  # noqa: S101  (made with values, or with a record)
            event = event_of(self.record)
            _EVENT_SLOT.__set__(self, event)
            return event

    def with_request(self, request: RequestRecord | None) -> Change:
        """This change, carrying ``request``; its update and event still not made."""
        if self.record is None:
            return super().with_request(request)
        return _Recorded.of(self.job, self.record, self.expected_etag, request)

    def expecting(self, expected_etag: str | None) -> Change:
        """This change, saved over a job with ``expected_etag`` instead."""
        if self.record is None:
            return super().expecting(expected_etag)
        return _Recorded.of(self.job, self.record, expected_etag, self.request)

    def _plain(self) -> Change:
        """The same change, made with its values."""
        return Change(self.job, self.update, self.event, self.expected_etag, self.request)

    def __eq__(self, other: object) -> bool:
        # Equal to the change made with the same values (attrs compares classes).
        if not isinstance(other, Change):
            return NotImplemented
        if isinstance(other, _Recorded):
            other = other._plain()
        return self._plain() == other

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self._plain())

    def __repr__(self) -> str:
        return repr(self._plain())

    def __reduce__(self) -> tuple[type[Change], tuple[object, ...]]:
        return (Change, (self.job, self.update, self.event, self.expected_etag, self.request))


# The slots _Recorded.of sets, set directly (a third cheaper than object.__setattr__).
_NEW = object.__new__
_set_job = Change.__dict__["job"].__set__
_set_expected_etag = Change.__dict__["expected_etag"].__set__
_set_request = Change.__dict__["request"].__set__
_set_record = _Recorded.__dict__["record"].__set__


#: The commands an active job accepts, read from the lifecycle table once: a
#: command on an active job is then checked without asking the table again.
_ACTIVE_ACCEPTS = frozenset(kind for (phase, kind) in TRANSITIONS if phase is JobPhase.ACTIVE)

_KINDS: dict[type, CommandKind] = {
    StartJob: CommandKind.START,
    UpdateJob: CommandKind.UPDATE,
    CompleteJob: CommandKind.COMPLETE,
    FailJob: CommandKind.FAIL,
    CancelJob: CommandKind.CANCEL,
}

# Read per command: a module global is cheaper to reach than an enum member.
_UPDATE: Final = CommandKind.UPDATE
_STARTED: Final = JobStatus.STARTED.value

#: The status each ending command sets, as plain text.
_STATUSES: dict[CommandKind, str] = {
    CommandKind.COMPLETE: JobStatus.COMPLETED.value,
    CommandKind.FAIL: JobStatus.FAILED.value,
    CommandKind.CANCEL: JobStatus.CANCELED.value,
}

_CHANGE_EVENTS: dict[CommandKind, type[JobChanged]] = {
    CommandKind.UPDATE: JobUpdated,
    CommandKind.COMPLETE: JobCompleted,
    CommandKind.FAIL: JobFailed,
    CommandKind.CANCEL: JobCanceled,
}


def command_kind(command: Command) -> CommandKind:
    """The lifecycle action ``command`` asks for.

    Raises:
        TypeError: if ``command`` is not one of the five commands.
    """
    try:
        return _KINDS[type(command)]
    except KeyError:
        msg = f"not a jobledger command: {type(command).__name__}"
        raise TypeError(msg) from None


def fingerprint(command: Command) -> str:
    """A digest of everything in ``command`` but its ``request_id``.

    Two commands with the same fingerprint are the same command, so one may be
    answered as a retry of the other. The ``actor`` is part of the command: the
    same request id sent by another actor is another command. An ``actor`` of
    ``None`` is left out of the digest, so requests recorded before commands
    had actors are still recognized when they are retried.
    """
    fields = {
        field.name: getattr(command, field.name)
        for field in attrs.fields(type(command))
        if field.name != "request_id"
    }
    if command.actor is None:
        del fields["actor"]
    canonical = json.dumps(
        [type(command).__name__, fields],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def decide(
    job: Job | None,
    command: Command,
    *,
    now: datetime,
    new_id: Callable[[], str],
    limits: Limits,
    new_tag: Callable[[], str] | None = None,
) -> Change:
    """Decide what ``command`` changes in ``job`` (``None`` for a start).

    Ids are drawn in one order: a start's job id from ``new_id`` (unless the
    command gives one), then the new ETag, then the event id, both from
    ``new_tag`` (``new_id`` when ``None``). A change draws none before all its
    checks have passed.

    Raises:
        JobNotFoundError: a change command and ``job`` is ``None``.
        ConcurrencyError: the command's ETag is neither the job's nor
            :data:`~jobledger.ANY_ETAG`.
        InvalidTransitionError: the lifecycle forbids the command in the job's phase.
        InvalidJobDataError: a field of the command breaks the data rules or ``limits``.
        ValueError: ``now`` is not a timezone-aware datetime (a misconfigured clock).
    """
    kind = command_kind(command)
    check_keys(command, limits)
    return decide_checked(job, command, kind, now, new_id, limits, new_tag)


def decide_checked(  # noqa: PLR0917  (positional: it runs per command)
    job: Job | None,
    command: Command,
    kind: CommandKind,
    now: datetime,
    new_id: Callable[[], str],
    limits: Limits,
    new_tag: Callable[[], str] | None,
) -> Change:
    """:func:`decide`, for a command whose ``kind`` and keys were checked already.

    The application checks them once, before it reads anything, and then
    decides as often as a wildcard command needs; this spares each decision
    the checks. Its arguments are :func:`decide`'s, in order, all positional.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        msg = f"the ledger's clock must return timezone-aware datetimes, not {now!r}"
        raise ValueError(msg)
    if now.tzinfo is not UTC:
        # Times are kept in UTC, so a job reads the same from every backend.
        now = now.astimezone(UTC)
    tag = new_id if new_tag is None else new_tag
    if isinstance(command, StartJob):
        change = _start(command, now=now, new_id=new_id, new_tag=tag, limits=limits)
    else:
        if job is None:
            raise JobNotFoundError(command.job_id)
        if job.status in TERMINAL_STATUSES or kind not in _ACTIVE_ACCEPTS:
            next_phase(job.id, job.phase, kind)  # raises: the table refuses the command
        if command.etag not in (ANY_ETAG, job.etag):
            raise ConcurrencyError(job.id, command.etag, job.etag)
        change = _change(job, command, kind, now, tag, limits)
    if command.request_id is None:
        return change
    record = RequestRecord(command.request_id, fingerprint(command), change.job)
    return change.with_request(record)


def check_keys(command: Command, limits: Limits) -> None:
    """Check the fields a command is looked up by: its job id, request id and ETag.

    The application checks them before it reads anything, so a malformed key is
    refused as invalid data by every backend alike.

    Raises:
        InvalidJobDataError: one of them is not a valid short name.
    """
    if command.request_id is not None:
        check_name(command.request_id, field="request_id", limits=limits)
    if isinstance(command, StartJob):
        _check_optional_name(command.job_id, "job_id", limits)
        return
    job_id, etag = command.job_id, command.etag
    # Both printable ASCII of a fitting length (check_name's own first test, for
    # the two at once): the usual case, with no call.
    longest = limits.max_name_length
    if not (
        type(job_id) is str
        and type(etag) is str
        and job_id.isascii()
        and etag.isascii()
        and job_id.isprintable()
        and etag.isprintable()
        and 0 < len(job_id) <= longest
        and 0 < len(etag) <= longest
    ):
        check_name(job_id, field="job_id", limits=limits)
        check_name(etag, field="etag", limits=limits)


def _check_optional_name(value: str | None, field: str, limits: Limits) -> None:
    if value is not None:
        check_name(value, field=field, limits=limits)


def _actor(value: str | None, limits: Limits) -> str | None:
    """A command's ``actor``, checked as a name: who acts, or ``None`` for no one named."""
    return check_actor(value, limits)


def _state(value: JsonValue, field: str, limits: Limits) -> JsonObject:
    if not isinstance(value, JsonObject):
        raise InvalidJobDataError(field, "", f"must be a JSON object, not {_json_kind(value)}")
    if within_limits(value, limits):
        return value
    check_limits(value, field=field, limits=limits)
    return value


def _json_kind(value: JsonValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _start(
    command: StartJob,
    *,
    now: datetime,
    new_id: Callable[[], str],
    new_tag: Callable[[], str],
    limits: Limits,
) -> Change:
    # In field order (job_of), so the job id is drawn before the ETag, and the
    # fields are checked in the order they are named.
    job = job_of(
        command.job_id if command.job_id is not None else new_id(),  # id
        check_name(command.service, field="service", limits=limits),
        check_name(command.entity, field="entity", limits=limits),
        check_name(command.type, field="type", limits=limits),
        check_text(command.display_name, field="display_name", limits=limits),
        check_text(command.description, field="description", limits=limits),
        _STARTED,  # status
        command.input,
        _state(command.state, "state", limits),
        new_tag(),  # etag
        1,  # version
        now,  # created_at
        now,  # updated_at
        _actor(command.actor, limits),  # started_by
    )
    check_limits(job.input, field="input", limits=limits)
    event = JobStarted(
        event_id=new_tag(),
        job_id=job.id,
        service=job.service,
        entity=job.entity,
        type=job.type,
        status=job.status,
        etag=job.etag,
        version=job.version,
        at=now,
        actor=job.started_by,
        display_name=job.display_name,
        description=job.description,
        input=job.input,
        state=job.state,
    )
    return Change(job, None, event, None, None)  # job, update, event, expected_etag, request


def _change(  # noqa: PLR0917  (positional: it runs per command)
    job: Job,
    command: UpdateJob | CompleteJob | FailJob | CancelJob,
    kind: CommandKind,
    now: datetime,
    new_tag: Callable[[], str],
    limits: Limits,
) -> Change:
    if kind is _UPDATE:
        status = command.status  # type: ignore[union-attr]  # an UpdateJob
        status = job.status if status is None else _update_status(status, limits)
    else:
        status = _STATUSES[kind]
    display_name = command.display_name
    if display_name is not None:
        display_name = check_text(display_name, field="display_name", limits=limits)
    description = command.description
    if description is not None:
        description = check_text(description, field="description", limits=limits)
    actor = command.actor
    if actor is not None:
        actor = check_actor(actor, limits)
    patch: JsonObject | None = None
    state = job.state
    if not isinstance(command, CancelJob) and command.state_update is not None:
        # The usual case inline (a frozen object within the limits); _state says why not.
        patch = command.state_update  # type: ignore[assignment]  # checked just below
        if type(patch) is not JsonObject or not within_limits(patch, limits):
            patch = _state(command.state_update, "state_update", limits)
        state = merge_patch(state, patch)  # type: ignore[assignment]  # an object onto an object
        if not within_limits(state, limits):
            check_limits(state, field="state", limits=limits)
    # The update's id is the job's version before the change: the very same int
    # object, so the log and the feed do not hold one more copy of each number.
    update_id = job.version
    etag = new_tag()
    # Built field by field, in field order, rather than with attrs.evolve or
    # keywords: this is the hot path of every command, evolve introspects the
    # class on each call, and matching thirteen keywords costs more than the rest.
    after = job_of(
        job.id,
        job.service,
        job.entity,
        job.type,
        job.display_name if display_name is None else display_name,
        job.description if description is None else description,
        status,
        job.input,
        state,
        etag,
        update_id + 1,
        job.created_at,
        now,
        job.started_by,
    )
    # The update and the event are made from this record when someone reads
    # them: most commands of a ledger nobody listens to never need them.
    record: ChangeRecord = (
        _CHANGE_EVENTS[kind],
        new_tag(),
        job.id,
        job.service,
        job.entity,
        job.type,
        status,
        etag,
        now,
        update_id,
        display_name,
        description,
        patch,
        actor,
    )
    return _Recorded.of(after, record, job.etag, None)


def _update_status(status: object, limits: Limits) -> str:
    text = check_name(status, field="status", limits=limits)
    if text in _CUSTOM_FAST:
        return text
    terminal = terminal_look_alike(text)
    if terminal is not None:
        raise InvalidJobDataError(
            "status",
            "",
            f"{text!r} is (or reads as) the terminal status {terminal.value!r}, which only "
            f"its own command sets (use {_TERMINAL_VERB[terminal]} instead of update)",
        )
    return text


# Statuses updates set all the time, known not to read as terminal.
_CUSTOM_FAST = frozenset({"started", "running", "exporting", "importing", "blocked"})

# Other spellings people and systems use for the terminal statuses.
_TERMINAL_SPELLINGS: dict[str, JobStatus] = {
    **{status.value: status for status in TERMINAL_STATUSES},
    "cancelled": JobStatus.CANCELED,
}


def terminal_look_alike(status: str) -> JobStatus | None:
    """The terminal status ``status`` reads as, or ``None``.

    It is compared after Unicode compatibility normalization (NFKC), trimming,
    case folding and dropping invisible format characters, and ``cancelled``
    reads as ``canceled``: an update that set ``"Completed "`` would make a
    job look finished while it is active.

    >>> terminal_look_alike("CANCELLED ")
    <JobStatus.CANCELED: 'canceled'>
    >>> terminal_look_alike("exporting") is None
    True
    """
    folded = unicodedata.normalize("NFKC", status).strip().casefold()
    if not folded.isascii():
        # Invisible format characters (zero-width spaces, joiners) do not make it another word.
        folded = "".join(char for char in folded if unicodedata.category(char) != "Cf").strip()
    return _TERMINAL_SPELLINGS.get(folded)


_TERMINAL_VERB: dict[str, str] = {
    JobStatus.COMPLETED: "complete",
    JobStatus.FAILED: "fail",
    JobStatus.CANCELED: "cancel",
}


def save_refusal(change: Change, stored: tuple[str, int] | None) -> Exception | None:
    """Why ``change`` cannot be saved over the stored job, or ``None`` if it can.

    ``stored`` is the stored job's ``(etag, version)``, or ``None`` when no job
    has the change's id. Every repository gives the same verdict through this.

    Returns:
        :class:`~jobledger.JobAlreadyExistsError` for a start of an existing id,
        :class:`~jobledger.JobNotFoundError` for a change to a missing job,
        :class:`~jobledger.ConcurrencyError` (with the stored ETag) when the
        stored ETag is not the expected one, or the stored job is past the
        version the change was decided on; ``ValueError`` when the change's
        update is ahead of the stored version or missing (a bug in the
        caller); or ``None``.
    """
    job_id = change.job.id
    if change.expected_etag is None:
        return None if stored is None else JobAlreadyExistsError(job_id)
    if stored is None:
        return JobNotFoundError(job_id)
    etag, version = stored
    record = change.record
    if record is not None:
        update_id: int | None = record[_RECORD_UPDATE_ID]
    else:
        update_id = None if change.update is None else change.update.update_id
    # A change decided on an earlier version is stale even when the stored ETag
    # repeats that version's (an id factory that repeats itself).
    if etag != change.expected_etag or (update_id is not None and update_id < version):
        return ConcurrencyError(job_id, change.expected_etag, etag)
    if update_id != version:
        return ValueError(f"update of job {job_id!r} does not follow version {version}")
    return None


def batch_refusal(
    changes: Iterable[Change],
    stored: Callable[[str], tuple[str, int] | None],
    recorded: Callable[[str], bool],
) -> Exception | None:
    """Why the batch ``changes`` cannot be saved in order, or ``None`` if it can.

    ``stored`` gives a job's stored ``(etag, version)`` (``None`` when no job has
    the id), and ``recorded`` whether a request id is recorded. Each change is
    judged by :func:`save_refusal` over the job as the changes before it in the
    batch leave it; a request id is refused when it is recorded or an earlier
    change of the batch uses it. Every repository gives a batch the same
    verdict through this.

    Returns:
        The refusal of the first change that cannot be saved (see
        :func:`save_refusal`, and :class:`~jobledger.RequestIdConflictError`),
        or ``None``.
    """
    after: dict[str, tuple[str, int] | None] = {}
    requests: set[str] = set()
    for change in changes:
        job = change.job
        refusal = save_refusal(change, after[job.id] if job.id in after else stored(job.id))
        if refusal is not None:
            return refusal
        if change.request is not None:
            request_id = change.request.request_id
            if request_id in requests or recorded(request_id):
                return RequestIdConflictError(request_id)
            requests.add(request_id)
        after[job.id] = (job.etag, job.version)
    return None
