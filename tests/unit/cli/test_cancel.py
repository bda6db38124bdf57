"""``jobledger cancel ID``: runs asked to stop, other jobs canceled, guarded by ETags."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from tests.unit.cli.conftest import STARTED, nightly_definitions

from jobledger import Jobs
from jobledger.cli import ExitCode
from jobledger.runner import (
    DefinitionBuilder,
    Runner,
    RunStatus,
    TaskContext,
    TaskResult,
)
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


class TestCancel:
    """Canceling from the command line, as an operator in another terminal would."""

    def test_a_running_run_is_asked_to_stop_and_its_runner_ends_it_canceled(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """The request reaches the runner elsewhere: its task sees it and the run ends canceled."""
        started = threading.Event()

        def export(context: TaskContext) -> TaskResult:
            started.set()
            return TaskResult(summary={"saw_cancel": context.wait_for_cancel(timeout=30)})

        builder = DefinitionBuilder("long")
        builder.task(identifier="export")(export)
        elsewhere = Jobs(repository=SQLiteRepository(store))
        runner = Runner(elsewhere, [builder.build()], poll_interval=0.05)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "long", run_id="run-1")
            assert started.wait(timeout=30)
            result = jobledger("cancel", "run-1", "--store", store)
            outcome = running.result(timeout=30)

        printed = jobledger.lines(result.stdout)
        assert (ExitCode.OK, 1) == (result.exit_code, len(printed))
        assert printed[0].startswith(
            "Cancel requested for run run-1: its runner lets the running tasks finish, then ends "
            f"it canceled. (Should that runner be gone, `jobledger cancel run-1 --store {store}` "
            "after "
        )
        assert printed[0].endswith(", when its lease runs out, cancels it at once.)")
        assert (RunStatus.CANCELED, {"saw_cancel": True}) == (
            outcome.status,
            outcome.outcomes["export"].summary,
        )

    def test_a_blocked_run_is_canceled_at_once(self, jobledger: Jobledger, store: str) -> None:
        """Nobody drives a blocked run, so the cancel ends it: --json shows it canceled."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger("cancel", run_id, "--store", store, "--json")

        assert (ExitCode.OK, "canceled") == (result.exit_code, json.loads(result.stdout)["Status"])

    def test_a_run_its_runner_let_go_is_canceled_at_once(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """A run released by its runner (a second Ctrl-C, say) is canceled by the command."""
        elsewhere = Jobs(repository=SQLiteRepository(store))
        runner = Runner(elsewhere, nightly_definitions(), poll_interval=0.05, lease=600)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "hold", run_id="run-2")
            assert STARTED.wait(timeout=30)
            runner.interrupt("the test let it go")
            running.result(timeout=30)

        result = jobledger("cancel", "run-2", "--store", store)

        assert (ExitCode.OK, ["Run run-2 canceled."], "canceled") == (
            result.exit_code,
            jobledger.lines(result.stdout),
            ledger.get("run-2").status,
        )

    def test_json_of_a_run_is_the_run_as_the_cancel_left_it(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """--json prints the run: its job in the wire format and each task's outcome."""
        run_id = jobledger.invoke_blocked(store)

        document = json.loads(jobledger("cancel", run_id, "--store", store, "--json").stdout)

        assert ("canceled", run_id, "blocked") == (
            document["Status"],
            document["Run"]["JobId"],
            jobledger.statuses(document)["synchronize"],
        )

    def test_a_job_that_is_not_a_run_is_canceled_at_once(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Any other active job is canceled in the ledger, with its current ETag."""
        ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")

        result = jobledger("cancel", "job-1", "--store", store)

        assert (ExitCode.OK, ["Job job-1 canceled."], "canceled") == (
            result.exit_code,
            jobledger.lines(result.stdout),
            ledger.get("job-1").status,
        )

    def test_actor_names_who_canceled_the_job(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--actor is recorded as the cancel's actor; without it, no one is named."""
        ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")
        ledger.start(service="hr", entity="employee", type="sync", job_id="job-2")

        jobledger("cancel", "job-1", "--actor", "alice", "--store", store)
        jobledger("cancel", "job-2", "--store", store)

        assert (["alice"], [None]) == (
            [update.actor for update in ledger.updates("job-1")],
            [update.actor for update in ledger.updates("job-2")],
        )

    def test_the_actor_may_come_from_the_environment(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """JOBLEDGER_ACTOR gives the actor when --actor is not given."""
        ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")

        jobledger("cancel", "job-1", "--store", store, env={"JOBLEDGER_ACTOR": "ops"})

        assert ["ops"] == [update.actor for update in ledger.updates("job-1")]

    def test_a_runs_cancel_names_its_actor(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Canceling a blocked run with --actor records the actor on the run's own changes."""
        run_id = jobledger.invoke_blocked(store)
        before = len(ledger.updates(run_id))

        jobledger("cancel", run_id, "--actor", "alice", "--store", store)

        assert ["alice", "alice"] == [update.actor for update in ledger.updates(run_id)[before:]]

    def test_a_stale_etag_is_a_conflicting_edit(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--etag guards the cancel: if the job changed since, exit 9 and nothing changes."""
        job = ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")
        seen = job.etag
        job = ledger.update(job.id, etag=job.etag, status="exporting")

        result = jobledger("cancel", "job-1", "--etag", seen, "--store", store)

        assert (ExitCode.CONFLICT, "exporting") == (result.exit_code, ledger.get("job-1").status)
        assert [
            (
                f"jobledger: job 'job-1' was changed by someone else: the command carried ETag "
                f"'{seen}' but the job's ETag is now '{job.etag}'; read the job again and retry "
                "with "
                f"the new ETag (`jobledger show job-1 --store {store}` reads it)"
            )
        ] == jobledger.lines(result.stderr)

    def test_a_job_that_is_over_is_a_conflict(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """A completed job cannot be canceled: one line says so, exit code 9."""
        job = ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")
        ledger.complete(job.id, etag=job.etag)

        result = jobledger("cancel", "job-1", "--store", store)

        assert (
            ExitCode.CONFLICT,
            [
                (
                    "jobledger: cannot cancel job 'job-1': it is completed, and a completed job "
                    "accepts "
                    f"no further changes; `jobledger show job-1 --store {store}` shows where it is"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    @pytest.mark.usefixtures("ledger")
    def test_an_unknown_id_is_not_found(self, jobledger: Jobledger, store: str) -> None:
        """An id the store does not know exits 7."""
        result = jobledger("cancel", "nope", "--store", store)

        assert ExitCode.NOT_FOUND == result.exit_code
