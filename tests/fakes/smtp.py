"""A real SMTP server (aiosmtpd) in the test's event loop: TLS (STARTTLS, or implicit TLS from
the first byte) and AUTH required.

It records each message it accepted, and can be told to answer the next command of a stage
(RCPT, DATA) with a given reply, or to hang before answering DATA.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str  # "<mechanism> <login>", e.g. "PLAIN mailer"
    tls: bool
    at: float  # time.monotonic() when DATA ended


@dataclass
class _Script:
    """What the server answers next, instead of accepting."""

    rcpt_replies: list[str] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)
    data_hangs: list[float] = field(default_factory=list)


class FakeSmtpServer:
    """Accepts mail for any recipient from a client that logged in with the one account."""

    def __init__(
        self,
        username: str,
        password: str,
        ca_file: Path,
        tls: ssl.SSLContext,
        *,
        implicit_tls: bool = False,
    ) -> None:
        self.username = username
        self.password = password
        self.ca_file = ca_file  # what a client must trust to verify this server
        self._tls = tls
        self._implicit_tls = implicit_tls
        self.received: list[ReceivedEmail] = []
        self.attempts: list[float] = []  # time.monotonic() of every DATA command
        self.failed_logins = 0
        self._script = _Script()
        self.port = 0

    def refuse_next_recipient(self, reply: str) -> None:
        """Answer the next RCPT TO with ``reply`` (e.g. ``550 5.1.1 User unknown``)."""
        self._script.rcpt_replies.append(reply)

    def fail_next_data(self, reply: str) -> None:
        """Answer the next DATA with ``reply`` (e.g. ``451 4.3.0 Try again later``)."""
        self._script.data_replies.append(reply)

    def hang_next_data(self, seconds: float) -> None:
        """Wait this long before answering the next DATA, then drop the message."""
        self._script.data_hangs.append(seconds)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login == self.username.encode() and auth_data.password == (
            self.password.encode()
        )
        if not ok:
            self.failed_logins += 1
        return AuthResult(
            success=ok, handled=False, auth_data=f"{mechanism} {auth_data.login.decode()}"
        )

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._script.rcpt_replies:
            return self._script.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts.append(time.monotonic())
        if self._script.data_hangs:
            await asyncio.sleep(self._script.data_hangs.pop(0))
            return "451 4.4.2 Timed out"
        if self._script.data_replies:
            return self._script.data_replies.pop(0)
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            ReceivedEmail(
                mail_from=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                message=parsed,
                authenticated_as=str(session.auth_data),
                # The transport, not session.ssl: aiosmtpd sets that only after STARTTLS.
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                at=time.monotonic(),
            )
        )
        return "250 2.0.0 OK: queued"

    def for_address(self, address: str) -> list[ReceivedEmail]:
        return [email for email in self.received if address in email.recipients]

    def _session(self) -> SMTP:
        if self._implicit_tls:
            # The listening socket does the TLS, so the session offers no STARTTLS; aiosmtpd
            # counts only a STARTTLS connection as encrypted, hence AUTH without its TLS check
            # (and without its warning that AUTH could then go out in the clear: it cannot).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
                return SMTP(
                    self,
                    hostname="fake-smtp.test",
                    auth_required=True,
                    auth_require_tls=False,
                    authenticator=self._authenticate,
                )
        return SMTP(
            self,
            hostname="fake-smtp.test",
            tls_context=self._tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._authenticate,
        )

    async def serve(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            self._session,
            host="127.0.0.1",
            port=0,
            ssl=self._tls if self._implicit_tls else None,
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


@asynccontextmanager
async def fake_smtp_server(
    directory: Path,
    username: str = "mailer",
    password: str = "smtp-password-s3cret",
    *,
    implicit_tls: bool = False,
) -> AsyncIterator[FakeSmtpServer]:
    """A running fake, its certificate issued by a private CA written to ``directory``.
    ``implicit_tls``: TLS from the first byte (as on port 465) instead of STARTTLS."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(tls)
    ca_file = directory / "smtp-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    fake = FakeSmtpServer(username, password, ca_file, tls, implicit_tls=implicit_tls)
    server = await fake.serve()
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()
