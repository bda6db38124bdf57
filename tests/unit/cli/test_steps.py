"""``jobledger steps -j JOB``: the job's steps and tasks in launch order (Get-JobSteps)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from jobledger.cli import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


class TestSteps:
    """Listing a job definition's steps."""

    @pytest.mark.parametrize("flag", ["-j", "--job-identifier"])
    def test_the_demo_jobs_steps_are_listed_in_launch_order(
        self, jobledger: Jobledger, flag: str
    ) -> None:
        """Each task under its step, with type, side, parents and what is special about it."""
        result = jobledger("steps", flag, "hr-nightly")

        assert ExitCode.OK == result.exit_code
        assert [
            "hr-nightly (Nightly HR synchronization): 4 tasks in 3 steps",
            "step  task                 type         side    parents                      notes",
            "1     export-hr            export       agent",
            "      export-directory     export       agent  " + " " * 30 + "warning mode",
            (
                "2     synchronize          synchronize  server  export-hr, export-directory  "
                "guarded, has a repair variant"
            ),
            "3     provision-directory  provision    server  synchronize",
        ] == jobledger.lines(result.stdout)

    def test_json_lists_the_steps_and_each_tasks_fields(self, jobledger: Jobledger) -> None:
        """--json gives each step's launch order and its tasks' fields."""
        result = jobledger("steps", "-j", "nightly", "--app", jobledger.app, "--json")

        document = json.loads(result.stdout)
        assert ("nightly", [1, 2, 3]) == (
            document["JobIdentifier"],
            [step["LaunchOrder"] for step in document["Steps"]],
        )
        assert {
            "Identifier": "synchronize",
            "Type": "synchronize",
            "Side": "server",
            "Parents": ["export_people", "export_accounts"],
            "WarningMode": False,
            "Guarded": True,
            "HasRepair": True,
            "Timeout": None,
        } == document["Steps"][1]["Tasks"][0]

    def test_an_unknown_job_is_not_found(self, jobledger: Jobledger) -> None:
        """A job the app does not define exits 7."""
        result = jobledger("steps", "-j", "weekly")

        assert ExitCode.NOT_FOUND == result.exit_code
