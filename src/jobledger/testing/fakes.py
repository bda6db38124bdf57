"""Deterministic stand-ins for the clock, the id factory and the event bus.

Give them to :class:`~jobledger.Jobs` and every time, id and event a test sees
is known in advance:

* :class:`ManualClock` stands still until the test moves it (or ticks a fixed
  step per reading, when asked to);
* :class:`SequentialIds` hands out ``id-0001``, ``id-0002``, ...;
* :class:`RecordingPublisher` keeps every event the ledger publishes and
  asserts on them, with a readable account of what was published when an
  assertion fails;
* :class:`LedgerHarness` wires the three to a ``Jobs`` in one call.

The pytest fixtures of :mod:`jobledger.testing.plugin` hand out the same
objects. None of this needs hypothesis.

>>> from jobledger import JobCompleted, JobStarted
>>> from jobledger.testing import LedgerHarness
>>> ledger = LedgerHarness.create()
>>> job = ledger.jobs.start(service="hr", entity="employee", type="sync")
>>> job.id, job.created_at.isoformat()
('id-0001', '2024-01-01T00:00:00+00:00')
>>> _ = ledger.clock.advance(minutes=5)
>>> job = ledger.jobs.complete(job.id, etag=job.etag)
>>> job.updated_at.isoformat()
'2024-01-01T00:05:00+00:00'
>>> _ = ledger.events.assert_exactly(JobStarted, JobCompleted, job_id=job.id)
"""

from __future__ import annotations

import itertools
import threading
import types
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast, get_args, overload

import attrs

from jobledger import DEFAULT_LIMITS, EVENT_TYPES, InMemoryRepository, JobEvent, Jobs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jobledger import Limits, Repository

__all__ = [
    "DEFAULT_START",
    "EventMatch",
    "LedgerHarness",
    "ManualClock",
    "RecordingPublisher",
    "SequentialIds",
]

#: Where a :class:`ManualClock` starts unless told otherwise: 2024-01-01T00:00:00Z.
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)

_NO_TIME = timedelta(0)


def _utc(when: object, what: str) -> datetime:
    if not isinstance(when, datetime):
        msg = f"{what} must be a datetime, not {type(when).__name__}"
        raise TypeError(msg)
    if when.tzinfo is None or when.utcoffset() is None:
        msg = f"{what} must be an aware datetime (with a tzinfo, such as UTC), not {when!r}"
        raise ValueError(msg)
    return when.astimezone(UTC)


class ManualClock:
    """A clock for :class:`~jobledger.Jobs` that moves only when the test moves it.

    Call it to read the time: an aware UTC :class:`~datetime.datetime`. It
    starts at ``start`` (:data:`DEFAULT_START`, 2024-01-01T00:00:00Z, unless
    given) and stays there until :meth:`advance` or :meth:`set` moves it. With
    a ``tick``, every reading returns the current time and then moves the
    clock forward by ``tick``, so each change a ledger records gets its own
    time. It is safe to read and move from several threads.

    Args:
        start: The first time it reads; converted to UTC. Must be aware.
        tick: How far each reading moves the clock forward; no movement by
            default. Must not be negative.

    Raises:
        TypeError: ``start`` is not a datetime or ``tick`` not a timedelta.
        ValueError: ``start`` is naive, or ``tick`` is negative.

    >>> from datetime import timedelta
    >>> clock = ManualClock()
    >>> clock().isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> clock.advance(hours=1, minutes=30).isoformat()
    '2024-01-01T01:30:00+00:00'
    >>> ticking = ManualClock(tick=timedelta(seconds=1))
    >>> [ticking().second for _ in range(3)], ticking.now.second
    ([0, 1, 2], 3)
    """

    def __init__(self, start: datetime = DEFAULT_START, *, tick: timedelta = _NO_TIME) -> None:
        """Set the clock at ``start``; see the class for the arguments."""
        if not isinstance(cast("object", tick), timedelta):
            msg = f"tick must be a timedelta, not {type(tick).__name__}"
            raise TypeError(msg)
        if tick < _NO_TIME:
            msg = f"tick must not be negative, not {tick!r}"
            raise ValueError(msg)
        self._now = _utc(start, "start")
        self._tick = tick
        self._readings = 0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """Return the current time, then move on by ``tick`` (if any)."""
        with self._lock:
            now = self._now
            self._now = now + self._tick
            self._readings += 1
            return now

    @property
    def now(self) -> datetime:
        """The time the next reading returns; looking does not move the clock."""
        with self._lock:
            return self._now

    @property
    def tick(self) -> timedelta:
        """How far each reading moves the clock forward (zero: it does not)."""
        return self._tick

    @property
    def readings(self) -> int:
        """How many times the clock has been read (called) so far."""
        with self._lock:
            return self._readings

    def advance(
        self,
        delta: timedelta | None = None,
        /,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        milliseconds: float = 0,
        microseconds: float = 0,
    ) -> datetime:
        """Move the clock forward and return the new time.

        Give either a :class:`~datetime.timedelta` or the keywords that
        :class:`~datetime.timedelta` takes (``clock.advance(seconds=30)``).

        Raises:
            TypeError: both a timedelta and keywords are given, or ``delta`` is
                not a timedelta.
            ValueError: the step is negative: a clock only moves forward here;
                use :meth:`set` to put it back.
        """
        step = timedelta(
            weeks=weeks,
            days=days,
            hours=hours,
            minutes=minutes,
            seconds=seconds,
            milliseconds=milliseconds,
            microseconds=microseconds,
        )
        if delta is not None:
            if not isinstance(cast("object", delta), timedelta):
                msg = f"advance() takes a timedelta, not {type(delta).__name__}"
                raise TypeError(msg)
            if step:
                msg = "give advance() either a timedelta or keywords, not both"
                raise TypeError(msg)
            step = delta
        if step < _NO_TIME:
            msg = f"advance() moves the clock forward; use set() to go back (got {step!r})"
            raise ValueError(msg)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Put the clock at ``when`` (converted to UTC), forward or back.

        Raises:
            TypeError: ``when`` is not a datetime.
            ValueError: ``when`` is naive.
        """
        when = _utc(when, "when")
        with self._lock:
            self._now = when

    def __repr__(self) -> str:
        """Show the time the clock is at, and its tick if it has one."""
        tick = f", tick={self._tick!r}" if self._tick else ""
        return f"<ManualClock at {self.now.isoformat()}{tick}>"


class SequentialIds:
    """An id factory that hands out ``<prefix>-0001``, ``<prefix>-0002``, ...

    Give it to :class:`~jobledger.Jobs` as ``id_factory`` and every job id,
    ETag and event id is predictable: a start takes three ids (the job id
    unless given, the ETag, the event id) and every change two (the ETag, the
    event id). Numbers are zero-padded to ``width`` digits, so ids sort as text
    up to ``10**width - 1``; they go on with more digits after that. It is safe
    to call from several threads: no id is ever handed out twice.

    Args:
        prefix: What every id starts with; ``"id"`` by default. With an empty
            prefix the ids are the bare numbers.
        width: The number of digits to pad to; 4 by default.

    Raises:
        TypeError: ``prefix`` is not a string or ``width`` not an integer.
        ValueError: ``width`` is less than 1.

    >>> ids = SequentialIds("job")
    >>> ids(), ids(), ids.count
    ('job-0001', 'job-0002', 2)
    """

    def __init__(self, prefix: str = "id", *, width: int = 4) -> None:
        """Start before the first id; see the class for the arguments."""
        if not isinstance(cast("object", prefix), str):
            msg = f"prefix must be a string, not {type(prefix).__name__}"
            raise TypeError(msg)
        if not isinstance(cast("object", width), int) or isinstance(width, bool):
            msg = f"width must be an integer, not {type(width).__name__}"
            raise TypeError(msg)
        if width < 1:
            msg = f"width must be at least 1, not {width}"
            raise ValueError(msg)
        self._prefix = prefix
        self._start = f"{prefix}-" if prefix else ""
        self._width = width
        self._numbers = itertools.count(1)
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        """Return the next id."""
        with self._lock:
            number = next(self._numbers)
            self._count = number
        return f"{self._start}{number:0{self._width}d}"

    @property
    def count(self) -> int:
        """How many ids have been handed out so far."""
        with self._lock:
            return self._count

    def __repr__(self) -> str:
        """Show the prefix and how many ids were handed out."""
        return f"<SequentialIds {self._prefix!r} after {self.count}>"


_EventT = TypeVar("_EventT", bound=JobEvent)

# What the assertions take for each expected event: an event type (JobStarted), a
# union of them (JobChanged), or a predicate on events (EventMatch or any callable).
_Expected: TypeAlias = "type[JobEvent] | types.UnionType | Callable[[JobEvent], bool]"


def _members(kind: object) -> tuple[object, ...]:
    return get_args(kind) if isinstance(kind, types.UnionType) else (kind,)


def _kind_names(kind: object) -> list[str]:
    return [getattr(member, "__name__", repr(member)) for member in _members(kind)]


def _check_kind(kind: object) -> None:
    members = _members(kind)
    unknown = [member for member in members if member not in EVENT_TYPES]
    if unknown:
        names = ", ".join(getattr(member, "__name__", repr(member)) for member in unknown)
        msg = f"expected jobledger event types (JobStarted, JobUpdated, ...), not {names}"
        raise TypeError(msg)


@attrs.frozen(init=False, repr=False, eq=False)
class EventMatch:
    """A predicate on events: of a kind (optional), with some fields equal to given values.

    Use it with :meth:`RecordingPublisher.assert_published` and
    :meth:`RecordingPublisher.assert_exactly` where the kind alone says too
    little; failure messages show it as written. JSON fields compare with plain
    dicts and lists.

    Args:
        kind: The event type the event must be (or a union of them); any kind
            when omitted.
        **fields: Attribute names of the event and the values they must equal.

    Attributes:
        kind: The event type, or ``None`` for any.
        fields: The ``(name, value)`` pairs that must be equal, in the given order.

    Raises:
        TypeError: ``kind`` is not a jobledger event type, or a field is not an
            attribute of ``kind``.

    >>> from jobledger import JobUpdated
    >>> exporting = EventMatch(JobUpdated, status="exporting", state_update={"done": 10})
    >>> exporting
    EventMatch(JobUpdated, status='exporting', state_update={'done': 10})
    """

    kind: type[JobEvent] | types.UnionType | None
    fields: tuple[tuple[str, object], ...]

    def __init__(
        self, kind: type[JobEvent] | types.UnionType | None = None, /, **fields: object
    ) -> None:
        """Check ``kind`` and ``fields``; see the class for the arguments."""
        if kind is not None:
            _check_kind(kind)
            members: tuple[type[JobEvent], ...] = get_args(kind) or (kind,)
            for name in fields:
                missing = [m.__name__ for m in members if name not in attrs.fields_dict(m)]
                if missing:
                    msg = f"{', '.join(missing)} has no field {name!r}"
                    raise TypeError(msg)
        self.__attrs_init__(kind, tuple(fields.items()))

    def __call__(self, event: JobEvent) -> bool:
        """Return whether ``event`` is of the kind and has every field equal."""
        if self.kind is not None and not isinstance(event, self.kind):
            return False
        missing = object()
        return all(getattr(event, name, missing) == value for name, value in self.fields)

    def __repr__(self) -> str:
        """Show the match as the call that makes it."""
        parts = [" | ".join(_kind_names(self.kind))] if self.kind is not None else []
        parts += [f"{name}={value!r}" for name, value in self.fields]
        return f"EventMatch({', '.join(parts)})"


def _matcher(expected: object) -> Callable[[JobEvent], bool]:
    if isinstance(expected, (type, types.UnionType)):
        _check_kind(expected)
        kind = expected
        return lambda event: isinstance(event, kind)
    if callable(expected):
        return cast("Callable[[JobEvent], bool]", expected)
    msg = (
        "expected an event type (JobStarted, ...) or a predicate on events, "
        f"not {type(expected).__name__}"
    )
    raise TypeError(msg)


def _describe_expected(expected: object) -> str:
    if isinstance(expected, (type, types.UnionType)):
        return " | ".join(_kind_names(expected))
    if isinstance(expected, EventMatch):
        return repr(expected)
    name = getattr(expected, "__qualname__", None) or repr(expected)
    code = getattr(expected, "__code__", None)
    if code is not None:
        where = PurePath(code.co_filename).name
        return f"{name.rsplit('.', 1)[-1]} ({where}:{code.co_firstlineno})"
    return name


_MAX_VALUE_LENGTH = 60


def _short(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_LENGTH:
        text = text[: _MAX_VALUE_LENGTH - 3] + "..."
    return text


def _describe_event(event: JobEvent) -> str:
    parts = [f"job_id={event.job_id!r}", f"version={event.version}", f"status={event.status!r}"]
    state_update = getattr(event, "state_update", None)
    if state_update is not None:
        parts.append(f"state_update={_short(state_update)}")
    return f"{type(event).__name__}({', '.join(parts)})"


def _scope(job_id: str | None) -> str:
    return "" if job_id is None else f" for job {job_id!r}"


def _listing(events: Sequence[JobEvent], job_id: str | None) -> str:
    if not events:
        return f"published{_scope(job_id)}: nothing"
    lines = [f"published{_scope(job_id)} ({len(events)}):"]
    lines += [f"  {number:>3}  {_describe_event(event)}" for number, event in enumerate(events, 1)]
    return "\n".join(lines)


def _subsequence_report(
    expected: Sequence[object],
    matchers: Sequence[Callable[[JobEvent], bool]],
    *,
    failed: int,
    found_at: Sequence[int],
    published: Sequence[JobEvent],
    job_id: str | None,
) -> str:
    lines = [f"expected events were not published in this order{_scope(job_id)}:"]
    lines += [
        f"  found    {_describe_expected(entry)}: #{at + 1}"
        for entry, at in zip(expected, found_at, strict=False)
    ]
    position = found_at[-1] + 1 if found_at else 0
    where = f"after #{position}" if position else "published"
    earlier = [f"#{at + 1}" for at in range(position) if matchers[failed](published[at])]
    hint = f" ({', '.join(earlier)} did, earlier)" if earlier else ""
    lines.append(
        f"  missing  {_describe_expected(expected[failed])}: nothing {where} matches it{hint}"
    )
    lines += [f"  (after)  {_describe_expected(entry)}" for entry in expected[failed + 1 :]]
    lines.append(_listing(published, job_id))
    return "\n".join(lines)


def _side_by_side(
    expected: Sequence[object],
    matchers: Sequence[Callable[[JobEvent], bool]],
    published: Sequence[JobEvent],
    *,
    job_id: str | None,
) -> str:
    left = [_describe_expected(entry) for entry in expected]
    width = max([len("expected"), *map(len, left)])
    rows = [f"    {'#':>3}  {'expected':<{width}}  published"]
    for index in range(max(len(expected), len(published))):
        event = published[index] if index < len(published) else None
        wanted = left[index] if index < len(left) else "(nothing)"
        got = _describe_event(event) if event is not None else "(nothing)"
        differs = index >= len(matchers) or event is None or not matchers[index](event)
        mark = ">" if differs else " "
        rows.append(f"  {mark} {index + 1:>3}  {wanted:<{width}}  {got}")
    header = (
        f"expected exactly {len(expected)} event(s){_scope(job_id)}, "
        f"published {len(published)}; differences marked with >:"
    )
    return "\n".join([header, *rows])


class RecordingPublisher:
    """An :class:`~jobledger.EventPublisher` that keeps every event, for tests to check.

    Pass it to :class:`~jobledger.Jobs` in ``publishers`` and it records every
    event the ledger commits, in the order it receives them (commit order for
    each job). It is safe to publish to and read from several threads.

    The assertion methods raise :class:`AssertionError` with the expected
    events and every published one, numbered, so a failure says what happened
    instead. Each takes the expected events as event types (``JobStarted``),
    unions of them (``JobChanged``) or predicates (:class:`EventMatch`, or any
    callable that takes an event and returns a bool), and an optional
    ``job_id`` to look at one job's events only.

    >>> from jobledger import JobCompleted, JobStarted, JobUpdated, Jobs
    >>> events = RecordingPublisher()
    >>> jobs = Jobs(publishers=[events])
    >>> job = jobs.start(service="hr", entity="employee", type="sync")
    >>> job = jobs.update(job.id, etag=job.etag, status="exporting")
    >>> [type(event).__name__ for event in events.events()]
    ['JobStarted', 'JobUpdated']
    >>> events.assert_published(JobCompleted)
    Traceback (most recent call last):
      ...
    AssertionError: expected events were not published in this order:
      missing  JobCompleted: nothing published matches it
    published (2):
        1  JobStarted(job_id=..., version=1, status='started')
        2  JobUpdated(job_id=..., version=2, status='exporting')
    """

    def __init__(self) -> None:
        """Start with no events recorded."""
        self._lock = threading.Lock()
        self._events: list[JobEvent] = []

    def publish(self, event: JobEvent) -> None:
        """Record ``event`` (the :class:`~jobledger.EventPublisher` method)."""
        with self._lock:
            self._events.append(event)

    @overload
    def events(self, kind: None = None, *, job_id: str | None = None) -> list[JobEvent]: ...
    @overload
    def events(self, kind: type[_EventT], *, job_id: str | None = None) -> list[_EventT]: ...
    @overload
    def events(self, kind: types.UnionType, *, job_id: str | None = None) -> list[JobEvent]: ...
    def events(self, kind: object = None, *, job_id: str | None = None) -> list[Any]:
        """The recorded events of ``kind`` (any when ``None``) for ``job_id`` (any when ``None``).

        Returns a new list, in the order the events were published.

        Raises:
            TypeError: ``kind`` is not a jobledger event type.
        """
        if kind is not None:
            _check_kind(kind)
        with self._lock:
            recorded = list(self._events)
        return [
            event
            for event in recorded
            if (kind is None or isinstance(event, cast("type | types.UnionType", kind)))
            and (job_id is None or event.job_id == job_id)
        ]

    def clear(self) -> None:
        """Forget every event recorded so far."""
        with self._lock:
            self._events.clear()

    def assert_published(self, *expected: _Expected, job_id: str | None = None) -> list[JobEvent]:
        """Assert that events matching ``expected`` were published, in this order.

        Other events may come before, between and after them: this checks that
        the expected ones form a subsequence of what was published.

        Returns:
            The published events that matched, one per expected entry.

        Raises:
            AssertionError: no such subsequence was published.
            TypeError: an expected entry is neither an event type nor callable.
        """
        matchers = [_matcher(entry) for entry in expected]
        published = self.events(job_id=job_id)
        found_at: list[int] = []
        for index, matches in enumerate(matchers):
            start = found_at[-1] + 1 if found_at else 0
            found = next(
                (at for at in range(start, len(published)) if matches(published[at])), None
            )
            if found is None:
                raise AssertionError(
                    _subsequence_report(
                        expected,
                        matchers,
                        failed=index,
                        found_at=found_at,
                        published=published,
                        job_id=job_id,
                    )
                )
            found_at.append(found)
        return [published[at] for at in found_at]

    def assert_exactly(self, *expected: _Expected, job_id: str | None = None) -> list[JobEvent]:
        """Assert that exactly these events were published: no more, no fewer, in this order.

        Returns:
            The published events.

        Raises:
            AssertionError: the published events differ; the message lists
                expected and published side by side and marks each difference
                with ``>``.
            TypeError: an expected entry is neither an event type nor callable.
        """
        matchers = [_matcher(entry) for entry in expected]
        published = self.events(job_id=job_id)
        same = len(matchers) == len(published) and all(
            matches(event) for matches, event in zip(matchers, published, strict=True)
        )
        if not same:
            raise AssertionError(_side_by_side(expected, matchers, published, job_id=job_id))
        return published

    def assert_nothing_published(self, *, job_id: str | None = None) -> None:
        """Assert that no event was published (for ``job_id``, when given).

        Raises:
            AssertionError: some event was; the message lists them.
        """
        published = self.events(job_id=job_id)
        if published:
            message = f"expected no events{_scope(job_id)}\n{_listing(published, job_id)}"
            raise AssertionError(message)

    def __repr__(self) -> str:
        """Show how many events are recorded."""
        with self._lock:
            count = len(self._events)
        return f"<RecordingPublisher with {count} event(s)>"


@attrs.frozen
class LedgerHarness:
    """A ledger wired to a manual clock, sequential ids and a recording publisher.

    Make one with :meth:`create`; it is what the pytest fixtures of
    :mod:`jobledger.testing.plugin` give, in one object, for tests that do not
    use pytest fixtures (unittest, or a hypothesis test that needs a fresh
    ledger for every example).

    Attributes:
        jobs: The ledger; it reads ``clock``, takes ids from ``ids`` and
            publishes to ``events``.
        clock: Its clock.
        ids: Its id factory.
        events: The publisher that records every event ``jobs`` commits.

    >>> ledger = LedgerHarness.create(id_prefix="hr")
    >>> ledger.jobs.start(service="hr", entity="employee", type="sync").id
    'hr-0001'
    """

    jobs: Jobs
    clock: ManualClock
    ids: SequentialIds
    events: RecordingPublisher

    @classmethod
    def create(
        cls,
        repository: Repository | None = None,
        *,
        start: datetime = DEFAULT_START,
        tick: timedelta = _NO_TIME,
        id_prefix: str = "id",
        limits: Limits = DEFAULT_LIMITS,
    ) -> LedgerHarness:
        """Make a fresh ledger on ``repository`` (a new in-memory one when ``None``).

        Args:
            repository: Where the jobs are kept; a new
                :class:`~jobledger.InMemoryRepository` when ``None``.
            start: Where the clock starts (see :class:`ManualClock`).
            tick: How far each reading moves the clock (see :class:`ManualClock`).
            id_prefix: The prefix of every id (see :class:`SequentialIds`).
            limits: The data limits the ledger enforces.
        """
        clock = ManualClock(start, tick=tick)
        ids = SequentialIds(id_prefix)
        events = RecordingPublisher()
        jobs = Jobs(
            InMemoryRepository() if repository is None else repository,
            publishers=[events],
            clock=clock,
            id_factory=ids,
            limits=limits,
            delivery="inline",
        )
        return cls(jobs=jobs, clock=clock, ids=ids, events=events)
