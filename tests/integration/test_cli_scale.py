"""A run of 10,000 tasks through the command line, as a user would start it (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
APP_FOLDER = Path(__file__).resolve().parent / "scale_app"
#: Tasks in the run; JOBLEDGER_SCALE_TASKS=100000 tries the issue's largest run.
TASKS = int(os.environ.get("JOBLEDGER_SCALE_TASKS", "10000"))


def _environment() -> dict[str, str]:
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("JOBLEDGER_") and name != "PYTHONPATH"
    }
    paths = [str(REPOSITORY / "src"), str(APP_FOLDER)]
    return {**kept, "PYTHONPATH": os.pathsep.join(paths), "JOBLEDGER_SCALE_TASKS": str(TASKS)}


@pytest.mark.slow
class TestRunsAtScale:
    """A big run completes with default settings, through the CLI."""

    def test_a_run_of_ten_thousand_tasks_completes_through_the_cli(self, tmp_path: Path) -> None:
        """Every task of a 10,000-task job (100 steps of 100) runs on the SQLite default."""
        store = str(tmp_path / "jobs.db")
        common = ["--app", "big_jobs:definitions", "--store", store]

        invoked = subprocess.run(  # noqa: S603  (our own command line, fixed arguments)
            [sys.executable, "-m", "jobledger", "invoke", "-j", "big", *common, "--json"],
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

        assert 0 == invoked.returncode, invoked.stderr[-2000:]
        document = json.loads(invoked.stdout)
        assert {"Done": TASKS, "Total": TASKS} == document["Progress"]
        assert "completed" == document["Status"]
        run_id = document["Run"]["JobId"]
        last = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "jobledger", "show", f"{run_id}/{TASKS}", *common, "--json"],
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert 0 == last.returncode, last.stderr[-2000:]
