"""Bearer tokens: signed JSON Web Tokens (RFC 7519) that name a client and expire.

Signed with HMAC-SHA256 by joserfc, a maintained JOSE library with typed
claims checks: a JWT is a standard token that other services and tools can
read, where itsdangerous would give a format of its own. The key lives in the
client store, so every server over one store accepts every server's tokens.
A token is honoured only while its client exists with the secret generation
it was issued for: removing or rotating a client ends its tokens at once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from jobledger.http._errors import AuthenticationError, UnknownClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger.http._clients import Client, ClientStore

__all__ = ["DEFAULT_TOKEN_SECONDS", "IssuedToken", "TokenIssuer"]

#: How long a token is valid by default, in seconds.
DEFAULT_TOKEN_SECONDS = 3600
_ALGORITHM = "HS256"


@attrs.frozen
class IssuedToken:
    """A new access token (RFC 6749 section 5.1).

    Attributes:
        access_token: The token to send as ``Authorization: Bearer ...``.
        expires_in: Seconds until it expires.
    """

    access_token: str = attrs.field(repr=False)
    expires_in: int


class TokenIssuer:
    """Issues tokens to clients and checks the tokens they send back.

    Args:
        store: Where the clients and the signing key are.
        lifetime: Seconds a token is valid.
        clock: Returns the current time (timezone-aware).
    """

    def __init__(
        self,
        store: ClientStore,
        *,
        lifetime: int = DEFAULT_TOKEN_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if lifetime < 1:
            msg = f"a token's lifetime must be at least 1 second, not {lifetime}"
            raise ValueError(msg)
        self._store = store
        self._lifetime = lifetime
        self._clock = clock
        self._key = OctKey.import_key(store.signing_key())

    def issue(self, client: Client) -> IssuedToken:
        """A token for ``client``, valid for the issuer's lifetime."""
        now = int(self._clock().timestamp())
        claims = {
            "sub": client.client_id,
            "gen": client.generation,
            "iat": now,
            "exp": now + self._lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode({"alg": _ALGORITHM}, claims, self._key, algorithms=[_ALGORITHM])
        return IssuedToken(token, self._lifetime)

    def verify(self, token: str) -> Client:
        """The client ``token`` was issued to, as it is now.

        Raises:
            AuthenticationError: the token is malformed, not signed with this
                store's key, expired, or its client was removed or rotated.
        """
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALGORITHM])
            registry = jwt.JWTClaimsRegistry(
                now=int(self._clock().timestamp()),
                exp={"essential": True},
                sub={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as err:
            reason = "the token has expired" if "expired" in str(err) else "the token is not valid"
            raise AuthenticationError(reason) from None
        subject = decoded.claims.get("sub")
        try:
            client = self._store.get(str(subject))
        except UnknownClientError:
            raise AuthenticationError("the token's client was removed") from None
        if decoded.claims.get("gen") != client.generation:
            raise AuthenticationError("the token's client has a new secret since") from None
        return client
