"""The one error tree. Every module raises these; api/problems.py maps them to RFC 9457 once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending input, named by its dotted path (``payload.order_id``)."""

    field: str
    message: str


class FrontdeskError(Exception):
    """Base of every error frontdesk raises on purpose."""

    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(FrontdeskError):
    """A well-formed request with bad values."""

    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class MalformedRequest(FrontdeskError):
    status = 400
    title = "Malformed request"
    type_slug = "malformed-request"


class Unauthenticated(FrontdeskError):
    status = 401
    title = "Missing or invalid credentials"
    type_slug = "unauthenticated"


class Forbidden(FrontdeskError):
    status = 403
    title = "Not allowed"
    type_slug = "forbidden"


class NotFound(FrontdeskError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(FrontdeskError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class TooLarge(FrontdeskError):
    status = 413
    title = "Request too large"
    type_slug = "too-large"


class RateLimited(FrontdeskError):
    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(FrontdeskError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"


class ConfigError(FrontdeskError):
    """The configuration cannot be used; the message names the key."""

    title = "Invalid configuration"
    type_slug = "invalid-configuration"
