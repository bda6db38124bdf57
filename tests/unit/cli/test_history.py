"""``jobledger history ID``: the update log, and a run's task launches by launch group."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jobledger import wire
from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

    from jobledger import Jobs


class TestHistory:
    """Reading how a job or run got where it is."""

    def test_a_jobs_log_lists_each_update(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """The start (row 0), then each update: number, kind, status, actor, merge patch."""
        job = ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")
        job = ledger.update(job.id, etag=job.etag, status="exporting", state_update={"done": 3})
        ledger.complete(job.id, etag=job.etag, state_update={"done": 9})

        result = jobledger("history", "job-1", "--store", store)

        printed = jobledger.lines(result.stdout)
        assert ExitCode.OK == result.exit_code
        assert printed[0].startswith("Job job-1: started ")
        assert printed[0].endswith(", 2 updates")
        assert [
            ("#", "kind", "status", "by"),
            ("0", "started", "started", "-"),
            ("1", "updated", "exporting", "-"),
            ("2", "completed", "completed", "-"),
        ] == [tuple(line.split()[:4]) for line in printed[1:]]
        assert (True, True) == (
            printed[3].endswith('{"done": 3}'),
            printed[4].endswith('{"done": 9}'),
        )

    def test_each_row_says_who_acted(self, jobledger: Jobledger, store: str, ledger: Jobs) -> None:
        """The by column holds the start's and each change's actor; --json has them too."""
        job = ledger.start(service="hr", entity="e", type="t", job_id="job-1", actor="hr-app")
        job = ledger.update(job.id, etag=job.etag, status="exporting", actor="alice")
        ledger.cancel(job.id, etag=job.etag)

        printed = jobledger.lines(jobledger("history", "job-1", "--store", store).stdout)
        document = json.loads(jobledger("history", "job-1", "--store", store, "--json").stdout)

        assert [("0", "hr-app"), ("1", "alice"), ("2", "-")] == [
            (line.split()[0], line.split()[3]) for line in printed[2:]
        ]
        assert ("hr-app", ["alice", None]) == (
            document["StartedBy"],
            [update["Actor"] for update in document["Updates"]],
        )

    def test_a_runs_launch_groups_show_each_launch_and_how_it_ended(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A blocked, then repaired run: the sync blocked in a group, repaired in another."""
        run_id = jobledger.invoke_blocked(store)
        jobledger("resume", run_id, "--repair", "--app", jobledger.app, "--store", store)

        result = jobledger("history", run_id, "--store", store, "--json")

        groups = json.loads(result.stdout)["LaunchGroups"]
        assert [
            (
                1,
                1,
                1,
                [("export_people", "completed", False), ("export_accounts", "completed", False)],
            ),
            (2, 2, 1, [("synchronize", "blocked", False)]),
            (3, 2, 2, [("synchronize", "completed", True)]),
            (4, 3, 2, [("provision", "completed", False)]),
        ] == [
            (
                group["Number"],
                group["Step"],
                group["Drive"],
                [(task["Task"], task["Status"], task["Repair"]) for task in group["Tasks"]],
            )
            for group in groups
        ]

    def test_each_launch_names_its_own_job_whose_history_is_its_log(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """A launch group's LaunchId is the launch's job: its history is the task's own log."""
        run_id = jobledger.invoke_blocked(store)
        groups = json.loads(jobledger("history", run_id, "--store", store, "--json").stdout)[
            "LaunchGroups"
        ]
        launch_id = groups[1]["Tasks"][0]["LaunchId"]

        result = jobledger("history", launch_id, "--store", store, "--json")

        assert (f"{run_id}/3", "synchronize", list(ledger.updates(launch_id))) == (
            launch_id,
            ledger.get(launch_id).display_name,
            [wire.decode_update(update) for update in json.loads(result.stdout)["Updates"]],
        )

    def test_the_plain_launch_groups_mark_the_repair(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """Off a terminal the launch groups are a table whose repaired launch says so."""
        run_id = jobledger.invoke_blocked(store)
        jobledger("resume", run_id, "--repair", "--app", jobledger.app, "--store", store)

        result = jobledger("history", run_id, "--store", store)

        printed = jobledger.lines(result.stdout)
        start = printed.index("Launch groups:")
        assert [
            ["group", "step", "drive", "launched", "tasks"],
            ["synchronize", "blocked"],
            ["synchronize", "completed", "(repair)"],
        ] == [
            printed[start + 1].split(),
            printed[start + 3].split()[5:],
            printed[start + 4].split()[5:],
        ]
        assert f"A launch's own log: jobledger history {run_id}/N --store {store}" == printed[-1]

    def test_json_holds_the_updates_in_the_wire_format(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json's Updates decode to the job's log; a job that is not a run has no LaunchGroups."""
        job = ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")
        ledger.update(job.id, etag=job.etag, status="exporting", state_update={"done": 3})

        document = json.loads(jobledger("history", "job-1", "--store", store, "--json").stdout)

        assert (list(ledger.updates("job-1")), "job-1", False) == (
            [wire.decode_update(update) for update in document["Updates"]],
            document["JobId"],
            "LaunchGroups" in document,
        )
