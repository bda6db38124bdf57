"""Real thread races on the in-memory backend: ETags, starts, request ids and the wildcard."""

from __future__ import annotations

from jobledger import InMemoryRepository
from jobledger.testing.races import (
    race_request_twins,
    race_starts,
    race_updates,
    race_wildcard_updates,
)


class TestUpdateRace:
    """ETag-guarded updates raced by eight threads over three jobs."""

    def test_one_writer_wins_per_etag_and_no_update_is_lost(self) -> None:
        """Each ETag admits one update, and each acknowledged update is logged exactly once."""
        race = race_updates(InMemoryRepository, threads=8, jobs=3, attempts_per_thread=300)
        assert 2400 == race.attempts
        assert 2400 == race.acknowledged + race.conflicts
        assert race.interleaved_conflicts > 0
        assert race.acknowledged > 0


class TestStartRace:
    """Starts of one job id raced by eight threads."""

    def test_exactly_one_start_wins_each_job_id(self) -> None:
        """Of eight starts of one job id, one succeeds and seven get JobAlreadyExistsError."""
        race = race_starts(InMemoryRepository, threads=8, rounds=20)
        assert 20 == race.started
        assert 140 == race.refused


class TestRequestTwinRace:
    """One command with one request id, sent by eight threads at once."""

    def test_twin_starts_get_the_same_job_written_once(self) -> None:
        """Twin starts without a job id all get the one job that was written."""
        race = race_request_twins(InMemoryRepository, kind="start", threads=8, rounds=5)
        assert 40 == race.answered
        assert 40 == race.missed_records

    def test_twin_starts_with_a_job_id_get_the_same_job_written_once(self) -> None:
        """Twin starts with their own job id all get the one job that was written."""
        race = race_request_twins(InMemoryRepository, kind="start with job id", rounds=5)
        assert 40 == race.answered
        assert 40 == race.missed_records

    def test_twin_updates_get_the_same_job_written_once(self) -> None:
        """Twin updates with the same ETag all get the one update that was written."""
        race = race_request_twins(InMemoryRepository, kind="update", rounds=5)
        assert 40 == race.answered
        assert 40 == race.missed_records


class TestWildcardRace:
    """Updates with the wildcard ETag raced by eight threads on one job."""

    def test_every_wildcard_update_succeeds_and_none_is_lost(self) -> None:
        """Eight threads' wildcard updates all succeed, each logged once, after retried saves."""
        race = race_wildcard_updates(InMemoryRepository, threads=8, updates_per_thread=50)
        assert 400 == race.acknowledged
        assert race.refused_saves > 0
