"""The errors the runner raises, and the exceptions tasks raise to steer it.

The runner's branch of the tree, under :class:`~jobledger.JobledgerError`::

    JobledgerError
    └── RunnerError
        ├── DefinitionError           (also ValueError)
        ├── SelectionError            (also ValueError)
        ├── UnknownDefinitionError    (also LookupError)
        ├── RunNotFoundError          (also LookupError)
        ├── RunNotResumableError
        │   └── RunActiveError        a live drive holds the run's lease
        ├── DefinitionBusyError       a run of the definition is running or blocked
        ├── RunTakenOverError
        ├── TaskBlocked               raised by a guarded task to block the run
        ├── TaskCanceled              raised by a task that stops on a cancel request
        └── TaskTimeoutError          (also TimeoutError) recorded for a task that ran too long
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger._core.errors import JobledgerError
from jobledger._core.jsondoc import freeze

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from jobledger._core.jsondoc import JsonValue

__all__ = [
    "DefinitionBusyError",
    "DefinitionError",
    "RunActiveError",
    "RunNotFoundError",
    "RunNotResumableError",
    "RunTakenOverError",
    "RunnerError",
    "SelectionError",
    "TaskBlocked",
    "TaskCanceled",
    "TaskTimeoutError",
    "UnknownDefinitionError",
]


class RunnerError(JobledgerError):
    """The root of every error :mod:`jobledger.runner` raises on purpose."""


class DefinitionError(RunnerError, ValueError):
    """A job definition breaks the rules; every problem found is listed.

    Attributes:
        identifier: The definition's identifier (as given, even when invalid).
        problems: One sentence per problem, in the order they were found.
    """

    def __init__(self, identifier: object, problems: Iterable[str]) -> None:
        self.identifier = identifier
        self.problems = tuple(problems)
        listing = "".join(f"\n  - {problem}" for problem in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"job definition {identifier!r} has {count} {noun}:{listing}")

    def __reduce__(self) -> tuple[type[DefinitionError], tuple[object, tuple[str, ...]]]:
        return (type(self), (self.identifier, self.problems))


class SelectionError(RunnerError, ValueError):
    """A selection of tasks (begin/end step, task, type, contains) selects no valid tasks.

    Attributes:
        definition: The identifier of the definition the selection was for.
        reason: What is wrong with the selection.
    """

    def __init__(self, definition: str, reason: str) -> None:
        self.definition = definition
        self.reason = reason
        super().__init__(f"cannot select tasks of job definition {definition!r}: {reason}")

    def __reduce__(self) -> tuple[type[SelectionError], tuple[str, str]]:
        return (type(self), (self.definition, self.reason))


class UnknownDefinitionError(RunnerError, LookupError):
    """The runner has no job definition with this identifier.

    Attributes:
        identifier: The identifier that was asked for.
        known: The identifiers the runner knows.
    """

    def __init__(self, identifier: str, known: Iterable[str]) -> None:
        self.identifier = identifier
        self.known = tuple(sorted(known))
        names = ", ".join(repr(name) for name in self.known) or "none"
        super().__init__(f"no job definition {identifier!r} in this runner; it knows: {names}")

    def __reduce__(self) -> tuple[type[UnknownDefinitionError], tuple[str, tuple[str, ...]]]:
        return (type(self), (self.identifier, self.known))


class RunNotFoundError(RunnerError, LookupError):
    """No run has this id: no such job, or the job is not a run of this runner.

    Attributes:
        run_id: The id that was looked up.
    """

    def __init__(self, run_id: str, detail: str = "") -> None:
        self.run_id = run_id
        self.detail = detail
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"no run with id {run_id!r}{suffix}")

    def __reduce__(self) -> tuple[type[RunNotFoundError], tuple[str, str]]:
        return (type(self), (self.run_id, self.detail))


class RunNotResumableError(RunnerError):
    """The run cannot be resumed (or taken over) now.

    A run resumes when it is ``blocked``, or when it is ``running`` but the
    lease its driver recorded has expired or was released on purpose.

    Attributes:
        run_id: The run.
        status: The run's status in the ledger.
        reason: Why it cannot be resumed.
    """

    def __init__(self, run_id: str, status: str, reason: str) -> None:
        self.run_id = run_id
        self.status = status
        self.reason = reason
        super().__init__(f"cannot resume run {run_id!r} (status {status!r}): {reason}")

    def __reduce__(self) -> tuple[type[RunNotResumableError], tuple[str, str, str]]:
        return (type(self), (self.run_id, self.status, self.reason))


class RunActiveError(RunNotResumableError):
    """A live drive holds the run: its lease has not expired, so nobody else may claim it.

    Attributes:
        run_id: The run.
        owner: The id of the drive that holds the run's lease.
        expires_at: When that lease ends unless its driver renews it.
    """

    def __init__(self, run_id: str, owner: str, expires_at: datetime) -> None:
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(
            run_id,
            "running",
            f"drive {owner!r} holds it until {expires_at.isoformat()} and renews its lease "
            "while it lives; resume it after that time if its driver is gone",
        )

    def __reduce__(  # type: ignore[override]
        self,
    ) -> tuple[type[RunActiveError], tuple[str, str, datetime]]:
        return (type(self), (self.run_id, self.owner, self.expires_at))


class DefinitionBusyError(RunnerError):
    """A run of this definition is running or blocked: a second one is not started.

    Usercube never runs one job twice at once. Resume the blocked run (with
    repair, if need be), cancel it, or ask for a concurrent run explicitly
    (``Runner.invoke(..., exclusive=False)``).

    Attributes:
        definition: The definition's identifier.
        run_id: The run that is active.
        status: Its status (``running`` or ``blocked``).
    """

    def __init__(self, definition: str, run_id: str, status: str) -> None:
        self.definition = definition
        self.run_id = run_id
        self.status = status
        super().__init__(
            f"job {definition!r} already has a {status} run, {run_id!r}: "
            + (
                "resume it (with repair if need be) or cancel it first"
                if status == "blocked"
                else "wait for it to end or cancel it first"
            )
        )

    def __reduce__(self) -> tuple[type[DefinitionBusyError], tuple[str, str, str]]:
        return (type(self), (self.definition, self.run_id, self.status))


class RunTakenOverError(RunnerError):
    """Another runner took this run over; this runner stopped driving it.

    Raised by the :meth:`~jobledger.runner.Runner.invoke` or
    :meth:`~jobledger.runner.Runner.resume` that lost the run: its writes
    carried an ETag the ledger no longer holds. The other runner records the
    rest of the run.

    Attributes:
        run_id: The run.
        driver: The id of the drive that holds the run now.
    """

    def __init__(self, run_id: str, driver: str) -> None:
        self.run_id = run_id
        self.driver = driver
        super().__init__(
            f"run {run_id!r} was taken over by another runner (drive {driver!r}); "
            "this runner stopped driving it and recorded nothing more"
        )

    def __reduce__(self) -> tuple[type[RunTakenOverError], tuple[str, str]]:
        return (type(self), (self.run_id, self.driver))


class TaskBlocked(RunnerError):  # noqa: N818  (the seed's word: a task "exits blocked")
    """Raised by a guarded task to stop the run at a breakpoint.

    The run ends with status ``blocked``; it resumes with
    :meth:`~jobledger.runner.Runner.resume`, which runs the blocked task again
    (or its repair variant, with ``repair=True``). Raised by a task that is not
    guarded, it is an error like any other.

    Args:
        reason: Why the task blocked, for people.
        details: A JSON value with the facts, e.g. the changes that crossed a
            threshold; it is recorded in the ledger.

    Raises:
        InvalidJobDataError: ``details`` is not a JSON value.

    >>> raise TaskBlocked("too many deletions", details={"deletions": 120, "threshold": 50})
    Traceback (most recent call last):
    ...
    jobledger.runner._errors.TaskBlocked: too many deletions
    """

    def __init__(self, reason: str, details: object = None) -> None:
        self.reason = reason
        self.details: JsonValue = freeze(details, field="details")
        super().__init__(reason)

    def __reduce__(self) -> tuple[type[TaskBlocked], tuple[str, JsonValue]]:
        return (type(self), (self.reason, self.details))


class TaskCanceled(RunnerError):  # noqa: N818  (it reports a state, like TaskBlocked)
    """Raised by a task that stops early because a cancel was requested.

    :meth:`~jobledger.runner.TaskContext.raise_if_cancel_requested` raises it.
    The task is recorded ``canceled``. Raised when no cancel was requested, it
    is an error like any other.
    """

    def __init__(self, message: str = "the task stopped on a cancel request") -> None:
        super().__init__(message)


class TaskTimeoutError(RunnerError, TimeoutError):
    """A task ran longer than its timeout; recorded as the task's error.

    The runner does not raise it: it records it as the error of the task, whose
    result it stops waiting for, and the run fails (a task in warning mode
    records it as a warning instead, and the run goes on).

    Attributes:
        task: The task's identifier.
        timeout: The timeout, in seconds.
    """

    def __init__(self, task: str, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(f"task {task!r} did not finish within its timeout of {timeout:g}s")

    def __reduce__(self) -> tuple[type[TaskTimeoutError], tuple[str, float]]:
        return (type(self), (self.task, self.timeout))
