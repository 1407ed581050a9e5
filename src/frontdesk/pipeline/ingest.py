"""Ingest: check a request against what exists, guard it with its idempotency key, append it to
the event log. Shapes and types were already checked at the edge (the API's models)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from frontdesk.core.models import Notification, NotificationRequest, TemplateVersion, lane
from frontdesk.core.ports import Admission, AdmissionResult, Clock, PipelineStore, Transport
from frontdesk.core.urgency import URGENT_LANES, urgent_if
from frontdesk.errors import Conflict, FieldError, FrontdeskError, InvalidInput
from frontdesk.ids import Prefix, new_id
from frontdesk.pipeline.templates import TemplateCatalog


@dataclass(frozen=True, slots=True)
class IngestResult:
    notification_id: str
    duplicate: bool


def dedupe_key(request: NotificationRequest) -> str:
    raw = "\x1f".join((request.user_id, request.template, request.event_id))
    return hashlib.sha256(raw.encode()).hexdigest()


def payload_hash(request: NotificationRequest) -> str:
    return hashlib.sha256(orjson.dumps(request.payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def admission(
    request: NotificationRequest,
    template: TemplateVersion,
    now: datetime,
    dedupe_window: timedelta,
    broadcast_id: str | None = None,
) -> Admission:
    """A new notification for ``request``, guarded by its idempotency key."""
    return Admission(
        notification=Notification(
            id=new_id(Prefix.NOTIFICATION),
            request=request,
            template_version=template.version,
            created_at=now,
        ),
        dedupe_key=dedupe_key(request),
        payload_hash=payload_hash(request),
        dedupe_expires_at=now + dedupe_window,
        lane=lane(request.priority, template.category),
        broadcast_id=broadcast_id,
    )


class Ingest:
    def __init__(
        self,
        store: PipelineStore,
        transport: Transport,
        templates: TemplateCatalog,
        clock: Clock,
        *,
        dedupe_window: timedelta,
    ) -> None:
        self._store = store
        self._transport = transport
        self._templates = templates
        self._clock = clock
        self._dedupe_window = dedupe_window

    async def accept(
        self, requests: Sequence[NotificationRequest], *, field_prefix: str = ""
    ) -> list[IngestResult | FrontdeskError]:
        """One result per request, in order; a bad request fails alone."""
        templates = await self._templates.latest([r.template for r in requests])
        users = await self._store.existing_user_ids([r.user_id for r in requests])
        now = self._clock.now()
        outcomes: list[IngestResult | FrontdeskError | None] = []
        admissions: list[Admission] = []
        for index, request in enumerate(requests):
            prefix = field_prefix.format(index=index)
            problems = self._problems(request, templates, users, prefix)
            if problems:
                outcomes.append(InvalidInput("; ".join(p.message for p in problems), problems))
                continue
            template = templates[request.template]
            outcomes.append(None)
            admissions.append(admission(request, template, now, self._dedupe_window))
        with urgent_if(any(a.lane in URGENT_LANES for a in admissions)):
            admitted = iter(await self._store.admit(admissions) if admissions else [])
        results = [outcome or _result(next(admitted)) for outcome in outcomes]
        if any(isinstance(r, IngestResult) and not r.duplicate for r in results):
            self._transport.events_appended()
        return results

    async def accept_broadcast(
        self, request: NotificationRequest, topic: str
    ) -> IngestResult | FrontdeskError:
        """A notification to every subscriber of ``topic``, fanned out later in chunks; its
        idempotency key is (topic, template, event_id), and each subscriber's is their own."""
        templates = await self._templates.latest([request.template])
        problems = [
            p
            for p in self._problems(request, templates, {request.user_id}, "")
            if p.field != "user_id"
        ]
        if problems:
            return InvalidInput("; ".join(p.message for p in problems), problems)
        now = self._clock.now()
        raw = "\x1f".join(("topic", topic, request.template, request.event_id))
        admitted = await self._store.admit_broadcast(
            {
                "id": new_id(Prefix.BROADCAST),
                "topic": topic,
                "request": request.to_json(),
                "template_version": templates[request.template].version,
                "cursor": None,
                "fanned_out": 0,
                "created_at": now,
            },
            hashlib.sha256(raw.encode()).hexdigest(),
            payload_hash(request),
            now + self._dedupe_window,
        )
        result = _result(admitted)
        if isinstance(result, IngestResult) and not result.duplicate:
            self._transport.events_appended()
        return result

    @staticmethod
    def _problems(
        request: NotificationRequest,
        templates: dict[str, TemplateVersion],
        users: set[str],
        prefix: str,
    ) -> list[FieldError]:
        problems = []
        template = templates.get(request.template)
        if template is None:
            problems.append(FieldError(f"{prefix}template", f"no template {request.template!r}"))
        elif request.channels is not None:
            defined = set(template.body["channels"])
            for channel in request.channels:
                if channel.value not in defined:
                    problems.append(
                        FieldError(
                            f"{prefix}channels",
                            f"template {request.template!r} has no {channel.value} content",
                        )
                    )
        if request.user_id not in users:
            problems.append(
                FieldError(
                    f"{prefix}user_id",
                    f"no user {request.user_id!r}; create it with PUT /v1/users/{{user_id}}",
                )
            )
        return problems


def _result(admitted: AdmissionResult) -> IngestResult | FrontdeskError:
    if admitted.outcome == "conflict":
        return Conflict(
            f"event already accepted as {admitted.notification_id} with a different payload",
            [FieldError("payload", "differs from the payload first sent with this event_id")],
        )
    return IngestResult(admitted.notification_id, duplicate=admitted.outcome == "duplicate")
