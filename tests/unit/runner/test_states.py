"""The run's state machine table and its diagram."""

from __future__ import annotations

from jobledger.runner import (
    RUN_TRANSITIONS,
    RunStatus,
    RunTrigger,
    TaskStatus,
    run_state_mermaid,
)
from jobledger.runner._states import next_run_status


class TestRunTransitions:
    """RUN_TRANSITIONS, next_run_status and run_state_mermaid."""

    def test_the_table_holds_the_runner_semantics(self) -> None:
        """A run starts running, ends four ways, resumes from blocked, and may be taken over."""
        assert {
            (None, RunTrigger.INVOKE): RunStatus.RUNNING,
            (RunStatus.RUNNING, RunTrigger.COMPLETE): RunStatus.COMPLETED,
            (RunStatus.RUNNING, RunTrigger.FAIL): RunStatus.FAILED,
            (RunStatus.RUNNING, RunTrigger.BLOCK): RunStatus.BLOCKED,
            (RunStatus.RUNNING, RunTrigger.CANCEL): RunStatus.CANCELED,
            (RunStatus.RUNNING, RunTrigger.TAKE_OVER): RunStatus.RUNNING,
            (RunStatus.BLOCKED, RunTrigger.RESUME): RunStatus.RUNNING,
            (RunStatus.BLOCKED, RunTrigger.CANCEL): RunStatus.CANCELED,
        } == dict(RUN_TRANSITIONS)

    def test_moves_not_in_the_table_are_refused(self) -> None:
        """A terminal run does not resume; a blocked run is not taken over."""
        assert next_run_status(RunStatus.COMPLETED, RunTrigger.RESUME) is None
        assert next_run_status(RunStatus.BLOCKED, RunTrigger.TAKE_OVER) is None

    def test_the_diagram_draws_every_row_and_the_terminal_statuses(self) -> None:
        """run_state_mermaid renders one arrow per table row, then the exits."""
        assert [
            "stateDiagram-v2",
            "    [*] --> running: invoke",
            "    running --> completed: complete",
            "    running --> failed: fail",
            "    running --> blocked: block",
            "    running --> canceled: cancel",
            "    running --> running: take over",
            "    blocked --> running: resume",
            "    blocked --> canceled: cancel",
            "    completed --> [*]",
            "    failed --> [*]",
            "    canceled --> [*]",
        ] == run_state_mermaid().splitlines()

    def test_done_task_statuses_are_the_ones_a_resume_skips(self) -> None:
        """Completed, warning, failed and skipped tasks are done; the others run on resume."""
        assert {"completed", "warning", "failed", "skipped"} == {
            status.value for status in TaskStatus if status.is_done
        }
