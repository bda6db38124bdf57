"""SQLiteRepository.find: every documented filter is answered by searching an index."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from jobledger import InMemoryRepository, JobQuery, Jobs, Repository
from jobledger._adapters.sqlite import find_statement
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from pathlib import Path

WHEN = datetime(2024, 1, 1, tzinfo=UTC)

# Each documented filter alone and in the combinations the runner, the CLI and
# the dashboard make; the index that answers it (for several filters, the index
# of one of them: "|" separates those SQLite may choose); and whether that index
# gives the page in newest-first order (no sort of what the search finds).
LISTINGS: list[tuple[dict[str, Any], str, bool]] = [
    ({}, "jobs_by_created", True),
    ({"service": "hr"}, "jobs_by_service", True),
    ({"entity": "employee"}, "jobs_by_entity", True),
    ({"type": "sync"}, "jobs_by_type", True),
    ({"status": "exporting"}, "jobs_by_phase_status", True),
    ({"status": "completed"}, "jobs_by_phase_status", True),
    ({"phase": "active"}, "jobs_by_phase_status", True),
    ({"phase": "failed"}, "jobs_by_phase_status", True),
    ({"created_before": WHEN}, "jobs_by_created", True),
    ({"created_after": WHEN, "created_before": WHEN}, "jobs_by_created", True),
    ({"service": ["hr", "crm"]}, "jobs_by_service", False),
    ({"status": ["exporting", "completed"]}, "jobs_by_phase_status", False),
    ({"phase": ["active", "failed"]}, "jobs_by_phase_status", False),
    (
        {"service": "jobledger.runner", "entity": "job", "type": "sync", "status": "blocked"},
        "jobs_by_service|jobs_by_entity|jobs_by_type|jobs_by_phase_status",
        True,
    ),
    ({"service": "hr", "phase": "active"}, "jobs_by_service|jobs_by_phase_status", True),
    ({"entity": "employee", "status": "failed"}, "jobs_by_entity|jobs_by_phase_status", True),
]


def _searches_one_of(indexes: str, plan: list[str]) -> bool:
    """Whether ``plan`` searches one of the ``|``-separated ``indexes``."""
    return any(f"INDEX {index} " in f"{line} " for line in plan for index in indexes.split("|"))


def _plan(path: Path, query: JobQuery) -> list[str]:
    """The lines of SQLite's query plan for the listing ``query`` asks for."""
    statement, params = find_statement(query)
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)]
    finally:
        conn.close()


@pytest.fixture
def cursor(tmp_path: Path) -> str:
    """A cursor this ledger made (the first page's, of two jobs listed one a page)."""
    with SQLiteRepository(tmp_path / "jobs.db") as repository:
        jobs = Jobs(repository)
        for _ in range(2):
            jobs.start(service="hr", entity="employee", type="sync")
        page = jobs.find(limit=1)
    assert page.next_cursor is not None
    return page.next_cursor


class TestListingPlans:
    """Each filter, on the first page and the pages after it, searches an index of the jobs."""

    @pytest.mark.parametrize(("filters", "index", "ordered"), LISTINGS)
    def test_the_first_page_searches_an_index(
        self, tmp_path: Path, filters: dict[str, Any], index: str, *, ordered: bool
    ) -> None:
        """The listing reads the jobs through the index for its filter, never by a full scan."""
        SQLiteRepository(tmp_path / "jobs.db").close()

        plan = _plan(tmp_path / "jobs.db", JobQuery(**filters, limit=10))

        assert [] == [line for line in plan if "INDEX" not in line and "B-TREE" not in line]
        assert _searches_one_of(index, plan), plan
        assert ordered == all("TEMP B-TREE" not in line for line in plan), plan

    @pytest.mark.parametrize(
        ("filters", "index"), [(filters, index) for filters, index, _ in LISTINGS]
    )
    def test_a_later_page_searches_the_same_index(
        self, tmp_path: Path, cursor: str, filters: dict[str, Any], index: str
    ) -> None:
        """A page after a cursor is read through the same index, never by a full scan."""
        plan = _plan(tmp_path / "jobs.db", JobQuery(**filters, limit=10, cursor=cursor))

        assert [] == [
            line
            for line in plan
            if "INDEX" not in line and "B-TREE" not in line and line != "MULTI-INDEX OR"
        ]
        assert _searches_one_of(index, plan), plan


STATUSES = ("started", "exporting", "blocked", "completed", "failed", "canceled")


def _populate(repository: Repository) -> None:
    """Two jobs left in each status, started a second apart, with the same ids everywhere."""
    ticks = itertools.count()
    jobs = Jobs(repository, clock=lambda: WHEN + timedelta(seconds=next(ticks)))
    for number, status in enumerate(STATUSES * 2):
        job = jobs.start(service="hr", entity="e", type="t", job_id=f"job-{number:02d}")
        if status in {"exporting", "blocked"}:
            jobs.update(job.id, etag=job.etag, status=status)
        elif status == "completed":
            jobs.complete(job.id, etag=job.etag)
        elif status == "failed":
            jobs.fail(job.id, etag=job.etag)
        elif status == "canceled":
            jobs.cancel(job.id, etag=job.etag)


def _listed(repository: Repository, query: JobQuery) -> list[list[str]]:
    """The ids of every page of ``query``, following the cursors."""
    pages = []
    while True:
        page = repository.find(query)
        pages.append([job.id for job in page.jobs])
        if page.next_cursor is None:
            return pages
        query = attrs.evolve(query, cursor=page.next_cursor)


class TestListingAnswers:
    """Naming the phases of the statuses asked for changes no listing's answer."""

    def test_every_status_and_phase_filter_lists_what_memory_lists(self, tmp_path: Path) -> None:
        """Each pair of status and phase filters, page by page, matches the in-memory ledger."""
        reference = InMemoryRepository()
        statuses: list[Any] = [None, [], "exporting", "completed", ["blocked", "failed"], STATUSES]
        phases: list[Any] = [None, [], "active", "canceled", ["active", "completed"]]
        with SQLiteRepository(tmp_path / "jobs.db") as repository:
            for target in (repository, reference):
                _populate(target)
            differing = [
                (status, phase)
                for status, phase in itertools.product(statuses, phases)
                if _listed(reference, JobQuery(status=status, phase=phase, limit=3))
                != _listed(repository, JobQuery(status=status, phase=phase, limit=3))
            ]

        assert [] == differing
        assert [["job-08", "job-07", "job-06"], ["job-02", "job-01", "job-00"]] == _listed(
            reference, JobQuery(phase="active", limit=3)
        )
