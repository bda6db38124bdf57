"""The service's routes, described once: the app is built from this table, and so is /openapi.json.

Each :class:`Operation` says its method, path, permission and responses; the
schemas of the bodies use the wire's names (:mod:`jobledger.wire`). A test
checks these schemas against what the wire encodes, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

import attrs

from jobledger import __version__
from jobledger.http._problems import PROBLEM_TYPE_PREFIX

__all__ = ["OPERATIONS", "SCHEMAS", "Operation", "openapi_document", "reference_markdown"]

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_JSON: dict[str, Any] = {"description": "Any JSON value."}
_OBJECT = {"type": "object"}
_NULLABLE_OBJECT = {"type": ["object", "null"]}
_POSITIVE = {"type": "integer", "minimum": 1}
_NAMES = {"type": "array", "items": _STRING}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(
    properties: dict[str, Any], required: tuple[str, ...] | None = None, **extra: object
) -> dict[str, Any]:
    """A closed object schema; every property required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
        **extra,
    }


_CHANGE_FIELDS = {"DisplayName": _NULLABLE_STRING, "Description": _NULLABLE_STRING}
_ACTOR = {
    "type": ["string", "null"],
    "description": (
        "Who made the change, or null when no one was named (changes made through the "
        "service name their client)."
    ),
}
# A command's Actor: the service fills it in; another client's id is refused (403).
_COMMAND_ACTOR = {
    "Actor": {
        "type": ["string", "null"],
        "description": (
            "Leave it out: the service records the authenticated client as the actor. "
            "Any other id than the client's is refused (403 actor-not-client)."
        ),
    }
}
_EVENT_HEAD = {
    "MessageType": _STRING,
    "EventId": _STRING,
    "JobId": _STRING,
    "Service": _STRING,
    "Entity": _STRING,
    "Type": _STRING,
    "Status": _STRING,
    "ETag": _STRING,
    "Version": _POSITIVE,
    "At": _TIME,
    "Actor": _ACTOR,
}


def _event(name: str, **fields: object) -> dict[str, Any]:
    return _object({**_EVENT_HEAD, "MessageType": {"const": name}, **fields})


_CHANGED = {"UpdateId": _POSITIVE, **_CHANGE_FIELDS}

#: The schemas of /openapi.json's components, by name.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Job": _object(
        {
            "JobId": _STRING,
            "Service": _STRING,
            "Entity": _STRING,
            "Type": _STRING,
            "DisplayName": _STRING,
            "Description": _STRING,
            "Status": _STRING,
            "Input": _JSON,
            "State": _OBJECT,
            "ETag": _STRING,
            "Version": _POSITIVE,
            "CreatedAt": _TIME,
            "UpdatedAt": _TIME,
            "StartedBy": {
                "type": ["string", "null"],
                "description": "Who started the job, or null when no one was named.",
            },
        },
        description="A job (the seed's Job entity).",
    ),
    "JobUpdate": _object(
        {
            "JobId": _STRING,
            "UpdateId": _POSITIVE,
            "UpdateType": {
                "enum": [0, 1, 2, 3],
                "description": "0 updated, 1 completed, 2 failed, 3 canceled",
            },
            "Status": _STRING,
            "StateUpdate": {"description": "The RFC 7396 merge patch applied, or null."},
            **_CHANGE_FIELDS,
            "ETag": _STRING,
            "At": _TIME,
            "Actor": _ACTOR,
        },
        description="One change of a job, after its start.",
    ),
    "StartJob": _object(
        {
            "Service": _STRING,
            "Entity": _STRING,
            "Type": _STRING,
            "DisplayName": _STRING,
            "Description": _STRING,
            "Input": _JSON,
            "State": _NULLABLE_OBJECT,
            "JobId": _NULLABLE_STRING,
            **_COMMAND_ACTOR,
        },
        required=("Service", "Entity", "Type"),
        description="StartJob's fields; the Idempotency-Key header is its RequestId.",
    ),
    "UpdateJob": _object(
        {"Status": _NULLABLE_STRING, **_CHANGE_FIELDS, "StateUpdate": _JSON, **_COMMAND_ACTOR},
        required=(),
        description="UpdateJob's fields; the job comes from the path, its ETag from If-Match.",
    ),
    "EndJob": _object(
        {**_CHANGE_FIELDS, "StateUpdate": _JSON, **_COMMAND_ACTOR},
        required=(),
        description="CompleteJob's or FailJob's fields.",
    ),
    "CancelJob": _object(
        {**_CHANGE_FIELDS, **_COMMAND_ACTOR}, required=(), description="CancelJob's fields."
    ),
    "JobPage": _object(
        {"Jobs": {"type": "array", "items": _ref("Job")}, "NextPageToken": _NULLABLE_STRING},
        description="A page of jobs, newest first; NextPageToken gets the next page.",
    ),
    "UpdatePage": _object(
        {
            "Updates": {"type": "array", "items": _ref("JobUpdate")},
            "NextAfter": {"type": ["integer", "null"]},
        },
        description="A page of a job's updates, oldest first; NextAfter is the next page's after.",
    ),
    "Event": {
        "description": "An integration event, as sent in the data of the event feed.",
        "oneOf": [
            _event(
                "JobStarted", DisplayName=_STRING, Description=_STRING, Input=_JSON, State=_OBJECT
            ),
            _event("JobUpdated", **_CHANGED, StateUpdate=_JSON),
            _event("JobCompleted", **_CHANGED, StateUpdate=_JSON),
            _event("JobFailed", **_CHANGED, StateUpdate=_JSON),
            _event("JobCanceled", **_CHANGED),
        ],
    },
    "Batch": _object(
        {
            "Commands": {
                "type": "array",
                "maxItems": 1000,
                "items": {
                    "type": "object",
                    "properties": {
                        "MessageType": {
                            "enum": ["StartJob", "UpdateJob", "CompleteJob", "FailJob", "CancelJob"]
                        }
                    },
                    "required": ["MessageType"],
                    "description": "A command in the wire format of jobledger.wire.",
                },
            }
        },
        description="Commands carried out in order, all or none.",
    ),
    "Jobs": _object(
        {"Jobs": {"type": "array", "items": _ref("Job")}},
        description="The jobs as each command of the batch left them.",
    ),
    "Token": _object(
        {
            "access_token": _STRING,
            "token_type": {"const": "Bearer"},
            "expires_in": _POSITIVE,
        },
        description="An access token (RFC 6749 section 5.1).",
    ),
    "TokenRequest": {
        "type": "object",
        "properties": {
            "grant_type": {"const": "client_credentials"},
            "client_id": _STRING,
            "client_secret": _STRING,
        },
        "required": ["grant_type"],
        "description": "Client credentials (RFC 6749 section 4.4), or give them with HTTP Basic.",
    },
    "Problem": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": f"{PROBLEM_TYPE_PREFIX}NAME"},
            "title": _STRING,
            "status": {"type": "integer"},
            "detail": _STRING,
        },
        "required": ["type", "title", "status", "detail"],
        "description": (
            "An RFC 9457 problem, with the error's facts as more members "
            "(JobId, CurrentETag, Field, Path, Reason, ...); a refusal of "
            "POST /jobs:batch also has BatchIndex, the refused command's place "
            "in Commands (from 0), when the service can tell which it is."
        ),
    },
}


@attrs.frozen
class Operation:
    """One route of the service.

    Attributes:
        operation_id: Its name in /openapi.json, and the app's handler's.
        method: The HTTP method.
        path: The path, parameters in braces.
        summary: One line for people.
        action: The permission it needs (``""`` for none, no token needed).
        parameters: Its OpenAPI parameter objects.
        body: The schema name of its JSON body, if any.
        responses: Status code to (description, schema name or ``""``, header names).
    """

    operation_id: str
    method: str
    path: str
    summary: str
    action: str
    parameters: tuple[dict[str, Any], ...] = ()
    body: str = ""
    responses: tuple[tuple[int, str, str, tuple[str, ...]], ...] = ()


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": _STRING,
        "description": description,
    }


_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": _STRING,
    "description": "The job's id.",
}
_IDEMPOTENCY = _header(
    "Idempotency-Key", "The command's RequestId: a retry with it is answered, not redone."
)
_IF_MATCH = _header(
    "If-Match", 'The ETag last seen, quoted ("..."), or * for any; required (428 without).'
)
_FILTERS = (
    _query("service", _NAMES, "Only these services (repeat for several)."),
    _query("entity", _NAMES, "Only these entities."),
    _query("type", _NAMES, "Only these types."),
)
_ERRORS = {
    400: "Invalid data: the problem names the field and path.",
    401: "No token, or a bad or expired one.",
    403: "The client is not permitted to do this.",
    404: "No job has this id.",
    409: "Invalid transition, job exists, or request id reused.",
    412: "Stale ETag: the ETag header holds the current one.",
    413: "The body is too large.",
    428: "If-Match is missing.",
}


def _errors(*statuses: int) -> tuple[tuple[int, str, str, tuple[str, ...]], ...]:
    return tuple(
        (status, _ERRORS[status], "Problem", ("ETag",) if status == 412 else ())  # noqa: PLR2004
        for status in statuses
    )


def _change(name: str, verb: str, body: str, action: str) -> Operation:
    return Operation(
        operation_id=f"{verb}Job",
        method="POST",
        path=f"/jobs/{{id}}:{verb}",
        summary=f"{name}: {verb} an active job.",
        action=action,
        parameters=(_JOB_ID, _IF_MATCH, _IDEMPOTENCY),
        body=body,
        responses=(
            (200, "The job as the command left it.", "Job", ("ETag",)),
            *_errors(400, 401, 403, 404, 409, 412, 413, 428),
        ),
    )


#: Every route of the service.
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        operation_id="token",
        method="POST",
        path="/token",
        summary="Get an access token with client credentials (OAuth2, RFC 6749 section 4.4).",
        action="",
        body="TokenRequest",
        responses=(
            (200, "A new token.", "Token", ()),
            (400, "Not a client credentials request.", "Problem", ()),
            (401, "Unknown client or wrong secret.", "Problem", ()),
            (413, _ERRORS[413], "Problem", ()),
        ),
    ),
    Operation(
        operation_id="startJob",
        method="POST",
        path="/jobs",
        summary="StartJob: start a job.",
        action="start",
        parameters=(_IDEMPOTENCY,),
        body="StartJob",
        responses=(
            (201, "The new job.", "Job", ("ETag", "Location")),
            *_errors(400, 401, 403, 409, 413),
        ),
    ),
    Operation(
        operation_id="handleAll",
        method="POST",
        path="/jobs:batch",
        summary=(
            "Carry out commands in order as one atomic unit (all or none); each command "
            "needs its own permission."
        ),
        action="each",
        body="Batch",
        responses=(
            (200, "The jobs, one per command.", "Jobs", ()),
            *_errors(400, 401, 403, 404, 409, 412, 413),
        ),
    ),
    Operation(
        operation_id="findJobs",
        method="GET",
        path="/jobs",
        summary="List jobs, newest first, a page at a time.",
        action="read",
        parameters=(
            *_FILTERS,
            _query("status", _NAMES, "Only these statuses."),
            _query("phase", _NAMES, "Only these phases (active, completed, failed, canceled)."),
            _query("created_after", _TIME, "Only jobs created at or after this time."),
            _query("created_before", _TIME, "Only jobs created before this time."),
            _query(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "Jobs per page (100).",
            ),
            _query("page_token", _STRING, "The NextPageToken of the page before."),
        ),
        responses=((200, "A page of jobs.", "JobPage", ()), *_errors(400, 401, 403)),
    ),
    Operation(
        operation_id="getJob",
        method="GET",
        path="/jobs/{id}",
        summary="GetJobById: a job and its ETag.",
        action="read",
        parameters=(_JOB_ID, _header("If-None-Match", "An ETag: 304 if the job still has it.")),
        responses=(
            (200, "The job.", "Job", ("ETag",)),
            (304, "The job still has the ETag of If-None-Match.", "", ("ETag",)),
            *_errors(401, 403, 404),
        ),
    ),
    _change("UpdateJob", "update", "UpdateJob", "update"),
    _change("CompleteJob", "complete", "EndJob", "complete"),
    _change("FailJob", "fail", "EndJob", "fail"),
    _change("CancelJob", "cancel", "CancelJob", "cancel"),
    Operation(
        operation_id="listUpdates",
        method="GET",
        path="/jobs/{id}/updates",
        summary="A job's update log, oldest first, a page at a time.",
        action="read",
        parameters=(
            _JOB_ID,
            _query(
                "after", {"type": "integer", "minimum": 0}, "Only updates with a greater UpdateId."
            ),
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "Updates per page (100).",
            ),
        ),
        responses=((200, "A page of updates.", "UpdatePage", ()), *_errors(400, 401, 403, 404)),
    ),
    Operation(
        operation_id="events",
        method="GET",
        path="/events",
        summary=(
            "The event feed as Server-Sent Events: id the feed position, event the MessageType, "
            "data the event's JSON; resumes after Last-Event-ID."
        ),
        action="read",
        parameters=(
            _query(
                "after",
                {"type": "integer", "minimum": 0},
                "Start after this feed position; without it (and Last-Event-ID), from now on.",
            ),
            *_FILTERS,
            _query("events", _NAMES, "Only these MessageTypes (JobStarted, ...)."),
            _header("Last-Event-ID", "The last position received: resume after it."),
        ),
        responses=((200, "The feed, as text/event-stream.", "", ()), *_errors(400, 401, 403)),
    ),
    Operation(
        operation_id="openapi",
        method="GET",
        path="/openapi.json",
        summary="This document.",
        action="",
        responses=((200, "The OpenAPI 3.1 document.", "", ()),),
    ),
)

_HEADERS = {
    "ETag": {"description": "The job's ETag, quoted.", "schema": _STRING},
    "Location": {"description": "The new job's path.", "schema": _STRING},
}


def _response(
    operation: Operation, description: str, schema: str, headers: tuple[str, ...]
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = {name: _HEADERS[name] for name in headers}
    if schema:
        media = "application/problem+json" if schema == "Problem" else "application/json"
        response["content"] = {media: {"schema": _ref(schema)}}
    elif operation.operation_id == "events" and description.startswith("The feed"):
        response["content"] = {"text/event-stream": {"schema": _STRING}}
    elif operation.operation_id == "openapi":
        response["content"] = {"application/json": {"schema": _OBJECT}}
    return response


def _operation(operation: Operation) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "responses": {
            str(status): _response(operation, description, schema, headers)
            for status, description, schema, headers in operation.responses
        },
    }
    if operation.parameters:
        document["parameters"] = list(operation.parameters)
    if operation.body:
        media = (
            "application/x-www-form-urlencoded"
            if operation.body == "TokenRequest"
            else "application/json"
        )
        document["requestBody"] = {
            "required": operation.body != "CancelJob",
            "content": {media: {"schema": _ref(operation.body)}},
        }
    if operation.action == "each":
        document["description"] = "Needs each command's permission (start, update, ...)."
    elif operation.action:
        document["description"] = f"Needs the permission {operation.action}[:SERVICE]."
    else:
        document["security"] = []
    return document


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service: every route, its permission, its schemas."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobledger",
            "version": __version__,
            "description": (
                "The jobs service: the seed's commands and GetJobById, ETags in ETag and "
                "If-Match, the event feed as Server-Sent Events, OAuth2 client credentials."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/token", "scopes": {}}},
                }
            },
        },
        "security": [{"bearer": []}],
    }


def reference_markdown() -> str:
    """The HTTP reference in Markdown, rendered from :func:`openapi_document`.

    >>> reference_markdown().splitlines()[0]
    '## Routes'
    """
    document = openapi_document()
    lines = [
        "## Routes",
        "",
        "| route | operation | permission | what |",
        "| --- | --- | --- | --- |",
    ]
    for operation in OPERATIONS:
        permission = {"": "none (no token)", "each": "each command's"}.get(
            operation.action, f"`{operation.action}[:SERVICE]`"
        )
        route = f"`{operation.method} {operation.path}`"
        lines.append(
            f"| {route} | `{operation.operation_id}` | {permission} | {operation.summary} |"
        )
    for operation in OPERATIONS:
        entry = document["paths"][operation.path][operation.method.lower()]
        lines += ["", f"### `{operation.method} {operation.path}`", "", operation.summary, ""]
        for parameter in entry.get("parameters", ()):
            where = parameter["in"]
            lines.append(f"- {where} `{parameter['name']}`: {parameter['description']}")
        if operation.body:
            lines.append(f"- body: `{operation.body}` (below)")
        lines.append("")
        lines.append("| status | meaning |")
        lines.append("| --- | --- |")
        lines.extend(
            f"| {status} | {description} |" for status, description, _s, _h in operation.responses
        )
    lines += ["", "## Schemas", ""]
    for name, schema in SCHEMAS.items():
        lines += [f"### `{name}`", "", schema.get("description", ""), ""]
        properties = schema.get("properties")
        if properties:
            required = set(schema.get("required", ()))
            lines += ["| member | type | required |", "| --- | --- | --- |"]
            for member, member_schema in properties.items():
                kind = member_schema.get(
                    "type", member_schema.get("const", member_schema.get("enum", "any JSON"))
                )
                shown = (
                    " or ".join(kind)
                    if isinstance(kind, list) and all(isinstance(k, str) for k in kind)
                    else kind
                )
                mark = "yes" if member in required else "no"
                lines.append(f"| `{member}` | {shown} | {mark} |")
            lines.append("")
    return "\n".join(lines) + "\n"
