"""Signed, expiring tokens (inbox user tokens, unsubscribe and preference links): HMAC-SHA256
over compact JSON claims. Stateless, so any process holding the server secret can check them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret: str, purpose: str, subject: str, expires_at: datetime) -> str:
    claims = {"p": purpose, "s": subject, "e": int(expires_at.timestamp())}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify_token(secret: str, purpose: str, token: str, now: datetime) -> str:
    """The token's subject, or InvalidToken."""
    if not token.isascii():  # what we sign is base64url; anything else is not ours
        raise InvalidToken("the token is malformed")
    body, _, signature = token.partition(".")
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    # Bytes, not str: compare_digest raises TypeError on a str with non-ASCII characters, and a
    # token arrives from a header or a link that anyone can fill with any character.
    if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise InvalidToken("the token's signature does not match")
    try:
        claims: dict[str, Any] = json.loads(_unb64(body))
        token_purpose, subject, expires = str(claims["p"]), str(claims["s"]), int(claims["e"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidToken("the token is malformed") from error
    if token_purpose != purpose:
        raise InvalidToken(f"the token is for {token_purpose}, not {purpose}")
    if now.timestamp() >= expires:
        raise InvalidToken("the token has expired")
    return subject


UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"


@dataclass(frozen=True, slots=True)
class Links:
    """The signed links a message may carry: one-click unsubscribe (per category) and the
    preference centre. Both work without a login and expire after ``valid_for``."""

    public_url: str
    secret: str
    valid_for: timedelta

    def for_user(
        self, user_id: str, category: str, now: datetime, channel: str = "email"
    ) -> dict[str, str]:
        base = self.public_url.rstrip("/")
        expires = now + self.valid_for
        subject = f"{category}:{channel}:{user_id}"
        unsubscribe = sign_token(self.secret, UNSUBSCRIBE, subject, expires)
        preferences = sign_token(self.secret, PREFERENCES, user_id, expires)
        return {
            "unsubscribe_url": f"{base}/v1/unsubscribe?token={unsubscribe}",
            "preferences_url": f"{base}/preferences?token={preferences}",
        }

    def unsubscribe_subject(self, token: str, now: datetime) -> tuple[str, str, str]:
        """(category, channel, user id) of a valid unsubscribe token; InvalidToken otherwise."""
        subject = verify_token(self.secret, UNSUBSCRIBE, token, now)
        category, _, rest = subject.partition(":")
        channel, _, user_id = rest.partition(":")
        if not category or not channel or not user_id:
            raise InvalidToken("the token is malformed")
        return category, channel, user_id
