"""jobledger purge: ended jobs older than a cut go, held jobs stay, a dry run deletes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import JobNotFoundError

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger

    from jobledger import Jobs


class TestPurgeCommand:
    """The purge command deletes ended jobs by age, and says how many."""

    def test_a_dry_run_counts_and_deletes_nothing(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--dry-run says how many jobs would go; they are all still there."""
        job = ledger.start(service="hr", entity="employee", type="sync")
        job = ledger.complete(job.id, etag=job.etag)
        ran = jobledger("purge", "--older-than", "0s", "--dry-run", "--store", store)
        assert 0 == ran.exit_code, ran.output
        assert ran.stdout.startswith("Would purge 1 job that ended before ")
        assert job == ledger.get(job.id)

    def test_ended_jobs_go_and_held_and_active_ones_stay(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """Ended jobs older than the cut are purged; a held job and an active one remain."""
        ended = ledger.start(service="hr", entity="employee", type="sync")
        ended = ledger.fail(ended.id, etag=ended.etag)
        held = ledger.start(service="hr", entity="employee", type="sync")
        held = ledger.complete(held.id, etag=held.etag)
        ledger.hold(held.id, reason="audit")
        active = ledger.start(service="hr", entity="employee", type="sync")
        ran = jobledger("purge", "--older-than", "0s", "--store", store)
        assert ran.stdout.startswith("Purged 1 job that ended before ")
        with pytest.raises(JobNotFoundError):
            ledger.get(ended.id)
        assert (held, active) == (ledger.get(held.id), ledger.get(active.id))

    def test_a_recent_end_is_not_old_enough(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """A job that ended a moment ago is younger than 30 days: it stays."""
        job = ledger.start(service="hr", entity="employee", type="sync")
        ledger.complete(job.id, etag=job.etag)
        ran = jobledger("purge", "--older-than", "30d", "--store", store)
        assert ran.stdout.startswith("Purged 0 jobs that ended before ")

    @pytest.mark.parametrize("age", ["30", "d", "1y", "-3d", "1.5h"])
    def test_an_age_without_a_unit_or_number_is_a_usage_error(
        self, jobledger: Jobledger, store: str, age: str
    ) -> None:
        """--older-than takes a whole number and one of s, m, h, d, w."""
        ran = jobledger("purge", "--older-than", age, "--store", store)
        assert 2 == ran.exit_code
        assert "is not an age like 30d" in ran.output
