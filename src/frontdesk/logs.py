"""Process-wide structured logging: JSON lines on stderr with allowlist redaction of personal data.

Every line is one JSON object (``event``, ``level``, ``timestamp`` plus bound fields), whether it
comes from structlog or from the stdlib ``logging`` (uvicorn, sqlalchemy, alembic). Run uvicorn
with ``log_config=None`` so it does not install its own non-JSON handlers after us.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from enum import Enum
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

SAFE_FIELDS: frozenset[str] = frozenset(
    {
        "event", "level", "timestamp", "logger", "exception",
        "notification_id", "delivery_id", "inbox_item_id", "endpoint_id", "user_id",
        "template", "template_id", "version", "channel", "provider", "status", "reason_code",
        "attempt", "attempts", "max_attempts", "count", "batch_size",
        "duration_ms", "latency_ms", "elapsed_ms", "method", "route", "status_code",
        "role", "roles", "store", "transport", "host", "port", "lane", "priority",
        "error_type", "queue", "lease_seconds", "retry_in_seconds", "circuit", "rate",
        "topic", "partition", "offset", "key_id", "scopes",
    }
)  # fmt: skip

REDACTED = "[redacted]"

# Defence in depth for values under allowed keys; order matters: emails and secrets may contain
# digit runs the phone pattern would otherwise half-eat.
_SCRUBBERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+"),
    re.compile(r"(?i)\bbearer\s+[\w.~+/=-]+"),
    re.compile(r"\b(?:fd|whsec)_[\w-]+"),
    # Lookarounds keep digit runs inside ULID/UUID ids and hex addresses intact.
    re.compile(r"(?<![\w-])\+?\d(?:[ -]?\d){6,}(?!\w)"),
)

_HANDLER_NAME = "frontdesk.logs"
# uvicorn attaches its own handlers; emptying them lets records propagate to our JSON handler.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def _scrub(text: str) -> str:
    for pattern in _SCRUBBERS:
        text = pattern.sub(REDACTED, text)
    return text


def _keep(value: Any) -> Any:
    """Clean a value that sits under an allowed key: recurse into containers, scrub text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return redact(dict(value))
    if isinstance(value, list | tuple | set | frozenset):
        return [_keep(item) for item in value]
    if isinstance(value, Enum):
        return _keep(value.value)
    # Arbitrary objects would otherwise reach the renderer's repr() fallback unscrubbed.
    return _scrub(value if isinstance(value, str) else str(value))


def redact(event_dict: dict[str, Any]) -> dict[str, Any]:
    """Return a copy where only SAFE_FIELDS keep their (scrubbed) values; others are redacted."""
    return {
        # Keys are scrubbed too: a dict keyed by email addresses must not leak them.
        (_scrub(key) if isinstance(key, str) else key): (
            _keep(value) if key in SAFE_FIELDS else REDACTED
        )
        for key, value in event_dict.items()
    }


def _redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return redact(dict(event_dict))


def _dumps(obj: Any, **kwargs: Any) -> str:
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, **kwargs).decode()
    except orjson.JSONEncodeError:
        # orjson refuses ints beyond 64 bits; a log line must never be lost to that.
        return json.dumps(obj, default=str)


# Loggers whose every line we wrote; libraries may say anything below a warning (httpx logs
# URLs with device tokens in them, hpack every HTTP/2 header, botocore what it signs, SQLAlchemy
# query parameters), so only their warnings and errors get through, whatever the level.
_OUR_LOGGERS = ("frontdesk", *_UVICORN_LOGGERS)


def _libraries_warn_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in _OUR_LOGGERS


def configure_logging(level: str = "info", *, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to one JSON handler; safe to call again."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level: {level!r}")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            # Stamped after redaction: the date's digit run would trip the phone scrubber.
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    handler.addFilter(_libraries_warn_only)

    root = logging.getLogger()
    # Only our own previous handler is replaced: others (e.g. pytest's caplog) stay untouched.
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger; without a name it is named after the calling module."""
    if name is None:
        return structlog.stdlib.get_logger()
    return structlog.stdlib.get_logger(name)
