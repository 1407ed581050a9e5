"""A provider that hangs on one channel does not slow delivery on another."""

from __future__ import annotations

import time

from tests.support.client import Api, eventually, unique


async def test_hanging_sms_provider_does_not_delay_in_app_or_email(api: Api) -> None:
    phone_user = await api.put_user(phone="+14155550100", email=f"{unique('bulk')}@example.com")
    sms_template = await api.put_template({"channels": {"sms": {"text": "code {{ payload.n }}"}}})
    other_template = await api.put_template(
        {
            "channels": {
                "in_app": {"title": "t", "body": "b"},
                "email": {"subject": "s", "html": "h"},
            }
        }
    )
    await api.http.put("/v1/sandbox/faults/sms", json={"error": "hang"})
    try:
        stuck = [
            (await api.send(user_id=phone_user, template=sms_template, payload={"n": n})).json()[
                "id"
            ]
            for n in range(20)
        ]

        async def all_sending() -> bool:
            statuses = [(await api.notification(i))["deliveries"] for i in stuck]
            return all(d and d[0]["status"] == "sending" for d in statuses)

        await eventually(all_sending)
        started = time.monotonic()
        other = (await api.send(user_id=phone_user, template=other_template)).json()["id"]
        found = await api.settled(other, timeout=5)
        elapsed = time.monotonic() - started

        assert {d["status"] for d in found["deliveries"]} == {"sent"}
        assert elapsed < 0.9, f"in-app and email took {elapsed:.2f}s beside a hanging sms provider"
        assert (await api.notification(stuck[0]))["deliveries"][0]["status"] in (
            "sending",
            "queued",
        )
    finally:
        await api.http.delete("/v1/sandbox/faults/sms")
