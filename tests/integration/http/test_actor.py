"""Who changed it, over HTTP: the service records the client as the actor of every change."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import httpx
import pytest

from jobledger import Jobs, StartJob, UpdateJob, wire
from jobledger.http import ActorMismatchError, JobsClient

if TYPE_CHECKING:
    from tests.integration.http.conftest import Clients, Server


def _client(server: Server, clients: Clients, client_id: str) -> JobsClient:
    """A JobsClient for a new client ``client_id`` allowed everything."""
    return JobsClient(server.url, client_id, clients.add(client_id, "*"))


class TestTheClientIsTheActor:
    """Every change the service makes names the client that asked for it."""

    def test_every_change_records_the_client(self, server: Server, clients: Clients) -> None:
        """Start, update, complete and a batch record the client as starter and actor."""
        with _client(server, clients, "hr-app") as jobs:
            job = jobs.start(service="hr", entity="e", type="t")
            job = jobs.update(job.id, etag=job.etag, status="exporting")
            job = jobs.complete(job.id, etag=job.etag)
            jobs.handle_all(
                [
                    StartJob(service="hr", entity="e", type="t", job_id="b1"),
                    UpdateJob(job_id="b1", etag="*", status="x"),
                ]
            )
            stored = jobs.get(job.id)
            actors = [update.actor for update in jobs.updates(job.id)]
            batch = (jobs.get("b1").started_by, [u.actor for u in jobs.updates("b1")])

        events = [entry.event.actor for entry in clients.repository.read_feed()]
        assert ("hr-app", ["hr-app", "hr-app"]) == (stored.started_by, actors)
        assert ("hr-app", ["hr-app"]) == batch
        assert ["hr-app"] * 5 == events

    def test_naming_the_client_as_actor_is_accepted(self, server: Server, clients: Clients) -> None:
        """A command whose actor is the client itself is carried out."""
        with _client(server, clients, "ops") as jobs:
            job = jobs.start(service="hr", entity="e", type="t", actor="ops")
            job = jobs.cancel(job.id, etag=job.etag, actor="ops")

        assert ("ops", ["ops"]) == (
            job.started_by,
            [update.actor for update in clients.repository.updates(job.id)],
        )

    def test_events_on_the_feed_carry_the_actor(self, server: Server, clients: Clients) -> None:
        """The event feed's data has the client as Actor."""
        with _client(server, clients, "feeder") as jobs:
            jobs.start(service="hr", entity="e", type="t")
            headers = {"Authorization": f"Bearer {jobs._bearer()}"}
        with httpx.stream(
            "GET", f"{server.url}/events?after=0", headers=headers, timeout=60.0
        ) as response:
            data = next(
                line.removeprefix("data:").strip()
                for line in response.iter_lines()
                if line.startswith("data:")
            )
        assert "feeder" == wire.decode_event(data).actor


def _forget_actors_of_requests(store: str) -> None:
    """Make the store's request records look written before actors: no started_by key."""
    if store.startswith("postgresql://"):
        import psycopg  # noqa: PLC0415  (PostgreSQL tests only)
        from psycopg import sql  # noqa: PLC0415

        conninfo, _, schema = store.partition("?schema=")
        table = sql.Identifier(schema, "jobledger_requests")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            # The exact text beside the document, where one is kept, loses the key too.
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET job = job - 'started_by', "
                    "job_exact = (job_exact::jsonb - 'started_by')::text"
                ).format(table)
            )
        return
    ledger = sqlite3.connect(store, isolation_level=None)
    try:
        ledger.execute("UPDATE requests SET job = json_remove(job, '$.started_by')")
    finally:
        ledger.close()


class TestRequestsRecordedBeforeActors:
    """A retry of a request recorded before actors is answered, though the client is its actor."""

    def test_a_retry_with_the_same_idempotency_key_is_answered(
        self, server: Server, clients: Clients
    ) -> None:
        """POST /jobs with the old request's Idempotency-Key answers the recorded job."""
        job = Jobs(clients.repository).start(
            service="hr", entity="e", type="t", job_id="old-1", request_id="legacy"
        )
        _forget_actors_of_requests(clients.store_location)
        secret = clients.add("hr-app", "*")

        response = httpx.post(
            f"{server.url}/jobs",
            json={"Service": "hr", "Entity": "e", "Type": "t", "JobId": "old-1"},
            headers={**server.bearer("hr-app", secret), "Idempotency-Key": "legacy"},
        )

        assert (job.id, job.etag, None) == (
            response.json()["JobId"],
            response.json()["ETag"],
            response.json()["StartedBy"],
        )
        assert 1 == clients.repository.feed_head()


class TestAnotherActorIsRefused:
    """A client acts as itself: a command naming another actor is refused, nothing written."""

    def test_the_client_raises_actor_mismatch_for_a_start(
        self, server: Server, clients: Clients
    ) -> None:
        """JobsClient.start with another actor raises ActorMismatchError with its facts."""
        with (
            _client(server, clients, "hr-app") as jobs,
            pytest.raises(ActorMismatchError) as raised,
        ):
            jobs.start(service="hr", entity="e", type="t", actor="alice")

        assert ("hr-app", "alice") == (raised.value.client_id, raised.value.actor)
        assert 0 == clients.repository.feed_head()

    def test_a_change_and_a_batch_with_another_actor_are_refused(
        self, server: Server, clients: Clients
    ) -> None:
        """A change or a batch command naming another actor raises; the job is unchanged."""
        with _client(server, clients, "hr-app") as jobs:
            job = jobs.start(service="hr", entity="e", type="t")
            with pytest.raises(ActorMismatchError):
                jobs.update(job.id, etag=job.etag, status="x", actor="alice")
            with pytest.raises(ActorMismatchError):
                jobs.handle_all([UpdateJob(job_id=job.id, etag="*", actor="alice")])

        assert (1, job) == (clients.repository.feed_head(), clients.repository.get(job.id))

    def test_the_refusal_is_a_403_problem(self, server: Server, clients: Clients) -> None:
        """A body Actor that is not the client gets 403 actor-not-client with both ids."""
        clients.add("hr-app", "*")
        secret = clients.add("other", "*")
        response = httpx.post(
            f"{server.url}/jobs",
            json={"Service": "hr", "Entity": "e", "Type": "t", "Actor": "hr-app"},
            headers=server.bearer("other", secret),
        )

        problem = response.json()
        assert 403 == response.status_code
        assert ("urn:jobledger:problem:actor-not-client", "other", "hr-app") == (
            problem["type"],
            problem["ClientId"],
            problem["Actor"],
        )


class TestTheActorIsCheckedLast:
    """A bad Actor is a 400; permission and existence are checked before the actor is compared."""

    def test_an_empty_actor_is_a_400(self, server: Server, clients: Clients) -> None:
        """A body Actor "" gets 400 invalid-data naming actor, not 403 actor-not-client."""
        secret = clients.add("hr-app", "*")
        response = httpx.post(
            f"{server.url}/jobs",
            json={"Service": "hr", "Entity": "e", "Type": "t", "Actor": ""},
            headers=server.bearer("hr-app", secret),
        )

        assert (400, "urn:jobledger:problem:invalid-data") == (
            response.status_code,
            response.json()["type"],
        )
        assert "actor" in response.json()["detail"]

    def test_a_missing_job_is_a_404_whatever_the_actor(
        self, server: Server, clients: Clients
    ) -> None:
        """A change of a missing job naming another actor gets 404 job-not-found."""
        secret = clients.add("hr-app", "*")
        response = httpx.post(
            f"{server.url}/jobs/nope:update",
            json={"Actor": "alice"},
            headers={**server.bearer("hr-app", secret), "If-Match": "*"},
        )

        assert (404, "urn:jobledger:problem:job-not-found") == (
            response.status_code,
            response.json()["type"],
        )

    def test_a_forbidden_change_is_a_403_forbidden_whatever_the_actor(
        self, server: Server, clients: Clients
    ) -> None:
        """A change or batch on a service the client may not change gets 403 forbidden."""
        job = Jobs(clients.repository).start(service="hr", entity="e", type="t")
        secret = clients.add("reader", "read:hr", "update:other")
        headers = {**server.bearer("reader", secret), "If-Match": "*"}

        single = httpx.post(
            f"{server.url}/jobs/{job.id}:update", json={"Actor": "alice"}, headers=headers
        )
        batch = httpx.post(
            f"{server.url}/jobs:batch",
            json={
                "Commands": [
                    {"MessageType": "UpdateJob", "JobId": job.id, "ETag": "*", "Actor": "alice"}
                ]
            },
            headers=headers,
        )

        assert [(403, "urn:jobledger:problem:forbidden")] * 2 == [
            (response.status_code, response.json()["type"]) for response in (single, batch)
        ]
