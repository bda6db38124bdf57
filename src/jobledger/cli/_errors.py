"""The command line's own errors, and one line for a person for every error a command meets.

The command line's branch of the tree, under :class:`~jobledger.JobledgerError`::

    JobledgerError
    └── CommandLineError              carries the exit code
        ├── AppError                  --app names no usable job definitions
        ├── StoreSpecError            --store is not a store address (also ValueError)
        ├── StoreUnreachableError     --store cannot be opened or reached
        ├── UnknownJobError           -j names no job of --app (also LookupError)
        ├── NothingToRepairError      --repair-job finds no blocked run (also LookupError)
        ├── NoRepairVariantError      --repair, but a blocked task has no repair variant
        │                             (also ValueError)
        ├── JobBusyError              invoke, but the job has a running or blocked run
        └── RunDrivenError            resume, but a live runner holds the run's lease
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobledger import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    StorageError,
)
from jobledger.cli._exit import ExitCode
from jobledger.cli._password import masked
from jobledger.cli._render import Hints
from jobledger.runner import (
    DefinitionBusyError,
    DefinitionError,
    RunActiveError,
    RunNotFoundError,
    RunNotResumableError,
    RunTakenOverError,
    SelectionError,
    UnknownDefinitionError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

__all__ = [
    "AppError",
    "CommandLineError",
    "JobBusyError",
    "NoRepairVariantError",
    "NothingToRepairError",
    "RunDrivenError",
    "StoreSpecError",
    "StoreUnreachableError",
    "UnknownJobError",
    "explain",
]


class CommandLineError(JobledgerError):
    """A command cannot go on; its message says what happened and what to do.

    Attributes:
        exit_code: The code the process exits with.
    """

    exit_code: ExitCode = ExitCode.ERROR


class AppError(CommandLineError):
    """``--app`` does not name job definitions that can be loaded.

    Attributes:
        app: The ``--app`` value.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, app: str, problem: str) -> None:
        self.app = app
        super().__init__(
            f"--app {app!r}: {problem}; give --app (or JOBLEDGER_APP) as module:attribute "
            "naming your job definitions"
        )


class StoreSpecError(CommandLineError, ValueError):
    """``--store`` is not a store address this command line knows.

    Attributes:
        store: The ``--store`` value, its password hidden.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, store: str, problem: str) -> None:
        self.store = masked(store)
        super().__init__(
            f"--store {self.store!r}: {masked(problem)}; give a file path, sqlite:///PATH or "
            "postgresql://USER@HOST/DATABASE"
        )


class StoreUnreachableError(CommandLineError):
    """``--store`` names a store that cannot be opened or reached.

    Attributes:
        store: The ``--store`` value, its password hidden.
    """

    exit_code = ExitCode.STORE_UNREACHABLE

    def __init__(self, store: str, problem: str) -> None:
        self.store = masked(store)
        super().__init__(
            f"cannot open the store {self.store!r}: {masked(problem)}; "
            "check --store (or JOBLEDGER_STORE)"
        )


class UnknownJobError(CommandLineError, LookupError):
    """The job definitions of ``--app`` have no job with this identifier.

    Attributes:
        job: The job identifier asked for.
        app: The ``--app`` value.
        known: The identifiers ``--app`` defines.
    """

    exit_code = ExitCode.NOT_FOUND

    def __init__(self, job: str, app: str, known: Iterable[str], *, run_id: str = "") -> None:
        self.job = job
        self.app = app
        self.known = tuple(sorted(known))
        names = ", ".join(self.known) or "nothing"
        lead = f"run {run_id} is a run of job {job!r}, but there is" if run_id else "there is"
        super().__init__(
            f"{lead} no job {job!r} in --app {app!r} (it defines {names}); "
            + ("check -j, or give" if not run_id else "give")
            + " the --app (or JOBLEDGER_APP) that defines it"
        )


class NothingToRepairError(CommandLineError, LookupError):
    """``invoke --repair-job`` found no blocked run of the job.

    Attributes:
        job: The job identifier.
    """

    exit_code = ExitCode.NOT_FOUND

    def __init__(self, job: str) -> None:
        self.job = job
        super().__init__(
            f"no blocked run of job {job!r} to repair; `jobledger list --type {job}` lists its runs"
        )


class NoRepairVariantError(CommandLineError, ValueError):
    """``--repair`` asked for, but a blocked task of the run has no repair variant.

    Attributes:
        run_id: The run.
        tasks: The blocked tasks that have no repair variant.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, run_id: str, tasks: Iterable[str], *, resume: str) -> None:
        self.run_id = run_id
        self.tasks = tuple(tasks)
        names = ", ".join(repr(task) for task in self.tasks)
        super().__init__(
            f"run {run_id} cannot be repaired: its blocked task(s) {names} have no repair "
            f"variant; resume it without repair, with a new force threshold: `{resume}`"
        )


class JobBusyError(CommandLineError):
    """``invoke`` refused: the job already has a running or blocked run.

    Attributes:
        job: The job identifier.
        run_id: The active run.
        status: Its status, ``running`` or ``blocked``.
    """

    exit_code = ExitCode.BUSY

    def __init__(self, job: str, run_id: str, status: str, *, advice: str) -> None:
        self.job = job
        self.run_id = run_id
        self.status = status
        super().__init__(
            f"job {job!r} already has a {status} run, {run_id}, and runs once at a time: "
            f"{advice}; or give --concurrent to start another run alongside"
        )


class RunDrivenError(CommandLineError):
    """``resume`` refused: a live runner holds the run's lease.

    Attributes:
        run_id: The run.
        owner: The drive that holds the lease.
        expires_at: When the lease ends unless its runner renews it.
    """

    exit_code = ExitCode.BUSY

    def __init__(
        self, run_id: str, owner: str, expires_at: datetime, *, until: str, cancel: str
    ) -> None:
        self.run_id = run_id
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(
            f"run {run_id} is driven by another runner: drive {owner} holds its lease until "
            f"{until} and renews it while it lives; resume it after that only if that runner "
            f"is gone, or cancel it: `{cancel}`"
        )


def explain(
    error: BaseException, *, store: str = "", hints: Hints | None = None
) -> tuple[ExitCode, str]:
    """The exit code for ``error`` and one line for a person: what happened, what to do.

    Args:
        error: What stopped the command.
        store: The store the command opened, as :meth:`StoreAddress.describe
            <jobledger.cli._store.StoreAddress.describe>` says it; a job that is
            not found is said to be missing from it.
        hints: Writes the commands the line suggests (with the ``--store`` given).

    >>> explain(JobNotFoundError("42"), store="SQLite /srv/jobs.db")
    (<ExitCode.NOT_FOUND: 7>, "no job with id '42' in the store SQLite /srv/jobs.db; `jobledger list` lists its latest jobs")
    """  # noqa: E501  (a doctest's output is one line)
    if isinstance(error, CommandLineError):
        return error.exit_code, str(error)
    about_a_job = _about_a_job(error, store, hints or Hints())
    if about_a_job is not None:
        return about_a_job
    for kinds, code, advice in _ADVICE:
        if isinstance(error, kinds):
            return code, f"{_first_line(error)}{advice}"
    if isinstance(error, JobledgerError):
        return ExitCode.ERROR, f"{_first_line(error)}; run again with --debug for details"
    message = (
        f"unexpected error: {type(error).__name__}: {_first_line(error)}; "
        "run again with --debug for the traceback"
    )
    return ExitCode.ERROR, message


def _about_a_job(error: BaseException, store: str, hints: Hints) -> tuple[ExitCode, str] | None:
    """The code and line for an error about one job, with the commands that read it."""
    if isinstance(error, (JobNotFoundError, RunNotFoundError)):
        where = f" in the store {store}" if store else ""
        return ExitCode.NOT_FOUND, (
            f"{_first_line(error)}{where}; `{hints.command('list')}` lists its latest jobs"
        )
    job_id = getattr(error, "job_id", None) or getattr(error, "run_id", None)
    show = hints.command("show", job_id) if isinstance(job_id, str) else "jobledger show ID"
    if isinstance(error, ConcurrencyError):
        return ExitCode.CONFLICT, f"{_first_line(error)} (`{show}` reads it)"
    if isinstance(error, (DefinitionBusyError, RunActiveError)):
        return ExitCode.BUSY, f"{_first_line(error)}; `{show}` shows it"
    if isinstance(error, (InvalidTransitionError, RunNotResumableError, RunTakenOverError)):
        return ExitCode.CONFLICT, f"{_first_line(error)}; `{show}` shows where it is"
    return None


def _first_line(error: BaseException) -> str:
    if isinstance(error, DefinitionError):
        return "; ".join([f"job definition {error.identifier!r}", *error.problems])
    text = str(error).strip() or type(error).__name__
    return masked(" ".join(text.split()))


_ADVICE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ExitCode, str], ...] = (
    (StorageError, ExitCode.STORE_UNREACHABLE, "; check --store (or JOBLEDGER_STORE)"),
    (
        UnknownDefinitionError,
        ExitCode.NOT_FOUND,
        "; check -j, or give the --app (or JOBLEDGER_APP) that defines it",
    ),
    ((SelectionError, DefinitionError), ExitCode.USAGE, ""),
    (JobAlreadyExistsError, ExitCode.CONFLICT, ""),
    (InvalidJobDataError, ExitCode.USAGE, ""),
)
