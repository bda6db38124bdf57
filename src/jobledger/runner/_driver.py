"""The driver: one drive of a run, kept thin.

It asks the planner what to do, hands launches to executors, keeps its lease
alive, watches the clock for timeouts, and records everything through the
run's :class:`~jobledger.runner._ledger.RunWriter` and the launches' own jobs.
It decides nothing of Invoke-Job's rules itself.
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

from jobledger._core.commands import (
    ANY_ETAG,
    CancelJob,
    Command,
    CompleteJob,
    FailJob,
    StartJob,
    UpdateJob,
)
from jobledger._core.errors import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobledgerError,
    JobNotFoundError,
)
from jobledger._core.events import EventFilter, EventType
from jobledger.runner._context import (
    PROGRESS_INTERVAL,
    LaunchChannel,
    LedgerChannel,
    LedgerHandle,
    LocalChannel,
    TaskCall,
    TaskReport,
    error_of,
    error_type,
    execute,
    progress_interval_of,
)
from jobledger.runner._definition import Task
from jobledger.runner._errors import RunTakenOverError, TaskTimeoutError
from jobledger.runner._ledger import (
    TASK_ENTITY,
    RunWriter,
    cancel_launches,
    load_run,
    result_of,
    with_storage_retry,
    write_all,
)
from jobledger.runner._model import (
    Drive,
    Launch,
    LaunchInput,
    LaunchState,
    Lease,
    Release,
    RunState,
    encode,
    launch_id,
)
from jobledger.runner._outcome import LaunchGroup, RunResult, RunWarning, TaskError, TaskOutcome
from jobledger.runner._planner import (
    EndFacts,
    StepPlan,
    breakpoint_of,
    counts_of,
    next_step,
    run_end,
)
from jobledger.runner._states import RunStatus, RunTrigger, TaskStatus
from jobledger.runner._steps import Step, group_steps
from jobledger.runner._timeouts import START_GRACE, START_POLL, recorded_start, terminate_worker
from jobledger.runner._watcher import Watcher

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from jobledger._core.job import Job
    from jobledger._core.jsondoc import JsonObject
    from jobledger.runner._definition import JobDefinition
    from jobledger.runner._ledger import Ledger

__all__ = ["DriveSettings", "Driver", "runs_in_process"]

logger = logging.getLogger("jobledger.runner")

#: Parent outcomes whose summaries a task sees (the parents that ran).
_PASSING: Final = frozenset({TaskStatus.COMPLETED, TaskStatus.WARNING})
#: The run's status while it runs.
_RUNNING: Final = RunStatus.RUNNING.value
#: What a launch's job holds when it starts.
_LAUNCHED: Final = LaunchState()
#: The future of a launch run in the driving thread: never submitted, never done.
_NOT_SUBMITTED: Final[Future[TaskReport]] = Future()


def runs_in_process(executor: Executor) -> bool:
    """Whether ``executor`` runs its calls in this process.

    A :class:`~concurrent.futures.ThreadPoolExecutor` does, and so does any
    executor with a true ``runs_in_process`` attribute (an executor that runs
    calls inline, say). Tasks on such executors share the runner's ledger and
    see a cancel request at once; tasks on any other reach the ledger from
    their own process (see :class:`~jobledger.runner.TaskContext`).
    """
    return (
        isinstance(executor, ThreadPoolExecutor)
        or getattr(executor, "runs_in_process", False) is True
    )


@attrs.frozen
class DriveSettings:
    """What a runner tells each of its drives.

    Attributes:
        service: The service of the run's jobs.
        lease: Seconds a claim of the run lasts; renewed every third of it.
        poll_interval: Seconds between reads of the run (cancel requests from elsewhere).
        clock: Reads the time.
        ledger_handle: How tasks in other processes reach the ledger, if they can.
    """

    service: str
    lease: float
    poll_interval: float
    clock: Callable[[], datetime]
    ledger_handle: LedgerHandle | None


@attrs.frozen
class _Finished:
    launch: int


@attrs.frozen
class _Started:
    launch: int
    at: float
    started_at: datetime


@attrs.frozen
class _Wake:
    etag: str | None
    version: int | None


_Message = _Finished | _Started | _Wake


@attrs.frozen
class _RunNews(EventFilter):
    """The events of one run that its drive did not make itself.

    An in-process ledger asks it of each change as the committing thread saves
    it, before the change's event is made, so the drive's own writes of its run
    (one per step) and its tasks' changes make no event and never wake the
    subscription's thread. A ledger that filters elsewhere (a service) uses
    the service and entity only; the handler checks again.
    """

    writer: RunWriter | None = attrs.field(default=None, kw_only=True, eq=False)

    def admits(  # noqa: PLR0917  (EventFilter.admits's signature)
        self,
        kind: EventType,
        job_id: str,
        service: str,
        entity: str,
        type: str,
        version: int,
        etag: str,
    ) -> bool:
        """Whether the event is a change of the run that its writer did not make or see.

        Told from the change's fields, so an in-process ledger makes no event
        of the drive's own writes nor of its tasks' (nor of anything else).
        """
        writer = self.writer
        return (
            writer is not None
            and job_id == writer.run_id
            and not writer.knows(version, etag)
            and super().admits(kind, job_id, service, entity, type, version, etag)
        )


@attrs.define
class _Running:
    """A launch of this drive that has not ended."""

    task: Task
    input: LaunchInput
    future: Future[TaskReport]
    channel: LaunchChannel
    local: bool
    deadline: float | None = None
    flagged: bool = False
    started_at: datetime | None = None


class Driver:
    """One drive of a run: run what is not done, keep the lease, end the run.

    Args:
        jobs: The ledger.
        settings: The runner's settings.
        definition: The run's definition.
        tasks: The run's tasks (the selection), in step order.
        writer: Writes the run; it holds the claimed run.
        drive: This drive.
        run_input: The run's input.
        latest: Each task's latest launch, before this drive.
        attempts: How many times each task was launched before this drive.
        history: The launch groups and warnings before this drive.
        executor_for: The executor of a side (the runner lends its pools).
        replace_executor: Replaces a side's executor after a worker was
            terminated, when the runner made it; whether it could.
        repair_tasks: The blocked tasks whose repair variant this drive runs.
        freeing: The writes that go with the run's end when it is over (the
            definition's record let go of the run), made when the end is written.
        watcher: The thread that keeps the lease and reads the run while the
            driving thread runs a task (the runner shares one among its drives);
            one of the drive's own when ``None``.
        inline_sides: The sides served by the runner's own thread pools: a step
            of one task on such a side, with no timeout, runs in the driving
            thread (no handoff to a pool thread and back), while ``watcher``
            keeps the lease renewed and sees cancel requests.
    """

    def __init__(  # noqa: PLR0917  (the drive's parts, each given by the runner)
        self,
        jobs: Ledger,
        settings: DriveSettings,
        definition: JobDefinition,
        tasks: Sequence[Task],
        writer: RunWriter,
        drive: Drive,
        run_input: object,
        *,
        latest: Mapping[str, Launch],
        attempts: Mapping[str, int],
        history: tuple[tuple[LaunchGroup, ...], tuple[RunWarning, ...]],
        executor_for: Callable[[str], Executor],
        replace_executor: Callable[[str, Executor], bool] = lambda _side, _executor: False,
        repair_tasks: frozenset[str] = frozenset(),
        inline_sides: frozenset[str] = frozenset(),
        freeing: Callable[[], Sequence[Command]] = tuple,
        watcher: Watcher | None = None,
        steps: Sequence[Step] | None = None,
    ) -> None:
        self.jobs = jobs
        self.settings = settings
        self.definition = definition
        self.tasks = tuple(tasks)
        self.steps = group_steps(self.tasks) if steps is None else tuple(steps)
        self.in_run = frozenset(task.identifier for task in self.tasks)
        # The steps before this one are done: the planner looks from here on.
        self.step_index = 0
        self.writer = writer
        self._run_id = writer.run_id
        self.drive = drive
        # Who the drive acts for: every command it makes names them.
        self.actor = drive.actor
        self.run_input = run_input
        self.executor_for = executor_for
        self.replace_executor = replace_executor
        # Sides whose worker process this drive terminated: their pool broke.
        self.broken_sides: set[str] = set()
        self.repair_tasks = repair_tasks
        self.latest: dict[str, Launch] = dict(latest)
        self.outcomes: dict[str, TaskOutcome] = {
            name: launch.outcome(attempts.get(name)) for name, launch in latest.items()
        }
        self.counts: Counter[str] = Counter(counts_of(self.tasks, self.outcomes))
        self.attempts = dict(attempts)
        self.groups = list(history[0])
        self.warnings = list(history[1])
        self.inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self.running: dict[int, _Running] = {}
        self.ends: list[tuple[_Running, list[Command], TaskOutcome]] = []
        self.lock = threading.RLock()
        self.failure: str | None = writer.state.failure
        self.halted = any(outcome.status is TaskStatus.FAILED for outcome in self.outcomes.values())
        self.abandoned = False
        self.warned_unreachable = False
        self.released = False
        self.last_poll = time.monotonic()
        self.last_start_poll = time.monotonic()
        self.inline_sides = inline_sides
        self.launch_description = f"{definition.identifier} / {writer.run_id}"
        self.freeing = freeing
        # Whether the end's write carried the freeing writes.
        self.freed = False
        # The launch this drive runs in its own thread now (the watcher keeps the
        # lease and reads the run meanwhile).
        self.inline: _Running | None = None
        self.watcher = Watcher(linger=0.0) if watcher is None else watcher
        self.poked = False
        self.deposed: RunTakenOverError | None = None
        # Set once the drive ends its run: nothing is looked after since.
        self.finished = False

    # -- the drive -------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._run_id

    def _now(self) -> datetime:
        return self.settings.clock()

    def _renewal_due(self) -> bool:
        """Whether a third of the lease has passed since it was last renewed."""
        return time.monotonic() - self.writer.renewed >= self.settings.lease / 3

    def _lease(self) -> Lease:
        seconds = self.settings.lease
        return Lease(self.drive.owner, self._now() + timedelta(seconds=seconds), seconds)

    def _stopping(self) -> bool:
        return (
            self.released or self.writer.closed or self.writer.state.cancel_requested or self.halted
        )

    def run(self) -> RunResult:
        """Drive the run to its end (or its breakpoint) and return it as recorded."""
        subscribe = getattr(self.jobs, "subscribe", None)
        subscription = (
            subscribe(
                self._on_event,
                _RunNews(service=self.settings.service, entity="job", writer=self.writer),
            )
            if subscribe is not None
            else None
        )
        self.watcher.watch(self)
        try:
            while True:
                with self.lock:
                    if self.deposed is not None:
                        raise self.deposed
                    plan = next_step(
                        self.steps,
                        self.outcomes,
                        stopping=self._stopping(),
                        start=self.step_index,
                        in_run=self.in_run,
                    )
                if plan is None:
                    break
                self.step_index = plan.index
                self._launch(plan)
                self._await_step()
            self._end()
        finally:
            if subscription is not None:
                subscription.cancel()
            with self.lock:
                self.finished = True
            self.watcher.forget(self)
            self._flag_running()
        return self.result()

    def result(self) -> RunResult:
        """The run as this drive knows it; read from the ledger when someone else ended it."""
        if self.writer.closed:
            # Its launches may have been ended by whoever ended the run: the ledger says.
            return load_run(
                self.jobs, self.run_id, definition=self.definition, service=self.settings.service
            )
        return result_of(
            self.writer.job,
            self.latest,
            definition=self.definition,
            groups=self.groups,
            warnings=self.warnings,
        )

    def _on_event(self, event: object) -> None:
        if getattr(event, "job_id", None) == self.run_id:
            etag, version = getattr(event, "etag", None), getattr(event, "version", None)
            if self.writer.knows(version, etag):
                return  # this drive's own write, or older: no news
            self.inbox.put(_Wake(etag, version))
            if self.inline is not None:
                # Someone else changed the run while a task runs in the driving thread.
                self.poked = True
                self.watcher.poke()

    # -- launching ---------------------------------------------------------------------

    def _launch(self, plan: StepPlan) -> None:  # noqa: C901  (one transaction, told in order)
        with self.lock:
            state = self.writer.state
            now = self._now()
            number = state.launches
            group = state.groups + 1 if plan.launch else state.groups
            commands: list[Command] = []
            made: list[tuple[Task, LaunchInput, LaunchState]] = []
            for task, reason in plan.skip:
                number += 1
                record = self._record(task, number, None, repair=False)
                outcome = LaunchState(outcome=TaskStatus.SKIPPED, skip_reason=reason, ended_at=now)
                commands.append(self._start(task, record, outcome))
                commands.append(
                    CancelJob(
                        job_id=launch_id(self.run_id, number), etag=ANY_ETAG, actor=self.actor
                    )
                )
                made.append((task, record, outcome))
            for task in plan.launch:
                number += 1
                record = self._record(
                    task, number, group, repair=task.identifier in self.repair_tasks
                )
                commands.append(self._start(task, record, _LAUNCHED))
                made.append((task, record, _LAUNCHED))
            outcomes = {
                task.identifier: self._outcome(task, record, launched, now)
                for task, record, launched in made
            }
            counts = Counter(self.counts)
            for name, planned in outcomes.items():
                before = self.outcomes.get(name)
                counts[TaskStatus.PENDING if before is None else before.status] -= 1
                counts[planned.status] += 1
            new = state.stepped(
                launches=number,
                groups=group,
                step=plan.step,
                counts=counts,
                # Renewed with the step's write when due (a write that leaves it as it is
                # costs less: most steps of a quick run do not touch the lease).
                lease=self._lease() if self._renewal_due() else state.lease,
            )
            try:
                written = self._write_with_ends(
                    new, status=_RUNNING, commands=commands, launching=True
                )
            except InvalidJobDataError as refused:
                self._stop_on_refusal(refused)
                return
            if written is None:
                return
            jobs_by_id = {job.id: job for job in written}
            launched_now: list[str] = []
            # When the ledger made the group's first launch job, as load_run reads it.
            launched_at: datetime | None = None
            for task, record, launched in made:
                planned = outcomes[task.identifier]
                job = jobs_by_id.get(launch_id(self.run_id, record.launch))
                if job is not None:
                    self.latest[task.identifier] = Launch(
                        job_id=job.id,
                        type=job.type,
                        input=record,
                        state=launched,
                        status=planned.status,
                        launched_at=job.created_at,
                        updated_at=job.updated_at,
                    )
                self._set_outcome(planned)
                if record.group is not None:
                    self.attempts[task.identifier] = record.attempt
                    launched_now.append(record.task)
                    if launched_at is None and job is not None:
                        launched_at = job.created_at
            if launched_now:
                self.groups.append(
                    LaunchGroup(
                        group,
                        plan.step,
                        tuple(launched_now),
                        now if launched_at is None else launched_at,
                        self.drive.number,
                    )
                )
                if logger.isEnabledFor(logging.INFO):
                    logger.info(
                        "launch group started",
                        extra={"run_id": self.run_id, "launch_group": group, "step": plan.step},
                    )
            # Under the lock: a release from another thread waits until they are tracked.
            inline = self._hand_out([(task, record) for task, record, _ in made], len(launched_now))
        if inline is not None:
            self._run_inline(inline)

    def _hand_out(self, made: Sequence[tuple[Task, LaunchInput]], launched: int) -> TaskCall | None:
        """Submit the step's launches; the call to run here when it is one task that may be."""
        for task, record in made:
            if self.released:
                # Let go by a task run inline: the rest of the step is not run.
                break
            if record.group is None:
                continue
            if launched == 1 and self._inlinable(task):
                return self._track_inline(task, record)
            self._submit(task, record)
        return None

    def _record(self, task: Task, number: int, group: int | None, *, repair: bool) -> LaunchInput:
        return LaunchInput(
            run=self.run_id,
            task=task.identifier,
            launch=number,
            step=task.launch_order,
            group=group,
            attempt=self.attempts.get(task.identifier, 0) + (0 if group is None else 1),
            repair=repair,
            drive=self.drive.number,
            side=task.side,
        )

    def _start(self, task: Task, record: LaunchInput, state: LaunchState) -> StartJob:
        return StartJob(
            service=self.settings.service,
            entity=TASK_ENTITY,
            type=task.type,
            display_name=task.identifier,
            description=self.launch_description,
            input=encode(record),
            # A launch starts with the empty state (LaunchState()'s JSON): None says so.
            state=None if state is _LAUNCHED else encode(state),
            job_id=launch_id(self.run_id, record.launch),
            actor=self.actor,
        )

    def _outcome(
        self, task: Task, record: LaunchInput, state: LaunchState, launched_at: datetime
    ) -> TaskOutcome:
        return TaskOutcome(
            identifier=task.identifier,
            type=task.type,
            launch_order=task.launch_order,
            side=task.side,
            status=TaskStatus.RUNNING if state.outcome is None else state.outcome,
            attempts=record.attempt,
            launch_group=record.group,
            launched_at=None if record.group is None else launched_at,
            skip_reason=state.skip_reason,
            ended_at=state.ended_at,
            repair=record.repair,
        )

    def _submit(self, task: Task, record: LaunchInput) -> None:
        job_id = launch_id(self.run_id, record.launch)
        try:
            executor = self.executor_for(task.side)
        except Exception as err:  # noqa: BLE001  (a side that cannot start fails its task)
            future: Future[TaskReport] = Future()
            future.set_exception(err)
            unlinked = LedgerChannel(None, job_id, actor=self.actor)
            self._track(task, record, future, unlinked, local=True)
            return
        local = runs_in_process(executor)
        channel: LaunchChannel
        if local:
            channel = LocalChannel(
                self.jobs,  # type: ignore[arg-type]
                job_id,
                on_start=None
                if task.timeout is None
                else functools.partial(self._started_here, record.launch),
                actor=self.actor,
            )
        else:
            channel = LedgerChannel(self.settings.ledger_handle, job_id, actor=self.actor)
            if self.settings.ledger_handle is None and not self.warned_unreachable:
                self.warned_unreachable = True
                logger.warning(
                    "tasks on side %r run in other processes, which cannot reach this ledger "
                    "(kept in memory, or not picklable): their progress is recorded with their "
                    "end only, and they see no cancel request; give the runner a ledger on a "
                    "SQLite file or PostgreSQL",
                    task.side,
                    extra={"run_id": self.run_id},
                )
        call = self._call(task, record, channel, progress_interval_of(executor))
        try:
            future = executor.submit(execute, call)
        except Exception as err:  # noqa: BLE001  (a refused submit is the task's error)
            future = Future()
            future.set_exception(err)
        self._track(task, record, future, channel, local=local)

    def _call(
        self, task: Task, record: LaunchInput, channel: LaunchChannel, progress_interval: float
    ) -> TaskCall:
        function = task.repair if record.repair and task.repair is not None else task.function
        return TaskCall(
            run_id=self.run_id,
            launch_id=launch_id(self.run_id, record.launch),
            task=task,
            function=function,
            input=self.run_input,  # type: ignore[arg-type]
            force=self.writer.state.force if task.guarded else None,
            repair=record.repair,
            attempt=record.attempt,
            channel=channel,
            clock=self.settings.clock,
            progress_interval=progress_interval,
            parent_summaries={
                parent: outcome.summary
                for parent in task.parents
                if (outcome := self.outcomes.get(parent)) is not None and outcome.status in _PASSING
            }
            if task.parents
            else {},
        )

    # -- a one-task step, run in the driving thread ---------------------------------------

    def _inlinable(self, task: Task) -> bool:
        """Whether ``task``, alone in its step, runs in the driving thread.

        Only on a side served by the runner's own thread pools (an executor
        given to the runner is always used), and only without a timeout: a
        task the driver runs itself could not be abandoned at its timeout.
        """
        return task.timeout is None and task.side in self.inline_sides and not self.running

    def _track_inline(self, task: Task, record: LaunchInput) -> TaskCall:
        """Track ``task``'s launch as running in this thread (under the lock); its call."""
        channel = LocalChannel(
            self.jobs,  # type: ignore[arg-type]
            launch_id(self.run_id, record.launch),
            actor=self.actor,
        )
        call = self._call(task, record, channel, PROGRESS_INTERVAL)
        running = _Running(task, record, _NOT_SUBMITTED, channel, local=True)
        self.running[record.launch] = running
        self.inline = running
        return call

    def _run_inline(self, call: TaskCall) -> None:
        """Run the call of the launch tracked inline, here, then take its end in.

        The lock is not held while the task runs: the watcher thread renews
        the lease and reads the run meanwhile, and a release from another
        thread goes through (the task is asked to stop; its end is then not
        recorded here, the release ended its launch).
        """
        running = self.inline
        assert running is not None  # noqa: S101  (tracked by _track_inline)
        report: TaskReport | None = None
        failure: BaseException | None = None
        try:
            if not running.flagged:
                report = execute(call)
        except KeyboardInterrupt:
            with self.lock:
                self.inline = None
            raise
        except BaseException as error:  # noqa: BLE001  (as a pool's future: the task's error)
            failure = error
        with self.lock:
            self.inline = None
            if self.deposed is not None:
                raise self.deposed
            launch = running.input.launch
            if self.running.get(launch) is not running:
                return  # let go meanwhile: its launch was ended by the release
            del self.running[launch]
            self._take_end(running, report, failure, cancelled=report is None and failure is None)
            self._drain_inbox()

    def _drain_inbox(self) -> None:
        """Take in the messages that came while the driving thread ran a task."""
        while not self.inbox.empty():
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return
            self._take(message)

    def due(self) -> float:
        """When (``time.monotonic``) this drive's next read of the run or renewal is due."""
        if self.finished or self.released or self.writer.closed or self.deposed is not None:
            return math.inf  # nothing more to look after
        return min(
            self.last_poll + self.settings.poll_interval,
            self.writer.renewed + self.settings.lease / 3,
        )

    def look_after(self) -> None:
        """The watcher's turn: read the run, renew the lease and pass on a stop, when due.

        Done for a drive whatever its thread does: running a task inline (when
        it cannot do it itself), waiting for its pools' tasks, or writing a step.
        """
        with self.lock:
            if self.finished or self.released or self.writer.closed or self.deposed is not None:
                return
            try:
                if self.poked:
                    self.poked = False
                    self.last_poll = 0.0  # the run changed: read it now
                self._chores()
            except RunTakenOverError as error:
                self.deposed = error
                self._flag_running()
            except JobledgerError as error:
                logger.warning(
                    "could not keep the run while a task ran: %s",
                    error,
                    extra={"run_id": self.run_id},
                )

    def _track(
        self,
        task: Task,
        record: LaunchInput,
        future: Future[TaskReport],
        channel: LaunchChannel,
        *,
        local: bool,
    ) -> None:
        with self.lock:
            running = _Running(task, record, future, channel, local)
            if (
                task.timeout is not None
                and isinstance(channel, LedgerChannel)
                and channel.ledger is None
            ):
                # A launch elsewhere that cannot reach the ledger never says when it
                # starts: it is timed from now. One that can is timed from the start it
                # records in its job, as a thread's from its start: a launch queued on a
                # busy pool or cluster is not timed while it waits.
                running.deadline = time.monotonic() + task.timeout + self.settings.poll_interval
            self.running[record.launch] = running
        future.add_done_callback(lambda _future: self.inbox.put(_Finished(record.launch)))

    def _started_here(self, launch: int, at: datetime) -> None:
        self.inbox.put(_Started(launch, time.monotonic(), at))

    # -- waiting -----------------------------------------------------------------------

    def _await_step(self) -> None:
        while True:
            with self.lock:
                if not self.running or self.released:
                    return
            message = self._next_message()
            with self.lock:
                if message is not None:
                    self._take(message)
                    for _ in range(self.inbox.qsize()):
                        try:
                            self._take(self.inbox.get_nowait())
                        except queue.Empty:
                            break
                self._expire()
                if self.running:
                    # The step's last ends wait for the next launch's transaction.
                    self._write_ends()
                self._chores()

    def _chores(self) -> None:
        """What is due while tasks run: reading the run, renewing the lease, timing launches."""
        now = time.monotonic()
        if now - self.last_poll >= self.settings.poll_interval:
            self.last_poll = now
            self.writer.poll()
        if self._renewal_due():
            self.writer.write(attrs.evolve(self.writer.state, lease=self._lease()))
        if now - self.last_start_poll >= START_POLL:
            self.last_start_poll = now
            self._look_for_starts()
        if self.writer.state.cancel_requested or self.writer.closed:
            self._flag_running()

    def _next_message(self) -> _Message | None:
        now = time.monotonic()
        with self.lock:
            wakes = [
                self.last_poll + self.settings.poll_interval,
                self.writer.renewed + self.settings.lease / 3,
            ]
            wakes.extend(running.deadline for running in self.running.values() if running.deadline)
            if any(
                not r.local and r.task.timeout is not None and r.started_at is None
                for r in self.running.values()
            ):
                # A launch elsewhere is timed once its start is seen in its job.
                wakes.append(self.last_start_poll + START_POLL)
        try:
            return self.inbox.get(timeout=max(min(wakes) - now, 0.0))
        except queue.Empty:
            return None

    def _take(self, message: _Message) -> None:
        if isinstance(message, _Finished):
            self._settle(message.launch)
        elif isinstance(message, _Started):
            running = self.running.get(message.launch)
            if running is not None and running.task.timeout is not None:
                running.deadline = message.at + running.task.timeout
                running.started_at = message.started_at
        elif not self.writer.knows(message.version, message.etag):
            # Someone else's change of the run (this drive's own writes wake it too).
            self.writer.poll()

    def _look_for_starts(self) -> None:
        """Time the launches elsewhere from the start their workers recorded.

        A launch whose future says it runs (a process pool's or loky's, once a
        worker took it) but whose start does not show in its job (its worker
        cannot write to the ledger, or lost it) is timed from when that was
        first seen, with :data:`START_GRACE` for the start to be recorded; a
        start seen later times it from that start instead. A launch still
        queued, by its future, is not timed.
        """
        for running in self.running.values():
            if (
                running.local
                or running.task.timeout is None
                or running.flagged
                or running.started_at is not None
            ):
                continue
            try:
                job = self.jobs.get(launch_id(self.run_id, running.input.launch))
            except JobledgerError:
                continue
            began = recorded_start(job)
            if began is not None:
                elapsed = (self._now() - began).total_seconds()
                running.deadline = time.monotonic() - elapsed + running.task.timeout
                running.started_at = began
            elif running.deadline is None and running.future.running():
                running.deadline = time.monotonic() + running.task.timeout + START_GRACE

    def _flag_running(self) -> None:
        """Ask every running launch to stop: its flag here, or its job elsewhere."""
        with self.lock:
            elsewhere: list[Command] = []
            for running in self.running.values():
                if running.flagged:
                    continue
                running.flagged = True
                if isinstance(running.channel, LocalChannel):
                    running.channel.flag.set()
                else:
                    elsewhere.append(self._cancel_command(running))
        self._write_alone(elsewhere)

    def _cancel_command(self, running: _Running) -> Command:
        return UpdateJob(
            job_id=launch_id(self.run_id, running.input.launch),
            etag=ANY_ETAG,
            state_update={"cancel_requested": True},
            actor=self.actor,
        )

    def _expire(self) -> None:
        now = time.monotonic()
        for number, running in list(self.running.items()):
            if running.deadline is None or now < running.deadline or running.future.done():
                continue
            # Past its timeout: asked to stop and abandoned (a thread cannot be stopped;
            # its executor stops being reused).
            del self.running[number]
            self.abandoned = True
            running.flagged = True
            if isinstance(running.channel, LocalChannel):
                running.channel.flag.set()
            else:
                self._write_alone([self._cancel_command(running)])
            running.future.cancel()
            if not running.local:
                self._terminate_worker(running)
            timeout = running.task.timeout or 0.0
            error = TaskTimeoutError(running.task.identifier, timeout)
            failure = TaskError(error_type(type(error)), str(error))
            state = self._error_state(running.task, failure, self._now())
            self._queue_end(running, attrs.evolve(state, started_at=running.started_at))

    def _terminate_worker(self, running: _Running) -> None:
        """Stop the work of a launch past its timeout in a process pool: end its worker.

        Only a :class:`~concurrent.futures.ProcessPoolExecutor` worker on this
        machine that recorded its process id is terminated (a dask worker is
        not: its nanny would run the task again elsewhere). The pool breaks;
        one the runner made is replaced, so the next task starts at once.
        """
        try:
            executor = self.executor_for(running.task.side)
        except Exception:  # noqa: BLE001  (no executor: nothing to terminate)
            return
        if not isinstance(executor, ProcessPoolExecutor):
            return
        try:
            job = self.jobs.get(launch_id(self.run_id, running.input.launch))
        except JobledgerError:
            return
        pid = terminate_worker(job)
        if pid is None:
            return
        logger.warning(
            "terminated worker process %d of task %r, past its timeout",
            pid,
            running.task.identifier,
            extra={"run_id": self.run_id},
        )
        self.broken_sides.add(running.task.side)
        self.replace_executor(running.task.side, executor)

    # -- settling ----------------------------------------------------------------------

    def _settle(self, launch: int) -> None:
        running = self.running.pop(launch, None)
        if running is None:
            return  # abandoned on its timeout
        future = running.future
        if future.cancelled():
            self._take_end(running, None, None, cancelled=True)
        elif (failure := future.exception()) is not None:
            self._take_end(running, None, failure, cancelled=False)
        else:
            self._take_end(running, future.result(), None, cancelled=False)

    def _take_end(
        self,
        running: _Running,
        report: TaskReport | None,
        failure: BaseException | None,
        *,
        cancelled: bool,
    ) -> None:
        """Take in how a launch ended: its report, or what its future raised, or its cancel."""
        if report is not None:
            self._queue_end(running, self._report_state(running, report), report.progress)
            return
        now = self._now()
        if cancelled or failure is None:
            state = LaunchState(outcome=TaskStatus.CANCELED, ended_at=now)
        else:
            if isinstance(failure, BrokenExecutor) and running.task.side in self.broken_sides:
                # Not the task's fault: its pool broke when a timed-out sibling's worker
                # was terminated. Canceled, so it runs again unless the run stops.
                state = LaunchState(
                    outcome=TaskStatus.CANCELED,
                    ended_at=now,
                    error=TaskError(
                        error_type(type(failure)),
                        "its worker pool was stopped when another task on it timed out",
                    ),
                )
                self._queue_end(running, state)
                return
            state = self._error_state(running.task, error_of(failure), now)
        self._queue_end(running, state)

    def _error_state(self, task: Task, error: TaskError, now: datetime) -> LaunchState:
        status = TaskStatus.WARNING if task.warning_mode else TaskStatus.FAILED
        return LaunchState(outcome=status, error=error, ended_at=now)

    def _report_state(self, running: _Running, report: TaskReport) -> LaunchState:
        task = running.task
        if report.blockage is not None and task.guarded:
            state = LaunchState(outcome=TaskStatus.BLOCKED, blocked=report.blockage)
        elif report.blockage is not None:
            assert report.error is not None  # noqa: S101  (execute records both)
            error = attrs.evolve(
                report.error,
                message=f"task {task.identifier!r} is not guarded, so it may not block: "
                f"{report.blockage.reason}",
            )
            state = self._error_state(task, error, report.ended_at)
        elif report.canceled and running.flagged:
            state = LaunchState(outcome=TaskStatus.CANCELED)
        elif report.error is not None:
            state = self._error_state(task, report.error, report.ended_at)
        else:
            # The common end, made in one go.
            result = report.result
            return LaunchState(
                outcome=TaskStatus.COMPLETED,
                output=True if result is None else result.output,
                summary=None if result is None else result.summary,
                started_at=report.started_at,
                ended_at=report.ended_at,
                duration=round(report.duration, 6),
                progress=report.unwritten,
            )
        return attrs.evolve(
            state,
            started_at=report.started_at,
            ended_at=report.ended_at,
            duration=round(report.duration, 6),
            progress=report.unwritten,
        )

    def _queue_end(
        self, running: _Running, state: LaunchState, progress: JsonObject | None = None
    ) -> None:
        if state.outcome in {TaskStatus.FAILED, TaskStatus.BLOCKED}:
            self.halted = True
        task, record = running.task, running.input
        commands = _end_commands(launch_id(self.run_id, record.launch), state, self.actor)
        status = TaskStatus.RUNNING if state.outcome is None else state.outcome
        launch = self.latest.get(task.identifier)
        if launch is None or launch.input.launch != record.launch:
            # Its start's record is not at hand (never expected): made from what is known.
            now = self._now()
            launch = Launch(
                job_id=launch_id(self.run_id, record.launch),
                type=task.type,
                input=record,
                state=LaunchState(),
                status=TaskStatus.RUNNING,
                launched_at=now,
                updated_at=now,
            )
        if progress is not state.progress:
            state = attrs.evolve(state, progress=progress)
        ended = Launch(
            job_id=launch.job_id,
            type=launch.type,
            input=launch.input,
            state=state,
            status=status,
            launched_at=launch.launched_at,
            updated_at=launch.updated_at,
        )
        self.latest[task.identifier] = ended
        outcome = ended.outcome()
        self.ends.append((running, commands, outcome))
        self._set_outcome(outcome)
        if self.warnings:
            # An end queued again (its first form refused by the ledger) replaces its warning.
            self.warnings = [
                warning for warning in self.warnings if warning.task != running.task.identifier
            ]
        if state.outcome is TaskStatus.WARNING and state.error is not None:
            self.warnings.append(
                RunWarning(running.task.identifier, state.error.type, state.error.message)
            )

    def _set_outcome(self, outcome: TaskOutcome) -> None:
        """Record a task's new outcome, and count it."""
        before = self.outcomes.get(outcome.identifier)
        self.counts[TaskStatus.PENDING if before is None else before.status] -= 1
        self.counts[outcome.status] += 1
        self.outcomes[outcome.identifier] = outcome

    def _write_with_ends(
        self,
        state: RunState,
        *,
        status: str | None = None,
        end: RunTrigger | None = None,
        commands: Sequence[Command] = (),
        launching: bool = False,
    ) -> tuple[Job, ...] | None:
        """Write the run with the ends not yet written, in one transaction.

        A step's last ends go with the next step's launches (or the run's end),
        so a run of one-task steps costs one transaction per task. Should an end
        be refused (too big, or its launch ended by someone else), the ends are
        written on their own, each alone if need be, and the run after them.
        """
        ends = self.ends
        if not ends:
            return self.writer.write(
                state, status=status, end=end, commands=commands, launching=launching
            )
        self.ends = []
        end_commands = [command for _, end_batch, _ in ends for command in end_batch]
        try:
            written = self.writer.write(
                state,
                status=status,
                end=end,
                commands=[*end_commands, *commands],
                launching=launching,
            )
        except (InvalidJobDataError, InvalidTransitionError, JobNotFoundError, ConcurrencyError):
            self.ends = ends
            self._write_ends()
            if launching and self.halted:
                # An end refused here was recorded as its task's error: nothing more runs.
                return None
            return self.writer.write(
                state, status=status, end=end, commands=commands, launching=launching
            )
        if written is None:
            # Not written (a cancel request stopped the launch): the ends go alone.
            self.ends = ends
            self._write_ends()
            return None
        self._log_ends(ends)
        return written[len(end_commands) :]

    def _log_ends(self, ends: Sequence[tuple[_Running, list[Command], TaskOutcome]]) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        for running, _, outcome in ends:
            logger.info(
                "task ended",
                extra={
                    "run_id": self.run_id,
                    "task_id": running.task.identifier,
                    "status": outcome.status.value,
                },
            )

    def _write_ends(self) -> None:
        """Write the ends taken in since the last write, in one batch (each alone if refused)."""
        if not self.ends:
            return
        ends, self.ends = self.ends, []
        commands = [command for _, end, _ in ends for command in end]
        try:
            write_all(self.jobs, commands)
        except (InvalidJobDataError, InvalidTransitionError, JobNotFoundError):
            for running, end, _ in ends:
                self._write_end_alone(running, end)
        self._log_ends(ends)

    def _write_end_alone(self, running: _Running, end: list[Command]) -> None:
        try:
            write_all(self.jobs, end)
        except InvalidJobDataError as refused:
            # The end does not fit (a huge summary, say): its error is recorded instead.
            error = attrs.evolve(error_of(refused), traceback="")
            fallback = self._error_state(running.task, error, self._now())
            self._queue_end(running, fallback)
            ends, self.ends = self.ends, []
            for _, commands, _ in ends:
                self._write_alone(commands)
        except (InvalidTransitionError, JobNotFoundError):
            logger.warning(
                "launch %r was ended by someone else (a takeover or a cancel of a run nobody "
                "drove); its end here is not recorded",
                launch_id(self.run_id, running.input.launch),
            )

    def _write_alone(self, commands: Sequence[Command]) -> None:
        if not commands:
            return
        try:
            write_all(self.jobs, commands)
        except JobledgerError as error:
            logger.warning("a launch write was not recorded: %s", error)

    def _stop_on_refusal(self, refused: InvalidJobDataError) -> None:
        self.halted = True
        if self.failure is None:
            self.failure = f"the ledger refused to record the run: {refused}"
            logger.error("%s; no task is launched after this", self.failure)

    # -- the end -----------------------------------------------------------------------

    def _end(self) -> None:
        with self.lock:
            # The run's end is decided from here on: the watcher writes nothing more.
            self.finished = True
            if self.writer.closed or self.released:
                self._write_ends()
                return
            statuses = {outcome.status for outcome in self.outcomes.values()}
            while True:
                # Decided on the run as last seen, and again if it changed meanwhile (a
                # cancel request that comes in before the end is written is obeyed).
                facts = EndFacts(
                    cancel_requested=self.writer.state.cancel_requested,
                    failed=TaskStatus.FAILED in statuses or self.failure is not None,
                    blocked=TaskStatus.BLOCKED in statuses,
                )
                trigger, after = run_end(facts)
                state = attrs.evolve(
                    self.writer.state,
                    counts=self.counts,
                    lease=None,
                    failure=self.failure,
                    breakpoint=breakpoint_of(self.tasks, self.outcomes)
                    if trigger is RunTrigger.BLOCK
                    else None,
                )
                # The last ends, the run's end and what its being over frees, in one
                # transaction (the ends first).
                ends, self.ends = self.ends, []
                end_commands = [command for _, end_batch, _ in ends for command in end_batch]
                try:
                    if trigger is RunTrigger.BLOCK:
                        written = self.writer.write(
                            state,
                            status=RunStatus.BLOCKED.value,
                            before=end_commands,
                            attempt_once=True,
                        )
                    else:
                        freeing = self.freeing()
                        written = self.writer.write(
                            state,
                            end=trigger,
                            before=end_commands,
                            commands=freeing,
                            attempt_once=True,
                        )
                        self.freed = bool(freeing) and written is not None
                except (
                    ConcurrencyError,
                    InvalidTransitionError,
                    InvalidJobDataError,
                    JobNotFoundError,
                ) as error:
                    self.ends = ends + self.ends
                    if ends and getattr(error, "job_id", None) != self.run_id:
                        # Not (or not surely) the run's refusal: the ends go alone (one the
                        # ledger refuses is recorded as its task's error, which the run's
                        # end must count), and the end is decided again.
                        self._write_ends()
                        statuses = {outcome.status for outcome in self.outcomes.values()}
                        continue
                    if not isinstance(error, (ConcurrencyError, InvalidTransitionError)):
                        raise
                    current = with_storage_retry(lambda: self.jobs.get(self.run_id))
                    if self.writer.observe(current):
                        self._write_ends()
                        return  # ended by someone else meanwhile
                    continue
                if written is None:
                    # Ended by someone else before this write: its ends go alone.
                    self.ends = ends + self.ends
                    self._write_ends()
                    return
                self._log_ends(ends)
                break
            logger.info("run ended", extra={"run_id": self.run_id, "status": after.value})

    def release(self, reason: str) -> None:
        """Let go of the run on purpose: no task is launched, the lease is given up at once.

        The running launches are asked to stop and ended ``canceled``; the run
        stays ``running`` with no lease, so a resume takes it over at once.
        Safe to call from another thread than the drive's.
        """
        with self.lock:
            if self.released or self.writer.closed:
                return
            self._flag_running()
            self._write_ends()
            now = self._now()
            orphans = [
                attrs.evolve(launch, status=TaskStatus.RUNNING)
                for number, running in self.running.items()
                if (launch := self.latest.get(running.task.identifier)) is not None
                and launch.input.launch == number
            ]
            state = attrs.evolve(
                self.writer.state,
                lease=None,
                counts=self.counts,
                released=Release(self.drive.number, now, reason),
            )
            try:
                self.writer.write(
                    state, commands=cancel_launches(orphans, reason, now, actor=self.actor)
                )
            except JobledgerError as error:
                logger.warning("could not release run %r: %s", self.run_id, error)
            self.released = True
            self.running.clear()


def _end_commands(job_id: str, state: LaunchState, actor: str | None) -> list[Command]:
    patch = encode(state)
    if state.outcome in {TaskStatus.COMPLETED, TaskStatus.WARNING}:
        return [CompleteJob(job_id=job_id, etag=ANY_ETAG, state_update=patch, actor=actor)]
    if state.outcome in {TaskStatus.FAILED, TaskStatus.BLOCKED}:
        return [FailJob(job_id=job_id, etag=ANY_ETAG, state_update=patch, actor=actor)]
    return [
        UpdateJob(job_id=job_id, etag=ANY_ETAG, state_update=patch, actor=actor),
        CancelJob(job_id=job_id, etag=ANY_ETAG, actor=actor),
    ]


def ended(launches: Iterable[Launch]) -> bool:
    """Whether every one of ``launches`` has ended."""
    return all(launch.status is not TaskStatus.RUNNING for launch in launches)
