"""The dashboard in a real Chromium, against a real ``jobledger serve --app`` process.

Playwright drives Debian's ``chromium`` (``executable_path``; Playwright
downloads no browser). One server (SQLite, the bundled demo's definitions)
serves the whole module; runs are invoked by separate ``jobledger invoke``
processes sharing its store. Every page's screenshot is saved under
``$JOBLEDGER_TEST_ARTIFACTS`` (default ``build/screenshots``), and no page may
log a console error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from tests.conftest import running_in_ci
from tests.integration.http.conftest import REPOSITORY, Clients, Server, environment

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

#: Generous bounds for a loaded machine (milliseconds for Playwright); nothing is timed.
WAIT_MS = 60_000
COMMAND_SECONDS = 120
CHROMIUM_ENV = "JOBLEDGER_CHROMIUM"
ARTIFACTS_ENV = "JOBLEDGER_TEST_ARTIFACTS"
BLOCK_REASON = "66 changes cross the force threshold of 50"


def chromium_path() -> str:
    """The system's Chromium: $JOBLEDGER_CHROMIUM or `chromium` on the PATH.

    Skips without one on a developer's machine; fails in CI, where it is required.
    """
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")
    if not found:
        reason = "no Chromium: apt-get install chromium (or set JOBLEDGER_CHROMIUM)"
        if running_in_ci():
            pytest.fail(f"Chromium is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def artifacts() -> Path:
    """Where the screenshots go: $JOBLEDGER_TEST_ARTIFACTS, else build/screenshots."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPOSITORY / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, name: str) -> None:
    """Save a screenshot of the whole page as ``name``.png."""
    page.screenshot(path=str(artifacts() / f"dashboard-{name}.png"), full_page=True)


class Board:
    """The server, its store, and its clients' secrets."""

    def __init__(self, server: Server, store: str, secrets: dict[str, str]) -> None:
        """Remember the parts."""
        self.server = server
        self.store = store
        self.secrets = secrets

    def invoke(self, *options: str) -> subprocess.Popen[str]:
        """Start ``jobledger invoke -j hr-nightly`` on the server's store, in another process."""
        return subprocess.Popen(  # noqa: S603  (our own command line, with fixed arguments)
            [
                sys.executable,
                "-m",
                "jobledger",
                "invoke",
                "-j",
                "hr-nightly",
                "--store",
                self.store,
                "--concurrent",
                "--json",
                *options,
            ],
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def invoked(self, *options: str) -> dict[str, object]:
        """Invoke and wait for the run's end (or its block); return its JSON."""
        process = self.invoke(*options)
        out, err = process.communicate(timeout=COMMAND_SECONDS)
        assert out, err
        document: dict[str, object] = json.loads(out)
        return document


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A `jobledger serve --app jobledger.demo:definitions` over a new SQLite store."""
    store = str(tmp_path_factory.mktemp("dashboard") / "jobs.db")
    clients = Clients(store)
    secrets = {
        "operator": clients.add("operator", "read", "run"),
        "viewer": clients.add("viewer", "read"),
    }
    clients.close()
    server = Server(store, "--app", "jobledger.demo:definitions", "--keepalive-seconds", "1")
    server.start()
    yield Board(server, store, secrets)
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from the system, through Playwright."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def errors() -> list[str]:
    """The console errors and uncaught exceptions of the test's pages."""
    return []


def open_page(browser: Browser, errors: list[str], width: int = 1280) -> Page:
    """A page in a new browser context (no cookies), recording its console errors."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def sign_in(page: Page, board: Board, client_id: str) -> None:
    """Sign in with the keyboard, as ``client_id``; land on the runs."""
    page.goto(f"{board.server.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Secret").fill(board.secrets[client_id])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()


@pytest.fixture
def operator(browser: Browser, board: Board, errors: list[str]) -> Iterator[Page]:
    """A page signed in as the operator (read, run); no console error by the test's end."""
    page = open_page(browser, errors)
    sign_in(page, board, "operator")
    yield page
    page.context.close()
    assert [] == errors


class TestSignIn:
    """Signing in and out."""

    def test_a_wrong_secret_is_refused_and_the_right_one_signs_in(
        self, browser: Browser, board: Board, errors: list[str]
    ) -> None:
        """A wrong secret shows why; the right one leads to the runs; signing out ends it."""
        page = open_page(browser, errors)
        page.goto(f"{board.server.url}/")
        shoot(page, "signin")
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.get_by_label("Client id").fill("operator")
        page.get_by_label("Secret").fill("not the secret")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("do not match")
        page.get_by_label("Secret").fill(board.secrets["operator"])
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        expect(page.get_by_text("Signed in as")).to_contain_text("operator")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.goto(f"{board.server.url}/dashboard/jobs")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.context.close()
        assert [] == errors

    def test_a_page_signed_out_meanwhile_leads_to_sign_in_on_its_next_update(
        self, browser: Browser, board: Board, errors: list[str]
    ) -> None:
        """When the session is gone, the next live update loads the sign-in page, not a part."""
        page = open_page(browser, errors)
        sign_in(page, board, "operator")
        page.context.clear_cookies()
        board.invoked("--input", '{"pace": 0}')
        expect(page).to_have_url(re.compile(r"/dashboard/signin\?next=%2Fruns$"))
        expect(page.locator("h1")).to_have_count(1)
        page.context.close()
        assert [] == errors


class TestBlockedRun:
    """A run blocked at its synchronization: its reason, then resume with repair from the page."""

    def test_the_reason_shows_and_resume_with_repair_completes_the_run(
        self, operator: Page, board: Board
    ) -> None:
        """The blocked reason is on the run's page; the page's repair drives the run to its end."""
        invoked = board.invoked("--input", '{"pace": 0}')
        assert "blocked" == invoked["Status"]
        run_id = str(invoked["Run"]["JobId"])  # type: ignore[index]
        operator.goto(f"{board.server.url}/dashboard/runs/{run_id}")
        expect(operator.locator("#run-status")).to_have_text("blocked")
        expect(operator.locator(".blocked-reason")).to_have_text(BLOCK_REASON)
        shoot(operator, "run-blocked")
        operator.get_by_role("link", name="Resume with repair").click()
        expect(operator.get_by_role("heading", name="Resume the run with repair?")).to_be_visible()
        shoot(operator, "confirm-repair")
        operator.get_by_role("button", name="Resume the run with repair").click()
        expect(operator.locator("#action-result")).to_contain_text("resumed")
        shoot(operator, "result-repair")
        operator.get_by_role("link", name=f"See run {run_id}").click()
        expect(operator.locator("#run-status")).to_have_text("completed")
        expect(operator.locator("tr[data-task='synchronize']")).to_contain_text("repair")
        shoot(operator, "run-completed")


class TestLiveRun:
    """A run invoked from another process while the pages are open."""

    def test_it_appears_its_timeline_grows_and_the_page_cancels_it(
        self, operator: Page, board: Board
    ) -> None:
        """The runs list shows the new run and its timeline grows, both without a reload.

        Then the page cancels the run: its driver (the invoking process) stops it.
        """
        operator.goto(f"{board.server.url}/dashboard/runs")
        rows = operator.locator("tr[data-run]")
        before = rows.count()
        operator.evaluate("window.notReloaded = true")
        process = board.invoke("--input", '{"pace": 4}', "--force", "100")
        try:
            expect(rows).to_have_count(before + 1)
            assert operator.evaluate("window.notReloaded === true")
            run_id = rows.first.get_attribute("data-run")
            assert run_id is not None
            expect(rows.first).to_contain_text("running")
            shoot(operator, "runs")

            operator.get_by_role("link", name=run_id).click()
            bars = operator.locator("svg.timeline rect.bar")
            expect(bars.first).to_be_visible()
            first_count = bars.count()
            assert first_count < 4, "the run ended before its page was seen"
            operator.evaluate("window.notReloaded = true")
            expect(bars).to_have_count(first_count + 1)  # the next step's bar, drawn live
            assert operator.evaluate("window.notReloaded === true")
            shoot(operator, "run-running")

            operator.get_by_role("link", name="Cancel run").click()
            shoot(operator, "confirm-cancel")
            operator.get_by_role("button", name="Cancel the run").click()
            expect(operator.locator("#action-result")).to_contain_text("Cancel requested")
            operator.get_by_role("link", name=f"See run {run_id}").click()
            expect(operator.locator("#run-status")).to_have_text("canceled")
            expect(operator.locator("table.updates")).to_contain_text("operator")
            out, _ = process.communicate(timeout=COMMAND_SECONDS)
            assert "canceled" == json.loads(out)["Status"]
            shoot(operator, "run-canceled")
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    def test_a_live_update_keeps_the_keyboards_place(self, operator: Page, board: Board) -> None:
        """The link that has the focus in the runs list still has it after the list updates."""
        operator.goto(f"{board.server.url}/dashboard/runs")
        rows = operator.locator("tr[data-run]")
        before = rows.count()
        process = board.invoke("--input", '{"pace": 2}', "--force", "100")
        try:
            expect(rows).to_have_count(before + 1)
            link = rows.first.get_by_role("link")
            link.focus()
            href = link.get_attribute("href")
            refreshed = int(operator.locator("#live").get_attribute("data-refreshed") or "0")
            expect(operator.locator("#live")).to_have_attribute(
                "data-refreshed", str(refreshed + 1)
            )
            assert href == operator.evaluate("document.activeElement.getAttribute('href')")
            process.communicate(timeout=COMMAND_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()


class TestReadOnlyClient:
    """A client that may only read."""

    def test_it_sees_no_action_and_a_forged_post_is_refused(
        self, browser: Browser, board: Board, operator: Page, errors: list[str]
    ) -> None:
        """The viewer is offered no action on a blocked run, and its hand-made POST gets 403."""
        invoked = board.invoked("--input", '{"pace": 0}')
        run_id = str(invoked["Run"]["JobId"])  # type: ignore[index]
        url = f"{board.server.url}/dashboard/runs/{run_id}"
        operator.goto(url)
        expect(operator.locator(".actions a.button")).to_have_count(4)

        viewer = open_page(browser, errors)
        sign_in(viewer, board, "viewer")
        viewer.goto(url)
        expect(viewer.locator(".blocked-reason")).to_have_text(BLOCK_REASON)
        expect(viewer.locator(".actions")).to_contain_text("may not act on runs")
        expect(viewer.locator(".actions a.button")).to_have_count(0)
        shoot(viewer, "run-read-only")
        token = viewer.locator("input[name='csrf_token']").first.get_attribute("value")
        assert token
        forged = viewer.request.post(
            f"{board.server.url}/dashboard/actions/cancel",
            form={"csrf_token": token, "run": run_id},
        )
        assert 403 == forged.status
        viewer.reload()
        expect(viewer.locator("#run-status")).to_have_text("blocked")
        viewer.context.close()


class TestJobPages:
    """Any job of the ledger, and the phone width."""

    def test_the_jobs_list_and_a_job_page_show_fields_state_and_log(
        self, operator: Page, board: Board
    ) -> None:
        """The jobs list filters by entity; a task's page shows its state and links to its run."""
        operator.goto(f"{board.server.url}/dashboard/jobs")
        operator.get_by_label("Entity").fill("task")
        operator.get_by_role("button", name="Filter").click()
        expect(operator.locator("table.jobs tbody tr").first).to_contain_text("task")
        shoot(operator, "jobs")
        operator.locator("table.jobs tbody a").first.click()
        expect(operator.get_by_role("heading", name="State")).to_be_visible()
        expect(operator.locator("table.updates")).to_contain_text("JobUpdated")
        expect(operator.get_by_role("link", name="The run this task belongs to")).to_be_visible()
        shoot(operator, "job")

    def test_a_run_page_fits_a_phone_width(
        self, browser: Browser, board: Board, errors: list[str]
    ) -> None:
        """At 390 px wide the run page scrolls only inside its tables and timeline."""
        page = open_page(browser, errors, width=390)
        sign_in(page, board, "operator")
        page.locator("tr[data-run] a").first.click()
        expect(page.locator("#run-status")).to_be_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert 0 == overflow
        shoot(page, "run-phone")
        page.context.close()
        assert [] == errors
