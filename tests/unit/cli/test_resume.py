"""``jobledger resume ID``: a blocked run driven on, with repair or a new force threshold."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from tests.unit.cli.conftest import RELEASE, STARTED, last_drive, nightly_definitions

from jobledger import Jobs
from jobledger.cli import ExitCode
from jobledger.cli._render import when
from jobledger.runner import Runner, load_run
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


@pytest.fixture
def blocked_run(jobledger: Jobledger, store: str) -> str:
    """Return the id of a run of ``nightly`` blocked at its synchronization (9 changes over 5)."""
    return jobledger.invoke_blocked(store)


class TestResume:
    """Resuming a run from another command than the one that launched it."""

    def test_repair_runs_the_repair_variant_and_the_rest_of_the_run(
        self, jobledger: Jobledger, store: str, blocked_run: str
    ) -> None:
        """--repair validates in place of the blocked task, then provisioning runs: exit 0."""
        result = jobledger(
            "resume", blocked_run, "--repair", "--app", jobledger.app, "--store", store
        )

        assert ExitCode.OK == result.exit_code
        assert [
            f"Resuming run {blocked_run} of nightly with repair",
            "step 2: launching synchronize",
            "  synchronize: completed (repair): validated",
            "step 3: launching provision",
            "  provision: completed: provisioned",
        ] == jobledger.lines(result.stdout)[:5]

    @pytest.mark.parametrize("flag", ["-f", "--force"])
    def test_a_new_force_threshold_lets_the_blocked_task_proceed(
        self, jobledger: Jobledger, store: str, ledger: Jobs, blocked_run: str, flag: str
    ) -> None:
        """-f hands the resumed run a threshold the changes do not cross: it completes."""
        result = jobledger(
            "resume", blocked_run, flag, "9", "--app", jobledger.app, "--store", store, "--json"
        )

        document = json.loads(result.stdout)
        assert (ExitCode.OK, "9 changes synchronized", 9) == (
            result.exit_code,
            jobledger.task(document, "synchronize")["Summary"],
            load_run(ledger, blocked_run).force,
        )

    def test_without_repair_or_force_the_run_blocks_again(
        self, jobledger: Jobledger, store: str, blocked_run: str
    ) -> None:
        """Resumed as it was, the synchronization meets the same threshold: exit 5 again."""
        result = jobledger("resume", blocked_run, "--app", jobledger.app, "--store", store)

        assert ExitCode.BLOCKED == result.exit_code

    def test_a_run_that_is_over_is_a_conflict(
        self, jobledger: Jobledger, store: str, blocked_run: str
    ) -> None:
        """Resuming a completed run changes nothing: one line says why, exit code 9."""
        jobledger("resume", blocked_run, "--repair", "--app", jobledger.app, "--store", store)

        result = jobledger("resume", blocked_run, "--app", jobledger.app, "--store", store)

        assert (
            ExitCode.CONFLICT,
            [
                (
                    f"jobledger: cannot resume run '{blocked_run}' (status 'completed'): the run "
                    "is "
                    f"over; `jobledger show {blocked_run} --store {store}` shows where it is"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    def test_a_job_that_is_not_a_run_is_not_found(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Only runs resume: another job's id exits 7, saying what the job is."""
        job = ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")

        result = jobledger("resume", job.id, "--app", jobledger.app, "--store", store)

        assert (
            ExitCode.NOT_FOUND,
            [
                (
                    "jobledger: no run with id 'job-1' (job 'job-1' is a hr/employee job, not a "
                    f"run) in the store SQLite {store}; `jobledger list --store {store}` lists its "
                    "latest jobs"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))

    def test_a_run_of_a_job_the_app_does_not_define_is_not_found(
        self, jobledger: Jobledger, store: str, blocked_run: str
    ) -> None:
        """The run's job must be in --app: with the demo's, one line says which to give."""
        result = jobledger("resume", blocked_run, "--store", store)

        assert (
            ExitCode.NOT_FOUND,
            [
                (
                    f"jobledger: run {blocked_run} is a run of job 'nightly', but there is no job "
                    "'nightly' in --app 'jobledger.demo:definitions' (it defines hr-nightly); "
                    "give the "
                    "--app (or JOBLEDGER_APP) that defines it"
                )
            ],
        ) == (result.exit_code, jobledger.lines(result.stderr))


class TestResumeActor:
    """``resume --actor`` and ``JOBLEDGER_ACTOR``: who the resume's changes name."""

    def test_actor_names_the_resumes_changes_and_its_drive(
        self, jobledger: Jobledger, store: str, ledger: Jobs, blocked_run: str
    ) -> None:
        """--actor is the actor of every change of the run from the claim on, and of its drive."""
        before = len(ledger.updates(blocked_run))

        result = jobledger(
            "resume",
            blocked_run,
            "--repair",
            "--actor",
            "bob",
            "--app",
            jobledger.app,
            "--store",
            store,
        )

        assert ExitCode.OK == result.exit_code
        assert {"bob"} == {update.actor for update in ledger.updates(blocked_run)[before:]}
        assert (2, "bob") == last_drive(ledger, blocked_run)

    def test_the_actor_may_come_from_the_environment(
        self, jobledger: Jobledger, store: str, ledger: Jobs, blocked_run: str
    ) -> None:
        """JOBLEDGER_ACTOR gives the resume's actor when --actor is not given."""
        result = jobledger(
            "resume",
            blocked_run,
            "--repair",
            "--app",
            jobledger.app,
            "--store",
            store,
            env={"JOBLEDGER_ACTOR": "ops"},
        )

        assert ExitCode.OK == result.exit_code
        assert (2, "ops") == last_drive(ledger, blocked_run)


class TestResumeAndLeases:
    """Who may resume a run: the lease its runner recorded decides."""

    def test_a_run_a_live_runner_holds_is_refused_naming_it_and_its_lease(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """Resuming a driven run exits 10 with one line naming the drive and its lease's end."""
        elsewhere = Jobs(repository=SQLiteRepository(store))
        runner = Runner(elsewhere, nightly_definitions(), poll_interval=0.05, lease=600)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "hold", run_id="run-1")
            assert STARTED.wait(timeout=30)
            lease = load_run(elsewhere, "run-1").state.lease  # type: ignore[union-attr]
            result = jobledger("resume", "run-1", "--app", jobledger.app, "--store", store)
            runner.request_cancel("run-1")
            running.result(timeout=30)

        assert lease is not None
        assert (ExitCode.BUSY, "") == (result.exit_code, result.stdout)
        assert [
            (
                f"jobledger: run run-1 is driven by another runner: drive {lease.owner} holds its "
                f"lease until {when(lease.expires_at)} and renews it while it lives; resume it "
                "after that only if that runner is gone, or cancel it: "
                f"`jobledger cancel run-1 --store {store}`"
            )
        ] == jobledger.lines(result.stderr)

    def test_a_run_its_runner_let_go_is_taken_over_at_once(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A run released by Runner.interrupt resumes at once: "Resuming" and then the rest."""
        elsewhere = Jobs(repository=SQLiteRepository(store))
        runner = Runner(elsewhere, nightly_definitions(), poll_interval=0.05, lease=600)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "hold", run_id="run-1")
            assert STARTED.wait(timeout=30)
            assert ("run-1",) == runner.interrupt("the test let it go")
            left = running.result(timeout=30)
        RELEASE.set()

        result = jobledger("resume", "run-1", "--app", jobledger.app, "--store", store)

        assert ("running", ExitCode.OK) == (left.status.value, result.exit_code)
        assert [
            "Resuming run run-1 of hold",
            "step 1: launching wait",
            "  wait: completed: taken over",
            "step 2: launching after",
            "  after: completed: 12 people exported",
        ] == jobledger.lines(result.stdout)[:5]

    def test_repair_without_a_repair_variant_is_a_usage_error(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """--repair of a run whose blocked task has no repair variant exits 2, before any claim."""
        invoked = jobledger("invoke", "-j", "unrepaired", "--app", jobledger.app, "--store", store)
        run_id = jobledger.run_id(invoked.stdout)

        result = jobledger("resume", run_id, "--repair", "--app", jobledger.app, "--store", store)

        assert (ExitCode.BLOCKED, ExitCode.USAGE, "") == (
            invoked.exit_code,
            result.exit_code,
            result.stdout,
        )
        assert [
            (
                f"jobledger: run {run_id} cannot be repaired: its blocked task(s) 'guard' have no "
                "repair variant; resume it without repair, with a new force threshold: "
                f"`jobledger resume {run_id} --force N --app {jobledger.app} --store {store}`"
            )
        ] == jobledger.lines(result.stderr)

    def test_a_refused_resume_prints_no_resuming_line(
        self, jobledger: Jobledger, store: str, blocked_run: str
    ) -> None:
        """A refused resume prints no "Resuming run" line: it comes only once the claim is in."""
        jobledger("cancel", blocked_run, "--store", store)

        result = jobledger("resume", blocked_run, "--app", jobledger.app, "--store", store)

        assert (ExitCode.CONFLICT, "") == (result.exit_code, result.stdout)
