"""Deliveries: written by the orchestrator, claimed and settled by workers, redriven by operators.

In the embedded transport the deliveries table is also each channel's queue (see tables.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, case, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from frontdesk.core.models import (
    Actor,
    AuditType,
    Category,
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    Priority,
    SuppressionKind,
    delivery_audit,
    lane,
)
from frontdesk.core.ports import DeliveryOutcome, Orchestration, WorkRef
from frontdesk.core.urgency import ALL_LANES
from frontdesk.errors import Conflict, NotFound
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase
from frontdesk.store.rows import (
    audit_to_row,
    delivery_from_row,
    delivery_to_row,
    notification_from_row,
)

_REDRIVEN = "redriven from the dead-letter list"
# Literal, so that SQLite uses the partial index ix_deliveries_dead (see tables.py).
_IS_DEAD = text("deliveries.status = 'dead'")
_IS_STANDBY = text("deliveries.status = 'deferred'")
# A claimed delivery's columns, in the order of Delivery's fields (see _delivery).
_DELIVERY_COLUMNS = tuple(field.name for field in fields(Delivery))
# A delivery taken by a worker: parameters, its lease and the time.
_TAKE_FOR_SENDING = (
    "UPDATE deliveries SET status = 'sending', attempts = attempts + 1,"
    " lease_until = ?, updated_at = ?"
)
_NOTIFICATION_COLUMNS = ("id", "request", "template_version", "created_at")


def _by_lane(ref: WorkRef) -> int:
    return ref.lane


class _Settled(NamedTuple):
    """One outcome's part in a group commit: applied, or fenced off; and the (channel, address)
    pairs it put on the suppression list."""

    applied: bool
    suppressed: tuple[tuple[str, str], ...] = ()


class DeliveryRecords(StoreBase):
    async def claim_notifications(
        self, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Notification]:
        """Lease pending events (notifications not yet orchestrated) of these lanes, most urgent
        lane first, then oldest first."""
        now = self._clock.now()
        until = now + timedelta(seconds=lease_seconds)
        rows = await self._lease_pending(lanes, now, until, limit, _NOTIFICATION_COLUMNS)
        return sorted(map(self._notification, rows), key=lambda n: n.created_at)

    async def _lease_pending(
        self,
        lanes: Collection[int],
        now: datetime,
        until: datetime,
        limit: int,
        returning: Sequence[str],
    ) -> Sequence[Sequence[Any]]:
        """Lease (or hold) until ``until`` the pending events of these lanes that nobody holds,
        most urgent lane first, then oldest first."""
        time = self._driver.time
        wanted = sorted(lanes)
        async with self._engines.write() as connection:
            return await self._driver.fetch(
                connection,
                "UPDATE notifications SET lease_until = ? WHERE id IN ("
                " SELECT id FROM notifications WHERE orchestrated_at IS NULL"
                f" AND lane IN ({', '.join('?' * len(wanted))})"
                " AND (lease_until IS NULL OR lease_until < ?)"
                f" ORDER BY lane, created_at LIMIT ?{self._skip_locked}"
                f") RETURNING {', '.join(returning)}",
                (time(until), *wanted, time(now), limit),
            )

    @property
    def _skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self._engines.dialect == "postgresql" else ""

    async def save_orchestrations(self, orchestrations: Sequence[Orchestration]) -> None:
        """Deliveries, audit and the event's completion in one commit. A replayed event finds its
        deliveries already there (unique per notification and channel) and adds nothing."""
        now = self._clock.now()
        notification_ids = [o.notification_id for o in orchestrations]
        async with self._engines.write() as connection:
            existing = await self._existing_deliveries(connection, notification_ids)
            deliveries = [
                d
                for o in orchestrations
                for d in o.deliveries
                if (d.notification_id, d.channel.value) not in existing
            ]
            audit = [
                a
                for o in orchestrations
                for a in o.audit
                if a.channel is None or (o.notification_id, a.channel.value) not in existing
            ]
            await self._driver.insert(
                connection, t.deliveries, [delivery_to_row(d) for d in deliveries]
            )
            await self._driver.insert(connection, t.audit_entries, [audit_to_row(a) for a in audit])
            for chunk in self._chunks(notification_ids):
                await connection.execute(
                    update(t.notifications)
                    .where(t.notifications.c.id.in_(chunk))
                    .values(orchestrated_at=now, lease_until=None)
                )

    async def _existing_deliveries(
        self, connection: AsyncConnection, notification_ids: list[str]
    ) -> set[tuple[str, str]]:
        existing: set[tuple[str, str]] = set()
        for chunk in self._chunks(notification_ids):
            rows = await connection.execute(
                select(t.deliveries.c.notification_id, t.deliveries.c.channel).where(
                    t.deliveries.c.notification_id.in_(chunk)
                )
            )
            existing.update((row.notification_id, row.channel) for row in rows)
        return existing

    async def claim_deliveries(
        self, channel: Channel, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Delivery]:
        """Lease due deliveries of one channel in these lanes, most urgent lane first, and audit
        each attempt.

        A delivery whose lease ran out (its worker died mid-send) is due again. The status
        conditions are literal SQL: SQLite uses the partial indexes of tables.py only when the
        query's condition visibly matches theirs; with bound values it scans the backlog.
        """
        now = self._clock.now()
        time = self._driver.time
        lease_until = time(now + timedelta(seconds=lease_seconds))
        wanted_lanes = sorted(lanes)
        in_lanes = f"lane IN ({', '.join('?' * len(wanted_lanes))})"
        due = (
            "SELECT id FROM deliveries WHERE channel = ? AND status = 'sending'"
            f" AND {in_lanes} AND lease_until < ? ORDER BY lease_until",
            "SELECT id FROM deliveries WHERE channel = ? AND status IN ('queued', 'deferred')"
            f" AND {in_lanes} AND available_at <= ? ORDER BY lane, available_at",
        )
        claimed: list[Delivery] = []
        async with self._engines.write() as connection:
            for query in due:
                wanted = limit - len(claimed)
                if wanted <= 0:
                    break
                rows = await self._driver.fetch(
                    connection,
                    f"{_TAKE_FOR_SENDING} WHERE id IN ({query} LIMIT ?"
                    f"{self._skip_locked}) RETURNING {', '.join(_DELIVERY_COLUMNS)}",
                    (lease_until, time(now), channel.value, *wanted_lanes, time(now), wanted),
                )
                claimed.extend(self._delivery(row) for row in rows)
            await self._audit_attempts(connection, claimed, now)
        claimed.sort(key=lambda d: (lane(d.priority, d.category), d.available_at))
        return claimed

    async def _audit_attempts(
        self, connection: AsyncConnection, claimed: Sequence[Delivery], now: datetime
    ) -> None:
        await self._driver.insert(
            connection,
            t.audit_entries,
            [
                audit_to_row(
                    delivery_audit(
                        delivery,
                        AuditType.ATTEMPT_STARTED,
                        Actor.WORKER,
                        now,
                        f"attempt {delivery.attempts} of {delivery.max_attempts}",
                    )
                )
                for delivery in claimed
            ],
        )

    # The side of an external transport (see ports.RelayStore). Work handed over is marked with
    # a time until which it counts as on its way: events by their lease (which their references
    # carry), deliveries by when they are next due (their references carry the attempts).

    async def hand_over_events(
        self, limit: int, hold_seconds: float, lanes: Collection[int] = ALL_LANES
    ) -> list[WorkRef]:
        """Pending events of these lanes not on their way already (new, or their hold or lease
        ran out)."""
        now = self._clock.now()
        held_until = now + timedelta(seconds=hold_seconds)
        rows = await self._lease_pending(lanes, now, held_until, limit, ("id", "user_id", "lane"))
        return sorted(
            (WorkRef(id=r[0], user_id=r[1], lane=r[2], held_until=held_until) for r in rows),
            key=_by_lane,
        )

    async def claim_notifications_by_id(
        self, refs: Sequence[WorkRef], lease_seconds: float
    ) -> list[Notification]:
        """Lease these events if they are still held by the hand-over their reference names,
        or held by nobody (a lease that ran out)."""
        if not refs:
            return []
        now = self._clock.now()
        time = self._driver.time
        by_mark: dict[datetime | None, list[str]] = {}
        for ref in refs:
            by_mark.setdefault(ref.held_until, []).append(ref.id)
        held, parameters = [], []
        for mark, ids in by_mark.items():
            held.append(f"(id IN ({', '.join('?' * len(ids))}) AND lease_until = ?)")
            parameters += [*ids, time(mark)]
        all_ids = [ref.id for ref in refs]
        async with self._engines.write() as connection:
            rows = await self._driver.fetch(
                connection,
                "UPDATE notifications SET lease_until = ? WHERE id IN ("
                f" SELECT id FROM notifications WHERE id IN ({', '.join('?' * len(all_ids))})"
                " AND orchestrated_at IS NULL AND (lease_until IS NULL OR lease_until < ?"
                f" OR {' OR '.join(held)}){self._skip_locked}"
                f") RETURNING {', '.join(_NOTIFICATION_COLUMNS)}",
                (
                    time(now + timedelta(seconds=lease_seconds)),
                    *all_ids,
                    time(now),
                    *parameters,
                ),
            )
        return sorted(map(self._notification, rows), key=lambda n: n.created_at)

    async def hand_over_deliveries(
        self, channel: Channel, limit: int, hold_seconds: float, lanes: Collection[int] = ALL_LANES
    ) -> list[WorkRef]:
        """Due deliveries of one channel in these lanes, and those whose worker died mid-send
        (put back in the queue), most urgent lane first."""
        now = self._clock.now()
        time = self._driver.time
        hold = time(now + timedelta(seconds=hold_seconds))
        wanted_lanes = sorted(lanes)
        in_lanes = f"lane IN ({', '.join('?' * len(wanted_lanes))})"
        returning = " RETURNING id, user_id, lane, attempts"
        orphaned = (
            "UPDATE deliveries SET status = 'queued', lease_until = NULL, available_at = ?,"
            " updated_at = ? WHERE id IN (SELECT id FROM deliveries WHERE channel = ?"
            f" AND status = 'sending' AND {in_lanes} AND lease_until < ? ORDER BY lease_until"
            f" LIMIT ?{self._skip_locked}){returning}"
        )
        due = (
            "UPDATE deliveries SET available_at = ? WHERE id IN (SELECT id FROM deliveries"
            f" WHERE channel = ? AND status IN ('queued', 'deferred') AND {in_lanes}"
            f" AND available_at <= ? ORDER BY lane, available_at LIMIT ?{self._skip_locked})"
            f"{returning}"
        )
        async with self._engines.write() as connection:
            rows = await self._driver.fetch(
                connection,
                orphaned,
                (hold, time(now), channel.value, *wanted_lanes, time(now), limit),
            )
            if len(rows) < limit:
                rows += await self._driver.fetch(
                    connection,
                    due,
                    (hold, channel.value, *wanted_lanes, time(now), limit - len(rows)),
                )
        return sorted(
            (
                WorkRef(id=r[0], user_id=r[1], lane=r[2], channel=channel, attempts=r[3])
                for r in rows
            ),
            key=_by_lane,
        )

    async def claim_deliveries_by_id(
        self, channel: Channel, refs: Sequence[WorkRef], lease_seconds: float
    ) -> list[Delivery]:
        """Lease these deliveries if they are still queued with the attempts their reference
        names, and audit each attempt."""
        if not refs:
            return []
        now = self._clock.now()
        time = self._driver.time
        ids = [ref.id for ref in refs]
        versions = [f"{ref.id}:{ref.attempts}" for ref in refs]
        async with self._engines.write() as connection:
            rows = await self._driver.fetch(
                connection,
                f"{_TAKE_FOR_SENDING} WHERE id IN (SELECT id FROM deliveries"
                f" WHERE id IN ({', '.join('?' * len(ids))}) AND channel = ?"
                " AND status IN ('queued', 'deferred')"
                f" AND (id || ':' || attempts) IN ({', '.join('?' * len(versions))})"
                f"{self._skip_locked}) RETURNING {', '.join(_DELIVERY_COLUMNS)}",
                (
                    time(now + timedelta(seconds=lease_seconds)),
                    time(now),
                    *ids,
                    channel.value,
                    *versions,
                ),
            )
            claimed = [self._delivery(row) for row in rows]
            await self._audit_attempts(connection, claimed, now)
        claimed.sort(key=lambda d: (lane(d.priority, d.category), d.available_at))
        return claimed

    def _notification(self, row: Sequence[Any]) -> Notification:
        return notification_from_row(
            {
                "id": row[0],
                "request": self._driver.parse_json(row[1]),
                "template_version": row[2],
                "created_at": self._driver.parse_time(row[3]),
            }
        )

    def _delivery(self, row: Sequence[Any]) -> Delivery:
        # By position: a claim returns hundreds of rows, and a dict per row costs more than the
        # claim's own query.
        parse_time = self._driver.parse_time
        (
            id_,
            notification_id,
            user_id,
            channel,
            status,
            priority,
            recipient,
            content,
            attempts,
            max_attempts,
            available_at,
            expires_at,
            created_at,
            template_id,
            category,
            *rest,
        ) = row
        return Delivery(
            id_,
            notification_id,
            user_id,
            Channel(channel),
            DeliveryStatus(status),
            Priority(priority),
            recipient,
            self._driver.parse_json(content),
            attempts,
            max_attempts,
            parse_time(available_at),
            parse_time(expires_at),
            parse_time(created_at),
            template_id,
            Category(category),
            *rest,
        )

    async def save_outcomes(self, outcomes: Sequence[DeliveryOutcome]) -> list[bool]:
        settled: list[_Settled] = await self._committer.submit_many("outcome", outcomes)
        # The group commit answers once its transaction is committed: only now may the cache
        # hear of the recipients it suppressed.
        await self._suppressions_changed([pair for s in settled for pair in s.suppressed])
        return [s.applied for s in settled]

    async def _save_outcome_batch(
        self, connection: AsyncConnection, outcomes: Sequence[DeliveryOutcome]
    ) -> list[_Settled]:
        d = t.deliveries
        current: dict[str, tuple[str, int]] = {}
        channels: dict[str, str] = {}
        chained: dict[str, tuple[str, int, str]] = {}
        for chunk in self._chunks([o.delivery_id for o in outcomes]):
            rows = await connection.execute(
                select(
                    d.c.id, d.c.status, d.c.attempts, d.c.sequence, d.c.notification_id, d.c.channel
                ).where(d.c.id.in_(chunk))
            )
            for row in rows:
                current[row.id] = (row.status, row.attempts)
                channels[row.id] = row.channel
                if row.sequence is not None:
                    chained[row.id] = (row.notification_id, row.sequence, row.channel)
        # Fencing: only the worker holding the latest attempt may settle it.
        applied = [
            current.get(o.delivery_id) == (DeliveryStatus.SENDING.value, o.attempt)
            for o in outcomes
        ]
        valid = [o for o, ok in zip(outcomes, applied, strict=True) if ok]
        time = self._driver.time
        await self._driver.execute_many(
            connection,
            "UPDATE deliveries SET status = ?, provider = ?, provider_message_id = ?,"
            " provider_details = COALESCE(?, provider_details), reason = ?,"
            " last_error = ?, available_at = ?, lease_until = NULL, updated_at = ? WHERE id = ?",
            [
                (
                    o.status.value,
                    o.provider,
                    o.provider_message_id,
                    orjson.dumps(o.details).decode() if o.details else None,
                    o.reason,
                    o.last_error,
                    time(o.available_at or o.at),
                    time(o.at),
                    o.delivery_id,
                )
                for o in valid
            ],
        )
        await self._driver.insert(
            connection, t.audit_entries, [audit_to_row(a) for o in valid for a in o.audit]
        )
        buried: dict[str, tuple[tuple[str, str], ...]] = {}
        for outcome in valid:
            if outcome.delivery_id in chained and outcome.status.is_terminal:
                await self._advance_first_strategy(
                    connection, *chained[outcome.delivery_id], outcome
                )
            if outcome.dead_recipients:
                buried[outcome.delivery_id] = await self._bury(
                    connection, channels[outcome.delivery_id], outcome
                )
        return [
            _Settled(ok, buried.get(o.delivery_id, ()))
            for o, ok in zip(outcomes, applied, strict=True)
        ]

    async def _bury(
        self, connection: AsyncConnection, channel: str, outcome: DeliveryOutcome
    ) -> tuple[tuple[str, str], ...]:
        """Recipients the provider called dead, in the same commit as the outcome that says so:
        device tokens are forgotten, addresses suppressed (a STOP'd number's opt-out becomes a
        suppression: the provider will refuse it until the number is in service again).
        Returns the (channel, address) pairs suppressed."""
        if channel == Channel.PUSH.value:
            await connection.execute(
                delete(t.devices).where(t.devices.c.token.in_(outcome.dead_recipients))
            )
            return ()
        reason = f"{outcome.provider}: {outcome.last_error}"
        for address in outcome.dead_recipients:
            await connection.execute(
                self._insert(t.suppressions)
                .values(
                    channel=channel,
                    address=address,
                    kind=SuppressionKind.SUPPRESSED.value,
                    reason=reason,
                    created_at=outcome.at,
                )
                .on_conflict_do_update(
                    index_elements=["channel", "address"],
                    set_={"reason": reason, "kind": SuppressionKind.SUPPRESSED.value},
                )
            )
        return tuple((channel, address) for address in outcome.dead_recipients)

    async def _advance_first_strategy(
        self,
        connection: AsyncConnection,
        notification_id: str,
        sequence: int,
        channel: str,
        outcome: DeliveryOutcome,
    ) -> None:
        """Strategy "first": once a channel is sent, the standby ones are skipped; when it
        does not go out, the next one in order is queued."""
        d = t.deliveries
        went_out = outcome.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
        if went_out:
            reason = f"strategy first: already sent by {channel}"
            which = d.c.sequence > sequence
            values: dict[str, Any] = {"status": DeliveryStatus.SKIPPED.value, "reason": reason}
            audit_type = AuditType.SKIPPED
        else:
            reason = f"strategy first: {channel} did not go out ({outcome.status.value})"
            which = d.c.sequence == sequence + 1
            values = {
                "status": DeliveryStatus.QUEUED.value,
                "reason": None,
                "available_at": outcome.at,
            }
            audit_type = AuditType.QUEUED
        rows = await connection.execute(
            update(d)
            .where(d.c.notification_id == notification_id, which, _IS_STANDBY)
            .values(updated_at=outcome.at, **values)
            .returning(*d.c)
        )
        moved = [delivery_from_row(row) for row in rows.mappings()]
        if moved:
            await self._driver.insert(
                connection,
                t.audit_entries,
                [
                    audit_to_row(delivery_audit(m, audit_type, Actor.WORKER, outcome.at, reason))
                    for m in moved
                ],
            )

    async def record_receipt(
        self, provider_message_id: str, status: DeliveryStatus, reason: str
    ) -> Delivery | None:
        """A provider's receipt for a message it took: ``delivered``, or ``failed`` after all.
        A delivery already settled otherwise (read, failed) keeps its status; the receipt is
        still audited."""
        d = t.deliveries
        now = self._clock.now()
        async with self._engines.write() as connection:
            row = (
                (
                    await connection.execute(
                        select(d).where(d.c.provider_message_id == provider_message_id).limit(1)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            delivery = delivery_from_row(row)
            if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
                await connection.execute(
                    update(d)
                    .where(d.c.id == delivery.id)
                    .values(
                        status=status.value,
                        reason=None if status is DeliveryStatus.DELIVERED else reason,
                        updated_at=now,
                    )
                )
            audit_type = (
                AuditType.DELIVERED if status is DeliveryStatus.DELIVERED else AuditType.FAILED
            )
            await self._driver.insert(
                connection,
                t.audit_entries,
                [audit_to_row(delivery_audit(delivery, audit_type, Actor.PROVIDER, now, reason))],
            )
        return delivery

    async def delivery_statuses(self, delivery_ids: list[str]) -> dict[str, str]:
        statuses: dict[str, str] = {}
        async with self._engines.reader.connect() as connection:
            for chunk in self._chunks(sorted(set(delivery_ids))):
                rows = await connection.execute(
                    select(t.deliveries.c.id, t.deliveries.c.status).where(
                        t.deliveries.c.id.in_(chunk)
                    )
                )
                statuses.update((row.id, row.status) for row in rows)
        return statuses

    async def list_dead_letters(
        self, channel: str | None, after_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        d = t.deliveries
        query = select(d).where(_IS_DEAD).order_by(d.c.id).limit(limit)
        if channel:
            query = query.where(d.c.channel == channel)
        if after_id:
            query = query.where(d.c.id > after_id)
        async with self._engines.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def redrive(
        self,
        *,
        fresh_attempts: dict[Channel, int],
        delivery_id: str | None = None,
        channel: str | None = None,
        since: datetime | None = None,
        actor: Actor = Actor.OPERATOR,
    ) -> list[Delivery]:
        """Put dead deliveries back in their queue with a fresh set of attempts. The same
        delivery row is reused, so a redrive can never make a second delivery."""
        now = self._clock.now()
        d = t.deliveries
        conditions: list[ColumnElement[bool] | TextClause] = [_IS_DEAD]
        if delivery_id is not None:
            conditions.append(d.c.id == delivery_id)
        if channel is not None:
            conditions.append(d.c.channel == channel)
        if since is not None:
            conditions.append(d.c.updated_at >= since)
        async with self._engines.write() as connection:
            if delivery_id is not None:
                status = await connection.scalar(select(d.c.status).where(d.c.id == delivery_id))
                if status is None:
                    raise NotFound(f"no delivery {delivery_id!r}")
                if status != DeliveryStatus.DEAD.value:
                    raise Conflict(f"delivery {delivery_id} is {status}, not dead")
            rows = await connection.execute(
                update(d)
                .where(and_(*conditions))
                .values(
                    status=DeliveryStatus.QUEUED.value,
                    max_attempts=d.c.attempts
                    + case(
                        {c.value: n for c, n in fresh_attempts.items()},
                        value=d.c.channel,
                        else_=1,
                    ),
                    available_at=now,
                    reason=None,
                    updated_at=now,
                )
                .returning(*d.c)
            )
            redriven = [delivery_from_row(row) for row in rows.mappings()]
            if redriven:
                await connection.execute(
                    t.audit_entries.insert(),
                    [
                        audit_to_row(
                            delivery_audit(
                                x,
                                AuditType.REDRIVEN,
                                actor,
                                now,
                                "redriven from the dead-letter list",
                            )
                        )
                        for x in redriven
                    ],
                )
        return redriven
