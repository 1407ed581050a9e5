"""The MIME message an email provider hands over whole (SMTP, SES raw): built once, the same way.

multipart/alternative with the plain text first and the HTML last, because clients show the
last part they can render. Headers are written by the stdlib's SMTP policy, which encodes
non-ASCII subjects and display names (RFC 2047) and ends lines with CRLF.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Any

from inscriptis import get_text

from frontdesk.core.ports import OutboundMessage
from frontdesk.core.retry import PermanentError


def email_recipient(message: OutboundMessage) -> str:
    """The address a delivery goes to: a user without one cannot be emailed at all."""
    if not message.recipient:
        raise PermanentError("the user has no email address", code="no_recipient")
    return message.recipient


def delivery_email(
    message: OutboundMessage, *, sender: str, now: datetime
) -> tuple[str, EmailMessage]:
    """The recipient's address and the email for one delivery, for the providers that hand
    over the MIME message whole."""
    recipient = email_recipient(message)
    email = mime_message(
        message.content,
        sender=sender,
        recipient=recipient,
        delivery_id=message.delivery_id,
        now=now,
    )
    return recipient, email


def mime_message(
    content: Mapping[str, Any],
    *,
    sender: str,
    recipient: str,
    delivery_id: str,
    now: datetime,
) -> EmailMessage:
    """The email for one delivery from its rendered content (subject, html, text?, headers?)."""
    html = str(content["html"])
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = str(content["subject"])
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(delivery_id, sender)
    for name, value in (content.get("headers") or {}).items():
        message[name] = str(value)
    # Quoted-printable keeps every line short and 7-bit: no server needs 8BITMIME for it, and
    # SES's 1000-character line limit holds whatever the template produced.
    message.set_content(plain_text(content), subtype="plain", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def plain_text(content: Mapping[str, Any]) -> str:
    """The template's text part, or one made from its HTML for clients that show no HTML."""
    return str(content.get("text") or get_text(str(content["html"])))


def message_id(delivery_id: str, sender: str) -> str:
    """``<delivery id@sender's domain>``: the same on every attempt, so a retried send is
    recognisable as the same message by the provider and by the recipient's server."""
    return f"<{delivery_id}@{sender_domain(sender)}>"


def sender_domain(sender: str) -> str:
    """``shop.example`` from ``Shop <noreply@shop.example>``."""
    return Address(addr_spec=envelope_address(sender)).domain


def envelope_address(mailbox: str) -> str:
    """The bare address of a mailbox written with a display name (for SMTP's MAIL FROM)."""
    return parseaddr(mailbox)[1]
