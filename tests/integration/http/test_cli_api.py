"""The command line against a jobs service: Invoke-Job's --api-url, --api-client-id, --api-secret.

The agent (this test's ``jobledger`` processes) runs the tasks; the server (a
real ``jobledger serve``) keeps the runs. Every command reaches the ledger only
through the service.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.integration.http.conftest import environment

from jobledger import Jobs
from jobledger.runner import load_run

if TYPE_CHECKING:
    from tests.integration.http.conftest import Clients, Server

#: Generous bound for one command on a loaded machine.
COMMAND_SECONDS = 120


def jobledger(
    server: Server, secret: str, *args: str, actor: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``jobledger ARGS`` as an agent of ``server`` with the client ``agent``.

    ``actor`` is set as ``JOBLEDGER_ACTOR`` in the command's environment.
    """
    return subprocess.run(  # noqa: S603  (our own command line, with fixed arguments)
        [
            sys.executable,
            "-m",
            "jobledger",
            *args,
            "--api-url",
            server.url,
            "--api-client-id",
            "agent",
            "--api-secret",
            secret,
        ],
        env={**environment(), **({} if actor is None else {"JOBLEDGER_ACTOR": actor})},
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )


def run_id_of(output: str) -> str:
    """The run id in the JSON a run command printed."""
    document = json.loads(output)
    run_id: str = document["Run"]["JobId"]
    return run_id


class TestInvokeThroughTheService:
    """``jobledger invoke`` and the run commands with --api-url."""

    def test_a_run_is_recorded_on_the_server_repaired_from_another_process(
        self, server: Server, clients: Clients
    ) -> None:
        """The demo job blocks on the server's ledger; a second process shows and repairs it.

        The client has the ``run`` permission only: what driving runs takes.
        """
        secret = clients.add("agent", "run")

        invoked = jobledger(server, secret, "invoke", "-j", "hr-nightly", "--json")

        assert 5 == invoked.returncode, invoked.stderr  # blocked at its breakpoint
        run_id = run_id_of(invoked.stdout)
        shown = jobledger(server, secret, "show", run_id, "--json")
        assert 0 == shown.returncode, shown.stderr
        assert "blocked" == json.loads(shown.stdout)["Status"]
        resumed = jobledger(server, secret, "resume", run_id, "--repair", "--json")
        assert 0 == resumed.returncode, resumed.stderr
        assert "completed" == json.loads(resumed.stdout)["Status"]
        launch = jobledger(server, secret, "history", f"{run_id}/1", "--json")
        assert 0 == launch.returncode, launch.stderr

    def test_a_blocked_run_is_canceled_from_another_process(
        self, server: Server, clients: Clients
    ) -> None:
        """A cancel through the service ends the blocked run canceled."""
        secret = clients.add("agent", "*")
        invoked = jobledger(server, secret, "invoke", "-j", "hr-nightly", "--json")
        run_id = run_id_of(invoked.stdout)

        canceled = jobledger(server, secret, "cancel", run_id, "--json")

        assert 0 == canceled.returncode, canceled.stderr
        shown = jobledger(server, secret, "show", run_id, "--json")
        assert "canceled" == json.loads(shown.stdout)["Status"]

    def test_a_client_that_may_only_read_cannot_invoke(
        self, server: Server, clients: Clients
    ) -> None:
        """The service's permissions hold for the command line: 403 becomes one line, no run."""
        secret = clients.add("agent", "read")

        invoked = jobledger(server, secret, "invoke", "-j", "hr-nightly")

        assert 0 != invoked.returncode
        assert "Traceback" not in invoked.stderr
        assert 1 == len(invoked.stderr.strip().splitlines()), invoked.stderr
        listed = jobledger(server, secret, "list", "--runs", "--json")
        assert 0 == listed.returncode, listed.stderr
        assert [] == json.loads(listed.stdout)["Jobs"]

    def test_without_the_secret_the_command_says_what_is_missing(self, server: Server) -> None:
        """--api-url alone is a usage error naming the missing options."""
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "jobledger", "list", "--api-url", server.url],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )

        assert 2 == done.returncode
        assert "--api-client-id and --api-secret" in done.stderr


class TestWatchThroughTheService:
    """``jobledger watch`` follows the service's event feed."""

    def test_watch_shows_a_runs_events_from_the_start(
        self, server: Server, clients: Clients
    ) -> None:
        """The first events of a run recorded on the server come back as JSON lines."""
        secret = clients.add("agent", "run")
        run_id = run_id_of(jobledger(server, secret, "invoke", "-j", "hr-nightly", "--json").stdout)

        watched = jobledger(
            server,
            secret,
            "watch",
            "--run",
            run_id,
            "--from-start",
            "--max-events",
            "3",
            "--timeout",
            "60",
            "--json",
        )

        assert 0 == watched.returncode, watched.stderr
        events = [json.loads(line)["Event"] for line in watched.stdout.splitlines()]
        assert 3 == len(events)
        assert all(event["JobId"] in {run_id, f"{run_id}/1", f"{run_id}/2"} for event in events)


class TestActorThroughTheService:
    """``cancel --actor`` and ``JOBLEDGER_ACTOR`` with --api-url."""

    def test_the_environments_actor_is_ignored(self, server: Server, clients: Clients) -> None:
        """With JOBLEDGER_ACTOR set to another name, cancel works and records the client."""
        secret = clients.add("agent", "*")
        job = Jobs(clients.repository).start(service="hr", entity="e", type="t")

        canceled = jobledger(server, secret, "cancel", job.id, actor="alice")

        assert 0 == canceled.returncode, canceled.stderr
        assert ["agent"] == [update.actor for update in clients.repository.updates(job.id)]

    def test_invoke_and_resume_ignore_the_environments_actor(
        self, server: Server, clients: Clients
    ) -> None:
        """With JOBLEDGER_ACTOR set, invoke and resume through the service name its client."""
        secret = clients.add("agent", "run")

        invoked = jobledger(server, secret, "invoke", "-j", "hr-nightly", "--json", actor="alice")
        assert 5 == invoked.returncode, invoked.stderr  # blocked at its breakpoint
        run_id = run_id_of(invoked.stdout)
        resumed = jobledger(server, secret, "resume", run_id, "--repair", "--json", actor="alice")

        assert 0 == resumed.returncode, resumed.stderr
        assert {"agent"} == {update.actor for update in clients.repository.updates(run_id)}
        state = load_run(Jobs(clients.repository), run_id).state
        assert state is not None
        assert state.drive is not None
        assert "agent" == state.drive.actor

    def test_an_explicit_other_actor_is_refused(self, server: Server, clients: Clients) -> None:
        """An explicit --actor alice through the service is refused, naming the client."""
        secret = clients.add("agent", "*")
        job = Jobs(clients.repository).start(service="hr", entity="e", type="t")

        canceled = jobledger(server, secret, "cancel", job.id, "--actor", "alice")

        assert 0 != canceled.returncode
        assert "agent" in canceled.stderr
        assert () == tuple(clients.repository.updates(job.id))
