"""``jobledger show ID``: a job's fields, a run's tasks, and the wire format with ``--json``."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from tests.unit.cli.conftest import STARTED, nightly_definitions

from jobledger import Jobs, Limits, wire
from jobledger.cli import ExitCode
from jobledger.cli._render import when
from jobledger.runner import JobDefinition, Runner, Task, TaskContext, load_run
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


def _done(_context: TaskContext) -> None:
    """A task that does nothing."""


class TestShow:
    """Reading one job or run."""

    def test_a_job_shows_every_field(self, jobledger: Jobledger, store: str, ledger: Jobs) -> None:
        """Id, service, entity, type, name, status, version, ETag, times, starter, input, state."""
        job = ledger.start(
            service="hr",
            entity="employee",
            type="sync",
            job_id="job-1",
            display_name="Nightly HR sync",
            input={"source": "hr"},
            state={"done": 0},
        )
        job = ledger.update(job.id, etag=job.etag, status="exporting", state_update={"done": 3})

        result = jobledger("show", "job-1", "--store", store)

        assert ExitCode.OK == result.exit_code
        assert [
            "id            job-1",
            "service       hr",
            "entity        employee",
            "type          sync",
            "display name  Nightly HR sync",
            "status        exporting  (phase active)",
            "version       2",
            f"etag          {job.etag}",
            f"created       {when(job.created_at)}",
            "started by    -",
            f"updated       {when(job.updated_at)}",
            'input         {"source": "hr"}',
            'state         {"done": 3}',
        ] == jobledger.lines(result.stdout)

    def test_a_job_started_by_someone_says_who(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """A job whose start named an actor shows it as started by, after created."""
        ledger.start(service="hr", entity="e", type="t", job_id="job-1", actor="scheduler")

        printed = jobledger.lines(jobledger("show", "job-1", "--store", store).stdout)

        labels = [line[:12].rstrip() for line in printed]
        created = labels.index("created")
        assert ("started by", "scheduler") == (labels[created + 1], printed[created + 1][12:])

    def test_a_run_shows_its_tasks_and_how_to_go_on(self, jobledger: Jobledger, store: str) -> None:
        """A blocked run lists each task's status by step, then what blocked and how to resume."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger("show", run_id, "--app", jobledger.app, "--store", store)

        printed = jobledger.lines(result.stdout)
        table = printed.index("step  task             status     time  detail")
        assert ["type          nightly", "status        blocked  (phase active)"] == [
            line for line in printed if line.startswith(("type ", "status "))
        ]
        assert printed[table + 3].startswith("2     synchronize      blocked ")
        assert [
            "3     provision        pending",
            "",
            f"Run {run_id} is blocked at step 2:",
            "  synchronize: 9 changes cross the threshold of 5",
            "    changes: 9",
            "    threshold: 5",
            "Resume it with repair (the blocked task's repair variant runs in its place):",
            f"    jobledger resume {run_id} --repair --app {jobledger.app} --store {store}",
        ] == printed[table + 4 : table + 12]

    def test_a_run_shows_its_progress_and_its_drive(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Progress (done of all, by status), the step launched last and the drive that ran it."""
        run_id = jobledger.invoke_blocked(store)
        drive = load_run(ledger, run_id).state.drive  # type: ignore[union-attr]
        assert drive is not None

        result = jobledger("show", run_id, "--app", jobledger.app, "--store", store)

        assert [
            "progress      2/4 tasks done (1 blocked, 2 completed, 1 pending)",
            "step          2 (launched last)",
            f"drive         1 (invoke), {drive.owner}, claimed {when(drive.claimed_at)}",
        ] == [
            line
            for line in jobledger.lines(result.stdout)
            if line.startswith(("progress ", "step          ", "drive ", "lease "))
        ]

    def test_a_running_run_shows_its_lease(self, jobledger: Jobledger, store: str) -> None:
        """A driven run names the drive that holds its lease and when the lease ends."""
        elsewhere = Jobs(repository=SQLiteRepository(store))
        runner = Runner(elsewhere, nightly_definitions(), poll_interval=0.05, lease=600)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "hold", run_id="run-1")
            assert STARTED.wait(timeout=30)
            result = jobledger("show", "run-1", "--app", jobledger.app, "--store", store)
            lease = load_run(elsewhere, "run-1").state.lease  # type: ignore[union-attr]
            runner.request_cancel("run-1")
            running.result(timeout=30)

        assert lease is not None
        printed = jobledger.lines(result.stdout)
        assert [f"lease         held by {lease.owner} until "] == [
            line[: len(f"lease         held by {lease.owner} until ")]
            for line in printed
            if line.startswith("lease ")
        ]
        assert printed[-2].startswith("Run run-1 is running; drive 1 holds its lease until ")

    def test_without_the_runs_app_the_tasks_not_launched_are_counted(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """With an --app lacking the run's job, the tasks launched are listed, the rest counted."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger("show", run_id, "--store", store)

        printed = jobledger.lines(result.stdout)
        assert (
            "(and 1 task(s) not launched yet: give the --app that defines job 'nightly' to list "
            "them)"
        ) in printed
        assert not any(line.startswith("3     provision") for line in printed)

    def test_a_failed_task_shows_its_error_and_traceback(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A failed run's text shows each failed task's error and the traceback it raised."""
        invoked = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"provisioning_fails": true}',
            "--app",
            jobledger.app,
            "--store",
            store,
        )
        run_id = jobledger.run_id(invoked.stdout)

        result = jobledger("show", run_id, "--app", jobledger.app, "--store", store)

        printed = jobledger.lines(result.stdout)
        start = printed.index("Errors:")
        assert [
            "provision failed:",
            "  RuntimeError: the directory refused the changes",
            "    Traceback (most recent call last):",
        ] == printed[start + 1 : start + 4]
        assert "    RuntimeError: the directory refused the changes" in printed[start:]

    def test_a_launch_shows_its_task_and_its_error(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """A launch's own job shows which task of which run it ran, and its error's traceback."""
        invoked = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"provisioning_fails": true}',
            "--app",
            jobledger.app,
            "--store",
            store,
        )
        run_id = jobledger.run_id(invoked.stdout)
        launches = load_run(ledger, run_id).state.launches  # type: ignore[union-attr]

        result = jobledger("show", f"{run_id}/{launches}", "--store", store)

        printed = jobledger.lines(result.stdout)
        start = printed.index(
            f"Launch {launches} of run {run_id}: task provision (step 3, attempt 1, drive 1)"
        )
        assert [
            "  failed: RuntimeError: the directory refused the changes",
            "  RuntimeError: the directory refused the changes",
            "    Traceback (most recent call last):",
        ] == printed[start + 1 : start + 4]

    def test_a_run_the_ledger_refused_says_why_it_failed(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A run whose launch outgrew its ledger's limits shows the failure the runner recorded."""
        repository = SQLiteRepository(store)
        # Room for the run's job, not for the launch of its task (which names run and task).
        tight = Jobs(repository=repository, limits=Limits(max_bytes=400))
        definition = JobDefinition("long", [Task("t" * 200, _done)])
        run_id = "r" * 150
        with Runner(tight, [definition]) as runner:
            failed = runner.invoke("long", run_id=run_id)
        repository.close()
        assert failed.failure is not None

        result = jobledger("show", run_id, "--store", store)

        assert [
            f"Run {run_id} failed.",
            f"  {failed.failure}",
            f"Its log: jobledger history {run_id} --store {store}",
        ] == jobledger.lines(result.stdout)[-3:]

    def test_json_of_a_run_holds_its_job_progress_and_tasks(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json of a run: Run (its job on the wire), Status, Progress and each task's outcome."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger("show", run_id, "--app", jobledger.app, "--store", store, "--json")

        document = json.loads(result.stdout)
        assert (ledger.get(run_id), "blocked", {"Done": 2, "Total": 4}) == (
            wire.decode_job(document["Run"]),
            document["Status"],
            document["Progress"],
        )
        assert {
            "export_people": "completed",
            "export_accounts": "completed",
            "synchronize": "blocked",
            "provision": "pending",
        } == jobledger.statuses(document)
        assert {
            "Reason": "9 changes cross the threshold of 5",
            "Details": {"changes": 9, "threshold": 5},
        } == (jobledger.task(document, "synchronize")["Blocked"])

    def test_json_is_the_job_in_the_wire_format(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json prints the job as the wire codec writes it; decoding it gives the stored job."""
        ledger.start(
            service="hr", entity="employee", type="sync", job_id="job-1", input={"name": "Zoë"}
        )

        result = jobledger("show", "job-1", "--store", store, "--json")

        assert ledger.get("job-1") == wire.decode_job(result.stdout)

    @pytest.mark.usefixtures("ledger")
    def test_an_unknown_id_is_not_found_in_one_line(self, jobledger: Jobledger, store: str) -> None:
        """An unknown id exits 7 with one line that says what to do, and no traceback."""
        result = jobledger("show", "nope", "--store", store)

        assert (
            ExitCode.NOT_FOUND,
            "",
            [
                (
                    f"jobledger: no job with id 'nope' in the store SQLite {store}; "
                    f"`jobledger list --store {store}` lists its latest jobs"
                )
            ],
        ) == (result.exit_code, result.stdout, jobledger.lines(result.stderr))
