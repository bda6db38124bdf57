"""How jobledger's values become rows of a SQL database, and back, for every SQL backend.

The SQLite and PostgreSQL repositories store the same columns with the same
encodings, so a job reads back the same from either:

* **JSON** (``input``, ``state``, ``state_update``, the job a request record
  answers with) is stored as compact UTF-8 JSON text (:func:`encode_json`);
  PostgreSQL takes the same text into ``jsonb``. Reading it back
  (:func:`decode_json`) freezes it again into read-only
  :class:`~jobledger.JsonObject` and :class:`~jobledger.JsonArray` values.
* **Timestamps** are stored as whole microseconds since 1970-01-01 UTC in a
  64-bit integer column (:func:`to_micros`): exact (a ``datetime`` has
  microsecond resolution), sortable as numbers, and identical in both
  databases. They read back as UTC datetimes (:func:`from_micros`), equal to
  the ones saved whatever their time zone was.
* **Event kinds** are stored by the stable names in :data:`EVENT_KIND_NAMES`
  (``"started"``, ``"updated"``, ...), never by Python class names.

Each ``*_COLUMNS`` tuple names a table's columns in the order the matching
``*_row`` function returns values and the ``*_from_row`` function reads them,
so a backend builds its statements from the tuples and binds every value as a
parameter. :func:`find_clause` writes the ``WHERE ... ORDER BY ... LIMIT``
of a listing for either driver's placeholder style.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

from jobledger._core.decide import RequestRecord, save_refusal
from jobledger._core.errors import StorageError
from jobledger._core.events import (
    JobCanceled,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobStarted,
    JobUpdated,
)
from jobledger._core.job import Job, JobUpdate, UpdateType
from jobledger._core.jsondoc import HARD_MAX_DEPTH, JsonObject, JsonValue, Limits, freeze
from jobledger._core.parked import ParkedEvent

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger._core.decide import Change
    from jobledger._core.query import JobQuery

_V = TypeVar("_V")

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "EVENT_KIND_NAMES",
    "JOB_COLUMNS",
    "REQUEST_COLUMNS",
    "UPDATE_COLUMNS",
    "Row",
    "decode_json",
    "decode_row",
    "encode_json",
    "encode_optional",
    "event_from_row",
    "event_row",
    "find_clause",
    "from_micros",
    "job_document",
    "job_from_document",
    "job_from_row",
    "job_row",
    "parked_from_row",
    "refuse_save",
    "request_from_row",
    "request_row",
    "to_micros",
    "update_from_row",
    "update_row",
]

#: A row as the drivers give and take it: one value per column, in column order.
Row: TypeAlias = Sequence[Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# What was stored already passed the ledger's limits when it was saved; reading
# it back only needs the hard caps (a ledger's limits may since have shrunk).
_STORED_LIMITS = Limits(max_depth=HARD_MAX_DEPTH, max_bytes=2**62)

# One encoder for every document, rather than json.dumps making one per call. It
# skips the check for cycles: a frozen document is a tree, built bottom up.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)


def _one_shot() -> Callable[[object, int], Any] | None:
    """The C encoder that ``_ENCODER.encode`` makes anew for every document, made once.

    Its arguments are the encoder's settings, as :meth:`json.JSONEncoder.iterencode`
    passes them. ``None`` where the interpreter has no C accelerator, or it takes
    other arguments: :func:`encode_json` then calls ``_ENCODER.encode``.
    """
    try:
        import _json  # noqa: PLC0415  (CPython's accelerator: optional)

        return _json.make_encoder(
            None,  # no cycle check, as check_circular=False
            _ENCODER.default,
            _json.encode_basestring,  # ensure_ascii=False
            None,
            _ENCODER.key_separator,
            _ENCODER.item_separator,
            _ENCODER.sort_keys,
            _ENCODER.skipkeys,
            _ENCODER.allow_nan,
        )
    except (ImportError, TypeError):  # pragma: no cover  (CPython has it, with these arguments)
        return None


_ONE_SHOT = _one_shot()

#: The stored name of each event type.
EVENT_KIND_NAMES: Mapping[type[JobEvent], str] = MappingProxyType(
    {
        JobStarted: "started",
        JobUpdated: "updated",
        JobCompleted: "completed",
        JobFailed: "failed",
        JobCanceled: "canceled",
    }
)

#: The event type of each stored name.
EVENT_KINDS: Mapping[str, type[JobEvent]] = MappingProxyType(
    {name: kind for kind, name in EVENT_KIND_NAMES.items()}
)

#: The ``jobs`` table. ``phase`` is derived from ``status`` and stored so that
#: listings can filter on it through an index.
JOB_COLUMNS = (
    "id",
    "service",
    "entity",
    "type",
    "display_name",
    "description",
    "status",
    "phase",
    "input",
    "state",
    "etag",
    "version",
    "created_at",
    "updated_at",
    "started_by",
)

#: The ``updates`` table; ``(job_id, update_id)`` is its key.
UPDATE_COLUMNS = (
    "job_id",
    "update_id",
    "update_type",
    "status",
    "state_update",
    "display_name",
    "description",
    "etag",
    "at",
    "actor",
)

#: The ``feed`` table's columns besides ``position``. Columns an event kind does
#: not have hold NULL: ``update_id`` for a start; ``input`` and ``state`` for a
#: change; ``state_update`` for a start or a cancel.
EVENT_COLUMNS = (
    "event_id",
    "kind",
    "job_id",
    "service",
    "entity",
    "type",
    "status",
    "etag",
    "version",
    "at",
    "update_id",
    "display_name",
    "description",
    "input",
    "state",
    "state_update",
    "actor",
)

#: The ``requests`` table; ``request_id`` is its key and ``job`` a JSON document
#: (see :func:`job_document`).
REQUEST_COLUMNS = ("request_id", "fingerprint", "job")


def encode_json(value: JsonValue) -> str:
    """The compact JSON text that stores ``value``; non-ASCII characters stay as they are.

    >>> encode_json(freeze({"name": "Zoë", "n": [1, 2.5, None]}, field="state"))
    '{"name":"Zoë","n":[1,2.5,null]}'
    """
    if _ONE_SHOT is None:  # see _one_shot
        return _ENCODER.encode(value)
    return "".join(_ONE_SHOT(value, 0))


def decode_json(text: str | bytes, *, field: str) -> JsonValue:
    """Read JSON text written by :func:`encode_json`; return it frozen (read-only).

    It is checked again on the way in, against the hard caps only, so that even
    a hand-edited database can never hand out a value the ledger would refuse.

    Raises:
        InvalidJobDataError: the stored text is not a JSON value jobledger accepts.

    >>> decode_json('{"a":[1,{"b":null}]}', field="state")
    {'a': [1, {'b': None}]}
    """
    return freeze(json.loads(text), field=field, limits=_STORED_LIMITS)


def _decode_object(text: str | bytes, *, field: str) -> JsonObject:
    value = decode_json(text, field=field)
    if not isinstance(value, JsonObject):
        msg = f"stored {field} is not a JSON object"
        raise TypeError(msg)
    return value


def _decode_optional_object(text: str | bytes | None, *, field: str) -> JsonObject | None:
    return None if text is None else _decode_object(text, field=field)


def encode_optional(value: JsonValue | None) -> str | None:
    """:func:`encode_json` of ``value``, or ``None`` for ``None`` (an absent document)."""
    return None if value is None else encode_json(value)


def to_micros(moment: datetime) -> int:
    """``moment`` as whole microseconds since 1970-01-01 UTC; a naive ``moment`` counts as UTC.

    >>> to_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC))
    1000005
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after 1970-01-01 UTC (see :func:`to_micros`).

    >>> from_micros(1000005)
    datetime.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=datetime.timezone.utc)
    """
    return _EPOCH + timedelta(microseconds=micros)


def job_row(job: Job) -> tuple[Any, ...]:
    """The values of :data:`JOB_COLUMNS` for ``job``."""
    return (
        job.id,
        job.service,
        job.entity,
        job.type,
        job.display_name,
        job.description,
        job.status,
        job.phase.value,
        encode_json(job.input),
        encode_json(job.state),
        job.etag,
        job.version,
        to_micros(job.created_at),
        to_micros(job.updated_at),
        job.started_by,
    )


def job_from_row(row: Row) -> Job:
    """The job stored in ``row`` (values in :data:`JOB_COLUMNS` order).

    JSON columns must come as text (``str`` or UTF-8 ``bytes``): a driver that
    decodes ``jsonb`` itself cannot tell a stored JSON string from JSON text, so
    select such columns as text (PostgreSQL: ``input::text``) or load ``jsonb`` as text.
    """
    (
        job_id,
        service,
        entity,
        type_,
        display_name,
        description,
        status,
        _phase,
        input_,
        state,
        etag,
        version,
        created_at,
        updated_at,
        started_by,
    ) = row
    return Job(
        id=job_id,
        service=service,
        entity=entity,
        type=type_,
        display_name=display_name,
        description=description,
        status=status,
        input=decode_json(input_, field="input"),
        state=_decode_object(state, field="state"),
        etag=etag,
        version=version,
        created_at=from_micros(created_at),
        updated_at=from_micros(updated_at),
        started_by=started_by,
    )


def update_row(update: JobUpdate, patch: str | None = None) -> tuple[Any, ...]:
    """The values of :data:`UPDATE_COLUMNS` for ``update``.

    ``patch`` is the text of its state update when the caller has encoded it
    already (a change's update and event carry the same patch).
    """
    return (
        update.job_id,
        update.update_id,
        int(update.update_type),
        update.status,
        encode_optional(update.state_update) if patch is None else patch,
        update.display_name,
        update.description,
        update.etag,
        to_micros(update.at),
        update.actor,
    )


def update_from_row(row: Row) -> JobUpdate:
    """The update stored in ``row`` (values in :data:`UPDATE_COLUMNS` order)."""
    (
        job_id,
        update_id,
        update_type,
        status,
        state_update,
        display_name,
        description,
        etag,
        at,
        actor,
    ) = row
    return JobUpdate(
        job_id=job_id,
        update_id=update_id,
        update_type=UpdateType(update_type),
        status=status,
        state_update=_decode_optional_object(state_update, field="state_update"),
        display_name=display_name,
        description=description,
        etag=etag,
        at=from_micros(at),
        actor=actor,
    )


def event_row(event: JobEvent, patch: str | None = None) -> tuple[Any, ...]:
    """The values of :data:`EVENT_COLUMNS` for ``event``; ``patch`` as for :func:`update_row`."""
    if isinstance(event, JobStarted):
        update_id = None
        input_: str | None = encode_json(event.input)
        state: str | None = encode_json(event.state)
        state_update = None
    else:
        update_id = event.update_id
        input_ = state = None
        if isinstance(event, JobCanceled):
            state_update = None
        else:
            state_update = encode_optional(event.state_update) if patch is None else patch
    return (
        event.event_id,
        EVENT_KIND_NAMES[type(event)],
        event.job_id,
        event.service,
        event.entity,
        event.type,
        event.status,
        event.etag,
        event.version,
        to_micros(event.at),
        update_id,
        event.display_name,
        event.description,
        input_,
        state,
        state_update,
        event.actor,
    )


def event_from_row(row: Row) -> JobEvent:
    """The event stored in ``row`` (values in :data:`EVENT_COLUMNS` order).

    Raises:
        KeyError: the row's ``kind`` is not one of :data:`EVENT_KINDS`.
    """
    (
        event_id,
        kind,
        job_id,
        service,
        entity,
        type_,
        status,
        etag,
        version,
        at,
        update_id,
        display_name,
        description,
        input_,
        state,
        state_update,
        actor,
    ) = row
    event_type = EVENT_KINDS[kind]
    common: dict[str, Any] = {
        "event_id": event_id,
        "job_id": job_id,
        "service": service,
        "entity": entity,
        "type": type_,
        "status": status,
        "etag": etag,
        "version": version,
        "at": from_micros(at),
        "actor": actor,
        "display_name": display_name,
        "description": description,
    }
    if event_type is JobStarted:
        return JobStarted(
            **common,
            input=decode_json(input_, field="input"),
            state=_decode_object(state, field="state"),
        )
    common["update_id"] = update_id
    if event_type is JobCanceled:
        return JobCanceled(**common)
    patch = _decode_optional_object(state_update, field="state_update")
    return event_type(**common, state_update=patch)  # type: ignore[call-arg]


def job_document(job: Job) -> str:
    """``job`` as one JSON text, for the job a request record answers with.

    Timestamps are in microseconds, as in the columns (see :func:`to_micros`).
    """
    document = dict(zip(JOB_COLUMNS, job_row(job), strict=True))
    document["input"] = job.input
    document["state"] = job.state
    del document["phase"]
    return encode_json(document)  # type: ignore[arg-type]


def job_from_document(text: str | bytes | Mapping[str, Any]) -> Job:
    """The job in a JSON text written by :func:`job_document`.

    A driver that decodes JSON columns itself (``jsonb``) may hand over the
    decoded mapping instead of the text; it is read the same way.
    """
    document = text if isinstance(text, Mapping) else json.loads(text)
    return Job(
        id=document["id"],
        service=document["service"],
        entity=document["entity"],
        type=document["type"],
        display_name=document["display_name"],
        description=document["description"],
        status=document["status"],
        input=freeze(document["input"], field="input", limits=_STORED_LIMITS),
        state=_freeze_object(document["state"], field="state"),
        etag=document["etag"],
        version=document["version"],
        created_at=from_micros(document["created_at"]),
        updated_at=from_micros(document["updated_at"]),
        # Documents written before jobs had a starter have no key for it.
        started_by=document.get("started_by"),
    )


def _freeze_object(value: object, *, field: str) -> JsonObject:
    frozen = freeze(value, field=field, limits=_STORED_LIMITS)
    if not isinstance(frozen, JsonObject):
        msg = f"stored {field} is not a JSON object"
        raise TypeError(msg)
    return frozen


def parked_from_row(row: Row, *, name: str) -> ParkedEvent:
    """The event parked under ``name`` that ``row`` holds.

    ``row`` holds the ``parked`` table's ``position``, ``error``, ``attempts``
    and ``retry``, then the parked event's :data:`EVENT_COLUMNS` from the feed.
    """
    return ParkedEvent(
        name=name,
        position=row[0],
        error=row[1],
        attempts=row[2],
        retry=bool(row[3]),
        event=event_from_row(row[4:]),
    )


def request_row(record: RequestRecord) -> tuple[str, str, str]:
    """The values of :data:`REQUEST_COLUMNS` for ``record``."""
    return (record.request_id, record.fingerprint, job_document(record.job))


def request_from_row(row: Row) -> RequestRecord:
    """The request record stored in ``row`` (values in :data:`REQUEST_COLUMNS` order).

    The ``job`` value may be the JSON text or, from a driver that decodes JSON
    columns itself (``jsonb``), the decoded mapping.
    """
    request_id, fingerprint, job = row
    document = job if isinstance(job, Mapping) else json.loads(job)
    # A job document written before commands had actors has no started_by key.
    return RequestRecord(
        request_id, fingerprint, job_from_document(document), "started_by" not in document
    )


def _in(column: str, values: frozenset[str], placeholder: str, params: list[Any]) -> str:
    if not values:
        # A filter with no values matches no job; not every SQL dialect takes ``IN ()``.
        return "FALSE"
    ordered = sorted(values)
    params.extend(ordered)
    return f"{column} IN ({', '.join([placeholder] * len(ordered))})"


def find_clause(query: JobQuery, *, placeholder: str = "?") -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT ...`` that lists the jobs ``query`` asks for.

    Append it to ``SELECT <JOB_COLUMNS> FROM <jobs table>``. Every value is a
    bound parameter, returned in order; ``placeholder`` is the driver's marker
    (``"?"`` for sqlite3, ``"%s"`` for psycopg). The limit is one more than the
    page size, so the caller knows whether another page follows. Ids compare
    by code point (UTF-8 byte order), as in Python; a backend whose text
    collation differs must give the ``id`` column a byte-order collation.

    Raises:
        InvalidJobDataError: the query's cursor is not one this ledger made.

    >>> from jobledger import JobQuery
    >>> find_clause(JobQuery(service="hr", limit=10))
    ('WHERE service IN (?) ORDER BY created_at DESC, id DESC LIMIT ?', ['hr', 11])
    """
    params: list[Any] = []
    conditions: list[str] = []
    for column, values in (
        ("service", query.service),
        ("entity", query.entity),
        ("type", query.type),
        ("status", query.status),
    ):
        if values is not None:
            conditions.append(_in(column, values, placeholder, params))
    if query.phase is not None:
        conditions.append(
            _in("phase", frozenset(phase.value for phase in query.phase), placeholder, params)
        )
    if query.created_after is not None:
        conditions.append(f"created_at >= {placeholder}")
        params.append(to_micros(query.created_after))
    if query.created_before is not None:
        conditions.append(f"created_at < {placeholder}")
        params.append(to_micros(query.created_before))
    after = query.after()
    if after is not None:
        micros = to_micros(after.created_at)
        conditions.append(
            f"(created_at < {placeholder} OR (created_at = {placeholder} AND id < {placeholder}))"
        )
        params.extend((micros, micros, after.job_id))
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    params.append(query.limit + 1)
    return f"{where}ORDER BY created_at DESC, id DESC LIMIT {placeholder}", params


def decode_row(read: Callable[[Any], _V], row: Any, location: str) -> _V:  # noqa: ANN401  (a driver's row)
    """``read(row)``, with a row the reader cannot understand reported as a StorageError.

    Raises:
        StorageError: the row does not hold what jobledger writes.
    """
    try:
        return read(row)
    except (ValueError, KeyError, TypeError) as err:
        msg = f"the database holds a row jobledger cannot read ({err})"
        raise StorageError(location, msg) from err


def refuse_save(change: Change, stored: tuple[str, int] | None) -> NoReturn:
    """Raise why the compare-and-set of ``change`` matched no row.

    ``stored`` is the stored job's ``(etag, version)`` read in the same
    transaction, or ``None``.
    """
    refusal = save_refusal(change, stored)
    if refusal is None:  # the compare-and-set failed, so the row must disagree
        refusal = ValueError(f"the compare-and-set of job {change.job.id!r} matched no row")
    raise refusal
