"""Specification of the job lifecycle: the transition table, as the ledger enforces it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import (
    TRANSITIONS,
    CommandKind,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobNotFoundError,
    JobPhase,
    Jobs,
    JobStatus,
    lifecycle_mermaid,
)
from jobledger._core.lifecycle import next_phase

if TYPE_CHECKING:
    from jobledger import Job, JobEvent

JOB_ID = "job-under-test"

# Every (phase, command) pair with the lifecycle's literal verdict: the phase and
# status after the command, or the error it raises. ``None`` is "no job yet".
VERDICTS: list[tuple[JobPhase | None, CommandKind, tuple[str, str] | type[Exception]]] = [
    (None, CommandKind.START, ("active", "started")),
    (None, CommandKind.UPDATE, JobNotFoundError),
    (None, CommandKind.COMPLETE, JobNotFoundError),
    (None, CommandKind.FAIL, JobNotFoundError),
    (None, CommandKind.CANCEL, JobNotFoundError),
    (JobPhase.ACTIVE, CommandKind.START, JobAlreadyExistsError),
    (JobPhase.ACTIVE, CommandKind.UPDATE, ("active", "exporting")),
    (JobPhase.ACTIVE, CommandKind.COMPLETE, ("completed", "completed")),
    (JobPhase.ACTIVE, CommandKind.FAIL, ("failed", "failed")),
    (JobPhase.ACTIVE, CommandKind.CANCEL, ("canceled", "canceled")),
    (JobPhase.COMPLETED, CommandKind.START, JobAlreadyExistsError),
    (JobPhase.COMPLETED, CommandKind.UPDATE, InvalidTransitionError),
    (JobPhase.COMPLETED, CommandKind.COMPLETE, InvalidTransitionError),
    (JobPhase.COMPLETED, CommandKind.FAIL, InvalidTransitionError),
    (JobPhase.COMPLETED, CommandKind.CANCEL, InvalidTransitionError),
    (JobPhase.FAILED, CommandKind.START, JobAlreadyExistsError),
    (JobPhase.FAILED, CommandKind.UPDATE, InvalidTransitionError),
    (JobPhase.FAILED, CommandKind.COMPLETE, InvalidTransitionError),
    (JobPhase.FAILED, CommandKind.FAIL, InvalidTransitionError),
    (JobPhase.FAILED, CommandKind.CANCEL, InvalidTransitionError),
    (JobPhase.CANCELED, CommandKind.START, JobAlreadyExistsError),
    (JobPhase.CANCELED, CommandKind.UPDATE, InvalidTransitionError),
    (JobPhase.CANCELED, CommandKind.COMPLETE, InvalidTransitionError),
    (JobPhase.CANCELED, CommandKind.FAIL, InvalidTransitionError),
    (JobPhase.CANCELED, CommandKind.CANCEL, InvalidTransitionError),
]


def drive_into(jobs: Jobs, phase: JobPhase | None) -> Job | None:
    """Start the job under test and move it into ``phase``; ``None`` starts nothing."""
    if phase is None:
        return None
    job = jobs.start(service="hr", entity="employee", type="sync", job_id=JOB_ID)
    if phase is JobPhase.COMPLETED:
        job = jobs.complete(JOB_ID, etag=job.etag)
    elif phase is JobPhase.FAILED:
        job = jobs.fail(JOB_ID, etag=job.etag)
    elif phase is JobPhase.CANCELED:
        job = jobs.cancel(JOB_ID, etag=job.etag)
    assert phase == job.phase
    return job


def send(jobs: Jobs, command: CommandKind, etag: str) -> Job:
    """Send ``command`` for the job under test, carrying ``etag``."""
    if command is CommandKind.START:
        return jobs.start(service="hr", entity="employee", type="sync", job_id=JOB_ID)
    if command is CommandKind.UPDATE:
        return jobs.update(JOB_ID, etag=etag, status="exporting", state_update={"n": 1})
    if command is CommandKind.COMPLETE:
        return jobs.complete(JOB_ID, etag=etag, state_update={"n": 1})
    if command is CommandKind.FAIL:
        return jobs.fail(JOB_ID, etag=etag, state_update={"n": 1})
    return jobs.cancel(JOB_ID, etag=etag, description="stop")


def snapshot(jobs: Jobs) -> tuple[object, ...]:
    """Everything a command could write about the job under test."""
    try:
        job: Job | None = jobs.get(JOB_ID)
        updates: tuple[object, ...] = tuple(jobs.updates(JOB_ID))
    except JobNotFoundError:
        job, updates = None, ()
    return (job, updates, jobs.repository.feed_head(), tuple(jobs.repository.read_feed()))


class TestLifecycleThroughTheLedger:
    """Every (phase, command) pair does what the transition table says, through Jobs."""

    def test_the_literal_verdicts_are_the_tables(self) -> None:
        """The allowed pairs listed here are exactly the pairs in TRANSITIONS."""
        allowed = {
            (phase, command): JobPhase(verdict[0])
            for phase, command, verdict in VERDICTS
            if isinstance(verdict, tuple)
        }
        assert allowed == dict(TRANSITIONS)
        assert len(VERDICTS) == (len(JobPhase) + 1) * len(CommandKind)

    @pytest.mark.parametrize(
        ("phase", "command", "verdict"),
        VERDICTS,
        ids=[f"{phase and phase.value}-{command.value}" for phase, command, _ in VERDICTS],
    )
    def test_every_phase_and_command(
        self,
        jobs: Jobs,
        phase: JobPhase | None,
        command: CommandKind,
        verdict: tuple[str, str] | type[Exception],
    ) -> None:
        """A command moves the job as the table says, or is refused and writes nothing."""
        delivered: list[JobEvent] = []
        jobs.subscribe(delivered.append)
        before = drive_into(jobs, phase)
        etag = "no-job" if before is None else before.etag
        written = snapshot(jobs)
        if isinstance(verdict, tuple):
            after = send(jobs, command, etag)
            assert verdict == (after.phase.value, after.status)
            assert (1 if before is None else before.version + 1) == after.version
            assert after == jobs.get(JOB_ID)
            assert after.etag == delivered[-1].etag
            return
        delivered_before = list(delivered)
        with pytest.raises(verdict) as caught:
            send(jobs, command, etag)
        assert written == snapshot(jobs)
        assert delivered_before == delivered
        if isinstance(caught.value, InvalidTransitionError):
            assert phase is not None
            error = caught.value
            assert (JOB_ID, phase.value, command.value) == (
                error.job_id,
                error.phase,
                error.command,
            )
            assert all(fact in str(error) for fact in (JOB_ID, phase.value, command.value))

    @pytest.mark.parametrize("phase", [JobPhase.COMPLETED, JobPhase.FAILED, JobPhase.CANCELED])
    def test_terminal_jobs_refuse_even_the_wildcard_etag(self, jobs: Jobs, phase: JobPhase) -> None:
        """A terminal job refuses a change sent with ANY_ETAG too."""
        drive_into(jobs, phase)
        written = snapshot(jobs)
        with pytest.raises(InvalidTransitionError):
            jobs.update(JOB_ID, etag="*", status="again")
        assert written == snapshot(jobs)

    def test_start_on_an_existing_id_names_the_id(self, jobs: Jobs) -> None:
        """Starting a job with a taken id raises JobAlreadyExistsError carrying that id."""
        drive_into(jobs, JobPhase.ACTIVE)
        with pytest.raises(JobAlreadyExistsError) as caught:
            send(jobs, CommandKind.START, "")
        assert JOB_ID == caught.value.job_id


class TestTransitionTable:
    """The table and next_phase, read directly."""

    def test_the_table(self) -> None:
        """TRANSITIONS allows start from nothing and every change from active, nothing else."""
        assert {
            (None, CommandKind.START): JobPhase.ACTIVE,
            (JobPhase.ACTIVE, CommandKind.UPDATE): JobPhase.ACTIVE,
            (JobPhase.ACTIVE, CommandKind.COMPLETE): JobPhase.COMPLETED,
            (JobPhase.ACTIVE, CommandKind.FAIL): JobPhase.FAILED,
            (JobPhase.ACTIVE, CommandKind.CANCEL): JobPhase.CANCELED,
        } == dict(TRANSITIONS)

    def test_the_table_cannot_be_changed(self) -> None:
        """TRANSITIONS is a read-only mapping."""
        pair = (JobPhase.COMPLETED, CommandKind.UPDATE)
        with pytest.raises(TypeError):
            TRANSITIONS[pair] = JobPhase.ACTIVE  # type: ignore[index]

    @pytest.mark.parametrize("phase", list(JobPhase))
    @pytest.mark.parametrize("command", list(CommandKind))
    def test_next_phase_follows_the_table(self, phase: JobPhase, command: CommandKind) -> None:
        """The next phase is the table's, or InvalidTransitionError names the pair."""
        expected = TRANSITIONS.get((phase, command))
        if expected is not None:
            assert expected == next_phase("j", phase, command)
            return
        with pytest.raises(InvalidTransitionError) as caught:
            next_phase("j", phase, command)
        assert ("j", phase.value, command.value) == (
            caught.value.job_id,
            caught.value.phase,
            caught.value.command,
        )

    @pytest.mark.parametrize(
        ("status", "phase"),
        [
            ("started", JobPhase.ACTIVE),
            ("exporting", JobPhase.ACTIVE),
            ("Completed", JobPhase.ACTIVE),
            ("completed", JobPhase.COMPLETED),
            ("failed", JobPhase.FAILED),
            ("canceled", JobPhase.CANCELED),
            (JobStatus.COMPLETED, JobPhase.COMPLETED),
        ],
    )
    def test_phase_of_status(self, status: str, phase: JobPhase) -> None:
        """A terminal status gives its own phase; any other status is active."""
        assert phase == JobPhase.of_status(status)

    def test_terminal_phases(self) -> None:
        """Every phase but active is terminal."""
        assert {"completed", "failed", "canceled"} == {
            phase.value for phase in JobPhase if phase.is_terminal
        }


class TestLifecycleMermaid:
    """The Mermaid diagram draws the table the code runs."""

    def test_a_line_for_every_transition(self) -> None:
        """Every transition in TRANSITIONS has its own line in the diagram."""
        lines = lifecycle_mermaid().splitlines()
        for (before, command), after in TRANSITIONS.items():
            source = "[*]" if before is None else before.value
            assert f"    {source} --> {after.value}: {command.value}" in lines

    def test_the_whole_diagram(self) -> None:
        """The diagram is a Mermaid state diagram with the terminal phases as end states."""
        assert (
            "stateDiagram-v2\n"
            "    [*] --> active: start\n"
            "    active --> active: update\n"
            "    active --> completed: complete\n"
            "    active --> failed: fail\n"
            "    active --> canceled: cancel\n"
            "    completed --> [*]\n"
            "    failed --> [*]\n"
            "    canceled --> [*]"
        ) == lifecycle_mermaid()
