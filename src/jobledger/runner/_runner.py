"""The runner: invokes job definitions and resumes their runs, recording all in the ledger.

One call of :meth:`Runner.invoke` or :meth:`Runner.resume` is one *drive* of
a run: it claims the run with an ETag-guarded write that records its lease,
runs the steps that are not done (the driver), and ends the run (or leaves it
``blocked``). Only the lease holder can write the run, and nobody may claim it
before the lease its driver recorded expires, so two drivers never drive one
run at once.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Self

import attrs

from jobledger._application.defaults import new_id, utc_now
from jobledger._core.commands import StartJob, UpdateJob
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
)
from jobledger.runner._context import LedgerHandle
from jobledger.runner._definition import AGENT, SERVER, JobDefinition
from jobledger.runner._driver import Driver, DriveSettings
from jobledger.runner._errors import (
    DefinitionBusyError,
    DefinitionError,
    RunNotFoundError,
    RunNotResumableError,
    UnknownDefinitionError,
)
from jobledger.runner._ledger import (
    RUN_ENTITY,
    RUN_SERVICE,
    Ledger,
    RunWriter,
    cancel_launches,
    history_of,
    latest_by_task,
    load_launches,
    load_run,
    read_run,
    request_cancel,
    run_parts,
    run_status,
    with_storage_retry,
    write_all,
)
from jobledger.runner._model import Drive, Lease, RunRequest, RunState, encode
from jobledger.runner._planner import claim_trigger, counts_of
from jobledger.runner._selection import Selection
from jobledger.runner._states import RunStatus, RunTrigger, TaskStatus
from jobledger.runner._steps import Step, group_steps
from jobledger.runner._watcher import Watcher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime

    from jobledger._core.commands import Command
    from jobledger._core.job import Job
    from jobledger.runner._outcome import RunResult

__all__ = ["DEFINITION_ENTITY", "Runner"]

logger = logging.getLogger("jobledger.runner")

#: The entity of the job that records which run of a definition is active.
DEFINITION_ENTITY: Final = "definition"
#: The longest run id: a launch's id adds ``/<number>`` and must stay a valid job id.
_MAX_RUN_ID: Final = 180
#: How often an invoke tries again when another invoke of the definition changed its record.
_SLOT_RETRIES: Final = 100


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


def definition_record_id(service: str, definition: str) -> str:
    """The id of the job that records a definition's active run."""
    return f"{service}:{DEFINITION_ENTITY}:{definition}"


class Runner:
    """Runs job definitions and records every run in a ledger.

    Args:
        jobs: The ledger runs are recorded in: a :class:`~jobledger.Jobs` with
            any repository, or anything with its methods (an HTTP client).
        definitions: The job definitions this runner can invoke and resume.
        executors: Executors by side name. ``"server"`` and ``"agent"`` not
            given here get thread pools of the runner's own, wide enough for
            each step to run all its tasks at once. An executor given here is
            used as it is and never shut down by the runner; give a callable
            that makes one instead (``functools.partial(ProcessPoolExecutor,
            4)``) and the runner makes it when first needed, shuts it down on
            :meth:`close`, and replaces it when it had to terminate one of its
            worker processes (a task past its timeout). Any
            :class:`concurrent.futures.Executor` works: a process pool, loky,
            a dask.distributed client's executor; on one that does not run its
            calls in this process, task functions must be picklable, and tasks
            reach the ledger from their own process (a SQLite file or
            PostgreSQL; see :class:`~jobledger.runner.TaskContext`).
        lease: Seconds a drive's claim of a run lasts; the drive renews it
            every third of that while it lives, and records it in the run, so
            nobody claims a live run. A drive that dies leaves the run to be
            taken over once its lease expires.
        poll_interval: Seconds between reads of the run while tasks run, to see
            cancel requests made in other processes.
        heartbeat: An older name: renew the lease every ``heartbeat`` seconds
            (the lease then lasts three of them, unless ``lease`` is given).
        takeover_after: An older name for ``lease``.
        clock: Reads the time for the records; UTC now by default.
        id_factory: Makes drive and run ids; UUIDv7 strings by default.
        service: The service of the runs' jobs.

    Raises:
        DefinitionError: two definitions share an identifier, or tasks name
            sides that have no executor.
        ValueError: a duration is not a positive number of seconds.

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
        jobs: Ledger,
        definitions: Iterable[JobDefinition],
        *,
        executors: Mapping[str, Executor | Callable[[], Executor]] | None = None,
        lease: float | None = None,
        poll_interval: float = 1.0,
        heartbeat: float | None = None,
        takeover_after: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        id_factory: Callable[[], str] = new_id,
        service: str = RUN_SERVICE,
    ) -> None:
        self.jobs = jobs
        given = dict(executors or {})
        self.executors: Mapping[str, Executor] = MappingProxyType(
            {side: value for side, value in given.items() if isinstance(value, Executor)}
        )
        self._factories: Mapping[str, Callable[[], Executor]] = MappingProxyType(
            {side: value for side, value in given.items() if not isinstance(value, Executor)}
        )
        self._made: dict[str, Executor] = {}
        self._made_lock = threading.Lock()
        found: dict[str, JobDefinition] = {}
        problems: list[str] = []
        for definition in definitions:
            if definition.identifier in found:
                problems.append(f"definition {definition.identifier!r} is given more than once")
                continue
            found[definition.identifier] = definition
            sides = {SERVER, AGENT, *given}
            problems.extend(
                f"definition {definition.identifier!r}: task {task.identifier!r} runs on side "
                f"{task.side!r}, which has no executor (known: {', '.join(sorted(sides))})"
                for task in definition.tasks
                if task.side not in sides
            )
        if problems:
            raise DefinitionError("<runner>", problems)
        self.definitions: Mapping[str, JobDefinition] = MappingProxyType(found)
        # Each definition's steps, for the drives that run all its tasks.
        self._steps: Mapping[str, tuple[Step, ...]] = {
            identifier: group_steps(definition.tasks) for identifier, definition in found.items()
        }
        lease = takeover_after if lease is None else lease
        if lease is None:
            lease = 3 * heartbeat if heartbeat is not None else 30.0
        for name, value in (("lease", lease), ("poll_interval", poll_interval)):
            if not (isinstance(value, (int, float)) and value > 0):
                msg = f"{name} must be a positive number of seconds, not {value!r}"
                raise ValueError(msg)
        if heartbeat is not None and not (heartbeat > 0 and heartbeat <= lease):
            msg = (
                f"heartbeat must be a positive number of seconds up to the lease, not {heartbeat!r}"
            )
            raise ValueError(msg)
        self.lease = float(lease)
        self.poll_interval = poll_interval
        self.clock = clock
        self.id_factory = id_factory
        self.service = service
        self._settings = DriveSettings(
            service=service,
            lease=self.lease,
            poll_interval=poll_interval,
            clock=clock,
            ledger_handle=LedgerHandle.of(jobs),
        )
        self._pools = _ThreadPools(
            {
                side: _widest_step(found.values(), side)
                for side in (SERVER, AGENT)
                if side not in given
            }
        )
        # Keeps the drives' leases while their threads run tasks (one-task steps).
        self._watcher = Watcher()
        self._drives: dict[str, Driver] = {}
        self._drives_lock = threading.Lock()
        self._abandoned = False

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
        again does nothing.
        """
        self._pools.close()
        self._watcher.close()
        with self._made_lock:
            made, self._made = list(self._made.values()), {}
        for executor in made:
            executor.shutdown(wait=True)

    def _made_executor(self, side: str) -> Executor | None:
        """The executor the runner made for ``side`` from its factory, made now if need be."""
        factory = self._factories.get(side)
        if factory is None:
            return None
        with self._made_lock:
            executor = self._made.get(side)
            if executor is None:
                executor = self._made[side] = factory()
            return executor

    def _replace_executor(self, side: str, broken: Executor) -> bool:
        """Replace the executor made for ``side`` if it is ``broken``; whether it could be."""
        if side not in self._factories:
            return False
        with self._made_lock:
            if self._made.get(side) is broken:
                del self._made[side]
        broken.shutdown(wait=False, cancel_futures=True)
        return True

    def definition(self, identifier: str) -> JobDefinition:
        """The definition with ``identifier``.

        Raises:
            UnknownDefinitionError: the runner has no such definition.
        """
        try:
            return self.definitions[identifier]
        except KeyError:
            raise UnknownDefinitionError(identifier, self.definitions) from None

    # -- invoke ------------------------------------------------------------------------

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
        exclusive: bool = True,
        actor: str | None = None,
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
            run_id: The id to give the run's job; the runner makes one when ``None``.
            exclusive: Refuse to start while another run of the definition is
                running or blocked (the default, as Usercube never runs a job
                twice at once); ``False`` starts a concurrent run.
            actor: Who invokes the run (a person or a service): the actor of
                every write of this drive (the run's job, its launches' jobs,
                the definition's record) and recorded on its :class:`Drive`;
                ``None`` names no one.

        Returns:
            The run, as the ledger records it at its end.

        Raises:
            UnknownDefinitionError: no definition has ``definition_id``.
            SelectionError: the selection is invalid or selects nothing.
            InvalidJobDataError: ``input`` is not JSON, ``force`` not an
                integer, ``run_id`` not a valid id, or ``actor`` not a valid actor.
            JobAlreadyExistsError: ``run_id`` is taken.
            DefinitionBusyError: another run of the definition is running or blocked.
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
        run_id = self.id_factory() if run_id is None else run_id
        if not isinstance(run_id, str) or len(run_id) > _MAX_RUN_ID or "/" in run_id:
            raise InvalidJobDataError(
                "run_id", "", f"must be a string of at most {_MAX_RUN_ID} characters without '/'"
            )
        request = RunRequest(
            definition=definition.identifier, selection=selection, force=force, input=input
        )
        now = self.clock()
        drive = Drive(
            1, RunTrigger.INVOKE, self.id_factory(), repair=False, claimed_at=now, actor=actor
        )
        state = RunState(
            tasks=len(tasks),
            counts=counts_of(tasks, {}),
            drive=drive,
            lease=Lease(drive.owner, now + timedelta(seconds=self.lease), self.lease),
            force=force,
        )
        start = StartJob(
            service=self.service,
            entity=RUN_ENTITY,
            type=definition.identifier,
            display_name=definition.display_name or definition.identifier,
            input=encode(request),
            state=encode(state),
            job_id=run_id,
            actor=actor,
        )
        job = self._start(definition.identifier, start, exclusive=exclusive)
        logger.info("run started", extra={"run_id": job.id, "definition": definition.identifier})
        writer = RunWriter(self.jobs, job, state, drive.owner, actor=actor)
        return self._drive(
            definition, tasks, writer, drive, request, latest={}, attempts={}, history=((), ())
        )

    def _start(self, definition: str, start: StartJob, *, exclusive: bool) -> Job:
        """Start the run's job; when ``exclusive``, only if no other run of it is active."""
        if not exclusive:
            return write_all(self.jobs, [start])[0]
        record_id = definition_record_id(self.service, definition)
        for _ in range(_SLOT_RETRIES):
            try:
                record: Job | None = self.jobs.get(record_id)
            except JobNotFoundError:
                record = None
            claim: StartJob | UpdateJob
            if record is not None:
                active = record.state.get("active_run")
                if isinstance(active, str) and active != start.job_id:
                    self._refuse_if_active(definition, active)
                claim = UpdateJob(
                    job_id=record_id,
                    etag=record.etag,
                    state_update={"active_run": start.job_id},
                    actor=start.actor,
                )
            else:
                claim = StartJob(
                    service=self.service,
                    entity=DEFINITION_ENTITY,
                    type=definition,
                    display_name=definition,
                    description="which run of the definition is active",
                    state={"active_run": start.job_id},
                    job_id=record_id,
                    actor=start.actor,
                )
            try:
                return write_all(self.jobs, [claim, start])[1]
            except (ConcurrencyError, JobAlreadyExistsError) as error:
                if getattr(error, "job_id", None) == start.job_id:
                    raise
                continue
        msg = f"the record of definition {definition!r} kept changing"
        raise RuntimeError(msg)

    def _refuse_if_active(self, definition: str, run_id: str) -> None:
        try:
            job = read_run(self.jobs, run_id, self.service)
        except RunNotFoundError:
            return  # its start never landed (a ledger without atomic batches)
        if not job.phase.is_terminal:
            raise DefinitionBusyError(definition, run_id, run_status(job).value)

    # -- resume ------------------------------------------------------------------------

    def resume(
        self,
        run_id: str,
        *,
        repair: bool = False,
        force: int | None = None,
        actor: str | None = None,
    ) -> RunResult:
        """Drive a blocked run on from its breakpoint, or take over a run nobody drives.

        A ``blocked`` run runs its blocked tasks again (with ``repair=True``,
        their repair variants in their place, recorded as repairs), then only
        the tasks that had not run. A ``running`` run whose lease expired (its
        driver died) or was released (its driver was interrupted on purpose)
        is taken over: every task not done runs, the ones its old driver had
        running included (at least once: a task whose worker outlived its
        driver may run twice).

        Args:
            run_id: The run.
            repair: Run the blocked tasks' repair variants.
            force: A new force threshold; ``None`` keeps the run's.
            actor: Who resumes the run: the actor of every write of this drive
                (the claim included) and recorded on its :class:`Drive`;
                ``None`` names no one.

        Returns:
            The run, as the ledger records it at its end.

        Raises:
            RunNotFoundError: no run has this id.
            UnknownDefinitionError: this runner does not know the run's definition.
            RunActiveError: a live drive holds the run's lease (names it and the expiry).
            RunNotResumableError: the run is over, was claimed by another
                runner first, or cannot be repaired.
            RunTakenOverError: another runner took the run over meanwhile.
            InvalidJobDataError: ``actor`` is not a valid actor.
        """
        _check_force(force)
        for _ in range(_SLOT_RETRIES):
            job = read_run(self.jobs, run_id, self.service)
            request, state = run_parts(job)
            definition = self.definition(request.definition)
            now = self.clock()
            trigger = claim_trigger(run_id, run_status(job), state, now, repair=repair)
            tasks = request.selection.select(definition)
            known = {task.identifier for task in tasks}
            launches = load_launches(self.jobs, run_id, state.launches)
            latest = latest_by_task(launches)
            missing = sorted(set(latest) - known)
            if missing:
                reason = f"its definition no longer has the tasks {', '.join(map(repr, missing))}"
                raise RunNotResumableError(run_id, job.status, reason)
            repair_tasks = (
                frozenset(state.breakpoint.tasks) if repair and state.breakpoint else frozenset()
            )
            lacking = sorted(name for name in repair_tasks if definition.task(name).repair is None)
            if lacking:
                names = ", ".join(map(repr, lacking))
                raise RunNotResumableError(run_id, job.status, f"no repair variant for {names}")
            previous = state.drive.number if state.drive is not None else 0
            drive = Drive(
                previous + 1,
                trigger,
                self.id_factory(),
                repair=repair,
                claimed_at=now,
                actor=actor,
            )
            orphans = [launch for launch in latest.values() if launch.status is TaskStatus.RUNNING]
            reason = f"abandoned: drive {drive.number} took the run over"
            new = attrs.evolve(
                state,
                drive=drive,
                lease=Lease(drive.owner, now + timedelta(seconds=self.lease), self.lease),
                breakpoint=None,
                released=None,
                force=state.force if force is None else force,
            )
            writer = RunWriter(self.jobs, job, state, drive.owner, actor=actor)
            try:
                writer.write(
                    new,
                    status=RunStatus.RUNNING.value,
                    commands=cancel_launches(orphans, reason, now, actor=actor),
                    attempt_once=True,
                )
            except (ConcurrencyError, InvalidTransitionError):
                continue  # changed since read: look again (a live driver renewed, say)
            if orphans:
                launches = load_launches(self.jobs, run_id, state.launches)
                latest = latest_by_task(launches)
            attempts: dict[str, int] = {}
            for launch in launches:
                if launch.input.group is not None:
                    attempts[launch.input.task] = launch.input.attempt
            logger.info(
                "run claimed",
                extra={"run_id": run_id, "drive_id": drive.owner, "kind": trigger.value},
            )
            return self._drive(
                definition,
                tasks,
                writer,
                drive,
                request,
                latest=latest,
                attempts=attempts,
                history=history_of(launches),
                repair_tasks=repair_tasks,
            )
        reason = "another runner claimed it first, or it kept changing"
        raise RunNotResumableError(run_id, "running", reason)

    # -- driving -----------------------------------------------------------------------

    def _drive(
        self,
        definition: JobDefinition,
        tasks: tuple[JobDefinition, ...] | tuple[object, ...],
        writer: RunWriter,
        drive: Drive,
        request: RunRequest,
        **known: object,
    ) -> RunResult:
        borrowed: list[tuple[str, ThreadPoolExecutor]] = []
        sides: dict[str, Executor] = {}

        def executor_for(side: str) -> Executor:
            found = sides.get(side)
            if found is None:
                found = self.executors.get(side) or self._made_executor(side)
                if found is None:
                    pool = self._pools.borrow(side)
                    borrowed.append((side, pool))
                    found = pool
                sides[side] = found
            return found

        driver = Driver(
            self.jobs,
            self._settings,
            definition,
            tasks,  # type: ignore[arg-type]
            writer,
            drive,
            request.input,
            executor_for=executor_for,
            replace_executor=lambda side, broken: (
                sides.pop(side, None) is not None and self._replace_executor(side, broken)
            ),
            inline_sides=frozenset(self._pools.widths),
            freeing=lambda: self._freeing(definition.identifier, writer.run_id, drive.actor),
            watcher=self._watcher,
            # A selection of every task (it keeps their order) has the definition's steps.
            steps=self._steps[definition.identifier]
            if len(tasks) == len(definition.tasks)
            else None,
            **known,  # type: ignore[arg-type]
        )
        with self._drives_lock:
            self._drives[writer.run_id] = driver
        finished = False
        try:
            result = driver.run()
            finished = True
        finally:
            with self._drives_lock:
                self._drives.pop(writer.run_id, None)
                self._abandoned = self._abandoned or driver.abandoned
            idle = finished and not driver.abandoned and not driver.released
            for side, pool in borrowed:
                self._pools.give_back(side, pool, idle=idle)
        if result.status.is_terminal and not driver.freed:
            self._free(definition.identifier, writer.run_id, drive.actor)
        return result

    def _freeing(self, definition: str, run_id: str, actor: str | None) -> list[Command]:
        """The write that clears the definition's record of its active run, if it names this one."""
        record_id = definition_record_id(self.service, definition)
        try:
            record = with_storage_retry(lambda: self.jobs.get(record_id))
        except JobledgerError:
            return []
        if record.state.get("active_run") != run_id:
            return []
        return [
            UpdateJob(
                job_id=record_id, etag=record.etag, state_update={"active_run": None}, actor=actor
            )
        ]

    def _free(self, definition: str, run_id: str, actor: str | None) -> None:
        """Clear the definition's record of its active run, if it still names this one."""
        try:
            write_all(self.jobs, self._freeing(definition, run_id, actor))
        except JobledgerError as error:
            # A later invoke finds the run over and takes the record anyway.
            logger.info("the record of %r still names run %r: %s", definition, run_id, error)

    # -- from anywhere -----------------------------------------------------------------

    def interrupt(self, reason: str = "interrupted") -> tuple[str, ...]:
        """Let go of every run this runner drives now, at once: each is left resumable.

        For a process that must stop (a second Ctrl-C, SIGTERM, a closed
        output pipe): no task is launched after this, the running tasks are
        asked to stop and recorded ``canceled``, and each run's lease is
        released, so ``resume`` takes it over at once. The drives' calls
        return the run as left (``running``). Safe to call from any thread.

        Returns:
            The ids of the runs let go.
        """
        with self._drives_lock:
            drives = list(self._drives.values())
        for driver in drives:
            driver.release(reason)
        return tuple(driver.run_id for driver in drives)

    @property
    def abandoned(self) -> bool:
        """Whether a drive of this runner, running or ended, abandoned a task past its timeout."""
        with self._drives_lock:
            return self._abandoned or any(driver.abandoned for driver in self._drives.values())

    def request_cancel(self, run_id: str, *, actor: str | None = None) -> RunResult:
        """Ask a run to stop, ``actor`` naming who; see :func:`jobledger.runner.request_cancel`."""
        return request_cancel(
            self.jobs, run_id, service=self.service, clock=self.clock, actor=actor
        )

    def result(self, run_id: str) -> RunResult:
        """The run as the ledger records it now; with its definition known, pending tasks too.

        Raises:
            RunNotFoundError: no run has this id.
        """
        job = read_run(self.jobs, run_id, self.service)
        definition = self.definitions.get(job.type)
        return load_run(self.jobs, run_id, definition=definition, service=self.service)
