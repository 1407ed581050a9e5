"""Secrets at rest: webhook signing secrets and client keys are stored encrypted.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under the operator's keys
(``webhooks.encryption_keys``): the first encrypts, every one decrypts, so keys can be rotated
by putting the new one first. A database dump alone then reveals no secret. Without configured
keys, a key is generated and kept in the database: safe against nothing but a casual look,
which the start-up log says.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from frontdesk.errors import ConfigError


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                "webhooks.encryption_keys: each key must be 32 url-safe base64-encoded bytes "
                "(make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "a stored secret cannot be decrypted with webhooks.encryption_keys: "
                "was a key removed before the secrets were re-encrypted?"
            ) from None

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()
