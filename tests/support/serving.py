"""An ASGI app served on a free loopback port, inside the test's event loop: how frontdesk
itself and the providers' fakes are served in tests. Over plain HTTP by uvicorn; over TLS (and
HTTP/2, which uvicorn does not speak) by hypercorn with a certificate from a test CA."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trustme
import uvicorn
from hypercorn.asyncio import serve
from hypercorn.config import Config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def serving(app: Any, port: int | None = None, **tls: Any) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (http://127.0.0.1:port).
    ``tls``: uvicorn's ssl_* options, to serve HTTPS (and ask clients for certificates)."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            **tls,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # the server failed to start: raise its error
        await asyncio.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serving_over_tls(
    app: Any, directory: Path, *, alpn: Sequence[str] = ("h2", "http/1.1")
) -> AsyncIterator[tuple[str, Path]]:
    """Serve ``app`` over TLS until the block ends, offering the ``alpn`` protocols; yields its
    base URL (https://127.0.0.1:port) and the test CA's certificate, written in ``directory``,
    for the client to trust."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = (
        directory / f"{part}-{id(app)}.pem" for part in ("ca", "cert", "key")
    )
    authority.cert_pem.write_to_path(str(ca_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile = str(cert_file)
    config.keyfile = str(key_file)
    config.alpn_protocols = list(alpn)
    config.graceful_timeout = 1
    config.accesslog = None
    stopping = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stopping.wait))
    await _until_listening(port, task)
    try:
        yield f"https://127.0.0.1:{port}", ca_file
    finally:
        stopping.set()
        await task


async def _until_listening(port: int, task: asyncio.Task[Any]) -> None:
    while True:
        if task.done():
            task.result()  # the server failed to start: raise its error
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        await writer.wait_closed()
        return
