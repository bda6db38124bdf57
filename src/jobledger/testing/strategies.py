"""Hypothesis strategies for every value jobledger accepts, and some it must refuse.

Use them in your own property tests::

    from hypothesis import given
    from collections.abc import Iterable

    from jobledger import Jobs
    from jobledger.testing.runs import OutcomeKind
    from jobledger.testing import strategies as jst


    @given(jst.start_commands())
    def test_start_keeps_the_input(command):
        assert command.input == Jobs().handle(command).input

JSON strategies (:func:`json_values`, :func:`json_objects`, :func:`merge_patches`)
make plain ``dict``/``list``/scalar values, the way callers pass them in; value
strategies (:func:`jobs`, :func:`job_updates`, :func:`events`) make values whose
JSON is already frozen, the way the ledger returns them. :func:`hostile_json` makes
values the ledger must reject. Sizes are small by default so that tests stay fast.

Command strategies take each identifying field either as a fixed value or as a
strategy, so a test can aim commands at a job it knows::

    jst.change_commands(job_id=job.id, etag=job.etag)

:func:`job_definitions` makes valid runner definitions whose tasks run a
:class:`~jobledger.testing.runs.ScriptedTasks`, so a property test knows what
every task does on every launch (see its docstring).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hypothesis import strategies as st

from jobledger import (
    ANY_ETAG,
    CancelJob,
    ChangeCommand,
    Command,
    CompleteJob,
    FailJob,
    Job,
    JobCanceled,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobStarted,
    JobStatus,
    JobUpdate,
    JobUpdated,
    JsonObject,
    StartJob,
    UpdateJob,
    UpdateType,
    freeze,
)
from jobledger._core.jsondoc import MAX_SAFE_INTEGER
from jobledger.runner import AGENT, SERVER, JobDefinition
from jobledger.testing.runs import ScriptedOutcome, ScriptedTasks

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hypothesis.strategies import DrawFn, SearchStrategy

    from jobledger import Jobs
    from jobledger.testing.runs import OutcomeKind

__all__ = [
    "actors",
    "cancel_commands",
    "change_commands",
    "command_sequences",
    "commands",
    "complete_commands",
    "custom_statuses",
    "datetimes",
    "etags",
    "events",
    "fail_commands",
    "hostile_json",
    "ids",
    "job_definitions",
    "job_updates",
    "jobs",
    "json_objects",
    "json_values",
    "merge_patches",
    "names",
    "start_commands",
    "texts",
    "update_commands",
]

_T = TypeVar("_T")
_C = TypeVar("_C", UpdateJob, CompleteJob, FailJob, CancelJob)

#: Names that storage adapters have been known to mangle: quotes, statement
#: separators, comment markers, wildcards, escapes, non-ASCII, the longest name.
_TRICKY_NAMES = (
    "hr",
    "employee",
    "sync",
    "'",
    '"',
    "O'Brien",
    'say "hi"',
    "x'; DROP TABLE jobs; --",
    "-- comment",
    "/* c */",
    "a;b",
    "%_*?",
    "back\\slash",
    "a b",
    "é",
    "日本語",
    "emoji \U0001f600",
    "\u0130stanbul",
    "x" * 200,
    "é" * 200,
)

# What a JSON string may hold: any character UTF-8 can encode (so no lone
# surrogate) except NUL.
_JSON_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")

# What a name may hold: ``str.isprintable`` characters, which excludes control,
# format, private-use, unassigned and separator characters except the space.
_NAME_CHARACTERS = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
    include_characters=" ",
)


def names() -> SearchStrategy[str]:
    """Valid short identifying strings: a service, entity, type, status or id.

    Non-empty, printable, at most 200 characters (the default
    ``Limits.max_name_length``), no NUL and no lone surrogate; sometimes quotes,
    semicolons, ``--`` comment markers, non-ASCII or exactly 200 characters,
    which a storage adapter must keep as they are.
    """
    return st.one_of(
        st.sampled_from(_TRICKY_NAMES),
        st.text(_NAME_CHARACTERS, min_size=1, max_size=12).filter(str.isprintable),
    )


def actors() -> SearchStrategy[str | None]:
    """Who acts in a command: ``None`` (no one named) or a valid name, no blanks around it."""
    return st.one_of(
        st.none(),
        st.sampled_from(("alice", "hr-sync-service")),
        names().filter(lambda name: name == name.strip()),
    )


def ids() -> SearchStrategy[str]:
    """Valid job ids and request ids: UUID strings, and sometimes any :func:`names`."""
    return st.one_of(st.uuids().map(str), names())


def etags() -> SearchStrategy[str]:
    """ETags: UUID strings, and sometimes any :func:`names` or :data:`~jobledger.ANY_ETAG`."""
    return st.one_of(st.uuids().map(str), names(), st.just(ANY_ETAG))


def texts() -> SearchStrategy[str]:
    """Valid display names and descriptions: any short text without NUL or lone surrogates.

    Unlike names, texts may be empty and may hold control characters such as
    newlines and tabs.
    """
    return st.one_of(
        st.sampled_from(("", "Nightly HR sync", "line one\nline two\ttab", *_TRICKY_NAMES)),
        st.text(_JSON_CHARACTERS, max_size=30),
    )


def custom_statuses() -> SearchStrategy[str]:
    """Statuses an update may set: any valid name but ``completed``, ``failed``, ``canceled``."""
    terminal = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}
    return st.one_of(
        st.sampled_from(("started", "exporting", "blocked", "waiting for approval")),
        names().filter(lambda status: status not in terminal),
    )


def datetimes() -> SearchStrategy[datetime]:
    """Timezone-aware UTC datetimes between the years 2000 and 2100, with microseconds."""
    return st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001  (hypothesis bounds must be naive)
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )


def _json_keys() -> SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(("done", "total", "", "a/b", "m~n", "'; --", "é")),
        st.text(_JSON_CHARACTERS, max_size=8),
    )


def _json_scalars() -> SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(_JSON_CHARACTERS, max_size=12),
    )


def json_values(*, max_leaves: int = 10) -> SearchStrategy[Any]:
    """Any JSON value the ledger accepts, as plain Python values.

    ``None``, booleans, integers within +-(2**53-1), finite floats, strings
    without NUL or lone surrogates, lists, and dicts with string keys, nested a
    little, with at most ``max_leaves`` scalars in all.

    Args:
        max_leaves: The most scalar values in one document.
    """
    return st.recursive(
        _json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(_json_keys(), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def json_objects(*, max_leaves: int = 10) -> SearchStrategy[dict[str, Any]]:
    """JSON objects the ledger accepts, as plain dicts: what a job's ``state`` must be.

    Args:
        max_leaves: Roughly the most scalar values in one object.
    """
    return st.dictionaries(
        _json_keys(), json_values(max_leaves=max(1, max_leaves // 4)), max_size=4
    )


def merge_patches(*, max_leaves: int = 10) -> SearchStrategy[dict[str, Any]]:
    """RFC 7396 merge patches, as plain dicts: a ``state_update``.

    Members may be ``None`` (delete the member), any JSON value (replace it), or
    a nested patch (patch the member).

    Args:
        max_leaves: Roughly the most values in one patch.
    """
    member = st.recursive(
        st.one_of(st.none(), json_values(max_leaves=2)),
        lambda children: st.dictionaries(_json_keys(), children, max_size=3),
        max_leaves=max(1, max_leaves // 4),
    )
    return st.dictionaries(_json_keys(), member, max_size=4)


def _frozen_object(
    strategy: SearchStrategy[dict[str, Any]], field: str
) -> SearchStrategy[JsonObject]:
    def frozen(value: dict[str, Any]) -> JsonObject:
        # A dict always freezes to a JsonObject.
        return cast("JsonObject", freeze(value, field=field))

    return strategy.map(frozen)


# Strategies for the hostile leaves, each a value that freeze must refuse.
_HOSTILE_LEAVES: SearchStrategy[Any] = st.one_of(
    st.sampled_from((math.nan, math.inf, -math.inf)),
    st.integers(min_value=MAX_SAFE_INTEGER + 1, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-MAX_SAFE_INTEGER - 1),
    st.sampled_from(("\ud800", "a\udfffb", "nul\x00byte", "\x00")),
    st.sampled_from(({"\ud83d": 1}, {"k\x00": 1}, {1: "x"}, {None: 1}, {(1, 2): 1})),
    st.sampled_from(({1, 2}, frozenset(), b"bytes", bytearray(b"x"), 1j, object)),
)


def hostile_json() -> SearchStrategy[Any]:
    """Values the ledger must refuse with :class:`~jobledger.InvalidJobDataError`.

    One bad thing (NaN or an infinity, an integer beyond +-(2**53-1), a string
    or key with a lone surrogate or NUL, a non-string key, a set, bytes or
    another type JSON has not) at the top or buried in valid lists and objects.
    """

    @st.composite
    def buried(draw: DrawFn) -> Any:  # noqa: ANN401  (any plain Python value)
        value = draw(_HOSTILE_LEAVES)
        for _ in range(draw(_BURY_DEPTHS)):
            if draw(st.booleans()):
                before = draw(_SMALL_ARRAYS)
                value = [*before, value]
            else:
                members = draw(_SMALL_OBJECTS)
                members[draw(_JSON_KEYS)] = value
                value = members
        return value

    return buried()


def _fixed_or(value: _T | SearchStrategy[_T]) -> SearchStrategy[_T]:
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


# Built once: composite strategies draw from these many times per example.
_IDS = ids()
_ETAGS = etags()
_NAMES = names()
_TEXTS = texts()
_STATUSES = custom_statuses()
_ANY_STATUSES = st.one_of(_STATUSES, st.sampled_from([status.value for status in JobStatus]))
_DATETIMES = datetimes()
_LATER = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=366))
_VERSIONS = st.integers(min_value=1, max_value=1_000)
_UPDATE_TYPES = st.sampled_from(UpdateType)
_OPTIONAL_IDS = st.one_of(st.none(), _IDS)
_ACTORS = actors()
_OPTIONAL_TEXTS = st.one_of(st.none(), _TEXTS)
_INPUTS = json_values().map(lambda value: freeze(value, field="input"))
_STATES = _frozen_object(json_objects(), "state")
_OPTIONAL_PATCHES = st.one_of(st.none(), _frozen_object(merge_patches(), "state_update"))
_JSON_KEYS = _json_keys()
_SMALL_ARRAYS = st.lists(json_values(max_leaves=2), max_size=2)
_SMALL_OBJECTS = st.dictionaries(_JSON_KEYS, json_values(max_leaves=2), max_size=2)
_BURY_DEPTHS = st.integers(min_value=0, max_value=3)


def start_commands(
    *,
    job_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
    request_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
) -> SearchStrategy[StartJob]:
    """Valid :class:`~jobledger.StartJob` commands.

    Args:
        job_id: The job id to start, ``None`` for none (the ledger makes one),
            or a strategy for it. By default sometimes one, sometimes ``None``.
        request_id: The request id, ``None`` for none, or a strategy for it.
    """
    return st.builds(
        StartJob,
        service=names(),
        entity=names(),
        type=names(),
        display_name=texts(),
        description=texts(),
        input=json_values(),
        state=json_objects(),
        job_id=_fixed_or(job_id),
        request_id=_fixed_or(request_id),
        actor=_ACTORS,
    )


def _changes(
    kind: type[_C],
    job_id: str | SearchStrategy[str],
    etag: str | SearchStrategy[str],
    request_id: str | SearchStrategy[str | None] | None,
    **fields: SearchStrategy[Any],
) -> SearchStrategy[_C]:
    """Commands of ``kind`` with the fields every change command has, plus ``fields``."""
    return st.builds(
        kind,
        job_id=_fixed_or(job_id),
        etag=_fixed_or(etag),
        display_name=_OPTIONAL_TEXTS,
        description=_OPTIONAL_TEXTS,
        request_id=_fixed_or(request_id),
        actor=_ACTORS,
        **fields,
    )


def update_commands(
    *,
    job_id: str | SearchStrategy[str] = _IDS,
    etag: str | SearchStrategy[str] = _ETAGS,
    request_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
) -> SearchStrategy[UpdateJob]:
    """Valid :class:`~jobledger.UpdateJob` commands, with or without each optional field.

    Args:
        job_id: The job to update, or a strategy for it.
        etag: The ETag to send, or a strategy for it.
        request_id: The request id, ``None`` for none, or a strategy for it.
    """
    return _changes(
        UpdateJob,
        job_id,
        etag,
        request_id,
        status=st.one_of(st.none(), custom_statuses()),
        state_update=st.one_of(st.none(), merge_patches()),
    )


def complete_commands(
    *,
    job_id: str | SearchStrategy[str] = _IDS,
    etag: str | SearchStrategy[str] = _ETAGS,
    request_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
) -> SearchStrategy[CompleteJob]:
    """Valid :class:`~jobledger.CompleteJob` commands; arguments as :func:`update_commands`."""
    return _changes(
        CompleteJob, job_id, etag, request_id, state_update=st.one_of(st.none(), merge_patches())
    )


def fail_commands(
    *,
    job_id: str | SearchStrategy[str] = _IDS,
    etag: str | SearchStrategy[str] = _ETAGS,
    request_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
) -> SearchStrategy[FailJob]:
    """Valid :class:`~jobledger.FailJob` commands; arguments as :func:`update_commands`."""
    return _changes(
        FailJob, job_id, etag, request_id, state_update=st.one_of(st.none(), merge_patches())
    )


def cancel_commands(
    *,
    job_id: str | SearchStrategy[str] = _IDS,
    etag: str | SearchStrategy[str] = _ETAGS,
    request_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
) -> SearchStrategy[CancelJob]:
    """Valid :class:`~jobledger.CancelJob` commands; arguments as :func:`update_commands`."""
    return _changes(CancelJob, job_id, etag, request_id)


def change_commands(
    *,
    job_id: str | SearchStrategy[str] = _IDS,
    etag: str | SearchStrategy[str] = _ETAGS,
    request_id: str | SearchStrategy[str | None] | None = _OPTIONAL_IDS,
) -> SearchStrategy[ChangeCommand]:
    """Any valid change command: update, complete, fail or cancel.

    Args:
        job_id: The job to change, or a strategy for it.
        etag: The ETag to send, or a strategy for it.
        request_id: The request id, ``None`` for none, or a strategy for it.
    """
    return st.one_of(
        update_commands(job_id=job_id, etag=etag, request_id=request_id),
        complete_commands(job_id=job_id, etag=etag, request_id=request_id),
        fail_commands(job_id=job_id, etag=etag, request_id=request_id),
        cancel_commands(job_id=job_id, etag=etag, request_id=request_id),
    )


def commands() -> SearchStrategy[Command]:
    """Any valid command of the five."""
    return st.one_of(start_commands(), change_commands())


@st.composite
def _command_sequences(draw: DrawFn, job_id: str, max_updates: int) -> list[Command]:
    start = draw(start_commands(job_id=job_id, request_id=None))
    updates = draw(
        st.lists(
            update_commands(job_id=job_id, etag=ANY_ETAG, request_id=None),
            max_size=max_updates,
        )
    )
    ending = draw(
        st.one_of(
            st.none(),
            complete_commands(job_id=job_id, etag=ANY_ETAG, request_id=None),
            fail_commands(job_id=job_id, etag=ANY_ETAG, request_id=None),
            cancel_commands(job_id=job_id, etag=ANY_ETAG, request_id=None),
        )
    )
    return [start, *updates, *([] if ending is None else [ending])]


def command_sequences(
    *, job_id: str = "job-1", max_updates: int = 5
) -> SearchStrategy[list[Command]]:
    """Valid lives of one job: a start, some updates, and maybe an end.

    Every command of a sequence is accepted, in order, by a ledger that does
    not yet hold ``job_id``. The changes carry :data:`~jobledger.ANY_ETAG`,
    since a job's ETags are known only as the ledger hands them out, and no
    request id (a sequence's request ids would have to be unique in the ledger).

    >>> from hypothesis import given
    >>> from jobledger import Jobs
    >>> @given(command_sequences(max_updates=3))
    ... def test_a_life_is_accepted(commands):
    ...     jobs = Jobs()
    ...     for command in commands:
    ...         job = jobs.handle(command)
    ...     assert job.version == len(commands)
    >>> test_a_life_is_accepted()

    Args:
        job_id: The job the sequence is about.
        max_updates: The most updates between the start and the end.
    """
    return _command_sequences(job_id, max_updates)


@st.composite
def _jobs(draw: DrawFn) -> Job:
    created_at = draw(_DATETIMES)
    version = draw(_VERSIONS)
    if version == 1:
        status = JobStatus.STARTED.value
        updated_at = created_at
    else:
        status = draw(_ANY_STATUSES)
        updated_at = created_at + draw(_LATER)
    return Job(
        id=draw(_IDS),
        service=draw(_NAMES),
        entity=draw(_NAMES),
        type=draw(_NAMES),
        display_name=draw(_TEXTS),
        description=draw(_TEXTS),
        status=status,
        input=draw(_INPUTS),
        state=draw(_STATES),
        etag=draw(_IDS),
        version=version,
        created_at=created_at,
        updated_at=updated_at,
        started_by=draw(_ACTORS),
    )


def jobs() -> SearchStrategy[Job]:
    """:class:`~jobledger.Job` values as a ledger could hold them.

    Version 1 jobs are ``started`` with ``updated_at == created_at``; later
    versions have any status and ``updated_at >= created_at``.
    """
    return _jobs()


_STATUS_OF = {
    UpdateType.COMPLETED: JobStatus.COMPLETED.value,
    UpdateType.FAILED: JobStatus.FAILED.value,
    UpdateType.CANCELED: JobStatus.CANCELED.value,
}


@st.composite
def _job_updates(draw: DrawFn) -> JobUpdate:
    update_type = draw(_UPDATE_TYPES)
    status = draw(_STATUSES) if update_type is UpdateType.UPDATED else _STATUS_OF[update_type]
    patch = None
    if update_type is not UpdateType.CANCELED:
        patch = draw(_OPTIONAL_PATCHES)
    return JobUpdate(
        job_id=draw(_IDS),
        update_id=draw(_VERSIONS),
        update_type=update_type,
        status=status,
        state_update=patch,
        display_name=draw(_OPTIONAL_TEXTS),
        description=draw(_OPTIONAL_TEXTS),
        etag=draw(_IDS),
        at=draw(_DATETIMES),
        actor=draw(_ACTORS),
    )


def job_updates() -> SearchStrategy[JobUpdate]:
    """:class:`~jobledger.JobUpdate` values whose status matches their update type.

    A cancel never carries a ``state_update``.
    """
    return _job_updates()


def _event_base(draw: DrawFn) -> dict[str, Any]:
    return {
        "event_id": draw(_IDS),
        "job_id": draw(_IDS),
        "service": draw(_NAMES),
        "entity": draw(_NAMES),
        "type": draw(_NAMES),
        "etag": draw(_IDS),
        "at": draw(_DATETIMES),
        "actor": draw(_ACTORS),
    }


@st.composite
def _started_events(draw: DrawFn) -> JobStarted:
    return JobStarted(
        **_event_base(draw),
        status=JobStatus.STARTED.value,
        version=1,
        display_name=draw(_TEXTS),
        description=draw(_TEXTS),
        input=draw(_INPUTS),
        state=draw(_STATES),
    )


def _change_fields(draw: DrawFn) -> dict[str, Any]:
    update_id = draw(_VERSIONS)
    return {
        **_event_base(draw),
        "update_id": update_id,
        "version": update_id + 1,
        "display_name": draw(_OPTIONAL_TEXTS),
        "description": draw(_OPTIONAL_TEXTS),
    }


def _optional_patch(draw: DrawFn) -> JsonObject | None:
    return draw(_OPTIONAL_PATCHES)


@st.composite
def _updated_events(draw: DrawFn) -> JobUpdated:
    return JobUpdated(
        **_change_fields(draw),
        status=draw(_STATUSES),
        state_update=_optional_patch(draw),
    )


@st.composite
def _completed_events(draw: DrawFn) -> JobCompleted:
    return JobCompleted(
        **_change_fields(draw),
        status=JobStatus.COMPLETED.value,
        state_update=_optional_patch(draw),
    )


@st.composite
def _failed_events(draw: DrawFn) -> JobFailed:
    return JobFailed(
        **_change_fields(draw),
        status=JobStatus.FAILED.value,
        state_update=_optional_patch(draw),
    )


@st.composite
def _canceled_events(draw: DrawFn) -> JobCanceled:
    return JobCanceled(**_change_fields(draw), status=JobStatus.CANCELED.value)


_EVENT_STRATEGIES: dict[type[JobEvent], SearchStrategy[Any]] = {
    JobStarted: _started_events(),
    JobUpdated: _updated_events(),
    JobCompleted: _completed_events(),
    JobFailed: _failed_events(),
    JobCanceled: _canceled_events(),
}


def events(*kinds: type[JobEvent]) -> SearchStrategy[JobEvent]:
    """Integration events with aware UTC times, consistent in status and version.

    Args:
        kinds: The event types to make (``JobStarted``, ...); all five when none
            are given.

    Raises:
        TypeError: if a kind is not one of the five event types.
    """
    chosen = kinds or tuple(_EVENT_STRATEGIES)
    unknown = [kind for kind in chosen if kind not in _EVENT_STRATEGIES]
    if unknown:
        msg = f"not jobledger event types: {', '.join(map(repr, unknown))}"
        raise TypeError(msg)
    return st.one_of(*(_EVENT_STRATEGIES[kind] for kind in chosen))


# -- Job definitions ---------------------------------------------------------------------
#
# Runner definitions for property tests of workflows: every task runs one ScriptedTasks,
# drawn with the definition, so the test knows what each launch does.

_TASK_TYPES = ("export", "synchronize", "provision", "task")
_ALL_KINDS: tuple[OutcomeKind, ...] = ("succeed", "no_output", "fail", "block", "cancel")


def _task_outcomes(
    draw: DrawFn, kinds: tuple[OutcomeKind, ...], *, warning_mode: bool
) -> list[ScriptedOutcome]:
    # A raise is a fail, or a warn in warning mode: the flags and the script agree.
    raised: OutcomeKind = "warn" if warning_mode else "fail"
    picked = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3))
    return [ScriptedOutcome(raised if kind in {"fail", "warn"} else kind) for kind in picked]


@st.composite
def _job_definitions(
    draw: DrawFn,
    *,
    identifier: str,
    max_tasks: int,
    max_launch_orders: int,
    kinds: tuple[OutcomeKind, ...],
    ledger: Jobs | None,
) -> JobDefinition:
    count = draw(st.integers(min_value=1, max_value=max_tasks))
    orders = [draw(st.integers(min_value=1, max_value=max_launch_orders)) for _ in range(count)]
    names = [f"t{index}" for index in range(1, count + 1)]
    repair_kinds = tuple(kind for kind in kinds if kind != "cancel") or ("succeed",)
    outcomes: dict[str, list[ScriptedOutcome]] = {}
    repairs: dict[str, list[ScriptedOutcome]] = {}
    fields: list[dict[str, Any]] = []
    for name, order in zip(names, orders, strict=True):
        earlier = [other for other, at in zip(names, orders, strict=True) if at < order]
        warning_mode = draw(st.booleans())
        guarded = draw(st.booleans())
        repaired = guarded and draw(st.booleans())
        outcomes[name] = _task_outcomes(draw, kinds, warning_mode=warning_mode)
        if repaired:
            repairs[name] = _task_outcomes(draw, repair_kinds, warning_mode=warning_mode)
        fields.append(
            {
                "identifier": name,
                "type": draw(st.sampled_from(_TASK_TYPES)),
                "launch_order": order,
                "parents": draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else (),
                "side": draw(st.sampled_from((SERVER, AGENT))),
                "warning_mode": warning_mode,
                "guarded": guarded,
                "repair": repaired,
            }
        )
    script = ScriptedTasks(outcomes, repairs=repairs, ledger=ledger)
    return JobDefinition(identifier, [script.task(**task) for task in fields])


def job_definitions(
    *,
    identifier: str = "Drawn",
    max_tasks: int = 6,
    max_launch_orders: int = 4,
    kinds: Iterable[OutcomeKind] | None = None,
    ledger: Jobs | None = None,
) -> SearchStrategy[JobDefinition]:
    """Valid :class:`~jobledger.runner.JobDefinition` values whose tasks run a scripted outcome.

    Tasks ``t1``, ``t2``, ... get random launch orders (so random steps), parents
    among the tasks of earlier launch orders only, a type, a side (``server``
    or ``agent``), warning mode or not, and guarded or not, with or without a
    repair variant. Every task and repair variant runs one
    :class:`~jobledger.testing.runs.ScriptedTasks` (get it back with
    ``ScriptedTasks.of(definition)``) that scripts one to three launches of
    each, drawn from ``kinds``: ``succeed``, ``no_output``, ``fail`` (scripted
    ``warn`` for a task in warning mode), ``block`` (an error for a task that is
    not guarded) and ``cancel`` (a request to cancel the run, which needs the
    ``ledger``). Repair variants draw from the same kinds but ``cancel``.

    Run them with :func:`~jobledger.testing.runs.inline_runner` (or any runner);
    a definition with scripted cancels must run on ``ledger``, so draw it inside
    the test::

        @given(st.data())
        def test_runs_end(data):
            ledger = LedgerHarness.create()
            definition = data.draw(jst.job_definitions(ledger=ledger.jobs))
            result = inline_runner(ledger.jobs, [definition]).invoke(definition.identifier)
            assert result.status in {"completed", "failed", "blocked", "canceled"}

    Args:
        identifier: The definitions' identifier.
        max_tasks: The most tasks in a definition (at least 1).
        max_launch_orders: Launch orders are drawn from 1 to this (at least 1).
        kinds: The outcomes to draw from; all of them by default, ``cancel``
            only when a ``ledger`` is given. Never ``crash``: a drawn run
            always ends (or blocks) in the drive that runs it.
        ledger: The ledger the runs are recorded in, for scripted cancels.

    Raises:
        ValueError: a maximum is below 1, ``kinds`` is empty or names an
            unknown outcome, or has ``cancel`` without a ``ledger``.
    """
    if max_tasks < 1 or max_launch_orders < 1:
        msg = (
            "max_tasks and max_launch_orders must be at least 1, "
            f"not {max_tasks} and {max_launch_orders}"
        )
        raise ValueError(msg)
    if kinds is None:
        chosen = _ALL_KINDS if ledger is not None else _ALL_KINDS[:-1]
    else:
        chosen = tuple(dict.fromkeys(kinds))
        unknown = [kind for kind in chosen if kind not in {*_ALL_KINDS, "warn"}]
        if not chosen or unknown:
            msg = f"kinds must name outcomes among {', '.join(_ALL_KINDS)}, not {chosen!r}"
            raise ValueError(msg)
        if "cancel" in chosen and ledger is None:
            msg = "a scripted cancel needs the ledger: give job_definitions(ledger=jobs)"
            raise ValueError(msg)
    return _job_definitions(
        identifier=identifier,
        max_tasks=max_tasks,
        max_launch_orders=max_launch_orders,
        kinds=chosen,
        ledger=ledger,
    )
