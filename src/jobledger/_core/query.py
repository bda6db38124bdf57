"""Listing jobs: a :class:`JobQuery` and the :class:`JobPage` that answers it.

Jobs are listed newest first (by ``created_at``, then by id), a page at a
time. A page's ``next_cursor`` is a keyset cursor: pass it back in the next
query to get the page after it, however many jobs were started meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Sequence
from datetime import datetime

import attrs

from jobledger._core.errors import InvalidJobDataError
from jobledger._core.job import Job, JobPhase
from jobledger._core.jsondoc import is_storable_key

__all__ = ["MAX_PAGE_SIZE", "Cursor", "GetJobById", "JobPage", "JobQuery"]

#: The most jobs one page may hold.
MAX_PAGE_SIZE = 1000

# A cursor holds a timestamp and a job id (at most a few hundred characters).
_MAX_CURSOR_LENGTH = 2048


def _names(value: str | Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _storable(
    _instance: object,
    attribute: attrs.Attribute[frozenset[str] | None],
    value: frozenset[object] | None,
) -> None:
    """Refuse a filter value that no stored name could be, so every backend answers alike."""
    for name in value or ():
        if not isinstance(name, str):
            raise InvalidJobDataError(
                attribute.name, "", f"must be a string, not {type(name).__name__}"
            )
        if not is_storable_key(name):
            raise InvalidJobDataError(
                attribute.name, "", "must not contain a NUL character or a lone surrogate"
            )


def _phases(value: str | Collection[str] | None) -> frozenset[JobPhase] | None:
    names = _names(value)
    if names is None:
        return None
    try:
        return frozenset(JobPhase(name) for name in names)
    except ValueError:
        known = ", ".join(phase.value for phase in JobPhase)
        raise InvalidJobDataError("phase", "", f"must be one of {known}") from None


def _aware(_instance: object, attribute: attrs.Attribute[datetime | None], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidJobDataError(attribute.name, "", "must be a timezone-aware datetime")


def _page_size(_instance: object, _attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidJobDataError("limit", "", f"must be an integer from 1 to {MAX_PAGE_SIZE}")


@attrs.frozen
class Cursor:
    """Where a page ended: the last job's creation time and id.

    Attributes:
        created_at: The ``created_at`` of the last job on the page.
        job_id: The id of the last job on the page.
    """

    created_at: datetime
    job_id: str

    def encode(self) -> str:
        """The cursor as an opaque, URL-safe string."""
        raw = json.dumps([self.created_at.isoformat(), self.job_id], ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Read a cursor made by :meth:`encode`.

        Raises:
            InvalidJobDataError: ``text`` is not such a cursor.
        """
        if not isinstance(text, str) or len(text) > _MAX_CURSOR_LENGTH:
            raise InvalidJobDataError("cursor", "", "is not a cursor this ledger made")
        try:
            created_at, job_id = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
            when = datetime.fromisoformat(created_at)
        except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
            raise InvalidJobDataError("cursor", "", "is not a cursor this ledger made") from None
        if when.tzinfo is None or not is_storable_key(job_id):
            raise InvalidJobDataError("cursor", "", "is not a cursor this ledger made")
        return cls(when, job_id)

    def follows(self, job: Job) -> bool:
        """Whether ``job`` comes after this cursor in newest-first order."""
        return (job.created_at, job.id) < (self.created_at, self.job_id)


@attrs.frozen(kw_only=True)
class JobQuery:
    """Which jobs to list. Each filter takes one value or a collection; ``None`` means any.

    Attributes:
        service: Jobs of these services.
        entity: Jobs about these entities.
        type: Jobs of these types.
        status: Jobs with these statuses.
        phase: Jobs in these phases (``"active"``, ``"completed"``, ...).
        created_after: Jobs created at or after this time.
        created_before: Jobs created strictly before this time.
        limit: The most jobs on one page, 1 to 1000 (default 100).
        cursor: ``next_cursor`` of the previous page, to get the page after it.
    """

    service: frozenset[str] | None = attrs.field(
        default=None, converter=_names, validator=_storable
    )
    entity: frozenset[str] | None = attrs.field(default=None, converter=_names, validator=_storable)
    type: frozenset[str] | None = attrs.field(default=None, converter=_names, validator=_storable)
    status: frozenset[str] | None = attrs.field(default=None, converter=_names, validator=_storable)
    phase: frozenset[JobPhase] | None = attrs.field(default=None, converter=_phases)
    created_after: datetime | None = attrs.field(default=None, validator=_aware)
    created_before: datetime | None = attrs.field(default=None, validator=_aware)
    limit: int = attrs.field(default=100, validator=_page_size)
    cursor: str | None = None

    @classmethod
    def given(cls, query: JobQuery | None, /, **filters: object) -> JobQuery:
        """``query``, or one made of the ``filters`` keywords: what a listing was given.

        Raises:
            TypeError: both a query and keywords were given.
            InvalidJobDataError: a filter or the cursor is not valid.
        """
        if query is None:
            return cls(**filters)  # type: ignore[arg-type]
        if filters:
            msg = "give either a JobQuery or filter keywords, not both"
            raise TypeError(msg)
        return query

    def after(self) -> Cursor | None:
        """The decoded cursor, or ``None`` for the first page.

        Raises:
            InvalidJobDataError: the cursor is not one this ledger made.
        """
        return None if self.cursor is None else Cursor.decode(self.cursor)

    def matches(self, job: Job) -> bool:
        """Whether ``job`` passes every filter (the cursor and limit aside)."""
        return (
            (self.service is None or job.service in self.service)
            and (self.entity is None or job.entity in self.entity)
            and (self.type is None or job.type in self.type)
            and (self.status is None or job.status in self.status)
            and (self.phase is None or job.phase in self.phase)
            and (self.created_after is None or job.created_at >= self.created_after)
            and (self.created_before is None or job.created_at < self.created_before)
        )


@attrs.frozen
class JobPage:
    """One page of a listing, newest job first.

    Attributes:
        jobs: The jobs on this page.
        next_cursor: Pass it as ``cursor`` to get the next page; ``None`` on the
            last page.
    """

    jobs: Sequence[Job]
    next_cursor: str | None

    @classmethod
    def of(cls, jobs: Sequence[Job], *, more: bool) -> JobPage:
        """A page of ``jobs``; with a cursor after the last one when ``more`` follow."""
        if not more or not jobs:
            return cls(tuple(jobs), None)
        last = jobs[-1]
        return cls(tuple(jobs), Cursor(last.created_at, last.id).encode())


@attrs.frozen(kw_only=True)
class GetJobById:
    """The seed's GetJobById query, as a value (its wire form is ``MessageType: GetJobById``).

    Answer it with :meth:`jobledger.Jobs.get` (``jobs.get(query.job_id)``).

    Attributes:
        job_id: The id of the job asked for.
    """

    job_id: str
