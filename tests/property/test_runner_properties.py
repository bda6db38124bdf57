"""Properties of the runner over random definitions and random task outcomes.

Each example draws a definition with the testing kit's ``job_definitions``
strategy (random launch orders and parent links, guarded and warning-mode
tasks, repair variants), whose tasks run a ``ScriptedTasks``: each launch
succeeds, succeeds without output, raises, blocks or requests a cancel of its
own run, as drawn. The run is invoked (and resumed, when it blocks, with or
without repair) on an in-memory ledger, its tasks on thread pools or inline in
the test's thread (drawn too). The invariants are checked against the launches
the script recorded, the ledger's history, and a small reference model of the
Invoke-Job rules.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobledger import InvalidJobDataError, Jobs, Limits, thaw
from jobledger._core.jsondoc import encoded_size
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunNotResumableError,
    RunResult,
    RunStatus,
    Task,
    TaskStatus,
    steps,
)
from jobledger.testing import strategies as jst
from jobledger.testing.runs import (
    OutcomeKind,
    ScriptedLaunch,
    ScriptedTasks,
    inline_runner,
    launch_history,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Task statuses a resume does not run again.
DONE = {"completed", "warning", "failed", "skipped"}


@attrs.define
class Model:
    """The reference model of one run: statuses, outputs and attempts per task."""

    definition: JobDefinition
    script: ScriptedTasks
    status: dict[str, str] = attrs.Factory(dict)
    output: dict[str, bool] = attrs.Factory(dict)
    attempts: Counter[str] = attrs.Factory(Counter)

    def drive(self, repair: frozenset[str] = frozenset()) -> tuple[str, set[str]]:
        """Run the steps not done; return the run's status and the tasks launched.

        The tasks in ``repair`` run their repair variants.
        """
        launched: set[str] = set()
        cancel = halted = False
        for step in steps(self.definition):
            todo = [
                task
                for task in step.tasks
                if self.status.get(task.identifier, "pending") not in DONE
            ]
            if not todo:
                continue
            if cancel or halted:
                break
            for task in todo:
                name = task.identifier
                if task.parents and (
                    any(self.status.get(p) != "completed" for p in task.parents)
                    or not any(self.output.get(p) for p in task.parents)
                ):
                    self.status[name] = "skipped"
                    continue
                launched.add(name)
                self.attempts[name] += 1
                kind = self.script.outcome(name, self.attempts[name], repair=name in repair).kind
                self.status[name], self.output[name] = outcome_of(task, kind)
                cancel = cancel or kind == "cancel"
                halted = halted or self.status[name] in {"failed", "blocked"}
        statuses = set(self.status.values())
        if cancel:
            return "canceled", launched
        if "failed" in statuses:
            return "failed", launched
        if "blocked" in statuses:
            return "blocked", launched
        return "completed", launched

    def statuses(self) -> dict[str, str]:
        """Every task's status, pending for those never reached."""
        return {
            task.identifier: self.status.get(task.identifier, "pending")
            for task in self.definition.tasks
        }


def outcome_of(task: Task, kind: str) -> tuple[str, bool]:
    """The status and output the Invoke-Job rules give ``task`` acting out ``kind``."""
    raised = "warning" if task.warning_mode else "failed"
    if kind in {"fail", "warn"}:
        return raised, False
    if kind == "block":
        return ("blocked" if task.guarded else raised), False
    return "completed", kind != "no_output"


def stops(task: Task, kind: str) -> bool:
    """Whether acting out ``kind`` stops the run from launching more steps."""
    if kind == "cancel" or (kind == "block" and task.guarded):
        return True
    return kind in {"fail", "warn", "block"} and not task.warning_mode


def check_drive(definition: JobDefinition, launches: Sequence[ScriptedLaunch]) -> None:
    """The invariants of the launches of one drive."""
    tasks = {task.identifier: task for task in definition.tasks}
    orders = {name: task.launch_order for name, task in tasks.items()}
    # Every task runs at most once per drive.
    assert all(1 == count for count in Counter(launch.task for launch in launches).values())
    # No task starts before every task of earlier steps has finished.
    for later in launches:
        for earlier in launches:
            if orders[earlier.task] < orders[later.task]:
                assert earlier.end < later.start, (earlier.task, later.task)
    # Nothing starts after an error, a block or a cancel.
    stoppers = [
        orders[launch.task] for launch in launches if stops(tasks[launch.task], launch.outcome.kind)
    ]
    if stoppers:
        assert all(orders[launch.task] <= min(stoppers) for launch in launches)


def check_history(
    jobs: Jobs, result: RunResult, drives: Sequence[Sequence[ScriptedLaunch]]
) -> None:
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
    observed = {
        number: {launch.task for launch in launches}
        for number, launches in enumerate(drives, start=1)
    }
    assert observed == launched
    assert sorted(launch.task for launches in drives for launch in launches) == sorted(ended)
    assert list(result.launch_groups) == launch_history(jobs, result.run_id)


def check_inline_order(
    jobs: Jobs, result: RunResult, drive: int, launches: Sequence[ScriptedLaunch]
) -> None:
    """Inline, the tasks of a drive run one by one, in the order of its launch groups."""
    groups = [group for group in launch_history(jobs, result.run_id) if group.drive == drive]
    assert [task for group in groups for task in group.tasks] == [
        launch.task for launch in launches
    ]
    assert all(launch.end == launch.start + 1 for launch in launches)


def check_run(data: st.DataObject, kinds: tuple[OutcomeKind, ...] | None) -> None:
    """Draw a definition with outcomes among ``kinds``, run it, resume it if it blocks, check."""
    jobs = Jobs()
    inline = data.draw(st.booleans(), label="inline")
    definition = data.draw(jst.job_definitions(kinds=kinds, ledger=jobs), label="definition")
    repair = data.draw(st.booleans(), label="repair")
    script = ScriptedTasks.of(definition)
    runner = inline_runner(jobs, [definition]) if inline else Runner(jobs, [definition])
    model = Model(definition, script)

    expected_status, expected_launched = model.drive()
    result = runner.invoke(definition.identifier)
    drives = [script.launches]

    check_drive(definition, drives[0])
    assert expected_status == result.status.value
    assert model.statuses() == result.statuses()
    assert expected_launched == {launch.task for launch in drives[0]}

    if result.status is RunStatus.BLOCKED:
        not_done = {name for name, status in result.statuses().items() if status not in DONE}
        blocked = {name for name, status in result.statuses().items() if status == "blocked"}
        if repair and any(definition.task(name).repair is None for name in blocked):
            # A resume with repair needs a repair variant for every blocked task.
            with pytest.raises(RunNotResumableError):
                runner.resume(result.run_id, repair=True)
            assert RunStatus.BLOCKED == runner.result(result.run_id).status
            repair = False
        repaired = frozenset(blocked) if repair else frozenset()
        expected_status, expected_launched = model.drive(repaired)
        result = runner.resume(result.run_id, repair=repair)
        drives.append(script.launches[len(drives[0]) :])

        resumed = {launch.task for launch in drives[1]}
        check_drive(definition, drives[1])
        assert expected_status == result.status.value
        assert model.statuses() == result.statuses()
        # The resume runs the blocked tasks, then only tasks that were not done.
        assert blocked <= resumed <= not_done
        assert expected_launched == resumed
        assert repaired == {name for name, outcome in result.outcomes.items() if outcome.repair}
        assert repaired == {launch.task for launch in drives[1] if launch.repair}

    check_history(jobs, result, drives)
    if inline:
        for drive, launches in enumerate(drives, start=1):
            check_inline_order(jobs, result, drive, launches)
    assert dict(model.attempts) == {
        name: outcome.attempts for name, outcome in result.outcomes.items() if outcome.attempts
    }
    assert all(TaskStatus.RUNNING is not outcome.status for outcome in result.outcomes.values())


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_runs_follow_the_invoke_job_rules(data: st.DataObject) -> None:
    """Random definitions and outcomes keep every ordering, stopping and resuming invariant."""
    check_run(data, kinds=None)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_blocked_runs_resume_by_the_invoke_job_rules(data: st.DataObject) -> None:
    """With outcomes that mostly block, resumes with and without repair keep every invariant."""
    check_run(data, kinds=("succeed", "no_output", "block"))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_no_run_is_left_half_written_whatever_the_ledgers_limits(data: st.DataObject) -> None:
    """Under any ``max_bytes`` a run is refused whole, or ends: never left ``running``.

    The ledger refuses the start (nothing is stored), or the run comes back
    over (or blocked at a breakpoint), as the ledger records it; a run that
    failed with no task failed says why, when that fitted.
    """
    max_bytes = data.draw(st.integers(300, 6_000), label="max_bytes")
    too_large = f"the document is larger than {max_bytes} bytes"
    jobs = Jobs(limits=Limits(max_bytes=max_bytes))
    inline = data.draw(st.booleans(), label="inline")
    definition = data.draw(jst.job_definitions(ledger=jobs), label="definition")
    runner = inline_runner(jobs, [definition]) if inline else Runner(jobs, [definition])

    try:
        result = runner.invoke(definition.identifier)
    except InvalidJobDataError:
        assert [] == list(jobs.find().jobs)
        return

    assert RunStatus.RUNNING is not result.status
    assert result == runner.result(result.run_id)
    if result.status is RunStatus.BLOCKED:
        assert result.breakpoint is not None
    failed = [name for name, status in result.statuses().items() if status == "failed"]
    if result.status is RunStatus.FAILED and not failed:
        # No task failed it: the ledger refused the run, which says so when that fits.
        failure = f"the ledger refused to record the run: invalid state: {too_large}"
        room = len(f',"failure":"{failure}"')
        state = jobs.get(result.run_id).state
        assert result.failure == failure or encoded_size(state) + room > max_bytes
    if result.failure is not None:
        assert result.status in {RunStatus.FAILED, RunStatus.CANCELED}
        assert result.failure.startswith("the ledger refused to record the run: ")
