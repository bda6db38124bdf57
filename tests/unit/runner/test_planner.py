"""The planner's pure decisions: the next step, skips, how a run ends, who may claim it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobledger.runner import (
    RUN_ENDS,
    RUN_TRANSITIONS,
    Drive,
    Lease,
    Release,
    RunActiveError,
    RunNotResumableError,
    RunState,
    RunStatus,
    RunTrigger,
    Task,
    TaskContext,
    TaskOutcome,
    TaskStatus,
)
from jobledger.runner._planner import (
    EndFacts,
    StepPlan,
    claim_trigger,
    next_step,
    run_end,
    skip_reason,
)
from jobledger.runner._steps import group_steps

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def done(_context: TaskContext) -> None:
    """Return normally."""


def task(identifier: str, launch_order: int = 1, parents: tuple[str, ...] = ()) -> Task:
    """A task of ``launch_order`` with ``parents``."""
    return Task(identifier, done, launch_order=launch_order, parents=list(parents))


def outcome(identifier: str, status: TaskStatus, *, output: bool | None = None) -> TaskOutcome:
    """The outcome of task ``identifier`` (step 1) in ``status``."""
    return TaskOutcome(identifier, "task", 1, "server", status, output=output)


def plan_of(
    tasks: list[Task], known: dict[str, TaskOutcome], *, stopping: bool = False
) -> StepPlan | None:
    """The next step of a run of ``tasks`` whose tasks came to ``known``."""
    return next_step(group_steps(tasks), known, stopping=stopping)


def outcomes(*items: TaskOutcome) -> dict[str, TaskOutcome]:
    """The outcomes by task."""
    return {item.identifier: item for item in items}


class TestSkipReason:
    """skip_reason: whether a task's parents let it run."""

    def test_a_task_without_parents_in_the_run_runs(self) -> None:
        """No parent, or parents outside the run: nothing holds the task back."""
        assert [None, None] == [
            skip_reason(task("a"), {"a"}, {}),
            skip_reason(task("b", 2, ("a",)), {"b"}, {}),
        ]

    @pytest.mark.parametrize(
        ("status", "reason"),
        [
            (TaskStatus.FAILED, "parents did not complete: 'a' is failed"),
            (TaskStatus.SKIPPED, "parents did not complete: 'a' is skipped"),
            (TaskStatus.BLOCKED, "parents did not complete: 'a' is blocked"),
            (TaskStatus.CANCELED, "parents did not complete: 'a' is canceled"),
            (TaskStatus.RUNNING, "parents did not complete: 'a' is running"),
        ],
    )
    def test_a_parent_that_did_not_complete_skips_the_task(
        self, status: TaskStatus, reason: str
    ) -> None:
        """The reason names each parent that did not complete, with its status."""
        assert reason == skip_reason(
            task("b", 2, ("a",)), {"a", "b"}, outcomes(outcome("a", status))
        )

    def test_a_parent_never_launched_is_pending(self) -> None:
        """A parent of the run with no outcome yet is reported pending."""
        assert "parents did not complete: 'a' is pending" == skip_reason(
            task("b", 2, ("a",)), {"a", "b"}, {}
        )

    def test_parents_that_produced_no_output_skip_the_task(self) -> None:
        """All parents completed, none with output: skipped, saying so."""
        assert "none of its parents produced output" == skip_reason(
            task("c", 2, ("a", "b")),
            {"a", "b", "c"},
            outcomes(
                outcome("a", TaskStatus.COMPLETED, output=False),
                outcome("b", TaskStatus.COMPLETED, output=False),
            ),
        )

    def test_one_parent_with_output_is_enough(self) -> None:
        """All parents completed and one produced output: the task runs."""
        assert (
            skip_reason(
                task("c", 2, ("a", "b")),
                {"a", "b", "c"},
                outcomes(
                    outcome("a", TaskStatus.COMPLETED, output=False),
                    outcome("b", TaskStatus.COMPLETED, output=True),
                ),
            )
            is None
        )

    def test_a_parent_in_warning_counts_as_completed_with_output(self) -> None:
        """The warning-mode decision: a parent whose error was tolerated lets its children run."""
        assert (
            skip_reason(
                task("b", 2, ("a",)), {"a", "b"}, outcomes(outcome("a", TaskStatus.WARNING))
            )
            is None
        )


class TestNextStep:
    """next_step: the first step with work left, and what to launch or skip in it."""

    def test_the_first_step_not_done_is_planned(self) -> None:
        """Done steps are passed over; the plan names the step, its launches and its skips."""
        tasks = [
            task("a"),
            task("b", 2, ("a",)),
            task("c", 2),
            task("d", 2, ("x",)),
            task("x"),
            task("e", 3),
        ]
        plan = plan_of(
            tasks,
            outcomes(
                outcome("a", TaskStatus.COMPLETED, output=False),
                outcome("x", TaskStatus.FAILED),
            ),
        )

        assert plan is not None
        assert (2, ["c"], [("b", "none of its parents produced output")]) == (
            plan.step,
            [item.identifier for item in plan.launch],
            [(item.identifier, reason) for item, reason in plan.skip if item.identifier == "b"],
        )
        assert ["b", "d"] == [item.identifier for item, _ in plan.skip]

    def test_only_the_tasks_of_a_step_not_done_are_planned(self) -> None:
        """A step resumed after a block plans its blocked task, not its completed sibling."""
        plan = plan_of(
            [task("a"), task("b"), task("c", 2)],
            outcomes(
                outcome("a", TaskStatus.COMPLETED, output=True),
                outcome("b", TaskStatus.BLOCKED),
            ),
        )

        assert plan is not None
        assert (1, ["b"], ()) == (
            plan.step,
            [item.identifier for item in plan.launch],
            plan.skip,
        )

    def test_nothing_is_planned_once_every_task_is_done(self) -> None:
        """Completed, warned, failed and skipped tasks are done: no step is left."""
        assert (
            plan_of(
                [task("a"), task("b"), task("c", 2), task("d", 2)],
                outcomes(
                    outcome("a", TaskStatus.COMPLETED, output=True),
                    outcome("b", TaskStatus.WARNING),
                    outcome("c", TaskStatus.FAILED),
                    outcome("d", TaskStatus.SKIPPED),
                ),
            )
            is None
        )

    def test_a_stopping_run_plans_nothing(self) -> None:
        """A cancel, a failure or a block stops the launches though tasks are left."""
        assert plan_of([task("a"), task("b", 2)], {}, stopping=True) is None

    def test_canceled_tasks_run_again(self) -> None:
        """A task canceled (by a cancel or a takeover) is not done: it is planned again."""
        plan = plan_of([task("a")], outcomes(outcome("a", TaskStatus.CANCELED)))

        assert plan is not None
        assert ["a"] == [item.identifier for item in plan.launch]


class TestRunEnd:
    """run_end: the first rule of RUN_ENDS that holds, moved along RUN_TRANSITIONS."""

    def test_the_rules_are_in_their_documented_order(self) -> None:
        """Cancel, then fail, then block, then complete."""
        assert [
            RunTrigger.CANCEL,
            RunTrigger.FAIL,
            RunTrigger.BLOCK,
            RunTrigger.COMPLETE,
        ] == [trigger for _, _, trigger in RUN_ENDS]

    @pytest.mark.parametrize(
        ("cancel_requested", "failed", "blocked", "expected"),
        [
            (True, True, True, (RunTrigger.CANCEL, RunStatus.CANCELED)),
            (True, False, False, (RunTrigger.CANCEL, RunStatus.CANCELED)),
            (True, True, False, (RunTrigger.CANCEL, RunStatus.CANCELED)),
            (True, False, True, (RunTrigger.CANCEL, RunStatus.CANCELED)),
            (False, True, True, (RunTrigger.FAIL, RunStatus.FAILED)),
            (False, True, False, (RunTrigger.FAIL, RunStatus.FAILED)),
            (False, False, True, (RunTrigger.BLOCK, RunStatus.BLOCKED)),
            (False, False, False, (RunTrigger.COMPLETE, RunStatus.COMPLETED)),
        ],
    )
    def test_every_combination_of_facts_ends_as_the_table_says(
        self,
        cancel_requested: bool,  # noqa: FBT001  (a parameter of the table)
        failed: bool,  # noqa: FBT001
        blocked: bool,  # noqa: FBT001
        expected: tuple[RunTrigger, RunStatus],
    ) -> None:
        """Each combination gives the first rule's trigger and the status the table moves to."""
        trigger, status = run_end(EndFacts(cancel_requested, failed, blocked))

        assert expected == (trigger, status)
        assert status == RUN_TRANSITIONS[RunStatus.RUNNING, trigger]


def running_state(lease: Lease | None, released: Release | None = None) -> RunState:
    """The state of a run driven by ``drive-1`` under ``lease``."""
    drive = Drive(1, RunTrigger.INVOKE, "drive-1", repair=False, claimed_at=NOW)
    return RunState(tasks=1, drive=drive, lease=lease, released=released)


class TestClaimTrigger:
    """claim_trigger: how a new drive may claim a run, or why not."""

    def test_a_blocked_run_is_resumed_with_or_without_repair(self) -> None:
        """Blocked runs are resumed; repair is allowed."""
        state = running_state(None)

        assert [RunTrigger.RESUME, RunTrigger.RESUME] == [
            claim_trigger("run-1", RunStatus.BLOCKED, state, NOW, repair=False),
            claim_trigger("run-1", RunStatus.BLOCKED, state, NOW, repair=True),
        ]

    def test_a_live_lease_refuses_the_claim_naming_its_owner_and_expiry(self) -> None:
        """Before the recorded expiry a running run is refused with RunActiveError."""
        expires = NOW + timedelta(seconds=30)
        state = running_state(Lease("drive-1", expires, 30.0))

        with pytest.raises(RunActiveError) as caught:
            claim_trigger("run-1", RunStatus.RUNNING, state, NOW, repair=False)

        assert ("run-1", "running", "drive-1", expires) == (
            caught.value.run_id,
            caught.value.status,
            caught.value.owner,
            caught.value.expires_at,
        )
        assert isinstance(caught.value, RunNotResumableError)

    def test_a_lease_one_microsecond_from_expiry_is_still_live(self) -> None:
        """The lease holds until its expiry, to the microsecond."""
        expires = NOW + timedelta(seconds=30)
        state = running_state(Lease("drive-1", expires, 30.0))

        with pytest.raises(RunActiveError):
            claim_trigger(
                "run-1",
                RunStatus.RUNNING,
                state,
                expires - timedelta(microseconds=1),
                repair=False,
            )

    def test_an_expired_lease_lets_the_run_be_taken_over(self) -> None:
        """At the recorded expiry and after, a running run is taken over."""
        expires = NOW + timedelta(seconds=30)
        state = running_state(Lease("drive-1", expires, 30.0))

        assert [RunTrigger.TAKE_OVER, RunTrigger.TAKE_OVER] == [
            claim_trigger("run-1", RunStatus.RUNNING, state, expires, repair=False),
            claim_trigger(
                "run-1", RunStatus.RUNNING, state, expires + timedelta(days=1), repair=False
            ),
        ]

    def test_a_released_run_is_taken_over_at_once(self) -> None:
        """A run whose drive let go (no lease) is taken over without waiting."""
        state = running_state(None, Release(1, NOW, "interrupted"))

        assert RunTrigger.TAKE_OVER == claim_trigger(
            "run-1", RunStatus.RUNNING, state, NOW, repair=False
        )

    def test_a_running_run_is_not_repaired(self) -> None:
        """Repair is for blocked runs only, even once the lease expired."""
        state = running_state(None)

        with pytest.raises(RunNotResumableError) as caught:
            claim_trigger("run-1", RunStatus.RUNNING, state, NOW, repair=True)

        assert "only a blocked run is repaired" == caught.value.reason

    @pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED])
    def test_a_run_that_is_over_is_not_claimed(self, status: RunStatus) -> None:
        """Completed, failed and canceled runs refuse every claim."""
        with pytest.raises(RunNotResumableError) as caught:
            claim_trigger("run-1", status, running_state(None), NOW, repair=False)

        assert (status.value, "the run is over") == (caught.value.status, caught.value.reason)
