"""The Kafka transport commits a partition only up to its first record still being worked on:
a crash then reads again what was not done, and never skips it."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.transport.kafka import _Offsets, _Received

PARTITION = TopicPartition("notification.deliveries.email", 0)


def _received(offsets: _Offsets, offset: int) -> _Received:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        PARTITION.topic, PARTITION.partition, offset, 0, 0, b"key", b"{}", None, 3, 2, ()
    )
    generation = offsets.receive(PARTITION, offset)
    assert generation is not None
    return _Received(record, PARTITION, generation, offsets)


@given(st.integers(1, 60).flatmap(lambda n: st.permutations(range(n))))
def test_the_committed_offset_never_passes_a_record_not_yet_done(order: list[int]) -> None:
    offsets = _Offsets()
    offsets.assign([PARTITION])
    records = [_received(offsets, offset) for offset in range(len(order))]
    done: set[int] = set()
    committed = 0

    for offset in order:
        records[offset].settle()
        done.add(offset)
        committed = offsets.committable().get(PARTITION, committed)

        first_not_done = min(set(range(len(order))) - done, default=len(order))
        assert committed == first_not_done
    assert committed == len(order)


def test_a_record_of_a_revoked_partition_settles_nothing_after_it_is_assigned_again() -> None:
    offsets = _Offsets()
    offsets.assign([PARTITION])
    stale = _received(offsets, 0)
    offsets.revoke([PARTITION])
    offsets.assign([PARTITION])
    fresh = _received(offsets, 0)

    stale.settle()

    assert offsets.committable() == {}
    fresh.settle()
    assert offsets.committable() == {PARTITION: 1}
