"""The service's own errors, under :class:`~jobledger.JobledgerError`.

The HTTP edge's branch of the tree::

    JobledgerError
    ├── AuthenticationError        401: no token, a bad or expired one, wrong credentials
    │                              (also PermissionError)
    ├── PermissionDeniedError      403: the client may not do this (also PermissionError)
    ├── ActorMismatchError         403: a command names another actor than the client
    │                              (also PermissionError)
    ├── PreconditionRequiredError  428: a change without If-Match
    ├── RequestTooLargeError       413: a body over the service's limit (also ValueError)
    ├── ClientExistsError          a client id that is taken (also ValueError)
    ├── UnknownClientError         no client with that id (also LookupError)
    └── ServiceError               an answer the client cannot map to a library error
"""

from __future__ import annotations

from typing import Any

from jobledger import JobledgerError

__all__ = [
    "ActorMismatchError",
    "AuthenticationError",
    "ClientExistsError",
    "PermissionDeniedError",
    "PreconditionRequiredError",
    "RequestTooLargeError",
    "ServiceError",
    "UnknownClientError",
]


class AuthenticationError(JobledgerError, PermissionError):
    """The caller is not authenticated: no token, a bad or expired token, or wrong credentials.

    Attributes:
        reason: What is wrong, without any secret or token in it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not authenticated: {reason}")

    def __reduce__(self) -> tuple[type[AuthenticationError], tuple[str]]:
        return (type(self), (self.reason,))


class PermissionDeniedError(JobledgerError, PermissionError):
    """The client is authenticated but its permissions do not allow this.

    Attributes:
        client_id: The client that asked.
        action: The action it needs (``"read"``, ``"start"``, ...).
        service: The service of the job concerned, or ``""`` for any.
    """

    def __init__(self, client_id: str, action: str, service: str) -> None:
        self.client_id = client_id
        self.action = action
        self.service = service
        needed = f"{action}:{service}" if service else action
        super().__init__(
            f"client {client_id!r} is not permitted to {action}"
            + (f" jobs of service {service!r}" if service else "")
            + f"; an administrator can allow it with `jobledger clients add ... --allow {needed}`"
        )

    def __reduce__(self) -> tuple[type[PermissionDeniedError], tuple[str, str, str]]:
        return (type(self), (self.client_id, self.action, self.service))


class ActorMismatchError(JobledgerError, PermissionError):
    """A command sent to the service names an actor that is not the client sending it.

    The service records the authenticated client as the actor of every change
    it makes: a client acts as itself, never on behalf of another.

    Attributes:
        client_id: The client that sent the command.
        actor: The actor the command named.
    """

    def __init__(self, client_id: str, actor: str) -> None:
        self.client_id = client_id
        self.actor = actor
        super().__init__(
            f"client {client_id!r} sent a command whose actor is {actor!r}: a client acts "
            f"as itself; leave Actor out (the service records {client_id!r}) or log in as {actor!r}"
        )

    def __reduce__(self) -> tuple[type[ActorMismatchError], tuple[str, str]]:
        return (type(self), (self.client_id, self.actor))


class PreconditionRequiredError(JobledgerError):
    """A change was sent without ``If-Match``: send the ETag last seen, or ``*``.

    Attributes:
        job_id: The job the change was for.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"a change of job {job_id!r} needs an If-Match header with the ETag last seen "
            "(or * to change it whatever its ETag)"
        )

    def __reduce__(self) -> tuple[type[PreconditionRequiredError], tuple[str]]:
        return (type(self), (self.job_id,))


class RequestTooLargeError(JobledgerError, ValueError):
    """A request's body is larger than the service accepts.

    Attributes:
        limit: The most bytes a body may have.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than the {limit} bytes this service accepts")

    def __reduce__(self) -> tuple[type[RequestTooLargeError], tuple[int]]:
        return (type(self), (self.limit,))


class ClientExistsError(JobledgerError, ValueError):
    """A client with this id exists already.

    Attributes:
        client_id: The id that is taken.
    """

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        super().__init__(
            f"a client with id {client_id!r} exists already; `jobledger clients rotate` "
            "gives it a new secret"
        )

    def __reduce__(self) -> tuple[type[ClientExistsError], tuple[str]]:
        return (type(self), (self.client_id,))


class UnknownClientError(JobledgerError, LookupError):
    """No client has this id.

    Attributes:
        client_id: The id that was looked up.
    """

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        super().__init__(f"no client with id {client_id!r}; `jobledger clients list` lists them")

    def __reduce__(self) -> tuple[type[UnknownClientError], tuple[str]]:
        return (type(self), (self.client_id,))


class ServiceError(JobledgerError):
    """The service answered with an error that is none of the library's.

    Attributes:
        status: The HTTP status code.
        problem: The RFC 9457 problem document the service sent (empty if none).
    """

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or "no detail given"
        super().__init__(f"the service answered {status}: {detail}")

    def __reduce__(self) -> tuple[type[ServiceError], tuple[int, dict[str, Any]]]:
        return (type(self), (self.status, self.problem))
