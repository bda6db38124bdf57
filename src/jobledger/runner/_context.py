"""What a task sees while it runs (:class:`TaskContext`), and how one launch runs.

:func:`execute` is what the runner submits to an executor: a module-level
function of one picklable :class:`TaskCall`, so it runs the same on a thread
pool, a process pool, loky or a dask.distributed cluster. It never raises for
the task's sake: whatever the task does comes back as a :class:`TaskReport`,
through the executor's future.

A launch talks to the runner only through the ledger and its future: its
progress goes to its own launch job, and it learns of a cancel request (or its
timeout) from that job, where the driver records it. Tasks on an executor in
the runner's process share the runner's ledger and get the cancel request at
once; tasks elsewhere open the ledger from a :class:`LedgerHandle` and look at
their job at most every :data:`CANCEL_POLL_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Protocol

import attrs

from jobledger._application.defaults import utc_now
from jobledger._application.jobs import Jobs
from jobledger._core.commands import ANY_ETAG
from jobledger._core.errors import InvalidJobDataError, JobledgerError
from jobledger._core.jsondoc import JsonObject, JsonValue, Limits, empty_object, freeze, merge_patch
from jobledger.runner._definition import Task, TaskFunction
from jobledger.runner._errors import TaskBlocked, TaskCanceled
from jobledger.runner._outcome import Blockage, TaskError, TaskResult

if TYPE_CHECKING:
    from jobledger._core.job import Job

__all__ = [
    "CANCEL_POLL_SECONDS",
    "PROGRESS_INTERVAL",
    "TASK_LOGGER",
    "CancelSignal",
    "LaunchChannel",
    "LedgerChannel",
    "LedgerHandle",
    "LocalChannel",
    "TaskCall",
    "TaskContext",
    "TaskReport",
    "compose_patches",
    "error_of",
    "error_type",
    "execute",
    "progress_interval_of",
    "recordable",
]

#: The logger task contexts log to (through an adapter that adds the ids).
TASK_LOGGER = "jobledger.runner.task"
#: How many of the innermost frames a recorded traceback keeps.
TRACEBACK_FRAMES = 8
#: The most characters of traceback text recorded (the end is kept).
TRACEBACK_CHARS = 4000
#: The least seconds between two writes of a launch's progress to the ledger; what
#: is reported meanwhile is written together, and the rest with the launch's end.
PROGRESS_INTERVAL = 0.5
#: The least seconds between two looks at the ledger for a cancel request, for a
#: launch in another process.
CANCEL_POLL_SECONDS = 0.25

logger = logging.getLogger("jobledger.runner")


class CancelSignal(Protocol):
    """A flag the runner raises to ask a task to stop: a :class:`threading.Event` or alike."""

    def is_set(self) -> bool:
        """Whether a cancel was requested."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a cancel is requested or ``timeout`` passes; return :meth:`is_set`."""
        ...

    def set(self) -> None:
        """Request the cancel (the runner does)."""
        ...


def compose_patches(first: JsonObject, second: JsonObject) -> JsonObject | None:
    """One merge patch that does what ``first`` then ``second`` do, or ``None`` if none can.

    RFC 7396 patches compose except where ``second`` merges an object into a
    member ``first`` replaces with a non-object.

    >>> a = freeze({"done": 1, "files": {"a": 1}}, field="p")
    >>> b = freeze({"done": 2, "files": {"b": 2}}, field="p")
    >>> compose_patches(a, b)
    {'done': 2, 'files': {'a': 1, 'b': 2}}
    >>> compose_patches(freeze({"files": None}, field="p"), b) is None
    True
    """
    composed: dict[str, JsonValue] = dict(first)
    for key, value in second.items():
        if isinstance(value, JsonObject) and key in first:
            earlier = first[key]
            if not isinstance(earlier, JsonObject):
                return None
            inner = compose_patches(earlier, value)
            if inner is None:
                return None
            composed[key] = inner
        else:
            composed[key] = value
    frozen = freeze(composed, field="state_update")
    assert isinstance(frozen, JsonObject)  # noqa: S101
    return frozen


@attrs.frozen
class LedgerHandle:
    """How a process other than the runner's opens the runner's ledger.

    It holds the ledger's repository, pickled (a SQLite file's path, a
    PostgreSQL conninfo: see each repository's pickling), and its limits. A
    ledger in memory cannot be reached from another process: the runner then
    makes no handle, and tasks elsewhere report their progress with their end
    only and see no cancel request (a warning says so).

    Attributes:
        repository: The pickled repository.
        limits: The ledger's limits.
    """

    repository: bytes
    limits: Limits

    _opened: ClassVar[dict[tuple[int, bytes, Limits], Jobs]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, jobs: object) -> LedgerHandle | None:
        """The handle of ``jobs`` (a :class:`~jobledger.Jobs`), or ``None`` if it cannot be had."""
        repository = getattr(jobs, "repository", None)
        limits = getattr(jobs, "limits", None)
        if repository is None or not isinstance(limits, Limits):
            return None
        try:
            return cls(pickle.dumps(repository), limits)
        except (TypeError, AttributeError, pickle.PicklingError):
            return None

    def open(self) -> Jobs:
        """The ledger, opened once per process and kept for the launches after."""
        key = (os.getpid(), self.repository, self.limits)
        with self._lock:
            jobs = self._opened.get(key)
            if jobs is None:
                repository = pickle.loads(self.repository)  # noqa: S301  (our own bytes)
                jobs = self._opened[key] = Jobs(repository=repository, limits=self.limits)
            return jobs


class LaunchChannel(Protocol):
    """How a running launch and its driver reach each other: through the launch's job."""

    def cancel_requested(self) -> bool:
        """Whether the driver asks the launch to stop."""
        ...

    def wait_for_cancel(self, timeout: float | None) -> bool:
        """Wait until the driver asks the launch to stop, or ``timeout`` passes."""
        ...

    def started(self, at: datetime) -> None:
        """Tell the driver the task's function started (its timeout counts from here)."""
        ...

    def write_progress(self, patch: JsonObject) -> bool:
        """Write ``patch`` to the launch's progress; return whether it was written."""
        ...


def _progress_write(jobs: Jobs, launch_job: str, patch: JsonObject, actor: str | None) -> bool:
    try:
        jobs.update(launch_job, etag=ANY_ETAG, state_update={"progress": patch}, actor=actor)
    except InvalidJobDataError as refused:
        logger.warning(
            "the ledger refused progress of launch %r, which is left out: %s",
            launch_job,
            refused,
            extra={"launch_id": launch_job},
        )
        return True  # dropped for good: not to be sent again with the end
    except JobledgerError:
        return False  # the launch ended meanwhile, or the storage failed: sent with the end
    return True


@attrs.define
class LocalChannel:
    """The channel of a launch on an executor in the runner's process.

    The driver sets :attr:`flag` on a cancel request or a timeout; progress goes
    to the launch's job through the runner's own ledger, naming the drive's
    ``actor``.
    """

    jobs: Jobs
    launch_job: str
    flag: threading.Event = attrs.field(factory=threading.Event)
    on_start: Callable[[datetime], None] | None = None
    actor: str | None = attrs.field(default=None, kw_only=True)

    def cancel_requested(self) -> bool:
        return self.flag.is_set()

    def wait_for_cancel(self, timeout: float | None) -> bool:
        return self.flag.wait(timeout)

    def started(self, at: datetime) -> None:
        if self.on_start is not None:
            self.on_start(at)

    def write_progress(self, patch: JsonObject) -> bool:
        return _progress_write(self.jobs, self.launch_job, patch, self.actor)


@attrs.define
class LedgerChannel:
    """The channel of a launch in another process (a process pool, a dask worker).

    Picklable: it carries the :class:`LedgerHandle` and opens the ledger in the
    worker. A cancel request is read from the launch's job, at most every
    :data:`CANCEL_POLL_SECONDS`; the start is written there with where it runs.
    Its writes (the start, progress) name the drive's ``actor``.
    """

    ledger: LedgerHandle | None
    launch_job: str
    actor: str | None = attrs.field(default=None, kw_only=True)
    _seen_cancel: bool = False
    _last_look: float = -1e9

    def _look(self) -> bool:
        if self._seen_cancel or self.ledger is None:
            return self._seen_cancel
        now = time.monotonic()
        if now - self._last_look < CANCEL_POLL_SECONDS:
            return False
        self._last_look = now
        try:
            job: Job = self.ledger.open().get(self.launch_job)
        except JobledgerError:
            return False
        self._seen_cancel = job.phase.is_terminal or job.state.get("cancel_requested") is True
        return self._seen_cancel

    def cancel_requested(self) -> bool:
        return self._look()

    def wait_for_cancel(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._look():
            left = CANCEL_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, CANCEL_POLL_SECONDS))
        return True

    def started(self, at: datetime) -> None:
        if self.ledger is None:
            return
        worker = {"host": socket.gethostname(), "pid": os.getpid()}
        try:
            self.ledger.open().update(
                self.launch_job,
                etag=ANY_ETAG,
                state_update={"started_at": at.isoformat(), "worker": worker},
                actor=self.actor,
            )
        except JobledgerError:
            logger.warning("could not record the start of launch %r", self.launch_job)

    def write_progress(self, patch: JsonObject) -> bool:
        if self.ledger is None:
            return False
        return _progress_write(self.ledger.open(), self.launch_job, patch, self.actor)


class _Unlinked:
    """The channel of a context built by hand (a unit test): nothing leaves the process."""

    def __init__(self, signal: CancelSignal) -> None:
        self.signal = signal

    def cancel_requested(self) -> bool:
        return self.signal.is_set()

    def wait_for_cancel(self, timeout: float | None) -> bool:
        return self.signal.wait(timeout)

    def started(self, at: datetime) -> None:
        pass

    def write_progress(self, patch: JsonObject) -> bool:  # noqa: ARG002  (kept locally)
        return True


_EMPTY_PROGRESS = empty_object()
#: The parent summaries of a task with no parent that ran (read-only, so shared).
_NO_SUMMARIES: Mapping[str, JsonValue] = MappingProxyType({})


class TaskContext:
    """What a task function receives: who it is, what to work on, and the run's signals.

    The runner makes one per launch. Build one yourself to call a task function
    in a unit test; it then has its own cancellation flag and keeps the progress
    reported in :attr:`progress`.

    Args:
        run_id: The run's id.
        task: The task being run.
        input: The run's input, a JSON value.
        force: The run's force threshold, or ``None``.
        repair: Whether this launch runs the task's repair variant.
        attempt: 1 for the task's first launch in the run, then 2, 3, ...
        cancel_signal: The flag to raise to ask the task to stop (a
            :class:`threading.Event` when ``None``); for a context built by hand.
        launch_id: The id of the launch's job in the ledger.
        parent_summaries: The summaries of the task's parents that ran in this run.
        progress_interval: The least seconds between two writes of its progress
            to the ledger (:data:`PROGRESS_INTERVAL` unless given; 0 writes each
            report at once).

    Attributes:
        run_id: The run's id: the id of its job in the ledger.
        task: The task's definition.
        input: The run's input (read-only JSON).
        force: The force threshold: guarded tasks proceed when it is reached or
            exceeded, instead of blocking.
        repair: Whether this launch runs the repair variant.
        attempt: Which launch of the task this is.
        launch_id: The id of this launch's job (``None`` for a context built by hand).
        parent_summaries: What the task's parents in the run gave as their
            :class:`TaskResult` summary, by identifier: how a task passes data
            to the tasks after it (read-only JSON; a parent that gave none maps
            to ``None``).
        progress: Everything reported so far with :meth:`report_progress`.

    >>> from jobledger.runner import Task
    >>> def export(context):
    ...     context.report_progress(done=10, total=42)
    ...     return None
    >>> context = TaskContext("run-1", Task("export_hr", export))
    >>> export(context)
    >>> context.progress, context.cancel_requested
    ({'done': 10, 'total': 42}, False)
    """

    def __init__(
        self,
        run_id: str,
        task: Task,
        *,
        input: JsonValue = None,
        force: int | None = None,
        repair: bool = False,
        attempt: int = 1,
        cancel_signal: CancelSignal | None = None,
        launch_id: str | None = None,
        parent_summaries: Mapping[str, JsonValue] | None = None,
        channel: LaunchChannel | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.run_id = run_id
        self.task = task
        self.input = input
        self.force = force
        self.repair = repair
        self.attempt = attempt
        self.launch_id = launch_id
        self.parent_summaries: Mapping[str, JsonValue] = (
            MappingProxyType(dict(parent_summaries)) if parent_summaries else _NO_SUMMARIES
        )
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None
        self.progress: JsonObject = _EMPTY_PROGRESS
        if channel is None:
            channel = _Unlinked(threading.Event() if cancel_signal is None else cancel_signal)
        self._channel = channel
        # What was reported and not yet written: written at most every
        # progress_interval, and the rest with the launch's end.
        self.unwritten: JsonObject | None = None
        self._progress_interval = progress_interval
        self._last_write = time.monotonic() - progress_interval

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``run_id``, ``task_id`` and ``attempt`` in ``extra``."""
        if self._logger is None:
            self._logger = logging.LoggerAdapter(
                logging.getLogger(TASK_LOGGER),
                {"run_id": self.run_id, "task_id": self.task.identifier, "attempt": self.attempt},
            )
        return self._logger

    @property
    def cancel_requested(self) -> bool:
        """Whether the runner asks the task to stop (a cancel request, or its timeout)."""
        return self._channel.cancel_requested()

    def wait_for_cancel(self, timeout: float | None = None) -> bool:
        """Wait until a cancel is requested or ``timeout`` seconds pass; return whether it was.

        A task that works in rounds can use it instead of ``time.sleep`` to
        stop promptly.
        """
        return self._channel.wait_for_cancel(timeout)

    def raise_if_cancel_requested(self) -> None:
        """Stop the task here if a cancel was requested; it is then recorded ``canceled``.

        Raises:
            TaskCanceled: a cancel was requested.
        """
        if self._channel.cancel_requested():
            raise TaskCanceled

    def report_progress(self, **values: object) -> None:
        """Record progress in the ledger, in the ``progress`` object of the launch's job.

        The values are merged into what was reported before (a key given
        ``None`` is removed). They are written to the launch's job at most
        every :data:`PROGRESS_INTERVAL` seconds (or every ``progress_interval``
        seconds, when the task's executor has that attribute: 0 writes each
        report at once), and what is left with the launch's end; progress the
        ledger refuses (over its limits) is left out with a warning, and the
        task goes on.

        Raises:
            InvalidJobDataError: a value is not JSON.
        """
        patch = freeze(values, field="progress")
        assert isinstance(patch, JsonObject)  # noqa: S101  (keywords make an object)
        merged = merge_patch(self.progress, patch)
        assert isinstance(merged, JsonObject)  # noqa: S101
        self.progress = merged
        if self.unwritten is not None:
            composed = compose_patches(self.unwritten, patch)
            if composed is None:
                self._flush()
                self.unwritten = patch
            else:
                self.unwritten = composed
        else:
            self.unwritten = patch
        if time.monotonic() - self._last_write >= self._progress_interval:
            self._flush()

    def _flush(self) -> None:
        if self.unwritten is not None and self._channel.write_progress(self.unwritten):
            self.unwritten = None
            self._last_write = time.monotonic()


@attrs.frozen
class TaskCall:
    """One launch of a task, as handed to an executor; picklable when its parts are.

    Attributes:
        run_id: The run.
        launch_id: The id of the launch's job.
        task: The task.
        function: What to run: the task's function, or its repair variant.
        input: The run's input.
        force: The force threshold.
        repair: Whether ``function`` is the repair variant.
        attempt: Which launch of the task this is.
        channel: How the launch reaches its job in the ledger.
        clock: Reads the time for ``started_at`` and ``ended_at``.
        parent_summaries: The summaries of the task's parents that ran.
        progress_interval: The least seconds between two writes of its progress.
    """

    run_id: str
    launch_id: str
    task: Task
    function: TaskFunction
    input: JsonValue
    force: int | None
    repair: bool
    attempt: int
    channel: LaunchChannel
    clock: Callable[[], datetime] = utc_now
    parent_summaries: Mapping[str, JsonValue] = attrs.field(factory=dict)
    progress_interval: float = PROGRESS_INTERVAL


@attrs.frozen
class TaskReport:
    """How one launch of a task went, as :func:`execute` saw it.

    Attributes:
        task: The task's identifier.
        attempt: Which launch this was.
        started_at: When the function started.
        ended_at: When it ended.
        duration: How long it ran, in seconds.
        result: What it returned, if it returned.
        error: What it raised, unless it blocked or stopped on a cancel request.
        blockage: Why it blocked, if it raised :class:`TaskBlocked`.
        canceled: Whether it raised :class:`TaskCanceled`.
        progress: Everything it reported.
        unwritten: The progress reported and not yet written (a merge patch).
    """

    task: str
    attempt: int
    started_at: datetime
    ended_at: datetime
    duration: float
    result: TaskResult | None = None
    error: TaskError | None = None
    blockage: Blockage | None = None
    canceled: bool = False
    progress: JsonObject | None = None
    unwritten: JsonObject | None = None


def progress_interval_of(executor: object) -> float:
    """The least seconds between two progress writes of a task that runs on ``executor``.

    :data:`PROGRESS_INTERVAL`, unless the executor has a ``progress_interval``
    attribute that is a number of seconds, at least 0: an executor that runs
    each call inline sets 0, so every report is written at once, whatever the
    speed of the machine, and its runs record the same history each time.

    >>> class Inline:
    ...     progress_interval = 0
    >>> progress_interval_of(Inline()), progress_interval_of(object()) == PROGRESS_INTERVAL
    (0.0, True)
    """
    value = getattr(executor, "progress_interval", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return PROGRESS_INTERVAL


def error_type(kind: type[BaseException]) -> str:
    """The name an error's class is recorded by: builtins bare, others with their module.

    Private modules of jobledger are shown by the public package that exports them.

    >>> from jobledger.runner import TaskBlocked
    >>> error_type(ValueError), error_type(TaskBlocked)
    ('ValueError', 'jobledger.runner.TaskBlocked')
    """
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    if module.startswith("jobledger.") and "._" in module:
        module = module.split("._", 1)[0]
    return f"{module}.{kind.__qualname__}"


def recordable(text: str) -> str:
    r"""``text`` as the ledger can keep it: lone surrogates and NUL written as escapes.

    The ledger refuses strings with either, and a task's error text may hold
    them (a file name decoded with ``surrogateescape``, a row of binary data).

    >>> recordable("a\x00b"), recordable("\udcff.csv")
    ('a\\x00b', '\\udcff.csv')
    """
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


def error_of(error: BaseException) -> TaskError:
    """An exception as it is recorded: its class, message and last frames, all recordable."""
    lines = traceback.format_exception(error, limit=-TRACEBACK_FRAMES)
    text = recordable("".join(lines))[-TRACEBACK_CHARS:]
    return TaskError(recordable(error_type(type(error))), recordable(str(error)), text)


#: What a task that returns anything but a TaskResult comes to (values are immutable).
_PRODUCED = TaskResult()


def execute(call: TaskCall) -> TaskReport:
    """Run one launch of a task and report how it went; never raises for the task.

    ``KeyboardInterrupt`` and ``SystemExit`` are not the task's to catch and
    propagate; the runner records them as the task's error.
    """
    context = TaskContext(
        call.run_id,
        call.task,
        input=call.input,
        force=call.force,
        repair=call.repair,
        attempt=call.attempt,
        launch_id=call.launch_id,
        parent_summaries=call.parent_summaries,
        channel=call.channel,
        progress_interval=call.progress_interval,
    )
    started_at = call.clock()
    if call.task.timeout is not None:
        call.channel.started(started_at)
    began = time.perf_counter()
    result: TaskResult | None = None
    error: TaskError | None = None
    blockage: Blockage | None = None
    canceled = False
    try:
        value = call.function(context)
        result = value if isinstance(value, TaskResult) else _PRODUCED
    except TaskBlocked as blocked:
        try:
            details = freeze(blocked.details, field="details")
        except InvalidJobDataError as invalid:
            error = error_of(invalid)
        else:
            blockage = Blockage(recordable(blocked.reason), details)
            error = error_of(blocked)
    except TaskCanceled as stop:
        canceled = True
        error = error_of(stop)
    except Exception as err:  # noqa: BLE001  (every error of a task is its outcome)
        error = error_of(err)
    duration = time.perf_counter() - began
    return TaskReport(
        task=call.task.identifier,
        attempt=call.attempt,
        started_at=started_at,
        ended_at=call.clock(),
        duration=duration,
        result=result,
        error=error,
        blockage=blockage,
        canceled=canceled,
        progress=context.progress or None,
        unwritten=context.unwritten,
    )
