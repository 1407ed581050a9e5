"""API keys, server secrets, users and their devices."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import delete, func, select, update

from frontdesk.core.models import (
    Actor,
    ApiKey,
    ApiKeyGrant,
    AuditEntry,
    AuditType,
    Device,
    Preferences,
    User,
)
from frontdesk.core.rules import addresses
from frontdesk.errors import NotFound
from frontdesk.ids import Prefix, new_id
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase
from frontdesk.store.rows import audit_to_row, user_from_row


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AccountRecords(StoreBase):
    async def create_api_key(self, scopes: list[str], name: str | None = None) -> tuple[str, str]:
        """Returns (key id, the key itself); only its hash is stored."""
        key = f"fd_{secrets.token_urlsafe(32)}"
        key_id = new_id(Prefix.API_KEY)
        async with self._engines.write() as connection:
            await connection.execute(
                t.api_keys.insert().values(
                    id=key_id,
                    key_hash=hash_api_key(key),
                    scopes=",".join(sorted(scopes)),
                    name=name,
                    created_at=self._clock.now(),
                )
            )
        return key_id, key

    async def list_api_keys(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones too."""
        async with self._engines.reader.connect() as connection:
            rows = await connection.execute(
                select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.id)
            )
            return [_api_key(row) for row in rows.mappings()]

    async def get_api_key(self, key_id: str) -> ApiKey:
        async with self._engines.reader.connect() as connection:
            rows = await connection.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))
            row = rows.mappings().first()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _api_key(row)

    async def revoke_api_key(self, key_id: str) -> ApiKey:
        """From now on the key is refused. A revoked key stays revoked, with the time of its
        first revocation. NotFound for an unknown id."""
        async with self._engines.write() as connection:
            await connection.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )
        return await self.get_api_key(key_id)

    async def ensure_api_key(self, key: str, scopes: list[str], name: str) -> None:
        """Record a key given from outside (the bootstrap admin key) unless already known."""
        async with self._engines.write() as connection:
            await connection.execute(
                self._insert(t.api_keys)
                .values(
                    id=new_id(Prefix.API_KEY),
                    key_hash=hash_api_key(key),
                    scopes=",".join(sorted(scopes)),
                    name=name,
                    created_at=self._clock.now(),
                )
                .on_conflict_do_nothing(index_elements=["key_hash"])
            )

    async def api_key_grant(self, key: str) -> ApiKeyGrant | None:
        """The key's id and scopes; None for an unknown or revoked key."""
        async with self._engines.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(t.api_keys.c.id, t.api_keys.c.scopes).where(
                        t.api_keys.c.key_hash == hash_api_key(key),
                        t.api_keys.c.revoked_at.is_(None),
                    )
                )
            ).first()
        return ApiKeyGrant(row.id, frozenset(row.scopes.split(","))) if row else None

    async def count_api_keys(self) -> int:
        async with self._engines.reader.connect() as connection:
            return int((await connection.scalar(select(func.count()).select_from(t.api_keys))) or 0)

    async def server_secret(
        self, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)
    ) -> str:
        """A random secret made once and kept, so signed tokens outlive a restart."""
        async with self._engines.write() as connection:
            await connection.execute(
                self._insert(t.server_secrets)
                .values(name=name, value=make())
                .on_conflict_do_nothing(index_elements=["name"])
            )
            value = await connection.scalar(
                select(t.server_secrets.c.value).where(t.server_secrets.c.name == name)
            )
        return str(value)

    async def put_user(self, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        now = self._clock.now()
        values = {
            "email": fields.get("email"),
            "phone": fields.get("phone"),
            "locale": fields.get("locale"),
            "timezone": fields.get("timezone"),
            "name": fields.get("name"),
            "properties": fields.get("properties") or {},
            "quiet_hours": fields.get("quiet_hours"),
            "consent": fields.get("consent") or {},
            "updated_at": now,
        }
        async with self._engines.write() as connection:
            updated = await connection.execute(
                update(t.users).where(t.users.c.id == user_id).values(**values)
            )
            if updated.rowcount == 0:
                await connection.execute(
                    t.users.insert().values(id=user_id, preferences={}, created_at=now, **values)
                )
        return await self.get_user_record(user_id)

    async def get_user_record(self, user_id: str) -> dict[str, Any]:
        async with self._engines.reader.connect() as connection:
            row = (
                (await connection.execute(select(t.users).where(t.users.c.id == user_id)))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(f"no user {user_id!r}")
            devices = (
                (
                    await connection.execute(
                        select(t.devices.c.token, t.devices.c.provider, t.devices.c.created_at)
                        .where(t.devices.c.user_id == user_id)
                        .order_by(t.devices.c.created_at)
                    )
                )
                .mappings()
                .all()
            )
        return {**row, "devices": [dict(device) for device in devices]}

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        found: dict[str, User] = {}
        async with self._engines.reader.connect() as connection:
            for chunk in self._chunks(sorted(set(user_ids))):
                devices: dict[str, list[Device]] = {}
                for device in await connection.execute(
                    select(t.devices.c.user_id, t.devices.c.token, t.devices.c.provider)
                    .where(t.devices.c.user_id.in_(chunk))
                    .order_by(t.devices.c.created_at)
                ):
                    devices.setdefault(device.user_id, []).append(
                        Device(device.token, device.provider)
                    )
                rows = await connection.execute(select(t.users).where(t.users.c.id.in_(chunk)))
                for row in rows.mappings():
                    found[row["id"]] = user_from_row(row, tuple(devices.get(row["id"], ())))
        return found

    async def existing_user_ids(self, user_ids: list[str]) -> set[str]:
        found: set[str] = set()
        async with self._engines.reader.connect() as connection:
            for chunk in self._chunks(sorted(set(user_ids))):
                found.update(
                    await connection.scalars(select(t.users.c.id).where(t.users.c.id.in_(chunk)))
                )
        return found

    async def add_device(
        self, user_id: str, token: str, provider: str, replaces: str | None = None
    ) -> None:
        """Register a device. A token belongs to one user: registered again by another (the
        phone changed hands), it moves. ``replaces`` is the token this device had before (apps
        get new tokens): the old one is forgotten."""
        async with self._engines.write() as connection:
            devices = t.devices
            await connection.execute(
                delete(devices).where(
                    (devices.c.token == token) & (devices.c.user_id != user_id)
                    | (devices.c.user_id == user_id) & (devices.c.token == replaces)
                )
            )
            await connection.execute(
                self._insert(devices)
                .values(
                    user_id=user_id, token=token, provider=provider, created_at=self._clock.now()
                )
                .on_conflict_do_nothing(index_elements=["user_id", "token"])
            )

    async def remove_device(self, user_id: str, token: str) -> bool:
        async with self._engines.write() as connection:
            removed = await connection.execute(
                delete(t.devices).where(t.devices.c.user_id == user_id, t.devices.c.token == token)
            )
        return bool(removed.rowcount)

    async def erase_user(self, user_id: str) -> None:
        """Forget the person: contact points, devices, inbox and rendered content go; the audit
        trail stays, under a pseudonym that no longer links to them."""
        # Keyed, so that knowing a user id does not lead back to their audit trail.
        key = await self.server_secret("pseudonyms")
        pseudonym = "erased_" + hmac.new(key.encode(), user_id.encode(), "sha256").hexdigest()[:20]
        (user,) = (await self.get_users([user_id])).values() or (None,)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        async with self._engines.write() as connection:
            await connection.execute(delete(t.users).where(t.users.c.id == user_id))
            await connection.execute(delete(t.devices).where(t.devices.c.user_id == user_id))
            await connection.execute(
                delete(t.webhook_endpoints).where(t.webhook_endpoints.c.user_id == user_id)
            )
            # An erased person's addresses leave the suppression list too: nothing may hold
            # them. Should they come back, they come back as a new person.
            for channel, address in addresses(user):
                await connection.execute(
                    delete(t.suppressions).where(
                        t.suppressions.c.channel == channel, t.suppressions.c.address == address
                    )
                )
            await connection.execute(
                delete(t.inbox_items).where(t.inbox_items.c.user_id == user_id)
            )
            delivery_ids = select(t.deliveries.c.id).where(t.deliveries.c.user_id == user_id)
            await connection.execute(
                delete(t.sandbox_messages).where(t.sandbox_messages.c.delivery_id.in_(delivery_ids))
            )
            await connection.execute(
                update(t.deliveries)
                .where(t.deliveries.c.user_id == user_id)
                .values(user_id=pseudonym, recipient=None, content={})
            )
            await connection.execute(
                update(t.notifications)
                .where(t.notifications.c.user_id == user_id)
                .values(user_id=pseudonym, request={"erased": True})
            )
            await connection.execute(
                update(t.audit_entries)
                .where(t.audit_entries.c.user_id == user_id)
                .values(user_id=pseudonym)
            )
        await self._suppressions_changed(addresses(user))

    async def get_preferences(self, user_id: str) -> Preferences:
        async with self._engines.reader.connect() as connection:
            stored = await connection.scalar(
                select(t.users.c.preferences).where(t.users.c.id == user_id)
            )
        if stored is None:
            raise NotFound(f"no user {user_id!r}")
        return Preferences.from_json(stored)

    async def put_preferences(
        self,
        user_id: str,
        change: Callable[[Preferences], Preferences],
        actor: Actor,
        type_: AuditType = AuditType.PREFERENCES_CHANGED,
        reason: str | None = None,
    ) -> Preferences:
        """Apply ``change`` to the stored preferences in one transaction, with its audit entry."""
        now = self._clock.now()
        async with self._engines.write() as connection:
            stored = await connection.scalar(
                select(t.users.c.preferences).where(t.users.c.id == user_id)
            )
            if stored is None:
                raise NotFound(f"no user {user_id!r}")
            updated = change(Preferences.from_json(stored))
            await connection.execute(
                update(t.users)
                .where(t.users.c.id == user_id)
                .values(preferences=updated.to_json(), updated_at=now)
            )
            await connection.execute(
                t.audit_entries.insert(),
                audit_to_row(
                    AuditEntry(
                        id=new_id(Prefix.AUDIT),
                        at=now,
                        type=type_,
                        actor=actor,
                        user_id=user_id,
                        reason=reason,
                    )
                ),
            )
        return updated


def _api_key(row: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(row["scopes"].split(",")),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
