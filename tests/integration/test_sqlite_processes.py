"""Processes sharing one SQLite file: ETag races, a subscriber during races, a killed subscriber."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from jobledger.sqlite import SQLiteRepository
from jobledger.testing.contract import (
    kill_and_resume_subscriber,
    race_processes,
    watch_feed_while_writers_race,
)

if TYPE_CHECKING:
    from pathlib import Path


class TestSQLiteAcrossProcesses:
    """Several processes cooperate safely on one SQLite file."""

    def test_four_processes_racing_on_shared_etags_lose_and_double_nothing(
        self, tmp_path: Path
    ) -> None:
        """Four processes racing on two jobs: one winner a round, each acknowledged update once."""
        race = race_processes(functools.partial(SQLiteRepository, tmp_path / "jobs.db"))

        race.check()
        assert [1] * 12 == list(race.winners)
        assert race.conflicts >= 12 * 3

    def test_four_processes_racing_batches_on_shared_etags_save_all_or_nothing(
        self, tmp_path: Path
    ) -> None:
        """Four processes racing batches on two jobs: one winner a round, all or nothing of each."""
        race = race_processes(
            functools.partial(SQLiteRepository, tmp_path / "jobs.db"), batches=True
        )

        race.check()
        assert [1] * 12 == list(race.winners)
        assert race.conflicts >= 12 * 3

    def test_a_durable_subscriber_sees_every_event_in_order_while_two_writers_race(
        self, tmp_path: Path
    ) -> None:
        """A subscriber reading during two writers' race receives the whole feed, in order, once."""
        watch = watch_feed_while_writers_race(
            functools.partial(SQLiteRepository, tmp_path / "jobs.db")
        )

        watch.check()
        assert 2 + 2 * 60 == len(watch.feed)

    def test_a_subscriber_killed_mid_batch_resumes_from_its_checkpoint(
        self, tmp_path: Path
    ) -> None:
        """A subscriber SIGKILLed mid-batch and restarted delivers the rest, missing nothing."""
        restart = kill_and_resume_subscriber(
            functools.partial(SQLiteRepository, tmp_path / "jobs.db"),
            tmp_path / "handled.txt",
            events=60,
            kill_after=25,
            batch_size=10,
        )

        restart.check()
        assert 25 == len(restart.before_kill)
        assert restart.feed[20:] == restart.after_restart
