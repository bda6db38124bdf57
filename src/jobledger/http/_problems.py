"""Errors as RFC 9457 problem documents, and back: one table for the service and its client.

A problem's ``type`` names the error (``urn:jobledger:problem:stale-etag``), and
its facts travel as members with the wire's names (``JobId``, ``CurrentETag``),
so :class:`~jobledger.http.JobsClient` raises the very error the ledger raised.

>>> from jobledger import ConcurrencyError
>>> document = problem_of(ConcurrencyError("42", "e1", "e2"))
>>> document["status"], document["type"], document["CurrentETag"]
(412, 'urn:jobledger:problem:stale-etag', 'e2')
>>> error = error_of(412, document, location="http://127.0.0.1:8000")
>>> type(error).__name__, error.current_etag
('ConcurrencyError', 'e2')
"""

from __future__ import annotations

from typing import Any

import attrs

from jobledger import (
    ConcurrencyError,
    InvalidJobDataError,
    InvalidTransitionError,
    JobAlreadyExistsError,
    JobledgerError,
    JobNotFoundError,
    RequestIdConflictError,
    StorageError,
    StorageTimeoutError,
    StorageUnavailableError,
    WireFormatError,
)
from jobledger.http._errors import (
    ActorMismatchError,
    AuthenticationError,
    PermissionDeniedError,
    PreconditionRequiredError,
    RequestTooLargeError,
    ServiceError,
)

__all__ = [
    "BATCH_INDEX",
    "PROBLEM_KINDS",
    "PROBLEM_TYPE_PREFIX",
    "ProblemKind",
    "error_of",
    "problem",
    "problem_of",
]

#: What every problem type of the service starts with.
PROBLEM_TYPE_PREFIX = "urn:jobledger:problem:"

#: The member of a problem that answers ``POST /jobs:batch``: which command (from 0) was refused.
BATCH_INDEX = "BatchIndex"


@attrs.frozen
class ProblemKind:
    """How one error class travels: its status, its problem type and its facts.

    Attributes:
        error: The error class.
        status: The HTTP status code.
        name: The end of the problem type (``stale-etag``).
        title: The problem's title.
        facts: The error's attributes, in the order its constructor takes them,
            each with its member name in the problem document.
    """

    error: type[JobledgerError]
    status: int
    name: str
    title: str
    facts: tuple[tuple[str, str], ...] = ()

    @property
    def type(self) -> str:
        """The problem type URI."""
        return PROBLEM_TYPE_PREFIX + self.name


_DATA = (("field", "Field"), ("path", "Path"), ("reason", "Reason"))

#: Every error the service answers with, most specific first.
PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    ProblemKind(WireFormatError, 400, "invalid-message", "Invalid message", _DATA),
    ProblemKind(InvalidJobDataError, 400, "invalid-data", "Invalid data", _DATA),
    ProblemKind(
        AuthenticationError, 401, "unauthenticated", "Not authenticated", (("reason", "Reason"),)
    ),
    ProblemKind(
        PermissionDeniedError,
        403,
        "forbidden",
        "Not permitted",
        (("client_id", "ClientId"), ("action", "Action"), ("service", "Service")),
    ),
    ProblemKind(
        ActorMismatchError,
        403,
        "actor-not-client",
        "Actor is not the client",
        (("client_id", "ClientId"), ("actor", "Actor")),
    ),
    ProblemKind(JobNotFoundError, 404, "job-not-found", "Job not found", (("job_id", "JobId"),)),
    ProblemKind(JobAlreadyExistsError, 409, "job-exists", "Job exists", (("job_id", "JobId"),)),
    ProblemKind(
        InvalidTransitionError,
        409,
        "invalid-transition",
        "Invalid transition",
        (("job_id", "JobId"), ("phase", "Phase"), ("command", "Command")),
    ),
    ProblemKind(
        RequestIdConflictError,
        409,
        "request-id-reused",
        "Request id reused",
        (("request_id", "RequestId"),),
    ),
    ProblemKind(
        ConcurrencyError,
        412,
        "stale-etag",
        "Stale ETag",
        (("job_id", "JobId"), ("expected_etag", "ExpectedETag"), ("current_etag", "CurrentETag")),
    ),
    ProblemKind(RequestTooLargeError, 413, "too-large", "Request too large", (("limit", "Limit"),)),
    ProblemKind(
        PreconditionRequiredError,
        428,
        "if-match-required",
        "If-Match required",
        (("job_id", "JobId"),),
    ),
    ProblemKind(StorageTimeoutError, 503, "storage-busy", "Storage busy"),
    ProblemKind(StorageError, 503, "storage-unavailable", "Storage unavailable"),
)
_BY_TYPE = {kind.type: kind for kind in PROBLEM_KINDS}


def problem(status: int, name: str, title: str, detail: str, **members: object) -> dict[str, Any]:
    """A problem document (RFC 9457) of type ``urn:jobledger:problem:NAME``."""
    return {
        "type": PROBLEM_TYPE_PREFIX + name,
        "title": title,
        "status": status,
        "detail": detail,
        **members,
    }


def kind_of(error: JobledgerError) -> ProblemKind | None:
    """The kind of problem ``error`` is, or ``None`` if it is not one the service answers."""
    for kind in PROBLEM_KINDS:
        if isinstance(error, kind.error):
            return kind
    return None


def problem_of(error: JobledgerError) -> dict[str, Any]:
    """The problem document of a library error.

    Raises:
        TypeError: the service does not answer with this error.
    """
    kind = kind_of(error)
    if kind is None:
        msg = f"{type(error).__name__} is not an error the service answers with"
        raise TypeError(msg)
    # A storage error's message names the server or file: the title is enough for callers.
    detail = kind.title if kind.status >= 500 else " ".join(str(error).split())  # noqa: PLR2004
    members = {member: getattr(error, attribute) for attribute, member in kind.facts}
    if error.batch_index is not None:
        members[BATCH_INDEX] = error.batch_index
    return problem(kind.status, kind.name, kind.title, detail, **members)


def error_of(status: int, document: dict[str, Any], *, location: str) -> JobledgerError:
    """The library error that a problem document stands for.

    An unknown problem type, or a document without the facts its type needs,
    gives a :class:`~jobledger.http.ServiceError`; a storage problem, a
    :class:`~jobledger.StorageUnavailableError` (or
    :class:`~jobledger.StorageTimeoutError`) at ``location``.
    """
    kind = _BY_TYPE.get(str(document.get("type")))
    if kind is None or kind.status != status:
        return ServiceError(status, document)
    if issubclass(kind.error, StorageError):
        storage = (
            StorageTimeoutError if kind.error is StorageTimeoutError else StorageUnavailableError
        )
        return storage(location, str(document.get("detail", kind.title)))
    try:
        facts = [document[member] for _attribute, member in kind.facts]
    except KeyError:
        return ServiceError(status, document)
    error: JobledgerError = kind.error(*facts)
    index = document.get(BATCH_INDEX)
    if type(index) is int and index >= 0:
        error.batch_index = index
    return error
