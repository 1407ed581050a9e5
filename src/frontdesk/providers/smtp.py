"""Email through any SMTP server (a relay, a mail service's SMTP endpoint, a local Postfix).

One connection per message: a send is a few round trips on a server the operator usually runs
close by, and a fresh connection cannot be left half-way through another message's
transaction by a cancelled send. SMTP replies are classified by their code: 4xx may succeed
later, 5xx never will, and a 5xx on RCPT TO means the mailbox itself is dead.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import Field, SecretStr

from frontdesk.core.models import Channel
from frontdesk.core.ports import OutboundMessage, SendResult
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError
from frontdesk.providers.base import ProviderContext, ProviderOptions
from frontdesk.providers.email_message import delivery_email, envelope_address

CHANNEL = Channel.EMAIL

# RCPT TO answers that say the mailbox does not exist or can never take mail (RFC 5321 §4.2.3:
# 550 unavailable, 551 not local, 553 name not allowed); 552 there means a full mailbox, which
# RFC 5321 asks clients to treat as temporary.
_DEAD_MAILBOX_CODES = frozenset({550, 551, 553})


class Options(ProviderOptions):
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str = Field(alias="from")
    username: str | None = None
    password: SecretStr | None = None
    # "starttls" upgrades a plain connection (port 587), "tls" is TLS from the first byte
    # (port 465), "none" is for a relay on the same host or network only.
    tls: Literal["starttls", "tls", "none"] = "starttls"
    ca_file: Path | None = None  # trust a private CA (a company relay) besides the system's
    helo_name: str | None = None


class SmtpProvider:
    def __init__(self, options: Options, context: ProviderContext) -> None:
        self.name = context.name
        self._options = options
        self._context = context
        self._tls_context = _tls_context(options.ca_file) if options.tls != "none" else None

    async def send(self, message: OutboundMessage) -> SendResult:
        recipient, email = delivery_email(
            message, sender=self._options.sender, now=self._context.clock.now()
        )
        options = self._options
        client = aiosmtplib.SMTP(
            hostname=options.host,
            port=options.port,
            username=options.username,
            password=options.password.get_secret_value() if options.password else None,
            local_hostname=options.helo_name,
            use_tls=options.tls == "tls",
            start_tls=options.tls == "starttls",
            tls_context=self._tls_context,
            timeout=self._context.timeout_seconds,
        )
        try:
            async with client:
                await client.send_message(
                    email,
                    sender=envelope_address(options.sender),
                    recipients=[recipient],
                )
        except aiosmtplib.SMTPException as error:
            raise _classified(error) from None
        except OSError as error:  # a TLS handshake or certificate check after STARTTLS
            raise _unreachable(error) from None
        return SendResult(provider=self.name, provider_message_id=email["Message-ID"])


def _classified(error: aiosmtplib.SMTPException) -> Exception:
    """Our error for an SMTP failure."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        (refused, *_) = error.recipients
        return _refused_recipient(refused)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        return _refused_recipient(error)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        # The account, not the message, is at fault: every message would fail the same way,
        # so let the next provider take it.
        return ProviderUnavailable(f"smtp_{error.code}: authentication failed")
    if isinstance(error, aiosmtplib.SMTPConnectTimeoutError):
        return ProviderUnavailable("could not connect to the SMTP server in time")
    if isinstance(error, aiosmtplib.SMTPConnectResponseError):
        return ProviderUnavailable(f"smtp_{error.code}: the SMTP server refused the session")
    if isinstance(error, aiosmtplib.SMTPTimeoutError):
        return RetryableError("the SMTP server stopped answering")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _reply_error(error.code, error.message)
    if isinstance(error, aiosmtplib.SMTPConnectError) and isinstance(error.__cause__, ssl.SSLError):
        # With implicit TLS the handshake is part of connecting, and aiosmtplib wraps its
        # failure: say what failed, as after STARTTLS.
        return _unreachable(error.__cause__)
    if isinstance(error, aiosmtplib.SMTPConnectError):
        return ProviderUnavailable("could not connect to the SMTP server")
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        # It may have hung up after taking the message: try again later, not elsewhere now.
        return RetryableError("the SMTP server closed the connection")
    return ProviderUnavailable(f"SMTP session failed: {type(error).__name__}")


def _unreachable(error: OSError) -> ProviderUnavailable:
    """Our error for a connection that failed below SMTP, in a TLS handshake most often."""
    if isinstance(error, ssl.SSLCertVerificationError):
        # OpenSSL's words ("unable to get local issuer certificate", "certificate has
        # expired") tell the operator whether ca_file is missing or the server is at fault.
        return ProviderUnavailable(
            f"the SMTP server's TLS certificate is not trusted: {error.verify_message}"
        )
    return ProviderUnavailable(f"could not reach the SMTP server: {type(error).__name__}")


def _refused_recipient(refused: aiosmtplib.SMTPRecipientRefused) -> Exception:
    status = _enhanced_status(refused.message)
    # 5.1.x is "bad destination address" (RFC 3463), whatever the reply code says.
    if refused.code in _DEAD_MAILBOX_CODES or (refused.code >= 500 and status.startswith("5.1.")):
        return PermanentError(
            f"{_reply_label(refused.code, refused.message)}: mailbox unavailable",
            code=f"smtp_{refused.code}",
            suppress=True,
        )
    return _reply_error(refused.code, refused.message)


def _reply_error(code: int, text: str) -> Exception:
    described = f"{_reply_label(code, text)}: the SMTP server answered {code}"
    if 400 <= code < 500:
        return RetryableError(described)
    if 500 <= code < 600:
        return PermanentError(described, code=f"smtp_{code}")
    return ProviderUnavailable(described)


def _reply_label(code: int, text: str) -> str:
    """``smtp_550 5.1.1``: the reply code and enhanced status, never the text (it often quotes
    the address)."""
    status = _enhanced_status(text)
    return f"smtp_{code} {status}" if status else f"smtp_{code}"


def _enhanced_status(text: str) -> str:
    """The RFC 3463 status (``5.1.1``) at the start of a reply text, or ``""``."""
    first = text.split(" ", 1)[0]
    parts = first.split(".")
    if len(parts) == 3 and all(part.isdigit() for part in parts) and first[0] in "245":
        return first
    return ""


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def build(options: Options, context: ProviderContext) -> SmtpProvider:
    return SmtpProvider(options, context)
