"""A run the ledger's limits refuse part of: it ends, saying why, or is left as it was.

The run's own job does not grow with its tasks; what a tight ``max_bytes`` can
refuse is a launch job (its input names the run and the task) or a claim.
"""

from __future__ import annotations

import logging

import pytest

from jobledger import InMemoryRepository, InvalidJobDataError, JobEvent, Jobs, Limits
from jobledger._core.jsondoc import encoded_size
from jobledger.runner import (
    RUN_ENTITY,
    TASK_ENTITY,
    JobDefinition,
    Runner,
    RunStatus,
    Task,
    TaskBlocked,
    TaskContext,
)
from jobledger.testing import ManualClock
from jobledger.testing.runs import inline_runner

#: A run id and a task identifier near their longest: the task's launch job is the largest document.
RUN_ID = "r" * 170
LONG_TASK = "t" * 190


class Ran(list[str]):
    """A task function that records the identifier of every task it runs, in order."""

    def __call__(self, context: TaskContext) -> None:
        """Run as a task: record which."""
        self.append(context.task.identifier)


def document_sizes(definition: JobDefinition) -> dict[str, list[int]]:
    """Run ``definition`` on a roomy ledger: the sizes of the documents written, by entity."""
    jobs = Jobs(clock=ManualClock(), delivery="inline")
    sizes: dict[str, list[int]] = {}

    def measure(event: JobEvent) -> None:
        job = jobs.get(event.job_id)
        sizes.setdefault(job.entity, []).extend((encoded_size(job.input), encoded_size(job.state)))

    jobs.subscribe(measure)
    inline_runner(jobs, [definition], clock=ManualClock()).invoke("D", run_id=RUN_ID)
    return sizes


class TestARunOverTheLimits:
    """The writes the ledger may refuse, and how the run ends each time."""

    def test_a_launch_the_ledger_refuses_fails_the_run_before_its_task_starts(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Step 2's launch job does not fit: its task never runs and the run fails, saying why."""
        ran = Ran()
        definition = JobDefinition("D", [Task("first", ran), Task(LONG_TASK, ran, launch_order=2)])
        sizes = document_sizes(definition)
        ran.clear()
        limit = max(sizes[TASK_ENTITY]) - 1
        # Everything but the long task's launch fits (checked, or the test proves nothing).
        assert max(sizes[RUN_ENTITY]) < limit
        jobs = Jobs(clock=ManualClock(), limits=Limits(max_bytes=limit))

        with caplog.at_level(logging.ERROR, logger="jobledger.runner"):
            result = inline_runner(jobs, [definition], clock=ManualClock()).invoke(
                "D", run_id=RUN_ID
            )

        assert ["first"] == ran
        assert (RunStatus.FAILED, {"first": "completed", LONG_TASK: "pending"}) == (
            result.status,
            result.statuses(),
        )
        assert result.failure is not None
        assert result.failure.startswith("the ledger refused to record the run: ")
        assert f"larger than {limit} bytes" in result.failure
        assert jobs.get(RUN_ID).phase.is_terminal
        assert result == Runner(jobs, [definition]).result(RUN_ID)
        assert 1 == len([record for record in caplog.records if record.name == "jobledger.runner"])

    def test_a_resume_the_ledger_cannot_claim_raises_and_leaves_the_run_blocked(self) -> None:
        """A ledger with smaller limits refuses the claim: the run stays blocked, resumable."""

        def guard(context: TaskContext) -> None:
            if context.force is None:
                raise TaskBlocked("over the threshold")

        definition = JobDefinition("D", [Task("guard", guard, guarded=True)])
        repository = InMemoryRepository()
        roomy = Jobs(repository=repository)
        assert (
            RunStatus.BLOCKED
            == inline_runner(roomy, [definition]).invoke("D", run_id="run-1").status
        )
        blocked = roomy.get("run-1")
        tight = Jobs(repository=repository, limits=Limits(max_bytes=200))

        with pytest.raises(InvalidJobDataError, match="larger than 200 bytes"):
            inline_runner(tight, [definition]).resume("run-1", force=10)

        assert blocked == roomy.get("run-1")
        resumed = inline_runner(roomy, [definition]).resume("run-1", force=10)
        assert RunStatus.COMPLETED == resumed.status

    def test_a_new_run_the_ledger_cannot_start_is_refused_and_blocks_nothing(self) -> None:
        """A start over the limits raises and stores no run; the next invoke is not refused."""
        jobs = Jobs(limits=Limits(max_bytes=1000))
        ran = Ran()
        runner = Runner(jobs, [JobDefinition("D", [Task("only", ran)])])

        with pytest.raises(InvalidJobDataError):
            runner.invoke("D", run_id="run-1", input="x" * 2000)

        assert [] == ran
        assert [] == list(jobs.find(entity=RUN_ENTITY).jobs)
        assert RunStatus.COMPLETED == runner.invoke("D", run_id="run-2").status
