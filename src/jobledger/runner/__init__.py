"""The job runner: Usercube Invoke-Job semantics, every run recorded in the ledger.

Write a :class:`JobDefinition` (tasks grouped into steps by launch order,
with parents, sides, warning mode, guards, repair variants and timeouts),
give it to a :class:`Runner` with a :class:`~jobledger.Jobs` ledger, and
:meth:`Runner.invoke` it. Any process that shares the ledger can watch the
run (:func:`load_run`), cancel it (:func:`request_cancel`) or resume it
(:meth:`Runner.resume`).

The runner has three parts, like the ledger's layers:

* **the run model** (:class:`RunRequest`, :class:`RunState`, :class:`Lease`,
  :class:`Drive`, :class:`Launch`, :class:`LaunchInput`, :class:`LaunchState`):
  frozen values, and one codec that turns them into the jobs' JSON;
* **the planner**: pure functions that decide what to launch next, why a task
  is skipped, and how the run ends (:data:`RUN_ENDS`, along
  :data:`RUN_TRANSITIONS`), and who may claim a run;
* **the driver**: hands launches to executors, keeps its :class:`Lease`
  alive, and writes the ledger through :class:`~jobledger.Jobs` (or anything
  with its methods).

**A run in the ledger.** A run is a job (service :data:`RUN_SERVICE`, entity
:data:`RUN_ENTITY`, type the definition's identifier) whose ``input`` is its
:class:`RunRequest` and whose ``state`` is its :class:`RunState`, of a size
that does not grow with the run. Each launch of a task (and each skip) is a
job of its own, ``<run id>/<n>`` (entity :data:`TASK_ENTITY`), holding a
:class:`LaunchInput` and a :class:`LaunchState`; :func:`load_launches` reads
them in launch order. The run's status is the :class:`RunStatus`:
``running`` and ``blocked`` (custom statuses of an active job),
``completed`` (warnings, if any, on the launches), ``failed`` or ``canceled``.
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
    run_result,
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
    "run_result",
    "run_state_mermaid",
    "runs_in_process",
    "steps",
]
