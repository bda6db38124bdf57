"""``jobledger resume ID``: a blocked run driven on, with repair or a new force threshold."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

    from jobledger import Jobs


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
        self, jobledger: Jobledger, store: str, blocked_run: str, flag: str
    ) -> None:
        """-f hands the resumed run a threshold the changes do not cross: it completes."""
        result = jobledger(
            "resume", blocked_run, flag, "9", "--app", jobledger.app, "--store", store, "--json"
        )

        document = json.loads(result.stdout)
        assert (ExitCode.OK, "9 changes synchronized", 9) == (
            result.exit_code,
            document["State"]["tasks"]["synchronize"]["summary"],
            document["State"]["force"],
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
