"""Properties of the runner over random definitions and random task outcomes.

Each example draws a definition (random launch orders and parent links,
guarded and warning-mode tasks) and what every task does when it runs:
succeed, succeed without output, raise, block, or request a cancel of its
own run. The run is invoked (and resumed, when it blocks) on an in-memory
ledger, while every task logs when it starts and ends. The invariants are
checked against that log, the ledger's history, and a small reference model
of the Invoke-Job rules.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import TYPE_CHECKING

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from jobledger import Jobs, thaw
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunResult,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    request_cancel,
)

if TYPE_CHECKING:
    from collections.abc import Callable

BEHAVIOURS = ("succeed", "no_output", "raise", "block", "cancel")
#: Behaviours that stop the run from launching more steps (in a task not in warning mode).
DONE = {"completed", "warning", "failed", "skipped"}


@attrs.frozen
class Plan:
    """One task of a drawn definition and what it does on its first and later launches."""

    name: str
    launch_order: int
    parents: tuple[str, ...]
    guarded: bool
    warning_mode: bool
    first: str
    retry: str


@attrs.frozen
class Scenario:
    """A drawn definition, its tasks' behaviours, and whether a resume repairs."""

    plans: tuple[Plan, ...]
    repair: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Draw a valid definition with behaviours for its tasks."""
    count = draw(st.integers(min_value=1, max_value=6))
    orders = [draw(st.integers(min_value=1, max_value=4)) for _ in range(count)]
    plans = []
    for index, order in enumerate(orders):
        earlier = [f"t{other}" for other in range(count) if orders[other] < order]
        parents = tuple(name for name in earlier if draw(st.booleans()))
        plans.append(
            Plan(
                name=f"t{index}",
                launch_order=order,
                parents=parents,
                guarded=draw(st.booleans()),
                warning_mode=draw(st.booleans()),
                first=draw(st.sampled_from(BEHAVIOURS)),
                retry=draw(st.sampled_from(BEHAVIOURS[:4])),
            )
        )
    return Scenario(tuple(plans), draw(st.booleans()))


class Observations:
    """What the tasks saw: numbered start and end events, per drive."""

    def __init__(self) -> None:
        """Start with an empty log, in drive 1."""
        self.lock = threading.Lock()
        self.sequence = itertools.count()
        self.events: list[tuple[int, int, str, str, int]] = []  # (seq, drive, kind, task, attempt)
        self.drive = 1

    def note(self, kind: str, context: TaskContext) -> None:
        """Log ``kind`` ("start" or "end") for the task of ``context``."""
        with self.lock:
            self.events.append(
                (next(self.sequence), self.drive, kind, context.task.identifier, context.attempt)
            )

    def of_drive(self, drive: int, kind: str) -> list[tuple[int, str, int]]:
        """The (seq, task, attempt) of the ``kind`` events of ``drive``."""
        return [
            (seq, task, attempt)
            for seq, d, k, task, attempt in self.events
            if (d, k) == (drive, kind)
        ]


def behaviour_of(plan: Plan, attempt: int) -> str:
    """What ``plan``'s task does on launch ``attempt``."""
    return plan.first if attempt == 1 else plan.retry


def task_function(plan: Plan, log: Observations, jobs: Jobs) -> Callable[[TaskContext], object]:
    """The function that acts out ``plan``, logging its start and end."""

    def act(context: TaskContext) -> object:
        log.note("start", context)
        behaviour = behaviour_of(plan, context.attempt)
        try:
            if behaviour == "no_output":
                return TaskResult(output=False)
            if behaviour == "raise":
                message = f"{plan.name} failed"
                raise ValueError(message)
            if behaviour == "block":
                message = f"{plan.name} blocked"
                raise TaskBlocked(message)
            if behaviour == "cancel":
                request_cancel(jobs, context.run_id)
            return None
        finally:
            log.note("end", context)

    return act


def definition_of(scenario: Scenario, log: Observations, jobs: Jobs) -> JobDefinition:
    """Build the job definition that acts out ``scenario``."""
    tasks = []
    for plan in scenario.plans:
        function = task_function(plan, log, jobs)
        tasks.append(
            Task(
                plan.name,
                function,
                launch_order=plan.launch_order,
                parents=plan.parents,
                guarded=plan.guarded,
                warning_mode=plan.warning_mode,
                repair=function if plan.guarded else None,
            )
        )
    return JobDefinition("Drawn", tasks)


@attrs.define
class Model:
    """The reference model of one run: statuses, outputs and attempts per task."""

    plans: tuple[Plan, ...]
    status: dict[str, str] = attrs.Factory(dict)
    output: dict[str, bool] = attrs.Factory(dict)
    attempts: Counter[str] = attrs.Factory(Counter)

    def drive(self) -> tuple[str, set[str]]:
        """Run the steps not done; return the run's status and the tasks launched."""
        launched: set[str] = set()
        cancel = halted = False
        for order in sorted({plan.launch_order for plan in self.plans}):
            todo = [
                plan
                for plan in self.plans
                if plan.launch_order == order and self.status.get(plan.name, "pending") not in DONE
            ]
            if not todo:
                continue
            if cancel or halted:
                break
            for plan in todo:
                if plan.parents and (
                    any(self.status.get(p) != "completed" for p in plan.parents)
                    or not any(self.output.get(p) for p in plan.parents)
                ):
                    self.status[plan.name] = "skipped"
                    continue
                launched.add(plan.name)
                self.attempts[plan.name] += 1
                behaviour = behaviour_of(plan, self.attempts[plan.name])
                self.status[plan.name], self.output[plan.name] = self._outcome(plan, behaviour)
                cancel = cancel or behaviour == "cancel"
                halted = halted or self.status[plan.name] in {"failed", "blocked"}
        statuses = set(self.status.values())
        if cancel:
            return "canceled", launched
        if "failed" in statuses:
            return "failed", launched
        if "blocked" in statuses:
            return "blocked", launched
        return "completed", launched

    @staticmethod
    def _outcome(plan: Plan, behaviour: str) -> tuple[str, bool]:
        if behaviour == "raise":
            return ("warning" if plan.warning_mode else "failed"), False
        if behaviour == "block":
            return (
                "blocked" if plan.guarded else ("warning" if plan.warning_mode else "failed")
            ), False
        return "completed", behaviour != "no_output"

    def statuses(self) -> dict[str, str]:
        """Every task's status, pending for those never reached."""
        return {plan.name: self.status.get(plan.name, "pending") for plan in self.plans}


def stops(plan: Plan, behaviour: str) -> bool:
    """Whether acting out ``behaviour`` stops the run from launching more steps."""
    if behaviour == "cancel" or (behaviour == "block" and plan.guarded):
        return True
    return behaviour in {"raise", "block"} and not plan.warning_mode


def check_drive(scenario: Scenario, log: Observations, drive: int) -> None:
    """The log invariants of one drive."""
    orders = {plan.name: plan.launch_order for plan in scenario.plans}
    plans = {plan.name: plan for plan in scenario.plans}
    starts = log.of_drive(drive, "start")
    ends = {(task, attempt): seq for seq, task, attempt in log.of_drive(drive, "end")}
    # Every task runs at most once per drive.
    assert all(1 == count for count in Counter(task for _, task, _ in starts).values())
    # No task starts before every task of earlier steps has finished.
    for seq, task, _ in starts:
        for _, other, attempt in starts:
            if orders[other] < orders[task]:
                assert ends[other, attempt] < seq, (other, task)
    # Nothing starts after an error, a block or a cancel.
    stoppers = [
        orders[task]
        for _, task, attempt in starts
        if stops(plans[task], behaviour_of(plans[task], attempt))
    ]
    if stoppers:
        assert all(orders[task] <= min(stoppers) for _, task, _ in starts)


def check_history(jobs: Jobs, result: RunResult, log: Observations) -> None:
    """The ledger's history records the launches and ends the tasks observed."""
    launched: dict[int, set[str]] = {}
    ended: list[str] = []
    drive = 0
    for update in jobs.updates(result.run_id):
        patch = thaw(update.state_update) or {}
        if "drive" in patch:
            drive += 1
            launched[drive] = set()
        for group in patch.get("launch_groups", {}).values():
            launched[drive] |= set(group["tasks"])
        for name, entry in patch.get("tasks", {}).items():
            if entry.get("status") in {"completed", "warning", "failed", "blocked", "canceled"}:
                ended.append(name)
    observed = {d: {task for _, task, _ in log.of_drive(d, "start")} for d in range(1, drive + 1)}
    assert observed == launched
    assert sorted(task for d in observed for _, task, _ in log.of_drive(d, "end")) == sorted(ended)


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_runs_follow_the_invoke_job_rules(scenario: Scenario) -> None:
    """Random definitions and outcomes keep every ordering, stopping and resuming invariant."""
    jobs = Jobs()
    log = Observations()
    runner = Runner(jobs, [definition_of(scenario, log, jobs)])
    model = Model(scenario.plans)

    expected_status, expected_launched = model.drive()
    result = runner.invoke("Drawn")

    check_drive(scenario, log, 1)
    assert expected_status == result.status.value
    assert model.statuses() == result.statuses()
    assert expected_launched == {task for _, task, _ in log.of_drive(1, "start")}

    if result.status.value == "blocked":
        not_done = {name for name, status in result.statuses().items() if status not in DONE}
        blocked = {name for name, status in result.statuses().items() if status == "blocked"}
        log.drive = 2
        expected_status, expected_launched = model.drive()
        result = runner.resume(result.run_id, repair=scenario.repair)

        resumed = {task for _, task, _ in log.of_drive(2, "start")}
        check_drive(scenario, log, 2)
        assert expected_status == result.status.value
        assert model.statuses() == result.statuses()
        # The resume runs the blocked tasks, then only tasks that were not done.
        assert blocked <= resumed <= not_done
        assert expected_launched == resumed
        repaired = {name for name, outcome in result.outcomes.items() if outcome.repair}
        assert (blocked if scenario.repair else set()) == repaired

    check_history(jobs, result, log)
    assert dict(model.attempts) == {
        name: outcome.attempts for name, outcome in result.outcomes.items() if outcome.attempts
    }
    assert all(TaskStatus.RUNNING is not outcome.status for outcome in result.outcomes.values())
