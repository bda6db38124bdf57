"""What a task sees while it runs (:class:`TaskContext`), and how one launch runs.

:func:`execute` is what the runner submits to an executor: a module-level
function of one picklable :class:`TaskCall`, so it runs the same on a thread
pool, a process pool or any executor that follows
:class:`concurrent.futures.Executor`. It never raises for the task's sake:
whatever the task does comes back as a :class:`TaskReport`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import attrs

from jobledger._core.errors import InvalidJobDataError
from jobledger._core.jsondoc import JsonObject, JsonValue, empty_object, freeze, merge_patch
from jobledger.runner._definition import Task, TaskFunction
from jobledger.runner._errors import TaskBlocked, TaskCanceled
from jobledger.runner._outcome import Blockage, TaskError, TaskResult

__all__ = [
    "TASK_LOGGER",
    "CancelSignal",
    "ProgressReport",
    "ProgressSink",
    "TaskCall",
    "TaskContext",
    "TaskReport",
    "TaskStarted",
    "error_of",
    "error_type",
    "execute",
    "recordable",
]

#: The logger task contexts log to (through an adapter that adds the ids).
TASK_LOGGER = "jobledger.runner.task"

#: How many of the innermost frames a recorded traceback keeps.
TRACEBACK_FRAMES = 8
#: The most characters of traceback text recorded (the end is kept).
TRACEBACK_CHARS = 4000


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


class ProgressSink(Protocol):
    """Where a task's progress reports go: a queue's ``put``."""

    def put(self, item: Any, /) -> None:  # noqa: ANN401  (any queue's signature)
        """Hand over one :class:`ProgressReport`."""
        ...


@attrs.frozen
class ProgressReport:
    """Progress a task reported, on its way to the ledger.

    Attributes:
        task: The task's identifier.
        attempt: The launch it belongs to (late reports of an older launch are dropped).
        values: The merge patch for the task's progress.
    """

    task: str
    attempt: int
    values: JsonObject


@attrs.frozen
class TaskStarted:
    """A launch's function began to run: its timeout counts from here.

    It travels to the runner the way progress does, so a launch that waits in
    an executor's queue is not timed yet. Only launches of tasks with a
    timeout send it.

    Attributes:
        task: The task's identifier.
        attempt: The launch it belongs to.
        started_at: When the function started, by the run's clock.
    """

    task: str
    attempt: int
    started_at: datetime


_EMPTY_PROGRESS = empty_object()


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
        cancel_signal: The flag the runner raises on a cancel request.
        progress_sink: Where progress reports go; ``None`` keeps them here only.

    Attributes:
        run_id: The run's id: the id of its job in the ledger.
        task: The task's definition.
        input: The run's input (read-only JSON).
        force: The force threshold: guarded tasks proceed when it is reached or
            exceeded, instead of blocking.
        repair: Whether this launch runs the repair variant.
        attempt: Which launch of the task this is.
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
        progress_sink: ProgressSink | None = None,
    ) -> None:
        self.run_id = run_id
        self.task = task
        self.input = input
        self.force = force
        self.repair = repair
        self.attempt = attempt
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None
        self.progress: JsonObject = _EMPTY_PROGRESS
        self._cancel: CancelSignal = threading.Event() if cancel_signal is None else cancel_signal
        self._sink = progress_sink

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``run_id``, ``task_id`` and ``attempt`` in ``extra``."""
        # Made on first use: most tasks never log through it, and a launch should cost little.
        if self._logger is None:
            self._logger = logging.LoggerAdapter(
                logging.getLogger(TASK_LOGGER),
                {"run_id": self.run_id, "task_id": self.task.identifier, "attempt": self.attempt},
            )
        return self._logger

    @property
    def cancel_requested(self) -> bool:
        """Whether the runner asks the task to stop (a cancel request, or its timeout)."""
        return self._cancel.is_set()

    def wait_for_cancel(self, timeout: float | None = None) -> bool:
        """Wait until a cancel is requested or ``timeout`` seconds pass; return whether it was.

        A task that works in rounds can use it instead of ``time.sleep`` to
        stop promptly.
        """
        return self._cancel.wait(timeout)

    def raise_if_cancel_requested(self) -> None:
        """Stop the task here if a cancel was requested; it is then recorded ``canceled``.

        Raises:
            TaskCanceled: a cancel was requested.
        """
        if self._cancel.is_set():
            raise TaskCanceled

    def report_progress(self, **values: object) -> None:
        """Record progress in the ledger, in the task's ``progress`` object.

        The values are merged into what was reported before (a key given
        ``None`` is removed). The runner writes them to the run's job soon
        after, with its next write; progress the ledger refuses there (over
        its limits) is left out with a warning, and the run goes on.

        Raises:
            InvalidJobDataError: a value is not JSON.
        """
        patch = freeze(values, field="progress")
        assert isinstance(patch, JsonObject)  # noqa: S101  (keywords make an object)
        merged = merge_patch(self.progress, patch)
        assert isinstance(merged, JsonObject)  # noqa: S101
        self.progress = merged
        if self._sink is not None:
            self._sink.put(ProgressReport(self.task.identifier, self.attempt, patch))


@attrs.frozen
class TaskCall:
    """One launch of a task, as handed to an executor; picklable when its parts are.

    Attributes:
        run_id: The run.
        task: The task.
        function: What to run: the task's function, or its repair variant.
        input: The run's input.
        force: The force threshold.
        repair: Whether ``function`` is the repair variant.
        attempt: Which launch of the task this is.
        cancel_signal: The task's cancellation flag.
        progress_sink: Where progress goes.
        clock: Reads the time for ``started_at`` and ``ended_at``.
    """

    run_id: str
    task: Task
    function: TaskFunction
    input: JsonValue
    force: int | None
    repair: bool
    attempt: int
    cancel_signal: CancelSignal
    progress_sink: ProgressSink
    clock: Callable[[], datetime]


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
    # Only what UTF-8 cannot encode (lone surrogates) is escaped; the rest is kept.
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
        cancel_signal=call.cancel_signal,
        progress_sink=call.progress_sink,
    )
    started_at = call.clock()
    if call.task.timeout is not None:
        # Only a timeout counts from the start: an untimed launch spares the runner a
        # message (and, on a thread pool, a wake-up).
        call.progress_sink.put(TaskStarted(call.task.identifier, call.attempt, started_at))
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
            # Checked again here: the details may have been replaced since __init__.
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
    )
