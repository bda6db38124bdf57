"""The dashboard's routes: sign-in, the runs, a run, the jobs, a job, the actions, live updates.

Server-rendered HTML (Jinja2 through Starlette's templates); the pages work
without JavaScript, and a small script refreshes their live parts from the
dashboard's event stream.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as FutureTimeoutError
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode

import attrs
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from jobledger import (
    EventFilter,
    InvalidJobDataError,
    JobledgerError,
    JobNotFoundError,
    JobQuery,
)
from jobledger.http._errors import AuthenticationError
from jobledger.http.dashboard._actions import Resumes, cancel_run, repairable, resumable
from jobledger.http.dashboard._session import (
    CSRF_FIELD,
    check_csrf,
    csrf_token,
    session_client,
    session_key,
    sign_in,
    sign_out,
)
from jobledger.http.dashboard._views import (
    EVENT_OF_UPDATE,
    RunRow,
    drives_of,
    duration_text,
    pretty_json,
    run_row,
    steps_of,
    timeline_of,
)
from jobledger.runner import (
    RUN_ENTITY,
    RUN_SERVICE,
    TASK_ENTITY,
    RunnerError,
    RunNotFoundError,
    RunStatus,
    load_launches,
    run_result,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
    from concurrent.futures import Future

    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from jobledger import Job, Jobs
    from jobledger.http._clients import Client, ClientStore
    from jobledger.runner import JobDefinition, Runner, RunResult

__all__ = ["DEFAULT_SESSION_SECONDS", "create_dashboard"]

logger = logging.getLogger(__name__)

#: Seconds a dashboard session lasts after its sign-in, by default (8 hours).
DEFAULT_SESSION_SECONDS: Final = 8 * 3600
#: The session cookie's name.
SESSION_COOKIE: Final = "jobledger_dashboard"
#: The page a sign-in leads to unless it was asked for another.
_FIRST_PAGE: Final = "/runs"
_PAGE_SIZE: Final = 25
_LOG_PAGE: Final = 100
# The most launches a run's page reads, and the most run updates it replays for the drives.
_MAX_LAUNCHES: Final = 1000
_MAX_REPLAY: Final = 2000
_MAX_FORM_BYTES: Final = 64 * 1024
# Seconds between two reads of an event stream's client: a removed, rotated or changed
# client's stream ends within this time.
_RECHECK_SECONDS: Final = 1.0
# Seconds an action waits for a resume to end before saying the server drives it.
_RESUME_WAIT: Final = 2.0
#: The runs list's status filter: a run's status, or ``completed with warnings``.
_WITH_WARNINGS: Final = "completed with warnings"
_RUN_STATUSES: Final = (*(status.value for status in RunStatus), _WITH_WARNINGS)
# The most pages of completed runs one page of runs completed with warnings reads.
_MAX_SCANNED_PAGES: Final = 20
_SECURITY_HEADERS: Final = [
    (
        b"content-security-policy",
        (
            b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]

#: What each action does, for its confirmation and its result.
_ACTION_TITLES: Final = {
    "cancel": "Cancel the run",
    "resume": "Resume the run",
    "repair": "Resume the run with repair",
    "force": "Resume the run with a force threshold",
}


def _security_headers(app: ASGIApp) -> ASGIApp:
    """``app`` with the dashboard's security headers on every response."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await app(scope, receive, send_with_headers)  # type: ignore[arg-type]

    return wrapped


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jobledger.http.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["duration"] = duration_text
    env.filters["pretty"] = pretty_json
    return Jinja2Templates(env=env)


class _Refused(Exception):  # noqa: N818  (a page to answer with, not an error of the library)
    """Answer with an error page: ``status`` and what to tell the person."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


class _Dashboard:
    """The dashboard's handlers, over one ledger, one client store and, maybe, a runner."""

    def __init__(
        self,
        jobs: Jobs,
        clients: ClientStore,
        *,
        feed: Callable[[int, EventFilter], AsyncIterator[str]],
        runner: Runner | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.jobs = jobs
        self.clients = clients
        self.feed = feed
        self.runner = runner
        self.resumes = Resumes(runner) if runner is not None else None
        self.runs_service = runner.service if runner is not None else RUN_SERVICE
        self.clock = clock
        self.templates = _templates()

    # -- what every page shares ------------------------------------------------------

    def page(
        self, request: Request, name: str, context: Mapping[str, object], status: int = 200
    ) -> Response:
        client: Client | None = request.state.client if hasattr(request.state, "client") else None
        base = request.scope.get("root_path", "")
        response = self.templates.TemplateResponse(
            request,
            name,
            {
                "base": base,
                "client": client,
                "may_see_runs": client is not None
                and client.permissions.allows("read", self.runs_service),
                "csrf": csrf_token(request),
                "csrf_field": CSRF_FIELD,
                **context,
            },
            status_code=status,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def handler(
        self, method: Callable[[Request, Client], Awaitable[Response]], *, post: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route's endpoint: the session's client (or sign-in), CSRF on POST, error pages."""

        async def endpoint(request: Request) -> Response:
            try:
                client = await self.admit(request, post=post)
                if client is None:
                    base = request.scope.get("root_path", "")
                    here = request.url.path.removeprefix(base)
                    query = f"?{request.url.query}" if request.url.query else ""
                    target = urlencode({"next": here + query})
                    return RedirectResponse(f"{base}/signin?{target}", status_code=303)
                return await method(request, client)
            except _Refused as refusal:
                return self.error(request, refusal.status, refusal.title, refusal.detail)
            except (JobNotFoundError, RunNotFoundError) as err:
                return self.error(request, 404, "Not found", str(err))
            except InvalidJobDataError as err:
                return self.error(request, 400, "Not understood", str(err))

        return endpoint

    async def admit(self, request: Request, *, post: bool) -> Client | None:
        """The session's client; ``None`` to sign in first (a GET only).

        Raises:
            _Refused: a POST without the session's CSRF token or without a
                session, or a client that may read nothing.
        """
        client = await run_in_threadpool(session_client, request, self.clients)
        request.state.client = client
        if post:
            form = await self.form(request)
            request.state.form = form
            if not check_csrf(request, form.get(CSRF_FIELD)):
                raise _Refused(
                    403,
                    "Refused",
                    "The form's security token is missing or out of date: reload the page and "
                    "try again.",
                )
            if client is None:
                raise _Refused(403, "Signed out", "Sign in first.")
        if client is not None and client.permissions.services("read") == frozenset():
            raise _Refused(403, "Not permitted", f"Client {client.client_id} may not read any job.")
        return client

    def error(self, request: Request, status: int, title: str, detail: str) -> Response:
        return self.page(request, "error.html", {"title": title, "detail": detail}, status)

    async def form(self, request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM_BYTES:
                raise _Refused(413, "Too large", "The form is too large.")
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return {}

    def may_read(self, client: Client, service: str) -> None:
        if not client.permissions.allows("read", service):
            raise _Refused(
                403,
                "Not permitted",
                f"Client {client.client_id} may not read the jobs of {service}.",
            )

    async def feed_head(self) -> int:
        head: int = await run_in_threadpool(self.jobs.repository.feed_head)
        return head

    # -- sign-in -------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/runs", status_code=303)

    async def signin_page(self, request: Request) -> Response:
        request.state.client = None
        return self.page(
            request,
            "signin.html",
            {"title": "Sign in", "next": _next(request.query_params.get("next")), "failed": ""},
        )

    async def signin(self, request: Request) -> Response:
        request.state.client = None
        form = await self.form(request)
        if not check_csrf(request, form.get(CSRF_FIELD)):
            return self.error(
                request,
                403,
                "Refused",
                "The form's security token is missing or out of date: reload the page.",
            )
        client_id = form.get("client_id", "").strip()
        secret = form.get("client_secret", "")
        target = _next(form.get("next"))
        try:
            client = await run_in_threadpool(self.clients.authenticate, client_id, secret)
        except (AuthenticationError, InvalidJobDataError):
            return self.page(
                request,
                "signin.html",
                {
                    "title": "Sign in",
                    "next": target,
                    "failed": "That client id and secret do not match a client.",
                    "client_id": client_id,
                },
            )
        sign_in(request, client)
        logger.info("signed in to the dashboard", extra={"client_id": client.client_id})
        base = request.scope.get("root_path", "")
        if target == _FIRST_PAGE and not client.permissions.allows("read", self.runs_service):
            target = "/jobs"
        return RedirectResponse(f"{base}{target}", status_code=303)

    async def signout(self, request: Request, _client: Client) -> Response:
        sign_out(request)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/signin", status_code=303)

    # -- runs ----------------------------------------------------------------------

    async def runs(self, request: Request, client: Client) -> Response:
        self.may_read(client, self.runs_service)
        params = request.query_params
        definition = params.get("definition", "").strip()
        status = params.get("status", "").strip()
        if status and status not in _RUN_STATUSES:
            raise InvalidJobDataError("status", "", f"must be one of {', '.join(_RUN_STATUSES)}")
        query = JobQuery(
            service=self.runs_service,
            entity=RUN_ENTITY,
            type=definition or None,
            status=RunStatus.COMPLETED.value if status == _WITH_WARNINGS else (status or None),
            limit=_PAGE_SIZE,
            cursor=params.get("page") or None,
        )
        head = await self.feed_head()
        rows, cursor = await run_in_threadpool(
            self.find_runs, query, warnings_only=status == _WITH_WARNINGS
        )
        filters = {"definition": definition, "status": status}
        more, first = _pages_of(filters, cursor, paged=bool(params.get("page")))
        context = {
            "title": "Runs",
            "rows": rows,
            "filters": filters,
            "statuses": _RUN_STATUSES,
            "definitions": sorted(self.runner.definitions) if self.runner is not None else [],
            "next_page": more,
            "first_page": first,
            "after": head,
            "service": self.runs_service,
        }
        name = "_runs_rows.html" if params.get("fragment") else "runs.html"
        return self.page(request, name, context)

    def find_runs(self, query: JobQuery, *, warnings_only: bool) -> tuple[list[RunRow], str | None]:
        """A page of the runs list's rows, and the cursor of the page after it.

        Whether a completed run had warnings is in its state, which the ledger
        does not filter on: for ``warnings_only``, the completed runs' pages
        are read until the rows fill a page (at most ``_MAX_SCANNED_PAGES``
        pages, so a page may hold fewer rows, and the next one goes on).
        """
        now = self.clock()
        rows: list[RunRow] = []
        cursor = query.cursor
        for _ in range(_MAX_SCANNED_PAGES if warnings_only else 1):
            page = self.jobs.find(attrs.evolve(query, cursor=cursor))
            for job in page.jobs:
                try:
                    row = run_row(job, now)
                except RunNotFoundError:
                    logger.warning("job %r is not a run of this layout", job.id)
                    continue
                if not warnings_only or row.status == _WITH_WARNINGS:
                    rows.append(row)
            cursor = page.next_cursor
            if cursor is None or len(rows) >= query.limit:
                break
        return rows, cursor

    async def run(self, request: Request, client: Client) -> Response:
        run_id: str = request.path_params["id"]
        head = await self.feed_head()
        context = await run_in_threadpool(self.run_context, client, run_id)
        context["after"] = head
        name = "_run_live.html" if request.query_params.get("fragment") else "run.html"
        return self.page(request, name, context)

    def read_job(self, client: Client, job_id: str) -> Job:
        """The job ``job_id``, if the client may read it.

        Raises:
            JobNotFoundError: no job has this id, or the client may not read
                it (both answer alike: a page tells nobody which jobs of other
                services exist, nor their service).
        """
        job = self.jobs.get(job_id)
        if not client.permissions.allows("read", job.service):
            raise JobNotFoundError(job_id)
        return job

    def read_run(self, client: Client, run_id: str) -> Job:
        job = self.read_job(client, run_id)
        if job.entity != RUN_ENTITY:
            raise RunNotFoundError(run_id, f"job {run_id!r} is a {job.entity} job, not a run")
        return job

    def definition_of(self, name: str) -> JobDefinition | None:
        if self.runner is None:
            return None
        return self.runner.definitions.get(name)

    def run_context(self, client: Client, run_id: str) -> dict[str, object]:
        job = self.read_run(client, run_id)
        state = run_result(job).state
        count = state.launches if state is not None else 0
        # A page reads at most _MAX_LAUNCHES launches (the latest): a run has no size ceiling.
        first_launch = max(1, count - _MAX_LAUNCHES + 1)
        launches = load_launches(self.jobs, run_id, count, first=first_launch)
        # Tasks of launches left out would read as pending: only the launched ones are listed.
        definition = self.definition_of(job.type) if first_launch == 1 else None
        result = run_result(job, launches, definition=definition)
        updates = self.jobs.updates(run_id, after=max(0, job.version - 1 - _LOG_PAGE))
        replayed = self.jobs.updates(run_id, limit=_MAX_REPLAY)
        first = self.jobs.get(run_id, version=1)
        now = self.clock()
        return {
            "title": f"Run {run_id}",
            "job": job,
            "result": result,
            "state": result.state,
            "row": run_row(job, now),
            "steps": steps_of(result),
            "launches_left_out": first_launch - 1,
            "timeline": timeline_of(job, launches, now),
            "drives": drives_of(first, replayed, job),
            "updates": list(reversed(updates)),
            "more_updates": job.version - 1 > _LOG_PAGE,
            "request_json": job.input,
            "actions": self.actions_of(client, job, result),
            "service": job.service,
            "events_of": EVENT_OF_UPDATE,
        }

    def actions_of(self, client: Client, job: Job, result: RunResult) -> dict[str, object]:
        """Which actions the client is offered on the run, and why others are not."""
        allowed = client.permissions.allows("run", job.service)
        state = result.state
        now = self.clock()
        lease_over = state is None or state.lease is None or state.lease.expired(now)
        driving = self.resumes is not None and self.resumes.driving(job.id)
        can_resume = resumable(result.status, lease_over=lease_over) and not driving
        blocked = result.breakpoint.tasks if result.breakpoint is not None else ()
        why = ""
        if self.runner is None:
            why = (
                "Resuming needs the job definitions: this server was started without --app "
                "(start it with `jobledger serve --app MODULE:ATTRIBUTE`)."
            )
        elif self.definition_of(job.type) is None:
            why = f"This server's --app has no job definition {job.type!r}: it cannot resume it."
        offered = {
            "cancel": allowed and not result.status.is_terminal,
            "resume": allowed and can_resume and not why,
            "repair": allowed
            and can_resume
            and not why
            and repairable(self.runner, job.type, blocked),
            "force": allowed and can_resume and not why,
        }
        return {
            "allowed": allowed,
            "offered": offered,
            "any": any(offered.values()),
            "why_not_resume": why
            if allowed and resumable(result.status, lease_over=lease_over)
            else "",
            "driving": driving,
        }

    # -- actions -------------------------------------------------------------------

    async def confirm(self, request: Request, client: Client) -> Response:
        action = _action(request)
        run_id = request.query_params.get("run", "")
        context = await run_in_threadpool(self.run_context, client, run_id)
        self.check_offered(client, action, context)
        job: Job = context["job"]  # type: ignore[assignment]
        return self.page(
            request,
            "confirm.html",
            {**context, "title": _ACTION_TITLES[action], "action": action, "etag": job.etag},
        )

    def check_offered(self, client: Client, action: str, context: Mapping[str, object]) -> None:
        actions: dict[str, Any] = context["actions"]  # type: ignore[assignment]
        if not actions["allowed"]:
            raise _Refused(
                403,
                "Not permitted",
                f"Client {client.client_id} may not act on runs (it lacks the run permission).",
            )
        if not actions["offered"][action]:
            result: RunResult = context["result"]  # type: ignore[assignment]
            reason = actions["why_not_resume"] or f"the run is {result.status.value}"
            raise _Refused(409, "Not possible now", f"{_ACTION_TITLES[action]}: not now, {reason}.")

    async def act(self, request: Request, client: Client) -> Response:
        action = _action(request)
        form: dict[str, str] = request.state.form
        run_id = form.get("run", "")
        context = await run_in_threadpool(self.run_context, client, run_id)
        self.check_offered(client, action, context)
        job: Job = context["job"]  # type: ignore[assignment]
        if action == "cancel":
            result = await run_in_threadpool(
                cancel_run, self.jobs, run_id, job.service, client.client_id
            )
            message = (
                "The run is canceled."
                if result.status is RunStatus.CANCELED
                else "Cancel requested: the runner driving it lets the running tasks finish, "
                "starts no new task, and ends the run canceled."
            )
            return self.result(request, action, run_id, message, ok=True)
        if form.get("etag") != job.etag:
            return self.result(
                request,
                action,
                run_id,
                "The run changed since you confirmed: look at it again before resuming it.",
                ok=False,
                status=409,
            )
        force = _force(form.get("force")) if action == "force" else None
        assert self.resumes is not None  # noqa: S101  (offered only with a runner)
        future = self.resumes.start(
            run_id, repair=action == "repair", force=force, actor=client.client_id
        )
        message, ok = await run_in_threadpool(_resume_said, future)
        return self.result(request, action, run_id, message, ok=ok, status=200 if ok else 409)

    def result(
        self,
        request: Request,
        action: str,
        run_id: str,
        message: str,
        *,
        ok: bool,
        status: int = 200,
    ) -> Response:
        return self.page(
            request,
            "result.html",
            {
                "title": _ACTION_TITLES[action],
                "run_id": run_id,
                "message": message,
                "ok": ok,
            },
            status,
        )

    # -- jobs ----------------------------------------------------------------------

    async def jobs_page(self, request: Request, client: Client) -> Response:
        params = request.query_params
        filters = {
            name: params.get(name, "").strip() for name in ("service", "entity", "type", "status")
        }
        allowed = client.permissions.services("read")
        services: frozenset[str] | None
        if filters["service"]:
            self.may_read(client, filters["service"])
            services = frozenset({filters["service"]})
        else:
            services = allowed
        query = JobQuery(
            service=services,
            entity=filters["entity"] or None,
            type=filters["type"] or None,
            status=filters["status"] or None,
            limit=_PAGE_SIZE,
            cursor=params.get("page") or None,
        )
        page = await run_in_threadpool(self.jobs.find, query)
        more, first = _pages_of(filters, page.next_cursor, paged=bool(params.get("page")))
        return self.page(
            request,
            "jobs.html",
            {
                "title": "Jobs",
                "found": page.jobs,
                "filters": filters,
                "next_page": more,
                "first_page": first,
                "runs_service": self.runs_service,
                "run_entity": RUN_ENTITY,
            },
        )

    async def job(self, request: Request, client: Client) -> Response:
        job_id: str = request.path_params["id"]
        after = _after(request.query_params.get("after"))
        head = await self.feed_head()
        job = await run_in_threadpool(self.read_job, client, job_id)
        updates = await run_in_threadpool(
            lambda: self.jobs.updates(job_id, after=after, limit=_LOG_PAGE + 1)
        )
        page = list(updates[:_LOG_PAGE])
        run_of = None
        if job.entity == RUN_ENTITY:
            run_of = job.id
        elif job.entity == TASK_ENTITY and "/" in job.id:
            run_of = job.id.rpartition("/")[0]
        context = {
            "title": f"Job {job_id}",
            "job": job,
            "updates": page,
            "next_after": page[-1].update_id if len(updates) > _LOG_PAGE else None,
            "after": head,
            "log_after": after,
            "run_of": run_of,
            "events_of": EVENT_OF_UPDATE,
        }
        name = "_job_live.html" if request.query_params.get("fragment") else "job.html"
        return self.page(request, name, context)

    # -- live updates ----------------------------------------------------------------

    async def events(self, request: Request, client: Client) -> Response:
        """The event feed for the pages' live parts, within the client's read permission."""
        service = request.query_params.get("service") or None
        if service is not None:
            self.may_read(client, service)
            services: frozenset[str] | None = frozenset({service})
        else:
            services = client.permissions.services("read")
        entity = request.query_params.get("entity") or None
        position = request.headers.get("last-event-id") or request.query_params.get("after")
        after = _after(position) if position else await self.feed_head()
        event_filter = EventFilter(service=services, entity=entity)
        return StreamingResponse(
            self.while_signed_in(request, client, self.feed(after, event_filter)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def while_signed_in(
        self, request: Request, client: Client, stream: AsyncIterator[str]
    ) -> AsyncIterator[str]:
        """``stream`` while the session's client is as it was when the stream began.

        Removing the client, rotating its secret or changing its permissions
        ends the stream before its next part (the client is read again every
        ``_RECHECK_SECONDS``): a stream outlives no session.
        """
        checked = time.monotonic()
        try:
            async for part in stream:
                if time.monotonic() - checked >= _RECHECK_SECONDS:
                    current = await run_in_threadpool(session_client, request, self.clients)
                    if current != client:
                        return
                    checked = time.monotonic()
                yield part
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


def _next(target: str | None) -> str:
    """A path inside the dashboard to go to after signing in; never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return _FIRST_PAGE
    return target


def _pages_of(
    filters: Mapping[str, str], cursor: str | None, *, paged: bool
) -> tuple[str | None, str | None]:
    """The query strings of the next page and of the first one (``None`` where there is none).

    >>> _pages_of({"status": "blocked", "type": ""}, "abc", paged=True)
    ('?status=blocked&page=abc', '?status=blocked')
    """
    kept = {name: value for name, value in filters.items() if value}
    more = f"?{urlencode({**kept, 'page': cursor})}" if cursor else None
    first = f"?{urlencode(kept)}" if paged else None
    return more, first


def _action(request: Request) -> str:
    action: str = request.path_params["action"]
    if action not in _ACTION_TITLES:
        raise _Refused(404, "Not found", f"There is no action {action!r}.")
    return action


def _after(text: str | None) -> int:
    if text is None or text == "":
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 18:  # noqa: PLR2004
        raise InvalidJobDataError("after", "", "must be a non-negative integer")
    return int(text)


def _force(text: str | None) -> int:
    value = (text or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 15:  # noqa: PLR2004
        raise _Refused(
            400, "Not understood", "The force threshold must be a whole number, 0 or more."
        )
    return int(value)


def _resume_said(future: Future[RunResult]) -> tuple[str, bool]:
    """What to tell about a resume: how it ended if it did within a moment, or that it runs."""
    try:
        result = future.result(timeout=_RESUME_WAIT)
    except FutureTimeoutError:
        return "The server has claimed the run and drives it now.", True
    except (RunnerError, JobledgerError) as err:
        return f"The run was not resumed: {err}", False
    return f"The run was resumed and is now {result.status.value}.", True


def create_dashboard(
    jobs: Jobs,
    clients: ClientStore,
    *,
    feed: Callable[[int, EventFilter], AsyncIterator[str]],
    runner: Runner | None = None,
    session_seconds: int = DEFAULT_SESSION_SECONDS,
    https_only: bool = False,
    path: str = "/dashboard",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Starlette, Resumes | None]:
    """The dashboard as an ASGI app to mount at ``path``, and its resumes (to stop at shutdown).

    Args:
        jobs: The ledger it shows.
        clients: Who may sign in (the service's clients).
        feed: The event feed after a position, filtered, as Server-Sent Events.
        runner: The runner that resumes runs; ``None`` offers no resume.
        session_seconds: Seconds a session lasts after its sign-in.
        https_only: Whether the session cookie is sent over HTTPS only.
        path: Where it is mounted (the session cookie's path).
        clock: Returns the current time.
    """
    if session_seconds < 1:
        msg = f"a session lasts at least 1 second, not {session_seconds}"
        raise ValueError(msg)
    board = _Dashboard(jobs, clients, feed=feed, runner=runner, clock=clock)

    def get(method: Callable[[Request, Client], Awaitable[Response]]) -> Any:  # noqa: ANN401
        return board.handler(method)

    def post(method: Callable[[Request, Client], Awaitable[Response]]) -> Any:  # noqa: ANN401
        return board.handler(method, post=True)

    async def not_found(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        if status >= 500:  # noqa: PLR2004
            logger.error("the dashboard failed", exc_info=error)
        request.state.client = None
        title = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
        return board.error(request, status, title, f"{title}.")

    app = Starlette(
        routes=[
            Route("/", board.index, methods=["GET"]),
            Route("/signin", board.signin_page, methods=["GET"]),
            Route("/signin", board.signin, methods=["POST"]),
            Route("/signout", post(board.signout), methods=["POST"]),
            Route("/runs", get(board.runs), methods=["GET"]),
            Route("/runs/{id:path}", get(board.run), methods=["GET"]),
            Route("/actions/{action}", get(board.confirm), methods=["GET"]),
            Route("/actions/{action}", post(board.act), methods=["POST"]),
            Route("/jobs", get(board.jobs_page), methods=["GET"]),
            Route("/jobs/{id:path}", get(board.job), methods=["GET"]),
            Route("/events", get(board.events), methods=["GET"]),
            Mount(
                "/static",
                StaticFiles(packages=[("jobledger.http.dashboard", "static")]),
                name="static",
            ),
        ],
        middleware=[
            Middleware(_security_headers),
            Middleware(
                SessionMiddleware,
                secret_key=session_key(clients.signing_key()),
                session_cookie=SESSION_COOKIE,
                max_age=session_seconds,
                path=path,
                same_site="strict",
                https_only=https_only,
            ),
        ],
        exception_handlers={HTTPException: not_found, Exception: not_found},
    )
    return app, board.resumes
