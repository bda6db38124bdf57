"""jobledger parked list and retry: the events a durable subscriber parked, at the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jobledger import DurableSubscriber, JobEvent

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

    from jobledger import Jobs


def park_first_event(ledger: Jobs) -> str:
    """Start a job and have a durable subscriber "mail" park its start; return the job id."""
    job = ledger.start(service="hr", entity="employee", type="sync")

    def refuse(_event: JobEvent) -> None:
        message = "smtp down \x1b[31m"
        raise ConnectionError(message)

    DurableSubscriber(ledger.repository, "mail", refuse, max_attempts=1).run_once()
    return job.id


class TestParkedCommands:
    """The parked group lists a subscriber's parked events and puts them back."""

    def test_list_shows_each_parked_event_safely(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Each parked event is one line: position, kind, job, attempts, error (escaped)."""
        job_id = park_first_event(ledger)
        listed = jobledger("parked", "list", "mail", "--store", store)
        assert 0 == listed.exit_code, listed.output
        assert (
            f"1: JobStarted of job {job_id}, 1 attempt: ConnectionError: smtp down \\x1b[31m\n"
            == listed.stdout
        )

    def test_list_as_json_carries_the_event_on_the_wire(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json gives position, attempts, error, retry and the event in the wire format."""
        job_id = park_first_event(ledger)
        listed = jobledger("parked", "list", "mail", "--store", store, "--json")
        (one,) = json.loads(listed.stdout)
        assert (1, 1, False, "JobStarted", job_id) == (
            one["Position"],
            one["Attempts"],
            one["Retry"],
            one["Event"]["MessageType"],
            one["Event"]["JobId"],
        )

    def test_retry_puts_the_events_back(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Retry marks the parked events for the subscriber's next batch and says how many."""
        park_first_event(ledger)
        retried = jobledger("parked", "retry", "mail", "--store", store)
        assert (0, "1 parked event put back for mail to retry.\n") == (
            retried.exit_code,
            retried.stdout,
        )
        assert [True] == [parked.retry for parked in ledger.parked_events("mail")]
        again = jobledger("parked", "retry", "mail", "--position", "1", "--store", store)
        assert "0 parked events put back for mail to retry.\n" == again.stdout

    def test_a_subscriber_with_nothing_parked_says_so(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Listing a name with no parked event says there is none."""
        park_first_event(ledger)
        listed = jobledger("parked", "list", "audit", "--store", store)
        assert "No event is parked for audit.\n" == listed.stdout
