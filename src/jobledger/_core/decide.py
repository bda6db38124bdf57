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
from typing import TYPE_CHECKING

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
    JobCanceled,
    JobChanged,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobStarted,
    JobUpdated,
)
from jobledger._core.job import TERMINAL_STATUSES, Job, JobStatus, JobUpdate, UpdateType
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
from jobledger._core.lifecycle import CommandKind, next_phase

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Change",
    "RequestRecord",
    "batch_refusal",
    "check_keys",
    "command_kind",
    "decide",
    "decide_checked",
    "fingerprint",
    "save_refusal",
    "terminal_look_alike",
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


_KINDS: dict[type, CommandKind] = {
    StartJob: CommandKind.START,
    UpdateJob: CommandKind.UPDATE,
    CompleteJob: CommandKind.COMPLETE,
    FailJob: CommandKind.FAIL,
    CancelJob: CommandKind.CANCEL,
}

_OUTCOMES: dict[CommandKind, tuple[JobStatus, UpdateType]] = {
    CommandKind.UPDATE: (JobStatus.STARTED, UpdateType.UPDATED),
    CommandKind.COMPLETE: (JobStatus.COMPLETED, UpdateType.COMPLETED),
    CommandKind.FAIL: (JobStatus.FAILED, UpdateType.FAILED),
    CommandKind.CANCEL: (JobStatus.CANCELED, UpdateType.CANCELED),
}


_PATCH_EVENTS: dict[CommandKind, type[JobUpdated | JobCompleted | JobFailed]] = {
    CommandKind.UPDATE: JobUpdated,
    CommandKind.COMPLETE: JobCompleted,
    CommandKind.FAIL: JobFailed,
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
) -> Change:
    """Decide what ``command`` changes in ``job`` (``None`` for a start).

    Ids are drawn from ``new_id`` in one order: a start's job id (unless the
    command gives one), then the new ETag, then the event id. A change draws
    none before all its checks have passed.

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
    return decide_checked(job, command, kind, now=now, new_id=new_id, limits=limits)


def decide_checked(
    job: Job | None,
    command: Command,
    kind: CommandKind,
    *,
    now: datetime,
    new_id: Callable[[], str],
    limits: Limits,
) -> Change:
    """:func:`decide`, for a command whose ``kind`` and keys were checked already.

    The application checks them once, before it reads anything, and then
    decides as often as a wildcard command needs; this spares each decision
    the checks.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        msg = f"the ledger's clock must return timezone-aware datetimes, not {now!r}"
        raise ValueError(msg)
    if now.tzinfo is not UTC:
        # Times are kept in UTC, so a job reads the same from every backend.
        now = now.astimezone(UTC)
    if isinstance(command, StartJob):
        change = _start(command, now=now, new_id=new_id, limits=limits)
    else:
        if job is None:
            raise JobNotFoundError(command.job_id)
        next_phase(job.id, job.phase, kind)
        if command.etag not in (ANY_ETAG, job.etag):
            raise ConcurrencyError(job.id, command.etag, job.etag)
        change = _change(job, command, kind, now=now, new_id=new_id, limits=limits)
    if command.request_id is None:
        return change
    record = RequestRecord(command.request_id, fingerprint(command), change.job)
    return attrs.evolve(change, request=record)


def check_keys(command: Command, limits: Limits) -> None:
    """Check the fields a command is looked up by: its job id, request id and ETag.

    The application checks them before it reads anything, so a malformed key is
    refused as invalid data by every backend alike.

    Raises:
        InvalidJobDataError: one of them is not a valid short name.
    """
    _check_optional_name(command.request_id, "request_id", limits)
    if isinstance(command, StartJob):
        _check_optional_name(command.job_id, "job_id", limits)
    else:
        check_name(command.job_id, field="job_id", limits=limits)
        check_name(command.etag, field="etag", limits=limits)


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
    command: StartJob, *, now: datetime, new_id: Callable[[], str], limits: Limits
) -> Change:
    job = Job(
        id=command.job_id if command.job_id is not None else new_id(),
        service=check_name(command.service, field="service", limits=limits),
        entity=check_name(command.entity, field="entity", limits=limits),
        type=check_name(command.type, field="type", limits=limits),
        display_name=check_text(command.display_name, field="display_name", limits=limits),
        description=check_text(command.description, field="description", limits=limits),
        status=JobStatus.STARTED.value,
        input=command.input,
        state=_state(command.state, "state", limits),
        etag=new_id(),
        version=1,
        created_at=now,
        updated_at=now,
        started_by=_actor(command.actor, limits),
    )
    check_limits(job.input, field="input", limits=limits)
    event = JobStarted(
        event_id=new_id(),
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
    return Change(job=job, update=None, event=event, expected_etag=None, request=None)


def _change(
    job: Job,
    command: UpdateJob | CompleteJob | FailJob | CancelJob,
    kind: CommandKind,
    *,
    now: datetime,
    new_id: Callable[[], str],
    limits: Limits,
) -> Change:
    default_status, update_type = _OUTCOMES[kind]
    if isinstance(command, UpdateJob):
        status = job.status if command.status is None else _update_status(command.status, limits)
    else:
        status = default_status.value
    display_name = command.display_name
    if display_name is not None:
        check_text(display_name, field="display_name", limits=limits)
    description = command.description
    if description is not None:
        check_text(description, field="description", limits=limits)
    actor = _actor(command.actor, limits)
    patch: JsonObject | None = None
    state = job.state
    if not isinstance(command, CancelJob) and command.state_update is not None:
        patch = _state(command.state_update, "state_update", limits)
        state = _state(merge_patch(job.state, patch), "state", limits)
    # The update's id is the job's version before the change: the very same int
    # object, so the log and the feed do not hold one more copy of each number.
    update_id = job.version
    version = update_id + 1
    etag = new_id()
    # Built field by field, in field order, rather than with attrs.evolve or
    # keywords: this is the hot path of every command, evolve introspects the
    # class on each call, and matching thirteen keywords costs more than the rest.
    after = Job(
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
        version,
        job.created_at,
        now,
        job.started_by,
    )
    update = JobUpdate(
        job.id, update_id, update_type, status, patch, display_name, description, etag, now, actor
    )
    event_id = new_id()
    event: JobChanged
    if kind is CommandKind.CANCEL:
        event = JobCanceled(
            event_id=event_id,
            job_id=job.id,
            service=job.service,
            entity=job.entity,
            type=job.type,
            status=status,
            etag=etag,
            version=version,
            at=now,
            update_id=update_id,
            display_name=display_name,
            description=description,
            actor=actor,
        )
    else:
        event = _PATCH_EVENTS[kind](
            event_id=event_id,
            job_id=job.id,
            service=job.service,
            entity=job.entity,
            type=job.type,
            status=status,
            etag=etag,
            version=version,
            at=now,
            update_id=update_id,
            display_name=display_name,
            description=description,
            actor=actor,
            state_update=patch,
        )
    return Change(after, update, event, job.etag, None)


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
    # A change decided on an earlier version is stale even when the stored ETag
    # repeats that version's (an id factory that repeats itself).
    if etag != change.expected_etag or (
        change.update is not None and change.update.update_id < version
    ):
        return ConcurrencyError(job_id, change.expected_etag, etag)
    if change.update is None or change.update.update_id != version:
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
