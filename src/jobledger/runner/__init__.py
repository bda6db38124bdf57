"""The job runner: Usercube Invoke-Job semantics, every run recorded in the ledger.

Write a :class:`JobDefinition` (tasks grouped into steps by launch order,
with parents, sides, warning mode, guards, repair variants and timeouts),
give it to a :class:`Runner` with a :class:`~jobledger.Jobs` ledger, and
:meth:`Runner.invoke` it. Any process that shares the ledger can watch the
run (:meth:`Runner.result`), cancel it (:func:`request_cancel`) or resume it
(:meth:`Runner.resume`).

**A run in the ledger.** A run is a job: service ``"jobledger.runner"``,
entity ``"job"``, type the definition's identifier. Its status is the
:class:`RunStatus`: ``running`` and ``blocked`` (custom statuses of an active
job), ``completed`` (warnings, if any, listed in the state), ``failed`` or
``canceled``. A drive ends its run with the first of these that applies:
``canceled`` if a cancel was requested, then ``failed`` if a task failed (or
the ledger refused to record the run: see below), then ``blocked`` if a guarded
task blocked, else ``completed``; the tasks that failed are listed in
``failed_tasks`` whatever the end (unless the ledger refused even that: below).

**When the run outgrows the ledger's limits.** The state is bounded by the
ledger's :class:`~jobledger.Limits` (``max_bytes``). When the ledger refuses a
write the run cannot go on without (a step's launch, a task's end even in its
shorter error form, a heartbeat, the end's own record), the drive launches no
more tasks, lets the running ones finish (its heartbeats, from then on, are
changes with no state), and ends the run ``failed`` (``canceled`` if a cancel
was requested), with the reason in ``failure`` (:attr:`RunResult.failure`) when
that still fits and in an error on the ``jobledger.runner`` logger in any case.
A task whose end could not be recorded keeps the status the ledger last
recorded for it (``running``). A refused progress report is only left out. A
new run that the ledger has no room to claim ends at once. A resume whose claim
is refused raises :class:`~jobledger.InvalidJobDataError` and leaves the run as
it was, to be resumed by a runner whose ledger has larger limits.

Its ``input`` never changes::

    {"definition": "HRSync", "selection": {"begin_step": 2}, "force": 100,
     "input": <the run's input>}

Its ``state``::

    {
      "definition": "HRSync",
      "tasks": {                                # one entry per task of the run
        "<task>": {
          "status": "completed",                # a TaskStatus
          "type": "export", "launch_order": 1, "side": "agent", "index": 0,
          "attempts": 1,                        # launches in this run
          "launch_group": 1, "launched_at": "<ISO time>", "repair": false,
          "started_at": "<ISO time>", "ended_at": "<ISO time>", "duration": 0.25,
          "output": true, "summary": <JSON>,     # completed
          "error": {"type": "ValueError", "message": "...", "traceback": "..."},
          "blocked": {"reason": "...", "details": <JSON>},
          "skip_reason": "parents did not complete: 'export' is failed",
          "progress": {...}                     # what the task reported
        }
      },
      "launch_groups": {"1": {"step": 1, "tasks": ["export"],
                              "launched_at": "<ISO time>", "drive": 1}},
      "warnings": [{"task": "export", "type": "ValueError", "message": "..."}],
      "drive": {"id": "...", "number": 1, "kind": "invoke", "repair": false,
                "claimed_at": "<ISO time>"},   # the runner that holds the run
      "heartbeat_at": "<ISO time>",
      "force": 100,                             # when given
      "breakpoint": {"step": 2, "tasks": ["synchronize"], "at": "<ISO time>"},
      "cancel_requested": true,                 # once requested
      "interrupted": {"drive": 1, "at": "<ISO time>", "by": "..."},
                                                # its driver was stopped at once (the
                                                # CLI's second Ctrl-C): resumable now
      "failed_tasks": ["provision"],            # when tasks failed (canceled runs too)
      "failure": "the ledger refused to record the run: ..."
                                                # why it failed when no task's error says
                                                # it (its state outgrew the ledger's limits)
    }

Every change is a merge patch with the run's ETag, so ``jobs.updates(run_id)``
is the run's history: the claim of each drive, each launch group (one update
per step), the tasks' ends (each written as soon as the runner takes it in;
ends taken in together share one update), progress and heartbeats, and the end.
"""

from __future__ import annotations

from jobledger.runner._context import TASK_LOGGER, TaskContext
from jobledger.runner._definition import (
    AGENT,
    SERVER,
    DefinitionBuilder,
    JobDefinition,
    Task,
    TaskFunction,
)
from jobledger.runner._driver import runs_in_process
from jobledger.runner._errors import (
    DefinitionBusyError,
    DefinitionError,
    RunActiveError,
    RunnerError,
    RunNotFoundError,
    RunNotResumableError,
    RunTakenOverError,
    SelectionError,
    TaskBlocked,
    TaskCanceled,
    TaskTimeoutError,
    UnknownDefinitionError,
)
from jobledger.runner._ledger import (
    RUN_ENTITY,
    RUN_SERVICE,
    TASK_ENTITY,
    load_launches,
    load_run,
    request_cancel,
)
from jobledger.runner._model import (
    Drive,
    Launch,
    LaunchInput,
    LaunchState,
    Lease,
    Release,
    RunRequest,
    RunState,
)
from jobledger.runner._outcome import (
    Blockage,
    Breakpoint,
    LaunchGroup,
    RunResult,
    RunWarning,
    TaskError,
    TaskOutcome,
    TaskResult,
)
from jobledger.runner._planner import RUN_ENDS
from jobledger.runner._runner import DEFINITION_ENTITY, Runner
from jobledger.runner._selection import Selection
from jobledger.runner._states import (
    RUN_TRANSITIONS,
    RunStatus,
    RunTrigger,
    TaskStatus,
    run_state_mermaid,
)
from jobledger.runner._steps import Step, steps

__all__ = [
    "AGENT",
    "DEFINITION_ENTITY",
    "RUN_ENDS",
    "RUN_ENTITY",
    "RUN_SERVICE",
    "RUN_TRANSITIONS",
    "SERVER",
    "TASK_ENTITY",
    "TASK_LOGGER",
    "Blockage",
    "Breakpoint",
    "DefinitionBuilder",
    "DefinitionBusyError",
    "DefinitionError",
    "Drive",
    "JobDefinition",
    "Launch",
    "LaunchGroup",
    "LaunchInput",
    "LaunchState",
    "Lease",
    "Release",
    "RunActiveError",
    "RunNotFoundError",
    "RunNotResumableError",
    "RunRequest",
    "RunResult",
    "RunState",
    "RunStatus",
    "RunTakenOverError",
    "RunTrigger",
    "RunWarning",
    "Runner",
    "RunnerError",
    "Selection",
    "SelectionError",
    "Step",
    "Task",
    "TaskBlocked",
    "TaskCanceled",
    "TaskContext",
    "TaskError",
    "TaskFunction",
    "TaskOutcome",
    "TaskResult",
    "TaskStatus",
    "TaskTimeoutError",
    "UnknownDefinitionError",
    "load_launches",
    "load_run",
    "request_cancel",
    "run_state_mermaid",
    "runs_in_process",
    "steps",
]
