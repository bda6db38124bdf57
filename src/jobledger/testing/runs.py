"""Run job definitions in-process and synchronously, script their tasks, and assert the runs.

These pieces test a :class:`~jobledger.runner.JobDefinition` with no threads,
no processes and no infrastructure:

* :class:`InlineExecutor` runs each task in the thread that submits it, and
  :func:`inline_runner` gives a :class:`~jobledger.runner.Runner` one on every
  side, so :meth:`~jobledger.runner.Runner.invoke` returns with every task run,
  in a known order;
* :class:`ScriptedTasks` stands in for task functions: each task succeeds (with
  or without output), fails, warns, blocks, requests a cancel of its run or
  crashes its drive, as scripted per task identifier and launch, and every launch records what the
  task saw (:class:`ScriptedLaunch`);
* :func:`assert_run` checks what a run came to, with a message that shows the
  whole run when it fails; :func:`assert_launches` checks the launch jobs the
  run left in the ledger (one per launch or skip of a task), and
  :func:`launch_history` reads the order in which tasks were launched from them;
* :func:`expire_lease` moves a :class:`~jobledger.testing.ManualClock` past a
  run's lease, so that a run left ``running`` by a drive that died (a task
  scripted to ``crash``) can be taken over in the same test.

>>> from jobledger.runner import JobDefinition
>>> from jobledger.testing import LedgerHarness
>>> script = ScriptedTasks(fail=["provision"])
>>> definition = JobDefinition(
...     "Nightly",
...     [
...         script.task("export", type="export"),
...         script.task("provision", launch_order=2, parents="export"),
...     ],
... )
>>> ledger = LedgerHarness.create()
>>> result = inline_runner(ledger.jobs, [definition], clock=ledger.clock).invoke("Nightly")
>>> assert_run(result, status="failed", completed=["export"], failed=["provision"])
>>> script.launched()
['export', 'provision']

This module imports :mod:`jobledger.runner`; it needs nothing else beyond
jobledger (no pytest, no hypothesis).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Executor, Future
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, ParamSpec, TypeAlias, TypeVar

import attrs

from jobledger import JobledgerError, JsonValue, freeze
from jobledger._application.defaults import new_id, utc_now
from jobledger.runner import (
    AGENT,
    RUN_SERVICE,
    SERVER,
    JobDefinition,
    Launch,
    LaunchGroup,
    Runner,
    RunResult,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
    TaskOutcome,
    TaskResult,
    TaskStatus,
    load_launches,
    load_run,
    request_cancel,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from jobledger import Jobs
    from jobledger.testing.fakes import ManualClock

__all__ = [
    "INLINE_LEASE",
    "InlineExecutor",
    "OutcomeKind",
    "ScriptedLaunch",
    "ScriptedOutcome",
    "ScriptedTaskError",
    "ScriptedTasks",
    "SimulatedCrash",
    "assert_launches",
    "assert_run",
    "expire_lease",
    "inline_executors",
    "inline_runner",
    "launch_history",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")


# -- the inline executor -----------------------------------------------------------------


class InlineExecutor(Executor):
    """A :class:`concurrent.futures.Executor` that runs each call in the thread that submits it.

    :meth:`submit` runs the call to its end and returns a future that is
    already done, holding the call's result or the exception it raised. Give
    one to a :class:`~jobledger.runner.Runner` for every side (see
    :func:`inline_runner`) and a run is in-process, synchronous and
    deterministic: the runner launches the tasks of a step one after another,
    each to its end, in the step's order, then records their ends in the same
    order. Each progress report of a task is written to its launch's job at
    once (the executor's ``progress_interval`` is 0), so a run records the
    same history however fast the machine runs it.

    What changes from a thread pool, by design:

    * the tasks of a step run one after another, not at the same time, so a
      task that waits for a sibling of its step waits forever;
    * a task's ``timeout`` is not enforced: the task runs to its end before the
      runner starts watching the time (test timeouts with a real thread pool);
    * a cancel request made while a step runs (by one of its tasks, say) is
      seen by the runner once the step's tasks have all run: they run to their
      end with ``context.cancel_requested`` false, then no further step starts
      and the run ends ``canceled``, as with a pool whose tasks ignore the flag;
      a task that waits for the flag with no timeout waits forever;
    * the drive renews its run's lease between tasks only, as the drive's own
      thread runs them: a task that runs longer than the lease (by the
      runner's clock) leaves the run open to a takeover (:func:`inline_runner`
      gives a lease of :data:`INLINE_LEASE` for that reason).

    Its ``runs_in_process`` attribute tells the runner (see
    :func:`jobledger.runner.runs_in_process`) that its tasks share the
    runner's ledger and see a cancel flag of this process. It never starts a
    thread. Calls submitted from several threads run at the same time, each in
    its own thread.

    An exception that is not an :class:`Exception` nor :class:`SystemExit`
    (``KeyboardInterrupt``, or a :class:`SimulatedCrash`) is set on the future
    and raised again, so interrupting a test stops it, and a crash stops the
    drive as a dead process would.

    >>> executor = InlineExecutor()
    >>> future = executor.submit(sum, [1, 2, 3])
    >>> future.done(), future.result(), executor.submitted
    (True, 6, 1)
    >>> executor.shutdown()
    >>> executor.submit(sum, [1])
    Traceback (most recent call last):
    ...
    RuntimeError: cannot run new calls after shutdown
    """

    #: Calls run in this process (see :func:`jobledger.runner.runs_in_process`).
    runs_in_process = True
    #: Seconds between two progress writes of a task: none, every report is written at once.
    progress_interval = 0.0

    def __init__(self) -> None:
        """Make an executor that has run nothing yet."""
        self._inline_lock = threading.Lock()
        self._inline_closed = False
        self._submitted = 0

    @property
    def submitted(self) -> int:
        """How many calls were submitted (and so run) so far."""
        with self._inline_lock:
            return self._submitted

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` now; return a done future with its result or exception.

        Raises:
            RuntimeError: the executor was shut down.
        """
        with self._inline_lock:
            if self._inline_closed:
                raise RuntimeError("cannot run new calls after shutdown")
            self._submitted += 1
        future: Future[_T] = Future()
        future.set_running_or_notify_cancel()
        try:
            value = fn(*args, **kwargs)
        except (Exception, SystemExit) as error:  # noqa: BLE001  (a future holds whatever the call raised)
            future.set_exception(error)
        except BaseException as error:
            future.set_exception(error)
            raise
        else:
            future.set_result(value)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:  # noqa: ARG002, FBT001, FBT002  (Executor's signature; nothing is ever pending)
        """Refuse further calls; every call submitted has already run."""
        with self._inline_lock:
            self._inline_closed = True

    def __repr__(self) -> str:
        """Show how many calls ran."""
        return f"<InlineExecutor after {self.submitted} call(s)>"


def _sides(definitions: Iterable[JobDefinition], sides: Iterable[str]) -> list[str]:
    named = [SERVER, AGENT, *sides]
    named += [task.side for definition in definitions for task in definition.tasks]
    return list(dict.fromkeys(named))


def inline_executors(
    definitions: Iterable[JobDefinition] = (), *, sides: Iterable[str] = ()
) -> dict[str, InlineExecutor]:
    """One :class:`InlineExecutor` per side a runner of ``definitions`` needs.

    The sides are ``server``, ``agent``, the ``sides`` given, and every side
    the tasks of ``definitions`` run on. Give the result to
    :class:`~jobledger.runner.Runner` as ``executors``.

    >>> sorted(inline_executors(sides=["hr-agent"]))
    ['agent', 'hr-agent', 'server']
    """
    return {side: InlineExecutor() for side in _sides(definitions, sides)}


#: Seconds of the lease :func:`inline_runner` gives its drives unless told otherwise:
#: three times the runner's default, as an inline drive renews it between tasks only.
INLINE_LEASE: Final = 90.0


def inline_runner(
    jobs: Jobs,
    definitions: Iterable[JobDefinition],
    *,
    executors: Mapping[str, Executor] | None = None,
    lease: float | None = None,
    heartbeat: float | None = None,
    takeover_after: float | None = None,
    poll_interval: float = 1.0,
    clock: Callable[[], datetime] = utc_now,
    id_factory: Callable[[], str] = new_id,
    service: str = RUN_SERVICE,
) -> Runner:
    """A :class:`~jobledger.runner.Runner` that runs every task inline, in the calling thread.

    Every side the definitions name (and ``server`` and ``agent``) gets its own
    :class:`InlineExecutor`; ``executors`` replaces some of them. The other
    arguments are the runner's, but for the lease: :data:`INLINE_LEASE` seconds
    when none of ``lease``, ``heartbeat`` and ``takeover_after`` is given. Give
    it the ledger's clock so the run's times and leases are the clock's
    (:class:`~jobledger.testing.ManualClock`, which :func:`expire_lease` moves),
    and an id factory (:class:`~jobledger.testing.SequentialIds`) so the ids it
    makes (each drive's, and each run's that ``invoke`` is not given) are known.

    Raises:
        DefinitionError: two definitions share an identifier.
        ValueError: a duration is not a positive number of seconds.
    """
    listed = list(definitions)
    chosen: dict[str, Executor] = dict(inline_executors(listed))
    chosen.update(executors or {})
    if lease is None and heartbeat is None and takeover_after is None:
        lease = INLINE_LEASE
    return Runner(
        jobs,
        listed,
        executors=chosen,
        lease=lease,
        heartbeat=heartbeat,
        takeover_after=takeover_after,
        poll_interval=poll_interval,
        clock=clock,
        id_factory=id_factory,
        service=service,
    )


# -- scripted tasks ----------------------------------------------------------------------

#: What a scripted task does on one launch.
OutcomeKind: TypeAlias = Literal["succeed", "no_output", "fail", "warn", "block", "cancel", "crash"]

_KINDS: tuple[OutcomeKind, ...] = (
    "succeed",
    "no_output",
    "fail",
    "warn",
    "block",
    "cancel",
    "crash",
)


def _json(value: object) -> JsonValue:
    return freeze(value, field="scripted outcome")


def _force_level(value: object) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        msg = f"unless_force must be an integer or None, not {value!r}"
        raise TypeError(msg)
    return value


@attrs.frozen
class ScriptedOutcome:
    """What a :class:`ScriptedTasks` task does on one launch; make one with a class method.

    Attributes:
        kind: ``succeed``, ``no_output``, ``fail``, ``warn``, ``block``,
            ``cancel`` or ``crash``.
        message: The error message (``fail``, ``warn``) or the block's reason
            (``block``); ``None`` for a message that names the task.
        details: The block's JSON details.
        summary: The JSON summary the task returns when it completes.
        unless_force: For ``block``: the force threshold at which the task
            completes instead of blocking (a guard that gives way to force).

    >>> blocked = ScriptedOutcome.block("too many deletions", details={"deletions": 120})
    >>> blocked.kind, blocked.message, blocked.details
    ('block', 'too many deletions', {'deletions': 120})
    """

    kind: OutcomeKind = attrs.field(validator=attrs.validators.in_(_KINDS))
    message: str | None = None
    details: JsonValue = attrs.field(default=None, converter=_json)
    summary: JsonValue = attrs.field(default=None, converter=_json)
    unless_force: int | None = attrs.field(default=None, converter=_force_level)

    @classmethod
    def succeed(cls, summary: object = None) -> ScriptedOutcome:
        """Complete with output, returning ``summary``."""
        return cls("succeed", summary=summary)

    @classmethod
    def no_output(cls, summary: object = None) -> ScriptedOutcome:
        """Complete without output (children of the task are skipped), returning ``summary``."""
        return cls("no_output", summary=summary)

    @classmethod
    def fail(cls, message: str | None = None) -> ScriptedOutcome:
        """Raise :class:`ScriptedTaskError`: the task fails (it must not be in warning mode)."""
        return cls("fail", message=message)

    @classmethod
    def warn(cls, message: str | None = None) -> ScriptedOutcome:
        """Raise :class:`ScriptedTaskError` in a task in warning mode: the run records a warning."""
        return cls("warn", message=message)

    @classmethod
    def block(
        cls, reason: str | None = None, details: object = None, *, unless_force: int | None = None
    ) -> ScriptedOutcome:
        """Raise :class:`~jobledger.runner.TaskBlocked` with ``reason`` and ``details``.

        A guarded task blocks the run; a task that is not guarded fails (or
        warns), as in any run. With ``unless_force``, the task completes instead
        when the run's force threshold is at least that.
        """
        return cls("block", message=reason, details=details, unless_force=unless_force)

    @classmethod
    def cancel(cls, summary: object = None) -> ScriptedOutcome:
        """Request a cancel of the task's own run, then complete with output.

        The script needs the ledger for it (``ScriptedTasks(ledger=...)``).
        """
        return cls("cancel", summary=summary)

    @classmethod
    def crash(cls) -> ScriptedOutcome:
        """Raise :class:`SimulatedCrash`: on an :class:`InlineExecutor`, the drive stops at once.

        The run is left as a drive whose process died leaves it (``running``,
        its lease held until it expires): see :class:`SimulatedCrash`.
        """
        return cls("crash")


class ScriptedTaskError(JobledgerError):
    """The error a scripted task raises when its outcome is ``fail`` or ``warn``.

    Runs record it as ``jobledger.testing.runs.ScriptedTaskError``.

    Attributes:
        task: The task's identifier.
        attempt: The launch that raised it.
    """

    def __init__(self, task: str, attempt: int, message: str) -> None:
        """Name the task and launch; ``message`` is the error's message."""
        self.task = task
        self.attempt = attempt
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ScriptedTaskError], tuple[str, int, str]]:
        """Pickle with the task, the attempt and the message."""
        return (type(self), (self.task, self.attempt, str(self)))


class SimulatedCrash(BaseException):
    """What a task scripted to ``crash`` raises: its drive stops as if its process died.

    It is a :class:`BaseException`, as ``KeyboardInterrupt`` is, and not a
    :class:`~jobledger.JobledgerError`, on purpose: no task catches it, the
    runner does not record it as the task's error, and an
    :class:`InlineExecutor` raises it again, so it goes up through the drive
    and out of ``invoke`` or ``resume``. The run is left as a dead drive leaves
    it: ``running``, with its lease held until it expires, and the launches of
    the step it was in still ``running``. Move the clock past the lease with
    :func:`expire_lease` and resume the run: the resume takes it over, ends
    those launches ``canceled`` and runs their tasks again.

    On an executor that is not inline (a thread pool), the crash stays in the
    task's future, and the runner records it as the task's error.

    Attributes:
        task: The task's identifier.
        attempt: The launch that raised it.
    """

    def __init__(self, task: str, attempt: int) -> None:
        """Name the task and launch that crashed."""
        self.task = task
        self.attempt = attempt
        super().__init__(f"task {task!r} crashed its drive (scripted, launch {attempt})")

    def __reduce__(self) -> tuple[type[SimulatedCrash], tuple[str, int]]:
        """Pickle with the task and the attempt."""
        return (type(self), (self.task, self.attempt))


@attrs.frozen
class ScriptedLaunch:
    """One launch of a scripted task: what it saw and what it did.

    Attributes:
        task: The task's identifier.
        run_id: The run it ran for.
        attempt: Which launch of the task in the run (``context.attempt``).
        repair: Whether it ran as the task's repair variant.
        force: The run's force threshold it was given.
        input: The run's input it was given.
        cancel_requested: Whether its cancellation flag was raised when it started.
        outcome: What it did (a block that gave way to force is a ``succeed``).
        start: Its start's position among the starts and ends of the script's
            launches: 0, 1, 2, ... So ``a.end < b.start`` says ``a`` ended
            before ``b`` started.
        end: Its end's position, in the same count.
    """

    task: str
    run_id: str
    attempt: int
    repair: bool
    force: int | None
    input: JsonValue = attrs.field(converter=_json)
    cancel_requested: bool
    outcome: ScriptedOutcome
    start: int
    end: int


_Script: TypeAlias = "ScriptedOutcome | Sequence[ScriptedOutcome]"
_SUCCEED = ScriptedOutcome.succeed()


def _lease_renewed_at(jobs: Jobs, run_id: str, service: str) -> datetime:
    """When the run's drive last renewed its lease (by its runner's clock); now if none holds it."""
    state = load_run(jobs, run_id, service=service).state
    lease = None if state is None else state.lease
    if lease is None:
        return utc_now()
    return lease.expires_at - timedelta(seconds=lease.seconds)


def _identifiers(value: str | Iterable[str], what: str) -> list[str]:
    listed = [value] if isinstance(value, str) else list(value)
    wrong = [item for item in listed if not isinstance(item, str)]
    if wrong:
        msg = f"{what} takes task identifiers (strings), not {wrong[0]!r}"
        raise TypeError(msg)
    return listed


def _sequence(task: str, script: _Script, what: str) -> tuple[ScriptedOutcome, ...]:
    outcomes = (script,) if isinstance(script, ScriptedOutcome) else tuple(script)
    if not outcomes:
        msg = f"{what} for task {task!r} is empty: script at least one outcome"
        raise ValueError(msg)
    wrong = [item for item in outcomes if not isinstance(item, ScriptedOutcome)]
    if wrong:
        msg = f"{what} for task {task!r} must be ScriptedOutcome values, not {wrong[0]!r}"
        raise TypeError(msg)
    return outcomes


def _kinds(outcomes: Iterable[ScriptedOutcome]) -> set[str]:
    return {outcome.kind for outcome in outcomes}


class ScriptedTasks:
    """Task functions whose outcome is scripted per task identifier, recording every launch.

    An instance is a task function: use it as the function (and repair
    variant) of any task, with :meth:`task` to build tasks or :meth:`apply` to
    put it in place of the functions of an existing definition. When a task
    runs, it looks up its outcome by the task's identifier and launch, acts it
    out, and records a :class:`ScriptedLaunch`.

    Script a task by naming it in one of the keywords (every launch of it does
    that), or give ``outcomes``: a mapping from task identifiers to a
    :class:`ScriptedOutcome`, or to a sequence of them for the task's launches
    in the run (``context.attempt`` 1, 2, ...; the last one goes on for later
    launches). ``repairs`` scripts the repair variants the same way (launches
    counted by ``context.attempt`` too); tasks not scripted succeed with
    output, and so do repair variants. A :meth:`ScriptedOutcome.crash` is
    scripted through ``outcomes`` only, before the outcome of the launch that
    runs after the takeover.

    Scripted tasks are not picklable: run them inline or on thread pools.

    Args:
        outcomes: Outcomes by task identifier.
        succeed: Tasks that complete with output.
        no_output: Tasks that complete without output.
        fail: Tasks that raise :class:`ScriptedTaskError`; not in warning mode.
        warn: Tasks that raise :class:`ScriptedTaskError` in warning mode.
        block: Tasks that raise :class:`~jobledger.runner.TaskBlocked`.
        cancel: Tasks that request a cancel of their run, then complete.
        repairs: Outcomes of repair variants, by task identifier.
        ledger: The ledger runs are recorded in: needed to request a cancel.
        service: The service of the runs' jobs, for the cancel requests.
        clock: When a cancel is requested (it decides whether the run's lease
            is live: see :func:`~jobledger.runner.request_cancel`). By default,
            when the run's drive last renewed its lease, so the request reaches
            the drive that runs the task whatever clock its runner reads.

    Raises:
        ValueError: a task is scripted twice, a sequence is empty, or a cancel
            is scripted without a ledger.
        TypeError: an identifier is not a string, or an outcome not a
            :class:`ScriptedOutcome`.

    >>> script = ScriptedTasks(
    ...     {"sync": [ScriptedOutcome.block("too many deletions"), ScriptedOutcome.succeed()]},
    ...     warn=["export_ad"],
    ... )
    >>> script.outcome("sync", 1).kind, script.outcome("sync", 5).kind
    ('block', 'succeed')
    >>> script.task("export_ad").warning_mode, script.task("sync").guarded
    (True, True)
    """

    def __init__(
        self,
        outcomes: Mapping[str, _Script] | None = None,
        *,
        succeed: str | Iterable[str] = (),
        no_output: str | Iterable[str] = (),
        fail: str | Iterable[str] = (),
        warn: str | Iterable[str] = (),
        block: str | Iterable[str] = (),
        cancel: str | Iterable[str] = (),
        repairs: Mapping[str, _Script] | None = None,
        ledger: Jobs | None = None,
        service: str = RUN_SERVICE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Check and keep the script; see the class for the arguments."""
        scripted: dict[str, tuple[ScriptedOutcome, ...]] = {}
        where: dict[str, str] = {}

        def add(task: str, sequence: tuple[ScriptedOutcome, ...], what: str) -> None:
            if task in scripted:
                msg = f"task {task!r} is scripted twice: in {where[task]} and in {what}"
                raise ValueError(msg)
            scripted[task] = sequence
            where[task] = what

        for task, script in (outcomes or {}).items():
            _identifiers(task, "outcomes")
            add(task, _sequence(task, script, "outcomes"), "outcomes")
        keywords: dict[str, tuple[str | Iterable[str], ScriptedOutcome]] = {
            "succeed": (succeed, ScriptedOutcome.succeed()),
            "no_output": (no_output, ScriptedOutcome.no_output()),
            "fail": (fail, ScriptedOutcome.fail()),
            "warn": (warn, ScriptedOutcome.warn()),
            "block": (block, ScriptedOutcome.block()),
            "cancel": (cancel, ScriptedOutcome.cancel()),
        }
        for keyword, (names, outcome) in keywords.items():
            for task in _identifiers(names, keyword):
                add(task, (outcome,), keyword)
        self._outcomes = scripted
        self._repairs: dict[str, tuple[ScriptedOutcome, ...]] = {}
        for task, script in (repairs or {}).items():
            _identifiers(task, "repairs")
            self._repairs[task] = _sequence(task, script, "repairs")
        everything = [*scripted.values(), *self._repairs.values()]
        if ledger is None and any("cancel" in _kinds(sequence) for sequence in everything):
            msg = "a scripted cancel needs the ledger: give ScriptedTasks(ledger=jobs)"
            raise ValueError(msg)
        self.ledger = ledger
        self.service = service
        self.clock = clock
        self._lock = threading.Lock()
        self._positions = itertools.count()
        self._launches: list[ScriptedLaunch] = []

    @classmethod
    def of(cls, definition: JobDefinition) -> ScriptedTasks:
        """The script the tasks of ``definition`` run, e.g. one drawn by a strategy.

        Raises:
            ValueError: not every task (and repair variant) of it runs one same script.
        """
        functions = {id(task.function): task.function for task in definition.tasks}
        functions.update(
            {id(task.repair): task.repair for task in definition.tasks if task.repair is not None}
        )
        found = list(functions.values())
        if len(found) != 1 or not isinstance(found[0], ScriptedTasks):
            msg = f"the tasks of {definition.identifier!r} do not all run one ScriptedTasks"
            raise ValueError(msg)
        return found[0]

    def outcome(self, task: str, attempt: int = 1, *, repair: bool = False) -> ScriptedOutcome:
        """What ``task`` does on launch ``attempt`` of a run (its repair variant, with ``repair``).

        >>> ScriptedTasks(fail=["sync"]).outcome("sync")
        ScriptedOutcome(kind='fail', message=None, details=None, summary=None, unless_force=None)
        """
        sequence = (self._repairs if repair else self._outcomes).get(task, (_SUCCEED,))
        return sequence[min(max(attempt, 1), len(sequence)) - 1]

    def outcomes(self, task: str, *, repair: bool = False) -> tuple[ScriptedOutcome, ...]:
        """Every outcome scripted for ``task`` (or its repair variant), launch by launch."""
        return (self._repairs if repair else self._outcomes).get(task, (_SUCCEED,))

    def _mode_problems(self, task: str, *, warning_mode: object) -> list[str]:
        kinds = _kinds(self.outcomes(task))
        if warning_mode is True and "fail" in kinds:
            return [f"task {task!r} is scripted to fail but is in warning mode: script warn"]
        if warning_mode is not True and "warn" in kinds:
            return [f"task {task!r} is scripted to warn but is not in warning mode"]
        return []

    def task(
        self,
        identifier: str,
        *,
        type: str = "task",
        launch_order: int = 1,
        parents: str | Iterable[str] = (),
        side: str = SERVER,
        warning_mode: bool | None = None,
        guarded: bool | None = None,
        repair: bool | None = None,
        timeout: float | None = None,
    ) -> Task:
        """A :class:`~jobledger.runner.Task` that runs this script; fields as ``Task``'s.

        By default the task is in warning mode when it is scripted to warn, is
        guarded when it is scripted to block (or has a repair variant), and has
        the script as its repair variant when repairs are scripted for it.

        Raises:
            ValueError: the task is scripted to warn but ``warning_mode`` is
                false, or to fail but ``warning_mode`` is true.
        """
        kinds = _kinds(self.outcomes(identifier))
        if warning_mode is None:
            warning_mode = "warn" in kinds
        if repair is None:
            repair = identifier in self._repairs
        if guarded is None:
            guarded = "block" in kinds or repair
        problems = self._mode_problems(identifier, warning_mode=warning_mode)
        if problems:
            raise ValueError(problems[0])
        return Task(
            identifier,
            self,
            type=type,
            launch_order=launch_order,
            parents=parents,
            side=side,
            warning_mode=warning_mode,
            guarded=guarded,
            repair=self if repair else None,
            timeout=timeout,
        )

    def apply(self, definition: JobDefinition) -> JobDefinition:
        """``definition`` with this script in place of every task function and repair variant.

        Launch orders, parents, sides, warning modes, guards and timeouts stay
        as they are: run the copy to see what the definition does when its
        tasks do what the script says.

        Raises:
            ValueError: listing every problem: a scripted task that is not in
                the definition, a repair scripted for a task with no repair
                variant, a task scripted to warn that is not in warning mode or
                to fail that is.
        """
        tasks = {task.identifier: task for task in definition.tasks}
        problems = [
            f"task {name!r} is scripted but is not a task of {definition.identifier!r}"
            for name in self._outcomes
            if name not in tasks
        ]
        for name in self._repairs:
            if name not in tasks:
                problems.append(
                    f"a repair is scripted for {name!r}, which is not a task of "
                    f"{definition.identifier!r}"
                )
            elif tasks[name].repair is None:
                problems.append(f"a repair is scripted for {name!r}, which has no repair variant")
        for task in definition.tasks:
            problems += self._mode_problems(task.identifier, warning_mode=task.warning_mode)
        if problems:
            raise ValueError("cannot apply the script:\n  - " + "\n  - ".join(problems))
        return JobDefinition(
            definition.identifier,
            [
                attrs.evolve(task, function=self, repair=None if task.repair is None else self)
                for task in definition.tasks
            ],
            display_name=definition.display_name,
        )

    def __call__(self, context: TaskContext) -> TaskResult:
        """Act out the scripted outcome of the task of ``context``, and record the launch.

        Raises:
            ScriptedTaskError: the outcome is ``fail`` or ``warn``.
            TaskBlocked: the outcome is ``block``.
            SimulatedCrash: the outcome is ``crash``.
        """
        name = context.task.identifier
        outcome = self.outcome(name, context.attempt, repair=context.repair)
        if (
            outcome.kind == "block"
            and outcome.unless_force is not None
            and context.force is not None
            and context.force >= outcome.unless_force
        ):
            outcome = ScriptedOutcome.succeed(outcome.summary)
        cancel_requested = context.cancel_requested
        with self._lock:
            start = next(self._positions)
        try:
            return self._act(name, outcome, context)
        finally:
            with self._lock:
                self._launches.append(
                    ScriptedLaunch(
                        task=name,
                        run_id=context.run_id,
                        attempt=context.attempt,
                        repair=context.repair,
                        force=context.force,
                        input=context.input,
                        cancel_requested=cancel_requested,
                        outcome=outcome,
                        start=start,
                        end=next(self._positions),
                    )
                )

    def _act(self, name: str, outcome: ScriptedOutcome, context: TaskContext) -> TaskResult:
        kind = outcome.kind
        if kind in {"fail", "warn"}:
            verb = "failed" if kind == "fail" else "raised in warning mode"
            message = outcome.message or f"task {name!r} {verb} (scripted)"
            raise ScriptedTaskError(name, context.attempt, message)
        if kind == "block":
            reason = outcome.message or f"task {name!r} blocked (scripted)"
            raise TaskBlocked(reason, details=outcome.details)
        if kind == "crash":
            raise SimulatedCrash(name, context.attempt)
        if kind == "cancel":
            # The constructor refuses a scripted cancel without a ledger.
            assert self.ledger is not None  # noqa: S101
            ledger, run_id = self.ledger, context.run_id
            clock = self.clock or (lambda: _lease_renewed_at(ledger, run_id, self.service))
            request_cancel(ledger, run_id, service=self.service, clock=clock)
        return TaskResult(output=kind != "no_output", summary=outcome.summary)

    @property
    def launches(self) -> tuple[ScriptedLaunch, ...]:
        """Every launch of the script's tasks so far, in the order they started."""
        with self._lock:
            recorded = list(self._launches)
        return tuple(sorted(recorded, key=lambda launch: launch.start))

    def launched(self, run_id: str | None = None) -> list[str]:
        """The identifiers of the tasks launched (for ``run_id``, when given), in start order."""
        return [
            launch.task for launch in self.launches if run_id is None or launch.run_id == run_id
        ]

    def __repr__(self) -> str:
        """Show the script: each task's outcomes, launch by launch."""

        def show(sequence: tuple[ScriptedOutcome, ...]) -> str:
            return "/".join(outcome.kind for outcome in sequence)

        parts = [f"{name}={show(sequence)}" for name, sequence in self._outcomes.items()]
        parts += [f"{name}(repair)={show(sequence)}" for name, sequence in self._repairs.items()]
        return f"<ScriptedTasks {' '.join(parts) or 'all succeed'}>"


# -- assertions --------------------------------------------------------------------------

_EXPECTATIONS: tuple[tuple[str, TaskStatus], ...] = (
    ("completed", TaskStatus.COMPLETED),
    ("warned", TaskStatus.WARNING),
    ("failed", TaskStatus.FAILED),
    ("blocked", TaskStatus.BLOCKED),
    ("skipped", TaskStatus.SKIPPED),
    ("canceled", TaskStatus.CANCELED),
    ("pending", TaskStatus.PENDING),
)


def _detail(outcome: TaskOutcome) -> str:
    if outcome.error is not None:
        return f"{outcome.error.type}: {outcome.error.message}"
    if outcome.blocked is not None:
        return f"blocked: {outcome.blocked.reason}"
    if outcome.skip_reason is not None:
        return outcome.skip_reason
    if outcome.status is TaskStatus.COMPLETED and outcome.output is False:
        return "no output"
    return ""


def _account(result: RunResult) -> str:
    lines = [f"the run ({result.status.value}):"]
    width = max((len(name) for name in result.outcomes), default=0)
    for name, outcome in result.outcomes.items():
        line = f"  step {outcome.launch_order}  {name:<{width}}  {outcome.status.value:<9}"
        detail = _detail(outcome)
        lines.append(f"{line}  {detail}".rstrip() if detail else line.rstrip())
    groups = "; ".join(
        f"{group.number}: {', '.join(group.tasks)}" for group in result.launch_groups
    )
    lines.append(f"launch groups: {groups or 'none'}")
    return "\n".join(lines)


def _names_mismatch(label: str, expected: list[str], actual: list[str], known: list[str]) -> str:
    # Show the expectation in the run's step order, so it reads beside the actual list.
    expected = sorted(expected, key=lambda name: known.index(name) if name in known else len(known))
    missing = [name for name in expected if name not in actual]
    unexpected = [name for name in actual if name not in expected]
    notes = [f"missing {', '.join(map(repr, missing))}"] if missing else []
    if unexpected:
        notes.append(f"unexpected {', '.join(map(repr, unexpected))}")
    strangers = [name for name in expected if name not in known]
    if strangers:
        notes.append(f"not tasks of this run: {', '.join(map(repr, strangers))}")
    return f"  {label}: expected {expected}, got {actual}; {'; '.join(notes)}"


def assert_run(
    result: RunResult,
    *,
    status: RunStatus | str | None = None,
    completed: str | Iterable[str] | None = None,
    warned: str | Iterable[str] | None = None,
    failed: str | Iterable[str] | None = None,
    blocked: str | Iterable[str] | None = None,
    skipped: str | Iterable[str] | None = None,
    canceled: str | Iterable[str] | None = None,
    pending: str | Iterable[str] | None = None,
    launched: Iterable[Iterable[str]] | None = None,
) -> None:
    """Assert what a run came to; check only what is given.

    Each task list names exactly the tasks of the run with that status, in any
    order: ``completed=["a"]`` fails when ``b`` completed too. ``warned`` is the
    ``warning`` status. ``launched`` lists the run's launch groups in order,
    each the tasks it launched, in step order (resumes add groups).

    Args:
        result: The run, as :meth:`~jobledger.runner.Runner.invoke` or
            :meth:`~jobledger.runner.Runner.result` returned it.
        status: The run's status.
        completed: The tasks that completed.
        warned: The tasks in warning mode that raised.
        failed: The tasks that failed.
        blocked: The tasks that blocked.
        skipped: The tasks skipped by their parent checks.
        canceled: The tasks that stopped on a cancel request.
        pending: The tasks never launched.
        launched: The launch groups, oldest first, as lists of task identifiers.

    Raises:
        AssertionError: something differs; the message lists every difference,
            then every task of the run with its status and why, and the launch
            groups.
        ValueError: ``status`` is not a run status.

    >>> from jobledger.runner import RunStatus, RunResult
    >>> assert_run(RunResult("run-1", "Nightly", RunStatus.COMPLETED, {}), status="failed")
    Traceback (most recent call last):
    ...
    AssertionError: run 'run-1' of 'Nightly' is not as expected:
      status: expected 'failed', got 'completed'
    the run (completed):
    launch groups: none
    """
    problems: list[str] = []
    if status is not None and RunStatus(status) is not result.status:
        problems.append(
            f"  status: expected {RunStatus(status).value!r}, got {result.status.value!r}"
        )
    known = list(result.outcomes)
    given = {
        "completed": completed,
        "warned": warned,
        "failed": failed,
        "blocked": blocked,
        "skipped": skipped,
        "canceled": canceled,
        "pending": pending,
    }
    for label, task_status in _EXPECTATIONS:
        names = given[label]
        if names is None:
            continue
        expected = _identifiers(names, label)
        actual = [
            name for name, outcome in result.outcomes.items() if outcome.status is task_status
        ]
        if sorted(expected) != sorted(actual):
            problems.append(_names_mismatch(label, expected, actual, known))
    if launched is not None:
        expected_groups = [_identifiers(group, "launched") for group in launched]
        actual_groups = [list(group.tasks) for group in result.launch_groups]
        if expected_groups != actual_groups:
            problems.append(f"  launched: expected {expected_groups}, got {actual_groups}")
    if problems:
        header = f"run {result.run_id!r} of {result.definition!r} is not as expected:"
        raise AssertionError("\n".join([header, *problems, _account(result)]))


def launch_history(jobs: Jobs, run_id: str, *, service: str = RUN_SERVICE) -> list[LaunchGroup]:
    """The run's launch groups as its launch jobs in the ledger record them, oldest first.

    Each launch group is the tasks of one step launched together by one drive
    (read with :func:`~jobledger.runner.load_run`). Compare
    ``[group.tasks for group in ...]`` with the order you expect;
    ``group.drive`` tells the invoke (1) from each resume or takeover.

    Raises:
        RunNotFoundError: no job has this id, or it is not a run of ``service``.
    """
    return list(load_run(jobs, run_id, service=service).launch_groups)


def _launches_account(launches: Sequence[Launch]) -> str:
    rows = [
        (
            f"#{launch.input.launch}",
            f"step {launch.input.step}",
            f"group {'-' if launch.input.group is None else launch.input.group}",
            f"drive {launch.input.drive}",
            f"attempt {launch.input.attempt}",
            launch.input.task,
            launch.status.value,
            "; ".join(
                note
                for note in ("repair" if launch.input.repair else "", _detail(launch.outcome()))
                if note
            ),
        )
        for launch in launches
    ]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(7)]
    lines = [f"the launches ({len(launches)}):"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append(("  " + "  ".join([*cells, row[7]])).rstrip())
    return "\n".join(lines)


def assert_launches(
    jobs: Jobs,
    run_id: str,
    *,
    tasks: Iterable[str] | None = None,
    statuses: Iterable[TaskStatus | str] | None = None,
    drives: Iterable[int] | None = None,
    attempts: Iterable[int] | None = None,
    repairs: Iterable[bool] | None = None,
    groups: Iterable[int | None] | None = None,
    service: str = RUN_SERVICE,
) -> tuple[Launch, ...]:
    """Assert what a run's launch jobs record, in launch order; check only what is given.

    Every launch of a task, and every skip, is its own job in the ledger
    (``<run id>/1``, ``<run id>/2``, ...), so a task launched again on a resume
    or a takeover has a launch per drive: this is where a test sees that a
    task ran twice, or that a takeover ended a dead drive's launch. Each
    keyword lists one fact of every launch, oldest first.

    Args:
        jobs: The ledger.
        run_id: The run.
        tasks: The tasks' identifiers.
        statuses: Where each launch ended (a :class:`~jobledger.runner.TaskStatus`
            or its value): ``running`` for one that has not ended.
        drives: The drive that made each (1 for the invoke, then one per
            resume or takeover).
        attempts: Which launch of its task in the run each is (a skip counts none).
        repairs: Whether each ran its task's repair variant.
        groups: The launch group of each; ``None`` for a skip.
        service: The service of the run's job.

    Returns:
        The launches, for a closer look (their errors, progress and times).

    Raises:
        AssertionError: something differs; the message lists every
            difference, then every launch with its step, group, drive, attempt,
            task, status and why.
        RunNotFoundError: no run has this id.
        ValueError: a status is not a task status.
    """
    state = load_run(jobs, run_id, service=service).state
    launches = load_launches(jobs, run_id, 0 if state is None else state.launches)
    given: dict[str, tuple[list[object] | None, list[object]]] = {
        "tasks": (
            None if tasks is None else list(_identifiers(tasks, "tasks")),
            [launch.input.task for launch in launches],
        ),
        "statuses": (
            None if statuses is None else [TaskStatus(status).value for status in statuses],
            [launch.status.value for launch in launches],
        ),
        "drives": (
            None if drives is None else list(drives),
            [launch.input.drive for launch in launches],
        ),
        "attempts": (
            None if attempts is None else list(attempts),
            [launch.input.attempt for launch in launches],
        ),
        "repairs": (
            None if repairs is None else list(repairs),
            [launch.input.repair for launch in launches],
        ),
        "groups": (
            None if groups is None else list(groups),
            [launch.input.group for launch in launches],
        ),
    }
    problems = [
        f"  {label}: expected {expected}, got {actual}"
        for label, (expected, actual) in given.items()
        if expected is not None and expected != actual
    ]
    if problems:
        header = f"launches of run {run_id!r} are not as expected:"
        raise AssertionError("\n".join([header, *problems, _launches_account(launches)]))
    return launches


def expire_lease(
    jobs: Jobs, run_id: str, clock: ManualClock, *, service: str = RUN_SERVICE
) -> datetime:
    """Move ``clock`` to the expiry of the run's lease, so another drive may claim the run.

    A takeover test in one process: leave a run ``running`` as a drive that
    died does (a task scripted to :meth:`~ScriptedOutcome.crash`), expire its
    lease, and resume it: the resume takes the run over. ``clock`` must be the
    clock of the runner that recorded the lease and of the one that resumes
    (the harness's or ``jobledger_clock``). A clock already past the expiry
    stays where it is.

    Returns:
        The time the clock reads now.

    Raises:
        RunNotFoundError: no run has this id.
        ValueError: no drive holds the run's lease: it is blocked, released
            or over, and a resume claims it as it is.
    """
    result = load_run(jobs, run_id, service=service)
    lease = None if result.state is None else result.state.lease
    if lease is None:
        msg = (
            f"run {run_id!r} ({result.status.value}) has no lease to expire: no drive holds "
            "it (it is blocked, released or over)"
        )
        raise ValueError(msg)
    if clock.now < lease.expires_at:
        clock.set(lease.expires_at)
    return clock.now
