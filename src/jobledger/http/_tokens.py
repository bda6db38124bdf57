"""Bearer tokens: signed JSON Web Tokens (RFC 7519) that name a client and expire.

Signed with HMAC-SHA256 by joserfc, a maintained JOSE library with typed
claims checks: a JWT is a standard token that other services and tools can
read, where itsdangerous would give a format of its own. The key lives in the
client store, so every server over one store accepts every server's tokens.
A token is honoured only while its client exists with the secret generation
it was issued for: removing or rotating a client ends its tokens, within
``recheck_seconds`` (one second by default; 0 for at once).

A token once verified is kept (keyed by the token itself, until it expires),
so later requests skip the signature check and the claims; its client is read
from the store again once ``recheck_seconds`` have passed since the last read.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from jobledger.http._clients import Client
from jobledger.http._errors import AuthenticationError, UnknownClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobledger.http._clients import ClientStore

__all__ = ["DEFAULT_RECHECK_SECONDS", "DEFAULT_TOKEN_SECONDS", "IssuedToken", "TokenIssuer"]

#: How long a token is valid by default, in seconds.
DEFAULT_TOKEN_SECONDS = 3600
#: How long a verified token's client is trusted before the store is read again, by default.
DEFAULT_RECHECK_SECONDS = 1.0
_ALGORITHM = "HS256"
# Verified tokens kept at most; past it the expired ones go, then all if none had.
_MAX_KEPT = 10_000


@attrs.frozen
class _Verified:
    """A verified token's client, its expiry and when the client was last read (timestamps)."""

    client: Client
    expires: float
    checked: float


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
        recheck_seconds: Seconds a verified token's client is trusted before
            :meth:`verify` reads it from the store again (so a removed or
            rotated client's tokens stop working within this time; 0 reads it
            every time).
    """

    def __init__(
        self,
        store: ClientStore,
        *,
        lifetime: int = DEFAULT_TOKEN_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recheck_seconds: float = DEFAULT_RECHECK_SECONDS,
    ) -> None:
        if lifetime < 1:
            msg = f"a token's lifetime must be at least 1 second, not {lifetime}"
            raise ValueError(msg)
        if not recheck_seconds >= 0:
            msg = f"recheck_seconds must be 0 or more, not {recheck_seconds}"
            raise ValueError(msg)
        self._store = store
        self._lifetime = lifetime
        self._clock = clock
        self._recheck = recheck_seconds
        self._key = OctKey.import_key(store.signing_key())
        # Plain dict operations, each atomic under the GIL: no lock needed.
        self._kept: dict[str, _Verified] = {}

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

    def verified(self, token: str) -> Client | None:
        """The client of ``token`` if it was verified lately, without reading the store.

        ``None`` when :meth:`verify` must decide: the token is new, expired,
        or its client was last read ``recheck_seconds`` ago or more. Cheap
        enough to call on an event loop.
        """
        kept = self._kept.get(token)
        if kept is None:
            return None
        now = self._clock().timestamp()
        if now >= kept.expires or now - kept.checked >= self._recheck:
            return None
        return kept.client

    def verify(self, token: str) -> Client:
        """The client ``token`` was issued to, as it is now.

        Raises:
            AuthenticationError: the token is malformed, not signed with this
                store's key, expired, or its client was removed or rotated.
        """
        now = self._clock().timestamp()
        kept = self._kept.pop(token, None)
        if kept is not None and now < kept.expires:
            subject, expires = kept.client.client_id, kept.expires
            generation: object = kept.client.generation
        else:
            subject, generation, expires = self._decode(token, int(now))
        try:
            client = self._store.get(subject)
        except UnknownClientError:
            raise AuthenticationError("the token's client was removed") from None
        if generation != client.generation:
            raise AuthenticationError("the token's client has a new secret since") from None
        self._keep(token, _Verified(client, expires, now), now)
        return client

    def _decode(self, token: str, now: int) -> tuple[str, object, float]:
        """The subject, generation and expiry of a token checked for signature and claims."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALGORITHM])
            registry = jwt.JWTClaimsRegistry(
                now=now, exp={"essential": True}, sub={"essential": True}
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as err:
            reason = "the token has expired" if "expired" in str(err) else "the token is not valid"
            raise AuthenticationError(reason) from None
        claims = decoded.claims
        return str(claims.get("sub")), claims.get("gen"), float(claims["exp"])

    def _keep(self, token: str, verified: _Verified, now: float) -> None:
        if len(self._kept) >= _MAX_KEPT:
            for old, entry in list(self._kept.items()):
                if entry.expires <= now:
                    self._kept.pop(old, None)
            if len(self._kept) >= _MAX_KEPT:
                self._kept.clear()
        self._kept[token] = verified
