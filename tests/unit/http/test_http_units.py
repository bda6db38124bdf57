"""The service's pure parts: permissions, problems, secrets, tokens, client stores, the document."""

from __future__ import annotations

import inspect
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

import jobledger.http
from jobledger import (
    DEFAULT_LIMITS,
    CancelJob,
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobNotFoundError,
    Jobs,
    Limits,
    RequestIdConflictError,
    StorageError,
    StorageUnavailableError,
    WireFormatError,
    wire,
)
from jobledger.http import (
    ActorMismatchError,
    AuthenticationError,
    ClientExistsError,
    InMemoryClientStore,
    Permission,
    PermissionDeniedError,
    Permissions,
    PreconditionRequiredError,
    RequestTooLargeError,
    ServiceError,
    SQLiteClientStore,
    TokenIssuer,
    UnknownClientError,
    openapi_document,
)
from jobledger.http._actors import as_client
from jobledger.http._clients import hash_secret, verify_secret
from jobledger.http._problems import error_of, problem_of
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.testclient import TestClient


class TestPublicNames:
    """jobledger.http's public surface."""

    def test_all_is_exactly_the_public_names(self) -> None:
        """__all__ lists every public name the package defines, and nothing else."""
        public = {
            name
            for name, value in vars(jobledger.http).items()
            if not name.startswith("_")
            and not isinstance(value, ModuleType)
            and name != "annotations"
        }
        assert public == set(jobledger.http.__all__)


class TestPermissions:
    """ACTION[:SERVICE] permissions and their wildcards."""

    def test_wildcards_cover_every_action_and_service(self) -> None:
        """'*' allows everything; 'read:*' reading everywhere and nothing else."""
        everything = Permissions.parse(["*"])
        reading = Permissions.parse(["read:*"])
        assert (True, True, False) == (
            everything.allows("admin", "hr"),
            reading.allows("read", "finance"),
            reading.allows("start", "finance"),
        )

    def test_a_service_scope_limits_the_action(self) -> None:
        """start:hr allows starting hr jobs only; services() lists the scope."""
        grants = Permissions.parse(["start:hr read"])
        assert (True, False, frozenset({"hr"}), None) == (
            grants.allows("start", "hr"),
            grants.allows("start", "it"),
            grants.services("start"),
            grants.services("read"),
        )

    def test_an_unknown_action_is_invalid(self) -> None:
        """A permission naming no action raises InvalidJobDataError."""
        with pytest.raises(InvalidJobDataError):
            Permission.parse("write")

    def test_an_empty_service_is_invalid(self) -> None:
        """'read:' names an empty service."""
        with pytest.raises(InvalidJobDataError):
            Permission.parse("read:")


class TestProblems:
    """Errors to RFC 9457 problems and back."""

    @pytest.mark.parametrize(
        "error",
        [
            JobNotFoundError("j"),
            JobAlreadyExistsError("j"),
            ConcurrencyError("j", "e1", "e2"),
            InvalidTransitionError("j", "completed", "update"),
            InvalidJobDataError("state", "/a", "bad"),
            WireFormatError("StartJob", "/Service", "bad"),
            RequestIdConflictError("r"),
            AuthenticationError("the token has expired"),
            PermissionDeniedError("c", "start", "hr"),
            PreconditionRequiredError("j"),
            RequestTooLargeError(10),
        ],
    )
    def test_each_error_comes_back_as_itself(self, error: Exception) -> None:
        """An error through its problem document is the same error with the same facts."""
        document = problem_of(error)  # type: ignore[arg-type]
        back = error_of(document["status"], document, location="http://x")
        assert (type(error), error.__reduce__()) == (type(back), back.__reduce__())

    def test_a_refusal_in_a_batch_keeps_its_place(self) -> None:
        """A refusal's batch_index goes as BatchIndex and comes back; others have none."""
        refused = ConcurrencyError("j", "e1", "e2")
        refused.batch_index = 3
        document = problem_of(refused)
        back = error_of(document["status"], document, location="http://x")
        alone = problem_of(ConcurrencyError("j", "e1", "e2"))
        assert (3, 3, False) == (document["BatchIndex"], back.batch_index, "BatchIndex" in alone)

    @pytest.mark.parametrize("index", [True, -1, 1.0, "1", None])
    def test_a_batch_index_that_is_not_a_place_is_ignored(self, index: object) -> None:
        """Only a whole number from 0 up is read as the refused command's place."""
        document = problem_of(ConcurrencyError("j", "e1", "e2")) | {"BatchIndex": index}
        assert None is error_of(412, document, location="http://x").batch_index

    def test_a_storage_error_hides_its_location(self) -> None:
        """A storage failure is 503 without the file or server, and comes back unavailable."""
        document = problem_of(StorageError("/secret/path.db", "disk full"))
        back = error_of(503, document, location="http://x")
        assert (503, False, StorageUnavailableError) == (
            document["status"],
            "/secret" in str(document),
            type(back),
        )

    def test_an_unknown_problem_is_a_service_error(self) -> None:
        """A problem the client does not know raises ServiceError with its status."""
        back = error_of(502, {"title": "Bad gateway"}, location="http://x")
        assert (ServiceError, 502) == (type(back), back.status)  # type: ignore[attr-defined]


class TestSecrets:
    """Secrets are kept as salted scrypt hashes."""

    def test_a_hash_checks_its_secret_only(self) -> None:
        """verify_secret accepts the secret and refuses another."""
        hashed = hash_secret("s3cret")
        assert (True, False, False) == (
            verify_secret("s3cret", hashed),
            verify_secret("s3cre", hashed),
            "s3cret" in hashed,
        )

    def test_two_hashes_of_one_secret_differ(self) -> None:
        """Each hash has its own salt."""
        assert hash_secret("s") != hash_secret("s")


class TestAsClient:
    """The service's rule for the actor: the client, after the command's Actor is checked."""

    def test_a_command_without_actor_names_the_client(self) -> None:
        """A command that names no actor gets the client's id as its actor."""
        command = CancelJob(job_id="j", etag="e")

        assert "hr-app" == as_client(command, "hr-app", DEFAULT_LIMITS).actor

    @pytest.mark.parametrize("actor", ["", " hr-app", "nul\x00"])
    def test_an_invalid_actor_is_refused_before_it_is_compared(self, actor: str) -> None:
        """An invalid Actor raises InvalidJobDataError for actor, not ActorMismatchError."""
        command = CancelJob(job_id="j", etag="e", actor=actor)

        with pytest.raises(InvalidJobDataError) as raised:
            as_client(command, "hr-app", DEFAULT_LIMITS)

        assert ("actor", False) == (raised.value.field, isinstance(raised.value, PermissionError))

    def test_another_actor_is_refused(self) -> None:
        """A valid Actor that is not the client raises ActorMismatchError."""
        with pytest.raises(ActorMismatchError):
            as_client(CancelJob(job_id="j", etag="e", actor="alice"), "hr-app", DEFAULT_LIMITS)

    def test_a_client_id_longer_than_the_ledgers_names_is_named_in_the_error(self) -> None:
        """A client id over max_name_length raises InvalidJobDataError naming the client id."""
        client_id = "x" * 60
        with pytest.raises(InvalidJobDataError) as raised:
            as_client(CancelJob(job_id="j", etag="e"), client_id, Limits(max_name_length=40))

        assert "actor" == raised.value.field
        assert f"the client id {client_id!r}" in raised.value.reason
        assert "shorter id" in raised.value.reason


class TestClientStores:
    """The in-memory and SQLite client stores keep the same rules."""

    @pytest.fixture(params=["memory", "sqlite"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> jobledger.http.ClientStore:
        """A new, empty store of each kind (the SQLite one beside a ledger)."""
        if request.param == "memory":
            return InMemoryClientStore()
        SQLiteRepository(tmp_path / "jobs.db").close()
        return SQLiteClientStore(str(tmp_path / "jobs.db"))

    def test_add_authenticate_rotate_remove(self, store: jobledger.http.ClientStore) -> None:
        """A client authenticates with its secret; rotation and removal end the old secret."""
        client, secret = store.add("job", Permissions.parse(["read"]))
        assert client == store.authenticate("job", secret)
        rotated, new_secret = store.rotate("job")
        with pytest.raises(AuthenticationError):
            store.authenticate("job", secret)
        assert (2, ["job"]) == (rotated.generation, [c.client_id for c in store.clients()])
        store.remove("job")
        with pytest.raises(AuthenticationError):
            store.authenticate("job", new_secret)

    def test_a_taken_id_and_an_unknown_id_are_refused(
        self, store: jobledger.http.ClientStore
    ) -> None:
        """A taken id raises ClientExistsError on add; an unknown one UnknownClientError."""
        store.add("job", Permissions.parse(["read"]))
        with pytest.raises(ClientExistsError):
            store.add("job", Permissions.parse(["read"]))
        with pytest.raises(UnknownClientError):
            store.remove("nobody")

    def test_the_signing_key_is_kept(self, store: jobledger.http.ClientStore) -> None:
        """The signing key is the same on every read."""
        assert store.signing_key() == store.signing_key()

    def test_reading_a_client_does_not_wait_for_a_writer(self, tmp_path: Path) -> None:
        """A client is read while another connection holds the file's write lock."""
        SQLiteRepository(tmp_path / "jobs.db").close()
        store = SQLiteClientStore(str(tmp_path / "jobs.db"), busy_timeout=0.05)
        client, secret = store.add("job", Permissions.parse(["read"]))
        writer = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            read = (store.get("job"), store.authenticate("job", secret), len(store.clients()))
        finally:
            writer.execute("ROLLBACK")
            writer.close()
            store.close()
        assert (client, client, 1) == read

    def test_the_ledger_still_opens_its_file(self, tmp_path: Path) -> None:
        """The client tables do not stop the SQLite repository from opening its file again."""
        SQLiteRepository(tmp_path / "jobs.db").close()
        SQLiteClientStore(str(tmp_path / "jobs.db")).close()
        repository = SQLiteRepository(tmp_path / "jobs.db")
        assert "hr" == Jobs(repository).start(service="hr", entity="e", type="t").service
        repository.close()


class TestTokens:
    """Tokens name their client and expire."""

    def test_a_token_expires_after_its_lifetime(self) -> None:
        """A token is refused once the clock passes its lifetime."""
        now = [datetime(2026, 1, 1, tzinfo=UTC)]
        store = InMemoryClientStore()
        client, _secret = store.add("job", Permissions.parse(["read"]))
        issuer = TokenIssuer(store, lifetime=60, clock=lambda: now[0])
        token = issuer.issue(client).access_token
        assert client == issuer.verify(token)
        now[0] += timedelta(seconds=61)
        with pytest.raises(AuthenticationError) as raised:
            issuer.verify(token)
        assert "the token has expired" == raised.value.reason

    def test_another_stores_token_is_refused(self) -> None:
        """A token signed with another store's key is refused."""
        first, second = InMemoryClientStore(), InMemoryClientStore()
        client, _secret = first.add("job", Permissions.parse(["read"]))
        second.add("job", Permissions.parse(["read"]))
        token = TokenIssuer(first).issue(client).access_token
        with pytest.raises(AuthenticationError):
            TokenIssuer(second).verify(token)


class TestOpenAPIDocument:
    """The document's schemas say what the wire encodes."""

    def test_job_and_update_schemas_have_the_wire_keys(self) -> None:
        """Job's and JobUpdate's properties are exactly the keys the wire encodes."""
        jobs = Jobs()
        job = jobs.start(service="hr", entity="e", type="t")
        job = jobs.update(job.id, etag=job.etag, state_update={"a": 1})
        schemas = openapi_document()["components"]["schemas"]
        assert list(wire.encode(job)) == list(schemas["Job"]["properties"])
        assert list(wire.encode(jobs.updates(job.id)[0])) == list(
            schemas["JobUpdate"]["properties"]
        )

    def test_who_acted_may_be_no_one(self) -> None:
        """StartedBy and a JobUpdate's Actor say null names no one (library changes may not)."""
        schemas = openapi_document()["components"]["schemas"]
        described = (
            schemas["Job"]["properties"]["StartedBy"]["description"],
            schemas["JobUpdate"]["properties"]["Actor"]["description"],
        )

        assert ("Who started the job, or null when no one was named.", True) == (
            described[0],
            described[1].startswith("Who made the change, or null when no one was named"),
        )

    def test_event_schemas_have_the_wire_keys(self) -> None:
        """Each event schema's properties are the keys the wire encodes for that event."""
        jobs = Jobs()
        seen: list[object] = []
        jobs.subscribe(seen.append)
        for end in ("complete", "fail", "cancel"):
            job = jobs.start(service="hr", entity="e", type="t")
            job = jobs.update(job.id, etag=job.etag)
            getattr(jobs, end)(job.id, etag=job.etag)
        assert jobs.drain(timeout=30)
        encoded = {tuple(sorted(wire.encode(event))) for event in seen}  # type: ignore[arg-type]
        schemas = openapi_document()["components"]["schemas"]["Event"]["oneOf"]
        assert {tuple(sorted(schema["properties"])) for schema in schemas} == encoded


class TestRunPermission:
    """``run`` grants what driving runs takes, on the runner's service only."""

    def test_run_covers_every_action_but_admin_on_the_runners_jobs(self) -> None:
        """A client with ``run`` may start, update, end and read the jobs of jobledger.runner."""
        grants = Permissions.parse(["run"])

        allowed = [
            action
            for action in ("read", "start", "update", "complete", "fail", "cancel", "admin")
            if grants.allows(action, "jobledger.runner")
        ]

        assert ["read", "start", "update", "complete", "fail", "cancel"] == allowed
        assert not grants.allows("start", "hr")

    def test_a_scoped_run_names_the_runners_service(self) -> None:
        """``run:nightly`` covers a runner that records its runs under the service nightly."""
        grants = Permissions.parse(["run:nightly"])

        assert (True, False) == (
            grants.allows("start", "nightly"),
            grants.allows("start", "jobledger.runner"),
        )
        assert frozenset({"nightly"}) == grants.services("read")


class _CountingStore(InMemoryClientStore):
    """An in-memory client store that counts its reads of a client."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, client_id: str) -> jobledger.http.Client:
        self.reads += 1
        return super().get(client_id)


class TestVerifiedTokens:
    """Verified tokens are kept; their client is read again once the recheck time has passed."""

    @staticmethod
    def issued(
        recheck: float = 1.0,
    ) -> tuple[_CountingStore, TokenIssuer, str, list[datetime]]:
        """A store with client "job", an issuer on a manual clock, a token and the clock."""
        now = [datetime(2026, 1, 1, tzinfo=UTC)]
        store = _CountingStore()
        client, _secret = store.add("job", Permissions.parse(["read"]))
        issuer = TokenIssuer(store, lifetime=60, clock=lambda: now[0], recheck_seconds=recheck)
        return store, issuer, issuer.issue(client).access_token, now

    def test_a_verified_token_is_answered_without_reading_the_store(self) -> None:
        """After one verify, verified() answers the client and the store is not read again."""
        store, issuer, token, now = self.issued()
        client = issuer.verify(token)
        now[0] += timedelta(seconds=0.5)
        assert (None, client, 1) == (
            TokenIssuer(store).verified(token),
            issuer.verified(token),
            store.reads,
        )

    def test_a_removed_clients_token_stops_once_the_recheck_time_passed(self) -> None:
        """A removed client's kept token passes until the recheck time, then is refused."""
        store, issuer, token, now = self.issued(recheck=1.0)
        client = issuer.verify(token)
        store.remove("job")
        now[0] += timedelta(seconds=0.9)
        within = issuer.verified(token)
        now[0] += timedelta(seconds=0.1)
        assert (client, None) == (within, issuer.verified(token))
        with pytest.raises(AuthenticationError) as raised:
            issuer.verify(token)
        assert "the token's client was removed" == raised.value.reason

    def test_recheck_zero_reads_the_client_every_time(self) -> None:
        """With recheck_seconds=0 nothing is answered from memory: a removal ends tokens at once."""
        store, issuer, token, _now = self.issued(recheck=0)
        issuer.verify(token)
        kept = issuer.verified(token)
        store.remove("job")
        with pytest.raises(AuthenticationError):
            issuer.verify(token)
        assert (None, 2) == (kept, store.reads)

    def test_a_rotated_clients_kept_token_is_refused_at_the_recheck(self) -> None:
        """A token kept from before a rotation is refused when its client is read again."""
        store, issuer, token, now = self.issued(recheck=1.0)
        issuer.verify(token)
        store.rotate("job")
        now[0] += timedelta(seconds=1)
        with pytest.raises(AuthenticationError) as raised:
            issuer.verify(token)
        assert "the token's client has a new secret since" == raised.value.reason

    def test_a_kept_token_still_expires(self) -> None:
        """A kept token is not answered past its expiry, and verify says it expired."""
        _store, issuer, token, now = self.issued(recheck=3600)
        issuer.verify(token)
        now[0] += timedelta(seconds=60)
        kept = issuer.verified(token)
        with pytest.raises(AuthenticationError) as raised:
            issuer.verify(token)
        assert (None, "the token has expired") == (kept, raised.value.reason)

    def test_a_negative_recheck_time_is_refused(self) -> None:
        """recheck_seconds below 0 is a ValueError."""
        with pytest.raises(ValueError, match="recheck_seconds"):
            TokenIssuer(InMemoryClientStore(), recheck_seconds=-1)


class TestPermissionWithoutARead:
    """A change whose ETag this service answered needs no read of the job for its permission."""

    @staticmethod
    def service() -> tuple[Jobs, InMemoryClientStore, TestClient]:
        """A ledger, its clients and the app over them, called in this process."""
        from starlette.testclient import TestClient  # noqa: PLC0415  (these tests only)

        jobs, store = Jobs(), InMemoryClientStore()
        return jobs, store, TestClient(jobledger.http.create_app(jobs, store))

    @staticmethod
    def bearer(http: TestClient, store: InMemoryClientStore, *allow: str) -> dict[str, str]:
        """The Authorization header of a new client with these permissions."""
        client_id = f"c{len(store.clients())}"
        _client, secret = store.add(client_id, Permissions.parse(allow))
        form = {"grant_type": "client_credentials"}
        token = http.post("/token", data=form, auth=(client_id, secret)).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def test_an_update_after_the_start_does_not_read_the_job(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The ETag of the start's answer takes the update through with Jobs.get unusable."""
        jobs, store, http = self.service()
        admin = self.bearer(http, store, "*")
        started = http.post(
            "/jobs", json={"Service": "hr", "Entity": "e", "Type": "t"}, headers=admin
        )

        def no_read(job_id: str, **_options: object) -> None:
            raise AssertionError(job_id)

        monkeypatch.setattr(jobs, "get", no_read)
        updated = http.post(
            f"/jobs/{started.json()['JobId']}:update",
            json={},
            headers={**admin, "If-Match": started.headers["etag"]},
        )
        assert (201, 200, 2) == (
            started.status_code,
            updated.status_code,
            updated.json()["Version"],
        )

    def test_a_client_not_permitted_the_jobs_service_is_refused_either_way(self) -> None:
        """update:hr is refused a finance job with its answered ETag, and with If-Match: *."""
        _jobs, store, http = self.service()
        admin = self.bearer(http, store, "*")
        limited = self.bearer(http, store, "read", "update:hr")
        body = {"Service": "finance", "Entity": "e", "Type": "t"}
        started = http.post("/jobs", json=body, headers=admin)
        path = f"/jobs/{started.json()['JobId']}:update"
        statuses = [
            http.post(path, json={}, headers={**limited, "If-Match": tag}).status_code
            for tag in (started.headers["etag"], "*")
        ]
        assert [403, 403] == statuses

    def test_a_remembered_etag_of_a_job_since_replaced_reveals_nothing(self) -> None:
        """A job purged and started again in another service: 403, not 412 with its ETag."""
        jobs, store, http = self.service()
        admin = self.bearer(http, store, "*")
        limited = self.bearer(http, store, "read:hr", "update:hr")
        body = {"JobId": "x", "Service": "hr", "Entity": "e", "Type": "t"}
        first = http.post("/jobs", json=body, headers=admin)
        jobs.complete("x", etag=first.json()["ETag"])
        jobs.purge(finished_before=datetime(2999, 1, 1, tzinfo=UTC))
        jobs.start(service="finance", entity="e", type="t", job_id="x")
        refused = http.post(
            "/jobs/x:update", json={}, headers={**limited, "If-Match": first.headers["etag"]}
        )
        assert (403, None) == (refused.status_code, refused.headers.get("etag"))


class TestJobsClientTransport:
    """JobsClient sends its requests through the transport it was given."""

    def test_a_command_goes_through_the_transport_and_a_refused_token_is_renewed(self) -> None:
        """An update is sent as JSON with If-Match; a 401 fetches a new token and sends again."""
        import httpx  # noqa: PLC0415  (the server extra)

        jobs = Jobs()
        job = jobs.start(service="hr", entity="e", type="t")
        tokens: list[str] = []
        sent: list[tuple[str, str, str, str, str, object]] = []

        def answer(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/token":
                tokens.append(f"t{len(tokens) + 1}")
                body = {"access_token": tokens[-1], "token_type": "Bearer", "expires_in": 3600}
                return httpx.Response(200, json=body)
            headers = request.headers
            sent.append(
                (
                    request.method,
                    request.url.path,
                    headers["authorization"],
                    headers["if-match"],
                    headers["content-type"],
                    json.loads(request.content)["Status"],
                )
            )
            if headers["authorization"] == "Bearer t1":
                expired = problem_of(AuthenticationError("the token has expired"))
                return httpx.Response(401, json=expired)
            return httpx.Response(
                200, json=wire.encode(jobs.update(job.id, etag=job.etag, status="s"))
            )

        transport = httpx.MockTransport(answer)
        with jobledger.http.JobsClient("http://svc", "id", "key", transport=transport) as client:
            updated = client.update(job.id, etag=job.etag, status="s")
        path, tag = f"/jobs/{job.id}:update", f'"{job.etag}"'
        assert (2, "s") == (updated.version, updated.status)
        assert [
            ("POST", path, "Bearer t1", tag, "application/json", "s"),
            ("POST", path, "Bearer t2", tag, "application/json", "s"),
        ] == sent


class TestJobsClientCommands:
    """JobsClient's command methods are Jobs's: the same keywords, the same defaults."""

    @pytest.mark.parametrize("verb", ["start", "update", "complete", "fail", "cancel"])
    def test_a_command_method_takes_what_jobs_takes(self, verb: str) -> None:
        """Each command method's signature on JobsClient is the one on Jobs."""
        expected = inspect.signature(getattr(Jobs, verb))
        assert expected == inspect.signature(getattr(jobledger.http.JobsClient, verb))


class TestRequestBodies:
    """How the service reads a request's JSON body."""

    @pytest.mark.parametrize(
        "body",
        [
            b'{"State": {"done": 1}}',
            '{"Service": "h\u00e9"}'.encode("utf-16"),
            '{"Service": "hr"}'.encode("utf-32"),
            b'\xef\xbb\xbf{"Service": "hr"}',
        ],
    )
    def test_a_body_is_read_as_json_loads_reads_bytes(self, body: bytes) -> None:
        """UTF-8 (with or without a BOM), UTF-16 and UTF-32 bodies read as json.loads reads them."""
        from jobledger.http._json import loads  # noqa: PLC0415  (the service's own reader)

        assert json.loads(body) == loads(body)

    def test_a_key_twice_is_refused(self) -> None:
        """An object with the same key twice, at any depth, is not read."""
        from jobledger.http._json import loads  # noqa: PLC0415  (the service's own reader)

        with pytest.raises(ValueError, match="the key 'done' appears twice"):
            loads(b'{"State": {"done": 1, "done": 2}}')
