"""The PostgreSQL server the integration tests use is reachable."""

from __future__ import annotations

import psycopg


class TestPostgresServer:
    """The server named by JOBLEDGER_TEST_POSTGRES."""

    def test_answers_a_query(self, postgres_conninfo: str) -> None:
        """A connection to the test server runs ``SELECT 1`` and gets 1 back."""
        with psycopg.connect(postgres_conninfo) as conn:
            row = conn.execute("SELECT 1").fetchone()

        assert (1,) == row
