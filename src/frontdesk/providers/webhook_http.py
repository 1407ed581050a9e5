"""Posting webhook requests over HTTP, through the SSRF guard (see ssrf_guard.py).

One pooled client serves every endpoint without a client certificate; an endpoint with one
(mutual TLS) gets a client of its own, made when first needed. At most the first bytes of each
answer are read: an endpoint cannot make us read a gigabyte.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from frontdesk.core.ports import Clock, WebhookAnswer, WebhookRequest, WebhookUnreachable
from frontdesk.core.ssrf import Network
from frontdesk.providers.base import retry_after
from frontdesk.providers.ssrf_guard import AddressRefused, guarded_client

RESPONSE_CAP = 1024


class HttpWebhookPoster:
    def __init__(
        self, allowed_networks: Sequence[Network], clock: Clock, *, ca_file: Path | None = None
    ) -> None:
        self._allowed = allowed_networks
        self._clock = clock
        self._ca_file = ca_file
        # Timeouts are per request (each endpoint has its own); this one is only a ceiling.
        self._shared = guarded_client(allowed_networks, 60, verify=self._tls())
        self._identified: dict[str, httpx.AsyncClient] = {}

    async def post(self, request: WebhookRequest) -> WebhookAnswer:
        client = self._client(request)
        started = time.perf_counter()

        def elapsed_ms() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(request.timeout_seconds):
                async with client.stream(
                    "POST",
                    request.url,
                    content=request.body,
                    headers=dict(request.headers),
                    timeout=request.timeout_seconds,
                ) as response:
                    start = await _first_bytes(response)
        except AddressRefused as refused:
            raise WebhookUnreachable(str(refused), latency_ms=elapsed_ms()) from None
        except (TimeoutError, httpx.TimeoutException):
            raise WebhookUnreachable(
                f"no answer within {request.timeout_seconds:g}s", latency_ms=elapsed_ms()
            ) from None
        except httpx.HTTPError as error:
            raise WebhookUnreachable(
                f"connection failed ({type(error).__name__})", latency_ms=elapsed_ms()
            ) from None
        return WebhookAnswer(
            status_code=response.status_code,
            latency_ms=elapsed_ms(),
            response_start=start.decode("utf-8", "replace"),
            retry_after=retry_after(response, self._clock.now()),
        )

    def _client(self, request: WebhookRequest) -> httpx.AsyncClient:
        if request.client_identity is None:
            return self._shared
        certificate, key = request.client_identity
        # Keyed by the identity too: a certificate changed through the API takes effect.
        name = f"{request.endpoint_id}:{hashlib.sha256(certificate.encode()).hexdigest()}"
        client = self._identified.get(name)
        if client is None:
            client = guarded_client(self._allowed, 60, verify=self._tls(certificate, key))
            self._identified[name] = client
        return client

    async def aclose(self) -> None:
        for client in (self._shared, *self._identified.values()):
            await client.aclose()

    def _tls(self, certificate: str | None = None, key: str | None = None) -> ssl.SSLContext:
        """Servers verified against the system's CAs (and the operator's own, if configured);
        with a client identity, presenting it (mutual TLS)."""
        context = ssl.create_default_context()
        if self._ca_file is not None:
            context.load_verify_locations(self._ca_file)
        if certificate is not None and key is not None:
            _present(context, certificate, key)
        return context


def _present(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """The ssl module reads a certificate chain only from files: they live for this call."""
    with tempfile.TemporaryDirectory() as directory:
        chain, secret = Path(directory) / "certificate.pem", Path(directory) / "key.pem"
        chain.write_text(certificate)
        secret.touch(mode=0o600)
        secret.write_text(key)
        context.load_cert_chain(chain, secret)


async def _first_bytes(response: httpx.Response) -> bytes:
    start = b""
    async for chunk in response.aiter_bytes():
        start += chunk
        if len(start) >= RESPONSE_CAP:
            break
    return start[:RESPONSE_CAP]
