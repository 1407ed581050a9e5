"""The right to erasure: after DELETE no table holds the person's contact points or payload
values, and the audit trail of what was sent to them still stands, under a pseudonym."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from frontdesk.store import tables
from tests.support.client import Api, unique


async def _every_stored_text(instance: Any) -> str:
    """Every value of every row of every table, as one string to search."""
    parts = []
    async with instance.store._engines.reader.connect() as connection:
        for table in tables.metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


async def test_after_erasure_no_table_holds_the_persons_data(
    api: Api, frontdesk: tuple[Any, str]
) -> None:
    instance, _ = frontdesk
    email = f"{unique('erase')}@example.com"
    phone = "+14155550177"
    secret_value = unique("payload-value")
    user_id = await api.put_user(email=email, phone=phone, name="Erin")
    await api.http.post(
        f"/v1/users/{user_id}/devices", json={"token": unique("tok"), "provider": "fcm"}
    )
    template = await api.put_template(
        {
            "channels": {
                "email": {"subject": "{{ payload.code }}", "html": "<p>{{ payload.code }}</p>"},
                "in_app": {"title": "Code", "body": "{{ payload.code }}"},
            }
        }
    )
    response = await api.send(user_id=user_id, template=template, payload={"code": secret_value})
    notification_id = response.json()["id"]
    await api.settled(notification_id)
    await api.http.put(f"/v1/suppressions/email/{email}", json={"reason": "complaint"})
    audit_before = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()
    assert secret_value in await _every_stored_text(instance)

    erased = await api.http.delete(f"/v1/users/{user_id}")

    assert erased.status_code == 204
    stored = await _every_stored_text(instance)
    for personal in (email, phone, secret_value):
        assert personal not in stored
    assert user_id not in stored
    audit_after = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()
    assert [e["type"] for e in audit_after["items"]] == [e["type"] for e in audit_before["items"]]
    assert all(e["user_id"].startswith("erased_") for e in audit_after["items"] if e["user_id"])
    assert (await api.http.get(f"/v1/users/{user_id}")).status_code == 404


async def test_export_returns_everything_held_about_the_user(api: Api) -> None:
    email = f"{unique('export')}@example.com"
    user_id = await api.put_user(email=email, name="Ex")
    await api.http.put(f"/v1/users/{user_id}/preferences", json={"channels": {"sms": False}})
    await api.http.put(f"/v1/suppressions/email/{email}", json={"reason": "complaint"})
    template = await api.put_template({"channels": {"in_app": {"title": "t", "body": "b"}}})
    notification_id = (await api.send(user_id=user_id, template=template)).json()["id"]
    await api.settled(notification_id)

    exported = (await api.http.get(f"/v1/users/{user_id}/export")).json()

    assert exported["user"]["email"] == email
    assert exported["preferences"]["channels"] == {"sms": False}
    assert exported["suppressions"] == [{"channel": "email", "address": email}]
    (notification,) = exported["notifications"]
    assert notification["id"] == notification_id
    assert notification["deliveries"][0]["status"] == "sent"
    assert len(exported["inbox"]) == 1
    assert any(e["type"] == "notification.accepted" for e in exported["audit"])
