"""The runner's own thread pools: kept between invokes, never shared at once, closed."""

from __future__ import annotations

import gc
import os
import select
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from jobledger import Jobs
from jobledger.runner import (
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskContext,
    TaskStatus,
)

if TYPE_CHECKING:
    from collections.abc import Callable


#: A timeout no test reaches: a task with one runs on a pool thread even alone in its
#: step (a one-task step without a timeout runs in the driving thread).
ON_A_POOL = 600.0


def pooled(name: str, function: Callable[[TaskContext], None], **options: object) -> Task:
    """A task that runs on the runner's pool even when it is alone in its step."""
    return Task(name, function, timeout=ON_A_POOL, **options)  # type: ignore[arg-type]


class ThreadLog:
    """Task functions that record the thread each launch ran on."""

    def __init__(self) -> None:
        """Start with no launch recorded."""
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def record(self, _context: TaskContext) -> None:
        """Record the current thread (kept alive by the list, so identity compares safely)."""
        with self.lock:
            self.threads.append(threading.current_thread())


class TestRunnerThreads:
    """Runner's thread pools for the server and agent sides."""

    def test_a_second_invoke_runs_on_the_threads_of_the_first(self, jobs: Jobs) -> None:
        """The pool a drive gives back is kept: the next invoke starts no thread."""
        log = ThreadLog()
        runner = Runner(jobs, [JobDefinition("D", [pooled("a", log.record)])])

        first = runner.invoke("D")
        second = runner.invoke("D")
        runner.close()

        assert (RunStatus.COMPLETED, RunStatus.COMPLETED) == (first.status, second.status)
        assert {"a": "completed"} == second.statuses()
        assert 2 == len(log.threads)
        assert log.threads[0] is log.threads[1]
        assert log.threads[0] is not threading.current_thread()

    def test_a_drives_own_writes_wake_no_thread(self) -> None:
        """A run of one-task steps on a default ledger wakes no delivery thread with its writes."""
        before = set(threading.enumerate())  # other tests' threads may still be ending
        seen: set[threading.Thread] = set()

        def look(_context: TaskContext) -> None:
            seen.update(threading.enumerate())

        steps = [Task(f"t{order}", look, launch_order=order) for order in range(5)]
        with Runner(Jobs(), [JobDefinition("D", steps)]) as runner:
            result = runner.invoke("D")

        started = {thread.name for thread in seen - before}
        assert RunStatus.COMPLETED == result.status
        assert set() == {name for name in started if name.startswith("jobledger-delivery")}

    def test_close_ends_the_threads(self, jobs: Jobs) -> None:
        """After close, the threads the runner kept have ended."""
        log = ThreadLog()
        runner = Runner(jobs, [JobDefinition("D", [pooled("a", log.record, side="agent")])])
        runner.invoke("D")
        kept = log.threads[0]
        alive_before = kept.is_alive()

        runner.close()

        assert (True, False) == (alive_before, kept.is_alive())
        assert runner.closed

    def test_a_with_block_closes_the_runner(self, jobs: Jobs) -> None:
        """Leaving a with block closes the runner and ends its threads."""
        log = ThreadLog()

        with Runner(jobs, [JobDefinition("D", [pooled("a", log.record)])]) as runner:
            result = runner.invoke("D")

        assert RunStatus.COMPLETED == result.status
        assert runner.closed
        assert not log.threads[0].is_alive()

    def test_a_closed_runner_still_runs_but_keeps_no_threads(self, jobs: Jobs) -> None:
        """After close, an invoke runs on a pool of its own, whose threads end with it."""
        log = ThreadLog()
        runner = Runner(jobs, [JobDefinition("D", [pooled("a", log.record)])])
        runner.invoke("D")
        runner.close()
        runner.close()  # closing again does nothing

        result = runner.invoke("D")

        assert {"a": "completed"} == result.statuses()
        assert 2 == len(log.threads)
        assert log.threads[0] is not log.threads[1]
        assert not log.threads[1].is_alive()

    def test_runs_at_the_same_time_do_not_share_a_pool(self, jobs: Jobs) -> None:
        """Two drives of a one-task step both run their task at once: each has its own pool."""
        barrier = threading.Barrier(2)
        log = ThreadLog()

        def meet(context: TaskContext) -> None:
            log.record(context)
            # With one shared one-thread pool the second task would wait for the first,
            # which waits for it here: the barrier would break.
            barrier.wait(timeout=30)

        runner = Runner(jobs, [JobDefinition("D", [pooled("a", meet)])])

        with ThreadPoolExecutor(2) as callers:
            runs = [callers.submit(runner.invoke, "D", exclusive=False) for _ in range(2)]
            results = [run.result(timeout=60) for run in runs]
        runner.close()

        assert [{"a": "completed"}, {"a": "completed"}] == [r.statuses() for r in results]
        assert log.threads[0] is not log.threads[1]

    def test_a_pool_is_as_wide_as_the_widest_step_of_any_definition(self, jobs: Jobs) -> None:
        """A pool first lent for a narrow definition still runs a wide step all at once."""
        barrier = threading.Barrier(3)

        def meet(_context: TaskContext) -> None:
            barrier.wait(timeout=30)

        narrow = JobDefinition("Narrow", [pooled("a", ThreadLog().record)])
        wide = JobDefinition("Wide", [Task(name, meet) for name in ("a", "b", "c")])
        runner = Runner(jobs, [narrow, wide])

        runner.invoke("Narrow")
        result = runner.invoke("Wide")
        runner.close()

        assert {"a": "completed", "b": "completed", "c": "completed"} == result.statuses()

    def test_a_pool_with_an_abandoned_task_is_not_kept(self, jobs: Jobs) -> None:
        """A task abandoned on its timeout keeps its thread; the next drive gets another pool."""
        release = threading.Event()
        log = ThreadLog()

        def stuck(context: TaskContext) -> None:
            log.record(context)
            # Ignores the cancel flag: its thread stays busy until released.
            release.wait(timeout=30)

        runner = Runner(
            jobs,
            [
                JobDefinition("Stuck", [Task("a", stuck, timeout=0.05)]),
                JobDefinition("Quick", [pooled("b", log.record)]),
            ],
        )
        try:
            timed_out = runner.invoke("Stuck")
            quick = runner.invoke("Quick")
            # Read before the release: a kept pool would run "b" only once "a" is done.
            busy = log.threads[0].is_alive() and not release.is_set()
        finally:
            release.set()
            runner.close()

        assert TaskStatus.FAILED == timed_out.outcomes["a"].status
        assert {"b": "completed"} == quick.statuses()
        assert busy
        assert log.threads[0] is not log.threads[1]

    def test_a_runner_dropped_without_close_lets_its_threads_end(self, jobs: Jobs) -> None:
        """The kept threads end once the runner is garbage: nothing else holds its pools."""
        log = ThreadLog()
        runner = Runner(jobs, [JobDefinition("D", [pooled("a", log.record)])])
        runner.invoke("D")
        kept = log.threads[0]

        del runner
        gc.collect()
        kept.join(timeout=30)

        assert not kept.is_alive()

    def test_a_forked_child_runs_on_threads_of_its_own(self, jobs: Jobs) -> None:
        """A runner used in a forked child starts threads there instead of its parent's."""
        log = ThreadLog()
        runner = Runner(jobs, [JobDefinition("D", [pooled("a", log.record)])])
        runner.invoke("D")  # the parent now keeps a pool whose thread the child will not have
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run once more, report the status, and leave at once
            try:
                os.write(write_end, runner.invoke("D").status.value.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], 60)
        if not ready:  # the child hangs: end it, so the failure does not hang the suite
            os.kill(pid, signal.SIGKILL)
        with os.fdopen(read_end) as pipe:
            reported = pipe.read() if ready else "hung"
        os.waitpid(pid, 0)
        runner.close()

        assert "completed" == reported
