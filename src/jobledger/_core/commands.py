"""The commands that change jobs, one frozen value per lifecycle action.

Building a command checks and freezes its JSON fields (see
:func:`~jobledger.freeze`); the ledger that handles it checks the rest against
its own limits.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from jobledger._core.jsondoc import JsonObject, JsonValue, empty_object, freeze_for_command

__all__ = [
    "ANY_ETAG",
    "CancelJob",
    "ChangeCommand",
    "Command",
    "CompleteJob",
    "FailJob",
    "StartJob",
    "UpdateJob",
]

#: The explicit wildcard ETag, like HTTP's ``If-Match: *``: the command applies
#: to whatever version the job is at. Meant for operator actions; never a default.
ANY_ETAG = "*"


def _input(value: object) -> JsonValue:
    return empty_object() if value is None else freeze_for_command(value, field="input")


def _state(value: object) -> JsonValue:
    return empty_object() if value is None else freeze_for_command(value, field="state")


def _state_update(value: object) -> JsonValue | None:
    if value is None or type(value) is JsonObject:
        # None, or a patch frozen already (the ledger's methods freeze it under
        # its limits first): freeze_for_command would give it back as it is.
        return value
    return freeze_for_command(value, field="state_update")


@attrs.frozen(kw_only=True)
class StartJob:
    """Start a job. Its status becomes ``started``.

    Attributes:
        service: The service starting the job.
        entity: The kind of entity the job is about.
        type: The job's type.
        display_name: A name for people.
        description: A longer text for people.
        input: The job's immutable input, any JSON value; ``None`` means ``{}``.
        state: The job's initial variables, a JSON object; ``None`` means ``{}``.
        job_id: The id to give the job; the ledger makes one when ``None``.
        request_id: Makes the command safe to retry (see :class:`~jobledger.Jobs`).
        actor: Who is acting: the service or person starting the job, or ``None``.
    """

    service: str
    entity: str
    type: str
    display_name: str = ""
    description: str = ""
    input: JsonValue = attrs.field(factory=empty_object, converter=_input)
    state: JsonValue = attrs.field(factory=empty_object, converter=_state)
    job_id: str | None = None
    request_id: str | None = None
    actor: str | None = None


@attrs.frozen(kw_only=True)
class UpdateJob:
    """Change an active job's status, state, display name or description.

    Attributes:
        job_id: The job to change.
        etag: The ETag the sender last saw, or :data:`ANY_ETAG`.
        status: A new non-terminal status, or ``None`` to keep it.
        display_name: A new display name, or ``None`` to keep it.
        description: A new description, or ``None`` to keep it.
        state_update: An RFC 7396 merge patch for the state, or ``None``.
        request_id: Makes the command safe to retry.
        actor: Who is acting: the service or person making the change, or ``None``.
    """

    job_id: str
    etag: str
    status: str | None = None
    display_name: str | None = None
    description: str | None = None
    state_update: JsonValue | None = attrs.field(default=None, converter=_state_update)
    request_id: str | None = None
    actor: str | None = None


@attrs.frozen(kw_only=True)
class CompleteJob:
    """Complete an active job successfully; its status becomes ``completed``.

    Attributes:
        job_id: The job to complete.
        etag: The ETag the sender last saw, or :data:`ANY_ETAG`.
        display_name: A new display name, or ``None`` to keep it.
        description: A new description, or ``None`` to keep it.
        state_update: A last merge patch for the state, or ``None``.
        request_id: Makes the command safe to retry.
        actor: Who is acting: the service or person making the change, or ``None``.
    """

    job_id: str
    etag: str
    display_name: str | None = None
    description: str | None = None
    state_update: JsonValue | None = attrs.field(default=None, converter=_state_update)
    request_id: str | None = None
    actor: str | None = None


@attrs.frozen(kw_only=True)
class FailJob:
    """Fail an active job; its status becomes ``failed``.

    Attributes:
        job_id: The job to fail.
        etag: The ETag the sender last saw, or :data:`ANY_ETAG`.
        display_name: A new display name, or ``None`` to keep it.
        description: A new description, or ``None`` to keep it.
        state_update: A last merge patch for the state (the error, say), or ``None``.
        request_id: Makes the command safe to retry.
        actor: Who is acting: the service or person making the change, or ``None``.
    """

    job_id: str
    etag: str
    display_name: str | None = None
    description: str | None = None
    state_update: JsonValue | None = attrs.field(default=None, converter=_state_update)
    request_id: str | None = None
    actor: str | None = None


@attrs.frozen(kw_only=True)
class CancelJob:
    """Cancel an active job; its status becomes ``canceled``.

    Attributes:
        job_id: The job to cancel.
        etag: The ETag the sender last saw, or :data:`ANY_ETAG`.
        display_name: A new display name, or ``None`` to keep it.
        description: A new description, or ``None`` to keep it.
        request_id: Makes the command safe to retry.
        actor: Who is acting: the service or person making the change, or ``None``.
    """

    job_id: str
    etag: str
    display_name: str | None = None
    description: str | None = None
    request_id: str | None = None
    actor: str | None = None


#: A command that changes an existing job.
ChangeCommand: TypeAlias = UpdateJob | CompleteJob | FailJob | CancelJob
#: Any command the ledger handles.
Command: TypeAlias = StartJob | ChangeCommand
