"""Specification of listing jobs: JobQuery filters, newest-first order and keyset pages."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from jobledger import InvalidJobDataError, JobPage, JobQuery, Jobs
from jobledger._core.query import MAX_PAGE_SIZE, Cursor

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def second(n: int) -> datetime:
    """The ``clock`` fixture's reading number ``n`` (0 is the first)."""
    return EPOCH + timedelta(seconds=n)


def populate(jobs: Jobs) -> None:
    """Start five jobs, j1 oldest to j5 newest, each in another service/entity/type/status.

    With the ``clock`` fixture they are created at seconds 0, 1, 3, 5 and 7.
    """
    jobs.start(service="hr", entity="employee", type="sync", job_id="j1")
    j2 = jobs.start(service="hr", entity="employee", type="export", job_id="j2")
    jobs.complete("j2", etag=j2.etag)
    j3 = jobs.start(service="crm", entity="account", type="sync", job_id="j3")
    jobs.fail("j3", etag=j3.etag)
    j4 = jobs.start(service="hr", entity="account", type="sync", job_id="j4")
    jobs.update("j4", etag=j4.etag, status="exporting")
    j5 = jobs.start(service="crm", entity="employee", type="import", job_id="j5")
    jobs.cancel("j5", etag=j5.etag)


def ids_of(page: JobPage) -> list[str]:
    """The ids of the jobs on ``page``, in order."""
    return [job.id for job in page.jobs]


def encoded(raw: bytes) -> str:
    """``raw`` as a URL-safe base64 cursor text."""
    return base64.urlsafe_b64encode(raw).decode("ascii")


class TestFind:
    """Jobs.find lists matching jobs newest first."""

    def test_without_filters_lists_every_job_newest_first(self, jobs: Jobs) -> None:
        """With no filter every job is listed, newest first, on one page with no cursor."""
        populate(jobs)
        page = jobs.find()
        assert (["j5", "j4", "j3", "j2", "j1"], None) == (ids_of(page), page.next_cursor)

    def test_an_empty_ledger_gives_an_empty_page(self, jobs: Jobs) -> None:
        """An empty ledger lists no jobs and no cursor."""
        assert JobPage((), None) == jobs.find()

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"service": "hr"}, ["j4", "j2", "j1"]),
            ({"service": ["crm"]}, ["j5", "j3"]),
            ({"service": {"hr", "crm"}}, ["j5", "j4", "j3", "j2", "j1"]),
            ({"entity": "account"}, ["j4", "j3"]),
            ({"type": ("sync", "import")}, ["j5", "j4", "j3", "j1"]),
            ({"status": "exporting"}, ["j4"]),
            ({"status": "started"}, ["j1"]),
            ({"status": ["completed", "canceled"]}, ["j5", "j2"]),
            ({"phase": "active"}, ["j4", "j1"]),
            ({"phase": ["completed", "failed"]}, ["j3", "j2"]),
            ({"phase": "canceled"}, ["j5"]),
            ({"created_after": second(3)}, ["j5", "j4", "j3"]),
            ({"created_before": second(3)}, ["j2", "j1"]),
            ({"created_after": second(1), "created_before": second(5)}, ["j3", "j2"]),
            ({"service": "hr", "phase": "active"}, ["j4", "j1"]),
            ({"service": "hr", "entity": "employee", "type": "export"}, ["j2"]),
            ({"service": "crm", "status": "started"}, []),
            ({"service": "nobody"}, []),
        ],
    )
    def test_filters(self, jobs: Jobs, filters: dict[str, object], expected: list[str]) -> None:
        """Each filter, and every combination, keeps exactly the jobs that match all of it."""
        populate(jobs)
        assert expected == ids_of(jobs.find(None, **filters))

    def test_a_query_object_is_the_same_as_keywords(self, jobs: Jobs) -> None:
        """find(JobQuery(...)) lists what find(...) with the same keywords lists."""
        populate(jobs)
        assert jobs.find(service="hr", limit=2) == jobs.find(JobQuery(service="hr", limit=2))

    def test_a_query_and_keywords_together_are_refused(self, jobs: Jobs) -> None:
        """Giving both a JobQuery and filter keywords is a TypeError."""
        with pytest.raises(TypeError, match="not both"):
            jobs.find(JobQuery(), service="hr")

    def test_unknown_keywords_are_refused(self, jobs: Jobs) -> None:
        """A keyword that is not a JobQuery field is a TypeError."""
        with pytest.raises(TypeError):
            jobs.find(owner="me")

    def test_the_page_holds_a_tuple(self, jobs: Jobs) -> None:
        """A page's jobs are a tuple, so the page cannot be changed."""
        populate(jobs)
        assert isinstance(jobs.find().jobs, tuple)


class TestPagination:
    """Pages follow one another by keyset cursor, whatever happens in between."""

    def test_pages_cover_every_job_once(self, jobs: Jobs) -> None:
        """Following next_cursor gives every job once, newest first, and stops with None."""
        populate(jobs)
        first = jobs.find(limit=2)
        second_page = jobs.find(limit=2, cursor=first.next_cursor)
        third = jobs.find(limit=2, cursor=second_page.next_cursor)
        assert (["j5", "j4"], ["j3", "j2"], ["j1"], None) == (
            ids_of(first),
            ids_of(second_page),
            ids_of(third),
            third.next_cursor,
        )

    def test_a_full_last_page_has_no_cursor(self, jobs: Jobs) -> None:
        """When the jobs fill the last page exactly, it has no next cursor."""
        populate(jobs)
        page = jobs.find(limit=5)
        assert (5, None) == (len(page.jobs), page.next_cursor)

    def test_pages_keep_filters(self, jobs: Jobs) -> None:
        """The next page of a filtered listing is filtered the same way."""
        populate(jobs)
        first = jobs.find(service="hr", limit=2)
        rest = jobs.find(service="hr", limit=2, cursor=first.next_cursor)
        assert (["j4", "j2"], ["j1"], None) == (ids_of(first), ids_of(rest), rest.next_cursor)

    def test_jobs_started_between_pages_do_not_shift_them(self, jobs: Jobs) -> None:
        """Jobs started after the first page never appear in, or shift, the later pages."""
        populate(jobs)
        first = jobs.find(limit=2)
        jobs.start(service="hr", entity="employee", type="sync", job_id="new-1")
        jobs.start(service="hr", entity="employee", type="sync", job_id="new-2")
        rest = jobs.find(limit=10, cursor=first.next_cursor)
        assert (["j5", "j4"], ["j3", "j2", "j1"]) == (ids_of(first), ids_of(rest))
        assert ["new-2", "new-1", "j5"] == ids_of(jobs.find(limit=3))

    def test_jobs_created_at_the_same_time_are_ordered_by_id(self) -> None:
        """Jobs with equal creation times list by id, descending, and page without loss."""
        jobs = Jobs(clock=lambda: EPOCH)
        for job_id in ("b", "d", "a", "c", "e"):
            jobs.start(service="s", entity="e", type="t", job_id=job_id)
        first = jobs.find(limit=2)
        second_page = jobs.find(limit=2, cursor=first.next_cursor)
        third = jobs.find(limit=2, cursor=second_page.next_cursor)
        assert [["e", "d"], ["c", "b"], ["a"]] == [
            ids_of(first),
            ids_of(second_page),
            ids_of(third),
        ]

    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "not a cursor!",
            "é",
            encoded(b"not json"),
            encoded(b"\xff\xfe"),
            encoded(b"42"),
            encoded(b'["2024-01-01T00:00:00+00:00"]'),
            encoded(b'["2024-01-01T00:00:00+00:00", "j", "extra"]'),
            encoded(b'["yesterday", "j"]'),
            encoded(b'["2024-01-01T00:00:00", "j"]'),
            encoded(b'["2024-01-01T00:00:00+00:00", 5]'),
            encoded(b'[5, "j"]'),
            encoded(b'{"a": 1, "b": 2}'),
            encoded(b"[" * 100_000),
        ],
        ids=[
            "empty",
            "not-base64",
            "not-ascii",
            "not-json",
            "not-utf8",
            "number",
            "one-item",
            "three-items",
            "bad-time",
            "naive-time",
            "id-not-string",
            "time-not-string",
            "object",
            "deeply-nested",
        ],
    )
    def test_a_bad_cursor_is_invalid_data(self, jobs: Jobs, cursor: str) -> None:
        """A cursor the ledger did not make raises InvalidJobDataError naming the cursor."""
        populate(jobs)
        with pytest.raises(InvalidJobDataError) as caught:
            jobs.find(cursor=cursor)
        assert ("cursor", "") == (caught.value.field, caught.value.path)


class TestJobQuery:
    """JobQuery checks its fields when it is built."""

    @pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, True, 1.5, "10"])
    def test_limit_out_of_bounds(self, limit: object) -> None:
        """A limit that is not an integer from 1 to 1000 is refused naming the limit."""
        with pytest.raises(InvalidJobDataError) as caught:
            JobQuery(limit=limit)  # type: ignore[arg-type]
        assert "limit" == caught.value.field

    @pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
    def test_limit_bounds_are_accepted(self, limit: int) -> None:
        """1 and 1000 are valid limits; 100 is the default."""
        assert (limit, 100) == (JobQuery(limit=limit).limit, JobQuery().limit)

    def test_limit_is_enforced(self, jobs: Jobs) -> None:
        """A page holds at most limit jobs."""
        populate(jobs)
        assert ["j5"] == ids_of(jobs.find(limit=1))

    def test_unknown_phase(self) -> None:
        """A phase that does not exist is refused naming the phase."""
        with pytest.raises(InvalidJobDataError) as caught:
            JobQuery(phase="running")
        assert "phase" == caught.value.field

    @pytest.mark.parametrize("field", ["created_after", "created_before"])
    @pytest.mark.parametrize(
        "value",
        [datetime(2024, 1, 1), "2024-01-01T00:00:00+00:00"],  # noqa: DTZ001  (naive on purpose)
        ids=["naive", "text"],
    )
    def test_times_must_be_aware_datetimes(self, field: str, value: object) -> None:
        """created_after and created_before must be timezone-aware datetimes."""
        with pytest.raises(InvalidJobDataError) as caught:
            JobQuery(**{field: value})  # type: ignore[arg-type]
        assert field == caught.value.field

    def test_single_values_become_sets(self) -> None:
        """A single filter value is kept as a one-element set, a collection as a set."""
        query = JobQuery(service="hr", entity=["a", "b"], phase="active")
        assert (frozenset({"hr"}), frozenset({"a", "b"}), frozenset({"active"})) == (
            query.service,
            query.entity,
            query.phase,
        )


class TestJobQueryGiven:
    """JobQuery.given takes a query or its fields as keywords, as find does."""

    def test_a_query_is_returned_as_given(self) -> None:
        """A query with no keywords comes back unchanged."""
        query = JobQuery(service="hr", limit=5)
        assert query is JobQuery.given(query)

    def test_keywords_make_a_query(self) -> None:
        """With no query, the keywords are the query's fields (with no keywords, every job)."""
        assert (JobQuery(service="hr", limit=5), JobQuery()) == (
            JobQuery.given(None, service="hr", limit=5),
            JobQuery.given(None),
        )

    def test_a_query_and_keywords_together_are_refused(self) -> None:
        """Giving both a query and keywords is a TypeError."""
        with pytest.raises(TypeError, match="not both"):
            JobQuery.given(JobQuery(), service="hr")

    def test_a_keyword_named_like_its_parameters_is_refused_as_unknown(self) -> None:
        """``query`` and ``cls`` are no JobQuery fields: refused as unknown keywords."""
        with pytest.raises(TypeError, match="unexpected keyword"):
            JobQuery.given(None, query=1, cls=2)


class TestCursor:
    """A cursor encodes where a page ended, opaquely and losslessly."""

    def test_round_trip(self) -> None:
        """Decoding an encoded cursor gives the same cursor."""
        cursor = Cursor(datetime(2024, 2, 3, 4, 5, 6, 789, tzinfo=UTC), "job-ü/1")
        assert cursor == Cursor.decode(cursor.encode())

    def test_it_is_url_safe(self) -> None:
        """An encoded cursor holds only URL-safe base64 characters."""
        text = Cursor(EPOCH, "??>>~~" * 10).encode()
        assert set() == set(text) - set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
        )

    def test_the_encoding_is_base64_json(self) -> None:
        """The cursor is base64 of a JSON array of the time and the id."""
        text = Cursor(EPOCH, "j").encode()
        assert ["2024-01-01T00:00:00+00:00", "j"] == json.loads(base64.urlsafe_b64decode(text))
