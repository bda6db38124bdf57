"""The command line's exit codes: one number per way a command can end."""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import TYPE_CHECKING

from jobledger.runner import RunStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jobledger.runner import RunResult

__all__ = ["EXIT_CODE_MEANINGS", "ExitCode", "exit_code_of"]


class ExitCode(enum.IntEnum):
    """How a ``jobledger`` command ended; the process exits with the number.

    Commands that drive a run (``invoke``, ``resume``) exit with the run's
    outcome; the other commands exit ``0`` when they did what was asked. Every
    command may end with one of the error codes.

    >>> int(ExitCode.BLOCKED)
    5
    """

    #: The command did what was asked; a run it drove completed without warnings.
    OK = 0
    #: An unexpected error (a bug, or a failure jobledger does not know): rerun with ``--debug``.
    ERROR = 1
    #: The command line is wrong: an unknown option, a missing value, a bad ``--app``.
    USAGE = 2
    #: The run completed, with warnings from tasks in warning mode.
    WARNINGS = 3
    #: The run failed: a task raised (or timed out).
    FAILED = 4
    #: The run blocked at a breakpoint; ``resume`` (or ``invoke --repair-job``) drives it on.
    BLOCKED = 5
    #: The run was canceled.
    CANCELED = 6
    #: No such job definition, job or run.
    NOT_FOUND = 7
    #: The store cannot be opened or reached.
    STORE_UNREACHABLE = 8
    #: The job changed meanwhile, or its state does not allow the command (read it and retry).
    CONFLICT = 9
    #: Refused: another runner drives the run (its lease is live), or the job already has a
    #: running or blocked run (``invoke --concurrent`` starts one alongside).
    BUSY = 10
    #: Stopped at once (a second Ctrl-C, SIGTERM, or its output closed); the run is left
    #: resumable, with no runner.
    INTERRUPTED = 130


#: One sentence per exit code, for the help and the reference.
EXIT_CODE_MEANINGS: Mapping[ExitCode, str] = MappingProxyType(
    {
        ExitCode.OK: "done; a run that was driven completed without warnings",
        ExitCode.ERROR: "an unexpected error; run again with --debug for the traceback",
        ExitCode.USAGE: "the command line is wrong (an option, a value, --app, a selection)",
        ExitCode.WARNINGS: "the run completed with warnings (tasks in warning mode failed)",
        ExitCode.FAILED: "the run failed",
        ExitCode.BLOCKED: "the run is blocked at a breakpoint and can be resumed",
        ExitCode.CANCELED: "the run was canceled",
        ExitCode.NOT_FOUND: "no such job definition, job or run",
        ExitCode.STORE_UNREACHABLE: "the store cannot be opened or reached",
        ExitCode.CONFLICT: ("the job changed meanwhile, or its state does not allow the command"),
        ExitCode.BUSY: "refused: another runner drives the run, or the job has a run already",
        ExitCode.INTERRUPTED: (
            "stopped at once (a second Ctrl-C, SIGTERM, or the output closed); "
            "the run stays resumable"
        ),
    }
)


def exit_code_of(result: RunResult) -> ExitCode:
    """The exit code that tells how a run ended.

    >>> from jobledger.runner import RunResult, RunStatus, RunWarning
    >>> exit_code_of(RunResult("r", "d", RunStatus.COMPLETED, {}))
    <ExitCode.OK: 0>
    >>> warned = RunResult("r", "d", RunStatus.COMPLETED, {}, warnings=(RunWarning("t", "E", "m"),))
    >>> exit_code_of(warned)
    <ExitCode.WARNINGS: 3>
    """
    if result.status is RunStatus.COMPLETED:
        return ExitCode.WARNINGS if result.warnings else ExitCode.OK
    return {
        RunStatus.FAILED: ExitCode.FAILED,
        RunStatus.BLOCKED: ExitCode.BLOCKED,
        RunStatus.CANCELED: ExitCode.CANCELED,
    }.get(result.status, ExitCode.CONFLICT)
