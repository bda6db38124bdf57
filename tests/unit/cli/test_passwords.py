"""A store's password is never printed: errors, hints, descriptions and ``repr`` all mask it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from jobledger.cli import ExitCode, StoreUnreachableError
from jobledger.cli._password import masked
from jobledger.cli._render import Hints
from jobledger.cli._store import StoreAddress

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.cli.conftest import Jobledger

SECRET = "Sup3rS3cretPW"  # noqa: S105  (what must never show)
#: A server that refuses at once: nothing listens on port 1.
URL = f"postgresql://u:{SECRET}@127.0.0.1:1/db"

COMMANDS = [
    ("list",),
    ("show", "x"),
    ("history", "x"),
    ("watch", "--timeout", "0"),
    ("cancel", "x"),
    ("resume", "x", "--app", "cli_test_app:definitions"),
    ("invoke", "-j", "nightly", "--app", "cli_test_app:definitions"),
    ("demo",),
]


@pytest.fixture(autouse=True)
def quick_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up on the unreachable server quickly."""
    monkeypatch.setattr("jobledger.cli._store.POSTGRES_TIMEOUT", 0.2)


class TestPasswords:
    """What the command line prints about a store with a password."""

    @pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
    def test_no_command_prints_the_password_of_the_store_in_the_environment(
        self, jobledger: Jobledger, args: tuple[str, ...]
    ) -> None:
        """JOBLEDGER_STORE's password never shows; the store is named with it masked (exit 8)."""
        result = jobledger(*args, env={"JOBLEDGER_STORE": URL})

        assert (ExitCode.STORE_UNREACHABLE, False, True) == (
            result.exit_code,
            SECRET in result.output,
            "'postgresql://u:***@127.0.0.1:1/db'" in result.stderr,
        )

    @pytest.mark.parametrize("where", ["before", "after"])
    def test_debug_tracebacks_mask_the_password_too(self, jobledger: Jobledger, where: str) -> None:
        """--debug's traceback goes through the same mask as the one line."""
        args = ["--debug", "list", "--store", URL]
        if where == "after":
            args = ["list", "--store", URL, "--debug"]

        result = jobledger(*args)

        assert (ExitCode.STORE_UNREACHABLE, True, False) == (
            result.exit_code,
            "Traceback" in result.stderr,
            SECRET in result.output,
        )

    def test_a_conninfo_is_postgresql_and_makes_no_file(
        self, jobledger: Jobledger, tmp_path: Path
    ) -> None:
        """key=value with a password is a PostgreSQL store: masked, and no SQLite file is made."""
        result = jobledger("list", "--store", f"host=127.0.0.1 port=1 password={SECRET}")

        assert (ExitCode.STORE_UNREACHABLE, False, [], True) == (
            result.exit_code,
            SECRET in result.output,
            [path.name for path in tmp_path.iterdir()],
            "'host=127.0.0.1 port=1 password=***'" in result.stderr,
        )

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (URL, "postgresql://u:***@127.0.0.1:1/db"),
            ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),
            ("postgresql://[::1", "postgresql://[::1"),
            ("postgresql://u:pw@[::1", "postgresql://u:***@[::1"),
            (
                "postgresql://u@db/x?password=pw&sslmode=require",
                "postgresql://u@db/x?password=***&sslmode=require",
            ),
            ("host=db password=pw user=u", "host=db password=*** user=u"),
            ("host=db password = 'p w\\' x' user=u", "host=db password = *** user=u"),
            ("password=pw", "password=***"),
            ("jobs.db", "jobs.db"),
            ("postgresql://db/x?schema=s", "postgresql://db/x?schema=s"),
        ],
    )
    def test_every_form_of_password_is_masked(self, given: str, expected: str) -> None:
        """URLs (even broken ones), query parameters and key=value strings lose their password."""
        assert expected == masked(given)

    def test_the_address_and_hints_do_not_repr_the_password(self) -> None:
        """The repr of a store address or of hints, and the commands hints write, mask it."""
        address = StoreAddress.parse(f"{URL}?schema=ledger")
        hints = Hints(store=URL)

        assert [False, False, "jobledger show r1 --store 'postgresql://u:***@127.0.0.1:1/db'"] == [
            SECRET in repr(address),
            SECRET in repr(hints),
            hints.command("show", "r1"),
        ]

    def test_store_errors_keep_the_masked_store(self) -> None:
        """The error's attribute and message hold the store with its password masked."""
        error = StoreUnreachableError(URL, f"cannot log in to {URL}")

        assert ("postgresql://u:***@127.0.0.1:1/db", False) == (
            error.store,
            SECRET in f"{error} {error!r}",
        )

    def test_a_conninfo_names_its_schema(self) -> None:
        """schema=NAME in a key=value store is jobledger's, taken out of what libpq gets."""
        address = StoreAddress.parse("host=db dbname=jobs schema=ledger user=app")

        assert ("postgres", "host=db dbname=jobs user=app", "ledger") == (
            address.kind,
            address.target,
            address.schema,
        )
