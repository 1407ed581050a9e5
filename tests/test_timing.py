"""When messages go: quiet hours in the user's zone, critical priority, expiry, and dates shown
in the reader's locale and zone. The server's clock is moved by the test, never slept on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.client import Api, eventually, unique
from tests.support.clock import MIDNIGHT_IN_PARIS, ManualClock

QUIET_ENDS = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SPREAD = timedelta(seconds=300)
ORDER = {
    "channels": {
        "email": {"subject": "Order {{ payload.n }}", "html": "<p>Order {{ payload.n }}</p>"},
        "push": {"title": "Order {{ payload.n }}", "body": "Shipped"},
    }
}


async def _sleeper(api: Api) -> str:
    user_id = await api.put_user(
        email=f"{unique('night')}@example.com",
        timezone="Europe/Paris",
        quiet_hours={"start": "22:00", "end": "07:00"},
    )
    await api.http.post(
        f"/v1/users/{user_id}/devices", json={"token": unique("fcm"), "provider": "fcm"}
    )
    return user_id


async def _night_push_deferred(api: Api, **expiry: object) -> str:
    """A push to a sleeping user, sent with ``expiry``, once it is deferred by quiet hours."""
    user_id = await _sleeper(api)
    template = await api.put_template({"channels": {"push": ORDER["channels"]["push"]}})
    response = await api.send(user_id=user_id, template=template, payload={"n": 3}, **expiry)
    notification_id = str(response.json()["id"])

    async def deferred() -> bool:
        return (await _channels(api, notification_id)).get("push", {}).get("status") == "deferred"

    await eventually(deferred)
    return notification_id


async def _channels(api: Api, notification_id: str) -> dict[str, dict[str, object]]:
    found = await api.notification(notification_id)
    return {d["channel"]: d for d in found["deliveries"]}


async def test_at_night_email_goes_at_once_and_push_waits_for_the_window_end(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    user_id = await _sleeper(api)
    template = await api.put_template(ORDER)

    notification_id = (await api.send(user_id=user_id, template=template, payload={"n": 1})).json()[
        "id"
    ]

    async def email_sent_push_deferred() -> dict[str, dict[str, object]] | None:
        channels = await _channels(api, notification_id)
        done = channels.get("email", {}).get("status") == "sent"
        return channels if done and channels["push"]["status"] == "deferred" else None

    channels = await eventually(email_sent_push_deferred)
    assert "quiet hours 22:00-07:00 (Europe/Paris)" in str(channels["push"]["reason"])

    clock.set(QUIET_ENDS - timedelta(minutes=1))
    assert (await _channels(api, notification_id))["push"]["status"] == "deferred"
    clock.set(QUIET_ENDS + SPREAD)

    async def push_sent() -> bool:
        return (await _channels(api, notification_id))["push"]["status"] == "sent"

    await eventually(push_sent)


async def test_critical_push_goes_through_quiet_hours(clocked: tuple[Api, ManualClock]) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    user_id = await _sleeper(api)
    template = await api.put_template(ORDER)

    response = await api.send(
        user_id=user_id, template=template, payload={"n": 2}, priority="critical"
    )

    found = await api.settled(response.json()["id"])
    assert {d["channel"]: d["status"] for d in found["deliveries"]} == {
        "email": "sent",
        "push": "sent",
    }


async def test_a_message_stale_before_it_could_be_sent_expires_unsent(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    expires = (MIDNIGHT_IN_PARIS + timedelta(hours=1)).isoformat()
    notification_id = await _night_push_deferred(api, expires_at=expires)

    clock.set(QUIET_ENDS + SPREAD)
    (push,) = (await api.settled(notification_id))["deliveries"]
    assert push["status"] == "expired"
    assert "before it could be sent" in push["reason"]
    sent = [m for m in await api.sandbox(channel="push") if m["notification_id"] == notification_id]
    assert sent == []


async def test_a_french_canadian_reads_amounts_and_dates_their_way(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    user_id = await api.put_user(locale="fr-CA", timezone="America/Toronto")
    template = await api.put_template(
        {
            "channels": {
                "in_app": {
                    "title": "Reçu",
                    "body": "{{ payload.amount | currency('CAD') }} le "
                    "{{ payload.paid_at | datetime('long') }}",
                }
            }
        }
    )

    response = await api.send(
        user_id=user_id,
        template=template,
        payload={"amount": "1234.5", "paid_at": "2026-11-24T23:30:00Z"},
    )

    await api.settled(response.json()["id"])
    (item,) = (await api.inbox(user_id))["items"]
    assert item["body"].startswith("1\u00a0234,50\u00a0$ le 24 novembre 2026")
    assert "18 h 30" in item["body"]


async def test_ttl_seconds_expires_a_one_time_code_that_could_not_go_in_time(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    notification_id = await _night_push_deferred(api, ttl_seconds=60)

    clock.set(QUIET_ENDS + SPREAD)
    (push,) = (await api.settled(notification_id))["deliveries"]
    assert push["status"] == "expired"
