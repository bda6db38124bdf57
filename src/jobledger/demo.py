"""The bundled example job, ``hr-nightly``: what an identity-management system runs every night.

``jobledger demo`` runs it; ``--app jobledger.demo:definitions`` (the command
line's default) makes it available to every command. Its steps:

1. **Export** the employees from the HR system (``export-hr``) and the
   accounts from the directory (``export-directory``, in warning mode: if the
   directory cannot be read, the run goes on with a warning), side by side on
   the agent.
2. **Synchronize** both exports into the identity repository
   (``synchronize``). It is guarded: when the changes it would make cross the
   force threshold (:data:`FORCE_THRESHOLD` unless ``-f`` gives another), it
   blocks the run instead. Its repair variant, the synchronization validation
   (:func:`validate_synchronization`), checks the pending changes and applies them.
3. **Provision** the changes to the directory (``provision-directory``).

The data is made up and the same on every run: 250 employees, of whom 21 are
new (no account yet) and 38 moved to another department, and 7 accounts of
people who left: 66 changes, over the threshold of 50, so the run blocks at
step 2. Each task takes a fraction of a second (:data:`PACE`; a run's input
``{"pace": seconds}`` changes it) and stops early on a cancel request.

>>> from jobledger import Jobs
>>> from jobledger.runner import Runner
>>> runner = Runner(Jobs(), definitions())
>>> run = runner.invoke("hr-nightly", input={"pace": 0})
>>> run.status.value, run.breakpoint
('blocked', Breakpoint(step=2, tasks=('synchronize',)))
>>> run.outcomes["synchronize"].blocked.reason
'66 changes cross the force threshold of 50'
>>> runner.resume(run.run_id, repair=True).statuses()  # doctest: +NORMALIZE_WHITESPACE
{'export-hr': 'completed', 'export-directory': 'completed', 'synchronize': 'completed',
 'provision-directory': 'completed'}
"""

from __future__ import annotations

from jobledger import JsonObject
from jobledger.runner import (
    AGENT,
    DefinitionBuilder,
    JobDefinition,
    TaskBlocked,
    TaskContext,
    TaskResult,
)

__all__ = [
    "DEMO_JOB",
    "FORCE_THRESHOLD",
    "PACE",
    "definitions",
    "hr_nightly",
    "pending_changes",
]

#: The identifier of the demo's job definition.
DEMO_JOB = "hr-nightly"
#: The synchronization blocks when it would make more changes than this (``-f`` changes it).
FORCE_THRESHOLD = 50
#: Seconds each task takes, unless the run's input says ``{"pace": seconds}``.
PACE = 0.3

_DEPARTMENTS = ("Finance", "Sales", "Engineering", "Support", "Legal", "Operations", "People")
_EMPLOYEES = 250
# Employees from this number on joined since the last run: they have no account yet.
_FIRST_NEWCOMER = 230
# Every so many employees moved department since the last run.
_MOVE_EVERY = 6
_LEAVERS = 7
# Progress is reported this many times per task.
_ROUNDS = 5


def _department(number: int) -> str:
    return _DEPARTMENTS[number % len(_DEPARTMENTS)]


def _employees() -> dict[str, str]:
    """The HR system's employees: id to department."""
    return {f"E{n:04d}": _department(n) for n in range(1, _EMPLOYEES + 1)}


def _accounts() -> dict[str, str]:
    """The directory's accounts: employee id to the department the directory still has."""
    accounts = {
        f"E{n:04d}": _department(n + 1 if n % _MOVE_EVERY == 0 else n)
        for n in range(1, _FIRST_NEWCOMER)
    }
    accounts.update({f"E{900 + n:04d}": _department(n) for n in range(1, _LEAVERS + 1)})
    return accounts


def pending_changes() -> dict[str, list[str]]:
    """The changes the synchronization finds: employee ids to create, update and delete.

    >>> {kind: len(ids) for kind, ids in pending_changes().items()}
    {'create': 21, 'update': 38, 'delete': 7}
    """
    employees, accounts = _employees(), _accounts()
    return {
        "create": sorted(employees.keys() - accounts.keys()),
        "update": sorted(
            k for k in employees.keys() & accounts.keys() if employees[k] != accounts[k]
        ),
        "delete": sorted(accounts.keys() - employees.keys()),
    }


def _pace(context: TaskContext) -> float:
    given = context.input.get("pace") if isinstance(context.input, JsonObject) else None
    if isinstance(given, (int, float)) and not isinstance(given, bool) and given >= 0:
        return float(given)
    return PACE


def _work(context: TaskContext, total: int) -> None:
    """Spend the task's pace in rounds, reporting progress; stop early on a cancel request."""
    pause = _pace(context) / _ROUNDS
    for round_number in range(1, _ROUNDS + 1):
        if pause:
            context.wait_for_cancel(pause)
        context.raise_if_cancel_requested()
        context.report_progress(done=total * round_number // _ROUNDS, total=total)


def export_hr(context: TaskContext) -> TaskResult:
    """Export the employees from the HR system."""
    employees = _employees()
    _work(context, len(employees))
    return TaskResult(summary=f"{len(employees)} employees exported from the HR system")


def export_directory(context: TaskContext) -> TaskResult:
    """Export the accounts from the directory."""
    accounts = _accounts()
    _work(context, len(accounts))
    return TaskResult(summary=f"{len(accounts)} accounts exported from Active Directory")


def _counts(changes: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(ids)} to {kind}" for kind, ids in changes.items())


def synchronize(context: TaskContext) -> TaskResult:
    """Synchronize both exports into the identity repository; block over the threshold."""
    changes = pending_changes()
    count = sum(len(ids) for ids in changes.values())
    threshold = FORCE_THRESHOLD if context.force is None else context.force
    _work(context, count)
    if count > threshold:
        raise TaskBlocked(
            f"{count} changes cross the force threshold of {threshold}",
            details={
                "changes": count,
                "threshold": threshold,
                **{kind: len(ids) for kind, ids in changes.items()},
                "accounts to delete": changes["delete"],
            },
        )
    return TaskResult(summary=f"{count} changes synchronized ({_counts(changes)})")


def validate_synchronization(context: TaskContext) -> TaskResult:
    """The synchronization validation: check the pending changes, then apply them."""
    changes = pending_changes()
    count = sum(len(ids) for ids in changes.values())
    _work(context, count)
    return TaskResult(summary=f"{count} changes validated and synchronized ({_counts(changes)})")


def provision_directory(context: TaskContext) -> TaskResult:
    """Provision the synchronized changes to the directory."""
    changes = pending_changes()
    _work(context, sum(len(ids) for ids in changes.values()))
    return TaskResult(
        summary=(
            f"{len(changes['create'])} accounts created, {len(changes['update'])} moved, "
            f"{len(changes['delete'])} disabled in Active Directory"
        )
    )


def hr_nightly() -> JobDefinition:
    """The ``hr-nightly`` job definition."""
    builder = DefinitionBuilder(DEMO_JOB, display_name="Nightly HR synchronization")
    builder.task(identifier="export-hr", type="export", side=AGENT)(export_hr)
    builder.task(identifier="export-directory", type="export", side=AGENT, warning_mode=True)(
        export_directory
    )
    builder.task(
        identifier="synchronize",
        type="synchronize",
        launch_order=2,
        parents=("export-hr", "export-directory"),
        guarded=True,
    )(synchronize)
    builder.repair("synchronize")(validate_synchronization)
    builder.task(
        identifier="provision-directory",
        type="provision",
        launch_order=3,
        parents="synchronize",
    )(provision_directory)
    return builder.build()


def definitions() -> tuple[JobDefinition, ...]:
    """The demo's job definitions (``--app jobledger.demo:definitions``)."""
    return (hr_nightly(),)
