"""Ctrl-C while a command starts, or once its run has ended: a quiet end, never a traceback."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any

import pytest

from jobledger.cli import ExitCode
from jobledger.cli._render import run_summary

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


def press_ctrl_c(*_args: object, **_kwargs: object) -> None:
    """Stand in for a step of the start-up, pressing Ctrl-C (SIGINT to this process) in it."""
    os.kill(os.getpid(), signal.SIGINT)


class TestCtrlCOutsideARun:
    """SIGINT when no run is being driven."""

    @pytest.mark.parametrize("step", ["load_app", "open_ledger"])
    def test_during_start_up_it_exits_130_in_one_line(
        self, jobledger: Jobledger, monkeypatch: pytest.MonkeyPatch, step: str
    ) -> None:
        """Interrupted while it loads the app or opens the store: exit 130, no traceback."""
        monkeypatch.setattr(f"jobledger.cli._run.{step}", press_ctrl_c)

        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app)

        assert (ExitCode.INTERRUPTED, ["jobledger: interrupted"]) == (
            result.exit_code,
            jobledger.lines(result.stderr),
        )

    def test_just_after_the_run_ended_the_outcome_stands(
        self, jobledger: Jobledger, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A Ctrl-C while the end is printed changes nothing: the run's own exit code (0)."""

        def interrupted_summary(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401  (a stand-in)
            press_ctrl_c()
            return run_summary(*args, **kwargs)

        monkeypatch.setattr("jobledger.cli._run.run_summary", interrupted_summary)

        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app)

        assert (ExitCode.OK, True, signal.default_int_handler) == (
            result.exit_code,
            " completed, " in result.stdout,
            signal.getsignal(signal.SIGINT),
        )
