"""Who is signed in to the dashboard: the session's client, its CSRF token, and the checks.

The session lives in a signed cookie (Starlette's ``SessionMiddleware``,
itsdangerous); it holds the client's id, the generation of its secret, and a
CSRF token. The client is read from the store on every request, so removing a
client or rotating its secret ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Final

from jobledger.http._errors import UnknownClientError

if TYPE_CHECKING:
    from starlette.requests import Request

    from jobledger.http._clients import Client, ClientStore

__all__ = [
    "CSRF_FIELD",
    "check_csrf",
    "csrf_token",
    "session_client",
    "session_key",
    "sign_in",
    "sign_out",
]

#: The form field that carries the CSRF token.
CSRF_FIELD: Final = "csrf_token"
_CLIENT: Final = "client"
_GENERATION: Final = "generation"
_CSRF: Final = "csrf"


def session_key(signing_key: bytes) -> str:
    """The key that signs session cookies, derived from the store's token signing key.

    Every server over one store derives the same key (a session survives a
    restart and works behind a load balancer), and a session cookie is never
    signed with the very key that signs access tokens.

    >>> session_key(b"k" * 32) == session_key(b"k" * 32), len(session_key(b"k" * 32))
    (True, 64)
    """
    return hmac.new(signing_key, b"jobledger dashboard sessions", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def check_csrf(request: Request, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token (compared in constant time)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not isinstance(sent, str):
        return False
    return hmac.compare_digest(token.encode("utf-8"), sent.encode("utf-8"))


def sign_in(request: Request, client: Client) -> None:
    """Start a new session for ``client``: a new CSRF token, nothing kept from before."""
    request.session.clear()
    request.session[_CLIENT] = client.client_id
    request.session[_GENERATION] = client.generation
    csrf_token(request)


def sign_out(request: Request) -> None:
    """End the session."""
    request.session.clear()


def session_client(request: Request, store: ClientStore) -> Client | None:
    """The client signed in to this session, as it is now; ``None`` if none is (any more)."""
    client_id = request.session.get(_CLIENT)
    if not isinstance(client_id, str):
        return None
    try:
        client = store.get(client_id)
    except UnknownClientError:
        return None
    if client.generation != request.session.get(_GENERATION):
        return None
    return client
