"""Specification of Jobs.handle_all: a batch of commands carried out in order, atomically."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import (
    ANY_ETAG,
    CancelJob,
    CompleteJob,
    ConcurrencyError,
    FailJob,
    InMemoryRepository,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobNotFoundError,
    Jobs,
    RequestIdConflictError,
    StartJob,
    UpdateJob,
)
from jobledger._application import handling

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jobledger import Change, Command, Job, JobEvent


def starting(job_id: str, **fields: object) -> StartJob:
    """A start of an hr/employee/sync job with ``job_id`` and ``fields``."""
    return StartJob(service="hr", entity="employee", type="sync", job_id=job_id, **fields)  # type: ignore[arg-type]


def collect(jobs: Jobs) -> list[JobEvent]:
    """Subscribe a list to every event of ``jobs`` and return it."""
    events: list[JobEvent] = []
    jobs.subscribe(events.append)
    return events


def stored(jobs: Jobs) -> tuple[object, ...]:
    """Everything the ledger's repository holds: its feed (every change is in it)."""
    return tuple(jobs.repository.read_feed())


class RivalBeforeBatch(InMemoryRepository):
    """An in-memory repository that lets a rival act just before the next batch is saved."""

    def __init__(self) -> None:
        """Start with no rival waiting."""
        super().__init__()
        self.before_next_save_all: Callable[[], object] | None = None
        self.refused_batches = 0

    @property
    def loads_from_memory(self) -> bool:
        """Never: its ledgers remember the jobs they save, as these races need."""
        return False

    def save_all(self, changes: Sequence[Change]) -> Sequence[int]:
        """Let the rival act first, once, then save the batch; count the refusals."""
        rival, self.before_next_save_all = self.before_next_save_all, None
        if rival is not None:
            rival()
        try:
            return super().save_all(changes)
        except ConcurrencyError:
            self.refused_batches += 1
            raise


class TestOutcome:
    """A batch returns the jobs as its commands left them, and saves them all."""

    def test_an_empty_batch_does_nothing(self, jobs: Jobs) -> None:
        """An empty batch returns an empty tuple, writes nothing and publishes nothing."""
        events = collect(jobs)

        assert () == jobs.handle_all([])
        assert ((), []) == (stored(jobs), events)

    def test_each_command_returns_the_job_as_it_left_it_in_command_order(self, jobs: Jobs) -> None:
        """Mixed commands on several jobs each return their job as they left it, in order."""
        one, two, three = (jobs.start(service="hr", entity="employee", type="sync") for _ in "123")

        result = jobs.handle_all(
            [
                starting("new-job", state={"n": 0}),
                UpdateJob(job_id=one.id, etag=one.etag, status="exporting"),
                CompleteJob(job_id=two.id, etag=two.etag, state_update={"done": True}),
                FailJob(job_id=three.id, etag=three.etag),
                CancelJob(job_id="new-job", etag=ANY_ETAG),
            ]
        )

        assert [
            ("new-job", "started", 1),
            (one.id, "exporting", 2),
            (two.id, "completed", 2),
            (three.id, "failed", 2),
            ("new-job", "canceled", 2),
        ] == [(job.id, job.status, job.version) for job in result]
        assert list(result[1:]) == [jobs.get(job.id) for job in result[1:]]
        assert result[4] == jobs.get("new-job")

    def test_the_batch_reads_the_clock_and_takes_ids_as_its_commands_would(
        self, jobs: Jobs
    ) -> None:
        """Each command of a batch reads the clock once and takes its ids, in command order."""
        started, changed = jobs.handle_all(
            [starting("job-1"), UpdateJob(job_id="job-1", etag=ANY_ETAG, status="x")]
        )

        assert ("id-0001", "id-0003") == (started.etag, changed.etag)
        assert (0, 1) == (started.updated_at.second, changed.updated_at.second)


class TestAtomicity:
    """Either every change of a batch is saved, or none is and the first refusal is raised."""

    def test_a_stale_etag_in_the_middle_saves_and_publishes_nothing(self, jobs: Jobs) -> None:
        """A stale ETag after other commands raises ConcurrencyError; nothing is saved or sent."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        current = jobs.update(job.id, etag=job.etag, status="current")
        events = collect(jobs)
        before = stored(jobs)

        with pytest.raises(ConcurrencyError) as raised:
            jobs.handle_all(
                [
                    starting("new-job", request_id="request-1"),
                    UpdateJob(job_id=job.id, etag=job.etag, status="stale"),
                    starting("later-job"),
                ]
            )

        assert (job.id, job.etag, current.etag, 1) == (
            raised.value.job_id,
            raised.value.expected_etag,
            raised.value.current_etag,
            raised.value.batch_index,
        )
        assert (before, []) == (stored(jobs), events)
        assert None is jobs.repository.find_request("request-1")
        with pytest.raises(JobNotFoundError):
            jobs.get("new-job")

    @pytest.mark.parametrize(
        ("refused", "error"),
        [
            (UpdateJob(job_id="no-such-job", etag="etag-1", status="x"), JobNotFoundError),
            (starting("taken"), JobAlreadyExistsError),
            (UpdateJob(job_id="taken", etag=ANY_ETAG, status="completed"), InvalidJobDataError),
            (starting("new-job"), JobAlreadyExistsError),
        ],
        ids=["unknown job", "taken id", "bad field", "started twice"],
    )
    def test_any_refusal_saves_nothing_of_the_batch(
        self, jobs: Jobs, refused: Command, error: type[Exception]
    ) -> None:
        """A command refused for any reason leaves no change of the batch saved, none published.

        The refusal names the refused command's position in the batch.
        """
        jobs.start(service="hr", entity="employee", type="sync", job_id="taken")
        events = collect(jobs)
        before = stored(jobs)

        with pytest.raises(error) as raised:
            jobs.handle_all(
                [
                    starting("new-job"),
                    UpdateJob(job_id="taken", etag=ANY_ETAG, status="busy"),
                    refused,
                ]
            )

        assert (before, []) == (stored(jobs), events)
        assert 2 == raised.value.batch_index  # type: ignore[attr-defined]

    def test_a_refusal_on_saving_names_its_command_after_one_answered_from_its_record(
        self, jobs: Jobs
    ) -> None:
        """A start refused on saving, after one answered from its record, is named by position."""
        jobs.start(service="hr", entity="employee", type="sync", job_id="taken")
        jobs.handle(starting("done", request_id="request-1"))

        with pytest.raises(JobAlreadyExistsError) as raised:
            jobs.handle_all([starting("done", request_id="request-1"), starting("taken")])

        assert ("taken", 1) == (raised.value.job_id, raised.value.batch_index)

    def test_an_error_outside_a_batch_names_no_command(self, jobs: Jobs) -> None:
        """A refusal of a command handled alone has no batch position."""
        with pytest.raises(JobNotFoundError) as raised:
            jobs.update("no-such-job", etag="etag-1", status="x")

        assert None is raised.value.batch_index

    def test_events_are_published_after_the_commit_in_command_order(self, jobs: Jobs) -> None:
        """Subscribers receive the batch's events in order, each after the whole batch committed."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        heads: list[tuple[str, int]] = []
        jobs.subscribe(
            lambda event: heads.append((type(event).__name__, jobs.repository.feed_head()))
        )

        jobs.handle_all(
            [
                starting("task-1"),
                starting("task-2"),
                UpdateJob(job_id=job.id, etag=job.etag, status="step-1"),
                CompleteJob(job_id="task-1", etag=ANY_ETAG),
            ]
        )

        assert [
            ("JobStarted", 5),
            ("JobStarted", 5),
            ("JobUpdated", 5),
            ("JobCompleted", 5),
        ] == heads


class TestChains:
    """A later command on a job the batch changed is decided on the batch's own result."""

    def test_a_later_command_with_the_etag_from_before_the_batch_follows_the_earlier_one(
        self, jobs: Jobs
    ) -> None:
        """Two updates carrying the ETag the job had before the batch apply one after the other."""
        job = jobs.start(service="hr", entity="employee", type="sync", state={"a": 1})

        first, second = jobs.handle_all(
            [
                UpdateJob(job_id=job.id, etag=job.etag, state_update={"b": 2}),
                UpdateJob(job_id=job.id, etag=job.etag, state_update={"c": 3}, status="x"),
            ]
        )

        assert (2, 3) == (first.version, second.version)
        assert ({"a": 1, "b": 2, "c": 3}, "x") == (second.state, second.status)
        assert [1, 2] == [update.update_id for update in jobs.updates(job.id)]
        assert second == jobs.get(job.id)

    def test_a_job_started_in_the_batch_is_changed_with_the_wildcard(self, jobs: Jobs) -> None:
        """A start, then an update and a completion with the wildcard, all of one new job."""
        started, updated, completed = jobs.handle_all(
            [
                starting("task-1"),
                UpdateJob(job_id="task-1", etag=ANY_ETAG, state_update={"done": 1}),
                CompleteJob(job_id="task-1", etag=ANY_ETAG),
            ]
        )

        assert [1, 2, 3] == [started.version, updated.version, completed.version]
        assert ("completed", {"done": 1}) == (completed.status, completed.state)

    def test_another_etag_on_a_job_the_batch_changed_is_refused(self, jobs: Jobs) -> None:
        """A later command with neither the ETag from before the batch nor the wildcard is stale."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        before = stored(jobs)

        with pytest.raises(ConcurrencyError) as raised:
            jobs.handle_all(
                [
                    UpdateJob(job_id=job.id, etag=job.etag, status="first"),
                    UpdateJob(job_id=job.id, etag="some-other-etag", status="second"),
                ]
            )

        assert (job.id, "some-other-etag", job.etag) == (
            raised.value.job_id,
            raised.value.expected_etag,
            raised.value.current_etag,
        )
        assert before == stored(jobs)

    def test_a_job_ended_earlier_in_the_batch_refuses_a_later_change(self, jobs: Jobs) -> None:
        """Completing a job and then updating it in the same batch is refused; nothing is saved."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        before = stored(jobs)

        with pytest.raises(InvalidTransitionError):
            jobs.handle_all(
                [
                    CompleteJob(job_id=job.id, etag=job.etag),
                    UpdateJob(job_id=job.id, etag=job.etag, status="late"),
                ]
            )

        assert before == stored(jobs)

    def test_the_first_change_of_a_chain_is_checked_against_the_stored_job(
        self, jobs: Jobs
    ) -> None:
        """A chain whose first command carries a stale ETag is refused as a whole."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        current = jobs.update(job.id, etag=job.etag, status="elsewhere")

        with pytest.raises(ConcurrencyError) as raised:
            jobs.handle_all(
                [
                    UpdateJob(job_id=job.id, etag=job.etag, status="first"),
                    UpdateJob(job_id=job.id, etag=job.etag, status="second"),
                ]
            )

        assert current.etag == raised.value.current_etag
        assert current == jobs.get(job.id)


class TestRequestIds:
    """Request ids work per command, so a batch retried with them is answered, not redone."""

    def test_a_retried_batch_is_answered_and_writes_nothing(self, jobs: Jobs) -> None:
        """The batch sent again with the same request ids returns the same jobs, saves nothing."""
        job = jobs.start(service="hr", entity="employee", type="sync")
        batch: list[Command] = [
            starting("task-1", request_id="start-task-1"),
            UpdateJob(job_id=job.id, etag=job.etag, status="step-1", request_id="run-step-1"),
            UpdateJob(job_id=job.id, etag=job.etag, state_update={"n": 1}, request_id="run-n"),
        ]
        first = jobs.handle_all(batch)
        events = collect(jobs)
        before = stored(jobs)

        again = jobs.handle_all(batch)

        assert first == again
        assert (before, []) == (stored(jobs), events)

    def test_a_command_repeated_in_one_batch_is_answered_from_the_batch(self, jobs: Jobs) -> None:
        """The same command twice in a batch with one request id is carried out once."""
        command = starting("task-1", request_id="start-1")

        first, second = jobs.handle_all([command, command])

        assert first == second
        assert 1 == jobs.repository.feed_head()

    def test_a_request_id_reused_for_another_command_in_a_batch_is_refused(
        self, jobs: Jobs
    ) -> None:
        """Two different commands of a batch with one request id raise RequestIdConflictError."""
        with pytest.raises(RequestIdConflictError) as raised:
            jobs.handle_all(
                [starting("task-1", request_id="r"), starting("task-2", request_id="r")]
            )

        assert ("r", 0) == (raised.value.request_id, jobs.repository.feed_head())

    def test_a_request_id_recorded_for_another_command_is_refused(self, jobs: Jobs) -> None:
        """A batch command reusing a recorded request id for another command is refused."""
        jobs.start(service="hr", entity="employee", type="sync", request_id="r")

        with pytest.raises(RequestIdConflictError):
            jobs.handle_all([starting("task-1"), starting("task-2", request_id="r")])

        assert 1 == jobs.repository.feed_head()

    def test_a_twin_that_commits_first_is_the_answer(self) -> None:
        """When a twin of a batch's command commits just before the batch, the batch answers it."""
        repository = RivalBeforeBatch()
        jobs, twin = Jobs(repository), Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")
        command = UpdateJob(job_id=job.id, etag=job.etag, status="x", request_id="r")
        repository.before_next_save_all = lambda: twin.handle(command)

        started, updated = jobs.handle_all([starting("task-1"), command])

        assert (1, 2) == (repository.refused_batches, updated.version)
        assert [1] == [update.update_id for update in jobs.updates(job.id)]
        assert started == jobs.get("task-1")


class TestRaces:
    """A batch that loses a race is decided again where a single command would be."""

    def test_a_wildcard_command_that_loses_a_race_lands_on_the_new_version(self) -> None:
        """A batch whose wildcard command's job changed before the commit is decided again."""
        repository = RivalBeforeBatch()
        jobs, rival = Jobs(repository), Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync", state={"a": 1})
        repository.before_next_save_all = lambda: rival.update(
            job.id, etag=job.etag, state_update={"rival": True}
        )

        _, updated = jobs.handle_all(
            [starting("task-1"), UpdateJob(job_id=job.id, etag=ANY_ETAG, state_update={"b": 2})]
        )

        assert 1 == repository.refused_batches
        assert (3, {"a": 1, "rival": True, "b": 2}) == (updated.version, updated.state)

    def test_a_wildcard_command_that_keeps_losing_is_refused_naming_the_wildcard(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A wildcard batch that loses every attempt raises ConcurrencyError naming the wildcard."""
        monkeypatch.setattr(handling, "WILDCARD_ATTEMPTS", 3)
        repository = RivalBeforeBatch()
        jobs, rival = Jobs(repository), Jobs(repository)
        job = jobs.start(service="hr", entity="employee", type="sync")

        def act_and_again() -> None:
            rival.update(job.id, etag=ANY_ETAG, status="rival")
            repository.before_next_save_all = act_and_again

        repository.before_next_save_all = act_and_again

        with pytest.raises(ConcurrencyError) as raised:
            jobs.handle_all([starting("task-1"), UpdateJob(job_id=job.id, etag=ANY_ETAG)])

        # One refusal of the decision on the remembered job, then the three attempts.
        assert (ANY_ETAG, 4, 1) == (
            raised.value.expected_etag,
            repository.refused_batches,
            raised.value.batch_index,
        )
        with pytest.raises(JobNotFoundError):
            jobs.get("task-1")

    def test_a_job_changed_by_another_ledger_is_read_again(self) -> None:
        """A batch decided on a remembered job that another ledger changed is decided again."""
        repository = InMemoryRepository()
        mine, theirs = Jobs(repository), Jobs(repository)
        job = mine.start(service="hr", entity="employee", type="sync", state={"a": 1})
        changed = theirs.update(job.id, etag=job.etag, state_update={"b": 2})

        (result,) = mine.handle_all(
            [UpdateJob(job_id=job.id, etag=changed.etag, state_update={"c": 3})]
        )

        assert (3, {"a": 1, "b": 2, "c": 3}) == (result.version, result.state)

    def test_a_stale_etag_lost_to_another_ledger_is_refused_with_the_stored_one(self) -> None:
        """A batch whose ETag another ledger made stale is refused, naming the stored ETag."""
        repository = InMemoryRepository()
        mine, theirs = Jobs(repository), Jobs(repository)
        job = mine.start(service="hr", entity="employee", type="sync")
        changed = theirs.update(job.id, etag=job.etag, status="theirs")

        with pytest.raises(ConcurrencyError) as raised:
            mine.handle_all([starting("task-1"), UpdateJob(job_id=job.id, etag=job.etag)])

        assert (job.etag, changed.etag) == (raised.value.expected_etag, raised.value.current_etag)
        assert 2 == repository.feed_head()


def test_a_started_job_is_not_the_answer_to_a_failed_batch() -> None:
    """After a refused batch, the ledger forgets nothing it did not save: the next command works."""
    jobs = Jobs()
    job: Job = jobs.start(service="hr", entity="employee", type="sync")
    with pytest.raises(ConcurrencyError):
        jobs.handle_all(
            [
                UpdateJob(job_id=job.id, etag=job.etag, status="first"),
                UpdateJob(job_id=job.id, etag="stale", status="second"),
            ]
        )

    assert 2 == jobs.update(job.id, etag=job.etag, status="again").version
