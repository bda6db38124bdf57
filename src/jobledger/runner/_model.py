"""The run model: frozen, typed values for a run and its task launches, and their one codec.

A run is kept in the ledger as jobs (see :mod:`jobledger.runner`):

* the **run job** holds a :class:`RunRequest` as its ``input`` (what was asked,
  never changed) and a :class:`RunState` as its ``state`` (where the run is: its
  counts, the current step, the drive and its :class:`Lease`, the breakpoint).
  Its size does not grow with the run's tasks, so a write costs the same at
  task 10 and at task 100,000;
* each **launch** of a task (and each skip) is its own job: a
  :class:`LaunchInput` as its ``input`` and a :class:`LaunchState` as its
  ``state``, with id ``<run id>/<launch number>`` so the launches are found from
  the run in launch order.

Nothing outside this module reads or writes that JSON: :func:`encode` and
:func:`decode` (one :mod:`cattrs` converter) turn the values into JSON and back,
and :func:`state_patch` makes the merge patch between two states.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar, get_type_hints

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from jobledger._core.jsondoc import JsonObject, JsonValue, freeze
from jobledger.runner._outcome import Blockage, Breakpoint, TaskError, TaskOutcome
from jobledger.runner._selection import Selection
from jobledger.runner._states import RunTrigger, TaskStatus

if TYPE_CHECKING:
    from jobledger._core.job import Job

__all__ = [
    "LAYOUT",
    "Drive",
    "Launch",
    "LaunchInput",
    "LaunchState",
    "Lease",
    "Release",
    "RunRequest",
    "RunState",
    "decode",
    "encode",
    "launch_id",
    "run_state_patch",
    "state_patch",
]

#: The layout of a run's jobs this runner writes and reads (``RunState.layout``).
LAYOUT: Final = 2

_Value = TypeVar("_Value")


def _counts(value: Mapping[str, int] | None) -> Mapping[str, int]:
    given = value or {}
    return MappingProxyType({str(key): given[key] for key in sorted(given) if given[key]})


def _json(value: object) -> JsonValue:
    # None is the common case (no summary, no input): no need to ask the freezer.
    return None if value is None else freeze(value, field="run")


@attrs.frozen
class Lease:
    """Who drives a run, and until when: no other process may claim it before ``expires_at``.

    The driver records its lease when it claims the run and renews it well
    before it expires; the lease's length is the driver's setting, recorded
    here, never a guess of whoever wants to resume the run.

    Attributes:
        owner: The id of the drive that holds the run.
        expires_at: When the lease ends unless renewed.
        seconds: How long each renewal lasts.
    """

    owner: str
    expires_at: datetime
    seconds: float

    def expired(self, now: datetime) -> bool:
        """Whether the lease is over at ``now``: another process may claim the run.

        >>> from datetime import UTC, datetime
        >>> lease = Lease("drive-1", datetime(2026, 1, 1, 12, tzinfo=UTC), 30.0)
        >>> lease.expired(datetime(2026, 1, 1, 11, 59, tzinfo=UTC))
        False
        >>> lease.expired(datetime(2026, 1, 1, 12, tzinfo=UTC))
        True
        """
        return now >= self.expires_at


@attrs.frozen
class Drive:
    """One drive of a run: the invoke, then one per resume or takeover.

    Attributes:
        number: 1 for the invoke, then 2, 3, ...
        kind: What started it: ``invoke``, ``resume`` or ``take over``.
        owner: The drive's id (its lease's owner).
        repair: Whether it runs the blocked tasks' repair variants.
        claimed_at: When it claimed the run.
        actor: Who invoked or resumed the run (the ``actor`` given to
            :meth:`~jobledger.runner.Runner.invoke` or
            :meth:`~jobledger.runner.Runner.resume`), the actor of every write
            of the drive; ``None`` when no one was named.
    """

    number: int
    kind: RunTrigger
    owner: str
    repair: bool
    claimed_at: datetime
    actor: str | None = None


@attrs.frozen
class Release:
    """A drive let go of its run on purpose (Ctrl-C, SIGTERM, a closed pipe): resumable at once.

    Attributes:
        drive: The number of the drive that let go.
        at: When.
        reason: Why, in a few words.
    """

    drive: int
    at: datetime
    reason: str


@attrs.frozen(kw_only=True)
class RunRequest:
    """What a run was asked to do: the run job's ``input``, written once.

    Attributes:
        definition: The identifier of the job definition.
        selection: Which of its tasks run.
        force: The force threshold handed to guarded tasks at the invoke.
        input: The run's input, handed to every task.
    """

    definition: str
    selection: Selection = attrs.field(factory=Selection)
    force: int | None = None
    input: JsonValue = attrs.field(default=None, converter=_json)


@attrs.frozen(kw_only=True)
class RunState:
    """Where a run is: the run job's ``state``. Its size does not depend on the run's tasks.

    Attributes:
        layout: The layout version (:data:`LAYOUT`).
        tasks: How many tasks the run has (its selected tasks).
        launches: How many launch jobs the run has: ``<run id>/1`` to ``<run id>/<launches>``.
        groups: How many launch groups (a step's launch in one drive) it has had.
        step: The launch order of the step launched last; ``None`` before the first.
        counts: How many of its tasks are in each :class:`TaskStatus` (zero counts
            left out), as of the run's last write; tasks not launched are pending.
        drive: The drive that holds or last held the run.
        lease: The drive's lease; ``None`` once the run is blocked, released or over.
        force: The force threshold the current drive hands to guarded tasks.
        breakpoint: Where a blocked run stopped.
        cancel_requested: Whether someone asked the run to stop.
        cancel_requested_by: Who asked the run to stop (the request's actor),
            the actor of the run's cancel; ``None`` when no one was named.
        failure: Why the run failed when no task's error says it.
        released: Set when the last drive let go of the run on purpose.
    """

    layout: int = LAYOUT
    tasks: int
    launches: int = 0
    groups: int = 0
    step: int | None = None
    counts: Mapping[str, int] = attrs.field(factory=dict, converter=_counts)
    drive: Drive | None = None
    lease: Lease | None = None
    force: int | None = None
    breakpoint: Breakpoint | None = None
    cancel_requested: bool = False
    cancel_requested_by: str | None = None
    failure: str | None = None
    released: Release | None = None

    def stepped(
        self,
        *,
        launches: int,
        groups: int,
        step: int | None,
        counts: Mapping[str, int],
        lease: Lease | None,
    ) -> RunState:
        """This state with a step's launches: ``attrs.evolve`` of those fields, made directly.

        (A drive makes one per step; ``evolve`` costs about twice as much.)
        """
        return RunState(
            layout=self.layout,
            tasks=self.tasks,
            launches=launches,
            groups=groups,
            step=step,
            counts=counts,
            drive=self.drive,
            lease=lease,
            force=self.force,
            breakpoint=self.breakpoint,
            cancel_requested=self.cancel_requested,
            cancel_requested_by=self.cancel_requested_by,
            failure=self.failure,
            released=self.released,
        )

    @property
    def done(self) -> int:
        """How many of the run's tasks are settled (they do not run again on resume)."""
        return sum(count for status, count in self.counts.items() if TaskStatus(status).is_done)


@attrs.frozen(kw_only=True)
class LaunchInput:
    """One launch (or skip) of a task: its job's ``input``, written once.

    Attributes:
        run: The run's id.
        task: The task's identifier.
        launch: Its number among the run's launch jobs (1, 2, ...).
        step: The task's launch order.
        group: The launch group it was launched in; ``None`` for a skip.
        attempt: 1 for the task's first launch in the run, then 2, 3, ...
        repair: Whether it runs the task's repair variant.
        drive: The number of the drive that launched it.
        side: The executor it runs on.
    """

    run: str
    task: str
    launch: int
    step: int
    group: int | None
    attempt: int
    repair: bool = False
    drive: int
    side: str


@attrs.frozen(kw_only=True)
class LaunchState:
    """What one launch came to: its job's ``state``.

    Attributes:
        outcome: How it ended; ``None`` while it runs.
        started_at: When its function started.
        ended_at: When it ended.
        duration: How long it ran, in seconds.
        output: Whether it produced output (``completed`` only).
        summary: The summary its result gave.
        error: Its error (``failed``, ``warning``).
        blocked: Why it blocked (``blocked``).
        skip_reason: Why it was not launched (``skipped``).
        progress: What it reported.
        cancel_requested: Set by the driver to ask the launch to stop (a cancel
            request or its timeout); the task sees it through its context.
        worker: Where it runs (``host`` and ``pid``), when the worker said so.
    """

    outcome: TaskStatus | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: float | None = None
    output: bool | None = None
    summary: JsonValue = attrs.field(default=None, converter=_json)
    error: TaskError | None = None
    blocked: Blockage | None = None
    skip_reason: str | None = None
    progress: JsonObject | None = None
    cancel_requested: bool = False
    worker: JsonObject | None = None


def launch_id(run_id: str, launch: int) -> str:
    """The id of a run's ``launch``-th launch job.

    >>> launch_id("run-1", 3)
    'run-1/3'
    """
    return f"{run_id}/{launch}"


def _box(value: JsonValue) -> list[JsonValue]:
    return [value]


def _unbox(value: object, _kind: object) -> JsonValue:
    if isinstance(value, list) and len(value) == 1:
        return _json(value[0])
    msg = "expected a JSON value boxed in a one-element array"
    raise ValueError(msg)


def _value_of(member: TaskStatus | RunTrigger) -> str:
    return member.value


def _run_request_json(request: RunRequest) -> dict[str, Any]:
    """A run's request as its job keeps it: every field."""
    return {
        "definition": request.definition,
        "selection": request.selection.to_json(),
        "force": request.force,
        "input": request.input,
    }


def _launch_input_json(launch: LaunchInput) -> dict[str, Any]:
    """A launch's input as its job keeps it: every field."""
    return {
        "run": launch.run,
        "task": launch.task,
        "launch": launch.launch,
        "step": launch.step,
        "group": launch.group,
        "attempt": launch.attempt,
        "repair": launch.repair,
        "drive": launch.drive,
        "side": launch.side,
    }


def _launch_state_json(  # noqa: C901  (a test per field at most: flat on purpose)
    unstructure: Callable[[object, Any], Any], state: LaunchState
) -> dict[str, Any]:
    """A launch's state as its job keeps it: the fields not at their default.

    The summary is boxed in a one-element array (see :func:`_converter`);
    an error and a blockage are encoded by ``unstructure`` (the converter's).
    """
    document: dict[str, Any] = {}
    if state.outcome is not None:
        document["outcome"] = state.outcome.value
    if state.started_at is not None:
        document["started_at"] = state.started_at.isoformat()
    if state.ended_at is not None:
        document["ended_at"] = state.ended_at.isoformat()
    if state.duration is not None:
        document["duration"] = state.duration
    if state.output is not None:
        document["output"] = state.output
    if state.summary is not None:
        document["summary"] = [state.summary]
    if state.error is not None:
        document["error"] = unstructure(state.error, TaskError)
    if state.blocked is not None:
        document["blocked"] = unstructure(state.blocked, Blockage)
    if state.skip_reason is not None:
        document["skip_reason"] = state.skip_reason
    if state.progress is not None:
        document["progress"] = state.progress
    if state.cancel_requested:
        document["cancel_requested"] = True
    if state.worker is not None:
        document["worker"] = state.worker
    return document


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))

    def json_value(value: object, _: object) -> JsonValue:
        return _json(value)

    def json_object(value: object, _: object) -> JsonObject:
        frozen = _json(value)
        if not isinstance(frozen, JsonObject):
            msg = f"expected a JSON object, not {type(value).__name__}"
            raise TypeError(msg)
        return frozen

    converter.register_structure_hook_func(lambda kind: kind == JsonValue, json_value)
    converter.register_structure_hook(JsonObject, json_object)
    converter.register_unstructure_hook_func(
        lambda kind: kind in (JsonValue, JsonObject), lambda value: value
    )
    # The statuses are str enums: written as their plain values, which the ledger
    # takes in as the plain JSON strings they are (an enum member, a str subclass,
    # it would convert to one on every write).
    for status in (TaskStatus, RunTrigger):
        converter.register_unstructure_hook(status, _value_of)
    converter.register_structure_hook(Selection, lambda value, _: Selection.from_json(value))
    converter.register_unstructure_hook(Selection, Selection.to_json)
    # Fields at their default are left out: the documents stay small, and a patch
    # between two states (state_patch) removes what went back to its default.
    converter.register_unstructure_hook(RunRequest, _run_request_json)
    for sparse in (TaskError, Breakpoint):
        converter.register_unstructure_hook(
            sparse, make_dict_unstructure_fn(sparse, converter, _cattrs_omit_if_default=True)
        )
    # A drive names its actor only when it has one (and the runs recorded before
    # drives had actors decode as naming no one).
    converter.register_unstructure_hook(
        Drive,
        make_dict_unstructure_fn(Drive, converter, actor=override(omit_if_default=True)),
    )
    # A launch's end is written as a merge patch, which would drop the nulls inside a
    # task's summary or a blockage's details: those values are kept boxed in a
    # one-element array, which a merge patch replaces whole.
    # (Blockage first: LaunchState's hooks take the hooks of its fields as they are then.)
    boxed = override(unstruct_hook=_box, struct_hook=_unbox)
    converter.register_unstructure_hook(
        Blockage,
        make_dict_unstructure_fn(Blockage, converter, _cattrs_omit_if_default=True, details=boxed),
    )
    converter.register_structure_hook(
        Blockage, make_dict_structure_fn(Blockage, converter, details=boxed)
    )
    # A run's request, and a launch's input and state (written once per task each),
    # are encoded by hand: the documents cattrs's generated hooks made, at a third
    # of the cost (a generated hook looks up the hook of a union type on every call).
    converter.register_unstructure_hook(LaunchInput, _launch_input_json)
    converter.register_unstructure_hook(
        LaunchState, functools.partial(_launch_state_json, converter.unstructure)
    )
    converter.register_structure_hook(
        LaunchState, make_dict_structure_fn(LaunchState, converter, summary=boxed)
    )
    converter.register_unstructure_hook(
        RunState,
        make_dict_unstructure_fn(
            RunState,
            converter,
            _cattrs_omit_if_default=True,
            layout=override(omit_if_default=False),
        ),
    )
    return converter


_CONVERTER: Final = _converter()


def encode(value: object) -> dict[str, Any]:
    """A model value as the JSON object its job keeps.

    >>> encode(Lease("drive-1", datetime.fromisoformat("2026-01-01T12:00:00+00:00"), 30.0))
    {'owner': 'drive-1', 'expires_at': '2026-01-01T12:00:00+00:00', 'seconds': 30.0}
    """
    encoded: dict[str, Any] = _CONVERTER.unstructure(value)
    return encoded


def decode(document: object, cls: type[_Value]) -> _Value:
    """The model value of type ``cls`` that ``document`` (a job's input or state) holds.

    Raises:
        ValueError: the document is not a ``cls`` (not a run's job, or one
            recorded in another layout).
    """
    try:
        return _CONVERTER.structure(document, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as error:
        detail = (
            "; ".join(cattrs.transform_error(error))
            if isinstance(error, cattrs.BaseValidationError)
            else str(error)
        )
        msg = f"not a {cls.__name__} of layout {LAYOUT}: {detail}"
        raise ValueError(msg) from None


def state_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7396 merge patch that turns JSON object ``before`` into ``after``.

    >>> state_patch({"a": 1, "b": {"c": 1, "d": 2}}, {"a": 1, "b": {"c": 2}, "e": 3})
    {'b': {'c': 2, 'd': None}, 'e': 3}
    """
    patch: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if old == value and key in before:
            continue
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            patch[key] = state_patch(old, value)
        else:
            patch[key] = value
    patch.update((key, None) for key in before if key not in after)
    return patch


#: The types whose values are their own JSON encoding (exactly these: not enum members).
_PLAIN: Final = frozenset({int, str, float, bool})

#: What no field default is (a field without one is always written).
_REQUIRED: Final = object()


def _run_state_fields() -> tuple[tuple[str, object, Any], ...]:
    # Each field of RunState, the default its encoding leaves out, and its type.
    hints = get_type_hints(RunState)
    fields: list[tuple[str, object, Any]] = []
    for field in attrs.fields(RunState):
        default: object = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[attr-defined]
        if field.name == "layout" or default is attrs.NOTHING:
            default = _REQUIRED
        fields.append((field.name, default, hints[field.name]))
    return tuple(fields)


def run_state_patch(
    before: RunState, encoded_before: Mapping[str, Any], after: RunState
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The merge patch from ``before`` to ``after``, and ``after``'s encoding.

    The same as ``state_patch(encode(before), encode(after))``, with only the
    fields that changed encoded (``encoded_before`` is ``encode(before)``):
    what a drive's write of its run costs, most of whose fields stay as they were.

    >>> before = RunState(tasks=2, counts={"pending": 2})
    >>> after = attrs.evolve(before, launches=1, counts={"pending": 1, "running": 1})
    >>> run_state_patch(before, encode(before), after)[0]
    {'launches': 1, 'counts': {'pending': 1, 'running': 1}}
    """
    patch: dict[str, Any] = {}
    encoded = dict(encoded_before)
    for (name, default, kind), old, new in zip(
        _RUN_STATE_FIELDS, _run_state_values(before), _run_state_values(after), strict=True
    ):
        if old is new or old == new:
            continue
        if default is not _REQUIRED and new == default:
            if name in encoded:
                del encoded[name]
                patch[name] = None
            continue
        if type(new) in _PLAIN:
            # Numbers and texts are their own JSON (most of a step's changes: the counters).
            encoded[name] = patch[name] = new
            continue
        value = _CONVERTER.unstructure(new, kind)
        prior = encoded.get(name)
        encoded[name] = value
        if isinstance(value, Mapping) and isinstance(prior, Mapping):
            patch[name] = state_patch(prior, value)
        else:
            patch[name] = value
    return patch, encoded


_RUN_STATE_FIELDS: Final = _run_state_fields()
#: A run state's field values, in the order of _RUN_STATE_FIELDS (one call for all).
_run_state_values: Final = operator.attrgetter(*(name for name, _, _ in _RUN_STATE_FIELDS))


def _task_status(job: Job, state: LaunchState) -> TaskStatus:
    if state.outcome is not None:
        return state.outcome
    if not job.phase.is_terminal:
        return TaskStatus.RUNNING
    # Ended without an outcome recorded: by hand, or by an older runner.
    return {"completed": TaskStatus.COMPLETED, "failed": TaskStatus.FAILED}.get(
        job.status, TaskStatus.CANCELED
    )


@attrs.frozen
class Launch:
    """One launch (or skip) of a task of a run, read from its job in the ledger.

    Attributes:
        job_id: The id of its job, ``<run id>/<number>``.
        type: The task's type.
        input: What was launched.
        state: What it came to so far.
        status: Where the task of this launch is: ``running`` until it ends.
        launched_at: When its job was made.
        updated_at: When its job last changed.
    """

    job_id: str
    type: str
    input: LaunchInput
    state: LaunchState
    status: TaskStatus
    launched_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> Launch:
        """The launch its job records.

        Raises:
            ValueError: the job is not a launch job of this layout.
        """
        state = decode(job.state, LaunchState)
        return cls(
            job_id=job.id,
            type=job.type,
            input=decode(job.input, LaunchInput),
            state=state,
            status=_task_status(job, state),
            launched_at=job.created_at,
            updated_at=job.updated_at,
        )

    def outcome(self, attempts: int | None = None) -> TaskOutcome:
        """The task's outcome as this launch left it."""
        state, launch = self.state, self.input
        return TaskOutcome(
            identifier=launch.task,
            type=self.type,
            launch_order=launch.step,
            side=launch.side,
            status=self.status,
            attempts=launch.attempt if attempts is None else attempts,
            launch_group=launch.group,
            launched_at=None if launch.group is None else self.launched_at,
            started_at=state.started_at,
            ended_at=state.ended_at,
            duration=state.duration,
            output=state.output,
            summary=state.summary,
            error=state.error,
            blocked=state.blocked,
            skip_reason=state.skip_reason,
            repair=launch.repair,
            progress=state.progress,
        )
