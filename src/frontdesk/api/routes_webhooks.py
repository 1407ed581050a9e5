"""A user's webhook endpoints: where its events are posted, signed to the Standard Webhooks
specification. The signing secret is shown once, at creation and at each rotation."""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import APIRouter, Depends, Response

from frontdesk.api.auth import ADMIN, require
from frontdesk.api.schemas import Id, WebhookEndpointChanges, WebhookEndpointIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import rfc3339, webhook_endpoint_view
from frontdesk.errors import FieldError, InvalidInput

router = APIRouter(
    prefix="/v1/users/{user_id}/webhook-endpoints",
    tags=["webhooks"],
    dependencies=[Depends(require(ADMIN))],
)

_SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


@router.post("", status_code=201)
async def create_endpoint(
    user_id: Id, body: WebhookEndpointIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    await services.store.get_user_record(user_id)
    if body.signature == "v1a":
        raise InvalidInput(
            "signature: v1a (Ed25519) endpoints are not available yet; use v1",
            [FieldError("signature", "v1a is not available yet; use v1")],
        )
    secret = _checked_secret(body.secret) if body.secret else _new_secret()
    fields = body.model_dump(exclude={"secret", "client_key"}, exclude_none=True)
    fields |= _client_identity(body.client_certificate, body.client_key, services)
    row = await services.store.create_webhook_endpoint(
        user_id, fields, services.secret_box.seal(secret)
    )
    return {**webhook_endpoint_view(row), "secret": secret}


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


@router.patch("/{endpoint_id}")
async def change_endpoint(
    user_id: Id,
    endpoint_id: Id,
    body: WebhookEndpointChanges,
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
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
    secret = _new_secret()
    overlap = timedelta(seconds=services.settings.webhooks.rotation_overlap_seconds)
    retire_at = services.clock.now() + overlap
    await services.store.rotate_webhook_secret(
        user_id, endpoint_id, services.secret_box.seal(secret), retire_at
    )
    return {"secret": secret, "previous_secrets_valid_until": rfc3339(retire_at)}


def _new_secret() -> str:
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _checked_secret(secret: str) -> str:
    """A secret of the receiver's choosing: whsec_ and 24 to 64 random bytes, base64."""
    try:
        raw = base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not 24 <= len(raw) <= 64:
        raise InvalidInput(
            "secret: must be whsec_ followed by 24 to 64 random bytes in base64",
            [FieldError("secret", "must be whsec_ followed by 24 to 64 bytes in base64")],
        )
    return secret


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
