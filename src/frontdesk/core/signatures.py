"""Standard Webhooks signatures: how an outbound webhook is signed, and how a signature is checked.

Every request carries ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``; the signed
content is ``{id}.{timestamp}.{body}``. The signature header is a space-separated list of
``<version>,<base64 signature>`` entries, so that during a secret rotation each message carries one
signature per secret and a receiver holding either secret accepts it:

- ``v1``: HMAC-SHA256 with a symmetric secret, written ``whsec_<base64 of 24 to 64 random bytes>``;
- ``v1a``: Ed25519, signed with a signing key ``whsk_<base64 of the 32-byte seed>`` and checked with
  its public key ``whpk_<base64 of the 32-byte key>``.

The prefix names the scheme, so a secret is used the way it was made without further settings.
Pure: no I/O, the timestamp is an argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"

SYMMETRIC_PREFIX = "whsec_"
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

SYMMETRIC_VERSION = "v1"
ASYMMETRIC_VERSION = "v1a"

# The specification's bounds: at least 192 bits, at most 512.
SYMMETRIC_SECRET_BYTES = range(24, 65)
NEW_SYMMETRIC_SECRET_BYTES = 32
ED25519_KEY_BYTES = 32


class InvalidSecret(ValueError):
    """A secret or key that is not in one of the Standard Webhooks formats. The message never
    repeats the secret."""


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode(text: str) -> bytes | None:
    """Standard base64, padding optional (some tools strip it); None when it is not base64."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """What both schemes sign: the id and timestamp bind the body to this one message."""
    return f"{webhook_id}.{timestamp}.".encode() + body


@dataclass(frozen=True, slots=True)
class SymmetricSecret:
    """A ``whsec_`` secret: signs and verifies ``v1`` (HMAC-SHA256)."""

    key: bytes = field(repr=False)  # so that logging the object does not log the secret

    def sign(self, content: bytes) -> str:
        digest = hmac.new(self.key, content, hashlib.sha256).digest()
        return f"{SYMMETRIC_VERSION},{_encode(digest)}"

    def matches(self, version: str, signature: bytes, content: bytes) -> bool:
        expected = hmac.new(self.key, content, hashlib.sha256).digest()
        return version == SYMMETRIC_VERSION and hmac.compare_digest(expected, signature)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A ``whpk_`` key: verifies ``v1a`` (Ed25519). What a receiver holds; it cannot sign."""

    key: Ed25519PublicKey

    def matches(self, version: str, signature: bytes, content: bytes) -> bool:
        if version != ASYMMETRIC_VERSION:
            return False
        try:
            self.key.verify(signature, content)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        raw = self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PUBLIC_KEY_PREFIX + _encode(raw)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A ``whsk_`` key: signs ``v1a`` (Ed25519) and, through its public half, verifies it."""

    key: Ed25519PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    def sign(self, content: bytes) -> str:
        return f"{ASYMMETRIC_VERSION},{_encode(self.key.sign(content))}"

    def matches(self, version: str, signature: bytes, content: bytes) -> bool:
        return self.public_key.matches(version, signature, content)


Signer = SymmetricSecret | SigningKey
Verifier = SymmetricSecret | SigningKey | PublicKey


def parse_secret(text: str) -> Verifier:
    """The secret or key a ``whsec_``, ``whsk_`` or ``whpk_`` string stands for."""
    raw = _decode(text.partition("_")[2])
    if raw is not None:
        if text.startswith(SYMMETRIC_PREFIX) and len(raw) in SYMMETRIC_SECRET_BYTES:
            return SymmetricSecret(raw)
        if text.startswith(SIGNING_KEY_PREFIX) and len(raw) == ED25519_KEY_BYTES:
            return SigningKey(Ed25519PrivateKey.from_private_bytes(raw))
        if text.startswith(PUBLIC_KEY_PREFIX) and len(raw) == ED25519_KEY_BYTES:
            return PublicKey(Ed25519PublicKey.from_public_bytes(raw))
    raise InvalidSecret(
        f"expected {SYMMETRIC_PREFIX}<base64 of 24 to 64 bytes>, "
        f"{SIGNING_KEY_PREFIX}<base64 of a 32-byte Ed25519 seed> "
        f"or {PUBLIC_KEY_PREFIX}<base64 of a 32-byte Ed25519 public key>"
    )


def parse_signer(text: str) -> Signer:
    """A secret that can sign: a public key cannot."""
    signer = parse_secret(text)
    if isinstance(signer, PublicKey):
        raise InvalidSecret(f"a {PUBLIC_KEY_PREFIX} public key verifies but cannot sign")
    return signer


def new_symmetric_secret() -> str:
    """A fresh ``whsec_`` secret for an endpoint."""
    return SYMMETRIC_PREFIX + _encode(secrets.token_bytes(NEW_SYMMETRIC_SECRET_BYTES))


def new_key_pair() -> tuple[str, str]:
    """A fresh Ed25519 pair: the ``whsk_`` signing key frontdesk keeps, the ``whpk_`` public key
    the receiver is given."""
    signing_key = SigningKey(Ed25519PrivateKey.generate())
    seed = signing_key.key.private_bytes_raw()
    return SIGNING_KEY_PREFIX + _encode(seed), str(signing_key.public_key)


def sign(webhook_id: str, timestamp: int, body: bytes, signers: Sequence[str]) -> str:
    """The ``webhook-signature`` value: one entry per secret, in the order given (during a
    rotation, the new secret and the old one)."""
    content = signed_content(webhook_id, timestamp, body)
    return " ".join(parse_signer(signer).sign(content) for signer in signers)


def signature_headers(
    webhook_id: str, timestamp: int, body: bytes, signers: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers of one request."""
    return {
        WEBHOOK_ID_HEADER: webhook_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: sign(webhook_id, timestamp, body, signers),
    }


def signature_matches(
    signature_header: str,
    webhook_id: str,
    timestamp: int,
    body: bytes,
    verifiers: Sequence[Verifier],
) -> bool:
    """Whether any entry of the header was made by any of the verifiers over this message.

    Entries of another version, or that are not ``version,base64``, are skipped rather than
    refused: the header may carry signatures of schemes this receiver does not use."""
    content = signed_content(webhook_id, timestamp, body)
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        signature = _decode(encoded)
        if not signature:
            continue
        if any(verifier.matches(version, signature, content) for verifier in verifiers):
            return True
    return False
