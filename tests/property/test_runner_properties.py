"""Properties of the runner over random definitions and random task outcomes.

Each example draws a definition with the testing kit's ``job_definitions``
strategy (random launch orders and parent links, guarded and warning-mode
tasks, repair variants), whose tasks run a ``ScriptedTasks``: each launch
succeeds, succeeds without output, raises, blocks or requests a cancel of its
own run, as drawn. The run is invoked (and resumed, when it blocks, with or
without repair) on an in-memory ledger, its tasks on thread pools or inline in
the test's thread (drawn too). The invariants are checked against the launches
the script recorded, the launch jobs in the ledger, and a small reference model
of the Invoke-Job rules.

``RunLifecycle`` is a stateful model of a run's life: a drawn definition whose
tasks succeed, fail, block, request a cancel, crash their drive (a dead
process) or interrupt it (a released lease), driven by two runners through an
invoke, resumes, takeovers once a lease expires, and cancels from outside.
After each drive: no task ran twice in it, no task the ledger recorded as done
ran again, its launch jobs are the launches its tasks saw, each came to what
its task did, and the run ended as ``RUN_ENDS`` says.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from jobledger import InvalidJobDataError, Jobs, Limits
from jobledger.runner import (
    RUN_ENTITY,
    JobDefinition,
    Launch,
    RunActiveError,
    Runner,
    RunNotResumableError,
    RunResult,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_launches,
    load_run,
    request_cancel,
    steps,
)
from jobledger.testing import ManualClock
from jobledger.testing import strategies as jst
from jobledger.testing.runs import (
    OutcomeKind,
    ScriptedLaunch,
    ScriptedTasks,
    SimulatedCrash,
    expire_lease,
    inline_runner,
    launch_history,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: Task statuses a resume does not run again.
DONE = {"completed", "warning", "failed", "skipped"}
#: Parent statuses that let a child run.
PASSING = {"completed", "warning"}


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
                # A parent in warning mode that raised ran, its error tolerated: it counts
                # as completed with output.
                if task.parents and (
                    any(self.status.get(p) not in PASSING for p in task.parents)
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
        return raised, raised == "warning"
    if kind == "block":
        return ("blocked", False) if task.guarded else (raised, raised == "warning")
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
    """The launch jobs record the launches and ends the tasks observed, drive by drive."""
    state = result.state
    assert state is not None
    launches = load_launches(jobs, result.run_id, state.launches)
    launched: dict[int, list[str]] = {}
    for launch in launches:
        if launch.input.group is not None:
            launched.setdefault(launch.input.drive, []).append(launch.input.task)
    ended = [
        launch.input.task
        for launch in launches
        if launch.status
        in {
            TaskStatus.COMPLETED,
            TaskStatus.WARNING,
            TaskStatus.FAILED,
            TaskStatus.BLOCKED,
            TaskStatus.CANCELED,
        }
    ]
    observed = {
        number: [launch.task for launch in drive] for number, drive in enumerate(drives, start=1)
    }
    assert {number: sorted(tasks) for number, tasks in observed.items() if tasks} == {
        number: sorted(tasks) for number, tasks in launched.items()
    }
    assert sorted(launch.task for drive in drives for launch in drive) == sorted(ended)
    assert list(result.launch_groups) == launch_history(jobs, result.run_id)
    assert len(launches) == state.launches


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

    The ledger refuses the start (no run is stored), or the run comes back
    over (or blocked at a breakpoint), as the ledger records it; a run that
    failed with no task failed says why.
    """
    max_bytes = data.draw(st.integers(300, 6_000), label="max_bytes")
    jobs = Jobs(limits=Limits(max_bytes=max_bytes))
    inline = data.draw(st.booleans(), label="inline")
    definition = data.draw(jst.job_definitions(ledger=jobs), label="definition")
    runner = inline_runner(jobs, [definition]) if inline else Runner(jobs, [definition])

    try:
        result = runner.invoke(definition.identifier)
    except InvalidJobDataError:
        assert [] == list(jobs.find(entity=RUN_ENTITY).jobs)
        return

    assert RunStatus.RUNNING is not result.status
    assert result == runner.result(result.run_id)
    if result.status is RunStatus.BLOCKED:
        assert result.breakpoint is not None
    failed = [name for name, status in result.statuses().items() if status == "failed"]
    if result.status is RunStatus.FAILED and not failed:
        # No task failed it: the ledger refused the run, which says so.
        assert result.failure is not None
    if result.failure is not None:
        assert result.status in {RunStatus.FAILED, RunStatus.CANCELED}
        assert result.failure.startswith("the ledger refused to record the run: ")


# -- the run lifecycle, as a state machine ------------------------------------------------

#: What one launch of a task does in the lifecycle machine (succeeding most often).
ACTS = (
    *("succeed",) * 5,
    "no_output",
    "fail",
    *("block",) * 2,
    "cancel",
    *("crash",) * 2,
    *("interrupt",) * 2,
)
#: What a repair variant does.
REPAIR_ACTS = ("succeed", "fail", "block")
#: Acts after which the drive did not end its run itself.
STOPS_THE_DRIVE = {"crash", "interrupt"}


@attrs.frozen
class Observed:
    """One launch, as its task saw it."""

    call: int
    task: str
    attempt: int
    repair: bool
    act: str


class Actors:
    """The task functions of the machine's definition: each launch acts out its script."""

    def __init__(self, script: dict[str, tuple[str, ...]], repairs: dict[str, str]) -> None:
        """Act out ``script`` (acts per attempt, by task) and ``repairs`` (by task)."""
        self.script = script
        self.repairs = repairs
        self.observed: list[Observed] = []
        self.call = 0
        self.jobs: Jobs | None = None
        self.clock: ManualClock | None = None
        self.driving: Runner | None = None

    def act_of(self, task: str, attempt: int, *, repair: bool) -> str:
        """What ``task`` does on ``attempt``: past its script, it succeeds."""
        if repair:
            return self.repairs.get(task, "succeed")
        acts = self.script.get(task, ())
        return acts[attempt - 1] if attempt <= len(acts) else "succeed"

    def __call__(self, context: TaskContext) -> TaskResult:
        """Run as a task (or its repair variant): record the launch, then act."""
        name = context.task.identifier
        act = self.act_of(name, context.attempt, repair=context.repair)
        self.observed.append(Observed(self.call, name, context.attempt, context.repair, act))
        if act == "fail":
            message = f"{name} failed"
            raise ValueError(message)
        if act == "block":
            reason = f"{name} blocked"
            raise TaskBlocked(reason)
        if act == "cancel":
            assert self.jobs is not None
            request_cancel(self.jobs, context.run_id, clock=self.clock)
        if act == "crash":
            raise SimulatedCrash(name, context.attempt)
        if act == "interrupt":
            assert self.driving is not None
            self.driving.interrupt(f"{name} interrupted its drive")
        return TaskResult(output=act != "no_output")


@st.composite
def lifecycle_definitions(draw: st.DrawFn) -> tuple[JobDefinition, Actors]:
    """A small definition whose tasks act out a drawn script, and the actors that run it."""
    count = draw(st.integers(1, 5), label="tasks")
    orders = sorted(draw(st.lists(st.integers(1, 3), min_size=count, max_size=count)))
    script: dict[str, tuple[str, ...]] = {}
    repairs: dict[str, str] = {}
    actors = Actors(script, repairs)
    tasks: list[Task] = []
    for index, order in enumerate(orders, start=1):
        name = f"t{index}"
        earlier = [task.identifier for task in tasks if task.launch_order < order]
        parents = (
            draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
        )
        guarded = draw(st.booleans())
        with_repair = guarded and draw(st.booleans())
        script[name] = tuple(draw(st.lists(st.sampled_from(ACTS), min_size=1, max_size=3)))
        if with_repair:
            repairs[name] = draw(st.sampled_from(REPAIR_ACTS))
        tasks.append(
            Task(
                name,
                actors,
                launch_order=order,
                parents=parents,
                warning_mode=draw(st.booleans()),
                guarded=guarded,
                repair=actors if with_repair else None,
            )
        )
    return JobDefinition("Lifecycle", tasks), actors


def ledger_status(act: str, task: Task) -> TaskStatus | None:
    """The status the ledger records for a launch of ``task`` that acted out ``act``.

    ``None`` for a launch whose drive stopped in it (a crash, an interrupt).
    """
    if act in STOPS_THE_DRIVE:
        return None
    if act in {"succeed", "no_output", "cancel"}:
        return TaskStatus.COMPLETED
    if act == "block" and task.guarded:
        return TaskStatus.BLOCKED
    return TaskStatus.WARNING if task.warning_mode else TaskStatus.FAILED


class RunLifecycle(RuleBasedStateMachine):
    """One run of a drawn definition through invokes, crashes, interrupts, cancels and resumes.

    Two runners (two processes, as far as the run can tell) share an in-memory
    ledger and a manual clock; tasks run inline, each acting out its script. A
    crash leaves the run as a dead process does (running, under a lease only
    time ends); an interrupt releases it.
    """

    def __init__(self) -> None:
        """No run yet."""
        super().__init__()
        self.clock = ManualClock()
        self.jobs = Jobs(clock=self.clock)
        self.run_id = "run-1"
        self.started = False
        self.definition: JobDefinition | None = None
        self.actors: Actors | None = None
        self.runners: tuple[Runner, ...] = ()
        self.crashed_drives: set[int] = set()

    @initialize(drawn=lifecycle_definitions(), which=st.integers(0, 1))
    def invoke(self, drawn: tuple[JobDefinition, Actors], which: int) -> None:
        """Make the definition and the two runners; one of them invokes the definition."""
        self.definition, self.actors = drawn
        self.actors.jobs, self.actors.clock = self.jobs, self.clock
        self.runners = tuple(
            inline_runner(self.jobs, [self.definition], clock=self.clock) for _ in range(2)
        )
        runner = self.runners[which]
        self.drive(runner, lambda: runner.invoke("Lifecycle", run_id=self.run_id))

    # -- reading the ledger --------------------------------------------------------------

    def result(self) -> RunResult:
        """The run as the ledger records it."""
        return load_run(self.jobs, self.run_id)

    def launches(self) -> tuple[Launch, ...]:
        """Every launch of the run."""
        state = self.result().state
        assert state is not None
        return load_launches(self.jobs, self.run_id, state.launches)

    def done_tasks(self) -> set[str]:
        """The tasks whose latest launch the ledger records as done (never run again)."""
        latest = {launch.input.task: launch for launch in self.launches()}
        return {name for name, launch in latest.items() if launch.status.is_done}

    # -- driving -------------------------------------------------------------------------

    def drive(self, runner: Runner, call: Callable[[], RunResult]) -> None:
        """Make one drive, then check it against what its tasks observed."""
        assert self.actors is not None
        assert self.definition is not None
        self.actors.call += 1
        self.actors.driving = runner
        done_before = self.done_tasks() if self.started else set()
        crashed = False
        try:
            call()
        except SimulatedCrash:
            crashed = True
        self.started = True
        number = self.number()
        if crashed:
            self.crashed_drives.add(number)
        observed = [seen for seen in self.actors.observed if seen.call == self.actors.call]

        # No task runs twice within one drive.
        assert all(1 == count for count in Counter(seen.task for seen in observed).values())
        # A task the ledger records as done never runs again.
        assert not done_before & {seen.task for seen in observed}
        # The launch jobs of the drive are the launches its tasks observed, in order.
        recorded = [
            launch
            for launch in self.launches()
            if launch.input.drive == number and launch.input.group is not None
        ]
        assert [(seen.task, seen.attempt, seen.repair) for seen in observed] == [
            (launch.input.task, launch.input.attempt, launch.input.repair)
            for launch in recorded[: len(observed)]
        ]
        stopped = crashed or any(seen.act == "interrupt" for seen in observed)
        if not stopped:
            assert len(observed) == len(recorded)
        # Each launch came to what its task did (unless its drive stopped in its step).
        last_step = max((launch.input.step for launch in recorded), default=None)
        for seen, launch in zip(observed, recorded, strict=False):
            expected = ledger_status(seen.act, self.definition.task(seen.task))
            if stopped and launch.input.step == last_step:
                assert launch.status in {expected, TaskStatus.RUNNING, TaskStatus.CANCELED}
            else:
                assert expected is launch.status, (seen, launch.status)
        self.check_end(crashed=crashed, interrupted=stopped and not crashed)
        state = self.result().state
        assert state is not None
        assert state.drive is not None
        event(f"drive: {state.drive.kind.value}, left {self.result().status.value}")

    def number(self) -> int:
        """The number of the drive that holds or last held the run."""
        state = self.result().state
        assert state is not None
        assert state.drive is not None
        return state.drive.number

    def check_end(self, *, crashed: bool, interrupted: bool) -> None:
        """The run ends as RUN_ENDS says: cancel, then fail, then block, then complete."""
        result = self.result()
        state = result.state
        assert state is not None
        if crashed:
            assert RunStatus.RUNNING is result.status
            assert state.lease is not None
            return
        if interrupted:
            assert (RunStatus.RUNNING, None) == (result.status, state.lease)
            assert state.released is not None
            return
        statuses = {outcome.status for outcome in result.outcomes.values()}
        if state.cancel_requested:
            expected = RunStatus.CANCELED
        elif TaskStatus.FAILED in statuses:
            expected = RunStatus.FAILED
        elif TaskStatus.BLOCKED in statuses:
            expected = RunStatus.BLOCKED
        else:
            expected = RunStatus.COMPLETED
            assert self.definition is not None
            assert len(self.definition.tasks) == len(result.outcomes)
            assert all(status.is_done for status in statuses)
        assert expected is result.status
        assert (None, sum(state.counts.values())) == (state.lease, state.tasks)

    # -- rules ---------------------------------------------------------------------------

    @rule(which=st.integers(0, 1), repair=st.booleans())
    def resume(self, which: int, repair: bool) -> None:  # noqa: FBT001  (a rule's drawn argument)
        """Resume the run: refused once over or while a live lease holds it, taken over once not."""
        assert self.definition is not None
        result = self.result()
        state = result.state
        assert state is not None
        live = state.lease is not None and not state.lease.expired(self.clock.now)
        blocked = [
            name
            for name, outcome in result.outcomes.items()
            if outcome.status is TaskStatus.BLOCKED
        ]
        runner = self.runners[which]
        version = self.jobs.get(self.run_id).version
        event(f"resume of a {result.status.value} run{' under a live lease' if live else ''}")
        if result.status.is_terminal:
            with pytest.raises(RunNotResumableError) as caught:
                runner.resume(self.run_id, repair=repair)
            assert (version, "the run is over") == (
                self.jobs.get(self.run_id).version,
                caught.value.reason,
            )
        elif result.status is RunStatus.RUNNING and live:
            with pytest.raises(RunActiveError):
                runner.resume(self.run_id, repair=repair)
            assert version == self.jobs.get(self.run_id).version
        elif repair and (
            result.status is RunStatus.RUNNING
            or any(self.definition.task(name).repair is None for name in blocked)
        ):
            with pytest.raises(RunNotResumableError):
                runner.resume(self.run_id, repair=True)
            assert version == self.jobs.get(self.run_id).version
        else:
            self.drive(runner, lambda: runner.resume(self.run_id, repair=repair))

    @rule()
    def expire_the_lease(self) -> None:
        """Let time pass the lease of a drive that died (nothing to wait for otherwise)."""
        result = self.result()
        state = result.state
        assert state is not None
        if result.status is RunStatus.RUNNING and state.lease is not None:
            expire_lease(self.jobs, self.run_id, self.clock)
            assert state.lease.expired(self.clock.now)

    @rule()
    def cancel(self) -> None:
        """Ask for a cancel from outside: a run nobody drives ends canceled at once."""
        result = self.result()
        state = result.state
        assert state is not None
        version = self.jobs.get(self.run_id).version
        answer = request_cancel(self.jobs, self.run_id, clock=self.clock)
        if result.status.is_terminal:
            assert (result.status, version) == (answer.status, self.jobs.get(self.run_id).version)
            return
        live = state.lease is not None and not state.lease.expired(self.clock.now)
        assert answer.cancel_requested
        assert (RunStatus.RUNNING if live else RunStatus.CANCELED) is answer.status

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def an_ended_run_leaves_no_launch_running(self) -> None:
        """Once the run is over, none of its launch jobs is still running."""
        if self.started and self.result().status.is_terminal:
            assert all(launch.status is not TaskStatus.RUNNING for launch in self.launches())

    @invariant()
    def attempts_count_the_launches(self) -> None:
        """Each task's launches are numbered 1, 2, ... across every drive."""
        if not self.started:
            return
        seen: dict[str, int] = {}
        for launch in self.launches():
            if launch.input.group is None:
                continue
            seen[launch.input.task] = seen.get(launch.input.task, 0) + 1
            assert seen[launch.input.task] == launch.input.attempt

    def teardown(self) -> None:
        """Close the runners."""
        for runner in self.runners:
            runner.close()


RunLifecycle.TestCase.settings = settings(max_examples=600, stateful_step_count=25, deadline=None)
test_the_run_lifecycle = RunLifecycle.TestCase
