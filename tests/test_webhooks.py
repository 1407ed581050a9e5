"""Outbound webhooks end to end, against a real receiver on loopback: signed to the Standard
Webhooks specification, retried on the schedule with the same webhook-id, 410 disabling the
endpoint, timeouts cut, SSRF refused, rotation, isolation of a dead endpoint, and replay."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from standardwebhooks import Webhook

from frontdesk.webhooks import verify
from tests.support.client import Api, eventually, unique
from tests.support.clock import ManualClock
from tests.support.instance import CONFIGURATIONS, instance_of_its_own
from tests.support.serving import serving
from tests.support.webhook_receiver import Receiver

LOOPBACK_ALLOWED = {"FRONTDESK_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]'}
SHIPPED = {
    "channels": {
        "webhook": {
            "event_type": "order.shipped",
            "body": {"order_id": "{{ payload.order_id }}", "carrier": "{{ payload.carrier }}"},
        }
    }
}


@dataclass
class Webhooks:
    api: Api
    receiver: Receiver
    receiver_url: str
    clock: ManualClock | None = None

    async def endpoint(self, user_id: str, path: str = "/hook", **fields: Any) -> dict[str, Any]:
        response = await self.api.http.post(
            f"/v1/users/{user_id}/webhook-endpoints",
            json={"url": self.receiver_url + path, **fields},
        )
        assert response.status_code == 201, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    async def ship(self, user_id: str, template: str, order_id: str = "123") -> str:
        response = await self.api.send(
            user_id=user_id, template=template, payload={"order_id": order_id, "carrier": "DHL"}
        )
        assert response.status_code == 202, response.text
        notification_id: str = response.json()["id"]
        return notification_id

    async def attempts(self, user_id: str, endpoint_id: str) -> list[dict[str, Any]]:
        response = await self.api.http.get(
            f"/v1/users/{user_id}/webhook-endpoints/{endpoint_id}/attempts"
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def _running(
    tmp_path: Path,
    environment: dict[str, str],
    clock: ManualClock | None = None,
    store: str = "sqlite",
) -> AsyncIterator[Webhooks]:
    receiver = Receiver()
    async with (
        serving(receiver.app()) as receiver_url,
        instance_of_its_own(store, tmp_path, clock, environment) as (api, _),
    ):
        try:
            yield Webhooks(api, receiver, receiver_url, clock)
        finally:
            receiver.release()


@pytest.fixture(params=CONFIGURATIONS)
async def webhooks(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Webhooks]:
    """Real time, loopback allowlisted: what a local receiver needs."""
    async for running in _running(tmp_path, LOOPBACK_ALLOWED, store=request.param):
        yield running


@pytest.fixture
async def clocked_webhooks(tmp_path: Path) -> AsyncIterator[Webhooks]:
    """A clock the test moves, to see the retry schedule without waiting for it."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    async for running in _running(tmp_path, LOOPBACK_ALLOWED, clock):
        yield running


@pytest.fixture
async def default_webhooks(tmp_path: Path) -> AsyncIterator[Webhooks]:
    """The default configuration: no network allowlisted."""
    async for running in _running(tmp_path, {}):
        yield running


async def test_an_event_arrives_signed_to_the_standard_webhooks_specification(
    webhooks: Webhooks,
) -> None:
    user_id = await webhooks.api.put_user()
    endpoint = await webhooks.endpoint(
        user_id, event_types=["order.shipped"], headers={"X-Api-Key": "customer-key"}
    )
    template = await webhooks.api.put_template(SHIPPED)

    notification_id = await webhooks.ship(user_id, template)

    found = await webhooks.api.settled(notification_id)
    assert found["deliveries"][0]["status"] == "sent"
    (request,) = await eventually(lambda: _arrived(webhooks.receiver, 1))
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "order.shipped"
    assert payload["data"] == {"order_id": "123", "carrier": "DHL"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("frontdesk/")
    assert b" " not in request.body  # compact JSON
    assert request.headers["x-api-key"] == "customer-key"
    (attempt,) = await eventually(lambda: webhooks.attempts(user_id, endpoint["id"]))
    assert attempt["status_code"] == 200 and attempt["latency_ms"] >= 0


async def test_the_payload_timestamp_is_rfc3339_utc_to_the_millisecond(
    clocked_webhooks: Webhooks,
) -> None:
    hooks, clock = clocked_webhooks, clocked_webhooks.clock
    assert clock is not None
    sent_at = clock.now().replace(microsecond=123456)
    clock.set(sent_at)
    user_id = await hooks.api.put_user()
    await hooks.endpoint(user_id)
    template = await hooks.api.put_template(SHIPPED)

    await hooks.ship(user_id, template)

    (request,) = await eventually(lambda: _arrived(hooks.receiver, 1))
    expected = sent_at.strftime("%Y-%m-%dT%H:%M:%S.123Z")
    assert orjson.loads(request.body)["timestamp"] == expected


async def test_an_event_no_endpoint_takes_is_skipped_saying_why(webhooks: Webhooks) -> None:
    user_id = await webhooks.api.put_user()
    await webhooks.endpoint(user_id, event_types=["invoice.paid"])
    template = await webhooks.api.put_template(SHIPPED)

    notification_id = await webhooks.ship(user_id, template)

    (delivery,) = (await webhooks.api.settled(notification_id))["deliveries"]
    assert delivery["status"] == "skipped"
    assert "order.shipped" in delivery["reason"]


async def test_failures_are_retried_on_the_schedule_with_the_same_webhook_id(
    clocked_webhooks: Webhooks,
) -> None:
    hooks, clock = clocked_webhooks, clocked_webhooks.clock
    assert clock is not None
    user_id = await hooks.api.put_user()
    endpoint = await hooks.endpoint(user_id)
    template = await hooks.api.put_template(SHIPPED)
    hooks.receiver.answer(500, 500)

    await hooks.ship(user_id, template)
    # Each step waits for the attempt to be recorded (its retry scheduled) before moving on.
    await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 1))
    clock.advance(seconds=6)  # past the second step (5 s, jittered by at most 20%)
    await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 2))
    clock.advance(seconds=361)  # past the third (5 min)
    requests = await eventually(lambda: _arrived(hooks.receiver, 3))

    assert len({r.headers["webhook-id"] for r in requests}) == 1
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert stamps[1] - stamps[0] >= 4 and stamps[2] - stamps[1] >= 240
    for request in requests:
        verify(
            request.body,
            request.headers,
            endpoint["secret"],
            now=datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC),
        )
    attempts = await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 3))
    assert [a["status_code"] for a in attempts] == [500, 500, 200]


async def test_410_gone_disables_the_endpoint(webhooks: Webhooks) -> None:
    user_id = await webhooks.api.put_user()
    endpoint = await webhooks.endpoint(user_id)
    template = await webhooks.api.put_template(SHIPPED)
    webhooks.receiver.answer(410)

    await webhooks.ship(user_id, template)

    found = await _disabled_and_owner_told(webhooks, user_id, endpoint["id"])
    assert "410" in found["disabled_reason"]


async def test_an_endpoint_that_never_answers_is_cut_at_its_timeout_and_retried(
    clocked_webhooks: Webhooks,
) -> None:
    hooks, clock = clocked_webhooks, clocked_webhooks.clock
    assert clock is not None
    user_id = await hooks.api.put_user()
    endpoint = await hooks.endpoint(user_id, timeout_seconds=0.5)
    template = await hooks.api.put_template(SHIPPED)
    hooks.receiver.hang(3)

    await hooks.ship(user_id, template)
    (first,) = await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 1))
    hooks.receiver.hang(0)
    clock.advance(seconds=6)
    attempts = await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 2))

    assert first["status_code"] is None and "no answer within 0.5s" in first["error"]
    assert attempts[1]["status_code"] == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"])
async def test_by_default_a_loopback_address_is_refused_at_registration(
    default_webhooks: Webhooks, host: str
) -> None:
    user_id = await default_webhooks.api.put_user()

    response = await default_webhooks.api.http.post(
        f"/v1/users/{user_id}/webhook-endpoints", json={"url": f"https://{host}:8443/hook"}
    )

    assert response.status_code == 422
    assert "loopback" in response.text


async def test_by_default_a_name_for_loopback_is_refused_when_connecting(
    default_webhooks: Webhooks,
) -> None:
    hooks = default_webhooks
    user_id = await hooks.api.put_user()
    port = hooks.receiver_url.rsplit(":", 1)[1]
    response = await hooks.api.http.post(
        f"/v1/users/{user_id}/webhook-endpoints", json={"url": f"https://localhost:{port}/hook"}
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    template = await hooks.api.put_template(SHIPPED)

    await hooks.ship(user_id, template)

    (attempt,) = await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 1))
    assert attempt["status_code"] is None and "refused to connect to localhost" in attempt["error"]
    assert hooks.receiver.received == []


async def test_during_a_rotation_the_old_and_the_new_secret_both_verify(
    webhooks: Webhooks,
) -> None:
    user_id = await webhooks.api.put_user()
    endpoint = await webhooks.endpoint(user_id)
    template = await webhooks.api.put_template(SHIPPED)
    rotated = (
        await webhooks.api.http.post(
            f"/v1/users/{user_id}/webhook-endpoints/{endpoint['id']}/rotate-secret"
        )
    ).json()

    await webhooks.ship(user_id, template)

    (request,) = await eventually(lambda: _arrived(webhooks.receiver, 1))
    assert len(request.headers["webhook-signature"].split()) == 2
    Webhook(endpoint["secret"]).verify(request.body, request.headers)
    Webhook(rotated["secret"]).verify(request.body, request.headers)


async def test_an_asymmetric_endpoint_is_signed_with_ed25519(webhooks: Webhooks) -> None:
    user_id = await webhooks.api.put_user()
    endpoint = await webhooks.endpoint(user_id, signature="v1a")
    template = await webhooks.api.put_template(SHIPPED)

    await webhooks.ship(user_id, template)

    (request,) = await eventually(lambda: _arrived(webhooks.receiver, 1))
    assert request.headers["webhook-signature"].startswith("v1a,")
    verify(request.body, request.headers, endpoint["public_key"])


@pytest.mark.timeout(120)
async def test_a_dead_endpoint_delays_no_other(webhooks: Webhooks) -> None:
    user_id = await webhooks.api.put_user()
    await webhooks.endpoint(user_id, "/dead", timeout_seconds=15)
    for n in range(10):
        await webhooks.endpoint(user_id, f"/live-{n}")
    template = await webhooks.api.put_template(SHIPPED)
    webhooks.receiver.hang(30, path="/dead")
    started = asyncio.get_running_loop().time()

    response = await webhooks.api.http.post(
        "/v1/notifications/batch",
        json={
            "notifications": [
                {
                    "user_id": user_id,
                    "template": template,
                    "event_id": unique("ship"),
                    "payload": {"order_id": str(n), "carrier": "DHL"},
                }
                for n in range(100)
            ]
        },
    )
    assert response.status_code == 200, response.text

    live = [f"/live-{n}" for n in range(10)]
    await eventually(lambda: _all_arrived(webhooks.receiver, live, 100), timeout=60, interval=0.2)
    took = asyncio.get_running_loop().time() - started
    print(f"\n1,000 messages to 10 live endpoints, one endpoint hanging: {took:.1f}s")
    assert took < 30


@pytest.fixture
async def single_attempt_webhooks(tmp_path: Path) -> AsyncIterator[Webhooks]:
    """One attempt per message: a failure is final at once, for recovery to pick up."""
    one_attempt = {**LOOPBACK_ALLOWED, "FRONTDESK_WEBHOOKS__RETRY_SCHEDULE_SECONDS": "[0]"}
    async for running in _running(tmp_path, one_attempt):
        yield running


async def test_recovery_resends_exactly_the_failed_messages_with_their_ids(
    single_attempt_webhooks: Webhooks,
) -> None:
    hooks = single_attempt_webhooks
    user_id = await hooks.api.put_user()
    endpoint = await hooks.endpoint(user_id)
    template = await hooks.api.put_template(SHIPPED)
    since = datetime.now(UTC) - timedelta(seconds=1)
    await hooks.ship(user_id, template, "ok-1")
    await eventually(lambda: _arrived(hooks.receiver, 1))
    hooks.receiver.answer(503, 503)
    await hooks.ship(user_id, template, "lost-1")
    await hooks.ship(user_id, template, "lost-2")
    await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 3))
    failed_ids = {r.headers["webhook-id"] for r in hooks.receiver.received[1:]}

    response = await hooks.api.http.post(
        f"/v1/users/{user_id}/webhook-endpoints/{endpoint['id']}/recover",
        json={"since": since.isoformat()},
    )

    assert response.json() == {"resent": 2}
    resent = (await eventually(lambda: _arrived(hooks.receiver, 5)))[3:]
    assert {r.headers["webhook-id"] for r in resent} == failed_ids
    assert sorted(orjson.loads(r.body)["data"]["order_id"] for r in resent) == ["lost-1", "lost-2"]


async def test_an_endpoint_failing_for_days_is_disabled_and_its_owner_told(
    clocked_webhooks: Webhooks,
) -> None:
    hooks, clock = clocked_webhooks, clocked_webhooks.clock
    assert clock is not None
    user_id = await hooks.api.put_user()
    endpoint = await hooks.endpoint(user_id)
    template = await hooks.api.put_template(SHIPPED)
    hooks.receiver.answer(*[500] * 20)
    await hooks.ship(user_id, template, "1")
    await eventually(lambda: _attempts_settled(hooks, user_id, endpoint["id"], 1))

    clock.advance(days=5, seconds=1)
    await hooks.ship(user_id, template, "2")

    found = await _disabled_and_owner_told(hooks, user_id, endpoint["id"])
    assert "failing without a break since" in found["disabled_reason"]


async def test_a_payload_over_the_limit_fails_the_delivery_saying_so(webhooks: Webhooks) -> None:
    user_id = await webhooks.api.put_user()
    await webhooks.endpoint(user_id)
    template = await webhooks.api.put_template(SHIPPED)

    response = await webhooks.api.send(
        user_id=user_id, template=template, payload={"order_id": "x" * 300_000, "carrier": "DHL"}
    )

    (delivery,) = (await webhooks.api.settled(response.json()["id"]))["deliveries"]
    assert delivery["status"] == "failed"
    assert "over webhooks.max_payload_bytes" in delivery["reason"]
    assert webhooks.receiver.received == []


async def test_an_endpoints_rate_limit_spreads_its_messages(webhooks: Webhooks) -> None:
    user_id = await webhooks.api.put_user()
    await webhooks.endpoint(user_id, rate_per_second=10)  # a burst of 10, then 10/s
    template = await webhooks.api.put_template(SHIPPED)

    for n in range(30):
        await webhooks.ship(user_id, template, str(n))

    requests = await eventually(lambda: _arrived(webhooks.receiver, 30), timeout=20)
    spread = requests[-1].at - requests[0].at
    assert spread >= 1.8, f"30 messages at 10/s arrived within {spread:.2f}s"


async def test_an_endpoint_with_a_client_certificate_is_reached_over_mutual_tls(
    tmp_path: Path,
) -> None:
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1")
    client = authority.issue_cert("frontdesk-client@example.com")
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    receiver = Receiver()
    with server.private_key_and_cert_chain_pem.tempfile() as server_pem:
        async with (
            serving(
                receiver.app(),
                ssl_certfile=server_pem,
                ssl_ca_certs=str(tmp_path / "ca.pem"),
                ssl_cert_reqs=ssl.CERT_REQUIRED,
            ) as receiver_url,
            instance_of_its_own(
                "sqlite",
                tmp_path,
                environment={
                    **LOOPBACK_ALLOWED,
                    "FRONTDESK_WEBHOOKS__CA_FILE": str(tmp_path / "ca.pem"),
                },
            ) as (api, _),
        ):
            hooks = Webhooks(api, receiver, receiver_url)
            user_id = await api.put_user()
            identified = await hooks.endpoint(
                user_id,
                "/identified",
                client_certificate=client.cert_chain_pems[0].bytes().decode(),
                client_key=client.private_key_pem.bytes().decode(),
            )
            anonymous = await hooks.endpoint(user_id, "/anonymous")
            template = await api.put_template(SHIPPED)

            await hooks.ship(user_id, template)

            await eventually(lambda: _attempts_settled(hooks, user_id, anonymous["id"], 1))
            (request,) = await eventually(lambda: _arrived(receiver, 1))
            assert request.path == "/identified"
            (attempt,) = await hooks.attempts(user_id, identified["id"])
            assert attempt["status_code"] == 200
            (refused,) = await hooks.attempts(user_id, anonymous["id"])
            assert refused["status_code"] is None and "connection failed" in refused["error"]
            receiver.release()


async def _arrived(receiver: Receiver, count: int) -> list[Any] | None:
    return list(receiver.received) if len(receiver.received) >= count else None


async def _all_arrived(receiver: Receiver, paths: list[str], each: int) -> bool:
    return all(len(receiver.to(path)) >= each for path in paths)


async def _attempts_settled(
    hooks: Webhooks, user_id: str, endpoint_id: str, count: int
) -> list[dict[str, Any]] | None:
    attempts = await hooks.attempts(user_id, endpoint_id)
    return attempts if len(attempts) >= count else None


async def _disabled_and_owner_told(
    hooks: Webhooks, user_id: str, endpoint_id: str
) -> dict[str, Any]:
    """The endpoint once it is disabled, after checking that its owner's audit says so."""

    async def disabled() -> dict[str, Any] | None:
        path = f"/v1/users/{user_id}/webhook-endpoints/{endpoint_id}"
        found: dict[str, Any] = (await hooks.api.http.get(path)).json()
        return found if not found["enabled"] else None

    found = await eventually(disabled)
    audit = (await hooks.api.http.get(f"/v1/audit?user_id={user_id}")).json()["items"]
    assert any(e["type"] == "webhook.endpoint_disabled" for e in audit)
    return found
