"""SQLiteRepository: its schema, the files it refuses, durability, error translation, feed order."""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobledger import (
    ConcurrencyError,
    ForeignDatabaseError,
    JobAlreadyExistsError,
    Jobs,
    JobStarted,
    ParkedEvent,
    RequestIdConflictError,
    SchemaUpgradeError,
    SchemaVersionError,
    StartJob,
    StorageError,
    StorageTimeoutError,
    UpdateJob,
)
from jobledger._adapters.sqlite import write_change
from jobledger._core.decide import Change, decide
from jobledger._core.jsondoc import Limits
from jobledger.sqlite import APPLICATION_ID, SCHEMA_VERSION, Durability, SQLiteRepository

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jobledger import Job

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _start(job_id: str, *, request_id: str | None = None) -> Change:
    ids = iter([f"{job_id}-etag", f"{job_id}-event"])
    return decide(
        None,
        StartJob(
            service="hr", entity="employee", type="sync", job_id=job_id, request_id=request_id
        ),
        now=NOW,
        new_id=lambda: next(ids),
        limits=Limits(),
    )


def _update(job: Job, status: str, *, request_id: str | None = None) -> Change:
    ids = iter([f"{job.id}-{status}-etag", f"{job.id}-{status}-event"])
    return decide(
        job,
        UpdateJob(job_id=job.id, etag=job.etag, status=status, request_id=request_id),
        now=NOW,
        new_id=lambda: next(ids),
        limits=Limits(),
    )


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the test's database file goes."""
    return tmp_path / "jobs.db"


@pytest.fixture
def repository(path: Path) -> Iterator[SQLiteRepository]:
    """A repository in a new file."""
    with SQLiteRepository(path) as repository:
        yield repository


class TestSchema:
    """The schema is created on first use, marked and versioned, and kept on reopening."""

    @pytest.mark.usefixtures("repository")
    def test_a_new_file_gets_the_marked_and_versioned_schema(self, path: Path) -> None:
        """A new file holds the eight tables, jobledger's application id and schema version 1."""
        conn = sqlite3.connect(path)
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        conn.close()

        assert {
            "jobs",
            "updates",
            "feed",
            "requests",
            "checkpoints",
            "parked",
            "consumers",
            "holds",
        } == tables
        assert (APPLICATION_ID, 2) == (
            _pragma(path, "application_id"),
            _pragma(path, "user_version"),
        )
        assert 2 == SCHEMA_VERSION
        assert "wal" == _pragma(path, "journal_mode")

    def test_reopening_keeps_every_job(self, path: Path) -> None:
        """A job saved through one repository is there when the file is opened again."""
        with SQLiteRepository(path) as first:
            job = Jobs(first).start(service="hr", entity="employee", type="sync")

        with SQLiteRepository(path) as second:
            assert job == second.get(job.id)
            assert 1 == second.feed_head()

    def test_threads_opening_a_new_file_at_once_create_one_schema(self, path: Path) -> None:
        """Repositories opened on one new file by racing threads all work on the same schema."""
        barrier = threading.Barrier(6)
        opened: list[SQLiteRepository] = []
        errors: list[BaseException] = []

        def open_it() -> None:
            barrier.wait()
            try:
                opened.append(SQLiteRepository(path))
            except BaseException as err:  # noqa: BLE001  (reported to the test thread)
                errors.append(err)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        Jobs(opened[0]).start(service="hr", entity="employee", type="sync")

        assert [] == errors
        assert [1] * 6 == [repository.feed_head() for repository in opened]

    def test_a_path_that_names_no_file_is_refused(self) -> None:
        """An in-memory or URI path is refused with ValueError pointing to InMemoryRepository."""
        with pytest.raises(ValueError, match="InMemoryRepository"):
            SQLiteRepository(":memory:")


def _as_version_1(path: Path) -> None:
    """Turn the file at ``path`` back into schema version 1: no actor columns or keys."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE jobs DROP COLUMN started_by")
        conn.execute("ALTER TABLE updates DROP COLUMN actor")
        conn.execute("ALTER TABLE feed DROP COLUMN actor")
        # Request records of version 1 keep a job document without the key.
        conn.execute("UPDATE requests SET job = json_remove(job, '$.started_by')")
        conn.execute("PRAGMA user_version = 1")
    finally:
        conn.close()


class TestUpgrade:
    """A file of schema version 1 is upgraded when opened; its old rows name no actor."""

    def test_a_version_1_file_is_upgraded_and_its_rows_have_no_actor(self, path: Path) -> None:
        """Jobs, updates, events and request records written at version 1 read actor None."""
        with SQLiteRepository(path) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="e", type="t", request_id="r-1")
            job = jobs.update(job.id, etag=job.etag, status="exporting")
        _as_version_1(path)
        assert 1 == _pragma(path, "user_version")

        with SQLiteRepository(path) as repository:
            jobs = Jobs(repository)
            upgraded = jobs.get(job.id)
            updates = jobs.updates(job.id)
            events = [entry.event for entry in repository.read_feed()]
            retried = jobs.start(service="hr", entity="e", type="t", request_id="r-1")
            jobs.cancel(job.id, etag=job.etag, actor="alice")
            actors = [update.actor for update in jobs.updates(job.id)]

        assert 2 == _pragma(path, "user_version")
        assert (None, [None], [None, None]) == (
            upgraded.started_by,
            [update.actor for update in updates],
            [event.actor for event in events],
        )
        assert (job.id, None) == (retried.id, retried.started_by)
        assert [None, "alice"] == actors

    def test_a_request_of_version_1_retried_naming_an_actor_is_answered(self, path: Path) -> None:
        """A version 1 request record answers its retry with an actor; another command conflicts."""
        with SQLiteRepository(path) as repository:
            job = Jobs(repository).start(service="hr", entity="e", type="t", request_id="r-1")
        _as_version_1(path)

        with SQLiteRepository(path) as repository:
            jobs = Jobs(repository)
            retried = jobs.start(service="hr", entity="e", type="t", request_id="r-1", actor="a")
            with pytest.raises(RequestIdConflictError):
                jobs.start(service="hr", entity="e", type="u", request_id="r-1", actor="a")
            head = repository.feed_head()

        assert (job.id, job.etag, 1) == (retried.id, retried.etag, head)

    def test_a_version_1_file_opened_read_only_raises_schema_upgrade_error(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A version 1 file that cannot be written raises SchemaUpgradeError and stays version 1."""
        SQLiteRepository(path).close()
        _as_version_1(path)
        connect = sqlite3.connect

        def read_only(database: str, **kwargs: Any) -> sqlite3.Connection:  # noqa: ANN401
            opened: sqlite3.Connection = connect(
                f"{Path(database).resolve().as_uri()}?mode=ro", uri=True, **kwargs
            )
            return opened

        monkeypatch.setattr(sqlite3, "connect", read_only)

        with pytest.raises(SchemaUpgradeError) as raised:
            SQLiteRepository(path)

        monkeypatch.undo()
        assert (str(path), 1, 2) == (
            raised.value.location,
            raised.value.found,
            raised.value.supported,
        )
        assert "open it once with write access" in str(raised.value)
        assert 1 == _pragma(path, "user_version")

    def test_an_upgraded_file_keeps_actors_of_new_changes(self, path: Path) -> None:
        """After the upgrade, a change's actor is stored and read back."""
        SQLiteRepository(path).close()
        _as_version_1(path)

        with SQLiteRepository(path) as repository:
            jobs = Jobs(repository)
            job = jobs.start(service="hr", entity="e", type="t", actor="svc")
            jobs.cancel(job.id, etag=job.etag, actor="alice")
            assert ("svc", ["alice"]) == (
                jobs.get(job.id).started_by,
                [update.actor for update in jobs.updates(job.id)],
            )


class TestForeignFiles:
    """Files that are not jobledger databases of a known version are refused and left unchanged."""

    def test_another_applications_database_is_refused_unchanged(self, path: Path) -> None:
        """An SQLite file with other tables raises ForeignDatabaseError and keeps its bytes."""
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
        conn.commit()
        conn.close()
        before = path.read_bytes()

        with pytest.raises(ForeignDatabaseError) as raised:
            SQLiteRepository(path)

        assert before == path.read_bytes()
        assert str(path) == raised.value.location
        assert "another application" in str(raised.value)
        assert "delete" == _pragma(path, "journal_mode")

    def test_a_database_of_another_application_id_is_refused(self, path: Path) -> None:
        """An empty SQLite file marked by another application raises ForeignDatabaseError."""
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA application_id = 1234")
        conn.close()
        before = path.read_bytes()

        with pytest.raises(ForeignDatabaseError):
            SQLiteRepository(path)

        assert before == path.read_bytes()

    def test_a_file_that_is_not_a_database_is_refused_unchanged(self, path: Path) -> None:
        """A text file raises ForeignDatabaseError, caused by SQLite's, and keeps its bytes."""
        content = b"name,total\nwidget,12.5\n" * 20
        path.write_bytes(content)

        with pytest.raises(ForeignDatabaseError) as raised:
            SQLiteRepository(path)

        assert content == path.read_bytes()
        assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)

    def test_a_database_of_a_newer_schema_is_refused_unchanged(self, path: Path) -> None:
        """A jobledger file of schema version 3 raises SchemaVersionError and keeps its bytes."""
        SQLiteRepository(path).close()
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version = 3")
        conn.close()
        before = path.read_bytes()

        with pytest.raises(SchemaVersionError) as raised:
            SQLiteRepository(path)

        assert (3, 2) == (raised.value.found, raised.value.supported)
        assert before == path.read_bytes()
        assert 3 == _pragma(path, "user_version")

    def test_a_folder_is_refused_with_a_storage_error(self, tmp_path: Path) -> None:
        """A path SQLite cannot open raises StorageError caused by SQLite's error."""
        with pytest.raises(StorageError) as raised:
            SQLiteRepository(tmp_path)

        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


class TestDurability:
    """Each durability setting sets SQLite's synchronous mode on every connection."""

    @pytest.mark.parametrize(
        ("durability", "synchronous"),
        [(Durability.FULL, 2), (Durability.NORMAL, 1), ("normal", 1), ("full", 2)],
    )
    def test_the_setting_chooses_the_synchronous_mode(
        self, path: Path, durability: Durability | str, synchronous: int
    ) -> None:
        """FULL syncs every commit (synchronous=2); NORMAL syncs at checkpoints (1)."""
        with (
            SQLiteRepository(path, durability=durability) as repository,
            repository._connection() as conn,
        ):
            actual = conn.execute("PRAGMA synchronous").fetchone()[0]

        assert synchronous == actual

    def test_the_default_is_full(self, repository: SQLiteRepository) -> None:
        """A repository made without a durability setting syncs every commit."""
        assert Durability.FULL is repository.durability

    def test_an_unknown_setting_is_refused(self, path: Path) -> None:
        """A durability that is neither full nor normal raises ValueError."""
        with pytest.raises(ValueError, match="fast"):
            SQLiteRepository(path, durability="fast")


class TestErrorTranslation:
    """Every SQLite error leaves the repository as a jobledger error caused by it."""

    def test_a_lock_held_beyond_the_busy_timeout_is_a_storage_timeout(self, path: Path) -> None:
        """A save that waits out the busy timeout raises StorageTimeoutError and writes nothing."""
        repository = SQLiteRepository(path, busy_timeout=0.05)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageTimeoutError) as raised:
                repository.save(_start("job-1"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert isinstance(raised.value, TimeoutError)
        assert 0 == repository.feed_head()
        assert 1 == repository.save(_start("job-1"))

    def test_a_taken_job_id_is_a_job_already_exists_error(
        self, repository: SQLiteRepository
    ) -> None:
        """The jobs table's unique-key violation becomes JobAlreadyExistsError."""
        repository.save(_start("job-1"))

        with pytest.raises(JobAlreadyExistsError) as raised:
            repository.save(_start("job-1"))

        assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)

    def test_a_taken_request_id_is_a_request_id_conflict(
        self, repository: SQLiteRepository
    ) -> None:
        """The requests table's unique-key violation becomes RequestIdConflictError."""
        start = _start("job-1", request_id="request-1")
        repository.save(start)

        with pytest.raises(RequestIdConflictError) as raised:
            repository.save(_update(start.job, "busy", request_id="request-1"))

        assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)
        assert "started" == repository.get("job-1").status

    def test_a_lost_compare_and_set_is_a_concurrency_error(
        self, repository: SQLiteRepository
    ) -> None:
        """An update matching no row for its ETag raises ConcurrencyError with the stored ETag."""
        start = _start("job-1")
        repository.save(start)
        repository.save(_update(start.job, "first"))

        with pytest.raises(ConcurrencyError) as raised:
            repository.save(_update(start.job, "second"))

        assert "job-1-first-etag" == raised.value.current_etag

    def test_any_other_sqlite_error_is_a_storage_error(
        self, repository: SQLiteRepository, path: Path
    ) -> None:
        """An SQLite error with no closer meaning (a missing table) becomes StorageError."""
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE feed")
        conn.commit()
        conn.close()

        with pytest.raises(StorageError) as raised:
            repository.read_feed()

        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        assert "no such table" in str(raised.value)

    def test_a_row_jobledger_cannot_read_is_a_storage_error(
        self, repository: SQLiteRepository, path: Path
    ) -> None:
        """A stored event of an unknown kind reads as StorageError, not a KeyError."""
        repository.save(_start("job-1"))
        conn = sqlite3.connect(path)
        conn.execute("UPDATE feed SET kind = 'exploded'")
        conn.commit()
        conn.close()

        with pytest.raises(StorageError) as raised:
            repository.read_feed()

        assert isinstance(raised.value.__cause__, KeyError)

    def test_storage_errors_survive_pickling(self) -> None:
        """Storage errors cross process boundaries with their attributes intact."""
        error = SchemaVersionError("jobs.db", 3, 1)

        copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)

        assert (SchemaVersionError, "jobs.db", 3, 1, str(error)) == (
            type(copy),
            copy.location,
            copy.found,
            copy.supported,
            str(copy),
        )


class TestFeedOrder:
    """Feed positions are taken inside the write transaction, so commit order is position order."""

    def test_a_reader_never_sees_a_later_position_before_an_earlier_one_commits(
        self, repository: SQLiteRepository, path: Path
    ) -> None:
        """While one writer holds position 2 uncommitted, a second waits and readers see only 1."""
        repository.save(_start("job-0"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        held_position = write_change(holder, _start("job-1"))
        saved: list[int] = []
        second = threading.Thread(target=lambda: saved.append(repository.save(_start("job-2"))))
        second.start()
        second.join(0.3)
        waiting = second.is_alive()
        during = [entry.position for entry in repository.read_feed()]
        head_during = repository.feed_head()
        holder.execute("COMMIT")
        holder.close()
        second.join()
        after = [(entry.position, entry.event.job_id) for entry in repository.read_feed()]

        assert (2, True, [1], 1) == (held_position, waiting, during, head_during)
        assert [3] == saved
        assert [(1, "job-0"), (2, "job-1"), (3, "job-2")] == after

    def test_a_rolled_back_writer_leaves_no_gap(
        self, repository: SQLiteRepository, path: Path
    ) -> None:
        """A position taken by a transaction that rolls back goes to the next writer."""
        repository.save(_start("job-0"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        write_change(holder, _start("job-1"))
        holder.execute("ROLLBACK")
        holder.close()

        position = repository.save(_start("job-2"))

        assert 2 == position
        assert [1, 2] == [entry.position for entry in repository.read_feed()]


class TestConnections:
    """The repository shares connections safely, pickles, closes and notifies."""

    def test_a_pickled_repository_opens_the_same_file_with_the_same_settings(
        self, path: Path
    ) -> None:
        """A repository unpickled (as in a child process) reads what the original saved."""
        repository = SQLiteRepository(path, durability="normal", busy_timeout=2.5)
        repository.save(_start("job-1"))

        copy = pickle.loads(pickle.dumps(repository))  # noqa: S301  (our own bytes)

        assert (str(path), Durability.NORMAL, 2.5) == (
            copy.path,
            copy.durability,
            copy.busy_timeout,
        )
        assert repository.get("job-1") == copy.get("job-1")

    def test_a_closed_repository_still_works(self, repository: SQLiteRepository) -> None:
        """close() releases the idle connections; the next call opens a new one."""
        repository.save(_start("job-1"))

        repository.close()

        assert "job-1" == repository.get("job-1").id

    def test_wait_for_feed_reports_a_commit_made_elsewhere(
        self, repository: SQLiteRepository, path: Path
    ) -> None:
        """wait_for_feed returns True once another repository on the file commits an event."""
        other = SQLiteRepository(path)
        writer = threading.Thread(target=lambda: other.save(_start("job-1")))
        writer.start()

        woke = repository.wait_for_feed(0, 60.0)
        writer.join()

        assert woke
        assert isinstance(repository.read_feed()[0].event, JobStarted)

    def test_wait_for_feed_times_out_when_nothing_is_committed(
        self, repository: SQLiteRepository
    ) -> None:
        """wait_for_feed returns False when the feed does not grow within the timeout."""
        assert repository.wait_for_feed(0, 0.01) is False


class TestRecentJobs:
    """A job the repository saved or read is not decoded again while it stays unchanged."""

    def test_a_job_read_again_unchanged_is_the_one_already_decoded(
        self, repository: SQLiteRepository
    ) -> None:
        """Reading a job twice with no change in between hands out the same decoded value."""
        repository.save(_start("job-1"))

        assert repository.get("job-1") is repository.get("job-1")

    def test_a_saved_job_is_read_back_without_decoding(self, repository: SQLiteRepository) -> None:
        """The job a save wrote is the one the next read returns."""
        change = _start("job-1")
        repository.save(change)

        assert change.job is repository.get("job-1")

    def test_a_change_made_through_another_repository_is_read_fresh(
        self, repository: SQLiteRepository, path: Path
    ) -> None:
        """A job changed by another repository object on the file is read as stored, not as kept."""
        repository.save(_start("job-1"))
        kept = repository.get("job-1")
        other = SQLiteRepository(path)
        other.save(_update(other.get("job-1"), "exporting"))

        fresh = repository.get("job-1")

        assert ("exporting", 2) == (fresh.status, fresh.version)
        assert ("started", 1) == (kept.status, kept.version)
        other.close()

    def test_large_documents_are_not_kept(self, repository: SQLiteRepository) -> None:
        """A job whose state is large is decoded on every read instead of being held."""
        ids = iter(["big-etag", "big-event"])
        big = decide(
            None,
            StartJob(
                service="hr",
                entity="employee",
                type="sync",
                job_id="big",
                state={"a": "x" * 70_000},
            ),
            now=NOW,
            new_id=lambda: next(ids),
            limits=Limits(),
        )
        repository.save(big)

        first, second = repository.get("big"), repository.get("big")

        assert first == second
        assert first is not second

    def test_only_the_most_recent_jobs_are_kept(self, repository: SQLiteRepository) -> None:
        """Past the store's size, the job used longest ago is decoded again when read."""
        changes = [_start(f"job-{n}") for n in range(200)]
        for change in changes:
            repository.save(change)

        assert changes[-1].job is repository.get("job-199")
        assert changes[0].job is not repository.get("job-0")
        assert changes[0].job == repository.get("job-0")


class TestFilePermissions:
    """A new database file, and its WAL and journal, are readable by their owner only."""

    @pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
    def test_a_new_database_is_created_0600_whatever_the_umask(
        self, tmp_path: Path, umask: int
    ) -> None:
        """The file and its WAL file have mode 0600 under a lax or a strict umask."""
        path = tmp_path / "jobs.db"
        previous = os.umask(umask)
        try:
            repository = SQLiteRepository(path)
            Jobs(repository).start(service="hr", entity="employee", type="sync")
            modes = {
                file.name: stat.S_IMODE(file.stat().st_mode)
                for file in tmp_path.iterdir()
                if file.name.startswith("jobs.db")
            }
            repository.close()
        finally:
            os.umask(previous)
        assert {"jobs.db": 0o600, "jobs.db-wal": 0o600, "jobs.db-shm": 0o600} == modes

    def test_an_existing_database_keeps_its_permissions(self, tmp_path: Path) -> None:
        """A file the owner made group-readable stays so when jobledger opens it."""
        path = tmp_path / "jobs.db"
        SQLiteRepository(path).close()
        path.chmod(0o640)
        SQLiteRepository(path).close()
        assert 0o640 == stat.S_IMODE(path.stat().st_mode)


class TestStartRecords:
    """Start records are read through an index, which older files get when opened."""

    def test_a_file_without_the_start_index_gets_it_when_opened(self, tmp_path: Path) -> None:
        """A database made before the index (simulated by dropping it) has it after reopening."""
        path = tmp_path / "jobs.db"
        jobs = Jobs(SQLiteRepository(path))
        job = jobs.start(service="hr", entity="employee", type="sync")
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("DROP INDEX feed_starts")
        conn.close()

        reopened = SQLiteRepository(path)
        conn = sqlite3.connect(path)
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM feed WHERE job_id = ? AND kind = 'started'",
            (job.id,),
        ).fetchall()
        conn.close()
        assert "feed_starts" in names
        assert any("feed_starts" in str(row) for row in plan)
        assert job == Jobs(reopened).get(job.id, version=1)

    def test_a_file_without_the_parked_table_gets_it_when_opened(self, tmp_path: Path) -> None:
        """A database made before parked events (simulated by dropping the table) can park."""
        path = tmp_path / "jobs.db"
        jobs = Jobs(SQLiteRepository(path))
        jobs.start(service="hr", entity="employee", type="sync")
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("DROP TABLE parked")
        conn.close()

        reopened = SQLiteRepository(path)
        event = reopened.read_feed()[0].event
        reopened.park(ParkedEvent(name="mail", position=1, event=event, error="E", attempts=2))
        assert [1] == [parked.position for parked in reopened.parked_events("mail")]
