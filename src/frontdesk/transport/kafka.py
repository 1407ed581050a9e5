"""The Kafka transport: the event log and the per-channel queues on a Kafka cluster.

The store stays the source of truth, as an outbox. Ingest and the orchestrator commit their rows
as in the embedded transport; a relay in every process then hands what is due over to Kafka as
references (an id, never the content). Whoever consumes a reference takes the work by id from the
store, which lets each piece be taken once however many copies of its reference arrive: a
republish, a rebalance, a batch read again after a crash. An offset is committed once the work
its record carried is done. Delayed work (backoff, quiet hours, send_at) waits in the store and
is handed over when due; work handed over and never taken (its consumer died) is handed over again
after ``republish_seconds``.

Topics, each after the configured prefix:

- ``notification.events``: ``NotificationRequested`` records published by product services
  (docs/kafka.md), and the references of accepted bulk events (header ``frontdesk-record``).
- ``notification.events.urgent``: the references of accepted critical and transactional events,
  so that an order confirmation never queues behind a broadcast.
- ``notification.events.invalid``: records of ``notification.events`` that could not be
  admitted, with the reason in the header ``frontdesk-error``.
- ``notification.deliveries.<channel>`` and ``….urgent``: the references of due deliveries.
- ``notification.deliveries.<channel>.dead``: a copy of every delivery that went dead, beside the
  store's dead-letter list.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from frontdesk.config import TransportSettings
from frontdesk.core.models import Channel, Delivery, DeliveryStatus, Notification
from frontdesk.core.ports import DeliveryOutcome, RelayStore, WorkRef
from frontdesk.core.urgency import ALL_LANES, BULK_LANES, URGENT_LANES, urgent_if
from frontdesk.logs import get_logger

log = get_logger(__name__)

# Admits NotificationRequested records (raw values): None for each one admitted (or a duplicate
# of one admitted before), else what is wrong with it.
AdmitRequests = Callable[[Sequence[bytes]], Awaitable[list[str | None]]]

# What a reference names: an event to orchestrate or a delivery to send.
Work = TypeVar("Work", Notification, Delivery)

RECORD_HEADER = "frontdesk-record"
ERROR_HEADER = "frontdesk-error"
_ACCEPTED = b"accepted"
# Records read ahead per topic before its partitions are paused: enough for a batch in hand and
# the next, few enough that a backlog on one topic never holds up another.
_READ_AHEAD = 2_000


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}notification.events"

    @property
    def urgent_events(self) -> str:
        return f"{self.prefix}notification.events.urgent"

    @property
    def invalid_events(self) -> str:
        return f"{self.prefix}notification.events.invalid"

    def deliveries(self, channel: Channel, *, urgent: bool = False) -> str:
        return f"{self.prefix}notification.deliveries.{channel.value}" + (
            ".urgent" if urgent else ""
        )

    def dead(self, channel: Channel) -> str:
        return f"{self.prefix}notification.deliveries.{channel.value}.dead"

    def all(self) -> list[str]:
        names = [self.events, self.urgent_events, self.invalid_events]
        for channel in Channel:
            names += [
                self.deliveries(channel),
                self.deliveries(channel, urgent=True),
                self.dead(channel),
            ]
        return names


@dataclass(frozen=True, slots=True)
class _Received:
    record: ConsumerRecord[bytes, bytes]
    partition: TopicPartition
    generation: int
    offsets: _Offsets

    def settle(self) -> None:
        self.offsets.settle(self)


class _Offsets:
    """Which offsets of each assigned partition are done, and so how far it can be committed:
    up to the first record still being worked on."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, deque[int]] = {}
        self._done: dict[TopicPartition, set[int]] = {}
        self._generation: dict[TopicPartition, int] = {}
        self._next_generation = 0

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        for partition in partitions:
            self._next_generation += 1
            self._generation[partition] = self._next_generation
            self._pending[partition] = deque()
            self._done[partition] = set()

    def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        for partition in partitions:
            self._generation.pop(partition, None)
            self._pending.pop(partition, None)
            self._done.pop(partition, None)

    def receive(self, partition: TopicPartition, offset: int) -> int | None:
        """The record's generation, or None if its partition is no longer ours."""
        generation = self._generation.get(partition)
        if generation is not None:
            self._pending[partition].append(offset)
        return generation

    def settle(self, received: _Received) -> None:
        if self._generation.get(received.partition) == received.generation:
            self._done[received.partition].add(received.record.offset)

    def committable(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        offsets: dict[TopicPartition, int] = {}
        for partition in list(self._pending) if partitions is None else partitions:
            pending, done = self._pending.get(partition), self._done.get(partition)
            if pending is None or done is None:
                continue
            last = None
            while pending and pending[0] in done:
                last = pending.popleft()
                done.discard(last)
            if last is not None:
                offsets[partition] = last + 1
        return offsets


class _Reader(ConsumerRebalanceListener):  # type: ignore[misc]
    """One member of one role's consumer group: reads that role's topics ahead into buffers
    (pausing a topic whose buffer is full), and commits each partition up to its first record
    still being worked on."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topics: Sequence[str],
        buffers: defaultdict[str, deque[_Received]],
        arrived: defaultdict[str, asyncio.Event],
        poll_seconds: float,
    ) -> None:
        self._consumer = consumer
        self._topics = list(topics)
        self._buffers = buffers
        self._arrived = arrived
        self._poll_seconds = poll_seconds
        self._offsets = _Offsets()
        self._paused: set[str] = set()
        self.assigned = asyncio.Event()

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=self)
        await self._consumer.start()

    async def run(self, stopping: asyncio.Event) -> None:
        await asyncio.gather(self._fetch(stopping), self._commit(stopping))

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._commit_done()
        # Leaving the group hands this member's partitions to the others at once.
        await self._consumer.stop()

    async def _fetch(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=int(self._poll_seconds * 1000), max_records=_READ_AHEAD
                )
            except KafkaError as error:
                log.warning(
                    "reading from kafka failed; trying again", error_type=type(error).__name__
                )
                await _pause(stopping, self._poll_seconds)
                continue
            for partition, records in batches.items():
                for record in records:
                    generation = self._offsets.receive(partition, record.offset)
                    if generation is not None:
                        self._buffers[partition.topic].append(
                            _Received(record, partition, generation, self._offsets)
                        )
                self._arrived[partition.topic].set()
            self._apply_back_pressure()

    def _apply_back_pressure(self) -> None:
        assignment = self._consumer.assignment()
        for topic in self._topics:
            buffered = len(self._buffers[topic])
            partitions = [p for p in assignment if p.topic == topic]
            if buffered >= _READ_AHEAD and topic not in self._paused:
                self._consumer.pause(*partitions)
                self._paused.add(topic)
            elif buffered < _READ_AHEAD // 2 and topic in self._paused:
                self._consumer.resume(*partitions)
                self._paused.discard(topic)

    async def _commit(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await _pause(stopping, min(0.2, self._poll_seconds * 2))
            try:
                await self._commit_done()
            except KafkaError as error:  # a rebalance: the records are read again, and refused
                log.warning("offsets not committed", error_type=type(error).__name__)

    async def _commit_done(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        offsets = self._offsets.committable(partitions)
        if offsets:
            await self._consumer.commit(offsets)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._offsets.assign(assigned)
        self._paused.clear()
        self.assigned.set()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Commit what is done and forget the rest: its records go to the partitions' next
        owner, and the store refuses whatever this process had already taken."""
        with contextlib.suppress(KafkaError):
            await self._commit_done(revoked)
        self._offsets.revoke(revoked)
        gone = set(revoked)
        for topic in self._topics:
            buffer = self._buffers[topic]
            kept = [received for received in buffer if received.partition not in gone]
            buffer.clear()
            buffer.extend(kept)


class KafkaTransport:
    def __init__(
        self,
        store: RelayStore,
        settings: TransportSettings,
        admit: AdmitRequests,
        *,
        poll_seconds: float,
        batch_size: int,
    ) -> None:
        self._store = store
        self._settings = settings
        self._admit = admit
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self.topics = Topics(settings.topic_prefix)
        self._producer: AIOKafkaProducer | None = None
        self._readers: list[_Reader] = []
        self._buffers: defaultdict[str, deque[_Received]] = defaultdict(deque)
        self._arrived: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        # Claimed work by id, with the records that carried it: settled when the work is done.
        self._carried: defaultdict[str, list[_Received]] = defaultdict(list)
        # Two relay loops: one hands over every lane, and sweeps on each poll; the other hands
        # over only urgent work, only when woken, so that an order confirmation goes while a
        # broadcast's pass is still publishing.
        self._wants = {URGENT_LANES: _Wants(), ALL_LANES: _Wants()}
        self.connected = asyncio.Event()

    # -- running --------------------------------------------------------------------------------

    async def run(
        self, stopping: asyncio.Event, *, orchestrating: bool, channels: Collection[Channel]
    ) -> None:
        """Until ``stopping``: hand due work over, and read the topics of this process's roles
        (the orchestrator's events, the workers' channels)."""
        while not stopping.is_set():
            try:
                await self._connect(orchestrating, channels)
                break
            except KafkaError as error:
                log.warning("kafka not reachable; trying again", error_type=type(error).__name__)
                await self._disconnect()  # what did start, so that the next try starts afresh
                await _pause(stopping, 1.0)
        else:
            return
        self.connected.set()
        relays = [self._relay(stopping, lanes) for lanes in self._wants]
        loops = [*relays, *(reader.run(stopping) for reader in self._readers)]
        try:
            await asyncio.gather(*loops)
        finally:
            await self._disconnect()

    async def _connect(self, orchestrating: bool, channels: Collection[Channel]) -> None:
        await self._create_topics()
        servers = self._settings.bootstrap_servers
        producer = AIOKafkaProducer(
            bootstrap_servers=servers, acks="all", linger_ms=2, client_id="frontdesk"
        )
        await producer.start()
        self._producer = producer
        # A consumer group per role: the orchestrators share the events, and the workers of
        # each channel that channel's deliveries; a rebalance in one leaves the others at work.
        roles: dict[str, list[str]] = {}
        if orchestrating:
            roles["orchestrator"] = [self.topics.urgent_events, self.topics.events]
        for channel in channels:
            roles[f"worker.{channel.value}"] = [
                self.topics.deliveries(channel, urgent=True),
                self.topics.deliveries(channel),
            ]
        for role, topics in roles.items():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=servers,
                group_id=f"{self._settings.consumer_group}.{role}",
                client_id="frontdesk",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self._settings.session_timeout_ms,
                heartbeat_interval_ms=self._settings.heartbeat_interval_ms,
                fetch_max_wait_ms=min(100, int(self._poll_seconds * 1000)),
            )
            reader = _Reader(consumer, topics, self._buffers, self._arrived, self._poll_seconds)
            self._readers.append(reader)
        await asyncio.gather(*(reader.start() for reader in self._readers))

    async def consuming(self) -> None:
        """Until every role of this process has its partitions from its consumer group."""
        await self.connected.wait()
        await asyncio.gather(*(reader.assigned.wait() for reader in self._readers))

    async def _create_topics(self) -> None:
        """The topics that are missing, with the configured partitions."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._settings.bootstrap_servers, client_id="frontdesk"
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [name for name in self.topics.all() if name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                    await admin.create_topics(
                        [
                            NewTopic(
                                name,
                                self._settings.partitions,
                                self._settings.replication_factor,
                            )
                            for name in missing
                        ]
                    )
        finally:
            await admin.close()

    async def _disconnect(self) -> None:
        readers, self._readers = self._readers, []
        await asyncio.gather(*(reader.stop() for reader in readers), return_exceptions=True)
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()

    # -- handing work over (every process) ------------------------------------------------------

    async def _relay(self, stopping: asyncio.Event, lanes: frozenset[int]) -> None:
        """Hand over these lanes' work: woken by this process's own work, what it names; every
        poll, for the loop of every lane, everything (delayed work come due, other processes'
        work, work whose taker died)."""
        wants = self._wants[lanes]
        sweep = (True, set(Channel)) if lanes == ALL_LANES else (False, set())
        events, channels = sweep
        while not stopping.is_set():
            try:
                with urgent_if(lanes == URGENT_LANES):
                    full = await self.hand_over(events, channels, lanes)
            except Exception:
                log.exception("handing work over to kafka failed; it is handed over again later")
                full = False
            if full:
                events, channels = True, set(Channel)
                continue
            woken = await _wait(wants.wake, self._poll_seconds)
            if woken:
                events, channels = wants.events, set(wants.channels)
            else:
                events, channels = sweep
            wants.events = False
            wants.channels.clear()

    async def hand_over(
        self, events_due: bool, channels: Collection[Channel], lanes: Collection[int]
    ) -> bool:
        """One pass: due events (if asked) and the channels' due deliveries of these lanes to
        their topics. True if there may be more."""
        hold = self._settings.republish_seconds
        events = (
            await self._store.hand_over_events(self._batch_size, hold, lanes) if events_due else []
        )
        sends = [
            self._send(
                self.topics.urgent_events if ref.lane in URGENT_LANES else self.topics.events,
                ref.user_id,
                orjson.dumps(
                    {
                        "notification_id": ref.id,
                        "held_until": ref.held_until.isoformat() if ref.held_until else None,
                    }
                ),
                [(RECORD_HEADER, _ACCEPTED)],
            )
            for ref in events
        ]
        full = len(events) == self._batch_size
        for channel in channels:
            deliveries = await self._store.hand_over_deliveries(
                channel, self._batch_size, hold, lanes
            )
            full = full or len(deliveries) == self._batch_size
            sends += [
                self._send(
                    self.topics.deliveries(channel, urgent=ref.lane in URGENT_LANES),
                    ref.user_id,
                    orjson.dumps({"delivery_id": ref.id, "attempts": ref.attempts}),
                )
                for ref in deliveries
            ]
        if sends:
            await asyncio.gather(*[await send for send in sends])
        return full

    async def _send(
        self,
        topic: str,
        key: str,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]:
        """Queue a record; the future is done when the cluster has it."""
        assert self._producer is not None
        future: asyncio.Future[object] = await self._producer.send(
            topic, value=value, key=key.encode(), headers=headers or []
        )
        return future

    def is_connected(self) -> bool:
        return self.connected.is_set()

    def events_appended(self) -> None:
        for wants in self._wants.values():
            wants.events = True
            wants.wake.set()

    def deliveries_ready(self, channels: Sequence[Channel]) -> None:
        for wants in self._wants.values():
            wants.channels.update(channels)
            wants.wake.set()

    # -- reading (orchestrators, workers) -------------------------------------------------------

    def _take(self, topics: Sequence[str], limit: int) -> list[_Received]:
        taken: list[_Received] = []
        for topic in topics:
            buffer = self._buffers[topic]
            while buffer and len(taken) < limit:
                taken.append(buffer.popleft())
        return taken

    async def claim_events(
        self, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Notification]:
        urgent = frozenset(lanes) <= URGENT_LANES
        taken = self._take([self.topics.urgent_events if urgent else self.topics.events], limit)
        if not taken:
            return []
        references: dict[str, list[_Received]] = defaultdict(list)
        refs: list[WorkRef] = []
        requests: list[_Received] = []
        for received in taken:
            if _header(received.record, RECORD_HEADER) != _ACCEPTED:
                requests.append(received)
                continue
            ref = _event_ref(received.record)
            if ref is None:
                received.settle()  # not a reference frontdesk wrote
                continue
            references[ref.id].append(received)
            refs.append(ref)
        if requests:
            await self._admit_requests(requests)
        claimed = await self._store.claim_notifications_by_id(refs, lease_seconds)
        return self._carry(references, claimed)

    async def _admit_requests(self, requests: list[_Received]) -> None:
        """Product services' records: admitted into the store like a POST (their references
        follow through the relay), or put on the invalid topic with the reason. Either way
        the consumer goes on to the next record."""
        answers = await self._admit([r.record.value or b"" for r in requests])
        invalid = []
        for received, problem in zip(requests, answers, strict=True):
            if problem is not None:
                log.warning(
                    "invalid record on notification.events",
                    partition=received.partition.partition,
                    offset=received.record.offset,
                )
                invalid.append(
                    await self._send(
                        self.topics.invalid_events,
                        (received.record.key or b"").decode(errors="replace"),
                        received.record.value or b"",
                        [
                            (ERROR_HEADER, problem.encode()),
                            ("frontdesk-source", _source(received).encode()),
                        ],
                    )
                )
        await asyncio.gather(*invalid)
        for received in requests:
            received.settle()
        if len(invalid) < len(requests):
            self.events_appended()

    def _carry(self, references: dict[str, list[_Received]], claimed: list[Work]) -> list[Work]:
        taken = {work.id for work in claimed}
        for work_id, records in references.items():
            if work_id in taken:
                self._carried[work_id].extend(records)
            else:  # done already, or someone else's: nothing for this record to do
                for received in records:
                    received.settle()
        return claimed

    def release(self, work_ids: Iterable[str]) -> None:
        self._settle(work_ids)

    async def claim_deliveries(
        self, channel: Channel, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Delivery]:
        taken = self._take(self._delivery_topics(channel, lanes), limit)
        if not taken:
            return []
        references: dict[str, list[_Received]] = defaultdict(list)
        refs: list[WorkRef] = []
        for received in taken:
            ref = _delivery_ref(received.record, channel)
            if ref is None:
                received.settle()  # not a reference frontdesk wrote
                continue
            references[ref.id].append(received)
            refs.append(ref)
        claimed = await self._store.claim_deliveries_by_id(channel, refs, lease_seconds)
        return self._carry(references, claimed)

    async def deliveries_done(self, channel: Channel, outcomes: Sequence[DeliveryOutcome]) -> None:
        self._settle(o.delivery_id for o in outcomes)
        dead = [
            await self._send(
                self.topics.dead(channel),
                outcome.delivery_id,
                orjson.dumps(
                    {
                        "delivery_id": outcome.delivery_id,
                        "channel": channel.value,
                        "attempts": outcome.attempt,
                        "reason": outcome.reason,
                        "at": outcome.at.isoformat(),
                    }
                ),
            )
            for outcome in outcomes
            if outcome.status is DeliveryStatus.DEAD and self._producer is not None
        ]
        if dead:
            try:
                await asyncio.gather(*dead)
            except KafkaError as error:  # the store's dead-letter list has them all the same
                log.warning("dead letters not copied to kafka", error_type=type(error).__name__)

    def _settle(self, work_ids: Iterable[str]) -> None:
        for work_id in work_ids:
            for received in self._carried.pop(work_id, ()):
                received.settle()

    async def wait_for_events(self, max_wait_seconds: float, lanes: Collection[int]) -> None:
        urgent = frozenset(lanes) <= URGENT_LANES
        topic = self.topics.urgent_events if urgent else self.topics.events
        if not self._buffers[topic]:
            await _wait(self._arrived[topic], max_wait_seconds)

    async def wait_for_deliveries(
        self, channel: Channel, max_wait_seconds: float, lanes: Collection[int]
    ) -> None:
        topics = self._delivery_topics(channel, lanes)
        if any(self._buffers[topic] for topic in topics):
            return
        waits = [asyncio.ensure_future(self._arrived[topic].wait()) for topic in topics]
        try:
            await asyncio.wait(waits, timeout=max_wait_seconds, return_when="FIRST_COMPLETED")
        finally:
            for waiting in waits:
                waiting.cancel()
            for topic in topics:
                self._arrived[topic].clear()

    def _delivery_topics(self, channel: Channel, lanes: Collection[int]) -> list[str]:
        """The channel's topics that carry these lanes, the urgent one first."""
        wanted = frozenset(lanes)
        return [
            self.topics.deliveries(channel, urgent=urgent)
            for urgent, carried in ((True, URGENT_LANES), (False, BULK_LANES))
            if wanted & carried
        ]


@dataclass
class _Wants:
    """What this process's own work asked one relay loop to hand over."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    events: bool = False
    channels: set[Channel] = field(default_factory=set)


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> bytes | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value)
    return None


def _event_ref(record: ConsumerRecord[bytes, bytes]) -> WorkRef | None:
    fields = _fields(record)
    notification_id, held_until = fields.get("notification_id"), fields.get("held_until")
    if not isinstance(notification_id, str) or not isinstance(held_until, str | None):
        return None
    try:
        mark = datetime.fromisoformat(held_until) if held_until else None
    except ValueError:
        return None
    return WorkRef(notification_id, "", 0, held_until=mark)


def _delivery_ref(record: ConsumerRecord[bytes, bytes], channel: Channel) -> WorkRef | None:
    fields = _fields(record)
    delivery_id, attempts = fields.get("delivery_id"), fields.get("attempts")
    if not isinstance(delivery_id, str) or not isinstance(attempts, int):
        return None
    return WorkRef(delivery_id, "", 0, channel, attempts)


def _fields(record: ConsumerRecord[bytes, bytes]) -> dict[str, object]:
    """A reference's JSON object, parsed once; empty if it is not one."""
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _source(received: _Received) -> str:
    return f"{received.partition.topic}/{received.partition.partition}@{received.record.offset}"


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _wait(event: asyncio.Event, max_wait_seconds: float) -> bool:
    """True if the event was set (and is now cleared), False if the wait ran out."""
    try:
        await asyncio.wait_for(event.wait(), max_wait_seconds)
    except TimeoutError:
        return False
    event.clear()
    return True
