"""Specification of jobledger.testing.runs: inline runs, scripted tasks and run assertions."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobledger.testing.runs
from jobledger import InvalidJobDataError, JobUpdated, JsonValue
from jobledger.runner import (
    AGENT,
    SERVER,
    JobDefinition,
    RunActiveError,
    Runner,
    RunNotFoundError,
    RunResult,
    RunStatus,
    RunTrigger,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_run,
    request_cancel,
)
from jobledger.testing import DEFAULT_START, EventMatch, LedgerHarness, ManualClock, SequentialIds
from jobledger.testing import strategies as jst
from jobledger.testing.runs import (
    INLINE_LEASE,
    InlineExecutor,
    ScriptedLaunch,
    ScriptedOutcome,
    ScriptedTaskError,
    ScriptedTasks,
    SimulatedCrash,
    assert_launches,
    assert_run,
    expire_lease,
    inline_executors,
    inline_runner,
    launch_history,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import JobEvent, Jobs
    from jobledger.testing import RecordingPublisher

    MakeRunner = Callable[..., Runner]


def nightly(script: ScriptedTasks) -> JobDefinition:
    """A three-step job: two exports, a guarded sync with a repair variant, a provisioning."""
    return JobDefinition(
        "Nightly",
        [
            script.task("export_hr", type="export"),
            script.task("export_ad", type="export", side=AGENT),
            script.task("sync", launch_order=2, parents="export_hr", guarded=True, repair=True),
            script.task("provision", launch_order=3, parents="sync"),
        ],
    )


def context_of(task: str, *, attempt: int = 1, force: int | None = None) -> TaskContext:
    """A context for calling a scripted task by hand, outside any run."""
    return TaskContext("run-1", Task(task, lambda _context: None), attempt=attempt, force=force)


def without_durations(value: JsonValue) -> object:
    """A plain copy of ``value`` without its "duration" members (they are measured, not set)."""
    if isinstance(value, dict):
        return {key: without_durations(item) for key, item in value.items() if key != "duration"}
    if isinstance(value, list):
        return [without_durations(item) for item in value]
    return value


class TestPublicSurface:
    """jobledger.testing.runs.__all__."""

    def test_all_names_exactly_the_public_names(self) -> None:
        """Every public name of the module is exported, sorted, and nothing else."""
        module = vars(jobledger.testing.runs)
        public = {
            name
            for name, value in module.items()
            if name.isidentifier()
            and not name.startswith("_")
            and getattr(value, "__module__", None) == "jobledger.testing.runs"
        }

        assert sorted(jobledger.testing.runs.__all__) == list(jobledger.testing.runs.__all__)
        assert public | {"INLINE_LEASE", "OutcomeKind"} == set(jobledger.testing.runs.__all__)


class TestInlineExecutor:
    """InlineExecutor runs each call in the submitting thread, to its end."""

    def test_a_call_runs_in_the_calling_thread_and_its_future_is_done(self) -> None:
        """A call runs before submit returns, in this thread; its future holds the result."""
        executor = InlineExecutor()

        future = executor.submit(threading.get_ident)

        assert (True, threading.get_ident(), 1) == (
            future.done(),
            future.result(timeout=0),
            executor.submitted,
        )

    def test_an_exception_is_held_by_the_future(self) -> None:
        """An error of the call does not escape submit: the future holds it."""
        executor = InlineExecutor()

        future = executor.submit(int, "not a number")

        assert isinstance(future.exception(timeout=0), ValueError)

    def test_system_exit_is_held_by_the_future(self) -> None:
        """A call that exits is an error of the call, as on a thread pool."""
        executor = InlineExecutor()

        future = executor.submit(exit_with, SystemExit(3))

        assert isinstance(future.exception(timeout=0), SystemExit)

    def test_a_keyboard_interrupt_is_raised_again(self) -> None:
        """Interrupting a call interrupts the submitter too, so a test can be stopped."""
        executor = InlineExecutor()

        with pytest.raises(KeyboardInterrupt):
            executor.submit(exit_with, KeyboardInterrupt())

    def test_no_call_runs_after_shutdown(self) -> None:
        """After shutdown (or the with block) submit raises RuntimeError, as executors do."""
        with InlineExecutor() as executor:
            assert [1, 4, 9] == list(executor.map(pow, [1, 2, 3], [2, 2, 2]))

        with pytest.raises(RuntimeError, match="after shutdown"):
            executor.submit(int, "1")
        assert 3 == executor.submitted

    def test_it_starts_no_thread(self) -> None:
        """However many calls run, the executor never starts a thread of its own."""
        executor = InlineExecutor()

        names = [executor.submit(lambda: threading.current_thread().name) for _ in range(3)]

        assert {threading.current_thread().name} == {future.result() for future in names}
        assert [] == [t.name for t in threading.enumerate() if "jobledger-inline" in t.name]
        assert "<InlineExecutor after 3 call(s)>" == repr(executor)


def exit_with(error: BaseException) -> None:
    """Raise ``error``: a call that exits or is interrupted."""
    raise error


def count_to_five(context: TaskContext) -> None:
    """Report progress five times in a row, as fast as it can."""
    context.report_progress(done=1, total=5)
    for done in range(2, 6):
        context.report_progress(done=done)


class TestInlineRunner:
    """inline_executors and inline_runner put an InlineExecutor on every side."""

    def test_every_side_of_the_definitions_gets_its_own_inline_executor(self) -> None:
        """server, agent, the sides asked for and the sides tasks name each get one."""
        definition = JobDefinition("Sides", [Task("a", lambda _c: None, side="hr-agent")])

        executors = inline_executors([definition], sides=["crm"])

        assert ["server", "agent", "crm", "hr-agent"] == list(executors)
        assert 4 == len({id(executor) for executor in executors.values()})

    def test_given_executors_replace_the_inline_ones(self) -> None:
        """An executor given for a side is used there; the other sides stay inline."""
        script = ScriptedTasks()
        with ThreadPoolExecutor(1) as pool:
            runner = inline_runner(
                LedgerHarness.create().jobs, [nightly(script)], executors={AGENT: pool}
            )

            assert pool is runner.executors[AGENT]
            assert isinstance(runner.executors[SERVER], InlineExecutor)

    def test_its_lease_is_the_inline_lease_unless_one_is_given(self, jobs: Jobs) -> None:
        """With no lease, heartbeat or takeover_after, drives hold runs for INLINE_LEASE seconds."""
        definitions = [nightly(ScriptedTasks())]

        assert (90.0, 90.0, 5.0, 6.0, 7.0) == (
            INLINE_LEASE,
            inline_runner(jobs, definitions).lease,
            inline_runner(jobs, definitions, lease=5).lease,
            inline_runner(jobs, definitions, heartbeat=2).lease,
            inline_runner(jobs, definitions, takeover_after=7).lease,
        )

    def test_a_run_uses_only_the_calling_thread(self, jobs: Jobs) -> None:
        """Every task of an inline run runs in the thread that invoked it."""
        threads: list[int] = []

        def note(_context: TaskContext) -> None:
            threads.append(threading.get_ident())

        definition = JobDefinition(
            "Threads",
            [Task("a", note), Task("b", note, side=AGENT), Task("c", note, launch_order=2)],
        )

        result = inline_runner(jobs, [definition]).invoke("Threads")

        assert RunStatus.COMPLETED == result.status
        assert [threading.get_ident()] * 3 == threads

    def test_progress_reports_reach_the_ledger(self, jobs: Jobs) -> None:
        """What an inline task reports is merged into its progress, as on a thread pool."""

        def export(context: TaskContext) -> None:
            context.report_progress(done=10, total=42)
            context.report_progress(done=42)

        result = inline_runner(jobs, [JobDefinition("P", [Task("export", export)])]).invoke("P")

        assert {"done": 42, "total": 42} == result.outcomes["export"].progress

    def test_a_shut_down_executor_fails_the_task_it_refuses(self, jobs: Jobs) -> None:
        """A side whose inline executor was shut down fails its task, and so the run."""
        executors = inline_executors()
        executors[SERVER].shutdown()
        runner = Runner(jobs, [nightly(ScriptedTasks())], executors=executors)

        result = runner.invoke("Nightly")

        assert_run(result, status="failed", failed=["export_hr"], completed=["export_ad"])


class TestInlineRuns:
    """Runs with inline executors complete, warn, fail, block, resume and cancel as any run."""

    def test_a_run_completes_step_by_step_in_a_known_order(
        self, jobledger_runner: MakeRunner, jobs: Jobs
    ) -> None:
        """Each task runs once, the steps in launch order and each step's tasks in order."""
        script = ScriptedTasks()

        result = jobledger_runner(nightly(script)).invoke("Nightly")

        assert_run(
            result,
            status="completed",
            completed=["export_hr", "export_ad", "sync", "provision"],
            launched=[["export_hr", "export_ad"], ["sync"], ["provision"]],
        )
        assert ["export_hr", "export_ad", "sync", "provision"] == script.launched()
        assert [(0, 1), (2, 3), (4, 5), (6, 7)] == [
            (launch.start, launch.end) for launch in script.launches
        ]
        assert [(1, 1), (2, 1), (3, 1)] == [
            (group.number, group.drive) for group in launch_history(jobs, result.run_id)
        ]

    def test_a_warning_lets_the_run_go_on_and_its_children_run(
        self, jobledger_runner: MakeRunner
    ) -> None:
        """A warning-mode task that raises is a warning that counts as done: its children run."""
        script = ScriptedTasks(warn=["export_hr"])
        definition = JobDefinition(
            "Lenient",
            [
                script.task("export_hr"),
                script.task("export_ad"),
                script.task("sync_hr", launch_order=2, parents="export_hr"),
                script.task("sync_ad", launch_order=2, parents="export_ad"),
            ],
        )

        result = jobledger_runner(definition).invoke("Lenient")

        assert_run(
            result,
            status="completed",
            warned=["export_hr"],
            completed=["export_ad", "sync_hr", "sync_ad"],
            skipped=[],
        )
        assert [
            (
                "export_hr",
                "jobledger.testing.runs.ScriptedTaskError",
                "task 'export_hr' raised in warning mode (scripted)",
            )
        ] == [(w.task, w.type, w.message) for w in result.warnings]

    def test_an_error_fails_the_run_after_its_step(self, jobledger_runner: MakeRunner) -> None:
        """A failing task fails the run: its step's other tasks run, later steps never start."""
        script = ScriptedTasks({"export_hr": ScriptedOutcome.fail("row 7 has no employee id")})

        result = jobledger_runner(nightly(script)).invoke("Nightly")
        error = result.outcomes["export_hr"].error

        assert_run(
            result,
            status="failed",
            failed=["export_hr"],
            completed=["export_ad"],
            pending=["sync", "provision"],
        )
        assert error is not None
        assert ("jobledger.testing.runs.ScriptedTaskError", "row 7 has no employee id") == (
            error.type,
            error.message,
        )
        assert ["export_hr", "export_ad"] == script.launched()

    def test_a_block_stops_the_run_and_a_repair_resumes_it(
        self, jobledger_runner: MakeRunner, jobs: Jobs
    ) -> None:
        """A guarded task blocks the run; resume(repair=True) runs its repair, then the rest."""
        script = ScriptedTasks(
            {"sync": ScriptedOutcome.block("too many deletions", {"deletions": 120})},
            repairs={"sync": ScriptedOutcome.succeed("validated")},
        )
        runner = jobledger_runner(nightly(script))

        blocked = runner.invoke("Nightly")
        resumed = runner.resume(blocked.run_id, repair=True)

        assert_run(
            blocked,
            status="blocked",
            completed=["export_hr", "export_ad"],
            blocked=["sync"],
            pending=["provision"],
        )
        assert blocked.breakpoint is not None
        assert (2, ("sync",)) == (blocked.breakpoint.step, blocked.breakpoint.tasks)
        assert_run(
            resumed,
            status="completed",
            completed=["export_hr", "export_ad", "sync", "provision"],
            launched=[["export_hr", "export_ad"], ["sync"], ["sync"], ["provision"]],
        )
        assert ("validated", True) == (
            resumed.outcomes["sync"].summary,
            resumed.outcomes["sync"].repair,
        )
        assert [("sync", 1, False), ("sync", 2, True)] == [
            (launch.task, launch.attempt, launch.repair)
            for launch in script.launches
            if launch.task == "sync"
        ]
        assert [
            (1, ("export_hr", "export_ad")),
            (1, ("sync",)),
            (2, ("sync",)),
            (2, ("provision",)),
        ] == [(group.drive, group.tasks) for group in launch_history(jobs, resumed.run_id)]

    def test_a_guard_gives_way_to_force(self, jobledger_runner: MakeRunner) -> None:
        """A block scripted unless_force completes once the run's force reaches it."""
        script = ScriptedTasks(
            {"sync": ScriptedOutcome.block("too many changes", unless_force=120)}
        )
        runner = jobledger_runner(nightly(script))

        blocked = runner.invoke("Nightly", force=100)
        resumed = runner.resume(blocked.run_id, force=500)

        assert_run(blocked, status="blocked", blocked=["sync"])
        assert_run(
            resumed, status="completed", completed=["export_hr", "export_ad", "sync", "provision"]
        )
        assert [(100, "block"), (500, "succeed")] == [
            (launch.force, launch.outcome.kind)
            for launch in script.launches
            if launch.task == "sync"
        ]

    def test_a_cancel_lets_the_step_finish_and_starts_nothing_more(
        self, jobledger_runner: MakeRunner, jobs: Jobs
    ) -> None:
        """A task that requests a cancel: its step's other task runs, no later step does.

        The request reaches the live drive (the lease by the runner's manual clock), so
        the ledger records the tasks as the result shows them.
        """
        script = ScriptedTasks(cancel=["export_hr"], ledger=jobs)
        runner = jobledger_runner(nightly(script))

        result = runner.invoke("Nightly")

        assert_run(
            result,
            status="canceled",
            completed=["export_hr", "export_ad"],
            pending=["sync", "provision"],
        )
        assert result.cancel_requested
        assert ["export_hr", "export_ad"] == script.launched()
        assert "canceled" == jobs.get(result.run_id).status
        assert result.statuses() == runner.result(result.run_id).statuses()
        assert_launches(jobs, result.run_id, statuses=["completed", "completed"])

    def test_a_scripted_cancel_asks_at_the_time_the_given_clock_reads(
        self, jobledger_runner: MakeRunner, jobs: Jobs
    ) -> None:
        """With a clock past the run's lease, the request finds nobody driving: canceled at once."""
        readings: list[datetime] = []

        def late() -> datetime:
            readings.append(DEFAULT_START + timedelta(days=1))
            return readings[-1]

        script = ScriptedTasks(cancel=["export_hr"], ledger=jobs, clock=late)
        runner = jobledger_runner(nightly(script))

        result = runner.invoke("Nightly", run_id="run-1")

        assert RunStatus.CANCELED == result.status
        assert [DEFAULT_START + timedelta(days=1)] == readings
        assert {"export_hr": "canceled", "export_ad": "canceled"}.items() <= (
            runner.result("run-1").statuses().items()
        )

    def test_a_blocked_run_is_canceled_at_once(
        self, jobledger_runner: MakeRunner, jobs: Jobs
    ) -> None:
        """A cancel request for a run blocked inline ends it canceled."""
        script = ScriptedTasks(block=["sync"])
        blocked = jobledger_runner(nightly(script)).invoke("Nightly")

        canceled = request_cancel(jobs, blocked.run_id)

        assert RunStatus.CANCELED == canceled.status

    def test_the_runner_fixture_uses_the_clock_and_known_drive_ids(
        self, jobledger_runner: MakeRunner, jobs: Jobs, jobledger_clock: ManualClock
    ) -> None:
        """Runs read jobledger_clock, and drives are numbered drive-0001, drive-0002, ..."""
        runner = jobledger_runner(nightly(ScriptedTasks(block=["sync"])))
        assert runner.clock is jobledger_clock

        blocked = runner.invoke("Nightly", run_id="run-1")
        runner.resume(blocked.run_id)
        state = load_run(jobs, "run-1").state

        assert state is not None
        assert state.drive is not None
        assert ("drive-0002", 2, RunTrigger.RESUME) == (
            state.drive.owner,
            state.drive.number,
            state.drive.kind,
        )
        assert DEFAULT_START <= blocked.launch_groups[0].launched_at < jobledger_clock.now

    def test_the_same_run_twice_records_the_same_history(self) -> None:
        """On fresh harnesses, an inline run writes the same jobs and updates, times and ids too."""

        def history() -> list[tuple[object, ...]]:
            ledger = LedgerHarness.create()
            script = ScriptedTasks(block=["sync"], warn=["export_ad"])
            definition = JobDefinition(
                "Nightly", [*nightly(script).tasks, Task("count", count_to_five, launch_order=2)]
            )
            runner = inline_runner(
                ledger.jobs, [definition], clock=ledger.clock, id_factory=SequentialIds("d")
            )
            run = runner.invoke("Nightly")
            resumed = runner.resume(run.run_id, repair=True)
            assert resumed.state is not None
            run_jobs = [run.run_id] + [
                f"{run.run_id}/{number}" for number in range(1, resumed.state.launches + 1)
            ]
            return [
                (
                    job_id,
                    update.update_id,
                    update.status,
                    update.etag,
                    update.at,
                    without_durations(update.state_update),
                )
                for job_id in run_jobs
                for update in ledger.jobs.updates(job_id)
            ]

        first, second = history(), history()

        assert first == second
        assert len(first) > 10

    def test_each_progress_report_is_one_update_of_the_launch_job(
        self, jobledger_runner: MakeRunner, jobledger_events: RecordingPublisher
    ) -> None:
        """Inline, every report is written at once, whatever the time between reports."""
        definition = JobDefinition("Count", [Task("count", count_to_five)])

        result = jobledger_runner(definition).invoke("Count", run_id="run-1")

        assert {"done": 5, "total": 5} == result.outcomes["count"].progress
        jobledger_events.assert_published(
            *(
                EventMatch(JobUpdated, state_update={"progress": progress})
                for progress in [{"done": 1, "total": 5}, *({"done": n} for n in range(2, 6))]
            ),
            job_id="run-1/1",
        )


class TestScriptedOutcome:
    """ScriptedOutcome values, made by their class methods."""

    def test_each_class_method_makes_its_kind(self) -> None:
        """The seven class methods make the seven kinds, with what they are given."""
        outcomes = [
            ScriptedOutcome.succeed({"exported": 42}),
            ScriptedOutcome.no_output("nothing new"),
            ScriptedOutcome.fail("boom"),
            ScriptedOutcome.warn("tolerated"),
            ScriptedOutcome.block("too many", {"changes": 7}, unless_force=10),
            ScriptedOutcome.cancel(),
            ScriptedOutcome.crash(),
        ]

        assert [
            ("succeed", None, None, {"exported": 42}, None),
            ("no_output", None, None, "nothing new", None),
            ("fail", "boom", None, None, None),
            ("warn", "tolerated", None, None, None),
            ("block", "too many", {"changes": 7}, None, 10),
            ("cancel", None, None, None, None),
            ("crash", None, None, None, None),
        ] == [(o.kind, o.message, o.details, o.summary, o.unless_force) for o in outcomes]

    def test_bad_values_are_refused(self) -> None:
        """An unknown kind, JSON that is not JSON, or a force that is not an integer is refused."""
        with pytest.raises(ValueError, match="kind"):
            ScriptedOutcome("explode")  # type: ignore[arg-type]
        with pytest.raises(InvalidJobDataError):
            ScriptedOutcome.block("x", details={"ratio": float("nan")})
        with pytest.raises(TypeError, match="unless_force must be an integer"):
            ScriptedOutcome.block("x", unless_force="10")  # type: ignore[arg-type]


class TestScriptedTasks:
    """ScriptedTasks: outcomes per task and launch, task building, and the launches it records."""

    def test_a_task_not_scripted_succeeds_with_output(self) -> None:
        """With no script for it, a task (and a repair variant) completes with output."""
        script = ScriptedTasks()

        assert TaskResult(output=True) == script(context_of("anything"))
        assert "succeed" == script.outcome("anything", 3, repair=True).kind

    def test_keywords_script_every_launch_of_a_task(self) -> None:
        """Each keyword gives its outcome to the tasks it names, on every launch."""
        script = ScriptedTasks(
            succeed=["a"],
            no_output=["b"],
            fail=["c"],
            warn=["d"],
            block=["e"],
            cancel=["f"],
            ledger=LedgerHarness.create().jobs,
        )

        assert ["succeed", "no_output", "fail", "warn", "block", "cancel"] == [
            script.outcome(name, 4).kind for name in "abcdef"
        ]

    def test_a_bare_string_names_one_task(self) -> None:
        """fail="provision" scripts the task provision, not its letters."""
        script = ScriptedTasks(fail="provision")

        assert ("fail", "succeed") == (script.outcome("provision").kind, script.outcome("p").kind)

    def test_a_sequence_scripts_launch_by_launch_and_its_last_goes_on(self) -> None:
        """Launch n does outcome n; launches past the sequence repeat its last outcome."""
        script = ScriptedTasks(
            {"sync": [ScriptedOutcome.block(), ScriptedOutcome.fail(), ScriptedOutcome.succeed()]},
            repairs={"sync": [ScriptedOutcome.no_output(), ScriptedOutcome.succeed()]},
        )

        assert ["block", "fail", "succeed", "succeed"] == [
            script.outcome("sync", attempt).kind for attempt in (1, 2, 3, 9)
        ]
        assert ["no_output", "succeed", "succeed"] == [
            script.outcome("sync", attempt, repair=True).kind for attempt in (1, 2, 3)
        ]

    def test_acting_out_each_outcome(self) -> None:
        """Called by hand, a scripted task returns, raises or blocks as scripted."""
        script = ScriptedTasks(
            {
                "quiet": ScriptedOutcome.no_output("nothing new"),
                "broken": ScriptedOutcome.fail("row 7"),
                "guard": ScriptedOutcome.block("too many", {"changes": 120}, unless_force=120),
            },
            block=["plain"],
        )

        assert TaskResult(output=False, summary="nothing new") == script(context_of("quiet"))
        with pytest.raises(ScriptedTaskError, match=r"^row 7$") as failed:
            script(context_of("broken", attempt=2))
        with pytest.raises(TaskBlocked) as blocked:
            script(context_of("guard", force=119))
        with pytest.raises(TaskBlocked, match=r"^task 'plain' blocked \(scripted\)$"):
            script(context_of("plain"))
        assert ("broken", 2) == (failed.value.task, failed.value.attempt)
        assert ("too many", {"changes": 120}) == (blocked.value.reason, blocked.value.details)
        assert TaskResult() == script(context_of("guard", force=120))

    def test_every_launch_is_recorded_with_what_the_task_saw(self, jobs: Jobs) -> None:
        """A launch records its run, attempt, repair flag, force, input, cancel flag and outcome."""
        script = ScriptedTasks(block=["sync"])
        runner = inline_runner(jobs, [nightly(script)])
        blocked = runner.invoke("Nightly", force=5, input={"tenant": "acme"}, run_id="run-1")
        runner.resume(blocked.run_id, repair=True)

        assert [
            ScriptedLaunch(
                task="sync",
                run_id="run-1",
                attempt=1,
                repair=False,
                force=5,
                input={"tenant": "acme"},
                cancel_requested=False,
                outcome=ScriptedOutcome.block(),
                start=4,
                end=5,
            ),
            ScriptedLaunch(
                task="sync",
                run_id="run-1",
                attempt=2,
                repair=True,
                force=5,
                input={"tenant": "acme"},
                cancel_requested=False,
                outcome=ScriptedOutcome.succeed(),
                start=6,
                end=7,
            ),
        ] == [launch for launch in script.launches if launch.task == "sync"]
        assert ["export_hr", "export_ad", "sync", "sync", "provision"] == script.launched("run-1")
        assert [] == script.launched("run-2")

    def test_launches_come_back_in_start_order_whatever_order_they_end_in(self, jobs: Jobs) -> None:
        """A launch that ends after a later one still comes first: launches are in start order."""
        inline_runner(jobs, [nightly(ScriptedTasks(block=["sync"]))]).invoke(
            "Nightly", run_id="run-1"
        )
        a_running, b_ended = threading.Event(), threading.Event()

        def hold(_event: JobEvent) -> None:
            # a's cancel request (of the blocked run-1) commits an update: hold a there
            # until b has ended.
            a_running.set()
            assert b_ended.wait(timeout=30)

        jobs.subscribe(hold, events=JobUpdated)
        script = ScriptedTasks(cancel=["a"], ledger=jobs)
        with ThreadPoolExecutor(1) as pool:
            a = pool.submit(script, TaskContext("run-1", Task("a", script)))
            assert a_running.wait(timeout=30)
            script(TaskContext("run-1", Task("b", script)))
            b_ended.set()
            a.result(timeout=30)
        first, second = script.launches

        assert ["a", "b"] == [first.task, second.task]
        assert first.start < second.start < second.end < first.end

    def test_a_task_seen_with_its_cancel_flag_raised_records_it(self) -> None:
        """A task started after its cancellation flag was raised records cancel_requested."""
        script = ScriptedTasks()
        flag = threading.Event()
        flag.set()

        script(TaskContext("run-1", Task("a", script), cancel_signal=flag))

        assert [True] == [launch.cancel_requested for launch in script.launches]

    def test_task_takes_its_flags_from_the_script(self) -> None:
        """task() puts warn tasks in warning mode, guards blocking ones, adds scripted repairs."""
        script = ScriptedTasks(
            warn=["lenient"], block=["guarded"], repairs={"repaired": ScriptedOutcome.succeed()}
        )

        made = [script.task(name) for name in ("plain", "lenient", "guarded", "repaired")]

        assert [
            ("plain", False, False, False),
            ("lenient", True, False, False),
            ("guarded", False, True, False),
            ("repaired", False, True, True),
        ] == [(t.identifier, t.warning_mode, t.guarded, t.repair is script) for t in made]
        assert all(task.function is script for task in made)

    def test_task_refuses_flags_that_contradict_the_script(self) -> None:
        """A warn without warning mode, or a fail with it, is refused: the run would differ."""
        script = ScriptedTasks(warn=["lenient"], fail=["strict"])

        with pytest.raises(
            ValueError, match="'lenient' is scripted to warn but is not in warning mode"
        ):
            script.task("lenient", warning_mode=False)
        with pytest.raises(ValueError, match="'strict' is scripted to fail but is in warning mode"):
            script.task("strict", warning_mode=True)

    def test_apply_keeps_the_definition_and_replaces_its_functions(self) -> None:
        """apply() keeps every field of every task but the functions, which run the script."""

        def export(_context: TaskContext) -> None:
            """A real task function."""

        original = JobDefinition(
            "Nightly",
            [
                Task("export", export, type="export", side=AGENT, warning_mode=True, timeout=5),
                Task("sync", export, launch_order=2, parents="export", guarded=True, repair=export),
            ],
            display_name="Nightly HR sync",
        )
        script = ScriptedTasks(warn=["export"], block=["sync"])

        scripted = script.apply(original)

        assert [
            ("export", "export", 1, (), AGENT, True, False, None, 5),
            ("sync", "task", 2, ("export",), SERVER, False, True, script, None),
        ] == [
            (
                t.identifier,
                t.type,
                t.launch_order,
                t.parents,
                t.side,
                t.warning_mode,
                t.guarded,
                t.repair,
                t.timeout,
            )
            for t in scripted.tasks
        ]
        assert ("Nightly", "Nightly HR sync") == (scripted.identifier, scripted.display_name)
        assert all(task.function is script for task in scripted.tasks)
        assert script is ScriptedTasks.of(scripted)

    def test_apply_lists_every_problem(self) -> None:
        """apply() refuses a script that does not fit the definition, naming each misfit."""
        definition = JobDefinition(
            "Nightly",
            [
                Task("export", lambda _c: None, warning_mode=True),
                Task("sync", lambda _c: None, launch_order=2, guarded=True),
                Task("provision", lambda _c: None, launch_order=3),
            ],
        )
        script = ScriptedTasks(
            fail=["export"],
            warn=["provision"],
            block=["synch"],
            repairs={"sync": ScriptedOutcome.succeed(), "ghost": ScriptedOutcome.succeed()},
        )

        with pytest.raises(ValueError, match="cannot apply the script") as caught:
            script.apply(definition)

        assert (
            "cannot apply the script:\n"
            "  - task 'synch' is scripted but is not a task of 'Nightly'\n"
            "  - a repair is scripted for 'sync', which has no repair variant\n"
            "  - a repair is scripted for 'ghost', which is not a task of 'Nightly'\n"
            "  - task 'export' is scripted to fail but is in warning mode: script warn\n"
            "  - task 'provision' is scripted to warn but is not in warning mode"
        ) == str(caught.value)

    def test_of_finds_the_script_of_a_definition(self) -> None:
        """of() returns the one script a definition runs, and refuses anything else."""
        script = ScriptedTasks()
        mixed = JobDefinition("Mixed", [script.task("a"), Task("b", lambda _c: None)])

        assert script is ScriptedTasks.of(nightly(script))
        with pytest.raises(ValueError, match="do not all run one ScriptedTasks"):
            ScriptedTasks.of(mixed)

    @pytest.mark.parametrize(
        ("arguments", "error", "message"),
        [
            (
                {"fail": ["a"], "block": ["a"]},
                ValueError,
                "'a' is scripted twice: in fail and in block",
            ),
            ({"outcomes": {"a": []}}, ValueError, "outcomes for task 'a' is empty"),
            ({"outcomes": {"a": ["fail"]}}, TypeError, "must be ScriptedOutcome values"),
            ({"fail": [1]}, TypeError, "fail takes task identifiers"),
            ({"cancel": ["a"]}, ValueError, "a scripted cancel needs the ledger"),
            ({"repairs": {"a": ScriptedOutcome.cancel()}}, ValueError, "needs the ledger"),
        ],
    )
    def test_a_bad_script_is_refused(
        self, arguments: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """A task scripted twice, an empty or mistyped script, or a cancel with no ledger fails."""
        with pytest.raises(error, match=message):
            ScriptedTasks(**arguments)

    def test_the_repr_shows_the_script(self) -> None:
        """The repr lists each task's outcomes launch by launch."""
        script = ScriptedTasks(
            {"sync": [ScriptedOutcome.block(), ScriptedOutcome.succeed()]},
            fail=["provision"],
            repairs={"sync": ScriptedOutcome.no_output()},
        )

        assert "<ScriptedTasks sync=block/succeed provision=fail sync(repair)=no_output>" == repr(
            script
        )
        assert "<ScriptedTasks all succeed>" == repr(ScriptedTasks())


class TestAssertRun:
    """assert_run checks what is given and shows the whole run when it fails."""

    @pytest.fixture
    def failed_run(self, jobledger_runner: MakeRunner) -> RunResult:
        """Return a failed Nightly run: export_hr fails, its step finishes, nothing more runs."""
        script = ScriptedTasks(fail=["sync"], no_output=["export_ad"])
        return jobledger_runner(nightly(script)).invoke("Nightly", run_id="run-1")

    def test_a_run_as_expected_passes(self, failed_run: RunResult) -> None:
        """Matching status, task lists in any order, and launch groups pass silently."""
        assert_run(
            failed_run,
            status=RunStatus.FAILED,
            completed=["export_ad", "export_hr"],
            failed="sync",
            pending=["provision"],
            warned=[],
            blocked=[],
            skipped=[],
            canceled=[],
            launched=[("export_hr", "export_ad"), ("sync",)],
        )

    def test_a_differing_run_lists_each_difference_then_the_run(
        self, failed_run: RunResult
    ) -> None:
        """The message names every difference, then each task's status and why, and the groups."""
        with pytest.raises(AssertionError) as caught:
            assert_run(
                failed_run,
                status="completed",
                completed=["export_hr", "sync", "provison"],
                launched=[["export_hr", "export_ad"], ["sync"], ["provision"]],
            )

        assert (
            "run 'run-1' of 'Nightly' is not as expected:\n"
            "  status: expected 'completed', got 'failed'\n"
            "  completed: expected ['export_hr', 'sync', 'provison'],"
            " got ['export_hr', 'export_ad']; missing 'sync', 'provison'; unexpected 'export_ad';"
            " not tasks of this run: 'provison'\n"
            "  launched: expected [['export_hr', 'export_ad'], ['sync'], ['provision']],"
            " got [['export_hr', 'export_ad'], ['sync']]\n"
            "the run (failed):\n"
            "  step 1  export_hr  completed\n"
            "  step 1  export_ad  completed  no output\n"
            "  step 2  sync       failed     jobledger.testing.runs.ScriptedTaskError:"
            " task 'sync' failed (scripted)\n"
            "  step 3  provision  pending\n"
            "launch groups: 1: export_hr, export_ad; 2: sync"
        ) == str(caught.value)

    def test_the_run_shows_why_tasks_were_skipped_or_blocked(
        self, jobledger_runner: MakeRunner
    ) -> None:
        """Skipped tasks show their skip reason and blocked ones their reason."""
        script = ScriptedTasks(no_output=["export"], block=["guard"])
        definition = JobDefinition(
            "Why",
            [
                script.task("export"),
                script.task("sync", launch_order=2, parents="export"),
                script.task("guard", launch_order=2),
            ],
        )
        result = jobledger_runner(definition).invoke("Why", run_id="run-2")

        with pytest.raises(AssertionError) as caught:
            assert_run(result, status="blocked", skipped=[])

        assert (
            "run 'run-2' of 'Why' is not as expected:\n"
            "  skipped: expected [], got ['sync']; unexpected 'sync'\n"
            "the run (blocked):\n"
            "  step 1  export  completed  no output\n"
            "  step 2  sync    skipped    none of its parents produced output\n"
            "  step 2  guard   blocked    blocked: task 'guard' blocked (scripted)\n"
            "launch groups: 1: export; 2: guard"
        ) == str(caught.value)

    def test_an_unknown_status_is_refused(self, failed_run: RunResult) -> None:
        """A status that no run has is a mistake in the test, not a difference."""
        with pytest.raises(ValueError, match="'complete' is not a valid RunStatus"):
            assert_run(failed_run, status="complete")


class TestLaunchHistory:
    """launch_history reads the launch groups from a run's history in the ledger."""

    def test_groups_come_oldest_first_with_their_step_and_drive(
        self, jobledger_runner: MakeRunner, jobs: Jobs
    ) -> None:
        """Each group has its number, step, tasks and drive, as the run's result lists them."""
        runner = jobledger_runner(
            nightly(ScriptedTasks({"sync": [ScriptedOutcome.block(), ScriptedOutcome.succeed()]}))
        )
        run = runner.invoke("Nightly")
        result = runner.resume(run.run_id)

        history = launch_history(jobs, run.run_id)

        assert [
            (1, 1, ("export_hr", "export_ad"), 1),
            (2, 2, ("sync",), 1),
            (3, 2, ("sync",), 2),
            (4, 3, ("provision",), 2),
        ] == [(group.number, group.step, group.tasks, group.drive) for group in history]
        assert list(result.launch_groups) == history

    def test_a_job_that_is_not_a_run_is_not_found(self, jobs: Jobs) -> None:
        """An unknown id and a job that is not a run both raise RunNotFoundError."""
        other = jobs.start(service="hr", entity="employee", type="sync")

        with pytest.raises(RunNotFoundError, match="no run with id 'ghost'"):
            launch_history(jobs, "ghost")
        with pytest.raises(
            RunNotFoundError, match=r"is a hr/employee job, not a jobledger\.runner"
        ):
            launch_history(jobs, other.id)

    def test_runs_of_another_service_are_read_with_its_name(self, jobs: Jobs) -> None:
        """A runner with its own service is read with service=, and only with it."""
        runner = inline_runner(jobs, [nightly(ScriptedTasks())], service="acme.runner")
        run = runner.invoke("Nightly", run_id="run-1")

        assert list(run.launch_groups) == launch_history(jobs, "run-1", service="acme.runner")
        with pytest.raises(RunNotFoundError, match=r"not a jobledger\.runner run"):
            launch_history(jobs, "run-1")


def crashing_night(script: ScriptedTasks) -> JobDefinition:
    """An export, then a sync that the script may crash, then a report."""
    return JobDefinition(
        "Night",
        [
            script.task("export"),
            script.task("sync", launch_order=2, parents="export"),
            script.task("report", launch_order=3, parents="sync"),
        ],
    )


class TestAssertLaunches:
    """assert_launches checks a run's launch jobs, oldest first, and shows them all on failure."""

    @pytest.fixture
    def repaired_run(self, jobledger_runner: MakeRunner) -> str:
        """Return the id of a run whose sync blocked, was repaired, and whose report was skipped."""
        script = ScriptedTasks(
            {"sync": ScriptedOutcome.block("too many deletions")},
            repairs={"sync": ScriptedOutcome.no_output()},
        )
        runner = jobledger_runner(crashing_night(script))
        runner.invoke("Night", run_id="run-1")
        runner.resume("run-1", repair=True)
        return "run-1"

    def test_a_run_as_expected_passes_and_gives_its_launches(
        self, repaired_run: str, jobs: Jobs
    ) -> None:
        """Matching lists pass, statuses as values or TaskStatus, and the launches come back."""
        launches = assert_launches(
            jobs,
            repaired_run,
            tasks=["export", "sync", "sync", "report"],
            statuses=["completed", TaskStatus.BLOCKED, "completed", "skipped"],
            drives=[1, 1, 2, 2],
            attempts=[1, 1, 2, 0],
            repairs=[False, False, True, False],
            groups=[1, 2, 3, None],
        )

        assert ["run-1/1", "run-1/2", "run-1/3", "run-1/4"] == [
            launch.job_id for launch in launches
        ]
        assert launches == assert_launches(jobs, repaired_run)

    def test_a_differing_run_lists_each_difference_then_every_launch(
        self, repaired_run: str, jobs: Jobs
    ) -> None:
        """The message names every differing list, then each launch with why it ended so."""
        with pytest.raises(AssertionError) as caught:
            assert_launches(
                jobs,
                repaired_run,
                tasks=["export", "sync", "report"],
                drives=[1, 1, 2, 2],
                repairs=[False, False, False, False],
            )

        assert (
            "launches of run 'run-1' are not as expected:\n"
            "  tasks: expected ['export', 'sync', 'report'],"
            " got ['export', 'sync', 'sync', 'report']\n"
            "  repairs: expected [False, False, False, False], got [False, False, True, False]\n"
            "the launches (4):\n"
            "  #1  step 1  group 1  drive 1  attempt 1  export  completed\n"
            "  #2  step 2  group 2  drive 1  attempt 1  sync    blocked"
            "    blocked: too many deletions\n"
            "  #3  step 2  group 3  drive 2  attempt 2  sync    completed  repair; no output\n"
            "  #4  step 3  group -  drive 2  attempt 0  report  skipped"
            "    none of its parents produced output"
        ) == str(caught.value)

    def test_an_unknown_status_or_run_is_refused(self, repaired_run: str, jobs: Jobs) -> None:
        """A status no task has is a mistake in the test; an unknown run is not found."""
        with pytest.raises(ValueError, match="'complete' is not a valid TaskStatus"):
            assert_launches(jobs, repaired_run, statuses=["complete"] * 4)
        with pytest.raises(RunNotFoundError, match="no run with id 'ghost'"):
            assert_launches(jobs, "ghost")


class TestTakeover:
    """A scripted crash leaves a run to its lease; expire_lease lets a resume take it over."""

    @pytest.fixture
    def script(self) -> ScriptedTasks:
        """Return a script whose sync crashes its drive on its first launch, then succeeds."""
        return ScriptedTasks({"sync": [ScriptedOutcome.crash(), ScriptedOutcome.succeed()]})

    @pytest.fixture
    def runner(self, jobledger_runner: MakeRunner, script: ScriptedTasks) -> Runner:
        """Return an inline runner of the crashing night, on the test's ledger and clock."""
        return jobledger_runner(crashing_night(script))

    def test_a_crash_leaves_the_run_running_under_its_lease(
        self, runner: Runner, jobs: Jobs
    ) -> None:
        """The crash goes out of invoke; the run and sync's launch stay running, the lease held."""
        with pytest.raises(SimulatedCrash, match=r"task 'sync' crashed its drive") as caught:
            runner.invoke("Night", run_id="run-1")
        state = load_run(jobs, "run-1").state

        assert ("sync", 1) == (caught.value.task, caught.value.attempt)
        assert RunStatus.RUNNING == runner.result("run-1").status
        assert state is not None
        assert state.lease is not None
        assert "drive-0001" == state.lease.owner
        assert_launches(jobs, "run-1", tasks=["export", "sync"], statuses=["completed", "running"])

    def test_a_resume_before_the_lease_expires_is_refused(
        self, runner: Runner, jobledger_clock: ManualClock
    ) -> None:
        """Until the clock reaches the lease's expiry, the run's dead drive still holds it."""
        with pytest.raises(SimulatedCrash):
            runner.invoke("Night", run_id="run-1")
        jobledger_clock.advance(seconds=30)

        with pytest.raises(RunActiveError) as caught:
            runner.resume("run-1")

        assert "drive-0001" == caught.value.owner

    def test_after_expire_lease_a_resume_takes_the_run_over(
        self,
        runner: Runner,
        script: ScriptedTasks,
        jobs: Jobs,
        jobledger_clock: ManualClock,
    ) -> None:
        """The takeover ends the dead drive's launch canceled and runs the task again."""
        with pytest.raises(SimulatedCrash):
            runner.invoke("Night", run_id="run-1")
        state = load_run(jobs, "run-1").state
        assert state is not None
        assert state.lease is not None

        moved_to = expire_lease(jobs, "run-1", jobledger_clock)
        result = runner.resume("run-1")
        launches = assert_launches(
            jobs,
            "run-1",
            tasks=["export", "sync", "sync", "report"],
            statuses=["completed", "canceled", "completed", "completed"],
            drives=[1, 1, 2, 2],
            attempts=[1, 1, 2, 1],
        )
        error = launches[1].state.error
        drive = load_run(jobs, "run-1").state

        assert state.lease.expires_at == moved_to
        assert_run(result, status="completed", completed=["export", "sync", "report"])
        assert ["export", "sync", "sync", "report"] == script.launched("run-1")
        assert error is not None
        assert "abandoned: drive 2 took the run over" == error.message
        assert drive is not None
        assert drive.drive is not None
        assert (2, RunTrigger.TAKE_OVER) == (drive.drive.number, drive.drive.kind)

    def test_a_clock_past_the_expiry_stays_where_it_is(
        self, runner: Runner, jobs: Jobs, jobledger_clock: ManualClock
    ) -> None:
        """expire_lease only moves the clock forward."""
        with pytest.raises(SimulatedCrash):
            runner.invoke("Night", run_id="run-1")
        later = jobledger_clock.advance(hours=1)

        assert later == expire_lease(jobs, "run-1", jobledger_clock)
        assert later == jobledger_clock.now

    def test_a_run_nobody_drives_has_no_lease_to_expire(
        self, jobledger_runner: MakeRunner, jobs: Jobs, jobledger_clock: ManualClock
    ) -> None:
        """A blocked (or ended) run holds no lease: expire_lease says so instead of moving time."""
        jobledger_runner(crashing_night(ScriptedTasks(block=["sync"]))).invoke(
            "Night", run_id="run-1"
        )
        before = jobledger_clock.now

        with pytest.raises(ValueError, match=r"run 'run-1' \(blocked\) has no lease to expire"):
            expire_lease(jobs, "run-1", jobledger_clock)
        assert before == jobledger_clock.now

    def test_a_crash_pickles_with_its_task_and_attempt(self) -> None:
        """A SimulatedCrash crosses a pickle with its facts and message."""
        crash = pickle.loads(pickle.dumps(SimulatedCrash("sync", 2)))  # noqa: S301  (our own bytes)

        assert ("sync", 2, "task 'sync' crashed its drive (scripted, launch 2)") == (
            crash.task,
            crash.attempt,
            str(crash),
        )

    def test_on_a_thread_pool_a_crash_is_the_tasks_error(self, jobs: Jobs) -> None:
        """Off an inline executor the crash stays in the task's future: the task fails."""
        script = ScriptedTasks({"sync": ScriptedOutcome.crash()})
        with ThreadPoolExecutor(1) as pool:
            runner = inline_runner(jobs, [crashing_night(script)], executors={SERVER: pool})
            result = runner.invoke("Night")
        error = result.outcomes["sync"].error

        assert_run(result, status="failed", completed=["export"], failed=["sync"])
        assert error is not None
        assert "jobledger.testing.runs.SimulatedCrash" == error.type


class TestJobDefinitions:
    """The job_definitions strategy draws valid definitions that run one script."""

    @settings(max_examples=25, deadline=None)
    @given(st.data())
    def test_drawn_definitions_are_valid_and_scripted(self, data: st.DataObject) -> None:
        """Parents come from earlier steps, flags agree with the script, and the run ends."""
        ledger = LedgerHarness.create()
        definition = data.draw(jst.job_definitions(ledger=ledger.jobs, max_tasks=4))
        script = ScriptedTasks.of(definition)
        orders = {task.identifier: task.launch_order for task in definition.tasks}

        result = inline_runner(ledger.jobs, [definition]).invoke("Drawn")

        for task in definition.tasks:
            kinds = {outcome.kind for outcome in script.outcomes(task.identifier)}
            assert all(orders[parent] < task.launch_order for parent in task.parents)
            assert ("fail" not in kinds) or not task.warning_mode
            assert ("warn" not in kinds) or task.warning_mode
            assert (task.repair is None) or task.guarded
        assert result.status in {
            RunStatus.COMPLETED,
            RunStatus.FAILED,
            RunStatus.BLOCKED,
            RunStatus.CANCELED,
        }

    @settings(max_examples=15, deadline=None)
    @given(jst.job_definitions(kinds=["block"], max_tasks=3))
    def test_kinds_limit_the_outcomes(self, definition: JobDefinition) -> None:
        """With kinds=["block"], every launch of every task blocks; repairs do too."""
        script = ScriptedTasks.of(definition)

        assert {"block"} == {
            outcome.kind
            for task in definition.tasks
            for repair in (False, True)
            for outcome in script.outcomes(task.identifier, repair=repair)
            if repair is False or task.repair is not None
        }

    def test_bad_arguments_are_refused(self) -> None:
        """A cancel without a ledger, no kinds, an unknown kind, a crash or no tasks is refused."""
        with pytest.raises(ValueError, match="needs the ledger"):
            jst.job_definitions(kinds=["cancel"])
        with pytest.raises(ValueError, match="kinds must name outcomes"):
            jst.job_definitions(kinds=[])
        with pytest.raises(ValueError, match="kinds must name outcomes"):
            jst.job_definitions(kinds=["explode"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="kinds must name outcomes"):
            jst.job_definitions(kinds=["crash"])
        with pytest.raises(ValueError, match="at least 1"):
            jst.job_definitions(max_tasks=0)
