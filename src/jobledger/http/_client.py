""":class:`JobsClient`: the ledger's methods over HTTP (httpx), raising the library's errors."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import httpx

from jobledger import (
    ANY_ETAG,
    CancelJob,
    CompleteJob,
    EventFilter,
    FailJob,
    FeedEntry,
    JobPage,
    JobQuery,
    StartJob,
    StorageUnavailableError,
    UpdateJob,
    wire,
)
from jobledger._application.job_commands import JobCommands
from jobledger.http._errors import AuthenticationError
from jobledger.http._json import dumps
from jobledger.http._problems import error_of

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Sequence
    from types import TracebackType

    from jobledger import Command, Handler, Job, JobUpdate
    from jobledger._core.events import EventKinds

__all__ = ["API_CLIENT_ID_ENV", "API_SECRET_ENV", "API_URL_ENV", "JobsClient", "Subscription"]

logger = logging.getLogger(__name__)

#: The environment variables :meth:`JobsClient.from_environment` reads.
API_URL_ENV = "JOBLEDGER_API_URL"
API_CLIENT_ID_ENV = "JOBLEDGER_API_CLIENT_ID"
API_SECRET_ENV = "JOBLEDGER_API_SECRET"  # noqa: S105  (the variable's name, not a secret)

_VERBS = {UpdateJob: "update", CompleteJob: "complete", FailJob: "fail", CancelJob: "cancel"}
_FROM_ROUTE = ("MessageType", "JobId", "ETag", "RequestId")
# Refresh a token this many seconds before it expires.
_TOKEN_MARGIN = 30.0
_PAGE = 1000


class JobsClient(JobCommands):
    """A remote ledger: :class:`~jobledger.Jobs`'s methods, over the jobs service.

    Args:
        api_url: The service's base URL (``http://127.0.0.1:8000``).
        client_id: The client's id.
        client_secret: Its secret.
        timeout: Seconds to wait for the service on each request.
        transport: An httpx transport (for tests or proxies); the network by default.

    Errors are the library's own: a stale ETag raises
    :class:`~jobledger.ConcurrencyError` with the current ETag, a missing job
    :class:`~jobledger.JobNotFoundError`, and so on; a service that cannot be
    reached raises :class:`~jobledger.StorageUnavailableError`, and a client
    not permitted :class:`~jobledger.http.PermissionDeniedError`. The access
    token is fetched on first use and again before it expires. Safe to share
    between threads.
    """

    def __init__(
        self,
        api_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = api_url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self._timeout = timeout
        self._http = httpx.Client(base_url=self._url, timeout=timeout, transport=transport)
        # Commands and queries go straight to the transport the client would pick for the
        # service (its pool of kept-alive connections, its proxy if the environment names
        # one): httpx.Client's per-request work (merging defaults, cookies, auth, redirects,
        # hooks) is about a third of a command's CPU on the caller's side, and none of it
        # is needed here. The token's form and the event stream still go through the client.
        self._transport: httpx.BaseTransport = self._http._transport_for_url(  # noqa: SLF001
            httpx.URL(self._url)
        )
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._lock = threading.Lock()
        self._token = ""
        self._token_expires = 0.0

    @classmethod
    def from_environment(cls, **options: Any) -> JobsClient:  # noqa: ANN401  (the constructor's options)
        """A client from ``JOBLEDGER_API_URL``, ``..._API_CLIENT_ID`` and ``..._API_SECRET``.

        Raises:
            KeyError: one of them is not set.
        """
        return cls(
            os.environ[API_URL_ENV],
            os.environ[API_CLIENT_ID_ENV],
            os.environ[API_SECRET_ENV],
            **options,
        )

    @property
    def api_url(self) -> str:
        """The service's base URL."""
        return self._url

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def __enter__(self) -> Self:
        """Use the client as a context manager that closes it."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()

    # -- requests --------------------------------------------------------------------

    def _bearer(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or not self._token or time.monotonic() >= self._token_expires:
                response = self._send(
                    "POST",
                    "/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self._client_id, self._secret),
                )
                body = response.json()
                self._token = str(body["access_token"])
                lifetime = float(body["expires_in"])
                self._token_expires = time.monotonic() + max(lifetime - _TOKEN_MARGIN, lifetime / 2)
            return self._token

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:  # noqa: ANN401  (httpx's options)
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as err:
            reason = f"the jobs service cannot be reached ({type(err).__name__}: {err})"
            raise StorageUnavailableError(self._url, reason) from err
        if response.status_code >= 400:  # noqa: PLR2004
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> Exception:
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            document = {"title": response.reason_phrase}
        return error_of(response.status_code, document, location=self._url)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        headers: dict[str, str] | None = None,
        params: Sequence[tuple[str, str | int]] | None = None,
    ) -> httpx.Response:
        """A request with the token, ``body`` as JSON; a refused token is fetched anew once."""
        sent = {} if headers is None else dict(headers)
        content = None
        if body is not None:
            content = dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        sent["Authorization"] = f"Bearer {self._bearer()}"
        try:
            return self._direct(method, path, content, sent, params)
        except AuthenticationError:
            sent["Authorization"] = f"Bearer {self._bearer(renew=True)}"
            return self._direct(method, path, content, sent, params)

    def _direct(
        self,
        method: str,
        path: str,
        content: bytes | None,
        headers: dict[str, str],
        params: Sequence[tuple[str, str | int]] | None,
    ) -> httpx.Response:
        """One request straight to the transport, its response read in full."""
        request = httpx.Request(
            method,
            self._url + path,
            params=None if params is None else tuple(params),
            headers=headers,
            content=content,
            extensions=self._extensions,
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()  # the connection goes back to the pool
        except httpx.TransportError as err:
            reason = f"the jobs service cannot be reached ({type(err).__name__}: {err})"
            raise StorageUnavailableError(self._url, reason) from err
        if response.status_code >= 400:  # noqa: PLR2004
            raise self._error(response)
        return response

    @staticmethod
    def _path(job_id: str) -> str:
        return "/jobs/" + quote(job_id, safe="")

    # -- commands --------------------------------------------------------------------

    def handle(self, command: Command) -> Job:
        """Carry out ``command`` on the service; return the job as it left it.

        Raises:
            the same errors as :meth:`jobledger.Jobs.handle`, and
            PermissionDeniedError: the client may not send this command.
        """
        fields = wire.encode(command)
        headers = {} if command.request_id is None else {"Idempotency-Key": command.request_id}
        body = {key: value for key, value in fields.items() if key not in _FROM_ROUTE}
        if isinstance(command, StartJob):
            if command.job_id is not None:
                body["JobId"] = command.job_id
            response = self._call("POST", "/jobs", body=body, headers=headers)
        else:
            etag = command.etag
            headers["If-Match"] = "*" if etag == ANY_ETAG else f'"{etag}"'
            path = f"{self._path(command.job_id)}:{_VERBS[type(command)]}"
            response = self._call("POST", path, body=body, headers=headers)
        return wire.decode_job(response.content)

    def handle_all(self, commands: Sequence[Command]) -> tuple[Job, ...]:
        """Carry out ``commands`` in order, all or none; see :meth:`jobledger.Jobs.handle_all`.

        Raises:
            the first refusal, as :meth:`handle`; then nothing of the batch was saved.
            Its :attr:`~jobledger.JobledgerError.batch_index` is the refused
            command's place in ``commands`` when the service says which it is.
        """
        if not commands:
            return ()
        body = {"Commands": [wire.encode(command) for command in commands]}
        jobs = self._call("POST", "/jobs:batch", body=body).json()["Jobs"]
        return tuple(map(wire.decode_job, jobs))

    # -- queries ---------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with ``job_id`` (GetJobById).

        Raises:
            JobNotFoundError: no job has this id.
        """
        return wire.decode_job(self._call("GET", self._path(job_id)).content)

    def updates(self, job_id: str, *, after: int = 0) -> Sequence[JobUpdate]:
        """The job's updates after ``after``, oldest first (every page of them).

        Raises:
            JobNotFoundError: no job has this id.
        """
        found: list[JobUpdate] = []
        while True:
            params = [("after", after), ("limit", _PAGE)]
            body = self._call("GET", f"{self._path(job_id)}/updates", params=params).json()
            found.extend(wire.decode_update(update) for update in body["Updates"])
            if body["NextAfter"] is None:
                return tuple(found)
            after = int(body["NextAfter"])

    def find(self, query: JobQuery | None = None, **filters: object) -> JobPage:
        """A page of jobs, newest first; see :meth:`jobledger.Jobs.find`.

        Raises:
            InvalidJobDataError: a filter or the cursor is not valid.
        """
        query = JobQuery.given(query, **filters)
        params: list[tuple[str, str | int]] = [("page_size", query.limit)]
        for name in ("service", "entity", "type", "status"):
            params.extend((name, value) for value in sorted(getattr(query, name) or ()))
        params.extend(("phase", phase.value) for phase in sorted(query.phase or ()))
        for name in ("created_after", "created_before"):
            when = getattr(query, name)
            if when is not None:
                params.append((name, when.isoformat()))
        if query.cursor is not None:
            params.append(("page_token", query.cursor))
        body = self._call("GET", "/jobs", params=params).json()
        return JobPage(tuple(map(wire.decode_job, body["Jobs"])), body["NextPageToken"])

    # -- the event feed --------------------------------------------------------------

    def feed(
        self,
        event_filter: EventFilter | None = None,
        *,
        after: int | None = None,
        stop: threading.Event | None = None,
        reconnect_seconds: float = 1.0,
        on_open: Callable[[int], None] | None = None,
    ) -> Iterator[FeedEntry]:
        """The service's event feed, entry by entry, resuming after the last one on reconnects.

        Args:
            event_filter: Which events; every event when ``None``.
            after: Start after this feed position; from now on when ``None``.
            stop: Set it to end the iteration (checked between events and reconnects).
            reconnect_seconds: Seconds to wait before reconnecting after a failure.
            on_open: Called with the position the feed resumes after, whenever
                a stream opens.

        Ends when ``stop`` is set; an error that is not the network's (no
        permission, a bad filter) is raised.
        """
        stop = stop or threading.Event()
        params = _filter_params(event_filter)
        position = after
        while not stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if position is not None:
                headers["Last-Event-ID"] = str(position)
            try:
                for entry in self._stream(params, headers, stop, on_open):
                    if isinstance(entry, int):
                        position = entry
                        continue
                    position = entry.position
                    yield entry
            except StorageUnavailableError as err:
                logger.warning("event feed interrupted; reconnecting: %s", err)
            stop.wait(reconnect_seconds)

    def _stream(  # noqa: C901  (one loop over the lines of the stream)
        self,
        params: Sequence[tuple[str, str]],
        headers: dict[str, str],
        stop: threading.Event,
        on_open: Callable[[int], None] | None,
    ) -> Iterator[FeedEntry | int]:
        headers["Authorization"] = f"Bearer {self._bearer()}"
        # Reads wait for the next event or keep-alive, so only connecting is bounded.
        timeout = httpx.Timeout(self._timeout, read=None)
        try:
            with self._http.stream(
                "GET", "/events", params=list(params), headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:  # noqa: PLR2004
                    response.read()
                    error = self._error(response)
                    if isinstance(error, AuthenticationError):
                        self._bearer(renew=True)
                        return
                    raise error
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith(": feed after "):
                        start = int(line.removeprefix(": feed after "))
                        if on_open is not None:
                            on_open(start)
                        yield start
                    elif not line:
                        if "data" in fields and "id" in fields:
                            yield FeedEntry(int(fields["id"]), wire.decode_event(fields["data"]))
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except httpx.TransportError as err:
            reason = f"the jobs service cannot be reached ({type(err).__name__}: {err})"
            raise StorageUnavailableError(self._url, reason) from err

    def subscribe(
        self,
        handler: Handler,
        event_filter: EventFilter | None = None,
        *,
        service: str | Collection[str] | None = None,
        entity: str | Collection[str] | None = None,
        type: str | Collection[str] | None = None,
        events: EventKinds | None = None,
        after: int | None = None,
        timeout: float = 10.0,
    ) -> Subscription:
        """Call ``handler`` with every event that passes the filter, from a background thread.

        Like :meth:`jobledger.Jobs.subscribe`, but over the service's event feed:
        events from every process, from now on (or after the feed position
        ``after``), resuming after the last one delivered when the connection
        breaks. Returns once the feed is open (or after ``timeout`` seconds).
        """
        event_filter = EventFilter.given(
            event_filter, service=service, entity=entity, type=type, events=events
        )
        return Subscription(self, handler, event_filter, after=after, timeout=timeout)


def _filter_params(event_filter: EventFilter | None) -> list[tuple[str, str]]:
    if event_filter is None:
        return []
    params: list[tuple[str, str]] = []
    for name in ("service", "entity", "type"):
        params.extend((name, value) for value in sorted(getattr(event_filter, name) or ()))
    params.extend(("events", kind.__name__) for kind in sorted(event_filter.events or (), key=str))
    return params


class Subscription:
    """A background thread that feeds the service's events to a handler; :meth:`cancel` it.

    Attributes:
        position: The feed position of the last event delivered (or the start).
    """

    def __init__(
        self,
        client: JobsClient,
        handler: Handler,
        event_filter: EventFilter | None,
        *,
        after: int | None,
        timeout: float,
    ) -> None:
        self._client = client
        self._handler = handler
        self._filter = event_filter
        self._stop = threading.Event()
        self._opened = threading.Event()
        self.position = after
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="jobledger-http-feed", daemon=True)
        self._thread.start()
        self._opened.wait(timeout)

    def _open(self, position: int) -> None:
        if self.position is None:
            self.position = position
        self._opened.set()

    def _run(self) -> None:
        try:
            for entry in self._client.feed(
                self._filter, after=self.position, stop=self._stop, on_open=self._open
            ):
                try:
                    self._handler(entry.event)
                except Exception:
                    logger.exception(
                        "an event handler failed", extra={"event_id": entry.event.event_id}
                    )
                self.position = entry.position
        except Exception as err:
            self.error = err
            logger.exception("the event feed subscription stopped")
        finally:
            self._opened.set()

    def cancel(self, timeout: float = 5.0) -> None:
        """Stop delivering events; wait up to ``timeout`` seconds for the thread to end."""
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        """Use the subscription as a context manager that cancels it."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel the subscription."""
        self.cancel()
