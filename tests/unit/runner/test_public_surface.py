"""The public names of jobledger.runner."""

from __future__ import annotations

import jobledger.runner


class TestPublicSurface:
    """jobledger.runner.__all__."""

    def test_all_is_sorted_and_names_exactly_the_public_names(self) -> None:
        """Every public name is exported, sorted, and nothing private leaks."""
        public = {
            name
            for name in vars(jobledger.runner)
            # isidentifier: pytest's assertion rewriting adds "@py_builtins" to
            # modules of a distribution that registers a pytest plugin.
            if name.isidentifier() and not name.startswith("_") and name != "annotations"
        }

        assert sorted(jobledger.runner.__all__, key=lambda n: (not n.isupper(), n)) == list(
            jobledger.runner.__all__
        )
        assert public == set(jobledger.runner.__all__)

    def test_runner_errors_are_jobledger_errors(self) -> None:
        """Every runner error is caught by ``except jobledger.JobledgerError``."""
        exceptions = {
            name
            for name in jobledger.runner.__all__
            if isinstance(getattr(jobledger.runner, name), type)
            and issubclass(getattr(jobledger.runner, name), BaseException)
        }

        assert {
            "DefinitionBusyError",
            "DefinitionError",
            "RunActiveError",
            "RunNotFoundError",
            "RunNotResumableError",
            "RunTakenOverError",
            "RunnerError",
            "SelectionError",
            "TaskBlocked",
            "TaskCanceled",
            "TaskTimeoutError",
            "UnknownDefinitionError",
        } == exceptions
        assert all(
            issubclass(getattr(jobledger.runner, name), jobledger.runner.RunnerError)
            for name in exceptions
        )
        assert issubclass(jobledger.runner.RunnerError, jobledger.JobledgerError)
