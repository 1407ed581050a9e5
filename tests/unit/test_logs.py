from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.logs import REDACTED, SAFE_FIELDS, configure_logging, get_logger, redact


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_unknown_keys_value_is_redacted_but_the_key_is_kept() -> None:
    result = redact({"event": "sent", "recipient": "someone"})

    assert result["recipient"] == REDACTED


def test_an_allowed_keys_value_is_kept() -> None:
    result = redact({"event": "sent", "notification_id": "ntf_01JD3ABCDEFGHJKMNPQRSTVWXY"})

    assert result["notification_id"] == "ntf_01JD3ABCDEFGHJKMNPQRSTVWXY"


def test_an_email_inside_an_allowed_field_is_scrubbed() -> None:
    result = redact({"event": "bounced", "reason_code": "rejected for jane.doe@example.com"})

    assert result["reason_code"] == f"rejected for {REDACTED}"


def test_a_phone_number_inside_the_event_message_is_scrubbed(log_stream: io.StringIO) -> None:
    log = get_logger("frontdesk.test")

    log.info("sms to +44 7700 900123 queued", channel="sms")

    (line,) = lines_of(log_stream)
    assert line["event"] == f"sms to {REDACTED} queued"
    assert line["channel"] == "sms"


def test_a_nested_dict_under_an_unknown_key_is_redacted_whole() -> None:
    result = redact({"event": "x", "payload": {"status": "ok", "email": "a@b.example"}})

    assert result["payload"] == REDACTED


def test_a_stdlib_logging_record_comes_out_as_one_json_line(log_stream: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4242)

    (line,) = lines_of(log_stream)
    assert line["event"] == "Started server process [4242]"
    assert line["level"] == "info"
    assert line["logger"] == "uvicorn.error"
    assert line["timestamp"].endswith("Z")


def test_an_exceptions_traceback_containing_an_email_is_scrubbed(log_stream: io.StringIO) -> None:
    log = get_logger("frontdesk.test")

    try:
        raise ValueError("no such user bob@example.org")
    except ValueError:
        log.exception("lookup failed")

    (line,) = lines_of(log_stream)
    assert "ValueError" in line["exception"]
    assert "bob@example.org" not in log_stream.getvalue()
    assert line["level"] == "error"


unsafe_keys = st.text(min_size=1).filter(lambda key: key not in SAFE_FIELDS)


@given(st.dictionaries(unsafe_keys, st.text()))
def test_no_value_under_an_unknown_key_survives_redaction(event: dict[str, str]) -> None:
    result = redact(event)

    for value in event.values():
        # A substring of the placeholder itself ("dac") is trivially "present"; skip those.
        if len(value) >= 3 and value not in REDACTED:
            assert all(value not in str(out) for out in result.values())


def test_below_a_warning_only_our_own_lines_are_logged_even_at_debug(
    log_stream: io.StringIO,
) -> None:
    get_logger("frontdesk.pipeline.worker").info("delivery sent")
    logging.getLogger("httpx").info("HTTP Request: POST https://api.push.apple.com/3/device/abc")
    logging.getLogger("hpack.hpack").debug("Decoded authorization: bearer eyJhbGciOi")
    logging.getLogger("httpcore.connection").warning("connection failed")

    events = [line["event"] for line in lines_of(log_stream)]

    assert events == ["delivery sent", "connection failed"]
