"""The job aggregate's values: :class:`Job`, :class:`JobUpdate` and their enums."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from jobledger._core.jsondoc import JsonObject, JsonValue

__all__ = [
    "TERMINAL_STATUSES",
    "Job",
    "JobPhase",
    "JobStatus",
    "JobUpdate",
    "UpdateType",
    "job_of",
]


class JobStatus(enum.StrEnum):
    """The built-in statuses. An update may also set a custom, non-terminal one."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


#: Statuses that only their own command sets, and that end a job's life.
TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class JobPhase(enum.StrEnum):
    """Where a job is in its lifecycle; every status maps to exactly one phase."""

    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @classmethod
    def of_status(cls, status: str) -> JobPhase:
        """The phase of a job with ``status``: a terminal status, or active."""
        return cls(status) if status in TERMINAL_STATUSES else cls.ACTIVE

    @property
    def is_terminal(self) -> bool:
        """Whether a job in this phase accepts no further changes."""
        return self is not JobPhase.ACTIVE


class UpdateType(enum.IntEnum):
    """What kind of change a :class:`JobUpdate` records; its number goes on the wire."""

    UPDATED = 0
    COMPLETED = 1
    FAILED = 2
    CANCELED = 3


@attrs.frozen
class Job:
    """One instance of a long-running workflow, as the ledger holds it now.

    Every field is read-only, and so are the JSON values in ``input`` and
    ``state``: change a job through :class:`~jobledger.Jobs`, which returns the
    job as it is after the change.

    Attributes:
        id: The job's id, unique in its ledger.
        service: The service that started the job.
        entity: The kind of entity the job is about.
        type: The job's type.
        display_name: A name for people.
        description: A longer text for people.
        status: ``started``, a custom status set by an update, or a terminal
            status (``completed``, ``failed``, ``canceled``).
        input: The JSON value the job was started with; it never changes.
        state: The job's current variables, a JSON object.
        etag: Changes with every change; commands must carry the current one.
        version: How many changes the job has had, its start included.
        created_at: When the job was started.
        updated_at: When the job last changed.
        started_by: Who started the job (the start command's ``actor``), or
            ``None`` when the start named no one. Who made each later change
            is on its :class:`JobUpdate` (``actor``).
    """

    id: str
    service: str
    entity: str
    type: str
    display_name: str
    description: str
    status: str
    input: JsonValue
    state: JsonObject
    etag: str
    version: int
    created_at: datetime
    updated_at: datetime
    started_by: str | None = None

    @property
    def phase(self) -> JobPhase:
        """The job's phase, derived from its status."""
        return JobPhase.of_status(self.status)


@attrs.frozen
class JobUpdate:
    """One change to a job after its start; the log of them never changes.

    Attributes:
        job_id: The job that changed.
        update_id: 1 for the first change after the start, then 2, 3, ...
        update_type: Whether the change updated, completed, failed or canceled.
        status: The job's status after the change.
        state_update: The RFC 7396 merge patch applied to the state, or ``None``.
        display_name: The new display name, or ``None`` when unchanged.
        description: The new description, or ``None`` when unchanged.
        etag: The job's ETag after the change.
        at: When the change happened.
        actor: Who made the change (the command's ``actor``), or ``None``.
    """

    job_id: str
    update_id: int
    update_type: UpdateType
    status: str
    state_update: JsonObject | None
    display_name: str | None
    description: str | None
    etag: str
    at: datetime
    actor: str | None = None


# Job's slots, set one by one by job_of: member descriptors, by field order.
_NEW = object.__new__
(
    _set_id,
    _set_service,
    _set_entity,
    _set_type,
    _set_display_name,
    _set_description,
    _set_status,
    _set_input,
    _set_state,
    _set_etag,
    _set_version,
    _set_created_at,
    _set_updated_at,
    _set_started_by,
) = (Job.__dict__[field.name].__set__ for field in attrs.fields(Job))


def job_of(  # noqa: PLR0917  (a Job's fields, in order: the hot path's own constructor)
    id: str,
    service: str,
    entity: str,
    type: str,
    display_name: str,
    description: str,
    status: str,
    input: JsonValue,
    state: JsonObject,
    etag: str,
    version: int,
    created_at: datetime,
    updated_at: datetime,
    started_by: str | None,
) -> Job:
    """The :class:`Job` with these fields, given in field order: ``Job(...)``, a third cheaper.

    It sets the slots directly, which attrs' ``__init__`` does through
    ``object.__setattr__``; ``Job`` has no validators or converters to skip.
    Every command builds a job, so the ledger builds them with this.
    """
    job = _NEW(Job)
    _set_id(job, id)
    _set_service(job, service)
    _set_entity(job, entity)
    _set_type(job, type)
    _set_display_name(job, display_name)
    _set_description(job, description)
    _set_status(job, status)
    _set_input(job, input)
    _set_state(job, state)
    _set_etag(job, etag)
    _set_version(job, version)
    _set_created_at(job, created_at)
    _set_updated_at(job, updated_at)
    _set_started_by(job, started_by)
    return job
