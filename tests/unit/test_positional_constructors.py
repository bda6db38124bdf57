"""Specification of the hot path's positional constructors: the very values the classes make."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
import pytest

from jobledger import CompleteJob, InvalidJobDataError, Job, JsonObject, UpdateJob, freeze
from jobledger._core.commands import complete_job, update_job
from jobledger._core.job import job_of

if TYPE_CHECKING:
    from collections.abc import Callable

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
        assert [field.name for field in attrs.fields(Job)] == parameters(job_of)

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


def parameters(function: Callable[..., object]) -> list[str]:
    """The names of ``function``'s parameters, in order."""
    code = function.__code__
    return list(code.co_varnames[: code.co_argcount])


UPDATE_FIELDS: dict[str, object] = {
    "job_id": "job-1",
    "etag": "etag-1",
    "status": "exporting",
    "display_name": "Nightly HR sync",
    "description": "every night",
    "state_update": {"done": 7},
    "request_id": "request-1",
    "actor": "ops",
}
COMPLETE_FIELDS = {name: value for name, value in UPDATE_FIELDS.items() if name != "status"}


class TestCommandConstructors:
    """update_job and complete_job build the command from its fields in order, as the class does."""

    @pytest.mark.parametrize(
        ("constructor", "command_class"), [(update_job, UpdateJob), (complete_job, CompleteJob)]
    )
    def test_their_parameters_are_the_fields_of_the_command_in_order(
        self, constructor: Callable[..., object], command_class: type
    ) -> None:
        """Each takes exactly its command's fields, in order: a new or moved field fails here."""
        assert [field.name for field in attrs.fields(command_class)] == parameters(constructor)

    @pytest.mark.parametrize(
        ("constructor", "command_class", "fields"),
        [(update_job, UpdateJob, UPDATE_FIELDS), (complete_job, CompleteJob, COMPLETE_FIELDS)],
    )
    def test_each_gives_the_command_made_by_keyword(
        self,
        constructor: Callable[..., object],
        command_class: type,
        fields: dict[str, object],
    ) -> None:
        """Each gives a command equal to the keyword-built one, every field in its own slot."""
        made, expected = constructor(*fields.values()), command_class(**fields)
        assert (expected, command_class, {**fields, "state_update": {"done": 7}}) == (
            made,
            type(made),
            {name: getattr(made, name) for name in fields},
        )

    def test_the_patch_is_frozen_as_the_class_freezes_it(self) -> None:
        """A plain dict patch comes out a read-only JsonObject, and a bad one is refused alike."""
        made = update_job("job-1", "etag-1", None, None, None, {"done": 1}, None, None)
        with pytest.raises(InvalidJobDataError) as caught:
            update_job("job-1", "etag-1", None, None, None, {"x": float("nan")}, None, None)
        assert (JsonObject, "state_update", "/x") == (
            type(made.state_update),
            caught.value.field,
            caught.value.path,
        )
