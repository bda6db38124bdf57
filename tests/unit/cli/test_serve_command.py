"""``jobledger serve``'s options that the dashboard adds."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


class TestServeApp:
    """``jobledger serve --app``: the definitions the dashboard resumes runs with."""

    def test_an_app_that_cannot_be_imported_stops_serve_before_it_listens(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A bad --app is a usage error (exit 2) naming the module; no server starts."""
        served = jobledger("serve", "--store", store, "--port", "0", "--app", "no_such_module:x")
        assert 2 == served.exit_code
        assert "no_such_module" in served.output
