"""The jobs service over HTTP, and its client: the ``server`` extra.

:func:`create_app` puts a :class:`~jobledger.Jobs` ledger behind an ASGI app
(Starlette; ``jobledger serve`` runs it with uvicorn); :class:`JobsClient`
offers the ledger's methods over HTTP, raising the library's own errors.
Clients and their permissions are kept beside the ledger
(:func:`client_store_beside`). Install it with ``pip install "jobledger[server]"``.
"""

from __future__ import annotations

from jobledger.http._app import DEFAULT_MAX_BODY_BYTES, create_app
from jobledger.http._client import JobsClient, Subscription
from jobledger.http._clients import (
    Client,
    ClientStore,
    InMemoryClientStore,
    PostgresClientStore,
    SQLiteClientStore,
    client_store_beside,
)
from jobledger.http._errors import (
    ActorMismatchError,
    AuthenticationError,
    ClientExistsError,
    PermissionDeniedError,
    PreconditionRequiredError,
    RequestTooLargeError,
    ServiceError,
    UnknownClientError,
)
from jobledger.http._openapi import openapi_document, reference_markdown
from jobledger.http._permissions import ACTIONS, Permission, Permissions
from jobledger.http._problems import PROBLEM_TYPE_PREFIX
from jobledger.http._tokens import DEFAULT_TOKEN_SECONDS, IssuedToken, TokenIssuer

__all__ = [
    "ACTIONS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOKEN_SECONDS",
    "PROBLEM_TYPE_PREFIX",
    "ActorMismatchError",
    "AuthenticationError",
    "Client",
    "ClientExistsError",
    "ClientStore",
    "InMemoryClientStore",
    "IssuedToken",
    "JobsClient",
    "Permission",
    "PermissionDeniedError",
    "Permissions",
    "PostgresClientStore",
    "PreconditionRequiredError",
    "RequestTooLargeError",
    "SQLiteClientStore",
    "ServiceError",
    "Subscription",
    "TokenIssuer",
    "UnknownClientError",
    "client_store_beside",
    "create_app",
    "openapi_document",
    "reference_markdown",
]
