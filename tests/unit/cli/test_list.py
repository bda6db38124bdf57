"""``jobledger list``: jobs newest first, filtered, a page at a time with a cursor."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from jobledger import wire
from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

    from jobledger import Jobs


@pytest.fixture
def five_jobs(ledger: Jobs) -> None:
    """Start job-0 to job-4 (hr/employee/sync and billing/invoice/export), complete job-1."""
    for number in range(5):
        service, entity, kind = (
            ("hr", "employee", "sync") if number % 2 == 0 else ("billing", "invoice", "export")
        )
        job = ledger.start(service=service, entity=entity, type=kind, job_id=f"job-{number}")
        if number == 1:
            ledger.complete(job.id, etag=job.etag)


class TestList:
    """Listing the ledger's jobs."""

    @pytest.mark.usefixtures("five_jobs")
    def test_jobs_are_listed_newest_first(self, jobledger: Jobledger, store: str) -> None:
        """Each job on one line: id, service/entity/type, status, last change, name."""
        result = jobledger("list", "--store", store)

        assert ExitCode.OK == result.exit_code
        assert [
            ["id", "service/entity/type", "status", "updated", "name"],
            ["job-4", "hr/employee/sync", "started"],
            ["job-3", "billing/invoice/export", "started"],
            ["job-2", "hr/employee/sync", "started"],
            ["job-1", "billing/invoice/export", "completed"],
            ["job-0", "hr/employee/sync", "started"],
        ] == [
            line.split()[:3] if index else line.split()
            for index, line in enumerate(jobledger.lines(result.stdout))
        ]

    @pytest.mark.usefixtures("five_jobs")
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (("--service", "hr"), ["job-4", "job-2", "job-0"]),
            (("--entity", "invoice"), ["job-3", "job-1"]),
            (("--type", "export", "--type", "sync"), ["job-4", "job-3", "job-2", "job-1", "job-0"]),
            (("--status", "completed"), ["job-1"]),
            (("--phase", "active", "--service", "billing"), ["job-3"]),
        ],
    )
    def test_filters_narrow_the_listing(
        self, jobledger: Jobledger, store: str, filters: tuple[str, ...], expected: list[str]
    ) -> None:
        """Service, entity, type, status and phase filter; a filter given twice matches either."""
        result = jobledger("list", *filters, "--store", store, "--json")

        assert expected == [job["JobId"] for job in json.loads(result.stdout)["Jobs"]]

    @pytest.mark.usefixtures("five_jobs")
    def test_the_next_cursor_is_printed_and_gives_the_next_page(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """With more jobs than --limit, the next cursor and the command for the next page print."""
        first = jobledger("list", "--service", "hr", "--limit", "2", "--store", store)
        cursor = jobledger.lines(first.stdout)[-2].removeprefix("next cursor: ")

        second = jobledger(
            "list",
            "--service",
            "hr",
            "--limit",
            "2",
            "--cursor",
            cursor,
            "--store",
            store,
            "--json",
        )

        assert (
            f"next page: jobledger list --service hr --limit 2 --cursor {cursor} --store {store}"
        ) == jobledger.lines(first.stdout)[-1]
        assert (["job-0"], None) == (
            [job["JobId"] for job in json.loads(second.stdout)["Jobs"]],
            json.loads(second.stdout)["NextCursor"],
        )

    @pytest.mark.usefixtures("five_jobs")
    def test_json_holds_the_jobs_in_the_wire_format_and_the_next_cursor(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json's Jobs decode to the stored jobs; NextCursor is the next page's cursor."""
        document = json.loads(jobledger("list", "--limit", "3", "--store", store, "--json").stdout)

        page = ledger.find(limit=3)
        assert (list(page.jobs), page.next_cursor) == (
            [wire.decode_job(job) for job in document["Jobs"]],
            document["NextCursor"],
        )

    @pytest.mark.usefixtures("ledger")
    def test_an_empty_ledger_says_so(self, jobledger: Jobledger, store: str) -> None:
        """With no job to list, one line says so."""
        result = jobledger("list", "--store", store)

        assert (ExitCode.OK, ["No jobs."]) == (result.exit_code, jobledger.lines(result.stdout))

    @pytest.mark.usefixtures("ledger")
    def test_a_cursor_the_ledger_did_not_make_is_a_usage_error(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A made-up cursor exits 2 with one line."""
        result = jobledger("list", "--cursor", "not-a-cursor", "--store", store)

        assert (
            ExitCode.USAGE,
            (
                "Error: Invalid value for --cursor: 'not-a-cursor' is not a cursor this ledger "
                "made; give the next cursor that `jobledger list` printed"
            ),
        ) == (result.exit_code, jobledger.lines(result.stderr)[-1])


class TestListRuns:
    """--runs: the runs, not their task launches."""

    def test_runs_lists_only_the_runs(self, jobledger: Jobledger, store: str, ledger: Jobs) -> None:
        """A run's launches are jobs too; --runs leaves them (and other jobs) out."""
        run_id = jobledger.invoke_blocked(store)
        ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")

        result = jobledger("list", "--runs", "--store", store, "--json")

        assert [run_id] == [job["JobId"] for job in json.loads(result.stdout)["Jobs"]]

    def test_runs_with_a_service_is_a_usage_error(self, jobledger: Jobledger, store: str) -> None:
        """--runs names the service and entity itself: giving either too exits 2."""
        result = jobledger("list", "--runs", "--service", "hr", "--store", store)

        assert ExitCode.USAGE == result.exit_code
