"""The MIME message SMTP and SES send: parts, encoded headers, a Message-ID stable per delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from frontdesk.providers.email_message import mime_message

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
SENDER = "Boutique Café <noreply@shop.example>"


def built(content: dict[str, Any], delivery_id: str = "dlv_01") -> EmailMessage:
    """The message as a receiving server parses it back from the wire."""
    message = mime_message(
        content, sender=SENDER, recipient="zoe@example.com", delivery_id=delivery_id, now=NOW
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_non_ascii_subject_and_display_name_are_encoded_and_decode_back() -> None:
    content = {"subject": "Votre commande est expédiée ✓", "html": "<p>Hi</p>"}

    raw = mime_message(
        content, sender=SENDER, recipient="zoe@example.com", delivery_id="dlv_01", now=NOW
    ).as_bytes()
    parsed = built(content)

    assert raw.isascii(), "headers and bodies are 7-bit on the wire"
    assert b"=?utf-8?" in raw
    assert parsed["Subject"] == "Votre commande est expédiée ✓"
    assert parsed["From"] == SENDER


def test_text_part_is_generated_from_the_html_when_the_template_has_none() -> None:
    parsed = built({"subject": "Hi", "html": "<h1>Bonjour Zoë</h1><p>Suivi: <b>A-17</b></p>"})

    text, html = parsed.iter_parts()

    assert parsed.get_content_type() == "multipart/alternative"
    assert text.get_content_type() == "text/plain"
    assert "Bonjour Zoë" in text.get_content()
    assert "Suivi: A-17" in text.get_content()
    assert "<" not in text.get_content()
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<h1>Bonjour Zoë</h1><p>Suivi: <b>A-17</b></p>"


def test_the_templates_own_text_part_is_kept() -> None:
    parsed = built({"subject": "Hi", "html": "<p>HTML</p>", "text": "Plain words"})

    text, _ = parsed.iter_parts()

    assert text.get_content().strip() == "Plain words"


def test_extra_headers_such_as_one_click_unsubscribe_are_present() -> None:
    headers = {
        "List-Unsubscribe": "<https://frontdesk.example/v1/unsubscribe?token=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    parsed = built({"subject": "Soldes", "html": "<p>-50%</p>", "headers": headers})

    assert parsed["List-Unsubscribe"] == headers["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_message_id_is_the_delivery_at_the_senders_domain_on_every_attempt() -> None:
    content = {"subject": "Hi", "html": "<p>Hi</p>"}

    first, retried = built(content, "dlv_42"), built(content, "dlv_42")

    assert first["Message-ID"] == "<dlv_42@shop.example>"
    assert retried["Message-ID"] == first["Message-ID"]


def test_addressing_and_date_headers_are_set() -> None:
    parsed = built({"subject": "Hi", "html": "<p>Hi</p>"})

    assert parsed["To"] == "zoe@example.com"
    assert parsed["Date"].datetime == NOW
    assert parsed["MIME-Version"] == "1.0"


def test_long_html_lines_are_wrapped_on_the_wire() -> None:
    content = {"subject": "Hi", "html": "<p>" + "x" * 5000 + "</p>"}

    raw = mime_message(
        content, sender=SENDER, recipient="zoe@example.com", delivery_id="dlv_01", now=NOW
    ).as_bytes()

    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
