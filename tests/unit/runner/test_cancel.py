"""Canceling runs: from another thread, through the ledger alone, and while blocked."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from jobledger import ANY_ETAG, JobChanged, JobFailed, Jobs, UpdateType
from jobledger._core import decide
from jobledger._core.decide import event_of
from jobledger.runner import (
    TASK_ENTITY,
    JobDefinition,
    Runner,
    RunNotFoundError,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
    TaskResult,
    TaskStatus,
    load_launches,
    request_cancel,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger import JobEvent
    from jobledger.runner import RunResult


def done(context: TaskContext) -> None:
    """Return normally."""


def invoke_then(
    runner: Runner, name: str, started: threading.Event, act: Callable[[], object]
) -> RunResult:
    """Invoke ``name`` in another thread; once its task has started, ``act``; return the result."""
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(runner.invoke, name)
        assert started.wait(timeout=30)
        act()
        return running.result(timeout=60)


def waits_for_cancel(started: threading.Event, ids: list[str]) -> Callable[[TaskContext], object]:
    """Return a task that announces itself, then waits for its cancellation flag."""

    def wait(context: TaskContext) -> TaskResult:
        ids.append(context.run_id)
        started.set()
        saw = context.wait_for_cancel(timeout=30)
        return TaskResult(summary={"saw_cancel": saw})

    return wait


class TestCancel:
    """request_cancel and Runner.request_cancel."""

    def test_a_cancel_from_another_thread_lets_the_running_task_finish(self, jobs: Jobs) -> None:
        """The running task sees its flag, finishes and is recorded; the next step never starts."""
        started, ids = threading.Event(), list[str]()
        definition = JobDefinition(
            "Long",
            [Task("export", waits_for_cancel(started, ids)), Task("sync", done, launch_order=2)],
        )
        runner = Runner(jobs, [definition])

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Long")
            assert started.wait(timeout=30)
            requested = request_cancel(jobs, ids[0])
            result = running.result(timeout=30)

        assert (RunStatus.RUNNING, True) == (requested.status, requested.cancel_requested)
        assert (RunStatus.CANCELED, "canceled") == (result.status, jobs.get(ids[0]).status)
        assert {"export": "completed", "sync": "pending"} == result.statuses()
        assert {"saw_cancel": True} == result.outcomes["export"].summary
        [export] = load_launches(jobs, ids[0], 1)
        assert ("export", TaskStatus.COMPLETED, {"saw_cancel": True}) == (
            export.input.task,
            export.status,
            export.state.summary,
        )

    def test_the_driven_runs_cancel_names_who_asked(self, jobs: Jobs) -> None:
        """Runner.request_cancel(actor=) names the requester on the request and the run's cancel."""
        started, ids = threading.Event(), list[str]()
        definition = JobDefinition("Long", [Task("export", waits_for_cancel(started, ids))])
        runner = Runner(jobs, [definition])

        result = invoke_then(
            runner, "Long", started, lambda: runner.request_cancel(ids[0], actor="alice")
        )

        requests = [u for u in jobs.updates(ids[0]) if "cancel_requested" in (u.state_update or {})]
        end = jobs.updates(ids[0])[-1]
        assert RunStatus.CANCELED == result.status
        assert ["alice"] == [update.actor for update in requests]
        assert (UpdateType.CANCELED, "alice") == (end.update_type, end.actor)

    def test_a_cancel_through_the_ledger_alone_is_seen_by_polling(self) -> None:
        """A cancel written by another ledger on the same storage is seen at the next poll."""
        jobs = Jobs()
        elsewhere = Jobs(repository=jobs.repository)
        started, ids = threading.Event(), list[str]()
        definition = JobDefinition("Long", [Task("export", waits_for_cancel(started, ids))])
        runner = Runner(jobs, [definition], poll_interval=0.01)

        result = invoke_then(runner, "Long", started, lambda: request_cancel(elsewhere, ids[0]))

        assert RunStatus.CANCELED == result.status
        assert {"saw_cancel": True} == result.outcomes["export"].summary

    def test_a_cancel_through_the_same_ledger_is_heard_at_once(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Through the drive's ledger, a cancel reaches the task long before the next poll.

        The ledger has no publisher, so the drive's subscription alone makes
        events; of the run's changes it makes the cancel request's event only.
        """
        made: list[str] = []

        def counted(record: decide.ChangeRecord) -> JobChanged:
            made.append(record[2])
            return event_of(record)

        monkeypatch.setattr(decide, "event_of", counted)
        jobs = Jobs()
        started, ids = threading.Event(), list[str]()
        definition = JobDefinition(
            "Long",
            [Task("first", done), Task("export", waits_for_cancel(started, ids), launch_order=2)],
        )
        runner = Runner(jobs, [definition], poll_interval=600)

        result = invoke_then(runner, "Long", started, lambda: request_cancel(jobs, ids[0]))

        assert RunStatus.CANCELED == result.status
        assert {"saw_cancel": True} == result.outcomes["export"].summary
        assert [ids[0]] == made

    def test_a_task_that_stops_on_the_cancel_is_recorded_canceled(self, jobs: Jobs) -> None:
        """raise_if_cancel_requested stops the task, which is recorded canceled."""
        started, ids = threading.Event(), list[str]()

        def rounds(context: TaskContext) -> None:
            ids.append(context.run_id)
            started.set()
            context.wait_for_cancel(timeout=30)
            context.raise_if_cancel_requested()

        runner = Runner(jobs, [JobDefinition("Rounds", [Task("rounds", rounds)])])
        result = invoke_then(runner, "Rounds", started, lambda: runner.request_cancel(ids[0]))

        assert (RunStatus.CANCELED, {"rounds": "canceled"}) == (result.status, result.statuses())

    def test_a_task_that_waits_again_after_the_cancel_sees_it_at_once(self, jobs: Jobs) -> None:
        """Once raised, the flag stays raised: every later look and wait reports the cancel."""
        started, ids = threading.Event(), list[str]()
        seen: list[bool] = []

        def twice(context: TaskContext) -> None:
            ids.append(context.run_id)
            started.set()
            seen.append(context.wait_for_cancel(timeout=30))
            seen.append(context.wait_for_cancel(timeout=30))
            seen.append(context.wait_for_cancel(timeout=0))
            seen.append(context.cancel_requested)

        runner = Runner(jobs, [JobDefinition("Twice", [Task("twice", twice)])])
        result = invoke_then(runner, "Twice", started, lambda: runner.request_cancel(ids[0]))

        assert [True, True, True, True] == seen
        assert RunStatus.CANCELED == result.status

    def test_a_flag_raised_before_the_task_waits_is_seen_without_waiting(self, jobs: Jobs) -> None:
        """A task that first waits after the cancel was flagged gets its answer at once."""
        started, ids = threading.Event(), list[str]()
        requested = threading.Event()
        seen: list[bool] = []

        def late(context: TaskContext) -> None:
            ids.append(context.run_id)
            started.set()
            assert requested.wait(timeout=30)
            while not context.cancel_requested:
                # The runner raises the flag once it takes the request in.
                time.sleep(0.001)
            seen.append(context.wait_for_cancel(timeout=0))

        runner = Runner(jobs, [JobDefinition("Late", [Task("late", late)])])
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "Late")
            assert started.wait(timeout=30)
            runner.request_cancel(ids[0])
            requested.set()
            result = running.result(timeout=60)

        assert [True] == seen
        assert RunStatus.CANCELED == result.status

    def test_task_canceled_without_a_cancel_request_is_an_error(self, jobs: Jobs) -> None:
        """A task may not cancel itself: TaskCanceled with no request fails the run."""
        from jobledger.runner import TaskCanceled  # noqa: PLC0415  (only this test needs it)

        def quits(_context: TaskContext) -> None:
            raise TaskCanceled

        result = Runner(jobs, [JobDefinition("Quits", [Task("quits", quits)])]).invoke("Quits")

        assert (RunStatus.FAILED, {"quits": "failed"}) == (result.status, result.statuses())

    def test_a_blocked_run_is_canceled_at_once(self, jobs: Jobs) -> None:
        """Nobody drives a blocked run, so the request ends it canceled."""

        def sync(_context: TaskContext) -> None:
            reason = "too many changes"
            raise TaskBlocked(reason)

        runner = Runner(jobs, [JobDefinition("Sync", [Task("sync", sync, guarded=True)])])
        blocked = runner.invoke("Sync")

        canceled = request_cancel(jobs, blocked.run_id)

        assert (RunStatus.CANCELED, True) == (canceled.status, canceled.cancel_requested)
        assert "canceled" == jobs.get(blocked.run_id).status

    def test_a_finished_run_is_left_as_it_is(self, jobs: Jobs) -> None:
        """A cancel request for a completed run changes nothing."""
        runner = Runner(jobs, [JobDefinition("One", [Task("a", done)])])
        completed = runner.invoke("One")
        version = jobs.get(completed.run_id).version

        answer = request_cancel(jobs, completed.run_id)

        assert (RunStatus.COMPLETED, version) == (answer.status, jobs.get(completed.run_id).version)

    def test_an_unknown_run_is_not_found(self, jobs: Jobs) -> None:
        """request_cancel names the missing run."""
        with pytest.raises(RunNotFoundError):
            request_cancel(jobs, "ghost")

    def test_a_run_ended_directly_in_the_ledger_keeps_its_outcomes_in_the_result(
        self, jobs: Jobs
    ) -> None:
        """Canceled by a wildcard ledger command, the task's end is still recorded in its launch."""
        started, ids = threading.Event(), list[str]()
        runner = Runner(
            jobs, [JobDefinition("Long", [Task("export", waits_for_cancel(started, ids))])]
        )

        result = invoke_then(runner, "Long", started, lambda: jobs.cancel(ids[0], etag=ANY_ETAG))

        assert RunStatus.CANCELED == result.status
        assert {"saw_cancel": True} == result.outcomes["export"].summary
        [export] = load_launches(jobs, ids[0], 1)
        assert (TaskStatus.COMPLETED, {"saw_cancel": True}) == (export.status, export.state.summary)

    def test_a_cancel_after_a_failure_still_records_the_failed_task(self, jobs: Jobs) -> None:
        """Canceled after a task failed, the run ends canceled and the task's launch says failed."""
        failed = threading.Event()

        def on_failure(event: JobEvent) -> None:
            if (getattr(event, "state_update", None) or {}).get("outcome") == "failed":
                failed.set()

        jobs.subscribe(on_failure, events=JobFailed, entity=TASK_ENTITY)

        def broken(_context: TaskContext) -> None:
            message = "row 7 has no employee id"
            raise ValueError(message)

        def cancels(context: TaskContext) -> None:
            assert failed.wait(timeout=30)
            request_cancel(jobs, context.run_id)
            context.wait_for_cancel(timeout=30)

        definition = JobDefinition("D", [Task("broken", broken), Task("cancels", cancels)])

        result = Runner(jobs, [definition]).invoke("D", run_id="run-1")

        assert RunStatus.CANCELED == result.status
        assert [("broken", TaskStatus.FAILED), ("cancels", TaskStatus.COMPLETED)] == [
            (launch.input.task, launch.status) for launch in load_launches(jobs, "run-1", 2)
        ]
