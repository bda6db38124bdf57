"""The runner across processes, with the ledger in an SQLite file (or PostgreSQL) they share.

A second process cancels a run while its task runs, and a fresh process
resumes (and repairs) a run that blocked in this one: the ledger is all they
share. In the process race, two runner processes (and resumers in place of
those that die) invoke and resume one run while a killer SIGKILLs its driver
or freezes it (SIGSTOP, then SIGCONT past its lease); the tasks append their
starts and ends to a log of their own, which must show one task never running
in two processes at once, but for the documented re-run after a takeover of a
frozen driver. ``JOBLEDGER_RACE_ROUNDS`` sets the rounds per ledger (10 by
default; the issue's soak is 200).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import attrs
import pytest

from jobledger import JobAlreadyExistsError, Jobs, thaw
from jobledger.runner import (
    DefinitionBuilder,
    DefinitionBusyError,
    JobDefinition,
    Launch,
    LaunchGroup,
    RunActiveError,
    Runner,
    RunNotFoundError,
    RunNotResumableError,
    RunStatus,
    RunTakenOverError,
    RunTrigger,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_launches,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from pathlib import Path

#: Asks for a cancel of run argv[2] in the ledger at argv[1]; prints what it got back.
CANCEL = """
import sys
from jobledger import Jobs
from jobledger.runner import request_cancel
from jobledger.sqlite import SQLiteRepository

result = request_cancel(Jobs(repository=SQLiteRepository(sys.argv[1])), sys.argv[2])
print(result.status.value, result.cancel_requested)
"""

#: Resumes run argv[2] of the ledger at argv[1] with repair; prints the statuses.
RESUME = """
import json, sys
from jobledger import Jobs
from jobledger.runner import Runner
from jobledger.sqlite import SQLiteRepository
from tests.integration.test_runner_processes import nightly

runner = Runner(Jobs(repository=SQLiteRepository(sys.argv[1])), [nightly()])
result = runner.resume(sys.argv[2], repair=True)
print(json.dumps([result.status.value, result.statuses()]))
"""


#: Invokes a run on the runner's own threads and exits without closing the runner.
UNCLOSED = """
import threading
from jobledger import Jobs
from jobledger.runner import JobDefinition, Runner, Task

def work(context):
    return None

runner = Runner(Jobs(), [JobDefinition("D", [Task("a", work), Task("b", work)])])
result = runner.invoke("D")
kept = [t for t in threading.enumerate() if t.name.startswith("jobledger-")]
print(result.status.value, len(kept) > 0)
"""


def in_another_process(
    script: str, *arguments: str, root: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh Python process that can import jobledger and the tests."""
    return subprocess.run(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", script, *arguments],
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def export_employees(_context: TaskContext) -> TaskResult:
    """Export: report the process it ran in."""
    return TaskResult(summary={"pid": os.getpid()})


def synchronize_employees(_context: TaskContext) -> TaskResult:
    """Synchronize: always blocks, as if over its change threshold."""
    reason = "too many changes"
    raise TaskBlocked(reason, details={"changes": 120, "threshold": 50})


def validate_synchronization(_context: TaskContext) -> TaskResult:
    """The repair variant of synchronize: validates, reporting its process."""
    return TaskResult(summary={"pid": os.getpid(), "validated": True})


def provision_accounts(_context: TaskContext) -> TaskResult:
    """Provision: report the process it ran in."""
    return TaskResult(summary={"pid": os.getpid()})


def nightly() -> JobDefinition:
    """The three-step job both processes know: export, guarded synchronize, provision."""
    builder = DefinitionBuilder("Nightly")
    builder.task(type="export")(export_employees)
    builder.task(launch_order=2, type="synchronize", parents="export_employees", guarded=True)(
        synchronize_employees
    )
    builder.repair("synchronize_employees")(validate_synchronization)
    builder.task(launch_order=3, type="provision", parents="synchronize_employees")(
        provision_accounts
    )
    return builder.build()


class TestRunnerAcrossProcesses:
    """Runs shared by processes through an SQLite ledger."""

    def test_a_second_process_cancels_a_run_while_its_task_runs(
        self, tmp_path: Path, pytestconfig: pytest.Config
    ) -> None:
        """The cancel written by another process reaches the running task; the run ends canceled."""
        path = tmp_path / "jobs.db"
        jobs = Jobs(repository=SQLiteRepository(path))
        started = threading.Event()

        def export(context: TaskContext) -> TaskResult:
            started.set()
            return TaskResult(summary={"saw_cancel": context.wait_for_cancel(timeout=60)})

        builder = DefinitionBuilder("Long")
        builder.task(identifier="export")(export)
        builder.task(identifier="sync", launch_order=2)(provision_accounts)
        runner = Runner(jobs, [builder.build()], poll_interval=0.05)

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Long", run_id="run-1")
            assert started.wait(timeout=60)
            answer = in_another_process(CANCEL, str(path), "run-1", root=pytestconfig.rootpath)
            result = running.result(timeout=60)

        again = Jobs(repository=SQLiteRepository(path))
        [launch] = load_launches(again, "run-1", 1)
        assert "running True\n" == answer.stdout
        assert (RunStatus.CANCELED, "canceled") == (result.status, again.get("run-1").status)
        assert {"export": "completed", "sync": "pending"} == result.statuses()
        assert ("export", {"saw_cancel": True}) == (launch.input.task, launch.state.summary)

    def test_a_fresh_process_resumes_a_blocked_run_with_repair(
        self, tmp_path: Path, pytestconfig: pytest.Config
    ) -> None:
        """A run blocked here is repaired and finished by another process, from the ledger alone."""
        path = tmp_path / "jobs.db"
        jobs = Jobs(repository=SQLiteRepository(path))
        blocked = Runner(jobs, [nightly()]).invoke("Nightly", run_id="run-2")

        answer = in_another_process(RESUME, str(path), "run-2", root=pytestconfig.rootpath)
        result = Runner(jobs, [nightly()]).result("run-2")
        pids = {name: outcome.summary for name, outcome in result.outcomes.items()}

        assert RunStatus.BLOCKED == blocked.status
        assert [
            "completed",
            {
                "export_employees": "completed",
                "synchronize_employees": "completed",
                "provision_accounts": "completed",
            },
        ] == json.loads(answer.stdout)
        assert result.outcomes["synchronize_employees"].repair
        assert {"pid": os.getpid()} == pids["export_employees"]
        assert os.getpid() != thaw(pids["provision_accounts"])["pid"]
        assert result.state is not None
        assert result.state.drive is not None
        assert (2, RunTrigger.RESUME) == (result.state.drive.number, result.state.drive.kind)

    def test_a_runner_left_open_does_not_keep_the_interpreter_from_exiting(
        self, pytestconfig: pytest.Config
    ) -> None:
        """A process whose runner still keeps its idle threads exits once its script ends."""
        answer = in_another_process(UNCLOSED, root=pytestconfig.rootpath)

        assert "completed True\n" == answer.stdout


# -- the process race ----------------------------------------------------------------------

#: Rounds of the race per ledger; the issue's soak asks for 200 (JOBLEDGER_RACE_ROUNDS=200).
RACE_ROUNDS = int(os.environ.get("JOBLEDGER_RACE_ROUNDS", "10"))
#: The lease of the racing runners: short, so a frozen driver loses its run quickly.
RACE_LEASE = 1.0
#: How long each task of the race works.
RACE_TASK_SECONDS = 0.1
#: The longest a round may take, and a worker may keep trying.
RACE_PATIENCE = 60.0

#: Runs one racing worker: argv = repository (pickled, hex), run id, service, task log, notes.
RACE_WORKER = """
import sys
from tests.integration.test_runner_processes import race_worker
race_worker(*sys.argv[1:])
"""


def append_line(path: str, text: str) -> None:
    """Append one line to ``path`` with a single write (atomic for a short line on O_APPEND)."""
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(handle, f"{text}\n".encode())
    finally:
        os.close(handle)


def race_task(context: TaskContext) -> None:
    """Log its start and end (process, task, launch, monotonic time) to the run's log."""
    log = thaw(context.input)["log"]
    name = f"{os.getpid()} {context.task.identifier} {context.launch_id}"
    append_line(log, f"{name} start {time.monotonic()}")
    time.sleep(RACE_TASK_SECONDS)
    append_line(log, f"{name} end {time.monotonic()}")


def race_definition() -> JobDefinition:
    """Four steps of two logging tasks, each child of the step before."""
    tasks = [
        Task(
            f"s{step}-{index}",
            race_task,
            launch_order=step,
            parents=[f"s{step - 1}-{parent}" for parent in (1, 2)] if step > 1 else [],
        )
        for step in range(1, 5)
        for index in (1, 2)
    ]
    return JobDefinition("Race", tasks)


def race_worker(repository_hex: str, run_id: str, service: str, log: str, notes: str) -> None:
    """Invoke the race's run, or resume it, until it is over or this process loses it."""
    repository = pickle.loads(bytes.fromhex(repository_hex))  # noqa: S301  (the test's own bytes)
    runner = Runner(
        Jobs(repository=repository),
        [race_definition()],
        lease=RACE_LEASE,
        poll_interval=0.05,
        service=service,
    )

    def note(what: str) -> None:
        append_line(notes, f"{os.getpid()} {what} {time.monotonic()}")

    deadline = time.monotonic() + RACE_PATIENCE
    while time.monotonic() < deadline:
        try:
            try:
                result = runner.invoke("Race", run_id=run_id, input={"log": log})
            except (DefinitionBusyError, JobAlreadyExistsError):
                note("busy")
                result = runner.resume(run_id)
        except RunActiveError:
            note("active")
            time.sleep(0.05)
            continue
        except RunTakenOverError:
            note("deposed")
            return
        except RunNotResumableError as refused:
            if refused.status in {"completed", "failed", "canceled"}:
                note("over")
                return
            note("refused")
            time.sleep(0.05)
            continue
        except Exception as error:  # any other error fails the round: noted, then raised
            note(f"error:{type(error).__name__}")
            raise
        note(f"drove:{result.status.value}")
        if result.status.is_terminal:
            return
    note("error:gave-up")


@attrs.frozen
class Interval:
    """One run of one task in one process, from the task log."""

    pid: int
    task: str
    launch: str
    start: float
    end: float | None


@attrs.frozen
class Action:
    """What the killer did to a worker, and when."""

    pid: int
    what: str
    at: float


@attrs.frozen
class RoundReport:
    """What one round of the race came to."""

    status: RunStatus | None
    intervals: tuple[Interval, ...]
    actions: tuple[Action, ...]
    notes: tuple[tuple[int, str, float], ...]
    drives: int
    groups: tuple[LaunchGroup, ...]
    launches: Mapping[str, Launch]


def read_intervals(log: Path) -> tuple[Interval, ...]:
    """The task runs the log records, each start paired with its process's end of the task."""
    open_runs: dict[tuple[int, str, str], float] = {}
    found: list[Interval] = []
    lines = log.read_text().splitlines() if log.exists() else []
    for line in lines:
        pid, task, launch, what, at = line.split()
        key = (int(pid), task, launch)
        if what == "start":
            open_runs[key] = float(at)
        else:
            found.append(Interval(*key, open_runs.pop(key), float(at)))
    found.extend(Interval(*key, start, None) for key, start in open_runs.items())
    return tuple(sorted(found, key=lambda interval: interval.start))


def read_notes(notes: Path) -> tuple[tuple[int, str, float], ...]:
    """The workers' notes: (process, what, when)."""
    lines = notes.read_text().splitlines() if notes.exists() else []
    return tuple((int(pid), what, float(at)) for pid, what, at in (line.split() for line in lines))


def race_round(jobs: Jobs, round_number: int, folder: Path, root: Path) -> RoundReport:
    """Race two workers (and resumers) over one run while a killer kills and freezes them."""
    chance = random.Random(round_number)  # noqa: S311  (a reproducible schedule, not a secret)
    run_id, service = f"race-{round_number}", f"race.{uuid.uuid4().hex[:8]}"
    log, notes = folder / f"tasks-{round_number}.log", folder / f"notes-{round_number}.log"
    repository = pickle.dumps(getattr(jobs, "repository")).hex()  # noqa: B009  (Jobs' repository)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603  (our own interpreter and script)
            [sys.executable, "-c", RACE_WORKER, repository, run_id, service, str(log), str(notes)],
            cwd=root,
            env=environment,
        )

    def status() -> RunStatus | None:
        try:
            return Runner(jobs, [race_definition()], service=service).result(run_id).status
        except RunNotFoundError:
            return None

    workers = [spawn(), spawn()]
    actions: list[Action] = []
    planned = chance.randint(1, 2)
    deadline = time.monotonic() + RACE_PATIENCE
    try:
        while (now_status := status()) is None or not now_status.is_terminal:
            assert time.monotonic() < deadline, f"round {round_number} did not end"
            alive = [worker for worker in workers if worker.poll() is None]
            if len(alive) < 2:
                workers.append(spawn())  # a resumer, in place of a worker gone
            intervals = read_intervals(log)
            if planned and intervals and chance.random() < 0.2:
                planned -= 1
                driver = intervals[-1].pid
                target = next((w for w in alive if w.pid == driver), None) or chance.choice(alive)
                if chance.random() < 0.5:
                    target.send_signal(signal.SIGKILL)
                    actions.append(Action(target.pid, "kill", time.monotonic()))
                    target.wait(timeout=30)
                else:
                    target.send_signal(signal.SIGSTOP)
                    actions.append(Action(target.pid, "stop", time.monotonic()))
                    time.sleep(RACE_LEASE + 0.5 + chance.random())
                    target.send_signal(signal.SIGCONT)
                    actions.append(Action(target.pid, "cont", time.monotonic()))
            time.sleep(0.05)
    finally:
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=30)
    final = Runner(jobs, [race_definition()], service=service).result(run_id)
    drive = final.state.drive if final.state is not None else None
    return RoundReport(
        status=final.status,
        intervals=read_intervals(log),
        actions=tuple(actions),
        notes=read_notes(notes),
        drives=0 if drive is None else drive.number,
        groups=final.launch_groups,
        launches={
            launch.job_id: launch
            for launch in load_launches(jobs, run_id, final.state.launches if final.state else 0)
        },
    )


def step_of(task: str) -> int:
    """The step of a race task, from its identifier (``s<step>-<n>``)."""
    return int(task[1 : task.index("-")])


def check_round(report: RoundReport) -> int:
    """The invariants of one round; return how many re-runs its takeovers allowed."""
    assert RunStatus.COMPLETED is report.status
    assert [] == [note for note in report.notes if note[1].startswith("error")]
    ended = {interval.task for interval in report.intervals if interval.end is not None}
    assert {task.identifier for task in race_definition().tasks} == ended
    killed = {action.pid: action.at for action in report.actions if action.what == "kill"}
    # Every task run is a launch the ledger recorded for that task, run by one process.
    assert all(
        interval.launch in report.launches
        and interval.task == report.launches[interval.launch].input.task
        for interval in report.intervals
    )
    runners = {(interval.launch, interval.pid) for interval in report.intervals}
    assert len(runners) == len({launch for launch, _ in runners})
    allowed = 0
    for index, first in enumerate(report.intervals):
        first_end = first.end if first.end is not None else killed.get(first.pid, float("inf"))
        for second in report.intervals[index + 1 :]:
            if second.task != first.task or second.start >= first_end:
                continue
            # Two processes ran one task at once: only the documented re-run after a real
            # takeover may do that: a later drive claimed the run once the first drive's
            # lease expired (its process frozen by the killer, or stalled), and ended the
            # first launch as abandoned.
            earlier, later = report.launches[first.launch], report.launches[second.launch]
            error = earlier.state.error
            assert later.input.drive > earlier.input.drive, (first, second)
            assert TaskStatus.CANCELED is earlier.status, (first, second)
            assert error is not None
            assert error.message.startswith("abandoned: drive "), (first, second)
            allowed += 1
    # The run's launch groups belong to its drives in order: a deposed drive launched
    # nothing once the next one claimed the run.
    drives = [group.drive for group in report.groups]
    assert sorted(drives) == drives
    # A driver frozen while another took the run over starts, once thawed, only what it
    # had launched before: the tasks of the step after the last one it started.
    for stop in (action for action in report.actions if action.what == "stop"):
        thawed = min(
            (
                action.at
                for action in report.actions
                if action.pid == stop.pid and action.what == "cont" and action.at >= stop.at
            ),
            default=float("inf"),
        )
        before = [interval for interval in report.intervals if interval.start <= stop.at]
        driving = bool(before) and before[-1].pid == stop.pid
        taken = driving and any(
            interval.pid != stop.pid and stop.at <= interval.start <= thawed
            for interval in report.intervals
        )
        if taken:
            last = max(
                (step_of(interval.task) for interval in before if interval.pid == stop.pid),
                default=0,
            )
            assert {
                step_of(interval.task)
                for interval in report.intervals
                if interval.pid == stop.pid and interval.start > thawed
            } <= {last + 1}
            # ... and learns it lost the run, unless the killer ended it first.
            assert stop.pid in killed or (stop.pid, "deposed") in {
                (pid, what) for pid, what, _ in report.notes
            }
    return allowed


def race(jobs: Jobs, folder: Path, root: Path) -> None:
    """Run the rounds on ``jobs``; prove contention and takeovers happened."""
    contention = takeovers = 0
    for round_number in range(RACE_ROUNDS):
        report = race_round(jobs, round_number, folder, root)
        check_round(report)
        contention += sum(1 for note in report.notes if note[1] in {"active", "busy"})
        takeovers += report.drives - 1
    assert contention > 0
    assert takeovers > 0


@pytest.mark.slow
class TestProcessRace:
    """Two runner processes drive one run while a killer kills and freezes them."""

    def test_on_sqlite_never_two_processes_run_one_task_at_once(
        self, tmp_path: Path, pytestconfig: pytest.Config
    ) -> None:
        """Per the tasks' own log, a task runs in one process at a time but after a takeover."""
        with SQLiteRepository(tmp_path / "race.db") as repository:
            race(Jobs(repository=repository), tmp_path, pytestconfig.rootpath)

    def test_on_postgresql_never_two_processes_run_one_task_at_once(
        self, tmp_path: Path, pytestconfig: pytest.Config, postgres_conninfo: str
    ) -> None:
        """The same race with the ledger in PostgreSQL (a fresh schema, dropped after)."""
        import psycopg  # noqa: PLC0415  (only this test needs the driver)
        from psycopg import sql  # noqa: PLC0415

        from jobledger.postgres import PostgresRepository  # noqa: PLC0415

        schema = f"jl_race_{uuid.uuid4().hex[:12]}"
        try:
            with PostgresRepository(postgres_conninfo, schema=schema) as repository:
                race(Jobs(repository=repository), tmp_path, pytestconfig.rootpath)
        finally:
            with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
