"""Who drives a run: the actor of an invoke or a resume names every write of its drive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger import InvalidJobDataError, JobNotFoundError
from jobledger.runner import (
    Drive,
    JobDefinition,
    Runner,
    RunStatus,
    RunTrigger,
    Task,
    TaskContext,
    load_run,
)
from jobledger.runner._model import launch_id
from jobledger.runner._runner import definition_record_id
from jobledger.testing.runs import ScriptedOutcome, ScriptedTasks

if TYPE_CHECKING:
    from jobledger import Jobs


def reports(context: TaskContext) -> None:
    """Report progress once, then return."""
    context.report_progress(rows=1)


def blocking_definition() -> JobDefinition:
    """Return a two-step job whose guarded sync blocks unless forced (its repair validates)."""
    script = ScriptedTasks(
        {"sync": ScriptedOutcome.block("too many changes", {"changes": 120}, unless_force=120)},
        repairs={"sync": ScriptedOutcome.succeed("validated")},
    )
    return JobDefinition(
        "Nightly",
        [
            script.task("export"),
            script.task("sync", launch_order=2, parents="export", guarded=True, repair=True),
        ],
    )


def drive_of(jobs: Jobs, run_id: str) -> Drive:
    """Return the drive that holds or last held run ``run_id``, as load_run reads it."""
    state = load_run(jobs, run_id).state
    assert state is not None
    assert state.drive is not None
    return state.drive


def actors_of(jobs: Jobs, job_id: str) -> list[str | None]:
    """Return who started job ``job_id``, then the actor of each of its updates, in order."""
    return [jobs.get(job_id).started_by, *(update.actor for update in jobs.updates(job_id))]


class TestInvokeActor:
    """Runner.invoke(actor=)."""

    def test_every_write_of_the_drive_names_the_actor(self, jobs: Jobs) -> None:
        """The run, each launch (start, progress, end) and the definition record name the actor."""
        definition = JobDefinition(
            "Export", [Task("extract", reports), Task("load", reports, launch_order=2)]
        )
        runner = Runner(jobs, [definition])

        result = runner.invoke("Export", actor="alice")

        assert RunStatus.COMPLETED == result.status
        run_actors = actors_of(jobs, result.run_id)
        assert {"alice"} == set(run_actors)
        assert len(run_actors) > 2
        for number in (1, 2):
            launch = launch_id(result.run_id, number)
            launch_actors = actors_of(jobs, launch)
            assert {"alice"} == set(launch_actors)
            assert any(
                update.state_update is not None and "progress" in update.state_update
                for update in jobs.updates(launch)
            )
        record = definition_record_id(runner.service, "Export")
        assert ["alice", "alice"] == actors_of(jobs, record)

    def test_the_drive_records_its_actor(self, jobs: Jobs) -> None:
        """load_run shows who invoked the run on its drive."""
        runner = Runner(jobs, [JobDefinition("Export", [Task("extract", reports)])])

        result = runner.invoke("Export", actor="alice")

        drive = drive_of(jobs, result.run_id)
        assert (RunTrigger.INVOKE, "alice") == (drive.kind, drive.actor)

    def test_without_an_actor_nothing_names_anyone(self, jobs: Jobs) -> None:
        """An invoke with no actor names no one on the run, its launches or its drive."""
        runner = Runner(jobs, [JobDefinition("Export", [Task("extract", reports)])])

        result = runner.invoke("Export")

        assert {None} == set(actors_of(jobs, result.run_id))
        assert {None} == set(actors_of(jobs, launch_id(result.run_id, 1)))
        drive = drive_of(jobs, result.run_id)
        assert drive.actor is None

    def test_an_invalid_actor_is_refused_before_anything_is_written(self, jobs: Jobs) -> None:
        """An actor with a trailing blank raises InvalidJobDataError and no run starts."""
        runner = Runner(jobs, [JobDefinition("Export", [Task("extract", reports)])])

        with pytest.raises(InvalidJobDataError) as raised:
            runner.invoke("Export", actor="alice ", run_id="run-1")

        assert "actor" == raised.value.field
        with pytest.raises(JobNotFoundError):
            jobs.get("run-1")


class TestResumeActor:
    """Runner.resume(actor=)."""

    def test_a_resume_names_its_own_actor(self, jobs: Jobs) -> None:
        """The claim, the resumed launches and the run's end name the resumer; the drive too."""
        runner = Runner(jobs, [blocking_definition()])
        blocked = runner.invoke("Nightly", actor="alice")
        before = len(jobs.updates(blocked.run_id))

        resumed = runner.resume(blocked.run_id, repair=True, actor="bob")

        assert RunStatus.COMPLETED == resumed.status
        later = [update.actor for update in jobs.updates(blocked.run_id)][before:]
        assert {"bob"} == set(later)
        assert {"alice"} == set(actors_of(jobs, launch_id(blocked.run_id, 1)))
        assert {"bob"} == set(actors_of(jobs, launch_id(blocked.run_id, 3)))
        drive = drive_of(jobs, blocked.run_id)
        assert (2, RunTrigger.RESUME, True, "bob") == (
            drive.number,
            drive.kind,
            drive.repair,
            drive.actor,
        )

    def test_a_resume_without_an_actor_drops_the_previous_one(self, jobs: Jobs) -> None:
        """The resume's drive names no one though the invoke named alice."""
        runner = Runner(jobs, [blocking_definition()])
        blocked = runner.invoke("Nightly", actor="alice")

        runner.resume(blocked.run_id, force=120)

        drive = drive_of(jobs, blocked.run_id)
        assert (2, None) == (drive.number, drive.actor)
        assert jobs.updates(blocked.run_id)[-1].actor is None
