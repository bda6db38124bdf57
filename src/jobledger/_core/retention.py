"""Retention: which ended jobs a purge deletes, and the legal holds that exempt jobs from it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from jobledger._core.errors import InvalidJobDataError
from jobledger._core.jsondoc import DEFAULT_LIMITS, check_name, check_text

if TYPE_CHECKING:
    from jobledger._core.job import Job

__all__ = ["PurgeRule", "check_reason"]


def _aware(_instance: object, _attribute: attrs.Attribute[datetime], value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidJobDataError("finished_before", "", "must be a timezone-aware datetime")


@attrs.frozen(kw_only=True)
class PurgeRule:
    """Which jobs a purge deletes: ended before a cut, optionally of one service, entity, type.

    A job is purged when it has ended (completed, failed or canceled), its
    last change (``updated_at``) is before ``finished_before``, it matches
    every filter given, and it is not on hold.

    Attributes:
        finished_before: The cut: jobs that ended before it go.
        service: Only jobs of this service, or any.
        entity: Only jobs about this entity, or any.
        type: Only jobs of this type, or any.
    """

    finished_before: datetime = attrs.field(validator=_aware)
    service: str | None = None
    entity: str | None = None
    type: str | None = None

    def __attrs_post_init__(self) -> None:
        for field in ("service", "entity", "type"):
            value = getattr(self, field)
            if value is not None:
                check_name(value, field=field, limits=DEFAULT_LIMITS)

    def matches(self, job: Job) -> bool:
        """Whether ``job`` is one to purge (holds aside)."""
        return (
            job.phase.is_terminal
            and job.updated_at < self.finished_before
            and (self.service is None or job.service == self.service)
            and (self.entity is None or job.entity == self.entity)
            and (self.type is None or job.type == self.type)
        )


def check_reason(reason: object) -> str:
    """Check a hold's reason: text of at most 10,000 characters, no NUL or lone surrogate.

    Raises:
        InvalidJobDataError: naming ``reason``.
    """
    return check_text(reason, field="reason", limits=DEFAULT_LIMITS)
