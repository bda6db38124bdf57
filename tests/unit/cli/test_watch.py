"""``jobledger watch``: the ledger's events as they are committed, filtered like ``list``."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import pytest

from jobledger import Jobs, wire
from jobledger.cli import ExitCode
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


@pytest.fixture
def two_jobs(ledger: Jobs) -> None:
    """job-1 (hr/employee/sync) started, updated and completed; job-2 (billing) started."""
    job = ledger.start(service="hr", entity="employee", type="sync", job_id="job-1")
    job = ledger.update(job.id, etag=job.etag, status="exporting", state_update={"done": 3})
    ledger.complete(job.id, etag=job.etag)
    ledger.start(service="billing", entity="invoice", type="export", job_id="job-2")


class TestWatch:
    """Following the event feed."""

    @pytest.mark.usefixtures("two_jobs")
    def test_from_start_replays_the_feed_one_line_per_event(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """Each event: feed position, kind, job, service/entity/type, status, version, patch."""
        result = jobledger("watch", "--from-start", "--timeout", "0", "--store", store)

        assert ExitCode.OK == result.exit_code
        assert [
            ["#1", "started", "job-1", "hr/employee/sync", "started", "v1"],
            ["#2", "updated", "job-1", "hr/employee/sync", "exporting", "v2", '{"done":', "3}"],
            ["#3", "completed", "job-1", "hr/employee/sync", "completed", "v3"],
            ["#4", "started", "job-2", "billing/invoice/export", "started", "v1"],
        ] == [line.split()[:1] + line.split()[3:] for line in jobledger.lines(result.stdout)]
        assert "Watching the events after #0 (Ctrl-C stops)." in result.stderr

    def test_an_event_with_an_actor_says_who(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """An event whose change named an actor ends its line with by ACTOR."""
        job = ledger.start(service="hr", entity="e", type="t", job_id="job-1", actor="ops")
        ledger.cancel(job.id, etag=job.etag)

        result = jobledger("watch", "--from-start", "--timeout", "0", "--store", store)

        assert [["v1", "by", "ops"], ["v2"]] == [
            line.split()[7:] for line in jobledger.lines(result.stdout)
        ]

    @pytest.mark.usefixtures("two_jobs")
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (("--service", "billing"), [4]),
            (("--type", "sync"), [1, 2, 3]),
            (("--event", "updated", "--event", "completed"), [2, 3]),
            (("--status", "exporting"), [2]),
            (("--phase", "completed"), [3]),
            (("--after", "2"), [3, 4]),
            (("--max-events", "2"), [1, 2]),
        ],
    )
    def test_filters_and_limits_choose_the_events(
        self, jobledger: Jobledger, store: str, filters: tuple[str, ...], expected: list[int]
    ) -> None:
        """Filters of list, --event, --after and --max-events pick the events shown."""
        result = jobledger(
            "watch", "--from-start", *filters, "--timeout", "0", "--store", store, "--json"
        )

        assert expected == [json.loads(line)["Position"] for line in jobledger.lines(result.stdout)]

    @pytest.mark.usefixtures("two_jobs")
    def test_json_lines_hold_each_event_in_the_wire_format(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json prints one object per line, whose Event decodes to the feed's event."""
        result = jobledger("watch", "--from-start", "--timeout", "0", "--store", store, "--json")

        assert [entry.event for entry in ledger.repository.read_feed()] == [
            wire.decode_event(json.loads(line)["Event"]) for line in result.stdout.splitlines()
        ]

    @pytest.mark.usefixtures("two_jobs")
    def test_by_default_it_starts_after_the_events_already_committed(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """Without --from-start or --after, the events already in the feed are not shown."""
        result = jobledger("watch", "--timeout", "0", "--store", store)

        assert (ExitCode.OK, "") == (result.exit_code, result.stdout)
        assert "Watching the events after #4 (Ctrl-C stops)." in result.stderr

    @pytest.mark.usefixtures("two_jobs")
    def test_it_waits_for_events_committed_elsewhere_while_it_watches(
        self, jobledger: Jobledger, store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Caught up with the feed, it waits, and shows the next event another ledger commits."""
        caught_up = threading.Event()
        wait_for_feed = SQLiteRepository.wait_for_feed

        def waiting(repository: SQLiteRepository, after: int, timeout: float) -> bool:
            caught_up.set()
            return wait_for_feed(repository, after, timeout)

        monkeypatch.setattr(SQLiteRepository, "wait_for_feed", waiting)
        printed: list[str] = []

        def watch() -> None:
            result = jobledger(
                "watch",
                "--from-start",
                "--max-events",
                "5",
                "--timeout",
                "60",
                "--store",
                store,
                "--json",
            )
            printed.append(result.stdout)

        watcher = threading.Thread(target=watch)
        watcher.start()
        assert caught_up.wait(timeout=60)
        elsewhere = Jobs(repository=SQLiteRepository(store))
        elsewhere.start(service="hr", entity="employee", type="sync", job_id="job-3")
        watcher.join(timeout=60)

        assert (5, "job-3") == (
            len(printed[0].splitlines()),
            json.loads(printed[0].splitlines()[-1])["Event"]["JobId"],
        )


class TestWatchARun:
    """--run: a run's events and its task launches' together."""

    def test_run_shows_the_events_of_the_run_and_of_its_launches_only(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """With --run ID, every event shown is of ID or of a launch ID/N, and both kinds come."""
        run_id = jobledger.invoke_blocked(store)
        ledger.start(service="hr", entity="employee", type="sync", job_id=f"{run_id}-other")

        result = jobledger(
            "watch", "--from-start", "--run", run_id, "--timeout", "0", "--store", store, "--json"
        )

        shown = [json.loads(line)["Event"] for line in result.stdout.splitlines()]
        assert (True, {"job", "task"}) == (
            all(
                event["JobId"] == run_id or event["JobId"].startswith(f"{run_id}/")
                for event in shown
            ),
            {event["Entity"] for event in shown},
        )
