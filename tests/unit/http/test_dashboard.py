"""The dashboard's routes through Starlette's TestClient: sign-in, CSRF, permissions, pages.

The browser tests (tests/integration/http/test_dashboard_browser.py) drive the
same pages in Chromium against a real server; these pin each rule one by one.
"""

from __future__ import annotations

import re
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from starlette.testclient import TestClient

from jobledger import Jobs
from jobledger.demo import definitions
from jobledger.http import InMemoryClientStore, Permissions, create_app
from jobledger.http.dashboard import _pages as dashboard_pages
from jobledger.http.dashboard._actions import Resumes
from jobledger.http.dashboard._views import drives_of, run_row, steps_of, timeline_of
from jobledger.runner import (
    DefinitionBuilder,
    Runner,
    RunNotResumableError,
    RunResult,
    RunStatus,
    TaskContext,
    load_launches,
    load_run,
    run_result,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx2 as httpx

REPOSITORY = Path(__file__).resolve().parents[3]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ETAG = re.compile(r'name="etag" value="([^"]+)"')
BLOCK_REASON = "66 changes cross the force threshold of 50"


class Dashboard:
    """A ledger with the demo's runner, its clients, and the app that serves both."""

    def __init__(self, *, with_runner: bool = True) -> None:
        """A new in-memory ledger, the clients operator, viewer, hr-reader and writer."""
        self.jobs = Jobs()
        self.store = InMemoryClientStore()
        self.runner = Runner(self.jobs, definitions())
        self.secrets = {
            client_id: self.store.add(client_id, Permissions.parse(allow))[1]
            for client_id, allow in (
                ("operator", ["read", "run"]),
                ("viewer", ["read"]),
                ("hr-reader", ["read:hr"]),
                ("writer", ["start:hr"]),
            )
        }
        self.app = create_app(
            self.jobs,
            self.store,
            runner=self.runner if with_runner else None,
            stream_seconds=0.3,
            poll_seconds=0.05,
            session_seconds=600,
        )

    def blocked_run(self) -> RunResult:
        """A run of the demo, blocked at its synchronization."""
        return self.runner.invoke("hr-nightly", input={"pace": 0})

    def browser(self) -> TestClient:
        """A client with no session yet (cookies kept, redirects followed)."""
        return TestClient(self.app)

    def signed_in(self, client_id: str) -> TestClient:
        """A client signed in to the dashboard as ``client_id``."""
        browser = self.browser()
        page = browser.get("/dashboard/signin")
        response = browser.post(
            "/dashboard/signin",
            data={
                "csrf_token": csrf_of(page),
                "client_id": client_id,
                "client_secret": self.secrets[client_id],
            },
            follow_redirects=False,
        )
        assert 303 == response.status_code
        return browser


def csrf_of(response: httpx.Response) -> str:
    """The CSRF token of the page's forms."""
    found = CSRF.search(response.text)
    assert found is not None, response.text
    return found.group(1)


@pytest.fixture
def board() -> Iterator[Dashboard]:
    """A dashboard over a new ledger, with the demo's definitions."""
    made = Dashboard()
    yield made
    made.runner.close()


def confirm_and_post(
    browser: TestClient, action: str, run_id: str, **fields: str
) -> httpx.Response:
    """Open the action's confirmation, then send its form as the page would."""
    page = browser.get(f"/dashboard/actions/{action}", params={"run": run_id})
    assert 200 == page.status_code, page.text
    etag = ETAG.search(page.text)
    assert etag is not None
    form = {"csrf_token": csrf_of(page), "run": run_id, "etag": etag.group(1), **fields}
    return browser.post(f"/dashboard/actions/{action}", data=form)


class TestSignIn:
    """Signing in with a client's id and secret, the session cookie, signing out."""

    def test_the_root_leads_to_the_dashboard_and_a_stranger_to_sign_in(
        self, board: Dashboard
    ) -> None:
        """``/`` leads to /dashboard/, whose pages ask a stranger to sign in, keeping the page."""
        browser = board.browser()
        first = browser.get("/", follow_redirects=False)
        assert (307, "/dashboard/") == (first.status_code, first.headers["location"])
        page = browser.get("/dashboard/jobs?entity=task", follow_redirects=False)
        assert 303 == page.status_code
        assert "/dashboard/signin?next=%2Fjobs%3Fentity%3Dtask" == page.headers["location"]

    def test_a_wrong_secret_is_told_and_signs_nobody_in(self, board: Dashboard) -> None:
        """A wrong secret shows the sign-in form again with why; the pages still ask to sign in."""
        browser = board.browser()
        page = browser.get("/dashboard/signin")
        answer = browser.post(
            "/dashboard/signin",
            data={"csrf_token": csrf_of(page), "client_id": "operator", "client_secret": "no"},
        )
        assert "do not match a client" in answer.text
        assert "/dashboard/signin" == browser.get("/dashboard/runs").url.path

    def test_the_session_cookie_is_http_only_strict_expiring_and_scoped(
        self, board: Dashboard
    ) -> None:
        """The cookie is HttpOnly, SameSite=Strict, has a Max-Age and the dashboard's path."""
        browser = board.browser()
        page = browser.get("/dashboard/signin")
        answer = browser.post(
            "/dashboard/signin",
            data={
                "csrf_token": csrf_of(page),
                "client_id": "viewer",
                "client_secret": board.secrets["viewer"],
            },
            follow_redirects=False,
        )
        cookie = answer.headers["set-cookie"].lower()
        assert 303 == answer.status_code
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "max-age=600" in cookie
        assert "path=/dashboard" in cookie

    def test_the_session_lasts_from_sign_in_whatever_is_asked_since(self, board: Dashboard) -> None:
        """No page, live update or event stream renews the cookie: it expires after sign-in."""
        run = board.blocked_run()
        browser = board.signed_in("viewer")
        renewed = [
            "set-cookie" in browser.get(path, params=params).headers
            for path, params in (
                (f"/dashboard/runs/{run.run_id}", {}),
                (f"/dashboard/runs/{run.run_id}", {"fragment": "1"}),
                ("/dashboard/runs", {"fragment": "1"}),
                ("/dashboard/events", {"after": "0"}),
            )
        ]
        assert [False, False, False, False] == renewed

    def test_signing_in_needs_the_forms_csrf_token(self, board: Dashboard) -> None:
        """A sign-in post without the page's token is refused with 403."""
        answer = board.browser().post(
            "/dashboard/signin",
            data={"client_id": "viewer", "client_secret": board.secrets["viewer"]},
        )
        assert 403 == answer.status_code

    def test_after_sign_in_it_goes_only_to_a_dashboard_page(self, board: Dashboard) -> None:
        """A ``next`` naming another site leads to the runs instead."""
        browser = board.browser()
        page = browser.get("/dashboard/signin")
        answer = browser.post(
            "/dashboard/signin",
            data={
                "csrf_token": csrf_of(page),
                "client_id": "viewer",
                "client_secret": board.secrets["viewer"],
                "next": "//elsewhere.example/x",
            },
            follow_redirects=False,
        )
        assert "/dashboard/runs" == answer.headers["location"]

    def test_signing_out_ends_the_session(self, board: Dashboard) -> None:
        """After sign-out the pages ask to sign in again."""
        browser = board.signed_in("viewer")
        page = browser.get("/dashboard/runs")
        browser.post("/dashboard/signout", data={"csrf_token": csrf_of(page)})
        assert "/dashboard/signin" == browser.get("/dashboard/runs").url.path

    def test_rotating_the_clients_secret_ends_its_sessions(self, board: Dashboard) -> None:
        """A session of a client whose secret was rotated since is over."""
        browser = board.signed_in("viewer")
        board.store.rotate("viewer")
        assert "/dashboard/signin" == browser.get("/dashboard/runs").url.path

    def test_a_client_that_may_read_nothing_is_refused(self, board: Dashboard) -> None:
        """A client without any read permission gets 403 on every page."""
        answer = board.signed_in("writer").get("/dashboard/jobs")
        assert 403 == answer.status_code
        assert "may not read any job" in answer.text


class TestCsrf:
    """Every POST carries the session's CSRF token."""

    @pytest.mark.parametrize("token", [None, "", "not-the-token"])
    def test_an_action_without_the_sessions_token_is_refused(
        self, board: Dashboard, token: str | None
    ) -> None:
        """A cancel posted without the token, or with another, gets 403 and changes nothing."""
        run = board.blocked_run()
        browser = board.signed_in("operator")
        form = {"run": run.run_id} if token is None else {"run": run.run_id, "csrf_token": token}
        answer = browser.post("/dashboard/actions/cancel", data=form)
        assert 403 == answer.status_code
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status

    def test_a_post_without_a_session_is_refused(self, board: Dashboard) -> None:
        """A post from a browser that never signed in gets 403, token or not."""
        run = board.blocked_run()
        browser = board.browser()
        token = csrf_of(browser.get("/dashboard/signin"))
        answer = browser.post(
            "/dashboard/actions/cancel", data={"run": run.run_id, "csrf_token": token}
        )
        assert 403 == answer.status_code
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status


class TestPermissions:
    """What a client may see and do."""

    def test_a_reader_is_offered_no_action_and_its_forged_post_is_refused(
        self, board: Dashboard
    ) -> None:
        """A read-only client sees no action link; its confirmation page and its post get 403."""
        run = board.blocked_run()
        browser = board.signed_in("viewer")
        page = browser.get(f"/dashboard/runs/{run.run_id}")
        assert "may not act on runs" in page.text
        assert "/dashboard/actions/" not in page.text
        assert (
            403 == browser.get("/dashboard/actions/cancel", params={"run": run.run_id}).status_code
        )
        forged = browser.post(
            "/dashboard/actions/cancel", data={"run": run.run_id, "csrf_token": csrf_of(page)}
        )
        assert 403 == forged.status_code
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status

    def test_an_operator_is_offered_every_action_on_a_blocked_run(self, board: Dashboard) -> None:
        """A client with ``run`` sees cancel, resume, repair and force on a blocked run."""
        run = board.blocked_run()
        page = board.signed_in("operator").get(f"/dashboard/runs/{run.run_id}")
        offered = set(re.findall(r"/dashboard/actions/(\w+)\?run=", page.text))
        assert {"cancel", "resume", "repair", "force"} == offered

    def test_a_client_that_may_not_read_runs_lands_on_the_jobs(self, board: Dashboard) -> None:
        """Signing in leads a reader of hr to the jobs, and its menu has no Runs."""
        browser = board.browser()
        page = browser.get("/dashboard/signin")
        landed = browser.post(
            "/dashboard/signin",
            data={
                "csrf_token": csrf_of(page),
                "client_id": "hr-reader",
                "client_secret": board.secrets["hr-reader"],
            },
        )
        assert (200, "/dashboard/jobs") == (landed.status_code, landed.url.path)
        assert 'href="/dashboard/runs"' not in landed.text

    def test_a_reader_of_one_service_sees_its_jobs_only(self, board: Dashboard) -> None:
        """``read:hr`` lists the hr jobs, not the runs, and is refused the runs page."""
        board.jobs.start(service="hr", entity="employee", type="sync", job_id="hr-1")
        board.jobs.start(service="it", entity="laptop", type="order", job_id="it-1")
        board.blocked_run()
        browser = board.signed_in("hr-reader")
        listed = browser.get("/dashboard/jobs")
        assert "hr-1" in listed.text
        assert "it-1" not in listed.text
        assert 403 == browser.get("/dashboard/runs").status_code
        assert 404 == browser.get("/dashboard/jobs/it-1").status_code
        assert 403 == browser.get("/dashboard/jobs", params={"service": "it"}).status_code

    def test_another_services_job_or_run_answers_as_a_missing_one(self, board: Dashboard) -> None:
        """``read:hr`` learns neither that a job of another service exists nor its service."""
        board.jobs.start(service="it", entity="laptop", type="order", job_id="it-1")
        run_id = board.blocked_run().run_id
        browser = board.signed_in("hr-reader")
        missing = browser.get("/dashboard/jobs/nowhere")
        for path, job_id in (
            ("/dashboard/jobs/it-1", "it-1"),
            (f"/dashboard/jobs/{run_id}/1", f"{run_id}/1"),
            (f"/dashboard/runs/{run_id}", run_id),
            (f"/dashboard/actions/cancel?run={run_id}", run_id),
        ):
            answer = browser.get(path)
            expected = (missing.status_code, missing.text.replace("nowhere", job_id))
            assert expected == (answer.status_code, answer.text), path


class TestPages:
    """What the pages show."""

    def test_the_runs_list_shows_status_progress_and_filters(self, board: Dashboard) -> None:
        """A blocked run is listed with its definition, status and progress; a filter hides it."""
        run = board.blocked_run()
        browser = board.signed_in("viewer")
        page = browser.get("/dashboard/runs")
        assert f'data-run="{run.run_id}"' in page.text
        assert ">blocked<" in page.text
        assert "2 / 4" in page.text
        completed = browser.get("/dashboard/runs", params={"status": "completed"})
        assert run.run_id not in completed.text
        assert 400 == browser.get("/dashboard/runs", params={"status": "sleeping"}).status_code

    def test_the_runs_list_pages_newest_first(self, board: Dashboard) -> None:
        """26 runs fill a page of 25, newest first, and the next page holds the first run."""
        quick = DefinitionBuilder("quick")
        quick.task(identifier="only")(lambda _context: None)
        with Runner(board.jobs, [quick.build()]) as runner:
            ids = [runner.invoke("quick").run_id for _ in range(26)]
        browser = board.signed_in("viewer")
        page = browser.get("/dashboard/runs", params={"definition": "quick"})
        shown = re.findall(r'data-run="([^"]+)"', page.text)
        assert list(reversed(ids))[:25] == shown
        older = re.search(r'href="/dashboard/runs(\?[^"]+)" rel="next"', page.text)
        assert older is not None
        second = browser.get(f"/dashboard/runs{older.group(1).replace('&amp;', '&')}")
        assert [ids[0]] == re.findall(r'data-run="([^"]+)"', second.text)

    def test_the_runs_list_filters_the_runs_completed_with_warnings(
        self, board: Dashboard, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``completed with warnings`` lists those runs only, newest first, page after page."""
        monkeypatch.setattr(dashboard_pages, "_PAGE_SIZE", 2)
        shaky = DefinitionBuilder("shaky")

        @shaky.task(identifier="flaky", warning_mode=True)
        def flaky(context: TaskContext) -> None:
            if context.input == "w":
                message = "the directory could not be read"
                raise RuntimeError(message)

        with Runner(board.jobs, [shaky.build()]) as runner:
            ids = [runner.invoke("shaky", input=each).run_id for each in "wcccww"]
        warned = [ids[5], ids[4], ids[0]]
        browser = board.signed_in("viewer")
        page = browser.get("/dashboard/runs", params={"status": "completed with warnings"})
        assert '<option value="completed with warnings" selected>' in page.text
        assert warned[:2] == re.findall(r'data-run="([^"]+)"', page.text)
        older = re.search(r'href="/dashboard/runs(\?[^"]+)" rel="next"', page.text)
        assert older is not None
        second = browser.get(f"/dashboard/runs{older.group(1).replace('&amp;', '&')}")
        assert warned[2:] == re.findall(r'data-run="([^"]+)"', second.text)
        assert 'rel="next"' not in second.text
        completed = browser.get("/dashboard/runs", params={"status": "completed"})
        assert ids[5:3:-1] == re.findall(r'data-run="([^"]+)"', completed.text)

    def test_the_runs_fragment_is_the_table_alone(self, board: Dashboard) -> None:
        """``?fragment=1`` answers the rows the page swaps in, without the page around them."""
        board.blocked_run()
        fragment = board.signed_in("viewer").get("/dashboard/runs", params={"fragment": "1"})
        assert "<table" in fragment.text
        assert "<html" not in fragment.text

    def test_a_blocked_runs_page_shows_its_reason_steps_timeline_and_drives(
        self, board: Dashboard
    ) -> None:
        """The breakpoint's reason, each task, one timeline bar per launch, and the invoke."""
        run = board.blocked_run()
        page = board.signed_in("viewer").get(f"/dashboard/runs/{run.run_id}")
        assert f'<span class="blocked-reason">{BLOCK_REASON}</span>' in page.text
        assert "Blocked at step 2" in page.text
        assert 3 == page.text.count('<rect class="bar')
        assert 'data-task="provision-directory"' in page.text
        assert ">pending<" in page.text
        assert "<td>invoke</td>" in page.text

    def test_a_run_with_more_launches_than_a_page_reads_shows_the_latest(
        self, board: Dashboard, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past the launches a page reads, it says so and lists no unread task as pending."""
        monkeypatch.setattr(dashboard_pages, "_MAX_LAUNCHES", 2)
        run = board.blocked_run()
        page = board.signed_in("viewer").get(f"/dashboard/runs/{run.run_id}")
        assert "show the latest 2; the 1 before them" in page.text
        assert 2 == page.text.count('<rect class="bar')
        assert ">pending<" not in page.text

    def test_a_job_page_shows_who_started_and_changed_it(self, board: Dashboard) -> None:
        """The job's starter and each change's actor are on its page."""
        job = board.jobs.start(
            service="hr", entity="employee", type="sync", job_id="hr-1", actor="hr-app"
        )
        board.jobs.update(job.id, etag=job.etag, status="exporting", actor="exporter")
        page = board.signed_in("viewer").get("/dashboard/jobs/hr-1")
        assert "<dt>Started by</dt><dd>hr-app</dd>" in page.text
        assert "<td>exporter</td>" in page.text

    def test_a_tasks_job_page_shows_its_state_log_and_run(self, board: Dashboard) -> None:
        """A launch's job page has its state, its log's events, and a link to its run."""
        run = board.blocked_run()
        page = board.signed_in("viewer").get(f"/dashboard/jobs/{run.run_id}/1")
        assert '<h2 id="state-title">State</h2>' in page.text
        assert "JobUpdated" in page.text
        assert f'href="/dashboard/runs/{run.run_id}"' in page.text

    def test_a_missing_run_is_a_404_page(self, board: Dashboard) -> None:
        """An unknown run id answers 404 with an HTML page."""
        answer = board.signed_in("viewer").get("/dashboard/runs/nope")
        assert 404 == answer.status_code
        assert "text/html" in answer.headers["content-type"]

    def test_pages_carry_the_security_headers(self, board: Dashboard) -> None:
        """Every page forbids inline scripts, framing and sniffing, and is not cached."""
        answer = board.browser().get("/dashboard/signin")
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "DENY" == answer.headers["x-frame-options"]
        assert "nosniff" == answer.headers["x-content-type-options"]
        assert "no-store" == answer.headers["cache-control"]

    def test_the_stylesheet_and_script_are_served(self, board: Dashboard) -> None:
        """The static files come from the package."""
        browser = board.browser()
        assert "text/css" in browser.get("/dashboard/static/dashboard.css").headers["content-type"]
        assert "EventSource" in browser.get("/dashboard/static/dashboard.js").text


class TestActions:
    """Cancel, resume, repair and force from the pages."""

    def test_canceling_a_blocked_run_cancels_it_at_once(self, board: Dashboard) -> None:
        """Nobody drives a blocked run: the cancel ends it canceled."""
        run = board.blocked_run()
        answer = confirm_and_post(board.signed_in("operator"), "cancel", run.run_id)
        assert "The run is canceled." in answer.text
        assert RunStatus.CANCELED == load_run(board.jobs, run.run_id).status

    def test_a_cancel_records_the_signed_in_client_as_its_actor(self, board: Dashboard) -> None:
        """The cancel's changes name the operator, and the run's update log shows it."""
        run = board.blocked_run()
        browser = board.signed_in("operator")
        confirm_and_post(browser, "cancel", run.run_id)
        assert {"operator"} == {update.actor for update in board.jobs.updates(run.run_id)[-2:]}
        page = browser.get(f"/dashboard/runs/{run.run_id}")
        assert "<td>operator</td>" in page.text

    def test_resume_with_repair_completes_the_run(self, board: Dashboard) -> None:
        """The server's runner runs the repair variant, then the rest; the drives show it."""
        run = board.blocked_run()
        browser = board.signed_in("operator")
        answer = confirm_and_post(browser, "repair", run.run_id)
        assert "resumed and is now completed" in answer.text
        assert RunStatus.COMPLETED == load_run(board.jobs, run.run_id).status
        page = browser.get(f"/dashboard/runs/{run.run_id}")
        assert "<td>resume</td><td>yes</td>" in page.text

    def test_a_resume_records_the_signed_in_client_as_its_actor(self, board: Dashboard) -> None:
        """The resume's drive and every change from its claim on name the operator; the page too."""
        run = board.blocked_run()
        before = len(board.jobs.updates(run.run_id))
        browser = board.signed_in("operator")
        confirm_and_post(browser, "repair", run.run_id)
        assert {"operator"} == {update.actor for update in board.jobs.updates(run.run_id)[before:]}
        state = load_run(board.jobs, run.run_id).state
        assert state is not None
        assert state.drive is not None
        assert (2, "operator") == (state.drive.number, state.drive.actor)
        page = browser.get(f"/dashboard/runs/{run.run_id}")
        invoke_row = re.search(r"<tr><td>1</td><td>invoke</td>.*?</tr>", page.text)
        resume_row = re.search(r"<tr><td>2</td><td>resume</td>.*?</tr>", page.text)
        assert invoke_row is not None
        assert resume_row is not None
        assert "<td>-</td>" in invoke_row.group(0)
        assert "<td>operator</td>" in resume_row.group(0)

    def test_resume_with_a_force_threshold_completes_the_run(self, board: Dashboard) -> None:
        """A threshold over the 66 changes lets the synchronization through."""
        run = board.blocked_run()
        answer = confirm_and_post(board.signed_in("operator"), "force", run.run_id, force="100")
        assert "resumed and is now completed" in answer.text
        assert 100 == load_run(board.jobs, run.run_id).force

    def test_a_force_threshold_must_be_a_whole_number(self, board: Dashboard) -> None:
        """A threshold that is not a number is refused with 400; the run stays blocked."""
        run = board.blocked_run()
        answer = confirm_and_post(board.signed_in("operator"), "force", run.run_id, force="-3")
        assert 400 == answer.status_code
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status

    def test_a_resume_confirmed_on_an_older_run_is_refused(self, board: Dashboard) -> None:
        """The run changed between the confirmation and the post: 409, nothing resumed."""
        run = board.blocked_run()
        browser = board.signed_in("operator")
        page = browser.get("/dashboard/actions/resume", params={"run": run.run_id})
        job = board.jobs.get(run.run_id)
        board.jobs.update(run.run_id, etag=job.etag, state_update={"note": "touched"})
        answer = browser.post(
            "/dashboard/actions/resume",
            data={"csrf_token": csrf_of(page), "run": run.run_id, "etag": job.etag},
        )
        assert 409 == answer.status_code
        assert "changed since you confirmed" in answer.text
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status

    def test_an_action_on_a_run_that_is_over_is_refused(self, board: Dashboard) -> None:
        """A completed run offers nothing; a cancel posted anyway gets 409."""
        run = board.blocked_run()
        board.runner.resume(run.run_id, repair=True)
        browser = board.signed_in("operator")
        page = browser.get(f"/dashboard/runs/{run.run_id}")
        assert "/dashboard/actions/" not in page.text
        answer = browser.post(
            "/dashboard/actions/cancel", data={"csrf_token": csrf_of(page), "run": run.run_id}
        )
        assert 409 == answer.status_code


class TestServerStop:
    """What the server does with the runs it drives when it stops."""

    def test_a_run_resumed_from_the_page_is_let_go_when_the_app_shuts_down(
        self, board: Dashboard, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Shutting the app down releases the run it drives: running, resumable at once."""
        monkeypatch.setattr(dashboard_pages, "_RESUME_WAIT", 0.05)
        run = board.runner.invoke("hr-nightly", input={"pace": 1})
        with TestClient(board.app) as browser:
            page = browser.get("/dashboard/signin")
            browser.post(
                "/dashboard/signin",
                data={
                    "csrf_token": csrf_of(page),
                    "client_id": "operator",
                    "client_secret": board.secrets["operator"],
                },
            )
            answer = confirm_and_post(browser, "repair", run.run_id)
            assert "drives it now" in answer.text
        left = load_run(board.jobs, run.run_id)
        assert RunStatus.RUNNING == left.status
        assert left.state is not None
        assert left.state.released is not None

    def test_a_second_resume_of_a_run_the_server_resumes_is_refused(self, board: Dashboard) -> None:
        """Two resumes at once: the second is refused, the first is kept and let go at stop."""
        run = board.runner.invoke("hr-nightly", input={"pace": 1})
        resumes = Resumes(board.runner)
        first = resumes.start(run.run_id, repair=True, force=None)
        second = resumes.start(run.run_id, repair=True, force=None)
        refused = second.exception(timeout=5)
        assert isinstance(refused, RunNotResumableError)
        assert "this server is resuming it already" == refused.reason
        assert resumes.driving(run.run_id)
        resumes.stop()
        first.exception(timeout=10)
        left = load_run(board.jobs, run.run_id)
        assert RunStatus.RUNNING == left.status
        assert left.state is not None
        assert left.state.released is not None

    def test_no_resume_starts_once_the_server_stops(self, board: Dashboard) -> None:
        """After stop, a resume is refused with RunNotResumableError; the run stays blocked."""
        run = board.blocked_run()
        resumes = Resumes(board.runner)
        resumes.stop()
        refused = resumes.start(run.run_id, repair=True, force=None).exception(timeout=5)
        assert isinstance(refused, RunNotResumableError)
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status


class TestWithoutDefinitions:
    """A server started without ``--app``."""

    def test_no_resume_is_offered_and_the_page_says_why(self) -> None:
        """Cancel stays; resume, repair and force are not offered, and a posted repair gets 409."""
        board = Dashboard(with_runner=False)
        run = board.blocked_run()
        browser = board.signed_in("operator")
        page = browser.get(f"/dashboard/runs/{run.run_id}")
        assert {"cancel"} == set(re.findall(r"/dashboard/actions/(\w+)\?run=", page.text))
        assert "started without --app" in page.text
        answer = browser.post(
            "/dashboard/actions/repair",
            data={"csrf_token": csrf_of(page), "run": run.run_id, "etag": "x"},
        )
        assert 409 == answer.status_code
        assert RunStatus.BLOCKED == load_run(board.jobs, run.run_id).status
        board.runner.close()


class TestWithoutDashboard:
    """``create_app(dashboard=False)``: the service alone."""

    def test_neither_the_dashboard_nor_the_root_is_served(self) -> None:
        """Both answer the service's 404 problem document."""
        browser = TestClient(create_app(Jobs(), InMemoryClientStore(), dashboard=False))
        for path in ("/", "/dashboard/signin"):
            answer = browser.get(path, follow_redirects=False)
            assert (404, "application/problem+json") == (
                answer.status_code,
                answer.headers["content-type"],
            )


class TestEvents:
    """The pages' event stream."""

    def test_it_streams_the_runs_events_to_a_signed_in_reader(self, board: Dashboard) -> None:
        """From position 0, the run's JobStarted comes as a Server-Sent Event."""
        run = board.blocked_run()
        browser = board.signed_in("viewer")
        with browser.stream("GET", "/dashboard/events", params={"after": "0"}) as stream:
            text = stream.read().decode("utf-8")
        assert "text/event-stream" in stream.headers["content-type"]
        assert "event: JobStarted" in text
        assert f'"JobId":"{run.run_id}"' in text

    def test_a_removed_clients_stream_ends_before_the_next_event(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Once its client is removed, an open stream sends no event: it ends."""
        monkeypatch.setattr(dashboard_pages, "_RECHECK_SECONDS", 0.0)
        jobs = Jobs()
        store = InMemoryClientStore()
        secret = store.add("viewer", Permissions.parse(["read"]))[1]
        app = create_app(jobs, store, stream_seconds=5, poll_seconds=0.05, keepalive_seconds=0.1)
        browser = TestClient(app)
        page = browser.get("/dashboard/signin")
        browser.post(
            "/dashboard/signin",
            data={"csrf_token": csrf_of(page), "client_id": "viewer", "client_secret": secret},
        )
        jobs.start(service="hr", entity="employee", type="sync", job_id="before")

        def remove_then_start() -> None:
            time.sleep(0.5)
            store.remove("viewer")
            jobs.start(service="hr", entity="employee", type="sync", job_id="after")

        changer = threading.Thread(target=remove_then_start)
        changer.start()
        with browser.stream("GET", "/dashboard/events", params={"after": "0"}) as stream:
            text = stream.read().decode("utf-8")
        changer.join()
        assert ('"JobId":"before"' in text, '"JobId":"after"' in text) == (True, False)

    def test_it_refuses_a_service_the_client_may_not_read(self, board: Dashboard) -> None:
        """A reader of hr asking for the runner's events gets 403."""
        browser = board.signed_in("hr-reader")
        answer = browser.get("/dashboard/events", params={"service": "jobledger.runner"})
        assert 403 == answer.status_code


class TestViews:
    """The values the pages lay out."""

    def test_the_timeline_has_a_row_per_launched_task_inside_the_chart(
        self,
    ) -> None:
        """Bars start at or after the run's start and end inside the chart."""
        jobs = Jobs()
        with Runner(jobs, definitions()) as runner:
            run = runner.invoke("hr-nightly", input={"pace": 0})
        job = jobs.get(run.run_id)
        launches = load_launches(jobs, run.run_id, 3)
        later = job.updated_at + timedelta(seconds=10)
        timeline = timeline_of(job, launches, later)
        assert ["export-hr", "export-directory", "synchronize"] == [
            row.task for row in timeline.rows
        ]
        for row in timeline.rows:
            for bar in row.bars:
                assert timeline.label_width <= bar.x
                assert bar.x + bar.width <= timeline.width
        running = jobs.start(service="s", entity="job", type="t")
        assert 5 == len(timeline_of(running, (), later).ticks)

    def test_the_steps_and_the_row_of_a_blocked_run(self) -> None:
        """Steps in launch order with their tasks; the row counts 2 of 4 done."""
        jobs = Jobs()
        with Runner(jobs, definitions()) as runner:
            run = runner.invoke("hr-nightly", input={"pace": 0})
            result = load_run(jobs, run.run_id, definition=runner.definition("hr-nightly"))
        steps = steps_of(result)
        assert [1, 2, 3] == [step.launch_order for step in steps]
        assert (250, 250) == (steps[0].tasks[0].progress_done, steps[0].tasks[0].progress_total)
        row = run_row(jobs.get(run.run_id), datetime.now(UTC))
        assert (2, 4, "blocked") == (row.done, row.total, row.status)

    def test_the_drives_of_a_repaired_run_are_the_invoke_and_the_resume(self) -> None:
        """Replaying the log finds drive 1 (invoke) and drive 2 (resume, with repair)."""
        jobs = Jobs()
        with Runner(jobs, definitions()) as runner:
            run = runner.invoke("hr-nightly", input={"pace": 0})
            runner.resume(run.run_id, repair=True)
        drives = drives_of(jobs.get(run.run_id, version=1), jobs.updates(run.run_id))
        assert [(1, "invoke", False), (2, "resume", True)] == [
            (drive.number, drive.kind.value, drive.repair) for drive in drives
        ]
        assert RunStatus.COMPLETED == run_result(jobs.get(run.run_id)).status

    def test_each_drive_keeps_its_actor(self) -> None:
        """Replaying the log finds who invoked the run and who resumed it."""
        jobs = Jobs()
        with Runner(jobs, definitions()) as runner:
            run = runner.invoke("hr-nightly", input={"pace": 0}, actor="scheduler")
            runner.resume(run.run_id, repair=True, actor="operator")
        drives = drives_of(jobs.get(run.run_id, version=1), jobs.updates(run.run_id))
        assert [(1, "scheduler"), (2, "operator")] == [
            (drive.number, drive.actor) for drive in drives
        ]


class TestWheel:
    """The dashboard's files ship inside the wheel."""

    def test_the_built_wheel_holds_the_templates_and_static_files(self, tmp_path: Path) -> None:
        """A wheel built from the project has every template, the stylesheet and the script."""
        from hatchling.builders.wheel import WheelBuilder  # noqa: PLC0415  (build tool, here only)

        built = list(WheelBuilder(str(REPOSITORY)).build(directory=str(tmp_path)))
        with zipfile.ZipFile(built[0]) as wheel:
            names = set(wheel.namelist())
        package = REPOSITORY / "src" / "jobledger" / "http" / "dashboard"
        expected = {
            f"jobledger/http/dashboard/{path.relative_to(package).as_posix()}"
            for folder in ("templates", "static")
            for path in (package / folder).iterdir()
        }
        assert {
            "jobledger/http/dashboard/templates/run.html",
            "jobledger/http/dashboard/static/dashboard.css",
            "jobledger/http/dashboard/static/dashboard.js",
        } <= expected
        assert expected <= names
