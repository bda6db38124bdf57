"""The wire format: every message's JSON, field by field, and every way decoding refuses one."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest

import jobledger
from jobledger import (
    CancelJob,
    Command,
    CompleteJob,
    FailJob,
    InvalidJobDataError,
    JobCanceled,
    JobCompleted,
    JobFailed,
    JobStarted,
    JobUpdate,
    JobUpdated,
    JsonArray,
    JsonObject,
    StartJob,
    UpdateJob,
    UpdateType,
    WireFormatError,
    freeze,
    wire,
)

AT = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
AT_TEXT = "2024-05-01T12:00:00.250000+00:00"


def start_job_message() -> dict[str, Any]:
    """A StartJob with every field set, as a sender puts it on the wire."""
    return {
        "MessageType": "StartJob",
        "Service": "hr",
        "Entity": "employee",
        "Type": "sync",
        "DisplayName": "Nightly HR sync",
        "Description": "Imports the HR export",
        "Input": {"file": "hr.csv", "dry_run": False},
        "State": {"done": 0},
        "JobId": "job-1",
        "RequestId": "req-1",
    }


def job_message() -> dict[str, Any]:
    """A Job entity with every field set."""
    return {
        "JobId": "job-1",
        "Service": "hr",
        "Entity": "employee",
        "Type": "sync",
        "DisplayName": "Nightly HR sync",
        "Description": "",
        "Status": "exporting",
        "Input": [1, "two"],
        "State": {"done": 10},
        "ETag": "e2",
        "Version": 2,
        "CreatedAt": "2024-05-01T11:00:00+00:00",
        "UpdatedAt": AT_TEXT,
        "StartedBy": "hr-sync-service",
    }


def update_message() -> dict[str, Any]:
    """A JobUpdate with every field set."""
    return {
        "JobId": "job-1",
        "UpdateId": 3,
        "UpdateType": 2,
        "Status": "failed",
        "StateUpdate": {"error": "disk full", "tmp": None},
        "DisplayName": None,
        "Description": "Failed at step 2",
        "ETag": "e4",
        "At": AT_TEXT,
        "Actor": "alice",
    }


def canceled_message() -> dict[str, Any]:
    """A JobCanceled event with every field set."""
    return {
        "MessageType": "JobCanceled",
        "EventId": "ev-9",
        "JobId": "job-1",
        "Service": "hr",
        "Entity": "employee",
        "Type": "sync",
        "Status": "canceled",
        "ETag": "e5",
        "Version": 5,
        "At": AT_TEXT,
        "Actor": "operator",
        "UpdateId": 4,
        "DisplayName": None,
        "Description": "Canceled by the operator",
    }


def decode_error(message: object) -> WireFormatError:
    """The WireFormatError that decoding ``message`` as a command raises."""
    with pytest.raises(WireFormatError) as caught:
        wire.decode_command(message)  # type: ignore[arg-type]
    return caught.value


class TestDecodeCommand:
    """decode_command reads the five commands and refuses every malformed message."""

    def test_start_job_is_read_field_by_field(self) -> None:
        """A StartJob message gives a StartJob with each wire field in its attribute."""
        command = wire.decode_command(start_job_message())

        assert StartJob is type(command)
        assert isinstance(command, StartJob)
        assert "hr" == command.service
        assert "employee" == command.entity
        assert "sync" == command.type
        assert "Nightly HR sync" == command.display_name
        assert "Imports the HR export" == command.description
        assert {"file": "hr.csv", "dry_run": False} == command.input
        assert {"done": 0} == command.state
        assert "job-1" == command.job_id
        assert "req-1" == command.request_id

    def test_start_job_leaves_out_optional_fields(self) -> None:
        """A StartJob with only Service, Entity and Type takes the defaults for the rest."""
        message = {"MessageType": "StartJob", "Service": "hr", "Entity": "e", "Type": "t"}

        command = wire.decode_command(message)

        assert StartJob(service="hr", entity="e", type="t") == command

    def test_update_job_is_read_field_by_field(self) -> None:
        """An UpdateJob message gives an UpdateJob with each wire field in its attribute."""
        command = wire.decode_command(
            """{"MessageType": "UpdateJob", "JobId": "job-1", "ETag": "e1",
                "Status": "exporting", "DisplayName": "Sync (exporting)",
                "Description": "Step 2 of 3", "StateUpdate": {"done": 10, "tmp": null},
                "RequestId": "req-2"}"""
        )

        assert isinstance(command, UpdateJob)
        assert "job-1" == command.job_id
        assert "e1" == command.etag
        assert "exporting" == command.status
        assert "Sync (exporting)" == command.display_name
        assert "Step 2 of 3" == command.description
        assert {"done": 10, "tmp": None} == command.state_update
        assert "req-2" == command.request_id

    def test_update_job_reads_null_as_unchanged(self) -> None:
        """Explicit nulls in an UpdateJob's optional fields mean what leaving them out means."""
        message = {
            "MessageType": "UpdateJob",
            "JobId": "job-1",
            "ETag": "*",
            "Status": None,
            "DisplayName": None,
            "Description": None,
            "StateUpdate": None,
            "RequestId": None,
        }

        assert UpdateJob(job_id="job-1", etag="*") == wire.decode_command(message)

    def test_complete_job_is_read_field_by_field(self) -> None:
        """A CompleteJob message gives a CompleteJob with each wire field in its attribute."""
        command = wire.decode_command(
            b'{"MessageType": "CompleteJob", "JobId": "job-1", "ETag": "e2",'
            b' "DisplayName": "Done", "Description": "All 42 imported",'
            b' "StateUpdate": {"done": 42}, "RequestId": "req-3"}'
        )

        assert isinstance(command, CompleteJob)
        assert "job-1" == command.job_id
        assert "e2" == command.etag
        assert "Done" == command.display_name
        assert "All 42 imported" == command.description
        assert {"done": 42} == command.state_update
        assert "req-3" == command.request_id

    def test_fail_job_is_read_field_by_field(self) -> None:
        """A FailJob message gives a FailJob with each wire field in its attribute."""
        command = wire.decode_command(
            {
                "MessageType": "FailJob",
                "JobId": "job-1",
                "ETag": "e2",
                "DisplayName": "Failed",
                "Description": "Disk full",
                "StateUpdate": {"error": {"code": 28}},
                "RequestId": "req-4",
            }
        )

        assert isinstance(command, FailJob)
        assert "job-1" == command.job_id
        assert "e2" == command.etag
        assert "Failed" == command.display_name
        assert "Disk full" == command.description
        assert {"error": {"code": 28}} == command.state_update
        assert "req-4" == command.request_id

    def test_cancel_job_is_read_field_by_field(self) -> None:
        """A CancelJob message gives a CancelJob with each wire field in its attribute."""
        command = wire.decode_command(
            {
                "MessageType": "CancelJob",
                "JobId": "job-1",
                "ETag": "e2",
                "DisplayName": "Canceled",
                "Description": "By the operator",
                "RequestId": "req-5",
            }
        )

        assert isinstance(command, CancelJob)
        assert "job-1" == command.job_id
        assert "e2" == command.etag
        assert "Canceled" == command.display_name
        assert "By the operator" == command.description
        assert "req-5" == command.request_id

    def test_payloads_come_back_read_only(self) -> None:
        """Input, State and StateUpdate are frozen JSON that refuses changes."""
        command = wire.decode_command(start_job_message() | {"Input": [{"a": 1}]})

        assert isinstance(command, StartJob)
        assert isinstance(command.input, JsonArray)
        assert isinstance(command.input[0], JsonObject)
        assert isinstance(command.state, JsonObject)
        with pytest.raises(TypeError):
            command.state["done"] = 1

    def test_unknown_key_is_refused_by_name(self) -> None:
        """A key the command does not have is refused, naming the key."""
        error = decode_error(start_job_message() | {"Priority": 1})

        assert "StartJob" == error.field
        assert "/Priority" == error.path
        assert "unknown key 'Priority'" in error.reason

    def test_snake_case_key_is_refused(self) -> None:
        """The Python attribute name is not a wire name: only the seed's PascalCase is."""
        message = {"MessageType": "CancelJob", "JobId": "job-1", "ETag": "e", "request_id": "r"}

        error = decode_error(message)

        assert ("CancelJob", "/request_id") == (error.field, error.path)

    def test_wrong_type_is_refused_by_name(self) -> None:
        """A number where a string belongs is refused, naming the key and the types."""
        error = decode_error(start_job_message() | {"Service": 42})

        assert "StartJob" == error.field
        assert "/Service" == error.path
        assert "must be a string, not a number" == error.reason

    @pytest.mark.parametrize(
        ("key", "value"),
        [("JobId", None), ("ETag", True), ("Status", ["a"]), ("RequestId", {"id": 1})],
    )
    def test_every_wrongly_typed_string_is_refused(self, key: str, value: object) -> None:
        """Null, a boolean, an array or an object in a string field is refused at that key."""
        message = {"MessageType": "UpdateJob", "JobId": "job-1", "ETag": "e1", key: value}

        error = decode_error(message)

        assert ("UpdateJob", f"/{key}") == (error.field, error.path)

    def test_missing_key_is_refused_by_name(self) -> None:
        """A required key that is missing is refused, naming it."""
        message = start_job_message()
        del message["Entity"]

        error = decode_error(message)

        assert ("StartJob", "/Entity") == (error.field, error.path)
        assert "this required key is missing" == error.reason

    def test_unknown_message_type_is_refused(self) -> None:
        """A MessageType that is not a command is refused, listing the commands."""
        error = decode_error({"MessageType": "JobStarted", "JobId": "job-1"})

        assert ("command", "/MessageType") == (error.field, error.path)
        assert (
            "'JobStarted' is not a known command type; expected one of "
            "CancelJob, CompleteJob, FailJob, StartJob, UpdateJob"
        ) == error.reason

    def test_missing_message_type_is_refused(self) -> None:
        """A command without MessageType is refused at /MessageType."""
        error = decode_error({"JobId": "job-1", "ETag": "e1"})

        assert ("command", "/MessageType") == (error.field, error.path)
        assert error.reason.startswith("this required key is missing")

    def test_message_type_must_be_a_string(self) -> None:
        """A MessageType that is not a string is refused, not looked up."""
        error = decode_error({"MessageType": ["StartJob"]})

        assert ("command", "/MessageType") == (error.field, error.path)
        assert "must be a string naming the command type, not an array" == error.reason

    @pytest.mark.parametrize(
        "text",
        ['{"MessageType": "StartJob",', "", "null x", "{'MessageType': 'StartJob'}"],
    )
    def test_invalid_json_text_is_refused(self, text: str) -> None:
        """Text that is not JSON is refused as a whole."""
        error = decode_error(text)

        assert ("command", "") == (error.field, error.path)
        assert error.reason.startswith("the text is not JSON")

    @pytest.mark.parametrize("message", ["[]", "42", '"StartJob"', "null", [1], 1.5])
    def test_message_must_be_an_object(self, message: object) -> None:
        """A JSON value other than an object is refused as a whole."""
        error = decode_error(message)

        assert ("command", "") == (error.field, error.path)
        assert error.reason.startswith("must be a JSON object")

    def test_text_must_be_utf8(self) -> None:
        """Bytes that are not UTF-8 are refused, as I-JSON requires."""
        error = decode_error('{"MessageType": "StartJob"}'.encode("utf-16"))

        assert ("command", "") == (error.field, error.path)
        assert error.reason.startswith("the text is not UTF-8")

    def test_duplicate_keys_are_refused(self) -> None:
        """An object with the same key twice is refused: readers disagree on which wins."""
        text = (
            '{"MessageType": "UpdateJob", "JobId": "job-1", "ETag": "e1",'
            ' "StateUpdate": {"done": 1, "done": 2}}'
        )

        error = decode_error(text)

        assert "the key 'done' appears twice in one object" == error.reason

    def test_nesting_too_deep_for_the_parser_is_refused(self) -> None:
        """JSON text nested beyond what the parser can follow is refused, not a crash."""
        error = decode_error('{"MessageType": "StartJob", "Input": ' + "[" * 100_000)

        assert ("command", "") == (error.field, error.path)

    @pytest.mark.parametrize(
        ("payload", "path", "reason"),
        [
            ({"ratio": math.nan}, "/StateUpdate/ratio", "nan is not a JSON number"),
            ({"a": [0, math.inf]}, "/StateUpdate/a/1", "inf is not a JSON number"),
            ({"big": 2**53}, "/StateUpdate/big", "outside the I-JSON range"),
            ({"s": "a\ud800"}, "/StateUpdate/s", "lone surrogate"),
            ({"s": "nul\x00"}, "/StateUpdate/s", "NUL character"),
            ({"x": {1: "one"}}, "/StateUpdate/x", "object keys must be strings"),
            ({"x": {"k\x00": 1}}, "/StateUpdate/x/k\x00", "NUL character"),
            ({"tags": {"a", "b"}}, "/StateUpdate/tags", "a set is not a JSON value"),
            ({"blob": b"\x00"}, "/StateUpdate/blob", "a bytes is not a JSON value"),
            ({"a/b": {"m~n": math.nan}}, "/StateUpdate/a~1b/m~0n", "nan"),
        ],
    )
    def test_hostile_payload_is_refused_at_its_path(
        self, payload: dict[Any, Any], path: str, reason: str
    ) -> None:
        """JSON the ledger would refuse is a WireFormatError pointing into the payload."""
        message = {"MessageType": "UpdateJob", "JobId": "job-1", "ETag": "e1"}

        error = decode_error(message | {"StateUpdate": payload})

        assert ("UpdateJob", path) == (error.field, error.path)
        assert reason in error.reason

    @pytest.mark.parametrize(
        ("text", "path"),
        [
            ('{"x": NaN}', "/State/x"),
            ('{"x": [Infinity]}', "/State/x/0"),
            ('{"x": -Infinity}', "/State/x"),
            ('{"x": 9007199254740992}', "/State/x"),
            ('{"x": "\\ud800"}', "/State/x"),
            ('{"\\udc00": 1}', "/State/\\udc00"),
            ('{"x": "\\u0000"}', "/State/x"),
        ],
    )
    def test_hostile_payload_in_json_text_is_refused_at_its_path(
        self, text: str, path: str
    ) -> None:
        """Non-I-JSON that Python's parser lets through is still refused, at its path."""
        message = '{"MessageType": "StartJob", "Service": "s", "Entity": "e", "Type": "t"'

        error = decode_error(f'{message}, "State": {text}}}')

        assert ("StartJob", path) == (error.field, error.path)

    def test_hostile_payload_error_is_an_invalid_job_data_error(self) -> None:
        """Code that catches InvalidJobDataError for the ledger's checks catches the wire's too."""
        message = {"MessageType": "StartJob", "Service": "s", "Entity": "e", "Type": "t"}

        with pytest.raises(InvalidJobDataError) as caught:
            wire.decode_command(message | {"Input": math.nan})

        assert WireFormatError is type(caught.value)
        assert "invalid StartJob at /Input: nan is not a JSON number (numbers must be finite)" == (
            str(caught.value)
        )

    @pytest.mark.parametrize(("key", "value"), [("JobId", "a\udfffb"), ("ETag", "nul\x00")])
    def test_strings_that_json_cannot_carry_are_refused(self, key: str, value: str) -> None:
        """A lone surrogate or NUL in any string field is refused, not passed on."""
        message = {"MessageType": "CancelJob", "JobId": "job-1", "ETag": "e1", key: value}

        error = decode_error(message)

        assert ("CancelJob", f"/{key}") == (error.field, error.path)


class TestDecodeEvent:
    """decode_event reads the five events and refuses every malformed message."""

    def test_job_started_is_read_field_by_field(self) -> None:
        """A JobStarted message gives a JobStarted with each wire field in its attribute."""
        event = wire.decode_event(
            {
                "MessageType": "JobStarted",
                "EventId": "ev-1",
                "JobId": "job-1",
                "Service": "hr",
                "Entity": "employee",
                "Type": "sync",
                "Status": "started",
                "ETag": "e1",
                "Version": 1,
                "At": AT_TEXT,
                "DisplayName": "Nightly HR sync",
                "Description": "",
                "Input": "hr.csv",
                "State": {"done": 0},
            }
        )

        assert isinstance(event, JobStarted)
        assert "ev-1" == event.event_id
        assert "job-1" == event.job_id
        assert "hr" == event.service
        assert "employee" == event.entity
        assert "sync" == event.type
        assert "started" == event.status
        assert "e1" == event.etag
        assert 1 == event.version
        assert AT == event.at
        assert "Nightly HR sync" == event.display_name
        assert "" == event.description
        assert "hr.csv" == event.input
        assert {"done": 0} == event.state

    @pytest.mark.parametrize(
        ("message_type", "event_type", "status"),
        [
            ("JobUpdated", JobUpdated, "exporting"),
            ("JobCompleted", JobCompleted, "completed"),
            ("JobFailed", JobFailed, "failed"),
        ],
    )
    def test_change_event_with_state_update_is_read_field_by_field(
        self, message_type: str, event_type: type[JobUpdated], status: str
    ) -> None:
        """JobUpdated, JobCompleted and JobFailed messages give the event with each field."""
        event = wire.decode_event(
            {
                "MessageType": message_type,
                "EventId": "ev-2",
                "JobId": "job-1",
                "Service": "hr",
                "Entity": "employee",
                "Type": "sync",
                "Status": status,
                "ETag": "e2",
                "Version": 2,
                "At": AT_TEXT,
                "UpdateId": 1,
                "DisplayName": "Renamed",
                "Description": None,
                "StateUpdate": {"done": 10},
            }
        )

        assert event_type is type(event)
        assert isinstance(event, (JobUpdated, JobCompleted, JobFailed))
        assert "ev-2" == event.event_id
        assert "job-1" == event.job_id
        assert "hr" == event.service
        assert "employee" == event.entity
        assert "sync" == event.type
        assert status == event.status
        assert "e2" == event.etag
        assert 2 == event.version
        assert AT == event.at
        assert 1 == event.update_id
        assert "Renamed" == event.display_name
        assert event.description is None
        assert {"done": 10} == event.state_update

    def test_job_canceled_is_read_field_by_field(self) -> None:
        """A JobCanceled message gives a JobCanceled with each wire field in its attribute."""
        event = wire.decode_event(json.dumps(canceled_message()))

        assert isinstance(event, JobCanceled)
        assert "ev-9" == event.event_id
        assert "job-1" == event.job_id
        assert "hr" == event.service
        assert "employee" == event.entity
        assert "sync" == event.type
        assert "canceled" == event.status
        assert "e5" == event.etag
        assert 5 == event.version
        assert AT == event.at
        assert 4 == event.update_id
        assert event.display_name is None
        assert "Canceled by the operator" == event.description

    @pytest.mark.parametrize(
        "key", ["JobId", "UpdateId", "Service", "Entity", "Type", "Status", "ETag"]
    )
    def test_every_seed_field_of_an_event_is_required(self, key: str) -> None:
        """An event lacking one of the seed's fields is refused, naming it."""
        message = canceled_message()
        del message[key]

        with pytest.raises(WireFormatError) as caught:
            wire.decode_event(message)

        assert ("JobCanceled", f"/{key}") == (caught.value.field, caught.value.path)

    def test_canceled_event_has_no_state_update(self) -> None:
        """A JobCanceled carrying StateUpdate is refused: the key is not one of its own."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_event(canceled_message() | {"StateUpdate": {}})

        assert ("JobCanceled", "/StateUpdate") == (caught.value.field, caught.value.path)

    def test_command_is_not_an_event(self) -> None:
        """A command's MessageType is refused by the event decoder."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_event(start_job_message())

        assert ("event", "/MessageType") == (caught.value.field, caught.value.path)
        assert (
            "'StartJob' is not a known event type; expected one of "
            "JobCanceled, JobCompleted, JobFailed, JobStarted, JobUpdated"
        ) == caught.value.reason

    def test_state_update_must_be_an_object(self) -> None:
        """An event's StateUpdate that is JSON but not an object is refused."""
        message = canceled_message() | {"MessageType": "JobFailed", "StateUpdate": [1]}

        with pytest.raises(WireFormatError) as caught:
            wire.decode_event(message)

        assert ("JobFailed", "/StateUpdate") == (caught.value.field, caught.value.path)
        assert "must be a JSON object, not an array" == caught.value.reason

    @pytest.mark.parametrize(
        ("value", "reason"), [(True, "boolean"), (2.0, "number"), ("2", "string")]
    )
    def test_version_must_be_an_integer(self, value: object, reason: str) -> None:
        """A boolean, a float or a string in Version is refused, not converted."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_event(canceled_message() | {"Version": value})

        assert ("JobCanceled", "/Version") == (caught.value.field, caught.value.path)
        assert f"must be an integer, not a {reason}" == caught.value.reason


class TestDecodeJob:
    """decode_job reads the seed's Job entity, with our version and times."""

    def test_job_is_read_field_by_field(self) -> None:
        """A Job message gives a Job with each wire field in its attribute; JobId is its id."""
        job = wire.decode_job(job_message())

        assert "job-1" == job.id
        assert "hr" == job.service
        assert "employee" == job.entity
        assert "sync" == job.type
        assert "Nightly HR sync" == job.display_name
        assert "" == job.description
        assert "exporting" == job.status
        assert [1, "two"] == job.input
        assert {"done": 10} == job.state
        assert "e2" == job.etag
        assert 2 == job.version
        assert datetime(2024, 5, 1, 11, tzinfo=UTC) == job.created_at
        assert AT == job.updated_at

    @pytest.mark.parametrize("when", ["2024-05-01T12:00:00", "2024-05-01"])
    def test_naive_time_is_refused(self, when: str) -> None:
        """A time without a UTC offset is refused: its instant would be a guess."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_job(job_message() | {"CreatedAt": when})

        assert ("Job", "/CreatedAt") == (caught.value.field, caught.value.path)
        assert "has no UTC offset" in caught.value.reason

    @pytest.mark.parametrize("when", ["yesterday", "2024-13-01T00:00:00+00:00", 1714564800])
    def test_bad_time_is_refused(self, when: object) -> None:
        """A time that is not an ISO 8601 string is refused, naming the key."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_job(job_message() | {"UpdatedAt": when})

        assert ("Job", "/UpdatedAt") == (caught.value.field, caught.value.path)

    def test_time_keeps_its_offset_and_instant(self) -> None:
        """A time with another offset, or with Z, reads as that instant."""
        job = wire.decode_job(
            job_message()
            | {"CreatedAt": "2024-05-01T14:00:00+02:00", "UpdatedAt": "2024-05-01T12:00:00Z"}
        )

        assert datetime(2024, 5, 1, 12, tzinfo=UTC) == job.created_at
        assert timedelta(hours=2) == job.created_at.utcoffset()
        assert datetime(2024, 5, 1, 12, tzinfo=UTC) == job.updated_at

    def test_message_type_is_not_a_job_key(self) -> None:
        """A Job carries no MessageType; one is refused as an unknown key."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_job(job_message() | {"MessageType": "Job"})

        assert ("Job", "/MessageType") == (caught.value.field, caught.value.path)

    def test_state_must_be_an_object(self) -> None:
        """A job's State that is JSON but not an object is refused."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_job(job_message() | {"State": "done"})

        assert ("Job", "/State") == (caught.value.field, caught.value.path)


class TestDecodeUpdate:
    """decode_update reads the seed's JobUpdate, with UpdateType as its number."""

    def test_update_is_read_field_by_field(self) -> None:
        """A JobUpdate message gives a JobUpdate with each wire field in its attribute."""
        update = wire.decode_update(update_message())

        assert "job-1" == update.job_id
        assert 3 == update.update_id
        assert UpdateType.FAILED is update.update_type
        assert "failed" == update.status
        assert {"error": "disk full", "tmp": None} == update.state_update
        assert update.display_name is None
        assert "Failed at step 2" == update.description
        assert "e4" == update.etag
        assert AT == update.at

    @pytest.mark.parametrize("number", [0, 1, 2, 3])
    def test_update_type_is_read_from_its_number(self, number: int) -> None:
        """Each UpdateType number reads as the member with that value."""
        update = wire.decode_update(update_message() | {"UpdateType": number})

        assert UpdateType(number) is update.update_type

    @pytest.mark.parametrize("value", [4, -1, "Failed", "2", True, 2.0, None])
    def test_update_type_must_be_a_known_number(self, value: object) -> None:
        """An UpdateType that is not 0, 1, 2 or 3 (as a number) is refused."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_update(update_message() | {"UpdateType": value})

        assert ("JobUpdate", "/UpdateType") == (caught.value.field, caught.value.path)
        assert caught.value.reason.startswith(
            "must be one of the numbers 0 (updated), 1 (completed), 2 (failed), 3 (canceled)"
        )

    def test_naive_time_is_refused(self) -> None:
        """An update time without a UTC offset is refused."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_update(update_message() | {"At": "2024-05-01T12:00:00.250000"})

        assert ("JobUpdate", "/At") == (caught.value.field, caught.value.path)


class TestEncode:
    """encode gives each value as a plain dict with exactly the seed's field names."""

    @pytest.mark.parametrize(
        ("command", "keys"),
        [
            (
                StartJob(service="s", entity="e", type="t"),
                ["MessageType", "Service", "Entity", "Type", "DisplayName", "Description",
                 "Input", "State", "JobId", "RequestId", "Actor"],
            ),
            (
                UpdateJob(job_id="j", etag="e"),
                ["MessageType", "JobId", "ETag", "Status", "DisplayName", "Description",
                 "StateUpdate", "RequestId", "Actor"],
            ),
            (
                CompleteJob(job_id="j", etag="e"),
                ["MessageType", "JobId", "ETag", "DisplayName", "Description", "StateUpdate",
                 "RequestId", "Actor"],
            ),
            (
                FailJob(job_id="j", etag="e"),
                ["MessageType", "JobId", "ETag", "DisplayName", "Description", "StateUpdate",
                 "RequestId", "Actor"],
            ),
            (
                CancelJob(job_id="j", etag="e"),
                ["MessageType", "JobId", "ETag", "DisplayName", "Description", "RequestId",
                 "Actor"],
            ),
        ],
        ids=["StartJob", "UpdateJob", "CompleteJob", "FailJob", "CancelJob"],
    )  # fmt: skip
    def test_commands_use_the_seed_names(self, command: Command, keys: list[str]) -> None:
        """Every command's keys are the seed's names plus MessageType and ours, in order."""
        encoded = wire.encode(command)

        assert keys == list(encoded)
        assert type(command).__name__ == encoded["MessageType"]

    def test_events_use_the_seed_names(self) -> None:
        """Every event's keys are the seed's names plus MessageType, EventId, Version, At, Actor."""
        common = ["MessageType", "EventId", "JobId", "Service", "Entity", "Type", "Status",
                  "ETag", "Version", "At", "Actor"]  # fmt: skip
        change = [*common, "UpdateId", "DisplayName", "Description"]
        fields: dict[str, Any] = {
            "event_id": "ev", "job_id": "j", "service": "s", "entity": "e", "type": "t",
            "etag": "e1", "version": 2, "at": AT,
        }  # fmt: skip
        change_fields = fields | {"update_id": 1, "display_name": None, "description": None}
        started = JobStarted(
            **fields, status="started", display_name="", description="", input=None,
            state=cast("JsonObject", freeze({}, field="state")),
        )  # fmt: skip

        assert [*common, "DisplayName", "Description", "Input", "State"] == list(
            wire.encode(started)
        )
        for event_type in (JobUpdated, JobCompleted, JobFailed):
            event = event_type(**change_fields, status="s", state_update=None)
            assert [*change, "StateUpdate"] == list(wire.encode(event))
        assert change == list(wire.encode(JobCanceled(**change_fields, status="canceled")))

    def test_job_uses_the_seed_names(self) -> None:
        """A Job's keys are the seed's Job entity names plus Version, its two times, StartedBy."""
        encoded = wire.encode(wire.decode_job(job_message()))

        assert job_message() == encoded
        assert list(job_message()) == list(encoded)

    def test_update_type_goes_out_as_its_number(self) -> None:
        """A JobUpdate's UpdateType is the seed's number, not a name."""
        encoded = wire.encode(wire.decode_update(update_message()))

        assert update_message() == encoded
        assert int is type(encoded["UpdateType"])
        assert '"UpdateType":2' in wire.dumps(wire.decode_update(update_message()))

    def test_times_go_out_with_their_offset(self) -> None:
        """Times are ISO 8601 with the offset they carry, microseconds included."""
        update = JobUpdate(
            job_id="j",
            update_id=1,
            update_type=UpdateType.UPDATED,
            status="s",
            state_update=None,
            display_name=None,
            description=None,
            etag="e",
            at=datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        )

        assert "2024-05-01T14:00:00.000005+02:00" == wire.encode(update)["At"]

    def test_payloads_go_out_as_plain_mutable_json(self) -> None:
        """The result shares nothing with the value: its dicts and lists are plain and mutable."""
        command = StartJob(service="s", entity="e", type="t", input={"a": [1]}, state={"b": {}})

        encoded = wire.encode(command)
        encoded["Input"]["a"].append(2)

        assert dict is type(encoded["Input"])
        assert list is type(encoded["Input"]["a"])
        assert dict is type(encoded["State"]["b"])
        assert {"a": [1]} == command.input

    def test_anything_else_is_a_type_error(self) -> None:
        """Values that are not commands, events, jobs or updates are refused."""
        with pytest.raises(
            TypeError, match="not a jobledger command, event, Job, JobUpdate or GetJobById"
        ):
            wire.encode({"MessageType": "StartJob"})  # type: ignore[arg-type]


class TestDumps:
    """dumps writes compact JSON text that the decoders read back."""

    @pytest.mark.parametrize(
        "text",
        [
            "'",
            '"',
            "x'; DROP TABLE jobs; --",
            "a;b -- c /* d */",
            "back\\slash",
            "日本語 é \U0001f600",
            "line\nbreak\ttab",
            "\u2028\u2029",
        ],
    )
    def test_tricky_strings_round_trip(self, text: str) -> None:
        """Quotes, semicolons, comment markers, escapes and non-ASCII survive the text."""
        command = StartJob(
            service=text,
            entity="e",
            type="t",
            display_name=text,
            input={text: [text]},
            state={"note": text},
            job_id=text,
        )

        assert command == wire.decode_command(wire.dumps(command))
        assert command == wire.decode_command(wire.dumps(command).encode("utf-8"))

    def test_non_ascii_is_written_as_is(self) -> None:
        """Non-ASCII characters are written as themselves, not as escapes."""
        text = wire.dumps(CancelJob(job_id="日本", etag="é"))

        assert '{"MessageType":"CancelJob","JobId":"日本","ETag":"é",' in text


class TestWireModule:
    """jobledger.wire is an edge module, imported on its own."""

    def test_wire_is_a_submodule_not_a_public_name(self) -> None:
        """The codec is reached as jobledger.wire; it is not one of jobledger's public names."""
        assert "wire" not in jobledger.__all__
        assert "jobledger.wire" == wire.__name__


SEED_EVENTS: dict[str, dict[str, Any]] = {
    "JobStarted": {
        "MessageType": "JobStarted",
        "JobId": "job-1",
        "Service": "hr",
        "Entity": "employee",
        "Type": "sync",
        "Status": "started",
        "Input": {"file": "hr.csv"},
        "ETag": "e1",
    },
    **{
        kind: {
            "MessageType": kind,
            "JobId": "job-1",
            "UpdateId": "3",
            "Service": "hr",
            "Entity": "employee",
            "Type": "sync",
            "Status": status,
            "StateUpdate": {"done": 3},
            "ETag": "e4",
        }
        for kind, status in (
            ("JobUpdated", "exporting"),
            ("JobCompleted", "completed"),
            ("JobFailed", "failed"),
        )
    },
    "JobCanceled": {
        "MessageType": "JobCanceled",
        "JobId": "job-1",
        "UpdateId": "3",
        "Service": "hr",
        "Entity": "employee",
        "Type": "sync",
        "Status": "canceled",
        "ETag": "e4",
    },
}


class TestSeedInterop:
    """Messages with only the seed's fields, from another implementation, decode with defaults."""

    def test_a_seed_job_started_takes_the_documented_defaults(self) -> None:
        """A seed-only JobStarted gets EventId JobId/ETag, the unknown time, version 1, {} state."""
        event = wire.decode_event(SEED_EVENTS["JobStarted"])

        assert (
            JobStarted(
                event_id="job-1/e1",
                job_id="job-1",
                service="hr",
                entity="employee",
                type="sync",
                status="started",
                etag="e1",
                version=1,
                at=datetime(1970, 1, 1, tzinfo=UTC),
                display_name="",
                description="",
                input=freeze({"file": "hr.csv"}, field="input"),
                state=cast("JsonObject", freeze({}, field="state")),
            )
            == event
        )
        assert wire.UNKNOWN_TIME == event.at

    @pytest.mark.parametrize("kind", ["JobUpdated", "JobCompleted", "JobFailed", "JobCanceled"])
    def test_a_seed_change_event_decodes_with_its_string_update_id(self, kind: str) -> None:
        """Every seed change event decodes: UpdateId "3" is 3, the version 4, names unchanged."""
        event = wire.decode_event(SEED_EVENTS[kind])

        assert (kind, "job-1/e4", 3, 4, None, None, wire.UNKNOWN_TIME) == (
            type(event).__name__,
            event.event_id,
            event.update_id,  # type: ignore[union-attr]
            event.version,
            event.display_name,
            event.description,
            event.at,
        )

    def test_a_seed_change_event_keeps_its_state_update(self) -> None:
        """The seed's StateUpdate of a JobUpdated is read as given."""
        event = wire.decode_event(SEED_EVENTS["JobUpdated"])
        assert isinstance(event, JobUpdated)
        assert {"done": 3} == event.state_update

    def test_keys_that_are_present_are_never_replaced_by_defaults(self) -> None:
        """A message that carries EventId, Version and At keeps them."""
        message = SEED_EVENTS["JobUpdated"] | {"EventId": "ev", "Version": 9, "At": AT_TEXT}
        event = wire.decode_event(message)
        assert ("ev", 9, AT) == (event.event_id, event.version, event.at)

    def test_a_seed_job_decodes(self) -> None:
        """A seed Job (no State, Version or times) gets {}, version 1 and unknown times."""
        message = job_message()
        for key in ("State", "Version", "CreatedAt", "UpdatedAt"):
            del message[key]
        job = wire.decode_job(message)
        assert ({}, 1, wire.UNKNOWN_TIME, wire.UNKNOWN_TIME) == (
            job.state,
            job.version,
            job.created_at,
            job.updated_at,
        )

    @pytest.mark.parametrize("kind", sorted(SEED_EVENTS))
    def test_a_seed_event_has_no_actor(self, kind: str) -> None:
        """A seed-only event of every kind decodes with actor None (no Actor key)."""
        assert "Actor" not in SEED_EVENTS[kind]
        assert None is wire.decode_event(SEED_EVENTS[kind]).actor

    def test_a_job_without_started_by_was_started_by_no_one(self) -> None:
        """A Job message without StartedBy decodes with started_by None."""
        message = job_message()
        del message["StartedBy"]
        assert None is wire.decode_job(message).started_by

    def test_an_update_without_actor_has_none(self) -> None:
        """A JobUpdate message without Actor decodes with actor None."""
        message = update_message()
        del message["Actor"]
        assert None is wire.decode_update(message).actor

    def test_a_seed_job_update_decodes(self) -> None:
        """A seed JobUpdate (JobId, UpdateId, Status, StateUpdate, UpdateType) decodes."""
        seed = {
            "JobId": "job-1",
            "UpdateId": "2",
            "Status": "x",
            "StateUpdate": None,
            "UpdateType": 0,
        }
        assert JobUpdate(
            job_id="job-1",
            update_id=2,
            update_type=UpdateType.UPDATED,
            status="x",
            state_update=None,
            display_name=None,
            description=None,
            etag="",
            at=wire.UNKNOWN_TIME,
        ) == wire.decode_update(seed)

    @pytest.mark.parametrize("value", ["3", 3])
    def test_update_id_is_read_as_a_string_or_a_number(self, value: object) -> None:
        """UpdateId "3" and 3 read the same; encode writes the number."""
        message = update_message() | {"UpdateId": value}
        update = wire.decode_update(message)
        assert (3, 3) == (update.update_id, wire.encode(update)["UpdateId"])

    @pytest.mark.parametrize("value", ["3x", "-1", "03", " 3", "", "1e3", "99999999999999999"])
    def test_an_update_id_string_that_is_not_a_number_is_refused(self, value: str) -> None:
        """A string UpdateId must be plain decimal digits within the I-JSON range."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_update(update_message() | {"UpdateId": value})
        assert ("JobUpdate", "/UpdateId") == (caught.value.field, caught.value.path)


class TestReferenceRejections:
    """The decoder refuses what its reference says it refuses."""

    @pytest.mark.parametrize("state", [[1, 2], "text", 3, True])
    def test_a_start_job_whose_state_is_not_an_object_is_refused(self, state: object) -> None:
        """StartJob's State must be an object."""
        error = decode_error(start_job_message() | {"State": state})
        assert ("StartJob", "/State") == (error.field, error.path)
        assert error.reason.startswith("must be a JSON object, not ")

    @pytest.mark.parametrize("kind", ["UpdateJob", "CompleteJob", "FailJob"])
    def test_an_array_state_update_is_refused(self, kind: str) -> None:
        """A command's StateUpdate that is an array is refused at /StateUpdate."""
        message = {"MessageType": kind, "JobId": "j", "ETag": "e", "StateUpdate": [1]}
        error = decode_error(message)
        assert (kind, "/StateUpdate", "must be a JSON object, not an array") == (
            error.field,
            error.path,
            error.reason,
        )

    @pytest.mark.parametrize(
        ("key", "meant"),
        [("Jobid", "JobId"), ("job_id", "JobId"), ("StateUpdat", "StateUpdate"), ("Etag", "ETag")],
    )
    def test_a_misspelled_key_is_unknown_with_a_suggestion(self, key: str, meant: str) -> None:
        """A misspelled key is reported as unknown, naming the key it resembles."""
        message = {"MessageType": "UpdateJob", "JobId": "j", "ETag": "e", "StateUpdate": {}}
        message[key] = message.pop(meant)
        error = decode_error(message)
        assert ("UpdateJob", f"/{key}") == (error.field, error.path)
        assert error.reason.startswith(f"unknown key {key!r}; did you mean {meant!r}? ")

    def test_an_unknown_key_like_no_other_has_no_suggestion(self) -> None:
        """A key that resembles no known one is unknown, without a guess."""
        error = decode_error(start_job_message() | {"Priority": 1})
        assert "did you mean" not in error.reason


class TestGetJobById:
    """The seed's GetJobById query has a message form."""

    def test_it_round_trips(self) -> None:
        """Its wire form is MessageType GetJobById and JobId, and it reads back."""
        query = jobledger.GetJobById(job_id="job-1")
        assert {"MessageType": "GetJobById", "JobId": "job-1"} == wire.encode(query)
        assert query == wire.decode_query(wire.dumps(query))

    @pytest.mark.parametrize(
        ("message", "field", "path"),
        [
            ({"JobId": "j"}, "query", "/MessageType"),
            ({"MessageType": "GetJob", "JobId": "j"}, "query", "/MessageType"),
            ({"MessageType": "GetJobById"}, "GetJobById", "/JobId"),
            ({"MessageType": "GetJobById", "JobId": 4}, "GetJobById", "/JobId"),
            ({"MessageType": "GetJobById", "Jobid": "j"}, "GetJobById", "/Jobid"),
        ],
    )
    def test_bad_queries_are_refused(self, message: object, field: str, path: str) -> None:
        """A query without its type, its JobId, or with a wrong one is refused by key."""
        with pytest.raises(WireFormatError) as caught:
            wire.decode_query(message)  # type: ignore[arg-type]
        assert (field, path) == (caught.value.field, caught.value.path)
