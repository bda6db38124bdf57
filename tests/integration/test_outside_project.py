"""An outside project installs jobledger and tests its workflow with the plugin alone.

The project in ``tests/outside`` (``hr-sync``) depends on jobledger like any user's
project: this test installs both into a fresh virtual environment, from this source
tree, without hypothesis, and runs the project's own pytest there. Its tests have no
conftest and pass no ``-p``: they pass only if installing jobledger registered the
plugin through its ``pytest11`` entry point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
OUTSIDE = REPOSITORY / "tests" / "outside"

#: What the venv's Python reports about its jobledger, plugin and hypothesis.
PROBE = """
import importlib.metadata, importlib.util, json, jobledger
plugins = importlib.metadata.entry_points(group="pytest11").select(name="jobledger")
print(json.dumps({
    "jobledger": jobledger.__file__,
    "plugins": [plugin.value for plugin in plugins],
    "hypothesis": importlib.util.find_spec("hypothesis") is not None,
}))
"""

#: Environment variables that would change what the inner pytest loads.
LEAKS = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
)


def run(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` with a clean environment; fail the test with its output."""
    environment = {name: value for name, value in os.environ.items() if name not in LEAKS}
    result = subprocess.run(  # noqa: S603  (our own interpreter and pip, fixed arguments)
        command,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{command} exited {result.returncode}\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


def outcomes(summary: str) -> dict[str, int]:
    """The counts of pytest's closing line (``6 passed, 1 skipped in 1.2s``) by outcome."""
    return {kind: int(count) for count, kind in re.findall(r"(\d+) (\w+)", summary)}


@pytest.mark.slow
class TestOutsideProject:
    """A project that only installs jobledger gets the fixtures and its tests pass."""

    def test_its_tests_pass_with_the_installed_plugin(self, tmp_path: Path) -> None:
        """Installed in a fresh venv without hypothesis, hr-sync's tests all pass."""
        project = tmp_path / "hr-sync"
        shutil.copytree(
            OUTSIDE,
            project,
            ignore=shutil.ignore_patterns("__pycache__", ".*_cache", ".benchmarks"),
        )
        venv = tmp_path / "venv"
        run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
        python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
        run(
            [python, "-m", "pip", "install", "--quiet", REPOSITORY, f"{project}[test]"],
            cwd=tmp_path,
        )

        probe = json.loads(run([python, "-c", PROBE], cwd=tmp_path).stdout)
        assert (["jobledger.testing.plugin"], False) == (probe["plugins"], probe["hypothesis"])
        assert Path(probe["jobledger"]).is_relative_to(venv)

        result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
        summary = result.stdout.strip().splitlines()[-1]
        assert {"passed": 6} == outcomes(summary)
