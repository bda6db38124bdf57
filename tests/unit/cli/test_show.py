"""``jobledger show ID``: a job's fields, a run's tasks, and the wire format with ``--json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs, Limits, wire
from jobledger.cli import ExitCode
from jobledger.cli._render import when
from jobledger.runner import JobDefinition, Runner, Task, TaskContext
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


def _done(_context: TaskContext) -> None:
    """A task that does nothing."""


class TestShow:
    """Reading one job or run."""

    def test_a_job_shows_every_field(self, jobledger: Jobledger, store: str, ledger: Jobs) -> None:
        """Id, service, entity, type, name, status and phase, version, ETag, times, input, state."""
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
            f"updated       {when(job.updated_at)}",
            'input         {"source": "hr"}',
            'state         {"done": 3}',
        ] == jobledger.lines(result.stdout)

    def test_a_run_shows_its_tasks_and_how_to_go_on(self, jobledger: Jobledger, store: str) -> None:
        """A blocked run lists each task's status by step, then what blocked and how to resume."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger("show", run_id, "--store", store)

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
            f"    jobledger resume {run_id} --repair --store {store}",
        ] == printed[table + 4 : table + 12]

    def test_a_run_the_ledger_refused_says_why_it_failed(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A run whose state outgrew its ledger's limits shows the failure the runner recorded."""
        repository = SQLiteRepository(store)
        tight = Jobs(repository=repository, limits=Limits(max_bytes=1000))
        definition = JobDefinition("wide", [Task(f"task-{n}", _done) for n in range(8)])
        with Runner(tight, [definition]) as runner:
            failed = runner.invoke("wide", run_id="run-1")
        repository.close()
        assert failed.failure is not None

        result = jobledger("show", "run-1", "--store", store)

        assert [
            "Run run-1 failed.",
            f"  {failed.failure}",
            f"Its log: jobledger history run-1 --store {store}",
        ] == jobledger.lines(result.stdout)[-3:]

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
