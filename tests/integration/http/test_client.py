"""JobsClient against a real server: the library's typed errors, batches, the event feed (SSE)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from jobledger import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobCompleted,
    JobEvent,
    JobNotFoundError,
    JobQuery,
    Jobs,
    JobStarted,
    RequestIdConflictError,
    StartJob,
    StorageUnavailableError,
    UpdateJob,
)
from jobledger.http import AuthenticationError, JobsClient, PermissionDeniedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.http.conftest import Clients, Namespaced, Server

#: A bound on every wait; nothing is timed.
PATIENCE = 60.0


def client(server: Server | Namespaced, clients: Clients, *allow: str) -> JobsClient:
    """A JobsClient for a new client with these permissions (everything if none)."""
    client_id = f"client-{len(clients.store.clients())}"
    secret = clients.add(client_id, *(allow or ("*",)))
    return JobsClient(server.url, clients.prefix + client_id, secret)


class TestTypedErrors:
    """JobsClient raises the library's own errors, with their facts.

    These tests share one server per backend: their names get the test's prefix (``server.id``).
    """

    @pytest.fixture
    def server(self, on_shared: Namespaced) -> Namespaced:
        """The shared server, seen with this test's prefix."""
        return on_shared

    @pytest.fixture
    def clients(self, shared_clients: Clients) -> Clients:
        """The shared store's clients, with this test's prefix."""
        return shared_clients

    def test_a_stale_etag_raises_concurrency_error(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """A stale ETag raises ConcurrencyError carrying the current ETag."""
        with client(server, clients) as jobs:
            job = jobs.start(service="hr", entity="employee", type="sync")
            changed = jobs.update(job.id, etag=job.etag, status="exporting")
            with pytest.raises(ConcurrencyError) as raised:
                jobs.update(job.id, etag=job.etag)
        assert (job.etag, changed.etag) == (raised.value.expected_etag, raised.value.current_etag)

    def test_each_refusal_is_its_library_error(self, server: Namespaced, clients: Clients) -> None:
        """Not found, exists, invalid transition, bad data and a reused request id are typed."""
        with client(server, clients) as jobs:
            j1, r1 = server.id("j1"), server.id("r1")
            job = jobs.start(service="hr", entity="e", type="t", job_id=j1, request_id=r1)
            ended = jobs.complete(job.id, etag="*")
            raised = []
            attempts: tuple[Callable[[], object], ...] = (
                lambda: jobs.get(server.id("nope")),
                lambda: jobs.start(service="hr", entity="e", type="t", job_id=j1),
                lambda: jobs.cancel(job.id, etag=ended.etag),
                lambda: jobs.start(service="hr", entity="e", type="t", state={"x": float("inf")}),
                lambda: jobs.start(service="it", entity="e", type="t", request_id=r1),
            )
            for attempt in attempts:
                with pytest.raises(Exception) as error:  # noqa: PT011  (each is checked below)
                    attempt()
                raised.append(type(error.value))
        assert [
            JobNotFoundError,
            JobAlreadyExistsError,
            InvalidTransitionError,
            InvalidJobDataError,
            RequestIdConflictError,
        ] == raised

    def test_a_refused_permission_and_a_wrong_secret_are_typed(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """403 raises PermissionDeniedError; a wrong secret AuthenticationError."""
        with (
            client(server, clients, "read", "start:hr") as limited,
            pytest.raises(PermissionDeniedError) as refused,
        ):
            limited.start(service="finance", entity="e", type="t")
        with (
            JobsClient(server.url, server.id("client-0"), "guess") as wrong,
            pytest.raises(AuthenticationError),
        ):
            wrong.get("x")
        assert ("start", "finance") == (refused.value.action, refused.value.service)

    def test_no_server_raises_storage_unavailable(self) -> None:
        """A service that does not answer raises StorageUnavailableError."""
        with (
            JobsClient("http://127.0.0.1:9", "a", "b", timeout=2) as jobs,
            pytest.raises(StorageUnavailableError),
        ):
            jobs.get("x")

    def test_queries_read_back_what_commands_did(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """get, updates and find answer as the local ledger does."""
        with client(server, clients) as jobs:
            hr = server.id("hr")
            job = jobs.start(service=hr, entity="e", type="t", state={"done": 0})
            for done in range(3):
                job = jobs.update(job.id, etag=job.etag, state_update={"done": done + 1})
            assert job == jobs.get(job.id)
            assert [1, 2, 3] == [update.update_id for update in jobs.updates(job.id)]
            assert [job.id] == [found.id for found in jobs.find(service=hr).jobs]

    def test_a_batch_is_all_or_nothing(self, server: Namespaced, clients: Clients) -> None:
        """handle_all applies every command, or none when one is refused."""
        with client(server, clients) as jobs:
            done = jobs.handle_all(
                [
                    StartJob(service="hr", entity="e", type="t", job_id=server.id("b1")),
                    UpdateJob(job_id=server.id("b1"), etag="*", status="exporting"),
                ]
            )
            with pytest.raises(JobNotFoundError):
                jobs.handle_all(
                    [
                        StartJob(service="hr", entity="e", type="t", job_id=server.id("b2")),
                        UpdateJob(job_id=server.id("missing"), etag="*"),
                    ]
                )
            with pytest.raises(JobNotFoundError):
                jobs.get(server.id("b2"))
        assert ["started", "exporting"] == [job.status for job in done]

    def test_a_refused_batch_names_the_refused_command(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """The error of a refused batch has the refused command's place as batch_index."""
        with client(server, clients) as jobs:
            job = jobs.start(service="hr", entity="e", type="t", job_id=server.id("n1"))
            fresh = StartJob(service="hr", entity="e", type="t", job_id=server.id("n2"))
            with pytest.raises(ConcurrencyError) as stale:
                jobs.handle_all([fresh, UpdateJob(job_id=job.id, etag="stale")])
            with pytest.raises(JobNotFoundError) as missing:
                jobs.handle_all(
                    [
                        fresh,
                        UpdateJob(job_id=job.id, etag="*"),
                        UpdateJob(job_id=server.id("no"), etag="*"),
                    ]
                )
            with pytest.raises(ConcurrencyError) as alone:
                jobs.update(job.id, etag="stale")
        assert (1, 2, None) == (
            stale.value.batch_index,
            missing.value.batch_index,
            alone.value.batch_index,
        )

    def test_a_batch_checks_each_commands_permission(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """A batch with one command the client may not send is refused whole."""
        hr = server.id("hr")
        with client(server, clients, f"start:{hr}") as limited:
            with pytest.raises(PermissionDeniedError):
                limited.handle_all(
                    [
                        StartJob(service=hr, entity="e", type="t", job_id=server.id("p1")),
                        UpdateJob(job_id=server.id("p1"), etag="*"),
                    ]
                )
            assert 0 == len(clients.repository.find(JobQuery(service=[hr])).jobs)


def _collect(
    jobs: JobsClient, after: int | None, until: Callable[[list[Any]], bool]
) -> tuple[list[Any], threading.Event, threading.Thread]:
    """Read the feed in a thread into a list until ``until`` holds (or PATIENCE passes)."""
    seen: list[Any] = []
    stop = threading.Event()

    def read() -> None:
        for entry in jobs.feed(after=after, stop=stop, reconnect_seconds=0.2):
            seen.append(entry)
            if until(seen):
                return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return seen, stop, thread


class TestEventFeed:
    """GET /events: Server-Sent Events with feed positions, resumable."""

    def test_events_carry_position_type_and_wire_json(
        self, server: Server, clients: Clients
    ) -> None:
        """Each event is sent with id the position, event the MessageType, data the JSON."""
        with client(server, clients) as jobs:
            job = jobs.start(service="hr", entity="e", type="t")
            headers = {"Authorization": f"Bearer {jobs._bearer()}"}
        with httpx.stream(
            "GET", f"{server.url}/events?after=0", headers=headers, timeout=PATIENCE
        ) as response:
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    break
        assert ["id: 1", "event: JobStarted"] == lines[-3:-1]
        assert f'"JobId":"{job.id}"' in lines[-1]

    def test_a_quiet_feed_sends_keepalives(self, server: Server, clients: Clients) -> None:
        """With nothing to send, the feed sends keep-alive comments."""
        with client(server, clients) as jobs:
            headers = {"Authorization": f"Bearer {jobs._bearer()}"}
        with httpx.stream("GET", f"{server.url}/events", headers=headers, timeout=PATIENCE) as got:
            for line in got.iter_lines():
                if line == ": keep-alive":
                    break
        assert "text/event-stream" in got.headers["content-type"]

    def test_last_event_id_resumes_after_it(self, server: Server, clients: Clients) -> None:
        """Last-Event-ID N starts the feed at position N + 1."""
        with client(server, clients) as jobs:
            for n in range(3):
                jobs.start(service="hr", entity="e", type="t", job_id=f"j{n}")
            headers = {"Authorization": f"Bearer {jobs._bearer()}", "Last-Event-ID": "2"}
        with httpx.stream("GET", f"{server.url}/events", headers=headers, timeout=PATIENCE) as got:
            first = next(line for line in got.iter_lines() if line.startswith("id:"))
        assert "id: 3" == first

    def test_a_subscription_gets_new_events_filtered(
        self, server: Server, clients: Clients
    ) -> None:
        """A subscription delivers the events after it, of its filter only."""
        with client(server, clients) as jobs:
            jobs.start(service="hr", entity="e", type="t")
            seen: list[JobEvent] = []
            arrived = threading.Event()

            def handler(event: JobEvent) -> None:
                seen.append(event)
                arrived.set()

            with jobs.subscribe(handler, service="hr", events=JobCompleted):
                other = jobs.start(service="it", entity="e", type="t")
                jobs.complete(other.id, etag=other.etag)
                job = jobs.start(service="hr", entity="e", type="t")
                jobs.complete(job.id, etag=job.etag)
                assert arrived.wait(PATIENCE)
        assert [(JobCompleted, job.id)] == [(type(event), event.job_id) for event in seen]

    def test_nothing_is_lost_across_a_server_restart(
        self, server: Server, clients: Clients
    ) -> None:
        """A reader resumes after its last position when the server comes back, losing nothing."""
        with client(server, clients) as jobs:
            for n in range(3):
                jobs.start(service="hr", entity="e", type="t", job_id=f"a{n}")
            seen, stop, thread = _collect(jobs, 0, lambda seen: len(seen) == 6)
            deadline = threading.Event()
            for _ in range(int(PATIENCE * 10)):
                if len(seen) == 3:
                    break
                deadline.wait(0.1)
            server.stop()
            ledger = Jobs(clients.repository)
            for n in range(3):
                # Written while the server is down, straight into the store.
                ledger.start(service="hr", entity="e", type="t", job_id=f"b{n}")
            server.start()
            thread.join(PATIENCE)
            stop.set()
        assert [1, 2, 3, 4, 5, 6] == [entry.position for entry in seen]
        assert [JobStarted] * 6 == [type(entry.event) for entry in seen]
