"""The commands that change jobs, one frozen value per lifecycle action.

Building a command checks and freezes its JSON fields (see
:func:`~jobledger.freeze`); the ledger that handles it checks the rest against
its own limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import attrs

from jobledger._core.jsondoc import JsonObject, JsonValue, empty_object, freeze_for_command

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ANY_ETAG",
    "CancelJob",
    "ChangeCommand",
    "Command",
    "CompleteJob",
    "FailJob",
    "StartJob",
    "UpdateJob",
    "complete_job",
    "update_job",
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


# The positional constructors below: each command's slots, set directly.
# attrs' keyword __init__ sets them through object.__setattr__ after matching
# every keyword; the ledger's own methods build a command per call, so they
# build it with these, which give the very same value (tests pin each field).
_NEW = object.__new__


def _setters(cls: type) -> tuple[Callable[[object, object], None], ...]:
    """The ``__set__`` of each field's slot of ``cls``, in field order."""
    return tuple(cls.__dict__[field.name].__set__ for field in attrs.fields(cls))


(
    _update_job_id,
    _update_etag,
    _update_status,
    _update_display_name,
    _update_description,
    _update_state_update,
    _update_request_id,
    _update_actor,
) = _setters(UpdateJob)


def update_job(  # noqa: PLR0917  (UpdateJob's fields, in order: the ledger's own constructor)
    job_id: str,
    etag: str,
    status: str | None,
    display_name: str | None,
    description: str | None,
    state_update: object,
    request_id: str | None,
    actor: str | None,
) -> UpdateJob:
    """``UpdateJob(...)`` of these fields in field order, ``state_update`` frozen as it freezes."""
    command = _NEW(UpdateJob)
    _update_job_id(command, job_id)
    _update_etag(command, etag)
    _update_status(command, status)
    _update_display_name(command, display_name)
    _update_description(command, description)
    _update_state_update(command, _state_update(state_update))
    _update_request_id(command, request_id)
    _update_actor(command, actor)
    return command


(
    _complete_job_id,
    _complete_etag,
    _complete_display_name,
    _complete_description,
    _complete_state_update,
    _complete_request_id,
    _complete_actor,
) = _setters(CompleteJob)


def complete_job(  # noqa: PLR0917  (CompleteJob's fields, in order: the ledger's own constructor)
    job_id: str,
    etag: str,
    display_name: str | None,
    description: str | None,
    state_update: object,
    request_id: str | None,
    actor: str | None,
) -> CompleteJob:
    """``CompleteJob(...)`` of these fields in field order (see :func:`update_job`)."""
    command = _NEW(CompleteJob)
    _complete_job_id(command, job_id)
    _complete_etag(command, etag)
    _complete_display_name(command, display_name)
    _complete_description(command, description)
    _complete_state_update(command, _state_update(state_update))
    _complete_request_id(command, request_id)
    _complete_actor(command, actor)
    return command
