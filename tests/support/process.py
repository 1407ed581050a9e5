"""frontdesk as a real operating-system process, for tests that kill it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from tests.support.instance import ADMIN_KEY, free_port


class ServerProcess:
    """``frontdesk serve`` (or one role: ``api``, ``orchestrator``, ``worker ...``) in a child
    process; those that serve HTTP do so on a loopback port."""

    def __init__(
        self,
        database_url: str,
        extra_environment: Mapping[str, str] | None = None,
        *,
        log_path: Path | None = None,
        role: Sequence[str] = ("serve",),
    ):
        """``log_path``: where the server's own output (its JSON log lines) goes; else nowhere."""
        self.database_url = database_url
        self.log_path = log_path
        self.role = tuple(role)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.environment = {
            **os.environ,
            "FRONTDESK_DATABASE_URL": database_url,
            "FRONTDESK_ADMIN_KEY": ADMIN_KEY,
            "FRONTDESK_LOG_LEVEL": "warning",
            # As the in-process instances (support/instance.py): own work wakes at once, and
            # seven processes polling every 0.05 s took the CPU the test's work needed.
            "FRONTDESK_PIPELINE__POLL_SECONDS": "0.2",
            **(extra_environment or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") if self.log_path else open(os.devnull, "wb") as output:
            serves_http = self.role[0] in ("serve", "api")
            port = ["--port", str(self.port)] if serves_http else []
            self.process = subprocess.Popen(
                [sys.executable, "-m", "frontdesk", *self.role, *port],
                env=self.environment,
                stdout=output,
                stderr=output,
            )
        if not serves_http:
            return  # a role without HTTP is working as soon as it runs
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"frontdesk serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("frontdesk serve did not become ready within 30s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        )


async def migrated(database_url: str, environment: Mapping[str, str] | None = None) -> None:
    """``frontdesk migrate`` run to completion: before role processes, which do not migrate."""
    migration = ServerProcess(database_url, environment, role=["migrate"])
    await asyncio.to_thread(migration.start)
    assert migration.process is not None
    assert await asyncio.to_thread(migration.process.wait, 60) == 0, "frontdesk migrate failed"
