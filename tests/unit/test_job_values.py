"""Specification of job_of, the hot path's constructor of jobs: the very Job that Job(...) makes."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from jobledger import Job, freeze
from jobledger._core.job import job_of

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
UPDATED = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def distinct_fields() -> dict[str, object]:
    """A value for every field of Job, each different from the others, by field name."""
    return {
        "id": "job-1",
        "service": "hr",
        "entity": "employee",
        "type": "sync",
        "display_name": "Nightly HR sync",
        "description": "every night",
        "status": "exporting",
        "input": freeze({"source": "ldap"}, field="input"),
        "state": freeze({"done": 7}, field="state"),
        "etag": "etag-3",
        "version": 3,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "started_by": "ops",
    }


class TestJobOf:
    """job_of builds a Job from its fields in field order, as Job(...) does."""

    def test_its_parameters_are_the_fields_of_job_in_order(self) -> None:
        """job_of takes exactly Job's fields, in Job's order: a new or moved field fails here."""
        assert [field.name for field in attrs.fields(Job)] == list(
            job_of.__code__.co_varnames[: job_of.__code__.co_argcount]
        )

    def test_each_field_lands_in_its_own_slot(self) -> None:
        """Every field given to job_of reads back from the attribute of the same name."""
        fields = distinct_fields()
        job = job_of(*fields.values())  # type: ignore[arg-type]
        assert fields == {name: getattr(job, name) for name in fields}

    def test_it_equals_the_job_made_by_keyword(self) -> None:
        """job_of's job equals, hashes and reads like Job(**fields)."""
        fields = distinct_fields()
        made, expected = job_of(*fields.values()), Job(**fields)  # type: ignore[arg-type]
        assert (expected, hash(expected), repr(expected), Job) == (
            made,
            hash(made),
            repr(made),
            type(made),
        )

    def test_the_job_it_makes_is_frozen(self) -> None:
        """A job from job_of refuses assignment like any Job."""
        job = job_of(*distinct_fields().values())  # type: ignore[arg-type]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            job.status = "completed"  # type: ignore[misc]
