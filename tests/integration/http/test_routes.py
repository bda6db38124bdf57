"""Every route and status of the jobs service, on a real uvicorn server (SQLite, PostgreSQL).

The tests share one server per backend (and its store) with the other modules
that need no new store: each names its clients, jobs, services and request ids
with a prefix of its own (``server.id``).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tests.integration.http.conftest import Clients, Namespaced

START = {"Entity": "employee", "Type": "sync", "State": {"done": 0}}
#: Generous bounds for a loaded machine; nothing is timed.
PATIENCE = 30.0


@pytest.fixture
def clients(shared_clients: Clients) -> Clients:
    """The shared store's clients, with this test's prefix."""
    return shared_clients


@pytest.fixture
def server(on_shared: Namespaced) -> Namespaced:
    """The shared server, seen with this test's prefix."""
    return on_shared


@pytest.fixture
def make_server(make_shared: Callable[..., Namespaced]) -> Callable[..., Namespaced]:
    """More servers over the shared store, with more options."""
    return make_shared


def start(server: Namespaced, headers: dict[str, str], **fields: Any) -> httpx.Response:  # noqa: ANN401  (JSON fields)
    """POST /jobs with START in the test's service "hr" and ``fields``."""
    body = {"Service": server.id("hr"), **START, **fields}
    return httpx.post(f"{server.url}/jobs", json=body, headers=headers)


def admin(server: Namespaced, clients: Clients) -> dict[str, str]:
    """The Authorization header of a client allowed everything."""
    return server.bearer("admin", clients.add("admin", "*"))


class TestToken:
    """POST /token: OAuth2 client credentials."""

    def test_form_credentials_get_a_bearer_token(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """The form's client_id and client_secret get a Bearer token that expires."""
        secret = clients.add("job", "read")
        response = httpx.post(
            f"{server.url}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": server.id("job"),
                "client_secret": secret,
            },
        )
        body = response.json()
        assert (200, "Bearer", 3600) == (
            response.status_code,
            body["token_type"],
            body["expires_in"],
        )
        assert "no-store" == response.headers["cache-control"]

    def test_basic_credentials_get_a_token(self, server: Namespaced, clients: Clients) -> None:
        """HTTP Basic carries the credentials as well as the form."""
        secret = clients.add("job", "read")
        response = httpx.post(
            f"{server.url}/token",
            data={"grant_type": "client_credentials"},
            auth=(server.id("job"), secret),
        )
        assert 200 == response.status_code

    def test_a_wrong_secret_is_401_invalid_client(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """A wrong secret gets 401 with the OAuth2 error invalid_client, as a problem."""
        clients.add("job", "read")
        response = httpx.post(
            f"{server.url}/token",
            data={"grant_type": "client_credentials"},
            auth=(server.id("job"), "guess"),
        )
        assert (401, "application/problem+json", "invalid_client") == (
            response.status_code,
            response.headers["content-type"],
            response.json()["error"],
        )

    def test_another_grant_is_400(self, server: Namespaced) -> None:
        """A grant other than client_credentials gets 400 unsupported_grant_type."""
        response = httpx.post(f"{server.url}/token", data={"grant_type": "password"})
        assert (400, "unsupported_grant_type") == (response.status_code, response.json()["error"])


class TestAuthentication:
    """Bearer tokens on every route but /token and /openapi.json."""

    def test_no_token_is_401(self, server: Namespaced) -> None:
        """A request without a token gets 401 and a Bearer challenge."""
        response = httpx.get(f"{server.url}/jobs")
        assert (401, 'Bearer realm="jobledger"') == (
            response.status_code,
            response.headers["www-authenticate"],
        )

    def test_a_forged_token_is_401(self, server: Namespaced) -> None:
        """A token not signed with the store's key gets 401."""
        response = httpx.get(f"{server.url}/jobs", headers={"Authorization": "Bearer a.b.c"})
        assert 401 == response.status_code

    def test_a_removed_clients_token_stops_working_at_once_when_asked(
        self, make_server: Callable[..., Namespaced], clients: Clients
    ) -> None:
        """With --token-recheck-seconds 0, removing a client ends its tokens at once."""
        server = make_server("--token-recheck-seconds", "0")
        headers = server.bearer("job", clients.add("job", "read"))
        assert 200 == httpx.get(f"{server.url}/jobs", headers=headers).status_code
        clients.store.remove(server.id("job"))
        assert 401 == httpx.get(f"{server.url}/jobs", headers=headers).status_code

    def test_a_removed_clients_token_stops_working_within_the_recheck(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """By default a removed client's verified token stops working soon (within a second)."""
        headers = server.bearer("job", clients.add("job", "read"))
        assert 200 == httpx.get(f"{server.url}/jobs", headers=headers).status_code
        clients.store.remove(server.id("job"))
        deadline = time.monotonic() + PATIENCE
        status = 200
        while status == 200 and time.monotonic() < deadline:
            status = httpx.get(f"{server.url}/jobs", headers=headers).status_code
            time.sleep(0.05)
        assert 401 == status

    def test_a_rotated_clients_old_token_stops_working(
        self, make_server: Callable[..., Namespaced], clients: Clients
    ) -> None:
        """Rotating a client's secret ends the tokens of its old secret (at once with recheck 0)."""
        server = make_server("--token-recheck-seconds", "0")
        headers = server.bearer("job", clients.add("job", "read"))
        assert 200 == httpx.get(f"{server.url}/jobs", headers=headers).status_code
        _client, secret = clients.store.rotate(server.id("job"))
        assert 401 == httpx.get(f"{server.url}/jobs", headers=headers).status_code
        assert (
            200 == httpx.get(f"{server.url}/jobs", headers=server.bearer("job", secret)).status_code
        )

    def test_tokens_expire(self, make_server: Callable[..., Namespaced], clients: Clients) -> None:
        """A token past its lifetime gets 401."""
        server = make_server("--token-lifetime", "1")
        headers = server.bearer("job", clients.add("job", "read"))
        deadline = 0
        while httpx.get(f"{server.url}/jobs", headers=headers).status_code == 200:
            deadline += 1
            assert deadline < 100, "the token did not expire"
            time.sleep(0.1)
        assert 401 == httpx.get(f"{server.url}/jobs", headers=headers).status_code

    def test_openapi_needs_no_token(self, server: Namespaced) -> None:
        """GET /openapi.json answers the OpenAPI 3.1 document without a token."""
        response = httpx.get(f"{server.url}/openapi.json")
        assert (
            "3.1.0",
            [
                "/events",
                "/jobs",
                "/jobs/{id}",
                "/jobs/{id}/updates",
                "/jobs/{id}:cancel",
                "/jobs/{id}:complete",
                "/jobs/{id}:fail",
                "/jobs/{id}:update",
                "/jobs:batch",
                "/openapi.json",
                "/token",
            ],
        ) == (response.json()["openapi"], sorted(response.json()["paths"]))


class TestCommands:
    """StartJob, UpdateJob, CompleteJob, FailJob and CancelJob routes."""

    def test_start_is_201_with_location_and_etag(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """POST /jobs starts a job: 201, Location, ETag, the job in the wire format."""
        response = start(server, admin(server, clients), JobId=server.id("job-1"))
        job = response.json()
        assert (201, f"/jobs/{server.id('job-1')}", f'"{job["ETag"]}"', "started") == (
            response.status_code,
            response.headers["location"],
            response.headers["etag"],
            job["Status"],
        )

    def test_get_is_the_job_and_304_with_its_etag(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """GET /jobs/{id} answers the job, and 304 when If-None-Match holds its ETag."""
        headers = admin(server, clients)
        etag = start(server, headers, JobId=server.id("job-1")).headers["etag"]
        got = httpx.get(f"{server.url}/jobs/{server.id('job-1')}", headers=headers)
        same = httpx.get(
            f"{server.url}/jobs/{server.id('job-1')}", headers={**headers, "If-None-Match": etag}
        )
        assert (200, etag, 304) == (got.status_code, got.headers["etag"], same.status_code)

    def test_an_unknown_job_is_404_naming_it(self, server: Namespaced, clients: Clients) -> None:
        """GET of an unknown job is a 404 problem with its JobId."""
        response = httpx.get(f"{server.url}/jobs/nope", headers=admin(server, clients))
        assert (404, "urn:jobledger:problem:job-not-found", "nope") == (
            response.status_code,
            response.json()["type"],
            response.json()["JobId"],
        )

    def test_a_change_without_if_match_is_428(self, server: Namespaced, clients: Clients) -> None:
        """A change without If-Match gets 428 and changes nothing."""
        headers = admin(server, clients)
        start(server, headers, JobId=server.id("job-1"))
        response = httpx.post(
            f"{server.url}/jobs/{server.id('job-1')}:update", json={}, headers=headers
        )
        assert (428, 1) == (
            response.status_code,
            httpx.get(f"{server.url}/jobs/{server.id('job-1')}", headers=headers).json()["Version"],
        )

    def test_a_stale_etag_is_412_with_the_current_one(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """A stale If-Match gets 412, the current ETag in the ETag header and the problem."""
        headers = admin(server, clients)
        first = start(server, headers, JobId=server.id("job-1")).headers["etag"]
        changed = httpx.post(
            f"{server.url}/jobs/{server.id('job-1')}:update",
            json={"Status": "exporting", "StateUpdate": {"done": 1}},
            headers={**headers, "If-Match": first},
        )
        stale = httpx.post(
            f"{server.url}/jobs/{server.id('job-1')}:update",
            json={},
            headers={**headers, "If-Match": first},
        )
        assert (200, 412, changed.headers["etag"]) == (
            changed.status_code,
            stale.status_code,
            stale.headers["etag"],
        )
        assert changed.json()["ETag"] == stale.json()["CurrentETag"]

    def test_the_wildcard_changes_whatever_the_etag(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """If-Match: * completes the job whatever its ETag."""
        headers = admin(server, clients)
        start(server, headers, JobId=server.id("job-1"))
        response = httpx.post(
            f"{server.url}/jobs/{server.id('job-1')}:complete",
            json={},
            headers={**headers, "If-Match": "*"},
        )
        assert (200, "completed") == (response.status_code, response.json()["Status"])

    def test_fail_and_cancel_end_jobs(self, server: Namespaced, clients: Clients) -> None:
        """:fail and :cancel end their jobs; a further change is a 409 invalid transition."""
        headers = admin(server, clients)
        statuses = []
        for verb in ("fail", "cancel"):
            etag = start(server, headers, JobId=server.id(f"job-{verb}")).headers["etag"]
            ended = httpx.post(
                f"{server.url}/jobs/{server.id('job-' + verb)}:{verb}",
                headers={**headers, "If-Match": etag},
            )
            statuses.append(ended.json()["Status"])
            again = httpx.post(
                f"{server.url}/jobs/{server.id('job-' + verb)}:update",
                json={},
                headers={**headers, "If-Match": ended.headers["etag"]},
            )
            statuses.append(f"{again.status_code} {again.json()['Phase']}")
        assert ["failed", "409 failed", "canceled", "409 canceled"] == statuses

    def test_invalid_data_is_400_naming_the_path(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """A body that breaks the wire format gets 400 with the offending path."""
        headers = admin(server, clients)
        response = start(server, headers, Service=42)
        assert (400, "/Service") == (response.status_code, response.json()["Path"])

    def test_not_json_is_400(self, server: Namespaced, clients: Clients) -> None:
        """A body that is not JSON gets 400."""
        response = httpx.post(
            f"{server.url}/jobs", content=b"{nope", headers=admin(server, clients)
        )
        assert 400 == response.status_code

    def test_a_taken_job_id_is_409(self, server: Namespaced, clients: Clients) -> None:
        """Starting a job id that exists gets 409 job-exists."""
        headers = admin(server, clients)
        start(server, headers, JobId=server.id("job-1"))
        response = start(server, headers, JobId=server.id("job-1"))
        assert (409, "urn:jobledger:problem:job-exists") == (
            response.status_code,
            response.json()["type"],
        )

    def test_the_idempotency_key_is_the_request_id(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """A retry with the same Idempotency-Key gets the same job; another command gets 409."""
        headers = {**admin(server, clients), "Idempotency-Key": server.id("msg-1")}
        first = start(server, headers)
        retry = start(server, headers)
        other = start(server, headers, Type="other")
        assert (first.json()["JobId"], 409) == (retry.json()["JobId"], other.status_code)
        assert server.id("msg-1") == other.json()["RequestId"]

    def test_a_body_over_the_limit_is_413(self, server: Namespaced, clients: Clients) -> None:
        """A body over 1 MiB gets 413."""
        response = start(server, admin(server, clients), Input="x" * (2**20 + 1))
        assert (413, 2**20) == (response.status_code, response.json()["Limit"])

    def test_errors_carry_no_traceback(self, server: Namespaced, clients: Clients) -> None:
        """A problem's text names no Python file or traceback."""
        response = start(server, admin(server, clients), State="nope")
        assert "Traceback" not in response.text
        assert ".py" not in response.text


def update_sender(
    server: Namespaced, job_id: str, etag: str, body: dict[str, Any], headers: dict[str, str]
) -> Callable[[], httpx.Response]:
    """A sender of ``POST /jobs/{job_id}:update`` with ``If-Match: etag`` and ``body``."""
    return functools.partial(
        httpx.post,
        f"{server.url}/jobs/{job_id}:update",
        json=body,
        headers={**headers, "If-Match": etag},
    )


def concurrently(sends: Sequence[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Each request sent from a thread of its own, all at once (after a barrier)."""
    barrier = threading.Barrier(len(sends), timeout=PATIENCE)

    def send(one: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return one()

    with ThreadPoolExecutor(len(sends)) as pool:
        return list(pool.map(send, sends))


class TestConcurrentCommands:
    """Commands of requests in flight together (written as one batch by the service)."""

    def test_a_stale_request_among_concurrent_ones_fails_alone(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """Eight updates at once, one with a stale ETag: only it gets 412, the others are saved."""
        headers = admin(server, clients)
        ids = [server.id(f"job-{n}") for n in range(8)]
        etags = [start(server, headers, JobId=job_id).headers["etag"] for job_id in ids]
        statuses = []
        for round_ in range(5):
            stale = round_ % 8
            sent = [
                update_sender(
                    server,
                    ids[n],
                    '"stale"' if n == stale else etag,
                    {"StateUpdate": {"done": round_}},
                    headers,
                )
                for n, etag in enumerate(etags)
            ]
            answers = concurrently(sent)
            statuses.append([answer.status_code for answer in answers])
            assert etags[stale] == answers[stale].headers["etag"]
            # Its request sent one command: its refusal names no place in a batch.
            assert "BatchIndex" not in answers[stale].json()
            etags = [answer.headers["etag"] for answer in answers]
        expected = [[412 if n == round_ else 200 for n in range(8)] for round_ in range(5)]
        assert expected == statuses
        versions = [
            httpx.get(f"{server.url}/jobs/{job_id}", headers=headers).json()["Version"]
            for job_id in ids
        ]
        assert [5, 5, 5, 5, 5, 6, 6, 6] == versions

    def test_concurrent_requests_with_one_etag_exactly_one_wins(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """Four updates of one job with the same ETag at once: one 200 and three 412, each round."""
        headers = admin(server, clients)
        etag = start(server, headers, JobId=server.id("job-1")).headers["etag"]
        outcomes = []
        for round_ in range(5):
            sent = [
                update_sender(
                    server,
                    server.id("job-1"),
                    etag,
                    {"Status": f"by-{n}", "StateUpdate": {"round": round_}},
                    headers,
                )
                for n in range(4)
            ]
            answers = concurrently(sent)
            outcomes.append(sorted(answer.status_code for answer in answers))
            (won,) = [answer for answer in answers if answer.status_code == 200]
            assert {won.headers["etag"]} == {
                answer.headers["etag"] for answer in answers if answer.status_code == 412
            }
            etag = won.headers["etag"]
        assert [[200, 412, 412, 412]] * 5 == outcomes
        job = httpx.get(f"{server.url}/jobs/{server.id('job-1')}", headers=headers).json()
        assert 6 == job["Version"]


class TestQueries:
    """The update log and the job listing, paged."""

    def test_updates_come_a_page_at_a_time(self, server: Namespaced, clients: Clients) -> None:
        """GET /jobs/{id}/updates pages with after and limit; NextAfter leads to the next page."""
        headers = admin(server, clients)
        etag = start(server, headers, JobId=server.id("job-1")).headers["etag"]
        for done in range(3):
            etag = httpx.post(
                f"{server.url}/jobs/{server.id('job-1')}:update",
                json={"StateUpdate": {"done": done}},
                headers={**headers, "If-Match": etag},
            ).headers["etag"]
        first = httpx.get(
            f"{server.url}/jobs/{server.id('job-1')}/updates?limit=2", headers=headers
        ).json()
        rest = httpx.get(
            f"{server.url}/jobs/{server.id('job-1')}/updates?after=2", headers=headers
        ).json()
        assert ([1, 2], 2, [3], None) == (
            [update["UpdateId"] for update in first["Updates"]],
            first["NextAfter"],
            [update["UpdateId"] for update in rest["Updates"]],
            rest["NextAfter"],
        )

    def test_jobs_are_listed_newest_first_by_page(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """GET /jobs filters and pages with page_size and page_token."""
        headers = admin(server, clients)
        for n in range(3):
            start(server, headers, JobId=server.id(f"job-{n}"))
        start(server, headers, JobId=server.id("other"), Service=server.id("finance"))
        first = httpx.get(
            f"{server.url}/jobs",
            params={"service": server.id("hr"), "page_size": 2},
            headers=headers,
        ).json()
        rest = httpx.get(
            f"{server.url}/jobs",
            params={"service": server.id("hr"), "page_token": first["NextPageToken"]},
            headers=headers,
        ).json()
        assert ([server.id("job-2"), server.id("job-1")], [server.id("job-0")], None) == (
            [job["JobId"] for job in first["Jobs"]],
            [job["JobId"] for job in rest["Jobs"]],
            rest["NextPageToken"],
        )

    def test_a_bad_query_is_400(self, server: Namespaced, clients: Clients) -> None:
        """A page size out of range, or a time without offset, gets 400 naming it."""
        headers = admin(server, clients)
        size = httpx.get(f"{server.url}/jobs?page_size=0", headers=headers)
        when = httpx.get(f"{server.url}/jobs?created_after=2024-01-01T00:00:00", headers=headers)
        assert (400, "page_size", 400, "created_after") == (
            size.status_code,
            size.json()["Field"],
            when.status_code,
            when.json()["Field"],
        )


class TestPermissions:
    """A client limited to read and start:hr is refused the rest with 403."""

    def test_a_limited_client_is_refused_the_rest(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """Permissions read and start:hr allow reading and starting hr jobs, nothing else."""
        everything = admin(server, clients)
        limited = server.bearer(
            "limited", clients.add("limited", "read", f"start:{server.id('hr')}")
        )
        hr = start(server, limited, JobId=server.id("hr-1"))
        finance = start(server, limited, JobId=server.id("fin-1"), Service=server.id("finance"))
        start(server, everything, JobId=server.id("fin-2"), Service=server.id("finance"))
        seen = [hr.status_code, finance.status_code]
        for verb in ("update", "complete", "fail", "cancel"):
            refused = httpx.post(
                f"{server.url}/jobs/hr-1:{verb}",
                json={},
                headers={**limited, "If-Match": hr.headers["etag"]},
            )
            seen.append(refused.status_code)
        seen.append(
            httpx.get(f"{server.url}/jobs/{server.id('fin-2')}", headers=limited).status_code
        )
        assert [201, 403, 403, 403, 403, 403, 200] == seen

    def test_a_service_scoped_reader_sees_its_service_only(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """read:hr lists hr jobs only, and is refused other services' jobs and listings."""
        everything = admin(server, clients)
        reader = server.bearer("reader", clients.add("reader", f"read:{server.id('hr')}"))
        start(server, everything, JobId=server.id("hr-1"))
        start(server, everything, JobId=server.id("fin-1"), Service=server.id("finance"))
        listed = httpx.get(f"{server.url}/jobs", headers=reader).json()
        other = httpx.get(f"{server.url}/jobs?service={server.id('finance')}", headers=reader)
        job = httpx.get(f"{server.url}/jobs/{server.id('fin-1')}", headers=reader)
        assert ([server.id("hr-1")], 403, 403, server.id("finance")) == (
            [found["JobId"] for found in listed["Jobs"]],
            other.status_code,
            job.status_code,
            job.json()["Service"],
        )

    def test_a_client_without_read_is_refused_the_feed(
        self, server: Namespaced, clients: Clients
    ) -> None:
        """The event feed needs read."""
        starter = server.bearer("starter", clients.add("starter", "start"))
        response = httpx.get(f"{server.url}/events", headers=starter)
        assert 403 == response.status_code


class TestUnknownRoutes:
    """What is not a route."""

    def test_an_unknown_route_is_a_404_problem(self, server: Namespaced) -> None:
        """An unknown path gets a 404 problem document."""
        response = httpx.get(f"{server.url}/nowhere")
        assert (404, "application/problem+json") == (
            response.status_code,
            response.headers["content-type"],
        )
        assert "status" in json.loads(response.text)
