"""A user's webhook endpoints: where its events are posted, signed to the Standard Webhooks
specification. The signing secret is shown once, at creation and at each rotation."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import APIRouter, Depends, Query, Response

from frontdesk.api.auth import ADMIN, require
from frontdesk.api.problems import AUTHENTICATION_PROBLEMS, BODY_PROBLEMS, INPUT_PROBLEMS, NOT_FOUND
from frontdesk.api.schemas import Id, RecoverIn, WebhookEndpointChanges, WebhookEndpointIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import (
    webhook_attempt_view,
    webhook_endpoint_view,
    webhook_message_view,
)
from frontdesk.core.signatures import (
    InvalidSecret,
    new_key_pair,
    new_symmetric_secret,
    parse_signer,
)
from frontdesk.core.ssrf import refusal
from frontdesk.core.times import rfc3339
from frontdesk.errors import FieldError, InvalidInput, NotFound

router = APIRouter(
    prefix="/v1/users/{user_id}/webhook-endpoints",
    tags=["webhooks"],
    dependencies=[Depends(require(ADMIN))],
    # Every route looks up the user or one of its endpoints.
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS, **NOT_FOUND},
)


@router.post("", status_code=201, responses=BODY_PROBLEMS)
async def create_endpoint(
    user_id: Id, body: WebhookEndpointIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    await services.store.get_user_record(user_id)
    if body.signature == "v1a" and body.secret:
        raise InvalidInput(
            "secret: a v1a endpoint's key pair is made by frontdesk; send no secret",
            [FieldError("secret", "not accepted with signature v1a")],
        )
    _check_reachable(body.url, services)
    signing, shown = _signing_secret(body.signature, body.secret)
    fields = body.model_dump(exclude={"secret", "client_key"}, exclude_none=True)
    fields |= _client_identity(body.client_certificate, body.client_key, services)
    row = await services.store.create_webhook_endpoint(
        user_id, fields, services.secret_box.seal(signing)
    )
    return {**webhook_endpoint_view(row), **shown}


@router.get("")
async def list_endpoints(
    user_id: Id, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    await services.store.get_user_record(user_id)
    rows = await services.store.list_webhook_endpoints(user_id)
    return {"items": [webhook_endpoint_view(row) for row in rows]}


@router.get("/{endpoint_id}")
async def get_endpoint(
    user_id: Id, endpoint_id: Id, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    return webhook_endpoint_view(await services.store.get_webhook_endpoint(user_id, endpoint_id))


@router.patch("/{endpoint_id}", responses=BODY_PROBLEMS)
async def change_endpoint(
    user_id: Id,
    endpoint_id: Id,
    body: WebhookEndpointChanges,
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    if body.url is not None:
        _check_reachable(body.url, services)
    changes = body.model_dump(exclude_unset=True, exclude={"client_key"})
    if "client_certificate" in body.model_fields_set or "client_key" in body.model_fields_set:
        changes |= _client_identity(body.client_certificate, body.client_key, services)
    row = await services.store.update_webhook_endpoint(user_id, endpoint_id, changes)
    return webhook_endpoint_view(row)


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(
    user_id: Id, endpoint_id: Id, services: ApiServices = Depends(get_services)
) -> Response:
    await services.store.delete_webhook_endpoint(user_id, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret")
async def rotate_secret(
    user_id: Id, endpoint_id: Id, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """A new secret signs from now on; the old one keeps signing beside it for the overlap
    (``webhooks.rotation_overlap_seconds``), so receivers can switch without losing a message."""
    endpoint = await services.store.get_webhook_endpoint(user_id, endpoint_id)
    signing, shown = _signing_secret(endpoint["signature"], None)
    overlap = timedelta(seconds=services.settings.webhooks.rotation_overlap_seconds)
    retire_at = services.clock.now() + overlap
    await services.store.rotate_webhook_secret(
        user_id, endpoint_id, services.secret_box.seal(signing), retire_at
    )
    return {**shown, "previous_secrets_valid_until": rfc3339(retire_at)}


@router.get("/{endpoint_id}/attempts")
async def list_attempts(
    user_id: Id,
    endpoint_id: Id,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    """Every attempt at the endpoint, oldest first: status code, latency, the first bytes of
    the answer, or why there was none."""
    await services.store.get_webhook_endpoint(user_id, endpoint_id)
    after = _cursor(cursor)
    rows = await services.store.list_webhook_attempts(endpoint_id, after, limit)
    return {
        "items": [webhook_attempt_view(row) for row in rows],
        "next_cursor": str(rows[-1]["seq"]) if len(rows) == limit else None,
    }


@router.get("/{endpoint_id}/messages")
async def list_messages(
    user_id: Id,
    endpoint_id: Id,
    status: Literal["pending", "sending", "succeeded", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    await services.store.get_webhook_endpoint(user_id, endpoint_id)
    rows = await services.store.list_webhook_messages(endpoint_id, status, limit)
    return {"items": [webhook_message_view(row) for row in rows]}


@router.post("/{endpoint_id}/recover", responses=BODY_PROBLEMS)
async def recover(
    user_id: Id,
    endpoint_id: Id,
    body: RecoverIn,
    services: ApiServices = Depends(get_services),
) -> dict[str, int]:
    """Send again every message to the endpoint that failed since ``since``, with its original
    webhook-id."""
    await services.store.get_webhook_endpoint(user_id, endpoint_id)
    resent = await services.store.resend_webhook_messages(endpoint_id, since=body.since)
    services.webhooks_queued()
    return {"resent": resent}


@router.post("/{endpoint_id}/messages/{message_id}/resend")
async def resend(
    user_id: Id,
    endpoint_id: Id,
    message_id: Id,
    services: ApiServices = Depends(get_services),
) -> dict[str, int]:
    await services.store.get_webhook_endpoint(user_id, endpoint_id)
    resent = await services.store.resend_webhook_messages(endpoint_id, message_id=message_id)
    if not resent:
        raise NotFound(f"endpoint {endpoint_id!r} has no message {message_id!r} to resend")
    services.webhooks_queued()
    return {"resent": resent}


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise InvalidInput("cursor: not a cursor from this list", [FieldError("cursor", "unknown")])
    return int(cursor)


def _check_reachable(url: str, services: ApiServices) -> None:
    """Refuse at once what could never be delivered: an address SSRF protection refuses, or
    plain http to anything but an allowlisted network. A host name is checked again, on
    every connection, against the addresses it then resolves to."""
    host = urlsplit(url).hostname or ""
    allowed = services.settings.webhooks.allow_networks
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    refused = refusal(address, allowed) if address is not None else None
    if refused:
        raise InvalidInput(
            f"url: {refused}; webhooks may only reach public addresses (or networks listed "
            "in webhooks.allow_networks)",
            [FieldError("url", refused)],
        )
    allowlisted = address is not None and any(address in network for network in allowed)
    if urlsplit(url).scheme == "http" and not allowlisted:
        raise InvalidInput(
            "url: must be https:// (plain http only to a network in webhooks.allow_networks)",
            [FieldError("url", "must be https://")],
        )


def _signing_secret(scheme: str, chosen: str | None) -> tuple[str, dict[str, str]]:
    """What frontdesk signs with, and what the receiver is shown to verify with: the same
    whsec_ secret for v1 (chosen by the receiver, or made here); for v1a a new Ed25519 pair,
    whose public key alone is shown."""
    if scheme == "v1a":
        signing_key, public_key = new_key_pair()
        return signing_key, {"public_key": public_key}
    if chosen is None:
        secret = new_symmetric_secret()
        return secret, {"secret": secret}
    try:
        parse_signer(chosen)
    except InvalidSecret as error:
        raise InvalidInput(f"secret: {error}", [FieldError("secret", str(error))]) from None
    return chosen, {"secret": chosen}


def _client_identity(
    certificate: str | None, key: str | None, services: ApiServices
) -> dict[str, str | None]:
    """The client certificate and key for mutual TLS: both or neither, both PEM; the key is
    sealed before it is stored."""
    if (certificate is None) != (key is None):
        missing = "client_key" if key is None else "client_certificate"
        raise InvalidInput(
            f"{missing}: mutual TLS needs both client_certificate and client_key",
            [FieldError(missing, "required with the other half of the client identity")],
        )
    if certificate is None or key is None:
        return {"client_certificate": None, "client_key_sealed": None}
    try:
        x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        raise InvalidInput(
            "client_certificate: not a PEM certificate",
            [FieldError("client_certificate", "not a PEM certificate")],
        ) from None
    try:
        load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidInput(
            "client_key: not an unencrypted PEM private key",
            [FieldError("client_key", "not an unencrypted PEM private key")],
        ) from None
    return {"client_certificate": certificate, "client_key_sealed": services.secret_box.seal(key)}
