"""The runner: invokes job definitions and resumes their runs, recording all in the ledger.

One call of :meth:`Runner.invoke` or :meth:`Runner.resume` is one *drive* of
a run: it claims the run with an ETag-guarded update, runs the steps that
are not done, and ends the run (or leaves it ``blocked``). Only the drive
that holds the run's current ETag can write it, so two runners never drive
one run at once.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import queue
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import attrs

from jobledger._application.defaults import new_id, utc_now
from jobledger._core.errors import ConcurrencyError, InvalidJobDataError, InvalidTransitionError
from jobledger._core.events import JobCanceled, JobCompleted, JobFailed, JobUpdated
from jobledger._core.jsondoc import freeze
from jobledger.runner._context import (
    CancelSignal,
    ProgressReport,
    ProgressSink,
    TaskCall,
    TaskReport,
    TaskStarted,
    error_of,
    error_type,
    execute,
)
from jobledger.runner._definition import AGENT, SERVER, JobDefinition, Task
from jobledger.runner._errors import (
    DefinitionError,
    RunNotResumableError,
    TaskTimeoutError,
    UnknownDefinitionError,
)
from jobledger.runner._outcome import RunResult, TaskError
from jobledger.runner._record import (
    RUN_ENTITY,
    RUN_SERVICE,
    RunRecorder,
    compose_patches,
    drive_of,
    initial_state,
    load_run,
    pending_entries,
    request_cancel,
)
from jobledger.runner._selection import Selection
from jobledger.runner._states import RunStatus, RunTrigger, TaskStatus, next_run_status
from jobledger.runner._steps import group_steps

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from multiprocessing.managers import SyncManager

    from jobledger._application.delivery import Subscription
    from jobledger._application.jobs import Jobs
    from jobledger._core.events import JobEvent
    from jobledger._core.job import Job
    from jobledger._core.jsondoc import JsonObject, JsonValue

__all__ = ["Runner"]

logger = logging.getLogger("jobledger.runner")

_Item = TypeVar("_Item")

#: Seconds between looks at the progress queue of tasks in other processes.
_MANAGED_PROGRESS_INTERVAL = 0.05

#: Fields of a task's entry that describe one launch; a new launch clears them.
_LAUNCH_FIELDS = (
    "started_at",
    "ended_at",
    "duration",
    "output",
    "summary",
    "error",
    "blocked",
    "skip_reason",
    "progress",
)


def runs_in_process(executor: Executor) -> bool:
    """Whether ``executor`` runs its calls in this process.

    A :class:`~concurrent.futures.ThreadPoolExecutor` does, and so does any
    executor with a true ``runs_in_process`` attribute (an executor that runs
    calls inline, say). The runner hands such executors plain in-process
    cancellation flags; any other gets them through a :mod:`multiprocessing`
    manager.
    """
    return (
        isinstance(executor, ThreadPoolExecutor)
        or getattr(executor, "runs_in_process", False) is True
    )


class Runner:
    """Runs job definitions and records every run in a ledger.

    Args:
        jobs: The ledger runs are recorded in (any repository).
        definitions: The job definitions this runner can invoke and resume.
        executors: Executors by side name. ``"server"`` and ``"agent"`` not
            given here get thread pools of the runner's own, wide enough for
            each step to run all its tasks at once (see "Threads" below).
            Executors given here are used as they are and never shut down by
            the runner; on an executor that does not run its calls in this
            process (see :func:`runs_in_process`: a process pool, say) task
            functions must be picklable, and the cancellation flag and
            progress reports travel through a :mod:`multiprocessing` manager.
        heartbeat: Seconds between the writes that show a drive is alive while
            its tasks run.
        takeover_after: Seconds of silence after which a ``running`` run may be
            taken over by :meth:`resume`; three heartbeats by default.
        poll_interval: Seconds between reads of the run while tasks run, to see
            cancel requests made in other processes (requests made through the
            same :class:`~jobledger.Jobs` are seen at once).
        clock: Reads the time for the records; UTC now by default.
        id_factory: Makes drive ids; UUIDv7 strings by default.
        service: The service of the runs' jobs.

    Raises:
        DefinitionError: two definitions share an identifier, or tasks name
            sides that have no executor.

    **Threads.** For ``"server"`` and ``"agent"`` tasks without an executor
    given, a drive borrows a thread pool from the runner, one per side, as
    wide as the widest step of the runner's definitions on that side, and
    gives it back when the run ends, blocks or is canceled. The runner keeps
    the pools given back and their threads (which wait, idle, for the next
    drive), so that invoking again starts no threads; drives that run at the
    same time never share a pool. A pool whose threads may still be busy
    (a task abandoned on its timeout, a drive stopped by an error) is shut
    down instead of kept. :meth:`close` shuts the kept pools down and waits
    for their threads to end (a closed runner still runs, keeping no
    threads); a ``with`` block closes the runner at its end.
    The threads never keep the interpreter from exiting once their tasks are
    done, and a runner that is dropped without being closed lets its threads
    end too; close it anyway to free them at a known point. A runner used in a
    forked child starts pools of its own there (the parent's threads do not
    come along).

    >>> from jobledger import Jobs
    >>> from jobledger.runner import DefinitionBuilder, Runner, TaskResult
    >>> nightly = DefinitionBuilder("Nightly")
    >>> @nightly.task(type="export")
    ... def export_hr(context):
    ...     return TaskResult(summary="42 employees")
    >>> @nightly.task(launch_order=2, type="synchronize", parents="export_hr")
    ... def synchronize_hr(context):
    ...     return None
    >>> runner = Runner(Jobs(), [nightly.build()])
    >>> result = runner.invoke("Nightly")
    >>> result.status, result.statuses()
    (<RunStatus.COMPLETED: 'completed'>, {'export_hr': 'completed', 'synchronize_hr': 'completed'})
    >>> result.outcomes["export_hr"].summary
    '42 employees'
    >>> runner.close()

    Or let a ``with`` block close it:

    >>> with Runner(Jobs(), [nightly.build()]) as runner:
    ...     runner.invoke("Nightly").status
    <RunStatus.COMPLETED: 'completed'>
    """

    def __init__(
        self,
        jobs: Jobs,
        definitions: Iterable[JobDefinition],
        *,
        executors: Mapping[str, Executor] | None = None,
        heartbeat: float = 30.0,
        takeover_after: float | None = None,
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        id_factory: Callable[[], str] = new_id,
        service: str = RUN_SERVICE,
    ) -> None:
        self.jobs = jobs
        self.executors: Mapping[str, Executor] = MappingProxyType(dict(executors or {}))
        found: dict[str, JobDefinition] = {}
        problems: list[str] = []
        for definition in definitions:
            if definition.identifier in found:
                problems.append(f"definition {definition.identifier!r} is given more than once")
                continue
            found[definition.identifier] = definition
            sides = {SERVER, AGENT, *self.executors}
            problems.extend(
                f"definition {definition.identifier!r}: task {task.identifier!r} runs on side "
                f"{task.side!r}, which has no executor (known: {', '.join(sorted(sides))})"
                for task in definition.tasks
                if task.side not in sides
            )
        if problems:
            raise DefinitionError("<runner>", problems)
        self.definitions: Mapping[str, JobDefinition] = MappingProxyType(found)
        for name, value in (("heartbeat", heartbeat), ("poll_interval", poll_interval)):
            if not value > 0:
                msg = f"{name} must be a positive number of seconds, not {value!r}"
                raise ValueError(msg)
        if takeover_after is not None and not takeover_after >= 0:
            msg = f"takeover_after must be zero or more seconds, not {takeover_after!r}"
            raise ValueError(msg)
        self.heartbeat = heartbeat
        self.takeover_after = 3 * heartbeat if takeover_after is None else takeover_after
        self.poll_interval = poll_interval
        self.clock = clock
        self.id_factory = id_factory
        self.service = service
        self._pending_entries: dict[str, Mapping[str, JsonValue]] = {}
        self._pools = _ThreadPools(
            {
                side: _widest_step(found.values(), side)
                for side in (SERVER, AGENT)
                if side not in self.executors
            }
        )

    def __enter__(self) -> Self:
        """Return the runner; it is closed when the ``with`` block ends."""
        return self

    def __exit__(self, *_exc_info: object) -> None:
        """Close the runner (see :meth:`close`)."""
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: the runner keeps no threads since."""
        return self._pools.closed

    def close(self) -> None:
        """Shut down the thread pools the runner keeps and wait for their threads to end.

        Drives still running go on to their end, then shut down the pools they
        borrowed. Executors given to the runner are left as they are. Closing
        again does nothing. A closed runner still invokes and resumes runs, but
        keeps nothing: each drive's pools are shut down when it ends.
        """
        self._pools.close()

    def _pending(self, definition: JobDefinition) -> Mapping[str, JsonValue]:
        # Made once per definition: every run of it starts with the same entries.
        entries = self._pending_entries.get(definition.identifier)
        if entries is None:
            entries = self._pending_entries[definition.identifier] = pending_entries(definition)
        return entries

    def definition(self, identifier: str) -> JobDefinition:
        """The definition with ``identifier``.

        Raises:
            UnknownDefinitionError: the runner has no such definition.
        """
        try:
            return self.definitions[identifier]
        except KeyError:
            raise UnknownDefinitionError(identifier, self.definitions) from None

    def invoke(
        self,
        definition_id: str,
        *,
        selection: Selection | None = None,
        begin_step: int | None = None,
        end_step: int | None = None,
        task: str | None = None,
        task_type: str | None = None,
        contains: str | None = None,
        force: int | None = None,
        input: object = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Run a job definition; return when the run completes, fails, blocks or is canceled.

        Args:
            definition_id: The identifier of the definition to run.
            selection: Which tasks to run, as a :class:`Selection`; or give its
                fields as the keywords below (not both).
            begin_step: The first launch order to run.
            end_step: The last launch order to run (inclusive).
            task: Run only this task.
            task_type: Run only the first task of this type.
            contains: Run the tasks whose identifier contains this text.
            force: The force threshold handed to guarded tasks.
            input: The run's input, a JSON value handed to every task.
            run_id: The id to give the run's job; the ledger makes one when ``None``.

        Returns:
            The run, as the ledger records it at its end.

        Raises:
            UnknownDefinitionError: no definition has ``definition_id``.
            SelectionError: the selection is invalid or selects nothing.
            InvalidJobDataError: ``input`` is not JSON, or ``force`` not an integer.
            JobAlreadyExistsError: ``run_id`` is taken.
            RunTakenOverError: another runner took the run over meanwhile.
        """
        definition = self.definition(definition_id)
        flags = Selection(
            begin_step=begin_step,
            end_step=end_step,
            task=task,
            task_type=task_type,
            contains=contains,
        )
        if selection is not None and flags != Selection():
            msg = "give either a Selection or selection keywords, not both"
            raise TypeError(msg)
        selection = flags if selection is None else selection
        tasks = selection.select(definition)
        _check_force(force)
        job = self.jobs.start(
            service=self.service,
            entity=RUN_ENTITY,
            type=definition.identifier,
            display_name=definition.display_name or definition.identifier,
            input={
                "definition": definition.identifier,
                "selection": selection.to_json(),
                "force": force,
                "input": input,
            },
            state=initial_state(definition, tasks, force, entries=self._pending(definition)),
            job_id=run_id,
        )
        logger.info("run started", extra={"run_id": job.id, "definition": definition.identifier})
        drive = _Drive(
            self, self._pools, definition, job, RunTrigger.INVOKE, repair=False, force=force
        )
        return drive.run()

    def resume(self, run_id: str, *, repair: bool = False, force: int | None = None) -> RunResult:
        """Drive a blocked run on from its breakpoint, or take over a silent one.

        A ``blocked`` run runs its blocked tasks again (with ``repair=True``,
        their repair variants in their place, recorded as repairs), then only
        the tasks that had not run. A ``running`` run whose runner has been
        silent for longer than ``takeover_after`` is taken over: every task
        not done runs, the ones its old runner had running included.

        Args:
            run_id: The run.
            repair: Run the blocked tasks' repair variants.
            force: A new force threshold; ``None`` keeps the run's.

        Returns:
            The run, as the ledger records it at its end.

        Raises:
            RunNotFoundError: no run has this id.
            UnknownDefinitionError: this runner does not know the run's definition.
            RunNotResumableError: the run is over, is being driven, was claimed
                by another runner first, or cannot be repaired.
            RunTakenOverError: another runner took the run over meanwhile.
            InvalidJobDataError: the ledger refused to claim the run: its state is
                over the ledger's limits already; the run is left as it was.
        """
        job = load_run(self.jobs, run_id, self.service)
        definition = self.definition(job.type)
        _check_force(force)
        trigger = self._resume_trigger(job, repair=repair)
        state_tasks = job.state.get("tasks")
        known = {task.identifier for task in definition.tasks}
        missing = sorted(set(state_tasks if isinstance(state_tasks, dict) else ()) - known)
        if missing:
            reason = f"its definition no longer has the tasks {', '.join(map(repr, missing))}"
            raise RunNotResumableError(run_id, job.status, reason)
        if repair:
            blocked = RunResult.of(job).breakpoint
            lacking = [
                name
                for name in (blocked.tasks if blocked else ())
                if definition.task(name).repair is None
            ]
            if lacking:
                names = ", ".join(map(repr, lacking))
                raise RunNotResumableError(run_id, job.status, f"no repair variant for {names}")
        return _Drive(self, self._pools, definition, job, trigger, repair=repair, force=force).run()

    def _resume_trigger(self, job: Job, *, repair: bool) -> RunTrigger:
        status = RunResult.of(job).status
        if status is RunStatus.BLOCKED:
            trigger = RunTrigger.RESUME
        elif status is RunStatus.RUNNING:
            silence = self.clock() - job.updated_at
            if silence <= timedelta(seconds=self.takeover_after):
                reason = (
                    f"a runner drives it (it wrote {silence.total_seconds():g}s ago; "
                    f"it may be taken over after {self.takeover_after:g}s of silence)"
                )
                raise RunNotResumableError(job.id, job.status, reason)
            if repair:
                raise RunNotResumableError(job.id, job.status, "only a blocked run is repaired")
            trigger = RunTrigger.TAKE_OVER
        else:
            trigger = RunTrigger.RESUME
        if next_run_status(status, trigger) is None:
            raise RunNotResumableError(job.id, job.status, "the run is over")
        return trigger

    def request_cancel(self, run_id: str) -> RunResult:
        """Ask a run to stop; see :func:`jobledger.runner.request_cancel`."""
        return request_cancel(self.jobs, run_id, service=self.service)

    def result(self, run_id: str) -> RunResult:
        """The run as the ledger records it now.

        Raises:
            RunNotFoundError: no run has this id.
        """
        return RunResult.of(load_run(self.jobs, run_id, self.service))


def _widest_step(definitions: Iterable[JobDefinition], side: str) -> int:
    """The most tasks on ``side`` that one step of ``definitions`` has (at least 1)."""
    widest = max(
        (
            sum(1 for task in step.tasks if task.side == side)
            for definition in definitions
            for step in group_steps(definition.tasks)
        ),
        default=0,
    )
    return max(widest, 1)


class _ThreadPools:
    """The thread pools a runner lends its drives for the sides it has no executor for.

    A pool lent to a drive is lent to no other until it is given back, so each
    drive can run all the tasks of a step at once, as with a pool of its own.
    A pool given back idle is kept, with its threads, for the next drive. A
    forked child keeps none of its parent's pools: their threads stayed behind.
    """

    def __init__(self, widths: Mapping[str, int]) -> None:
        self.widths = widths
        self.lock = threading.Lock()
        self.idle: dict[str, list[ThreadPoolExecutor]] = {}
        self.closed = False
        self.pid = os.getpid()

    def _leave_the_parents(self) -> None:
        """In a forked child, drop the parent's pools and lock (another thread may have held it)."""
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.lock = threading.Lock()
            self.idle = {}

    def borrow(self, side: str) -> ThreadPoolExecutor:
        self._leave_the_parents()
        with self.lock:
            kept = self.idle.get(side)
            if kept:
                return kept.pop()
        return ThreadPoolExecutor(
            max_workers=self.widths.get(side, 1), thread_name_prefix=f"jobledger-{side}"
        )

    def give_back(self, side: str, pool: ThreadPoolExecutor, *, idle: bool) -> None:
        """Keep ``pool`` for the next drive if it is ``idle``; shut it down otherwise."""
        self._leave_the_parents()
        with self.lock:
            if idle and not self.closed:
                self.idle.setdefault(side, []).append(pool)
                return
        # A pool that may still run a task (abandoned on its timeout, or left by a drive
        # stopped by an error) is not waited for: its queued calls are canceled.
        pool.shutdown(wait=idle, cancel_futures=not idle)

    def close(self) -> None:
        self._leave_the_parents()
        with self.lock:
            self.closed = True
            pools = [pool for kept in self.idle.values() for pool in kept]
            self.idle.clear()
        for pool in pools:
            pool.shutdown(wait=True)


def _check_force(force: object) -> None:
    if force is not None and (not isinstance(force, int) or isinstance(force, bool)):
        raise InvalidJobDataError("force", "", "must be an integer or None")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# Task statuses as they are written and read, looked up once (an enum member's
# ``.value`` and ``TaskStatus(text)`` cost a Python call each, on every task).
_TASK_STATUSES: dict[str, TaskStatus] = {status.value: status for status in TaskStatus}
_RUNNING = TaskStatus.RUNNING.value
_COMPLETED = TaskStatus.COMPLETED.value
_WARNING = TaskStatus.WARNING.value
_LAUNCH_FIELD_SET = frozenset(_LAUNCH_FIELDS)
_HALTING = frozenset({TaskStatus.FAILED.value, TaskStatus.BLOCKED.value})


@attrs.frozen
class _Finished:
    """Inbox message: a launch's future is done."""

    task: str
    attempt: int


@attrs.frozen
class _Wake:
    """Inbox message: the run changed in the ledger; read it."""


_Message = _Finished | _Wake | ProgressReport | TaskStarted


@attrs.define
class _Launch:
    """A task launched by this drive and not yet settled."""

    task: Task
    attempt: int
    future: Future[TaskReport]
    cancel_signal: CancelSignal
    deadline: float | None = None
    started_at: datetime | None = None
    flagged: bool = False


class _CancelFlag:
    """A task's in-process cancellation flag: a :class:`threading.Event` made only if waited on.

    Most tasks only look at the flag, or never do; an event (a lock and a
    condition) for each launch would cost more than the rest of the launch.
    """

    __slots__ = ("_event", "_lock", "_set")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


class _Channels:
    """Cancellation flags and the progress queue for tasks on one kind of executor."""

    def __init__(self, manager: SyncManager | None, inbox: queue.SimpleQueue[_Message]) -> None:
        self.manager = manager
        # The inbox for threads; a manager's queue (a proxy) for other processes.
        self.progress: Any = inbox if manager is None else manager.Queue()
        # One lock for the flags of all launches: each holds it only for an instant.
        self.lock = threading.Lock()

    def signal(self) -> CancelSignal:
        return _CancelFlag(self.lock) if self.manager is None else self.manager.Event()

    def sink(self) -> ProgressSink:
        sink: ProgressSink = self.progress
        return sink


def _write_together_or_alone(
    items: list[_Item],
    write: Callable[[list[_Item]], object],
    refused: Callable[[_Item, InvalidJobDataError], None],
) -> None:
    """Write ``items`` in one ledger update; if the ledger refuses it, write each alone.

    One entry may be refused (a summary or progress over the ledger's limits,
    say), or all of them together: written one by one, only an entry the
    ledger refuses on its own is handed to ``refused``.
    """
    try:
        write(items)
    except InvalidJobDataError as error:
        if len(items) == 1:
            refused(items[0], error)
            return
        for item in items:
            try:
                write([item])
            except InvalidJobDataError as alone:
                refused(item, alone)


class _Drive:
    """One drive of a run: claim it, run what is not done, end it."""

    def __init__(
        self,
        runner: Runner,
        pools: _ThreadPools,
        definition: JobDefinition,
        job: Job,
        trigger: RunTrigger,
        *,
        repair: bool,
        force: int | None,
    ) -> None:
        self.runner = runner
        self.pools = pools
        self.jobs = runner.jobs
        self.definition = definition
        self.trigger = trigger
        self.repair = repair
        self.id = runner.id_factory()
        self.seen = job
        self.force = force
        self.inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self.running: dict[str, _Launch] = {}
        # The running launches that have a deadline: the only ones the waits and the
        # expiry look at, so a step of many tasks without timeouts costs no scans.
        self.timed: dict[str, _Launch] = {}
        self.pending_progress: dict[str, tuple[int, JsonObject]] = {}
        self.sides: dict[str, tuple[Executor, _Channels]] = {}
        self.borrowed: list[tuple[str, ThreadPoolExecutor]] = []
        self.local = _Channels(None, self.inbox)
        self.managed: _Channels | None = None
        self.abandoned = False
        self.halted = False
        # Ends of tasks taken in and not yet written (see _write_ends).
        self.ends: list[tuple[Task, dict[str, object]]] = []
        self.repair_tasks: frozenset[str] = frozenset()
        self.last_poll = time.monotonic()
        # Why the run fails when no task's error says it: the ledger refused a write
        # the run cannot go on without (its state would break the ledger's limits).
        self.failure: str | None = None
        self.recorder: RunRecorder

    # -- claim -------------------------------------------------------------------------

    def _claim(self) -> RunRecorder:
        job = self.seen
        previous, number = drive_of(job)
        # Only a repair needs the breakpoint (reading the whole run to get it costs
        # as much as the run has tasks).
        point = RunResult.of(job).breakpoint if self.repair else None
        if point is not None:
            self.repair_tasks = frozenset(point.tasks)
        patch: dict[str, object] = {
            "drive": {
                "id": self.id,
                "number": number + 1,
                "kind": self.trigger.value,
                "repair": self.repair,
                "claimed_at": _iso(self.runner.clock()),
            },
            "breakpoint": None,
        }
        if self.force is not None:
            patch["force"] = self.force
        while True:
            try:
                claimed = self.jobs.update(
                    job.id, etag=job.etag, status=RunStatus.RUNNING.value, state_update=patch
                )
            except (ConcurrencyError, InvalidTransitionError):
                # Someone changed the run since it was read; a finished run refuses the
                # claim with InvalidTransitionError before its ETag is compared.
                job = self.jobs.get(job.id)
                if (
                    # A write to a silent run shows its runner is alive after all.
                    self.trigger is RunTrigger.TAKE_OVER
                    or job.phase.is_terminal
                    or drive_of(job)[0] != previous
                    or job.status != self.seen.status
                ):
                    reason = "another runner claimed it first, or it changed meanwhile"
                    raise RunNotResumableError(job.id, job.status, reason) from None
                continue
            recorder = RunRecorder(self.jobs, claimed, self.id)
            recorder.cancel_requested = claimed.state.get("cancel_requested") is True
            return recorder

    # -- the drive ---------------------------------------------------------------------

    def run(self) -> RunResult:
        try:
            self.recorder = self._claim()
        except InvalidJobDataError as refused:
            if self.trigger is not RunTrigger.INVOKE:
                raise  # the run stays as it was: resumable by a ledger with larger limits
            return self._end_unclaimed(refused)
        logger.info(
            "run claimed",
            extra={"run_id": self.recorder.run_id, "drive_id": self.id, "kind": self.trigger.value},
        )
        subscription: Subscription = self.jobs.subscribe(
            self._on_event,
            service=self.runner.service,
            entity=RUN_ENTITY,
            events=(JobUpdated, JobCompleted, JobFailed, JobCanceled),
        )
        finished = False
        try:
            self._run_steps()
            self._end()
            finished = True
        finally:
            subscription.cancel()
            for launch in self.running.values():
                launch.cancel_signal.set()
            idle = finished and not self.abandoned
            for side, pool in self.borrowed:
                self.pools.give_back(side, pool, idle=idle)
            if self.managed is not None and self.managed.manager is not None:
                self.managed.manager.shutdown()
        return RunResult.of(self.recorder.job)

    def _end_unclaimed(self, refused: InvalidJobDataError) -> RunResult:
        """End a new run that the ledger has no room to claim: it could never be driven.

        It ends from where it stands now (a cancel may have been requested since
        it started), with no drive of its own to hold it.
        """
        self.recorder = RunRecorder(self.jobs, self.seen, None)
        self.recorder.observe(self.jobs.get(self.seen.id))
        self._stop_on_refusal(refused)
        self._end()
        return RunResult.of(self.recorder.job)

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id != self.seen.id:
            return
        patch = getattr(event, "state_update", None)
        if not isinstance(event, JobUpdated) or (
            patch is not None and ("cancel_requested" in patch or "drive" in patch)
        ):
            self.inbox.put(_Wake())

    def _tasks(self) -> Mapping[str, JsonValue]:
        tasks = self.recorder.job.state.get("tasks")
        return tasks if isinstance(tasks, dict) else {}

    def _entry(self, identifier: str) -> Mapping[str, JsonValue]:
        entry = self._tasks().get(identifier)
        return entry if isinstance(entry, dict) else {}

    def _status(self, identifier: str) -> TaskStatus:
        status = self._entry(identifier).get("status")
        if not isinstance(status, str):
            return TaskStatus.PENDING
        # A dictionary look-up, not TaskStatus(status): this runs for every task
        # at every step. An unknown status still raises as the enum does.
        known = _TASK_STATUSES.get(status)
        return known if known is not None else TaskStatus(status)

    def _stopping(self) -> bool:
        """Whether nothing more may be launched: a cancel, an error or a block."""
        return self.recorder.closed or self.recorder.cancel_requested or self.halted

    def _run_steps(self) -> None:
        in_run = set(self._tasks())
        # A taken-over run may hold a failure its dead runner did not get to end it with.
        self.halted = any(self._status(name) is TaskStatus.FAILED for name in in_run)
        for step in group_steps(
            task for task in self.definition.tasks if task.identifier in in_run
        ):
            todo = [task for task in step.tasks if not self._status(task.identifier).is_done]
            if not todo:
                continue
            if self._stopping():
                return
            self._launch(step.launch_order, todo)
            self._await_step()
            if self._stopping():
                return

    # -- launching ---------------------------------------------------------------------

    def _skip_reason(self, task: Task) -> str | None:
        if not task.parents:
            return None
        in_run = [parent for parent in task.parents if parent in self._tasks()]
        if not in_run:
            return None
        unfinished = [
            f"{parent!r} is {self._status(parent).value}"
            for parent in in_run
            if self._status(parent) is not TaskStatus.COMPLETED
        ]
        if unfinished:
            return "parents did not complete: " + ", ".join(unfinished)
        if not any(self._entry(parent).get("output") is True for parent in in_run):
            return "none of its parents produced output"
        return None

    def _launch(self, step: int, todo: list[Task]) -> None:
        now = _iso(self.runner.clock())
        groups = self.recorder.job.state.get("launch_groups")
        number = (len(groups) if isinstance(groups, dict) else 0) + 1
        entries: dict[str, object] = {}
        launched: list[tuple[Task, int]] = []
        # The launch entries of a step are mostly alike (the same status, group, time,
        # first attempt): each distinct one is frozen once and shared, so the ledger
        # checks it once instead of once per task.
        alike: dict[tuple[tuple[str, ...], int, bool], JsonValue] = {}
        for task in todo:
            entry = self._entry(task.identifier)
            cleared: tuple[str, ...] = (
                ()
                if _LAUNCH_FIELD_SET.isdisjoint(entry)
                else tuple(field for field in _LAUNCH_FIELDS if field in entry)
            )
            reason = self._skip_reason(task)
            if reason is not None:
                entries[task.identifier] = {
                    **dict.fromkeys(cleared),
                    "status": TaskStatus.SKIPPED.value,
                    "skip_reason": reason,
                }
                continue
            attempts = entry.get("attempts")
            attempt = (attempts if isinstance(attempts, int) else 0) + 1
            launched.append((task, attempt))
            repair = task.identifier in self.repair_tasks
            kind = (cleared, attempt, repair)
            launch = alike.get(kind)
            if launch is None:
                launch = alike[kind] = freeze(
                    {
                        **dict.fromkeys(cleared),
                        "status": _RUNNING,
                        "launch_group": number,
                        "attempts": attempt,
                        "launched_at": now,
                        "repair": repair,
                    },
                    field="state_update",
                )
            entries[task.identifier] = launch
        patch: dict[str, object] = {"tasks": entries}
        if launched:
            patch["launch_groups"] = {
                str(number): {
                    "step": step,
                    "tasks": [task.identifier for task, _ in launched],
                    "launched_at": now,
                    "drive": drive_of(self.recorder.job)[1],
                }
            }
        try:
            if not self.recorder.write("update", patch=patch, launch=True):
                return
        except InvalidJobDataError as refused:
            self._stop_on_refusal(refused)
            return
        logger.info(
            "launch group started",
            extra={"run_id": self.recorder.run_id, "launch_group": number, "step": step},
        )
        job = self.recorder.job
        run_input = job.input.get("input") if isinstance(job.input, dict) else None
        force = job.state.get("force")
        for task, attempt in launched:
            self._submit(
                task,
                attempt,
                run_input,
                force if isinstance(force, int) and not isinstance(force, bool) else None,
            )

    def _side(self, side: str) -> tuple[Executor, _Channels]:
        found = self.sides.get(side)
        if found is None:
            executor = self.runner.executors.get(side)
            if executor is None:
                pool = self.pools.borrow(side)
                self.borrowed.append((side, pool))
                executor = pool
            found = self.sides[side] = (executor, self._channels(executor))
        return found

    def _channels(self, executor: Executor) -> _Channels:
        if runs_in_process(executor):
            return self.local
        if self.managed is None:
            # Spawned, not forked: forking a process that runs threads is unsafe.
            manager = multiprocessing.get_context("spawn").Manager()
            self.managed = _Channels(manager, self.inbox)
        return self.managed

    def _submit(self, task: Task, attempt: int, run_input: JsonValue, force: int | None) -> None:
        executor, channels = self._side(task.side)
        signal = channels.signal()
        repair = task.identifier in self.repair_tasks
        function = task.repair if repair and task.repair is not None else task.function
        call = TaskCall(
            run_id=self.recorder.run_id,
            task=task,
            function=function,
            input=run_input,
            force=force,
            repair=repair,
            attempt=attempt,
            cancel_signal=signal,
            progress_sink=channels.sink(),
            clock=self.runner.clock,
        )
        try:
            future: Future[TaskReport] = executor.submit(execute, call)
        except Exception as err:  # noqa: BLE001  (a refused submit is the task's error)
            future = Future()
            future.set_exception(err)
        # Its deadline is set once it starts (_start): a launch waiting in the
        # executor's queue is not timed.
        self.running[task.identifier] = _Launch(task, attempt, future, signal)
        future.add_done_callback(functools.partial(self._done, task.identifier, attempt))

    def _done(self, name: str, attempt: int, _future: Future[TaskReport]) -> None:
        self.inbox.put(_Finished(name, attempt))

    # -- waiting -----------------------------------------------------------------------

    def _await_step(self) -> None:
        while self.running:
            message = self._next_message()
            if message is not None:
                self._take(message)
                # The messages that are already waiting are taken in too, so that the
                # ends they bring are written in one update; the count is fixed first,
                # so a task reporting progress without pause cannot hold the write back.
                for _ in range(self.inbox.qsize()):
                    try:
                        self._take(self.inbox.get_nowait())
                    except queue.Empty:
                        break
            self._drain_managed_progress()
            self._flush_progress()
            self._expire()
            self._write_ends()
            if time.monotonic() - self.last_poll >= self.runner.poll_interval:
                self._poll()
            if self._heartbeat_due():
                self._beat()
            if self.recorder.cancel_requested or self.recorder.closed:
                self._flag_running()

    def _take(self, message: _Message) -> None:
        if isinstance(message, _Finished):
            self._settle(message)
        elif isinstance(message, ProgressReport):
            self._collect(message)
        elif isinstance(message, TaskStarted):
            self._start(message)
        else:
            # Ends already seen go to the ledger before the run is read again.
            self._write_ends()
            self._poll()

    def _heartbeat_due(self) -> bool:
        if not self.running or self.recorder.closed:
            return False
        return time.monotonic() - self.recorder.last_write >= self.runner.heartbeat

    def _next_message(self) -> _Message | None:
        now = time.monotonic()
        wakes = [self.last_poll + self.runner.poll_interval]
        if self.managed is not None:
            # Progress from other processes arrives on the manager's queue, which cannot
            # wake this thread: look at it often.
            wakes.append(now + _MANAGED_PROGRESS_INTERVAL)
        if not self.recorder.closed:
            wakes.append(self.recorder.last_write + self.runner.heartbeat)
        wakes.extend(
            launch.deadline for launch in self.timed.values() if launch.deadline is not None
        )
        wake = min(wakes)
        try:
            return self.inbox.get(timeout=max(wake - now, 0.0))
        except queue.Empty:
            return None

    def _beat(self) -> None:
        """Show that the run is driven, so that no other runner takes it over.

        Once the ledger has refused the run, a heartbeat is a change with no
        state: it cannot be refused, and it still moves the run's ``updated_at``,
        which is what a take-over looks at.
        """
        if self.failure is None:
            try:
                self.recorder.write("update", patch={"heartbeat_at": _iso(self.runner.clock())})
            except InvalidJobDataError as refused:
                self._stop_on_refusal(refused)
            else:
                return
        self.recorder.write("update")

    def _poll(self) -> None:
        self.last_poll = time.monotonic()
        self.recorder.poll()

    def _flag_running(self) -> None:
        for launch in self.running.values():
            if not launch.flagged:
                launch.flagged = True
                launch.cancel_signal.set()

    def _start(self, started: TaskStarted) -> None:
        launch = self.running.get(started.task)
        if launch is None or launch.attempt != started.attempt:
            return
        launch.started_at = started.started_at
        if launch.task.timeout is not None:
            launch.deadline = time.monotonic() + launch.task.timeout
            self.timed[started.task] = launch

    def _collect(self, report: ProgressReport) -> None:
        launch = self.running.get(report.task)
        if launch is None or launch.attempt != report.attempt:
            return
        earlier = self.pending_progress.get(report.task)
        if earlier is not None:
            composed = compose_patches(earlier[1], report.values)
            if composed is not None:
                self.pending_progress[report.task] = (report.attempt, composed)
                return
            self._flush_progress()
        self.pending_progress[report.task] = (report.attempt, report.values)

    def _drain_managed_progress(self) -> None:
        if self.managed is None:
            return
        while True:
            try:
                message = self.managed.progress.get_nowait()
            except queue.Empty:
                return
            if isinstance(message, TaskStarted):
                self._start(message)
            else:
                self._collect(message)

    def _flush_progress(self) -> None:
        if not self.pending_progress:
            return
        entries: dict[str, object] = {
            name: {"progress": values}
            for name, (attempt, values) in self.pending_progress.items()
            if name in self.running and self.running[name].attempt == attempt
        }
        self.pending_progress.clear()
        if entries:
            _write_together_or_alone(
                list(entries.items()),
                lambda some: self.recorder.write("update", patch={"tasks": dict(some)}),
                lambda progress, refused: self._drop_progress(progress[0], refused),
            )

    def _drop_progress(self, name: str, refused: InvalidJobDataError) -> None:
        """Leave out the progress of task ``name`` that the ledger refused; the run goes on."""
        logger.warning(
            "the ledger refused the progress of task %r, which is left out of the run: %s",
            name,
            refused,
            extra={"run_id": self.recorder.run_id, "task_id": name},
        )

    def _expire(self) -> None:
        now = time.monotonic()
        for name, launch in list(self.timed.items()):
            if launch.deadline is None or now < launch.deadline or launch.future.done():
                # A launch that finished in time is recorded from its result, not expired.
                continue
            # Threads cannot be stopped: the launch is abandoned, and asked to stop.
            del self.running[name]
            del self.timed[name]
            self.abandoned = True
            launch.flagged = True
            launch.cancel_signal.set()
            launch.future.cancel()
            timeout = launch.task.timeout or 0.0
            error = TaskTimeoutError(name, timeout)
            # Through _error_entry, so a task in warning mode records a warning.
            entry = self._error_entry(launch.task, TaskError(error_type(type(error)), str(error)))
            if launch.started_at is not None:
                entry["started_at"] = _iso(launch.started_at)
            entry["ended_at"] = _iso(self.runner.clock())
            self._record_end(launch.task, entry)

    # -- settling ----------------------------------------------------------------------

    def _settle(self, message: _Finished) -> None:
        launch = self.running.get(message.task)
        if launch is None or launch.attempt != message.attempt:
            return  # a launch abandoned on its timeout
        # A worker process hands its progress over before its result: take it in first.
        self._drain_managed_progress()
        self._flush_progress()
        del self.running[message.task]
        self.timed.pop(message.task, None)
        future = launch.future
        if future.cancelled():
            entry: dict[str, object] = {
                "status": TaskStatus.CANCELED.value,
                "ended_at": _iso(self.runner.clock()),
            }
        elif (failure := future.exception()) is not None:
            entry = self._error_entry(launch.task, error_of(failure))
            entry["ended_at"] = _iso(self.runner.clock())
        else:
            entry = self._report_entry(launch, future.result())
        self._record_end(launch.task, entry)

    def _error_entry(self, task: Task, error: TaskError) -> dict[str, object]:
        status = TaskStatus.WARNING if task.warning_mode else TaskStatus.FAILED
        return {
            "status": status.value,
            "error": {"type": error.type, "message": error.message, "traceback": error.traceback},
        }

    def _report_entry(self, launch: _Launch, report: TaskReport) -> dict[str, object]:
        task = launch.task
        entry: dict[str, object]
        if report.blockage is not None and task.guarded:
            entry = {
                "status": TaskStatus.BLOCKED.value,
                "blocked": {"reason": report.blockage.reason, "details": report.blockage.details},
            }
        elif report.blockage is not None:
            assert report.error is not None  # noqa: S101  (execute records both)
            error = attrs.evolve(
                report.error,
                message=f"task {task.identifier!r} is not guarded, so it may not block: "
                f"{report.blockage.reason}",
            )
            entry = self._error_entry(task, error)
        elif report.canceled and launch.flagged:
            entry = {"status": TaskStatus.CANCELED.value}
        elif report.error is not None:
            entry = self._error_entry(task, report.error)
        else:
            result = report.result
            entry = {
                "status": _COMPLETED,
                "output": True if result is None else result.output,
                "summary": None if result is None else result.summary,
            }
        entry["started_at"] = _iso(report.started_at)
        entry["ended_at"] = _iso(report.ended_at)
        entry["duration"] = round(report.duration, 6)
        return entry

    def _record_end(self, task: Task, entry: dict[str, object]) -> None:
        """Queue a task's end for :meth:`_write_ends`, which the waiting loop calls next."""
        if entry["status"] in _HALTING:
            self.halted = True
        self.ends.append((task, entry))

    def _write_ends(self) -> None:
        """Write the ends taken in since the last write, in one update."""
        if not self.ends:
            return
        ends, self.ends = self.ends, []
        _write_together_or_alone(
            ends, self._write_end, lambda end, refused: self._write_end_instead(*end, refused)
        )

    def _write_end_instead(
        self, task: Task, entry: dict[str, object], refused: InvalidJobDataError
    ) -> None:
        # The ledger refused the entry: record that as the task's error instead, so the
        # drive goes on and ends the run. No traceback: it shows the runner, not the
        # task, and keeps the entry small.
        error = error_of(refused)
        fallback = self._error_entry(task, attrs.evolve(error, traceback=""))
        fallback.update(
            (key, entry[key]) for key in ("started_at", "ended_at", "duration") if key in entry
        )
        if fallback["status"] in _HALTING:
            self.halted = True
        try:
            self._write_end([(task, fallback)])
        except InvalidJobDataError as too_much:
            self._stop_on_refusal(too_much)

    def _stop_on_refusal(self, refused: InvalidJobDataError) -> None:
        """The ledger refused a write the run needs: launch nothing more, and fail the run.

        The tasks already running finish first, as after a task's error, and
        the run ends ``failed`` (``canceled`` if a cancel was requested).
        """
        self.halted = True
        if self.failure is not None:
            return
        self.failure = f"the ledger refused to record the run: {refused}"
        logger.error(
            "%s; no task is launched after this, and the run ends once those running finish",
            self.failure,
            extra={"run_id": self.recorder.run_id},
        )

    def _write_end(self, ends: list[tuple[Task, dict[str, object]]]) -> None:
        patch: dict[str, object] = {"tasks": {task.identifier: entry for task, entry in ends}}
        warnings = [
            {"task": task.identifier, "type": error["type"], "message": error["message"]}
            for task, entry in ends
            if entry["status"] == _WARNING and isinstance(error := entry["error"], dict)
        ]
        if warnings:
            earlier = self.recorder.job.state.get("warnings")
            patch["warnings"] = [*(earlier if isinstance(earlier, list) else ()), *warnings]
        self.recorder.write("update", patch=patch)
        for task, entry in ends:
            logger.info(
                "task ended",
                extra={
                    "run_id": self.recorder.run_id,
                    "task_id": task.identifier,
                    "status": entry["status"],
                },
            )

    # -- the end -----------------------------------------------------------------------

    def _end(self) -> None:
        recorder = self.recorder
        if recorder.closed:
            return
        statuses = {name: self._status(name) for name in self._tasks()}
        failed = [name for name, status in statuses.items() if status is TaskStatus.FAILED]
        blocked = [name for name, status in statuses.items() if status is TaskStatus.BLOCKED]
        if recorder.cancel_requested:
            trigger = RunTrigger.CANCEL
        elif failed or self.failure is not None:
            trigger = RunTrigger.FAIL
        elif blocked:
            trigger = RunTrigger.BLOCK
        else:
            trigger = RunTrigger.COMPLETE
        try:
            self._close(trigger, failed, blocked)
        except InvalidJobDataError as refused:
            # The end's own record does not fit in the run's state. A run that cannot
            # record its breakpoint or its failed tasks fails, recording the least.
            self._stop_on_refusal(refused)
            if trigger is not RunTrigger.CANCEL:
                trigger = RunTrigger.FAIL
            self._close_with_failure(trigger)
        after = next_run_status(RunStatus.RUNNING, trigger)
        assert after is not None  # noqa: S101  (the table allows every end of a running run)
        logger.info("run ended", extra={"run_id": recorder.run_id, "status": after.value})

    def _close(self, trigger: RunTrigger, failed: list[str], blocked: list[str]) -> None:
        """Write the run's end (``trigger``) with what its state must say of it."""
        recorder = self.recorder
        failures: dict[str, object] = {}
        if failed:
            failures["failed_tasks"] = failed
        if self.failure is not None:
            failures["failure"] = self.failure
        if trigger is RunTrigger.CANCEL:
            if failures:
                # A cancel takes no state update: the failures are recorded first.
                recorder.write("update", patch=failures)
            recorder.write("cancel")
        elif trigger is RunTrigger.FAIL:
            recorder.write("fail", patch=failures)
        elif trigger is RunTrigger.BLOCK:
            order = {task.identifier: task.launch_order for task in self.definition.tasks}
            step = min(order[name] for name in blocked)
            point: dict[str, object] = {
                "step": step,
                "tasks": [name for name in blocked if order[name] == step],
                "at": _iso(self.runner.clock()),
            }
            recorder.write("update", status=RunStatus.BLOCKED.value, patch={"breakpoint": point})
        else:
            recorder.write("complete")

    def _close_with_failure(self, trigger: RunTrigger) -> None:
        """Fail (or cancel) the run with its failure recorded if that fits, else with nothing.

        Neither command needs room in the state without a patch, so the run ends.
        """
        recorder = self.recorder
        failure: dict[str, object] = {"failure": self.failure}
        try:
            if trigger is not RunTrigger.CANCEL:
                # The failure alone, without failed_tasks or a breakpoint, may still fit.
                recorder.write("fail", patch=failure)
                return
            recorder.write("update", patch=failure)
        except InvalidJobDataError:
            pass  # the failure is in the log (_stop_on_refusal): the run ends without it
        recorder.write("cancel" if trigger is RunTrigger.CANCEL else "fail")
