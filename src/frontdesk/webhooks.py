"""Check that a webhook really comes from frontdesk: for the services that receive them.

frontdesk signs every webhook by the Standard Webhooks specification, so any of that
specification's libraries verifies it; this module does the same with nothing but frontdesk
installed, and adds a replay guard. Verify the raw body exactly as received: parsing the JSON and
serialising it again changes the bytes and breaks the signature.

Usage, in any web framework::

    import json

    from frontdesk.webhooks import ReplayGuard, WebhookVerificationError, verify

    replay_guard = ReplayGuard()  # one per process, shared by every request

    def receive(request):
        try:
            verify(request.body, request.headers, "whsec_...", replay_guard=replay_guard)
        except WebhookVerificationError as error:
            return 400, str(error)
        event = json.loads(request.body)
        ...

``secret`` is the endpoint's ``whsec_`` secret, or its ``whpk_`` public key when the endpoint uses
asymmetric (Ed25519) signatures. While a secret is being rotated, pass both the new and the old:
a message signed with either is accepted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime

from frontdesk.core.signatures import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    InvalidSecret,
    parse_secret,
    signature_matches,
)

__all__ = [
    "InvalidSecret",
    "InvalidTimestamp",
    "MissingHeader",
    "NoMatchingSignature",
    "ReplayGuard",
    "ReplayedMessage",
    "TimestampTooNew",
    "TimestampTooOld",
    "WebhookVerificationError",
    "verify",
]

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request cannot be trusted to come from frontdesk; the subclass says why."""


class MissingHeader(WebhookVerificationError):
    def __init__(self, header: str) -> None:
        super().__init__(f"the {header} header is missing")
        self.header = header


class InvalidTimestamp(WebhookVerificationError):
    def __init__(self) -> None:
        super().__init__(f"the {WEBHOOK_TIMESTAMP_HEADER} header is not a Unix time in seconds")


class TimestampTooOld(WebhookVerificationError):
    """Signed longer ago than the tolerance: possibly a captured request played again."""

    def __init__(self, age_seconds: float) -> None:
        super().__init__(f"the message was signed {age_seconds:.0f} seconds ago")


class TimestampTooNew(WebhookVerificationError):
    """Signed in the future beyond the tolerance: one of the two clocks is wrong."""

    def __init__(self, ahead_seconds: float) -> None:
        super().__init__(f"the message is timestamped {ahead_seconds:.0f} seconds in the future")


class NoMatchingSignature(WebhookVerificationError):
    def __init__(self) -> None:
        super().__init__("no signature matches the body with the given secret")


class ReplayedMessage(WebhookVerificationError):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"message {webhook_id} was already received")
        self.webhook_id = webhook_id


class ReplayGuard:
    """Remembers the ids of verified messages, so the same message is accepted only once.

    An id is remembered until its timestamp leaves the tolerance window; after that the
    timestamp check refuses a replay on its own. Memory is bounded: past ``max_entries`` the
    oldest ids are forgotten first. Safe to share between threads.

    frontdesk keeps a message's id across retries, so a retry of a message already accepted is
    refused as replayed: acknowledge it without processing it again. If processing fails after
    ``verify``, call ``forget(webhook_id)`` so that frontdesk's retry is accepted.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._expiry_by_id: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, webhook_id: str, *, until: float, now: float) -> None:
        """Record the id, or raise ReplayedMessage if it is already remembered at ``now``."""
        with self._lock:
            self._forget_expired(now)
            expiry = self._expiry_by_id.get(webhook_id)
            if expiry is not None and expiry > now:
                raise ReplayedMessage(webhook_id)
            self._expiry_by_id[webhook_id] = until
            self._expiry_by_id.move_to_end(webhook_id)
            while len(self._expiry_by_id) > self._max_entries:
                self._expiry_by_id.popitem(last=False)

    def forget(self, webhook_id: str) -> None:
        with self._lock:
            self._expiry_by_id.pop(webhook_id, None)

    def _forget_expired(self, now: float) -> None:
        # Ids arrive roughly in timestamp order, so expired ones gather at the front; one that
        # expires later and stands in front only delays the sweep, it is still checked on lookup.
        while self._expiry_by_id:
            oldest_id, expiry = next(iter(self._expiry_by_id.items()))
            if expiry > now:
                return
            del self._expiry_by_id[oldest_id]


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: datetime | None = None,
    replay_guard: ReplayGuard | None = None,
) -> None:
    """Return if the request is a genuine, fresh frontdesk webhook; raise a
    ``WebhookVerificationError`` saying why not otherwise.

    ``payload`` is the raw request body; ``headers`` the request's headers (any letter case);
    ``secret`` a ``whsec_`` secret or ``whpk_`` public key, or several during a rotation.
    A message is accepted if its timestamp is within ``tolerance_seconds`` of ``now`` (the
    current time by default) and one of its signatures matches; with a ``replay_guard``, only the
    first time its ``webhook-id`` is seen. Raises ``InvalidSecret`` (a ``ValueError``, not a
    verification failure: the receiver's configuration is wrong) if a secret is not in a
    Standard Webhooks format.
    """
    verifiers = [parse_secret(text) for text in ([secret] if isinstance(secret, str) else secret)]
    body = payload.encode() if isinstance(payload, str) else payload
    by_name = {name.lower(): value for name, value in headers.items()}
    webhook_id = _required(by_name, WEBHOOK_ID_HEADER)
    timestamp_text = _required(by_name, WEBHOOK_TIMESTAMP_HEADER)
    signature_header = _required(by_name, WEBHOOK_SIGNATURE_HEADER)

    timestamp = _unix_seconds(timestamp_text)
    current = now.timestamp() if now is not None else time.time()
    if timestamp < current - tolerance_seconds:
        raise TimestampTooOld(current - timestamp)
    if timestamp > current + tolerance_seconds:
        raise TimestampTooNew(timestamp - current)

    if not signature_matches(signature_header, webhook_id, timestamp, body, verifiers):
        raise NoMatchingSignature()
    # Only after the signature: ids from unsigned requests must not fill the guard.
    if replay_guard is not None:
        replay_guard.remember(webhook_id, until=timestamp + tolerance_seconds, now=current)


def _unix_seconds(text: str) -> int:
    # Digits only: int() alone would also take "+1", " 1", "1_0" and non-ASCII digits.
    if not (text.isascii() and text.isdigit()):
        raise InvalidTimestamp()
    try:
        return int(text)
    except ValueError as error:  # past Python's limit on the digits it converts
        raise InvalidTimestamp() from error


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise MissingHeader(name)
    return value
