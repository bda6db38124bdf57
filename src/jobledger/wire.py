"""The wire format: commands, events, jobs and updates as JSON, with the seed's field names.

Every field goes on the wire under its PascalCase name from the seed (``JobId``,
``DisplayName``, ``StateUpdate``, ``ETag``, ``UpdateId``, ...), plus jobledger's
own ``EventId``, ``Version``, ``RequestId``, ``At``, ``CreatedAt``,
``UpdatedAt``, ``Actor`` (who acted: on commands, events and ``JobUpdate``)
and ``StartedBy`` (who started a ``Job``). :func:`encode` always writes
``Actor`` and ``StartedBy``, as ``null`` when no one was named. Times are ISO 8601 strings with a UTC offset; ``UpdateType`` is
its number (0 updated, 1 completed, 2 failed, 3 canceled). Commands and events
say what they are in ``MessageType``, so one decoder reads any of them. A
command:

>>> from jobledger import wire
>>> command = wire.decode_command(
...     '{"MessageType": "UpdateJob", "JobId": "42", "ETag": "e1",'
...     ' "Status": "exporting", "StateUpdate": {"done": 10}}'
... )
>>> command
UpdateJob(job_id='42', etag='e1', status='exporting', display_name=None, description=None, state_update={'done': 10}, request_id=None, actor=None)
>>> wire.encode(command)["MessageType"]
'UpdateJob'

An event:

>>> event = wire.decode_event(
...     {
...         "MessageType": "JobCompleted",
...         "EventId": "ev-7",
...         "JobId": "42",
...         "UpdateId": 2,
...         "Service": "hr",
...         "Entity": "employee",
...         "Type": "sync",
...         "Status": "completed",
...         "DisplayName": None,
...         "Description": None,
...         "StateUpdate": {"done": 42},
...         "ETag": "e3",
...         "Version": 3,
...         "At": "2024-05-01T12:00:00+00:00",
...     }
... )
>>> print(wire.dumps(event))
{"MessageType":"JobCompleted","EventId":"ev-7","JobId":"42","Service":"hr","Entity":"employee","Type":"sync","Status":"completed","ETag":"e3","Version":3,"At":"2024-05-01T12:00:00+00:00","Actor":null,"UpdateId":2,"DisplayName":null,"Description":null,"StateUpdate":{"done":42}}

**Messages from another implementation of the seed** decode too: a message
with only the seed's fields takes, for what jobledger adds, the defaults
below (a key that is present is never replaced). ``UpdateId``, which the
seed's events write as a string, is read from ``"3"`` as from ``3`` (decimal
digits only); :func:`encode` writes it as a number, as the seed's
``JobUpdate`` entity types it, because it counts updates and numbers keep
their order.

=================  =============================================================
absent key         default
=================  =============================================================
``EventId``        ``"<JobId>/<ETag>"`` (an ETag is never reused for a job, so it
                   is unique per change)
``At``             :data:`UNKNOWN_TIME` (1970-01-01T00:00:00+00:00)
``Version``        1 for ``JobStarted`` and ``Job``; ``UpdateId + 1`` for a change
``DisplayName``,   ``""`` on ``JobStarted`` and ``Job``; ``null`` (unchanged) on
``Description``    change events and ``JobUpdate``
``State``          ``{}`` on ``JobStarted`` and ``Job``
``StateUpdate``    ``null`` on ``JobUpdated``, ``JobCompleted``, ``JobFailed``
``CreatedAt``,     :data:`UNKNOWN_TIME` on ``Job``
``UpdatedAt``
``ETag``           ``""`` on ``JobUpdate`` (the seed's has none)
``Actor``          ``null`` (no one named) on every command, event and
                   ``JobUpdate``
``StartedBy``      ``null`` on ``Job``
=================  =============================================================

Decoding is strict otherwise. A message with an unknown or missing key
(a misspelled key is reported as unknown, with the key it resembles: "did
you mean 'JobId'?"), a value of the wrong type, a ``StartJob`` whose
``State`` or a command whose ``StateUpdate`` is not an object, an unknown
``MessageType``, a time without a UTC offset, or text that is not JSON raises :class:`~jobledger.WireFormatError` whose ``field`` is
the message type (``"command"`` or ``"event"`` when the type itself is wrong,
``"Job"`` or ``"JobUpdate"`` for those) and whose ``path`` is the JSON Pointer
of the offending key. So does a JSON payload (``Input``, ``State``,
``StateUpdate``) that breaks the ledger's I-JSON rules: NaN, an infinity, an
integer beyond +-(2**53-1), a lone surrogate or NUL, a duplicate key; its
``path`` goes into the payload (``"/StateUpdate/ratio"``). Because
:class:`~jobledger.WireFormatError` is an :class:`~jobledger.InvalidJobDataError`,
code that catches the latter for the ledger's own errors catches these too.
Payloads come back read-only (:class:`~jobledger.JsonObject`, ...); the ledger
checks its configured size and depth limits when it handles a command.
"""  # noqa: E501  (the doctest output is one line of JSON)

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from jobledger._core.commands import (
    CancelJob,
    Command,
    CompleteJob,
    FailJob,
    StartJob,
    UpdateJob,
)
from jobledger._core.errors import InvalidJobDataError, WireFormatError
from jobledger._core.events import EVENT_TYPES, JobEvent, JobStarted
from jobledger._core.job import Job, JobUpdate, UpdateType
from jobledger._core.jsondoc import (
    HARD_MAX_DEPTH,
    MAX_SAFE_INTEGER,
    JsonArray,
    JsonObject,
    JsonValue,
    Limits,
    freeze,
    thaw,
)
from jobledger._core.query import GetJobById

__all__ = [
    "MESSAGE_TYPE",
    "UNKNOWN_TIME",
    "Serializable",
    "decode_command",
    "decode_event",
    "decode_job",
    "decode_query",
    "decode_update",
    "dumps",
    "encode",
]

#: The key that names a command's or event's type on the wire.
MESSAGE_TYPE = "MessageType"

#: The time a decoded message takes when it carries none (the seed's messages have no times).
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)

#: Everything :func:`encode` and :func:`dumps` accept.
Serializable: TypeAlias = Command | JobEvent | Job | JobUpdate | GetJobById

# Each attribute's name on the wire: the seed's names, and ours in the same style.
_WIRE_NAMES = {
    "job_id": "JobId",
    "event_id": "EventId",
    "service": "Service",
    "entity": "Entity",
    "type": "Type",
    "display_name": "DisplayName",
    "description": "Description",
    "status": "Status",
    "input": "Input",
    "state": "State",
    "state_update": "StateUpdate",
    "etag": "ETag",
    "version": "Version",
    "update_id": "UpdateId",
    "update_type": "UpdateType",
    "at": "At",
    "created_at": "CreatedAt",
    "updated_at": "UpdatedAt",
    "request_id": "RequestId",
    "actor": "Actor",
    "started_by": "StartedBy",
}

_COMMAND_TYPES: tuple[type[Command], ...] = (StartJob, UpdateJob, CompleteJob, FailJob, CancelJob)
_ALL_TYPES: tuple[type, ...] = (*_COMMAND_TYPES, *EVENT_TYPES, Job, JobUpdate, GetJobById)

# The wire checks only the hard caps on payloads, as command constructors do:
# a ledger configured with larger limits must still read its own events, and a
# ledger that handles a command checks its own limits then.
_PAYLOAD_LIMITS = Limits(max_depth=HARD_MAX_DEPTH, max_bytes=2**62)

# The union that ``JsonValue`` names, with its forward references resolved, as
# attrs.resolve_types leaves it on the fields that use it.
_JSON_VALUE: Any = typing.Union[None, bool, int, float, str, JsonArray, JsonObject]  # noqa: UP007  (must equal the resolved alias)


def _wire_names(cls: type) -> dict[str, str]:
    """Each attribute of ``cls`` and its key on the wire (a Job's ``id`` is ``JobId``)."""
    names = {}
    for field in attrs.fields(cls):
        names[field.name] = (
            "JobId" if (cls is Job and field.name == "id") else _WIRE_NAMES[field.name]
        )
    return names


# -- hooks for the field types -------------------------------------------------------


def _structure_str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        msg = f"must be a string, not {_json_kind(value)}"
        raise TypeError(msg)
    if "\x00" in value:
        msg = "contains a NUL character (U+0000)"
        raise ValueError(msg)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        msg = f"has a lone surrogate at character {err.start}"
        raise ValueError(msg) from None
    return str.__str__(value)


def _structure_int(value: object, _type: object) -> int:
    if type(value) is not int:
        msg = f"must be an integer, not {_json_kind(value)}"
        raise TypeError(msg)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        msg = "is outside the I-JSON integer range -(2**53-1)..2**53-1"
        raise ValueError(msg)
    return value


def _structure_update_type(value: object, _type: object) -> UpdateType:
    numbers = ", ".join(f"{member.value} ({member.name.lower()})" for member in UpdateType)
    if type(value) is not int:
        msg = f"must be one of the numbers {numbers}, not {_json_kind(value)}"
        raise TypeError(msg)
    try:
        return UpdateType(value)
    except ValueError:
        msg = f"must be one of the numbers {numbers}, not {value}"
        raise ValueError(msg) from None


def _structure_datetime(value: object, _type: object) -> datetime:
    if not isinstance(value, str):
        msg = f"must be an ISO 8601 date and time string, not {_json_kind(value)}"
        raise TypeError(msg)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{value!r} is not an ISO 8601 date and time"
        raise ValueError(msg) from None
    if when.tzinfo is None or when.utcoffset() is None:
        msg = f"{value!r} has no UTC offset; write it like 2024-05-01T12:00:00+00:00"
        raise ValueError(msg)
    return when


def _structure_json(value: object, _type: object) -> JsonValue:
    # The freezer's field name is replaced by the wire key when its error is translated.
    return freeze(value, field="", limits=_PAYLOAD_LIMITS)


def _structure_json_object(value: object, _type: object) -> JsonObject:
    frozen = _structure_json(value, _type)
    if not isinstance(frozen, JsonObject):
        msg = f"must be a JSON object, not {_json_kind(frozen)}"
        raise TypeError(msg)
    result: JsonObject = frozen
    return result


def _unstructure_datetime(value: datetime) -> str:
    return value.isoformat()


_JSON_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (Mapping, "an object"),
    ((list, tuple), "an array"),
)


def _json_kind(value: object) -> str:
    """What ``value`` is, in JSON's words, for error messages."""
    if value is None:
        return "null"
    for types, kind in _JSON_KINDS:
        if isinstance(value, types):
            return kind
    return f"a {type(value).__name__}"


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(UpdateType, _structure_update_type)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(JsonObject, _structure_json_object)
    converter.register_structure_hook(_JSON_VALUE, _structure_json)
    converter.register_unstructure_hook(datetime, _unstructure_datetime)
    converter.register_unstructure_hook(UpdateType, int)
    converter.register_unstructure_hook(JsonObject, thaw)
    converter.register_unstructure_hook(JsonArray, thaw)
    converter.register_unstructure_hook(_JSON_VALUE, thaw)
    for cls in _ALL_TYPES:
        attrs.resolve_types(cls)
        # Typed loosely: mypy would match the overrides against cattrs' own keywords.
        renames: dict[str, Any] = {
            name: override(rename=key) for name, key in _wire_names(cls).items()
        }
        converter.register_structure_hook(
            cls,
            make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **renames),
        )
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, **renames)
        )
    configure_tagged_union(Command, converter, tag_name=MESSAGE_TYPE)
    configure_tagged_union(JobEvent, converter, tag_name=MESSAGE_TYPE)
    return converter


_converter = _make_converter()
_COMMAND_NAMES = {cls.__name__: cls for cls in _COMMAND_TYPES}
_EVENT_NAMES = {cls.__name__: cls for cls in EVENT_TYPES}
_QUERY_NAMES = {"GetJobById": GetJobById}


# -- errors --------------------------------------------------------------------------


def _pointer_part(key: object) -> str:
    text = str(key).replace("~", "~0").replace("/", "~1")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _unknown_key(
    cause: ForbiddenExtraKeysError, names: dict[str, str], message_type: str
) -> WireFormatError:
    """The error for the first unknown key, saying which known key it resembles."""
    unknown = min(map(str, cause.extra_fields))
    allowed = list(names.values())
    by_case = {key.casefold(): key for key in allowed}
    near = by_case.get(unknown.casefold().replace("_", "")) or next(
        iter(difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.75)), None
    )
    hint = f"did you mean {near!r}? " if near is not None else ""
    return WireFormatError(
        message_type,
        "/" + _pointer_part(unknown),
        f"unknown key {unknown!r}; {hint}{message_type} takes only {', '.join(allowed)}",
    )


def _translate(err: ClassValidationError, message_type: str) -> WireFormatError:
    """The first problem cattrs found, as a WireFormatError naming its key.

    An unknown key comes first: a misspelled key is also a missing one, and
    the misspelling is what the sender must fix.
    """
    names = _wire_names(err.cl)
    with_notes, without_notes = err.group_exceptions()
    for cause in without_notes:
        if isinstance(cause, ForbiddenExtraKeysError):
            return _unknown_key(cause, names, message_type)
    for cause, note in with_notes:
        path = "/" + _pointer_part(names.get(note.name, note.name))
        if isinstance(cause, InvalidJobDataError):
            return WireFormatError(message_type, path + cause.path, cause.reason)
        reason = "this required key is missing" if isinstance(cause, KeyError) else str(cause)
        return WireFormatError(message_type, path, reason)
    for cause in without_notes:
        if isinstance(cause, InvalidJobDataError):
            return WireFormatError(message_type, cause.path, cause.reason)
    return WireFormatError(message_type, "", str(err))


class _DuplicateKeyError(ValueError):
    """A JSON text has an object with the same key twice."""


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The ``object_pairs_hook`` that reads a JSON object, refusing a key given twice.

    Not in ``__all__``: shared with the service's JSON (``jobledger.http``).

    Raises:
        ValueError: a key appears twice in the object.
    """
    members: dict[str, Any] = {}
    for key, value in pairs:
        if key in members:
            # I-JSON (RFC 7493, 2.3) forbids duplicate names: readers disagree on which wins.
            msg = f"the key {key!r} appears twice in one object"
            raise _DuplicateKeyError(msg)
        members[key] = value
    return members


def _message(
    data: str | bytes | bytearray | Mapping[str, Any], message_type: str
) -> dict[str, Any]:
    """The JSON object ``data`` holds, or a WireFormatError."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise WireFormatError(message_type, "", f"the text is not UTF-8: {err}") from None
    if isinstance(data, str):
        try:
            data = json.loads(data, object_pairs_hook=reject_duplicate_keys)
        except _DuplicateKeyError as err:
            raise WireFormatError(message_type, "", str(err)) from None
        except json.JSONDecodeError as err:
            raise WireFormatError(message_type, "", f"the text is not JSON: {err}") from None
        except (ValueError, RecursionError) as err:
            raise WireFormatError(message_type, "", f"the text cannot be read: {err}") from None
    if not isinstance(data, Mapping):
        raise WireFormatError(message_type, "", f"must be a JSON object, not {_json_kind(data)}")
    return dict(data)


def _message_type(kind: str, message: Mapping[str, Any], known: Mapping[str, type]) -> str:
    """The message's ``MessageType`` if it is one of ``known``; else a WireFormatError."""
    expected = ", ".join(sorted(known))
    path = "/" + MESSAGE_TYPE
    if MESSAGE_TYPE not in message:
        reason = f"this required key is missing; expected one of {expected}"
        raise WireFormatError(kind, path, reason)
    tag = message[MESSAGE_TYPE]
    if not isinstance(tag, str):
        reason = f"must be a string naming the {kind} type, not {_json_kind(tag)}"
        raise WireFormatError(kind, path, reason)
    if tag not in known:
        reason = f"{tag!r} is not a known {kind} type; expected one of {expected}"
        raise WireFormatError(kind, path, reason)
    return tag


def _structure(message: dict[str, Any], as_type: Any, message_type: str) -> Any:  # noqa: ANN401  (cattrs returns the type asked for)
    try:
        return _converter.structure(message, as_type)
    except ClassValidationError as err:
        raise _translate(err, message_type) from err


# -- messages of the seed ------------------------------------------------------------

_DIGITS = re.compile(r"0|[1-9][0-9]{0,15}")
_UNKNOWN_TIME_TEXT = UNKNOWN_TIME.isoformat()


def _update_id(message: dict[str, Any], message_type: str) -> None:
    """Read a decimal string ``UpdateId`` (the seed's events write it so) as its number."""
    value = message.get("UpdateId")
    if not isinstance(value, str):
        return
    if _DIGITS.fullmatch(value) is None or int(value) > MAX_SAFE_INTEGER:
        raise WireFormatError(
            message_type,
            "/UpdateId",
            f"{value!r} is not an update number (a number, or a string of decimal digits)",
        )
    message["UpdateId"] = int(value)


def _seed_defaults(message: dict[str, Any], cls: type, message_type: str) -> dict[str, Any]:
    """``message`` with jobledger's own keys filled in where a seed-only message lacks them."""
    _update_id(message, message_type)
    defaults: dict[str, Any] = {}
    if cls in EVENT_TYPES:
        job_id, etag = message.get("JobId"), message.get("ETag")
        if isinstance(job_id, str) and isinstance(etag, str):
            defaults["EventId"] = f"{job_id}/{etag}"
        defaults["At"] = _UNKNOWN_TIME_TEXT
        defaults["Actor"] = None
        if cls is JobStarted:
            defaults |= {"Version": 1, "DisplayName": "", "Description": "", "State": {}}
        else:
            update_id = message.get("UpdateId")
            if type(update_id) is int:
                defaults["Version"] = update_id + 1
            defaults |= {"DisplayName": None, "Description": None}
            if "state_update" in _FIELDS[cls]:
                defaults["StateUpdate"] = None
    elif cls is Job:
        defaults = {
            "DisplayName": "",
            "Description": "",
            "State": {},
            "Version": 1,
            "CreatedAt": _UNKNOWN_TIME_TEXT,
            "UpdatedAt": _UNKNOWN_TIME_TEXT,
            "StartedBy": None,
        }
    elif cls is JobUpdate:
        defaults = {
            "DisplayName": None,
            "Description": None,
            "ETag": "",
            "At": _UNKNOWN_TIME_TEXT,
            "Actor": None,
        }
    return defaults | message


_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(field.name for field in attrs.fields(cls)) for cls in _ALL_TYPES
}


def _check_command_payloads(command: Command, message_type: str) -> None:
    """A command's ``State`` and ``StateUpdate`` are objects (or absent), as its reference says."""
    if isinstance(command, StartJob):
        key, value = "State", command.state
    elif isinstance(command, CancelJob):
        return
    else:
        key, value = "StateUpdate", command.state_update
        if value is None:
            return
    if not isinstance(value, JsonObject):
        raise WireFormatError(
            message_type, f"/{key}", f"must be a JSON object, not {_json_kind(value)}"
        )


# -- the public API ------------------------------------------------------------------


def encode(value: Serializable) -> dict[str, Any]:
    """Return ``value`` as a JSON-compatible dict with the wire's field names.

    Commands and events start with their ``MessageType``. The result is made of
    plain, mutable dicts and lists that share nothing with ``value``.

    Raises:
        TypeError: if ``value`` is not a command, event, :class:`~jobledger.Job`,
            :class:`~jobledger.JobUpdate` or :class:`~jobledger.GetJobById`.

    >>> from jobledger import CancelJob
    >>> encode(CancelJob(job_id="42", etag="e1"))
    {'MessageType': 'CancelJob', 'JobId': '42', 'ETag': 'e1', 'DisplayName': None, 'Description': None, 'RequestId': None, 'Actor': None}
    """  # noqa: E501
    cls = type(value)
    if cls in _COMMAND_NAMES.values() or cls in _EVENT_NAMES.values():
        union: Any = Command if cls in _COMMAND_NAMES.values() else JobEvent
        fields: dict[str, Any] = _converter.unstructure(value, unstructure_as=union)
        return {MESSAGE_TYPE: fields.pop(MESSAGE_TYPE), **fields}
    if cls is Job or cls is JobUpdate:
        result: dict[str, Any] = _converter.unstructure(value)
        return result
    if cls is GetJobById:
        return {MESSAGE_TYPE: "GetJobById", **_converter.unstructure(value)}
    msg = f"not a jobledger command, event, Job, JobUpdate or GetJobById: {cls.__name__}"
    raise TypeError(msg)


def dumps(value: Serializable) -> str:
    """Return ``value`` as compact JSON text (UTF-8 ready, non-ASCII kept as is).

    Raises:
        TypeError: as :func:`encode`.

    >>> from jobledger import CancelJob
    >>> dumps(CancelJob(job_id="42", etag="*", description="by the operator"))
    '{"MessageType":"CancelJob","JobId":"42","ETag":"*","DisplayName":null,"Description":"by the operator","RequestId":null,"Actor":null}'
    """  # noqa: E501
    return json.dumps(encode(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def decode_command(data: str | bytes | bytearray | Mapping[str, Any]) -> Command:
    """Read a command from JSON text or an already-parsed JSON object.

    Optional fields may be left out (they take their defaults) or be ``null``.

    Raises:
        WireFormatError: naming the command type (``"command"`` when
            ``MessageType`` is missing or unknown) and the JSON Pointer of the
            first offending key; see the module documentation for every case.

    >>> decode_command({"MessageType": "CancelJob", "JobId": "42", "ETag": "e1"})
    CancelJob(job_id='42', etag='e1', display_name=None, description=None, request_id=None, actor=None)
    >>> decode_command('{"MessageType": "CancelJob", "JobId": 42, "ETag": "e1"}')
    Traceback (most recent call last):
    ...
    jobledger._core.errors.WireFormatError: invalid CancelJob at /JobId: must be a string, not a number
    """  # noqa: E501
    message = _message(data, "command")
    message_type = _message_type("command", message, _COMMAND_NAMES)
    command: Command = _structure(message, Command, message_type)
    _check_command_payloads(command, message_type)
    return command


def decode_event(data: str | bytes | bytearray | Mapping[str, Any]) -> JobEvent:
    """Read an integration event from JSON text or an already-parsed JSON object.

    Every field must be present; those that may be empty are ``null``.

    Raises:
        WireFormatError: naming the event type (``"event"`` when
            ``MessageType`` is missing or unknown) and the JSON Pointer of the
            first offending key.
    """
    message = _message(data, "event")
    message_type = _message_type("event", message, _EVENT_NAMES)
    message = _seed_defaults(message, _EVENT_NAMES[message_type], message_type)
    event: JobEvent = _structure(message, JobEvent, message_type)
    return event


def decode_job(data: str | bytes | bytearray | Mapping[str, Any]) -> Job:
    """Read a :class:`~jobledger.Job` (the seed's Job entity) from JSON.

    A job carries no ``MessageType``; every field must be present, and its
    times must have a UTC offset.

    Raises:
        WireFormatError: with ``field`` ``"Job"`` and the JSON Pointer of the
            first offending key.
    """
    job: Job = _structure(_seed_defaults(_message(data, "Job"), Job, "Job"), Job, "Job")
    return job


def decode_update(data: str | bytes | bytearray | Mapping[str, Any]) -> JobUpdate:
    """Read a :class:`~jobledger.JobUpdate` from JSON; ``UpdateType`` is a number 0..3.

    Raises:
        WireFormatError: with ``field`` ``"JobUpdate"`` and the JSON Pointer of
            the first offending key.
    """
    message = _seed_defaults(_message(data, "JobUpdate"), JobUpdate, "JobUpdate")
    update: JobUpdate = _structure(message, JobUpdate, "JobUpdate")
    return update


def decode_query(data: str | bytes | bytearray | Mapping[str, Any]) -> GetJobById:
    """Read the seed's GetJobById query from JSON: ``{"MessageType": "GetJobById", "JobId": ...}``.

    Its answer is the job (:func:`encode` of :meth:`jobledger.Jobs.get`'s result).

    >>> decode_query('{"MessageType": "GetJobById", "JobId": "42"}')
    GetJobById(job_id='42')

    Raises:
        WireFormatError: ``field`` ``"query"`` when ``MessageType`` is missing
            or not ``GetJobById``, else ``"GetJobById"``, and the JSON Pointer
            of the first offending key.
    """
    message = _message(data, "query")
    _message_type("query", message, _QUERY_NAMES)
    del message[MESSAGE_TYPE]
    query: GetJobById = _structure(message, GetJobById, "GetJobById")
    return query
