"""An HTTP client that cannot be pointed at internal networks: for requests to user-given URLs.

Not a provider type (it has no ``build``): the webhook provider sends through ``guarded_client``.

The guard sits where the connection is made, not where the URL is read. It resolves the host
itself, checks every address with ``core.ssrf.refusal`` and connects to a checked IP address, so a
DNS answer that changes between a check and a connection (DNS rebinding) never reaches an internal
address. TLS still verifies the certificate for the URL's hostname: httpcore gives the hostname
as the server name, whatever address the socket was connected to. Redirects are not followed, and
environment proxies are not used, since either would send the request somewhere unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence

import httpcore
import httpx

from frontdesk.core.ssrf import Address, Network, refusal

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50)


class AddressRefused(httpx.ConnectError):
    """Every address the host resolves to is one webhooks may not reach; nothing was sent.

    A ``httpx.ConnectError``, so a caller that handles connection failures handles this one too;
    a caller that can tell a refusal from an outage (it will not heal by retrying) catches it
    first.
    """

    def __init__(self, host: str, reasons: Sequence[str]) -> None:
        super().__init__(f"refused to connect to {host}: {'; '.join(reasons)}")
        self.host = host
        self.reasons = tuple(reasons)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses ``core.ssrf.refusal`` allows."""

    def __init__(self, allowed_networks: Sequence[Network]) -> None:
        self._allowed_networks = tuple(allowed_networks)
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._permitted_addresses(host, port)
                return await self._connect_to_first(addresses, port, local_address, socket_options)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"connecting to {host} timed out") from error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, ["a Unix socket is not a network address"])

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)

    async def _permitted_addresses(self, host: str, port: int) -> list[Address]:
        """The host's addresses webhooks may reach, in the resolver's order of preference."""
        try:
            resolved = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        addresses = dict.fromkeys(ipaddress.ip_address(entry[4][0]) for entry in resolved)
        refusals = {address: refusal(address, self._allowed_networks) for address in addresses}
        permitted = [address for address, reason in refusals.items() if reason is None]
        if not permitted:
            raise AddressRefused(host, [r for r in refusals.values() if r is not None])
        return permitted

    async def _connect_to_first(
        self,
        addresses: Sequence[Address],
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first address that answers, or the last address's failure."""
        for address in addresses[:-1]:
            with contextlib.suppress(httpcore.ConnectError):
                return await self._connect(address, port, local_address, socket_options)
        return await self._connect(addresses[-1], port, local_address, socket_options)

    async def _connect(
        self,
        address: Address,
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_tcp(
            str(address), port, local_address=local_address, socket_options=socket_options
        )


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, connecting through ``GuardedNetworkBackend``."""

    def __init__(
        self,
        allowed_networks: Sequence[Network],
        *,
        verify: ssl.SSLContext | bool = True,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(verify=verify, http2=http2, limits=limits, trust_env=False)
        # httpx 0.28 takes no network backend (encode/httpx#3749 adds it), so the pool it has just
        # built is replaced by the same pool with the guard; requests go through self._pool only.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=GuardedNetworkBackend(allowed_networks),
        )


def guarded_client(
    allowed_networks: Sequence[Network],
    timeout: float,
    *,
    verify: ssl.SSLContext | bool = True,
    http2: bool = False,
    limits: httpx.Limits = DEFAULT_LIMITS,
    **options: object,
) -> httpx.AsyncClient:
    """A pooled client that reaches only public addresses and ``allowed_networks``, and raises
    ``AddressRefused`` for anything else. ``options`` are passed to ``httpx.AsyncClient``."""
    transport = GuardedTransport(allowed_networks, verify=verify, http2=http2, limits=limits)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        **options,  # type: ignore[arg-type]
    )
