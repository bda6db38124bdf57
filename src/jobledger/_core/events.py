"""Integration events: one per change, published after the change commits.

Other services subscribe to them, filtered by service, entity, type and event
kind (:class:`EventFilter`). Each carries the seed's fields plus an event id,
the time and the job's version, so a subscriber can rebuild a job from its
events alone.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Collection
from datetime import datetime
from typing import TypeAlias

import attrs

from jobledger._core.job import Job, JobUpdate
from jobledger._core.jsondoc import JsonObject, JsonValue, merge_patch

__all__ = [
    "EVENT_TYPES",
    "Admits",
    "EventFilter",
    "JobCanceled",
    "JobChanged",
    "JobCompleted",
    "JobEvent",
    "JobFailed",
    "JobStarted",
    "JobUpdated",
    "changed_job",
    "event_admitted",
    "started_job",
]


@attrs.frozen(kw_only=True)
class _EventBase:
    """What every event says: which event, which job, and the job after it."""

    event_id: str
    job_id: str
    service: str
    entity: str
    type: str
    status: str
    etag: str
    version: int
    at: datetime
    actor: str | None = None


@attrs.frozen(kw_only=True)
class JobStarted(_EventBase):
    """A job was started.

    Attributes:
        event_id: The event's own id.
        job_id: The job.
        service: The job's service.
        entity: The job's entity.
        type: The job's type.
        status: ``started``.
        etag: The job's ETag after the start.
        version: 1.
        at: When the job started.
        actor: Who started the job, or ``None``.
        display_name: The job's display name.
        description: The job's description.
        input: The job's input.
        state: The job's initial state.
    """

    display_name: str
    description: str
    input: JsonValue
    state: JsonObject


@attrs.frozen(kw_only=True)
class _ChangeBase(_EventBase):
    update_id: int
    display_name: str | None
    description: str | None


@attrs.frozen(kw_only=True)
class JobUpdated(_ChangeBase):
    """A job was updated.

    Attributes:
        update_id: The id of the :class:`~jobledger.JobUpdate` this event announces.
        actor: Who made the change, or ``None``.
        status: The job's status after the update.
        state_update: The merge patch applied to the state, or ``None``.
        display_name: The new display name, or ``None`` when unchanged.
        description: The new description, or ``None`` when unchanged.
    """

    state_update: JsonObject | None


@attrs.frozen(kw_only=True)
class JobCompleted(_ChangeBase):
    """A job was completed.

    Attributes:
        update_id: The id of the :class:`~jobledger.JobUpdate` this event announces.
        actor: Who made the change, or ``None``.
        status: ``completed``.
        state_update: The merge patch applied to the state, or ``None``.
    """

    state_update: JsonObject | None


@attrs.frozen(kw_only=True)
class JobFailed(_ChangeBase):
    """A job failed.

    Attributes:
        update_id: The id of the :class:`~jobledger.JobUpdate` this event announces.
        actor: Who made the change, or ``None``.
        status: ``failed``.
        state_update: The merge patch applied to the state, or ``None``.
    """

    state_update: JsonObject | None


@attrs.frozen(kw_only=True)
class JobCanceled(_ChangeBase):
    """A job was canceled.

    Attributes:
        update_id: The id of the :class:`~jobledger.JobUpdate` this event announces.
        actor: Who made the change, or ``None``.
        status: ``canceled``.
    """


#: An event that announces a change after the start (it has an ``update_id``).
JobChanged: TypeAlias = JobUpdated | JobCompleted | JobFailed | JobCanceled
#: Any integration event.
JobEvent: TypeAlias = JobStarted | JobChanged

#: Every event type, in lifecycle order.
EVENT_TYPES: tuple[type[JobEvent], ...] = (
    JobStarted,
    JobUpdated,
    JobCompleted,
    JobFailed,
    JobCanceled,
)


def started_job(event: JobStarted) -> Job:
    """The job as the start ``event`` announces it."""
    return Job(
        id=event.job_id,
        service=event.service,
        entity=event.entity,
        type=event.type,
        display_name=event.display_name,
        description=event.description,
        status=event.status,
        input=event.input,
        state=event.state,
        etag=event.etag,
        version=event.version,
        created_at=event.at,
        updated_at=event.at,
        started_by=event.actor,
    )


def changed_job(job: Job, event: JobChanged | JobUpdate) -> Job:
    """``job`` after the change ``event`` (or its update) announces.

    The change is the one that follows ``job``'s version: replaying a job's
    start and then its updates in order rebuilds it at any version.
    """
    patch = None if isinstance(event, JobCanceled) else event.state_update
    state = job.state if patch is None else merge_patch(job.state, patch)
    assert isinstance(state, JsonObject)  # noqa: S101  (a patch of an object is one)
    return attrs.evolve(
        job,
        status=event.status,
        etag=event.etag,
        version=event.update_id + 1,
        state=state,
        updated_at=event.at,
        display_name=job.display_name if event.display_name is None else event.display_name,
        description=job.description if event.description is None else event.description,
    )


def _names(value: str | Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    names = frozenset(value)
    if not all(isinstance(name, str) for name in names):
        msg = f"filter values must be strings, not {sorted(map(repr, names))}"
        raise TypeError(msg)
    return names


#: What ``EventFilter.events`` holds (named so the field called ``type`` cannot shadow it).
EventType: TypeAlias = type[JobStarted | JobUpdated | JobCompleted | JobFailed | JobCanceled]

#: Who is asked whether an event passes, by its plain fields in this order:
#: kind, job id, service, entity, type, version, ETag (:meth:`EventFilter.admits`).
Admits: TypeAlias = Callable[[EventType, str, str, str, str, int, str], bool]


def event_admitted(event: JobEvent, admits: Admits) -> bool:
    """What ``admits`` says of ``event``'s fields."""
    return admits(
        type(event),
        event.job_id,
        event.service,
        event.entity,
        event.type,
        event.version,
        event.etag,
    )


#: What a filter's ``events`` accepts: an event type, a union of them (such as
#: :data:`JobChanged`), or a collection of event types.
EventKinds: TypeAlias = EventType | types.UnionType | Collection[EventType]


def _kinds(value: EventKinds | None) -> frozenset[EventType] | None:
    if value is None:
        return None
    if isinstance(value, type):
        kinds = frozenset({value})
    elif isinstance(value, types.UnionType):  # JobChanged, say: every type it unites
        kinds = frozenset(typing.get_args(value))
    else:
        kinds = frozenset(value)
    unknown = kinds - set(EVENT_TYPES)
    if unknown:
        names = ", ".join(sorted(getattr(kind, "__name__", repr(kind)) for kind in unknown))
        msg = f"events must be jobledger event types (JobStarted, ...), not {names}"
        raise TypeError(msg)
    return kinds


@attrs.frozen
class EventFilter:
    """Which events a subscriber wants: ``None`` in a field means any.

    Each field takes one value or a collection of values (``events`` also takes
    a union of event types, such as :data:`JobChanged`); an event matches when
    every field that is set contains the event's value.

    >>> from jobledger import EventFilter, JobCompleted
    >>> EventFilter(service="hr", events=JobCompleted).service
    frozenset({'hr'})
    """

    service: frozenset[str] | None = attrs.field(default=None, converter=_names)
    entity: frozenset[str] | None = attrs.field(default=None, converter=_names)
    type: frozenset[str] | None = attrs.field(default=None, converter=_names)
    events: frozenset[EventType] | None = attrs.field(default=None, converter=_kinds)

    @classmethod
    def given(
        cls,
        event_filter: EventFilter | None,
        *,
        service: str | Collection[str] | None = None,
        entity: str | Collection[str] | None = None,
        type: str | Collection[str] | None = None,
        events: EventKinds | None = None,
    ) -> EventFilter:
        """``event_filter``, or one made of the keywords: what a subscriber was given.

        Raises:
            TypeError: both a filter and keywords were given.
        """
        if event_filter is None:
            return cls(service=service, entity=entity, type=type, events=events)
        if any(value is not None for value in (service, entity, type, events)):
            msg = "give either an EventFilter or filter keywords, not both"
            raise TypeError(msg)
        return event_filter

    def matches(self, event: JobEvent) -> bool:
        """Whether ``event`` passes this filter: what :meth:`admits` says of its fields."""
        return event_admitted(event, self.admits)

    def admits(  # noqa: PLR0917  (an event's plain fields, by position: told per change)
        self,
        kind: EventType,
        job_id: str,  # noqa: ARG002  (for subclasses)
        service: str,
        entity: str,
        type: str,
        version: int,  # noqa: ARG002  (for subclasses)
        etag: str,  # noqa: ARG002  (for subclasses)
    ) -> bool:
        """Whether an event of ``kind`` with these fields passes this filter.

        :meth:`matches` asks it of an event's fields; a ledger asks it of a
        change's before it makes the change's event, and makes none that no
        subscription admits. A subclass that filters on more (a job id, say)
        overrides this method, not :meth:`matches`, and must answer for the
        same fields the same way whenever it is asked (or only ever turn from
        admitting to refusing them); it is asked while the change is being
        saved, so it must be quick and issue no command. A subclass that
        overrides only :meth:`matches` still works: its events are all made
        and matched.

        >>> from jobledger import EventFilter, JobCompleted, JobUpdated
        >>> only_ends = EventFilter(service="hr", events=JobCompleted)
        >>> only_ends.admits(JobUpdated, "job-1", "hr", "employee", "sync", 2, "e2")
        False
        """
        return (
            (self.service is None or service in self.service)
            and (self.entity is None or entity in self.entity)
            and (self.type is None or type in self.type)
            and (self.events is None or kind in self.events)
        )
