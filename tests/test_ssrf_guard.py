"""The SSRF guard end to end, over loopback only: what it refuses never reaches the server, what
the operator allows does, and TLS is still checked against the URL's hostname."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv4Network, IPv6Network

import httpx
import pytest
import trustme

from frontdesk.providers.ssrf_guard import AddressRefused, guarded_client

LOOPBACK_ALLOWED = [IPv4Network("127.0.0.1/32")]
NOTHING_ALLOWED: list[IPv4Network | IPv6Network] = []


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def localhost_resolves_to_ipv4_loopback() -> bool:
    answers = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    return any(answer[4][0] == "127.0.0.1" for answer in answers)


class LoopbackServer:
    """A minimal HTTP server that counts the connections it accepts and answers 200."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.answer)
        await writer.drain()
        writer.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@asynccontextmanager
async def serving(
    host: str, answer: bytes = OK, tls: ssl.SSLContext | None = None
) -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer(answer)
    listener = await asyncio.start_server(server.handle, host, 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


async def get(url: str, allowed: list[IPv4Network]) -> httpx.Response:
    async with guarded_client(allowed, timeout=5) as client:
        return await client.get(url)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is loopback (127.0.0.0/8)"),
        ("[::ffff:127.0.0.1]", "carries 127.0.0.1, which is loopback (127.0.0.0/8)"),
        ("localhost", "127.0.0.1 is loopback (127.0.0.0/8)"),
    ],
)
async def test_without_an_allowlist_loopback_is_refused_and_nothing_is_sent(
    host: str, reason: str
) -> None:
    async with serving("127.0.0.1") as server:
        with pytest.raises(AddressRefused) as refused:
            await get(f"http://{host}:{server.port}/", NOTHING_ALLOWED)

    assert reason in str(refused.value)
    assert server.connections == 0


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
async def test_without_an_allowlist_ipv6_loopback_is_refused_and_nothing_is_sent() -> None:
    async with serving("::1") as server:
        with pytest.raises(AddressRefused, match=r"::1 is loopback \(::1/128\)"):
            await get(f"http://[::1]:{server.port}/", NOTHING_ALLOWED)

    assert server.connections == 0


async def test_an_allowlisted_address_is_reached() -> None:
    async with serving("127.0.0.1") as server:
        response = await get(f"http://127.0.0.1:{server.port}/", LOOPBACK_ALLOWED)

    assert response.status_code == 200
    assert server.connections == 1


@pytest.mark.skipif(
    not localhost_resolves_to_ipv4_loopback(), reason="localhost does not resolve to 127.0.0.1"
)
async def test_a_hostname_resolving_to_an_allowlisted_address_is_reached() -> None:
    async with serving("127.0.0.1") as server:
        response = await get(f"http://localhost:{server.port}/", LOOPBACK_ALLOWED)

    assert response.status_code == 200
    assert server.connections == 1


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
async def test_allowing_ipv4_loopback_leaves_ipv6_loopback_refused() -> None:
    async with serving("::1") as server:
        with pytest.raises(AddressRefused, match="::1 is loopback"):
            await get(f"http://[::1]:{server.port}/", LOOPBACK_ALLOWED)

    assert server.connections == 0


async def test_allowing_ipv4_loopback_leaves_ipv6_loopback_refused_even_with_no_server() -> None:
    # Refused before any connection is tried, so this holds without an IPv6 loopback too.
    with pytest.raises(AddressRefused, match="::1 is loopback"):
        await get("http://[::1]:9/", LOOPBACK_ALLOWED)


async def test_a_refusal_is_a_connection_error_to_httpx() -> None:
    with pytest.raises(httpx.ConnectError):
        await get("http://127.0.0.1:9/", NOTHING_ALLOWED)


async def test_a_redirect_is_answered_not_followed() -> None:
    redirect = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2/\r\nContent-Length: 0\r\n\r\n"
    async with serving("127.0.0.1", answer=redirect) as server:
        response = await get(f"http://127.0.0.1:{server.port}/", LOOPBACK_ALLOWED)

    assert response.status_code == 302
    assert server.connections == 1


def tls_for_localhost() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for the name localhost (not for 127.0.0.1), and a
    client context trusting it."""
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    return server_tls, client_tls


@pytest.mark.skipif(
    not localhost_resolves_to_ipv4_loopback(), reason="localhost does not resolve to 127.0.0.1"
)
async def test_tls_is_verified_against_the_hostname_though_the_socket_goes_to_its_address() -> None:
    server_tls, client_tls = tls_for_localhost()

    async with (
        serving("127.0.0.1", tls=server_tls) as server,
        guarded_client(LOOPBACK_ALLOWED, timeout=5, verify=client_tls) as client,
    ):
        response = await client.get(f"https://localhost:{server.port}/")

    assert response.status_code == 200


async def test_tls_to_a_certificate_for_another_name_fails() -> None:
    server_tls, client_tls = tls_for_localhost()

    async with (
        serving("127.0.0.1", tls=server_tls) as server,
        guarded_client(LOOPBACK_ALLOWED, timeout=5, verify=client_tls) as client,
    ):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{server.port}/")
