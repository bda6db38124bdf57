"""``jobledger clients``: add, list, rotate and remove the service's clients in the store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jobledger.http import client_store_beside
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


def authenticates(store: str, client_id: str, secret: str) -> bool:
    """Whether the store takes ``secret`` as the client's."""
    repository = SQLiteRepository(store)
    clients = client_store_beside(repository)
    try:
        clients.authenticate(client_id, secret)
    except PermissionError:
        return False
    finally:
        clients.close()
        repository.close()
    return True


class TestClientsCommands:
    """The clients commands keep clients beside the ledger."""

    def test_add_prints_the_secret_alone_on_the_last_line(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """The new secret is the last line, and it authenticates the client."""
        added = jobledger(
            "clients", "add", "Job", "--allow", "read", "--allow", "start:hr", "--store", store
        )
        secret = added.stdout.splitlines()[-1]
        assert (0, True) == (added.exit_code, authenticates(store, "Job", secret))

    def test_list_shows_permissions_and_no_secret(self, jobledger: Jobledger, store: str) -> None:
        """List --json gives each client's id and permissions, and never a secret."""
        added = jobledger("clients", "add", "Job", "--allow", "read:*", "--store", store)
        listed = jobledger("clients", "list", "--json", "--store", store)
        rows = json.loads(listed.stdout)
        assert [("Job", ["read"])] == [(row["ClientId"], row["Permissions"]) for row in rows]
        assert added.stdout.splitlines()[-1] not in listed.stdout

    def test_rotate_and_remove_end_the_old_secret(self, jobledger: Jobledger, store: str) -> None:
        """Rotate prints a new secret that replaces the old one; remove ends the client."""
        old = jobledger(
            "clients", "add", "Job", "--allow", "*", "--store", store
        ).stdout.splitlines()[-1]
        new = jobledger("clients", "rotate", "Job", "--store", store).stdout.splitlines()[-1]
        assert (False, True) == (authenticates(store, "Job", old), authenticates(store, "Job", new))
        removed = jobledger("clients", "remove", "Job", "--store", store)
        assert (0, False) == (removed.exit_code, authenticates(store, "Job", new))

    def test_a_bad_permission_and_a_taken_id_fail(self, jobledger: Jobledger, store: str) -> None:
        """An unknown action and a taken id end with a non-zero exit code and a message."""
        bad = jobledger("clients", "add", "Job", "--allow", "write", "--store", store)
        jobledger("clients", "add", "Job", "--allow", "read", "--store", store)
        taken = jobledger("clients", "add", "Job", "--allow", "read", "--store", store)
        assert (True, True) == (bad.exit_code != 0, taken.exit_code != 0)
        assert "exists already" in taken.stderr
