"""The ASGI app: the ledger's commands, queries and event feed over HTTP (Starlette).

Build it with :func:`create_app` and serve it with any ASGI server (``jobledger
serve`` uses uvicorn). The routes come from :data:`~jobledger.http._openapi.OPERATIONS`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from jobledger import (
    ANY_ETAG,
    EVENT_TYPES,
    CancelJob,
    CompleteJob,
    ConcurrencyError,
    EventFilter,
    FailJob,
    InvalidJobDataError,
    JobledgerError,
    JobNotFoundError,
    JobQuery,
    StartJob,
    UpdateJob,
    WireFormatError,
    wire,
)
from jobledger.http._actors import as_client
from jobledger.http._errors import (
    AuthenticationError,
    PermissionDeniedError,
    PreconditionRequiredError,
    RequestTooLargeError,
)
from jobledger.http._json import dumps, loads
from jobledger.http._openapi import OPERATIONS, Operation, openapi_document
from jobledger.http._problems import problem, problem_of
from jobledger.http._tokens import DEFAULT_RECHECK_SECONDS, DEFAULT_TOKEN_SECONDS, TokenIssuer
from jobledger.http._writer import ALONE, CommandWriter
from jobledger.http.dashboard import DEFAULT_SESSION_SECONDS, create_dashboard

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from starlette.requests import Request

    from jobledger import Command, Job, Jobs
    from jobledger.http._clients import Client, ClientStore
    from jobledger.runner import Runner

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_Change = UpdateJob | CompleteJob | FailJob | CancelJob

#: The largest request body the service reads, by default (1 MiB).
DEFAULT_MAX_BODY_BYTES = 2**20
_MAX_PAGE = 1000
_FEED_BATCH = 500
# Services of the job versions the service answered with, kept at most (see _Service._services).
_MAX_SERVICES = 10_000
_EVENT_NAMES = {kind.__name__: kind for kind in EVENT_TYPES}
_VERB_OF: dict[type, str] = {
    UpdateJob: "update",
    CompleteJob: "complete",
    FailJob: "fail",
    CancelJob: "cancel",
}
_COMMAND_OF = {
    "update": "UpdateJob",
    "complete": "CompleteJob",
    "fail": "FailJob",
    "cancel": "CancelJob",
}


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = dumps(body)
    media = "application/problem+json" if status >= 400 else "application/json"  # noqa: PLR2004
    return Response(text, status_code=status, headers=headers, media_type=media)


def _quoted(etag: str) -> str:
    return f'"{etag}"'


def _unquoted(tag: str) -> str:
    tag = tag.strip()
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':  # noqa: PLR2004
        return tag[1:-1]
    return tag


def _job_response(job: Job, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _json(wire.encode(job), status, {"ETag": _quoted(job.etag), **(headers or {})})


def _error_response(error: JobledgerError) -> Response:
    document = problem_of(error)
    headers: dict[str, str] = {}
    if isinstance(error, ConcurrencyError):
        headers["ETag"] = _quoted(error.current_etag)
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="jobledger"'
    return _json(document, document["status"], headers)


def _integer(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    top = maximum if maximum is not None else 2**53 - 1
    low = 0 if maximum is None else 1
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= top:
        raise InvalidJobDataError(name, "", f"must be an integer from {low} to {top}")
    return int(text)


def _names(request: Request, name: str) -> list[str] | None:
    values = [
        word for value in request.query_params.getlist(name) for word in value.split(",") if word
    ]
    return values or None


def _time(request: Request, name: str) -> datetime | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidJobDataError(name, "", "must be an ISO 8601 date and time with a UTC offset")
    return when


class _Service:
    """The handlers, over one ledger and one client store."""

    def __init__(
        self,
        jobs: Jobs,
        clients: ClientStore,
        issuer: TokenIssuer,
        *,
        max_body_bytes: int,
        keepalive_seconds: float,
        poll_seconds: float,
        stream_seconds: float,
    ) -> None:
        self._jobs = jobs
        self._clients = clients
        self._issuer = issuer
        self._max_body = max_body_bytes
        self._keepalive = keepalive_seconds
        self._poll = poll_seconds
        self._stream_seconds = stream_seconds
        # (job id, ETag) -> service, from the jobs this service answered with. An ETag is
        # drawn anew for every version and never reused, so a command that names one succeeds only
        # on that version of that job: its service is known without reading the job.
        self._services: dict[tuple[str, str], str] = {}
        #: Carries out the commands of requests in flight together (started with the app).
        self.writer = CommandWriter(jobs)

    # -- what every route shares -----------------------------------------------------

    def route(self, operation: Operation) -> Route:
        """The Starlette route of ``operation``: authentication, errors, then its handler."""
        handler: Callable[[Request, Client | None], Awaitable[Response]] = getattr(
            self, operation.operation_id
        )

        async def endpoint(request: Request) -> Response:
            try:
                client = await self._authenticate(request) if operation.action else None
                return await handler(request, client)
            except JobledgerError as err:
                return _error_response(err)
            except Exception:
                # Logged here with its traceback; the caller gets none of it.
                logger.exception("%s %s failed", operation.method, operation.path)
                return _json(problem(500, "internal", "Internal error", "the service failed"), 500)

        # A job id may hold "/" (a run's launches: "<run>/<n>"), sent as %2F and decoded
        # before routing: the id takes the rest of the path, up to the route's own end.
        return Route(
            operation.path.replace("{id}", "{id:path}"),
            endpoint,
            methods=[operation.method],
            name=operation.operation_id,
        )

    async def _authenticate(self, request: Request) -> Client:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("no bearer token; get one from POST /token")
        token = token.strip()
        client = self._issuer.verified(token)
        if client is None:
            client = await self._worker(self._issuer.verify, token)
        return client

    @staticmethod
    async def _worker(call: Callable[..., _T], *args: object, **kwargs: object) -> _T:
        """``call(*args, **kwargs)`` in a worker thread: never block the event loop on storage."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(call, *args, **kwargs))

    async def _carry_out(self, command: Command) -> Job:
        """``command`` carried out, in a batch with other requests' commands when it can be.

        Its outcome and error are its own either way (see :mod:`jobledger.http._writer`).
        """
        if self.writer.takes(command):
            outcome = await self.writer.handle(command)
            if outcome is not ALONE:
                return outcome  # type: ignore[return-value]
        return await self._worker(self._jobs.handle, command)

    def _remember(self, job: Job, replaced: str | None = None) -> None:
        """Keep ``job``'s service under its id and ETag (forgetting ``replaced``, its last)."""
        services = self._services
        if replaced is not None:
            services.pop((job.id, replaced), None)
        if len(services) >= _MAX_SERVICES:
            services.pop(next(iter(services)))  # the oldest
        services[job.id, job.etag] = job.service

    async def _handle_permitted(self, client: Client | None, verb: str, command: _Change) -> Job:
        """Carry out ``command`` as ``client`` (its actor) if it may ``verb`` the job's service."""
        service = self._services.get((command.job_id, command.etag))
        if service is None:
            job = await self._worker(self._read_check_handle, client, verb, command)
        else:
            self._may(client, verb, service)
            as_client = self._as_client(command, client)
            try:
                job = await self._carry_out(as_client)
            except JobledgerError:
                # Not that version (or no longer that job): the refusal goes only to a
                # client that may act on the job as it is now.
                await self._worker(self._read_check, client, verb, command.job_id)
                raise
        self._remember(job, command.etag)
        return job

    def _read_check(self, client: Client | None, verb: str, job_id: str) -> None:
        """Raise 403 unless ``client`` may ``verb`` the job as stored (in a worker)."""
        self._may(client, verb, self._jobs.get(job_id).service)

    def _read_check_handle(self, client: Client | None, verb: str, command: _Change) -> Job:
        """The job's service read, the permission checked, then the command (in a worker)."""
        self._read_check(client, verb, command.job_id)
        return self._jobs.handle(self._as_client(command, client))

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self._max_body:
            raise RequestTooLargeError(self._max_body)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise RequestTooLargeError(self._max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _message(
        self, request: Request, message_type: str, **fixed: object
    ) -> dict[str, Any]:
        """The body's JSON object, with the fields the path and headers give."""
        body = await self._body(request)
        data: object = {}
        if body.strip():
            try:
                data = loads(body)
            except (ValueError, RecursionError) as err:
                raise WireFormatError(message_type, "", f"the body is not JSON: {err}") from None
        if not isinstance(data, dict):
            raise WireFormatError(message_type, "", "the body must be a JSON object")
        for key in (*fixed, "MessageType", "RequestId"):
            if key in data:
                where = "the path" if key == "JobId" else "the Idempotency-Key header"
                where = "If-Match" if key == "ETag" else where
                where = "the route" if key == "MessageType" else where
                raise WireFormatError(
                    message_type, f"/{key}", f"unknown key; it comes from {where}"
                )
        request_id = request.headers.get("idempotency-key")
        return {**data, **fixed, "MessageType": message_type, "RequestId": request_id}

    @staticmethod
    def _may(client: Client | None, action: str, service: str | None = None) -> None:
        """Raise 403 unless ``client`` may ``action`` on ``service`` (on some service if None)."""
        assert client is not None  # noqa: S101  (routes with an action authenticate first)
        if service is None:
            if client.permissions.services(action) == frozenset():
                raise PermissionDeniedError(client.client_id, action, "")
        elif not client.permissions.allows(action, service):
            raise PermissionDeniedError(client.client_id, action, service)

    def _as_client(self, command: Command, client: Client | None) -> Command:
        """``command`` with ``client`` as its actor (``as_client``): a client acts as itself."""
        assert client is not None  # noqa: S101  (routes with an action authenticate first)
        return as_client(command, client.client_id, self._jobs.limits)

    def _scoped(self, client: Client | None, services: list[str] | None) -> list[str] | None:
        """The services a read may cover: those asked for, within the client's permission."""
        self._may(client, "read")
        assert client is not None  # noqa: S101  (checked by _may)
        allowed = client.permissions.services("read")
        if allowed is None:
            return services
        if services is None:
            return sorted(allowed)
        for service in services:
            self._may(client, "read", service)
        return services

    # -- the routes (named as in OPERATIONS) ----------------------------------------

    async def token(self, request: Request, _client: Client | None) -> Response:
        """POST /token: client credentials in the form or in HTTP Basic."""
        body = await self._body(request)
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            form = {}
        if form.get("grant_type") != "client_credentials":
            return _json(
                problem(
                    400,
                    "unsupported-grant",
                    "Unsupported grant",
                    "send grant_type=client_credentials as a form",
                    error="unsupported_grant_type" if "grant_type" in form else "invalid_request",
                ),
                400,
            )
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                pair = ""
            basic_id, _, basic_secret = pair.partition(":")
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        try:
            client = await self._worker(self._clients.authenticate, client_id, secret)
        except AuthenticationError as err:
            document = problem_of(err)
            document["error"] = "invalid_client"
            return _json(document, 401, {"WWW-Authenticate": 'Basic realm="jobledger"'})
        issued = self._issuer.issue(client)
        logger.info("issued a token", extra={"client_id": client.client_id})
        return _json(
            {
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def startJob(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """POST /jobs: StartJob."""
        self._may(client, "start")
        command = wire.decode_command(await self._message(request, "StartJob"))
        self._may(client, "start", command.service)  # type: ignore[union-attr]
        command = self._as_client(command, client)
        job = await self._carry_out(command)
        self._remember(job)
        return _job_response(job, 201, {"Location": f"/jobs/{quote(job.id, safe='')}"})

    async def handleAll(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """POST /jobs:batch: commands in order, all or none, each with its own permission."""
        body = await self._body(request)
        try:
            data = loads(body)
        except (ValueError, RecursionError) as err:
            raise WireFormatError("Batch", "", f"the body is not JSON: {err}") from None
        if not isinstance(data, dict) or set(data) != {"Commands"}:
            raise WireFormatError("Batch", "", 'the body must be {"Commands": [...]}')
        items = data["Commands"]
        if not isinstance(items, list) or len(items) > _MAX_PAGE:
            raise WireFormatError("Batch", "/Commands", f"must be an array of at most {_MAX_PAGE}")
        commands = []
        for index, item in enumerate(items):
            try:
                commands.append(wire.decode_command(item))
            except WireFormatError as err:
                raise WireFormatError(
                    err.field, f"/Commands/{index}{err.path}", err.reason
                ) from None
        await self._may_all(client, commands)
        commands = [self._as_client(command, client) for command in commands]
        jobs = await self._worker(self._jobs.handle_all, commands)
        return _json({"Jobs": [wire.encode(job) for job in jobs]})

    async def _may_all(self, client: Client | None, commands: list[Command]) -> None:
        """Check that ``client`` may carry out each command of a batch, in order.

        Raises:
            PermissionDeniedError: the client may not carry out one of them.
            JobNotFoundError: a change names a job that does not exist; its
                ``batch_index`` is that command's place in the batch.
        """
        services: dict[str, str] = {}
        for index, command in enumerate(commands):
            if isinstance(command, StartJob):
                self._may(client, "start", command.service)
                if command.job_id is not None:
                    services.setdefault(command.job_id, command.service)
                continue
            verb = _VERB_OF[type(command)]
            self._may(client, verb)
            if command.job_id not in services:
                try:
                    job = await self._worker(self._jobs.get, command.job_id)
                except JobNotFoundError as err:
                    err.batch_index = index
                    raise
                services[command.job_id] = job.service
            self._may(client, verb, services[command.job_id])

    async def findJobs(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """GET /jobs: a page of jobs."""
        query = JobQuery(
            service=self._scoped(client, _names(request, "service")),
            entity=_names(request, "entity"),
            type=_names(request, "type"),
            status=_names(request, "status"),
            phase=_names(request, "phase"),
            created_after=_time(request, "created_after"),
            created_before=_time(request, "created_before"),
            limit=_integer(request, "page_size", 100, _MAX_PAGE),
            cursor=request.query_params.get("page_token"),
        )
        page = await self._worker(self._jobs.find, query)
        return _json(
            {"Jobs": [wire.encode(job) for job in page.jobs], "NextPageToken": page.next_cursor}
        )

    async def getJob(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """GET /jobs/{id}: GetJobById, 304 when If-None-Match holds its ETag."""
        self._may(client, "read")
        job = await self._worker(self._jobs.get, request.path_params["id"])
        self._may(client, "read", job.service)
        self._remember(job)
        seen = request.headers.get("if-none-match")
        if seen is not None:
            tags = {_unquoted(tag.strip().removeprefix("W/")) for tag in seen.split(",")}
            if "*" in tags or job.etag in tags:
                return Response(status_code=304, headers={"ETag": _quoted(job.etag)})
        return _job_response(job)

    async def _change(self, request: Request, client: Client | None, verb: str) -> Response:
        job_id: str = request.path_params["id"]
        self._may(client, verb)
        if_match = request.headers.get("if-match")
        if if_match is None:
            raise PreconditionRequiredError(job_id)
        etag = ANY_ETAG if if_match.strip() == "*" else _unquoted(if_match)
        message = await self._message(request, _COMMAND_OF[verb], JobId=job_id, ETag=etag)
        command = wire.decode_command(message)
        # The client's permission (and the job) is checked before its actor (_handle_permitted).
        job = await self._handle_permitted(client, verb, command)  # type: ignore[arg-type]
        return _job_response(job)

    async def updateJob(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """POST /jobs/{id}:update: UpdateJob."""
        return await self._change(request, client, "update")

    async def completeJob(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """POST /jobs/{id}:complete: CompleteJob."""
        return await self._change(request, client, "complete")

    async def failJob(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """POST /jobs/{id}:fail: FailJob."""
        return await self._change(request, client, "fail")

    async def cancelJob(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """POST /jobs/{id}:cancel: CancelJob."""
        return await self._change(request, client, "cancel")

    async def listUpdates(self, request: Request, client: Client | None) -> Response:  # noqa: N802  (the operation's id)
        """GET /jobs/{id}/updates: a page of the update log."""
        self._may(client, "read")
        after = _integer(request, "after", 0)
        limit = _integer(request, "limit", 100, _MAX_PAGE)
        job_id = request.path_params["id"]
        job = await self._worker(self._jobs.get, job_id)
        self._may(client, "read", job.service)
        updates: Sequence[Any] = await self._worker(
            lambda: self._jobs.repository.updates(job_id, after=after)
        )
        page = updates[:limit]
        more = len(updates) > limit
        return _json(
            {
                "Updates": [wire.encode(update) for update in page],
                "NextAfter": page[-1].update_id if more else None,
            }
        )

    async def events(self, request: Request, client: Client | None) -> Response:
        """GET /events: the event feed as Server-Sent Events."""
        services = self._scoped(client, _names(request, "service"))
        kinds = _names(request, "events")
        unknown = [name for name in kinds or () if name not in _EVENT_NAMES]
        if unknown:
            known = ", ".join(_EVENT_NAMES)
            raise InvalidJobDataError("events", "", f"{unknown[0]!r} is not one of {known}")
        event_filter = EventFilter(
            service=services,
            entity=_names(request, "entity"),
            type=_names(request, "type"),
            events=None if kinds is None else tuple(_EVENT_NAMES[name] for name in kinds),
        )
        after = _integer(request, "after", -1)
        last = request.headers.get("last-event-id")
        if last is not None:
            text = last.strip()
            if not text.isascii() or not text.isdigit():
                raise InvalidJobDataError(
                    "Last-Event-ID", "", "must be a feed position, an integer"
                )
            after = int(text)
        if after < 0:
            # Neither given: from now on, like a subscription to a local ledger.
            after = await self._worker(self._jobs.repository.feed_head)
        return StreamingResponse(
            self.feed(after, event_filter),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def feed(self, after: int, event_filter: EventFilter) -> AsyncIterator[str]:
        """The feed after ``after``, until the stream's time is up (the client then resumes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stream_seconds
        quiet_since = loop.time()
        position = after
        yield f"retry: {int(self._poll * 1000) + 500}\n: feed after {after}\n\n"
        while loop.time() < deadline:
            try:
                entries = await self._worker(
                    self._jobs.repository.read_feed, after=position, limit=_FEED_BATCH
                )
            except JobledgerError as err:
                logger.warning("the event feed stopped: %s", type(err).__name__)
                return
            for entry in entries:
                position = entry.position
                if event_filter.matches(entry.event):
                    name = type(entry.event).__name__
                    yield f"id: {position}\nevent: {name}\ndata: {wire.dumps(entry.event)}\n\n"
                    quiet_since = loop.time()
            if len(entries) == _FEED_BATCH:
                continue
            if loop.time() - quiet_since >= self._keepalive:
                yield ": keep-alive\n\n"
                quiet_since = loop.time()
            await asyncio.sleep(self._poll)

    async def openapi(self, _request: Request, _client: Client | None) -> Response:
        """GET /openapi.json."""
        return _json(self._document)

    _document = openapi_document()


async def _not_found(_request: Request, error: Exception) -> Response:
    status = error.status_code if isinstance(error, HTTPException) else 500
    title = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
    detail = {404: "no such route; GET /openapi.json lists them"}.get(status, title)
    return _json(problem(status, title.lower().replace(" ", "-"), title, detail), status)


def create_app(
    jobs: Jobs,
    clients: ClientStore,
    *,
    token_lifetime: int = DEFAULT_TOKEN_SECONDS,
    token_recheck_seconds: float = DEFAULT_RECHECK_SECONDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    keepalive_seconds: float = 15.0,
    poll_seconds: float = 0.25,
    stream_seconds: float = 300.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    dashboard: bool = True,
    runner: Runner | None = None,
    session_seconds: int = DEFAULT_SESSION_SECONDS,
    https_only: bool = False,
) -> Starlette:
    """The jobs service as an ASGI app, over ``jobs`` and its ``clients``.

    While the app's lifespan runs (uvicorn runs it), the commands of requests
    in flight together are carried out by one writer thread as one batch,
    each keeping its own outcome (the how-to on running the service says how,
    under *Performance*); served without its lifespan, each command goes to a
    worker thread alone.

    Args:
        jobs: The ledger to serve.
        clients: Who may use it (:func:`~jobledger.http.client_store_beside`).
        token_lifetime: Seconds an access token is valid.
        token_recheck_seconds: Seconds a verified token's client is trusted
            before it is read from the store again: a removed or rotated
            client's tokens stop working within this time (0: at once, at the
            cost of a store read per request).
        max_body_bytes: The largest request body read; larger ones get 413.
        keepalive_seconds: Seconds of a quiet event feed before a keep-alive comment.
        poll_seconds: Seconds between the event feed's reads of the ledger.
        stream_seconds: Seconds one event feed response lasts; clients then
            reconnect with ``Last-Event-ID`` (so no stream holds the server forever).
        clock: Returns the current time; tokens expire by it.
        dashboard: Whether to serve the web dashboard under ``/dashboard``
            (``/`` leads there).
        runner: The runner the dashboard resumes runs with (its job
            definitions); ``None`` offers no resume. Its resumes are let go
            when the app shuts down.
        session_seconds: Seconds a dashboard session lasts after its sign-in.
        https_only: Whether the dashboard's session cookie goes over HTTPS only.

    >>> from jobledger import Jobs
    >>> from jobledger.http import InMemoryClientStore, create_app
    >>> app = create_app(Jobs(), InMemoryClientStore())
    >>> sorted(route.name for route in app.routes)[:3]
    ['cancelJob', 'completeJob', 'dashboard']
    """
    issuer = TokenIssuer(
        clients, lifetime=token_lifetime, clock=clock, recheck_seconds=token_recheck_seconds
    )
    service = _Service(
        jobs,
        clients,
        issuer,
        max_body_bytes=max_body_bytes,
        keepalive_seconds=keepalive_seconds,
        poll_seconds=poll_seconds,
        stream_seconds=stream_seconds,
    )
    # Routes with more after the job id first: /jobs/{id}/updates is not the job "x/updates".
    routes: list[Route | Mount] = [
        service.route(operation)
        for operation in sorted(OPERATIONS, key=lambda op: op.path.endswith("{id}"))
    ]
    resumes = None
    if dashboard:
        board, resumes = create_dashboard(
            jobs,
            clients,
            feed=service.feed,
            runner=runner,
            session_seconds=session_seconds,
            https_only=https_only,
            clock=clock,
        )
        routes.append(Mount("/dashboard", board, name="dashboard"))
        routes.append(Route("/", _to_dashboard, methods=["GET"], name="root"))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        service.writer.start()
        try:
            yield
        finally:
            # The commands queued are carried out and answered before the loop ends.
            await asyncio.get_running_loop().run_in_executor(None, service.writer.stop)
            if resumes is not None:
                # Runs the dashboard resumed are let go, so another process resumes them at once.
                resumes.stop()

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _not_found, Exception: _not_found},
        lifespan=lifespan,
    )


async def _to_dashboard(_request: Request) -> Response:
    return RedirectResponse("/dashboard/", status_code=307)
