"""Urgent work goes first wherever work shares one resource.

The pipeline marks critical and transactional work as urgent for the task doing it; shared
resources (the SQLite store's single writer, say) let urgent work in ahead of a broadcast's bulk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from frontdesk.core.models import Delivery, lane

# Critical and transactional work (see models.lane); the rest is bulk.
URGENT_LANES = frozenset({0, 1})
BULK_LANES = frozenset({2})
ALL_LANES = URGENT_LANES | BULK_LANES

_urgent: ContextVar[bool] = ContextVar("urgent", default=False)


def is_urgent() -> bool:
    return _urgent.get()


@contextmanager
def urgent_if(urgent: bool) -> Iterator[None]:
    """Within this block (and the tasks it starts), this task's work is urgent if asked."""
    token = _urgent.set(urgent)
    try:
        yield
    finally:
        _urgent.reset(token)


def any_urgent(deliveries: Iterable[Delivery]) -> bool:
    return any(lane(d.priority, d.category) in URGENT_LANES for d in deliveries)
