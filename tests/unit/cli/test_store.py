"""``--store`` addresses: SQLite paths and URLs, PostgreSQL URLs with a schema."""

from __future__ import annotations

import pytest

from jobledger.cli import StoreSpecError
from jobledger.cli._store import StoreAddress


class TestStoreAddress:
    """Reading what --store (or JOBLEDGER_STORE) says."""

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("jobledger.db", ("sqlite", "jobledger.db", None)),
            ("/var/lib/jobs.db", ("sqlite", "/var/lib/jobs.db", None)),
            ("sqlite:///jobs.db", ("sqlite", "jobs.db", None)),
            ("sqlite:////var/lib/jobs.db", ("sqlite", "/var/lib/jobs.db", None)),
            ("postgresql://app@db/jobs", ("postgres", "postgresql://app@db/jobs", None)),
            (
                "postgres://app@db/jobs?schema=ledger",
                ("postgres", "postgres://app@db/jobs", "ledger"),
            ),
            (
                "postgresql://app@db/jobs?sslmode=require&schema=s",
                ("postgres", "postgresql://app@db/jobs?sslmode=require", "s"),
            ),
        ],
    )
    def test_each_form_names_its_store(
        self, given: str, expected: tuple[str, str, str | None]
    ) -> None:
        """A plain path and sqlite:/// name a file; postgresql:// a database and maybe a schema."""
        address = StoreAddress.parse(given)

        assert expected == (address.kind, address.target, address.schema)

    @pytest.mark.parametrize("given", ["", "   ", "sqlite:///", "redis://cache/0"])
    def test_what_is_not_a_store_is_refused(self, given: str) -> None:
        """Empty values, an SQLite URL without a file and unknown schemes are refused."""
        with pytest.raises(StoreSpecError):
            StoreAddress.parse(given)

    def test_the_description_hides_the_password(self) -> None:
        """A PostgreSQL URL is described without its password, with its schema."""
        address = StoreAddress.parse("postgresql://app:s3cret@db:5433/jobs?schema=ledger")

        assert "PostgreSQL postgresql://app:***@db:5433/jobs (schema ledger)" == address.describe()
