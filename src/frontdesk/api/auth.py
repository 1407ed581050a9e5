"""API keys with scopes, and short-lived user tokens for the in-app inbox."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, Request

from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.models import ApiKeyGrant
from frontdesk.core.times import rfc3339
from frontdesk.core.tokens import InvalidToken, sign_token, verify_token
from frontdesk.errors import Forbidden, Unauthenticated

ADMIN = "admin"
INGEST = "ingest"
_INBOX_PURPOSE = "inbox"
_USER_TOKEN_PREFIX = "fdu_"  # noqa: S105 - tells token kinds apart; not a secret


@dataclass(frozen=True, slots=True)
class Principal:
    scopes: frozenset[str]
    user_id: str | None = None  # a user token's user
    key_id: str | None = None  # an API key's id

    def has(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


# How long a process trusts its last check of a key: a revocation elsewhere reaches it within.
KEY_MEMORY_SECONDS = 30.0


class ApiKeyCache:
    """Keys are checked against their stored hash; the answer is kept briefly so a busy ingest
    path does not read the keys table on every request (a revocation takes effect within ttl)."""

    def __init__(self, ttl_seconds: float = KEY_MEMORY_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._known: dict[str, tuple[float, ApiKeyGrant | None]] = {}

    def forget(self) -> None:
        """Check every key against the store again (one was revoked)."""
        self._known.clear()

    async def grant(self, services: ApiServices, key: str) -> ApiKeyGrant | None:
        now = time.monotonic()
        cached = self._known.get(key)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        grant = await services.store.api_key_grant(key)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = (now, grant)
        return grant


def issue_user_token(services: ApiServices, user_id: str) -> tuple[str, str]:
    """(token, expires_at as RFC 3339)."""
    expires_at = services.clock.now() + timedelta(
        seconds=services.settings.auth.user_token_ttl_seconds
    )
    token = sign_token(services.token_secret, _INBOX_PURPOSE, user_id, expires_at)
    return _USER_TOKEN_PREFIX + token, rfc3339(expires_at)


async def authenticate(
    request: Request, services: ApiServices = Depends(get_services)
) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise Unauthenticated("send an API key or user token as 'Authorization: Bearer <token>'")
    credential = credential.strip()
    if credential.startswith(_USER_TOKEN_PREFIX):
        try:
            user_id = verify_token(
                services.token_secret,
                _INBOX_PURPOSE,
                credential.removeprefix(_USER_TOKEN_PREFIX),
                services.clock.now(),
            )
        except InvalidToken as error:
            raise Unauthenticated(f"invalid user token: {error}") from None
        return Principal(scopes=frozenset(), user_id=user_id)
    cache: ApiKeyCache = request.app.state.api_keys
    grant = await cache.grant(services, credential)
    if grant is None:
        raise Unauthenticated("unknown or revoked API key")
    return Principal(scopes=grant.scopes, key_id=grant.key_id)


def require(scope: str):  # type: ignore[no-untyped-def]
    """A dependency that admits keys holding ``scope`` (admin holds every scope)."""

    async def check(principal: Principal = Depends(authenticate)) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"this call needs an API key with the {scope!r} scope")
        return principal

    return check


async def require_inbox_access(
    user_id: str, principal: Principal = Depends(authenticate)
) -> Principal:
    """An admin key, or a user token for exactly this user."""
    if principal.has(ADMIN) or principal.user_id == user_id:
        return principal
    raise Forbidden("this token may only read and change its own user's inbox")
