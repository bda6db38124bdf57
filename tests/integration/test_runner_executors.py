"""The runner on executors outside its process: a process pool, loky, a dask.distributed cluster.

Each executor's workers are real processes: a spawning
:class:`~concurrent.futures.ProcessPoolExecutor`, loky's reusable executor, and
a dask.distributed cluster whose scheduler and workers this module starts as
their own OS processes on 127.0.0.1 (the runner gets ``client.get_executor()``).
A task there reaches the ledger from its own process, through the ledger's
handle (a SQLite file, or PostgreSQL): its progress lands in its launch job
while it runs, it sees a cancel request or its timeout from that job, and its
result comes back through the executor's future. The task functions live in
``executor_tasks.py`` beside this file, which the workers import.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING

import attrs
import loky
import pytest
from distributed import Client
from tests.integration import executor_tasks

from jobledger import Jobs
from jobledger.runner import (
    AGENT,
    JobDefinition,
    Launch,
    Runner,
    RunStatus,
    Task,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_launches,
    request_cancel,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

#: The longest any wait of these tests lasts before it fails.
PATIENCE = 60.0
#: The timeout of the tasks that overstay.
TIMEOUT = 1.0
#: Seconds between the runner's reads of the run (how soon it sees a cancel request).
POLL = 0.2


@attrs.frozen
class Workers:
    """An executor whose calls run in other processes, and what the tests know of them.

    Attributes:
        executor: The executor the runner's agent side gets.
        slots: How many calls it runs at once.
        pids: The workers' process ids, where the test started them itself.
    """

    executor: Executor
    slots: int
    pids: frozenset[int] | None = None


# -- executors -----------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Return once ``check()`` is true; fail after :data:`PATIENCE` seconds."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting {PATIENCE:.0f} s for {what}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process this module started: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def importable_tests(pytestconfig: pytest.Config) -> Iterator[str]:
    """Put the project's root on the path, which spawned workers inherit; return it.

    Workers unpickle the task functions by their module's name,
    ``tests.integration.executor_tasks``, which the root makes importable.
    """
    root = str(pytestconfig.rootpath)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(root)
        yield root


@pytest.fixture(scope="module")
def dask_cluster(
    importable_tests: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    """A dask scheduler and two workers, each its own process on 127.0.0.1, and a client."""
    folder = tmp_path_factory.mktemp("dask")
    address_file = folder / "scheduler.json"
    # The workers import the task functions, and jobledger from where this process does.
    path = os.pathsep.join([importable_tests, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path}
    dask = [sys.executable, "-m", "dask"]
    common = ["--no-dashboard", "--scheduler-file", str(address_file)]
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        log = (folder / "scheduler.log").open("wb")
        logs.append(log)
        processes.append(
            subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *common],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_until(
            lambda: address_file.exists() or processes[0].poll() is not None, "the scheduler"
        )
        assert processes[0].poll() is None, (folder / "scheduler.log").read_text()
        for number in range(2):
            log = (folder / f"worker-{number}.log").open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                    [
                        *dask,
                        "worker",
                        *common,
                        "--host",
                        "127.0.0.1",
                        "--name",
                        f"worker-{number}",
                        "--nthreads",
                        "2",  # 4 slots in all
                        "--no-nanny",  # the worker is this very process: its pid is known
                        "--death-timeout",
                        str(PATIENCE),
                        "--local-directory",
                        str(folder),
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        client = Client(scheduler_file=str(address_file), timeout=PATIENCE)
        try:
            client.wait_for_workers(2, timeout=PATIENCE)
            yield Workers(client.get_executor(), 4, frozenset(p.pid for p in processes[1:]))
        finally:
            client.close(timeout=PATIENCE)
    finally:
        for process in reversed(processes):
            stop(process)
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def loky_executor() -> Iterator[Workers]:
    """The reusable executor of loky with two workers, killed at the end."""
    executor = loky.get_reusable_executor(max_workers=2, reuse=False)
    try:
        yield Workers(executor, 2)
    finally:
        executor.shutdown(wait=True, kill_workers=True)


@pytest.fixture
def process_pool() -> Iterator[Workers]:
    """A spawning process pool with two workers, new for each test.

    New for each test: the runner terminates a pool's worker that overstays its
    timeout, which breaks the pool.
    """
    with ProcessPoolExecutor(
        max_workers=2, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        yield Workers(pool, 2)


@pytest.fixture(params=["processes", "loky", "dask"])
def workers(request: pytest.FixtureRequest) -> Workers:
    """Each kind of executor in turn."""
    fixture = {"processes": "process_pool", "loky": "loky_executor", "dask": "dask_cluster"}
    found = request.getfixturevalue(fixture[request.param])
    assert isinstance(found, Workers)
    return found


# -- ledgers -------------------------------------------------------------------------------


@pytest.fixture
def sqlite_jobs(tmp_path: Path) -> Iterator[Jobs]:
    """A ledger in a SQLite file of its own."""
    with SQLiteRepository(tmp_path / "ledger.db") as repository:
        yield Jobs(repository=repository)


@pytest.fixture
def postgres_jobs(postgres_conninfo: str) -> Iterator[Jobs]:
    """A ledger in a fresh schema of the test PostgreSQL server, dropped at the end."""
    import psycopg  # noqa: PLC0415  (only these tests need the driver)
    from psycopg import sql  # noqa: PLC0415

    from jobledger.postgres import PostgresRepository  # noqa: PLC0415

    schema = f"jl_test_{uuid.uuid4().hex[:12]}"
    try:
        with PostgresRepository(postgres_conninfo, schema=schema) as repository:
            yield Jobs(repository=repository)
    finally:
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def jobs(request: pytest.FixtureRequest) -> Jobs:
    """Each ledger that tasks in other processes can reach."""
    found = request.getfixturevalue(f"{request.param}_jobs")
    assert isinstance(found, Jobs)
    return found


# -- helpers -------------------------------------------------------------------------------


def here(_context: TaskContext) -> TaskResult:
    """A server-side task: runs on the runner's threads, in this process."""
    return TaskResult(summary={"pid": os.getpid()})


def runner_for(jobs: Jobs, workers: Workers, *tasks: Task) -> Runner:
    """A runner of one definition, ``Agents``, whose agent side is ``workers``."""
    return Runner(
        jobs,
        [JobDefinition("Agents", list(tasks))],
        executors={AGENT: workers.executor},
        poll_interval=POLL,
    )


def launches(jobs: Jobs, run_id: str) -> dict[str, Launch]:
    """The run's launches by task, read from their jobs."""
    return {launch.input.task: launch for launch in load_launches(jobs, run_id, 10)}


# -- the tests -----------------------------------------------------------------------------


class TestTasksElsewhere:
    """Tasks on process pools, loky and dask workers, with the ledger in a file or PostgreSQL."""

    def test_tasks_run_in_the_workers_and_their_progress_lands_in_their_launches(
        self, jobs: Jobs, workers: Workers
    ) -> None:
        """Agent tasks run in worker processes, return their results and record their progress."""
        runner = runner_for(
            jobs,
            workers,
            Task("export_a", executor_tasks.report_where, side=AGENT),
            Task("export_b", executor_tasks.report_where, side=AGENT),
            Task("synchronize", here, launch_order=2, parents=("export_a", "export_b")),
        )

        with runner:
            result = runner.invoke("Agents", input={"tenant": "acme"})
        recorded = launches(jobs, result.run_id)
        pids = set()
        for name in ("export_a", "export_b"):
            summary = result.outcomes[name].summary
            assert isinstance(summary, dict)
            pids.add(summary["pid"])
            assert {"tenant": "acme"} == summary["input"]
            assert {"done": 2, "total": 2, "pid": summary["pid"]} == recorded[name].state.progress

        assert RunStatus.COMPLETED == result.status
        assert os.getpid() not in pids
        assert workers.pids is None or pids <= workers.pids
        assert {"pid": os.getpid()} == result.outcomes["synchronize"].summary

    def test_a_workers_writes_name_the_drives_actor(
        self, sqlite_jobs: Jobs, process_pool: Workers
    ) -> None:
        """The start and progress a task writes from its worker name who invoked the run."""
        # With a timeout, the worker records where and when the task started.
        task = Task("export", executor_tasks.report_where, side=AGENT, timeout=PATIENCE)
        runner = runner_for(sqlite_jobs, process_pool, task)

        with runner:
            result = runner.invoke("Agents", actor="scheduler")
        updates = sqlite_jobs.updates(launches(sqlite_jobs, result.run_id)["export"].job_id)

        assert RunStatus.COMPLETED == result.status
        assert {"scheduler"} == {update.actor for update in updates}
        written = [set(update.state_update or {}) for update in updates]
        assert any("worker" in keys for keys in written)
        assert any("progress" in keys for keys in written[:-1])

    def test_a_cancel_request_reaches_a_task_in_a_worker(
        self, jobs: Jobs, workers: Workers, tmp_path: Path
    ) -> None:
        """A waiting task in a worker sees a cancel requested from another thread; the run ends."""
        marker = tmp_path / "canceled"
        runner = runner_for(jobs, workers, Task("wait", executor_tasks.wait_for_cancel, side=AGENT))

        with runner, ThreadPoolExecutor(1) as thread:
            running = thread.submit(
                runner.invoke, "Agents", run_id="run-1", input={"marker": str(marker)}
            )

            def waiting() -> bool:
                launch = launches(jobs, "run-1").get("wait")
                progress = launch.state.progress if launch is not None else None
                return progress is not None and progress.get("waiting") is True

            wait_until(waiting, "the task's progress in its launch job")
            before = launches(jobs, "run-1")["wait"].status
            request_cancel(jobs, "run-1")
            result = running.result(timeout=PATIENCE)
        launch = launches(jobs, "run-1")["wait"]

        assert TaskStatus.RUNNING == before
        assert RunStatus.CANCELED == result.status
        assert {"wait": "canceled"} == result.statuses()
        assert launch.state.progress is not None
        assert {"waiting": False, "saw_cancel": True} == {
            key: launch.state.progress[key] for key in ("waiting", "saw_cancel")
        }
        assert marker.read_text(encoding="utf-8").endswith("saw the cancel")

    def test_a_task_past_its_timeout_fails_and_the_run_does_not_wait_for_it(
        self, jobs: Jobs, workers: Workers, tmp_path: Path
    ) -> None:
        """A task that ignores its context is recorded failed (TaskTimeoutError) at its timeout."""
        release = tmp_path / "release"
        runner = runner_for(
            jobs,
            workers,
            Task("stubborn", executor_tasks.ignore_cancel, side=AGENT, timeout=TIMEOUT),
        )

        try:
            with runner:
                began = time.monotonic()
                result = runner.invoke("Agents", input={"release": str(release)})
                took = time.monotonic() - began
        finally:
            release.touch()  # lets the task go, wherever it still runs
        error = result.outcomes["stubborn"].error

        assert RunStatus.FAILED == result.status
        assert TaskStatus.FAILED == launches(jobs, result.run_id)["stubborn"].status
        assert error is not None
        assert "jobledger.runner.TaskTimeoutError" == error.type
        assert took < executor_tasks.LONGEST_WAIT / 2, took


class TestTimeoutsElsewhere:
    """Timeouts of tasks in other processes: counted from each start, told through the ledger.

    (A process pool's worker past its timeout is terminated instead of told:
    tests/integration/test_runner_timeouts.py.)
    """

    @pytest.mark.parametrize("workers", ["loky", "dask"], indirect=True)
    def test_a_task_elsewhere_is_told_of_its_timeout_through_the_ledger(
        self, jobs: Jobs, workers: Workers, tmp_path: Path
    ) -> None:
        """A task that waits on its context in a loky or dask worker learns of its timeout."""
        marker = tmp_path / "told"
        runner = runner_for(
            jobs,
            workers,
            Task("patient", executor_tasks.wait_for_cancel, side=AGENT, timeout=TIMEOUT),
        )

        with runner:
            result = runner.invoke("Agents", input={"marker": str(marker)})
        wait_until(marker.exists, "the task to see its timeout")
        error = result.outcomes["patient"].error

        assert RunStatus.FAILED == result.status
        assert error is not None
        assert "jobledger.runner.TaskTimeoutError" == error.type
        assert marker.read_text(encoding="utf-8").endswith("saw the cancel")

    def test_a_task_queued_behind_others_is_not_timed_while_it_waits(
        self, sqlite_jobs: Jobs, workers: Workers
    ) -> None:
        """Timeouts count from each task's start: a step four times the workers' width completes."""
        rounds = 4
        seconds = 0.5  # the last round starts after 1.5 s, past the 1 s timeout
        tasks = [
            Task(f"t{n}", executor_tasks.take_time, side=AGENT, timeout=TIMEOUT)
            for n in range(rounds * workers.slots)
        ]
        runner = runner_for(sqlite_jobs, workers, *tasks)

        with runner:
            result = runner.invoke("Agents", input={"seconds": seconds})
        began = []
        for outcome in result.outcomes.values():
            assert isinstance(outcome.summary, dict)
            start = outcome.summary["began"]
            assert isinstance(start, float)
            began.append(start)
        began.sort()

        assert RunStatus.COMPLETED == result.status
        assert {"completed"} == set(result.statuses().values())
        assert began[-1] - began[0] > TIMEOUT
