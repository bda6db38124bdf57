"""How runs are kept in the ledger: reading a run and its launches, and a drive's guarded writes.

Everything here goes through the methods of :class:`~jobledger.Jobs` (``get``,
``handle`` and, where it has it, ``handle_all`` for atomic batches), so a
runner records its runs the same way in a local ledger or through an HTTP
client with those methods. The layout of the jobs is the run model's
(:mod:`jobledger.runner._model`).
"""

from __future__ import annotations

import functools
import logging
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import attrs

from jobledger._core.commands import (
    ANY_ETAG,
    CancelJob,
    Command,
    CompleteJob,
    FailJob,
    UpdateJob,
)
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobNotFoundError,
    StorageTimeoutError,
    StorageUnavailableError,
)
from jobledger._core.job import Job
from jobledger.runner._errors import RunNotFoundError, RunTakenOverError
from jobledger.runner._model import (
    Launch,
    RunRequest,
    RunState,
    decode,
    encode,
    launch_id,
    run_state_patch,
    state_patch,
)
from jobledger.runner._outcome import LaunchGroup, RunResult, RunWarning, TaskOutcome
from jobledger.runner._states import RunStatus, RunTrigger, TaskStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from datetime import datetime

    from jobledger._core.query import JobPage, JobQuery
    from jobledger.runner._definition import JobDefinition

logger = logging.getLogger("jobledger.runner")

__all__ = [
    "RUN_ENTITY",
    "RUN_SERVICE",
    "TASK_ENTITY",
    "Ledger",
    "RunWriter",
    "latest_by_task",
    "load_launches",
    "load_run",
    "read_run",
    "result_of",
    "run_result",
    "write_all",
]

#: The service of every run's job (and its launches' jobs), unless a runner is given another.
RUN_SERVICE: Final = "jobledger.runner"
#: The entity of every run's job.
RUN_ENTITY: Final = "job"
#: The entity of every launch's job.
TASK_ENTITY: Final = "task"

#: Seconds a write keeps retrying a storage that times out or is unreachable.
STORAGE_RETRY_SECONDS: Final = 5.0
#: Seconds before the first retry; each next one waits twice as long.
STORAGE_RETRY_FIRST_PAUSE: Final = 0.05
#: How often a write is tried again on a run someone else keeps changing.
_CONFLICT_RETRIES: Final = 1000

_Result = TypeVar("_Result")


class Ledger(Protocol):
    """What the runner needs of a ledger: :class:`~jobledger.Jobs`, or a client with its methods."""

    def get(self, job_id: str) -> Job:
        """The job with ``job_id``."""
        ...

    def handle(self, command: Command) -> Job:
        """Carry out one command."""
        ...

    def find(self, query: JobQuery | None = None, **filters: object) -> JobPage:
        """A page of jobs."""
        ...


def with_storage_retry(call: Callable[[], _Result]) -> _Result:
    """``call()``, tried again with pauses that double while the storage is locked or down.

    Raises:
        StorageTimeoutError: still locked after :data:`STORAGE_RETRY_SECONDS`.
        StorageUnavailableError: still unreachable after :data:`STORAGE_RETRY_SECONDS`.
    """
    give_up: float | None = None
    pause = STORAGE_RETRY_FIRST_PAUSE
    while True:
        try:
            return call()
        except (StorageTimeoutError, StorageUnavailableError):
            now = time.monotonic()
            give_up = now + STORAGE_RETRY_SECONDS if give_up is None else give_up
            if now >= give_up:
                raise
            time.sleep(min(pause, give_up - now))
            pause *= 2


def write_all(jobs: Ledger, commands: Sequence[Command]) -> tuple[Job, ...]:
    """Carry out ``commands`` in one transaction where the ledger can, else one by one in order.

    The commands are ordered so that a crash between two of them (a ledger
    without atomic batches) leaves nothing a reader misreads: a run's write
    comes before the launch jobs it counts, and readers skip launch numbers
    whose jobs do not exist.
    """
    handle_all: Callable[[Sequence[Command]], Sequence[Job]] | None = getattr(
        jobs, "handle_all", None
    )
    if handle_all is not None:
        return with_storage_retry(lambda: tuple(handle_all(commands)))
    return tuple(
        with_storage_retry(functools.partial(jobs.handle, command)) for command in commands
    )


def read_run(jobs: Ledger, run_id: str, service: str = RUN_SERVICE) -> Job:
    """The job of run ``run_id``.

    Raises:
        RunNotFoundError: there is no such job, or it is not a run.
    """
    try:
        job = jobs.get(run_id)
    except JobNotFoundError:
        raise RunNotFoundError(run_id) from None
    if job.service != service or job.entity != RUN_ENTITY:
        detail = f"job {run_id!r} is a {job.service}/{job.entity} job, not a {service} run"
        raise RunNotFoundError(run_id, detail)
    return job


def run_parts(job: Job) -> tuple[RunRequest, RunState]:
    """The request and the state a run's job holds.

    Raises:
        RunNotFoundError: the job's input or state is not a run's (an older layout).
    """
    try:
        return decode(job.input, RunRequest), decode(job.state, RunState)
    except ValueError as error:
        raise RunNotFoundError(job.id, f"its job does not hold a run: {error}") from None


def run_status(job: Job) -> RunStatus:
    """The run's status, from its job's."""
    if job.status == RunStatus.BLOCKED or job.phase.is_terminal:
        return RunStatus(job.status)
    return RunStatus.RUNNING


def load_launches(jobs: Ledger, run_id: str, count: int, *, first: int = 1) -> tuple[Launch, ...]:
    """The run's launches ``first`` to ``count``, in launch order.

    A launch number whose job does not exist (a ledger without atomic batches
    that stopped between two writes) is left out.
    """
    found: list[Launch] = []
    for number in range(first, count + 1):
        try:
            job = jobs.get(launch_id(run_id, number))
        except JobNotFoundError:
            continue
        try:
            found.append(Launch.of(job))
        except ValueError:
            logger.warning("job %r is not a launch; it is left out of the run", job.id)
    return tuple(found)


def latest_by_task(launches: Iterable[Launch]) -> dict[str, Launch]:
    """Each task's latest launch (the highest launch number wins)."""
    latest: dict[str, Launch] = {}
    for launch in launches:
        latest[launch.input.task] = launch
    return latest


def result_of(
    job: Job,
    latest: Mapping[str, Launch],
    *,
    definition: JobDefinition | None = None,
    groups: Iterable[LaunchGroup] = (),
    warnings: Iterable[RunWarning] = (),
) -> RunResult:
    """The run as its job and each task's latest launch record it.

    With ``definition``, the tasks of the run never launched are listed as
    ``pending``, in step order; without it, only launched tasks are.
    """
    request, state = run_parts(job)
    outcomes: dict[str, TaskOutcome] = {}
    if definition is not None:
        for task in request.selection.select(definition):
            launch = latest.get(task.identifier)
            outcomes[task.identifier] = (
                launch.outcome()
                if launch is not None
                else TaskOutcome(
                    task.identifier, task.type, task.launch_order, task.side, TaskStatus.PENDING
                )
            )
    ordered = sorted(latest.values(), key=lambda launch: (launch.input.step, launch.input.launch))
    for launch in ordered:
        if launch.input.task not in outcomes:
            outcomes[launch.input.task] = launch.outcome()
    status = run_status(job)
    return RunResult(
        run_id=job.id,
        definition=request.definition,
        status=status,
        outcomes=outcomes,
        warnings=tuple(warnings),
        breakpoint=state.breakpoint if status is RunStatus.BLOCKED else None,
        launch_groups=tuple(groups),
        cancel_requested=state.cancel_requested,
        force=state.force,
        failure=state.failure,
        state=state,
    )


def history_of(
    launches: Sequence[Launch],
) -> tuple[tuple[LaunchGroup, ...], tuple[RunWarning, ...]]:
    """The launch groups and the warnings that ``launches`` (all of a run's) record."""
    groups: dict[int, LaunchGroup] = {}
    warnings: list[RunWarning] = []
    for launch in launches:
        record = launch.input
        if record.group is not None:
            group = groups.get(record.group)
            groups[record.group] = (
                LaunchGroup(
                    record.group, record.step, (record.task,), launch.launched_at, record.drive
                )
                if group is None
                else attrs.evolve(group, tasks=(*group.tasks, record.task))
            )
        if launch.status is TaskStatus.WARNING and launch.state.error is not None:
            error = launch.state.error
            warnings.append(RunWarning(record.task, error.type, error.message))
    return tuple(groups[number] for number in sorted(groups)), tuple(warnings)


def load_run(
    jobs: Ledger,
    run_id: str,
    *,
    definition: JobDefinition | None = None,
    service: str = RUN_SERVICE,
) -> RunResult:
    """Run ``run_id`` as the ledger records it now: its job and every launch.

    Reads one job per launch; with ``definition``, tasks never launched are
    listed as ``pending``.

    Raises:
        RunNotFoundError: no run has this id.
    """
    job = read_run(jobs, run_id, service)
    _, state = run_parts(job)
    return run_result(job, load_launches(jobs, run_id, state.launches), definition=definition)


def run_result(
    job: Job, launches: Iterable[Launch] = (), *, definition: JobDefinition | None = None
) -> RunResult:
    """The run that ``job`` (a run's job) and ``launches`` (of that run, in launch order) record.

    Reads nothing: given the run's job alone, the result has its status, its
    :attr:`~RunResult.state` (counts, drive, lease, breakpoint) and
    :attr:`~RunResult.progress`, but outcomes only for the tasks of
    ``launches`` (and, with ``definition``, ``pending`` for the others). Use it
    to follow a run from its events; :func:`load_run` reads every launch.

    Raises:
        RunNotFoundError: ``job`` does not hold a run (another kind of job, or
            a run of an older layout).
    """
    launches = tuple(launches)
    groups, warnings = history_of(launches)
    return result_of(
        job, latest_by_task(launches), definition=definition, groups=groups, warnings=warnings
    )


def _run_commands(
    job: Job,
    patch: dict[str, object],
    *,
    status: str | None,
    end: RunTrigger | None,
    state: RunState,
    actor: str | None,
) -> list[Command]:
    etag = job.etag
    if end is RunTrigger.COMPLETE:
        return [CompleteJob(job_id=job.id, etag=etag, state_update=patch, actor=actor)]
    if end is RunTrigger.FAIL:
        return [FailJob(job_id=job.id, etag=etag, state_update=patch, actor=actor)]
    update = UpdateJob(
        job_id=job.id, etag=etag, status=status, state_update=patch or None, actor=actor
    )
    if end is RunTrigger.CANCEL:
        # CancelJob carries no state: the state goes first, in the same batch.
        # The cancel is the requester's: it names who asked for it.
        return [update, CancelJob(job_id=job.id, etag=ANY_ETAG, actor=state.cancel_requested_by)]
    return [update]


@attrs.define
class RunWriter:
    """One drive's writes to its run: each carries the run's ETag, so only the lease holder writes.

    A write that meets another's change reads the run again: a cancel request
    is taken in and the write applied on top; a claim by another drive raises
    :class:`RunTakenOverError`; a run ended by someone else marks the writer
    :attr:`closed`.

    Attributes:
        jobs: The ledger.
        job: The run's job as last written or read.
        state: The run's state as last written or read.
        owner: The id of the drive that holds the run.
        actor: Who the drive acts for: the actor of its writes (``None``: no one named).
        closed: Whether someone else ended the run.
        last_write: When the last write of the run succeeded (``time.monotonic``).
        renewed: When the last write that recorded a new lease succeeded (``time.monotonic``).
    """

    jobs: Ledger
    job: Job
    state: RunState
    owner: str
    actor: str | None = None
    closed: bool = False
    last_write: float = attrs.field(factory=time.monotonic)
    renewed: float = attrs.field(factory=time.monotonic)
    # The state as its job holds it (encoded), kept so that a write encodes only the new state.
    _encoded: dict[str, object] | None = attrs.field(default=None, init=False, repr=False)
    # While a write is under way: the last version of the run it makes (0: none under way).
    _writing: int = attrs.field(default=0, init=False, repr=False)

    def _held(self) -> dict[str, object]:
        if self._encoded is None:
            self._encoded = encode(self.state)
        return self._encoded

    def knows(self, version: int | None, etag: str | None) -> bool:
        """Whether the run's version (with ``etag``) is no news: this writer has it, or a later one.

        Safe to call from another thread (an event handler): a job's versions
        only grow, so an event of a version up to the one last written or read
        here tells nothing new, however late it comes. While a write is under
        way, the versions it makes count as known too: the ledger publishes
        their events before the write returns. (Should that write fail, what
        someone else changed meanwhile is taken in by the next write of the run,
        which meets the change, or the next poll.)
        """
        job = self.job
        if isinstance(version, int):
            return version <= job.version or version <= self._writing
        return etag is not None and etag == job.etag

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.job.id

    def write(
        self,
        state: RunState,
        *,
        status: str | None = None,
        end: RunTrigger | None = None,
        commands: Sequence[Command] = (),
        before: Sequence[Command] = (),
        launching: bool = False,
        attempt_once: bool = False,
    ) -> tuple[Job, ...] | None:
        """Write the run's new ``state`` (and its end), with other commands in the same batch.

        Args:
            state: The state the run is to have.
            status: The run's new status.
            end: The trigger that ends the run, if this write ends it.
            commands: The commands that go in the same transaction, after the
                run's write (the launches, their ends).
            before: The commands that go in the same transaction before the
                run's write (the last ends, before the run's end: a ledger
                without atomic batches then never shows an ended run with a
                launch still running).
            launching: The write launches tasks: it is not made (``None`` is
                returned) once a cancel request is seen.
            attempt_once: Raise on a conflict instead of reading the run again
                (a claim must be decided on the run as it was read).

        Returns:
            The jobs the ``commands`` left, or ``None`` when nothing was
            written (the run was ended by someone else, or a cancel request
            stopped a launch).

        Raises:
            RunTakenOverError: another drive claimed the run.
            ConcurrencyError: the run changed (``attempt_once`` only).
        """
        for _ in range(_CONFLICT_RETRIES):
            if self.closed or (
                launching and (state.cancel_requested or self.state.cancel_requested)
            ):
                return None
            patch, after = run_state_patch(self.state, self._held(), state)
            run = _run_commands(
                self.job, patch, status=status, end=end, state=state, actor=self.actor
            )
            self._writing = self.job.version + len(run)
            try:
                written = write_all(self.jobs, [*before, *run, *commands])
            except (ConcurrencyError, InvalidTransitionError, JobAlreadyExistsError) as error:
                self._writing = 0
                if attempt_once or (
                    # A command of another job (a launch's end) is the caller's to handle;
                    # a launch id already taken means another drive launched it.
                    error.job_id != self.run_id and not isinstance(error, JobAlreadyExistsError)
                ):
                    raise
                self.observe(with_storage_retry(lambda: self.jobs.get(self.run_id)))
                state = attrs.evolve(
                    state,
                    cancel_requested=state.cancel_requested or self.state.cancel_requested,
                    cancel_requested_by=state.cancel_requested_by or self.state.cancel_requested_by,
                )
                continue
            except BaseException:
                self._writing = 0
                raise
            self.job = written[len(before) + len(run) - 1]
            self._writing = 0
            renewing = (
                state.lease is not None
                and state.lease is not self.state.lease
                and state.lease != self.state.lease
            )
            self.state = state
            self._encoded = after
            self.last_write = time.monotonic()
            if renewing:
                self.renewed = self.last_write
            return written[len(before) + len(run) :]
        msg = f"run {self.run_id!r} kept changing: {_CONFLICT_RETRIES} writes met a conflict"
        raise RuntimeError(msg)

    def poll(self) -> None:
        """Read the run and take in what others changed since this drive last wrote.

        A read that times out or finds the storage unreachable is skipped.

        Raises:
            RunTakenOverError: another drive claimed the run.
        """
        if self.closed:
            return
        try:
            current = self.jobs.get(self.run_id)
        except (StorageTimeoutError, StorageUnavailableError) as error:
            logger.warning(
                "could not read the run to poll it; trying again at the next poll (%s)",
                error,
                extra={"run_id": self.run_id},
            )
            return
        if current.etag != self.job.etag:
            self.observe(current)

    def observe(self, current: Job) -> bool:
        """Take in ``current``, the run as someone else left it; return whether it is over.

        Raises:
            RunTakenOverError: another drive claimed the run.
        """
        _, state = run_parts(current)
        holder = state.drive.owner if state.drive is not None else ""
        if holder != self.owner:
            # Taken over, even if the drive that took it has ended it since.
            raise RunTakenOverError(self.run_id, holder)
        if current.phase.is_terminal:
            self.closed = True
        self.job = current
        self.state = state
        self._encoded = None
        return self.closed


def cancel_launches(
    launches: Iterable[Launch], reason: str, at: datetime, *, actor: str | None = None
) -> list[Command]:
    """The commands that end ``launches`` still running as canceled, saying why, by ``actor``."""
    commands: list[Command] = []
    for launch in launches:
        if launch.status is not TaskStatus.RUNNING:
            continue
        commands.append(
            UpdateJob(
                job_id=launch.job_id,
                etag=ANY_ETAG,
                state_update={
                    "outcome": TaskStatus.CANCELED.value,
                    "ended_at": at.isoformat(),
                    "error": {"type": "jobledger.runner.TaskCanceled", "message": reason},
                },
                actor=actor,
            )
        )
        commands.append(CancelJob(job_id=launch.job_id, etag=ANY_ETAG, actor=actor))
    return commands


def running_launches(jobs: Ledger, run_id: str, state: RunState) -> tuple[Launch, ...]:
    """The launches of the run's last step that are still running (read from the last back)."""
    found: list[Launch] = []
    for number in range(state.launches, 0, -1):
        try:
            launch = Launch.of(jobs.get(launch_id(run_id, number)))
        except (JobNotFoundError, ValueError):
            continue
        if launch.input.step != state.step:
            break
        if launch.status is TaskStatus.RUNNING:
            found.append(launch)
    return tuple(reversed(found))


def request_cancel(
    jobs: Ledger,
    run_id: str,
    *,
    service: str = RUN_SERVICE,
    clock: Callable[[], datetime] | None = None,
    actor: str | None = None,
) -> RunResult:
    """Ask a run to stop, from any thread or process that shares the ledger.

    ``actor`` (who asks) is recorded as the actor of every change the request
    makes, and of the run's cancel when its driver ends the run.

    A run driven by a live drive gets ``cancel_requested`` in its state: its
    driver notices it at its next write or poll, asks the running tasks to
    stop, launches nothing more, and ends the run ``canceled`` once they
    finish. A run nobody drives (blocked, released, or whose lease expired) is
    canceled at once, with its launches still marked running. A run that is
    over is left as it is. Conflicting writes are retried with the run's new ETag.

    Returns:
        The run as the request left it (its launches not read: see :func:`load_run`).

    Raises:
        RunNotFoundError: no run has this id.
    """
    from jobledger._application.defaults import utc_now  # noqa: PLC0415  (the default clock)

    now_of = clock or utc_now
    for _ in range(_CONFLICT_RETRIES):
        job = read_run(jobs, run_id, service)
        _, state = run_parts(job)
        if job.phase.is_terminal:
            return result_of(job, {})
        now = now_of()
        driven = (
            run_status(job) is RunStatus.RUNNING
            and state.lease is not None
            and not state.lease.expired(now)
        )
        new = attrs.evolve(state, cancel_requested=True, cancel_requested_by=actor)
        try:
            if driven:
                if not state.cancel_requested:
                    patch = state_patch(encode(state), encode(new))
                    job = jobs.handle(
                        UpdateJob(job_id=run_id, etag=job.etag, state_update=patch, actor=actor)
                    )
                return result_of(job, {})
            new = attrs.evolve(new, lease=None)
            patch = state_patch(encode(state), encode(new))
            orphans = cancel_launches(
                running_launches(jobs, run_id, state), "the run was canceled", now, actor=actor
            )
            commands = [
                UpdateJob(job_id=run_id, etag=job.etag, state_update=patch, actor=actor),
                CancelJob(job_id=run_id, etag=ANY_ETAG, actor=actor),
                *orphans,
            ]
            written = write_all(jobs, commands)
            return result_of(written[1], {})
        except (ConcurrencyError, InvalidTransitionError):
            continue
    msg = f"run {run_id!r} kept changing: {_CONFLICT_RETRIES} cancel requests met a conflict"
    raise RuntimeError(msg)


def frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    """``counts`` as a read-only mapping."""
    return MappingProxyType(dict(counts))
