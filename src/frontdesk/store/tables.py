"""The schema, as SQLAlchemy Core tables. Alembic migrations create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = MetaData()

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which keeps no zone: returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


Time = UtcDateTime()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(100), nullable=False),
    Column("name", String(200)),
    Column("created_at", Time, nullable=False),
    Column("revoked_at", Time),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("locale", String(35)),
    Column("timezone", String(64)),
    Column("name", String(200)),
    Column("properties", Json, nullable=False),
    Column("quiet_hours", Json),
    Column("consent", Json, nullable=False),
    Column("preferences", Json, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("token", String(4096), primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("created_at", Time, nullable=False),
    # A token belongs to one user, and dead tokens are forgotten by token.
    Index("ix_devices_token", "token"),
)

templates = Table(
    "templates",
    metadata,
    Column("template_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("category", String(40), nullable=False),
    # Plain JSON, not JSONB: JSONB re-sorts keys, and the order of channels is meaningful
    # (strategy "first" tries them in the order the author listed).
    Column("body", JSON, nullable=False),
    Column("etag", String(80), nullable=False),
    Column("created_at", Time, nullable=False),
)

# A notification row is also the embedded event log: rows with orchestrated_at NULL are the
# pending events, claimed by leasing them.
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("template_id", String(200), nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("request", Json, nullable=False),
    Column("collapse_key", String(200)),
    Column("lane", Integer, nullable=False),
    Column("broadcast_id", String(40)),
    Column("created_at", Time, nullable=False),
    Column("lease_until", Time),
    Column("orchestrated_at", Time),
    Index("ix_notifications_user_created", "user_id", "created_at"),
    Index("ix_notifications_created", "created_at"),
    Index(
        "ix_notifications_pending",
        "lane",
        "created_at",
        sqlite_where=text("orchestrated_at IS NULL"),
        postgresql_where=text("orchestrated_at IS NULL"),
    ),
)

dedupe_keys = Table(
    "dedupe_keys",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("notification_id", String(40), nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("expires_at", Time, nullable=False),
    Index("ix_dedupe_keys_expires", "expires_at"),
)

# A delivery row is also the embedded channel queue: status queued/deferred with available_at
# due, or sending with an expired lease, is claimable work.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("notification_id", String(40), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("template_id", String(200), nullable=False),
    Column("category", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("lane", Integer, nullable=False),
    Column("recipient", String(4096)),
    Column("content", Json, nullable=False),
    Column("provider", String(100)),
    Column("provider_message_id", String(400)),
    # What the provider made of it: SMS segments and encoding, which provider took over.
    Column("provider_details", Json),
    Column("reason", Text),
    Column("last_error", Text),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("available_at", Time, nullable=False),
    Column("lease_until", Time),
    Column("expires_at", Time),
    Column("sequence", Integer),
    Column("escalation_of", String(40)),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    UniqueConstraint("notification_id", "channel", name="uq_deliveries_notification_channel"),
    # A user's recent deliveries: frequency caps, and erasure.
    Index("ix_deliveries_user", "user_id", "created_at"),
    # Receipts and bounces name the provider's message id.
    Index("ix_deliveries_provider_message", "provider_message_id"),
    Index(
        "ix_deliveries_ready",
        "channel",
        "lane",
        "available_at",
        sqlite_where=text("status IN ('queued', 'deferred')"),
        postgresql_where=text("status IN ('queued', 'deferred')"),
    ),
    Index(
        "ix_deliveries_leased",
        "channel",
        "lease_until",
        sqlite_where=text("status = 'sending'"),
        postgresql_where=text("status = 'sending'"),
    ),
    # Only the dead-letter list filters by status, so only dead deliveries are indexed for it:
    # a claim or an outcome does not pay for an index it never uses.
    Index(
        "ix_deliveries_dead",
        "channel",
        "id",
        sqlite_where=text("status = 'dead'"),
        postgresql_where=text("status = 'dead'"),
    ),
)

inbox_items = Table(
    "inbox_items",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("notification_id", String(40), nullable=False),
    Column("delivery_id", String(40), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("action_url", Text),
    Column("created_at", Time, nullable=False),
    Column("seen_at", Time),
    Column("read_at", Time),
    Column("archived_at", Time),
    Index("ix_inbox_items_user", "user_id", "id"),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # Not indexed: nothing looks an entry up by id, and each index costs every insert; ids are
    # unique by construction (80 random bits per millisecond).
    Column("id", String(40), nullable=False),
    Column("at", Time, nullable=False),
    Column("type", String(40), nullable=False),
    Column("actor", String(20), nullable=False),
    Column("notification_id", String(40)),
    Column("delivery_id", String(40)),
    Column("channel", String(20)),
    Column("user_id", String(200)),
    Column("reason", Text),
    Index("ix_audit_notification", "notification_id", "seq"),
    Index("ix_audit_user_at", "user_id", "at"),
    Index("ix_audit_at", "at"),
)

topic_subscribers = Table(
    "topic_subscribers",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("user_id", String(200), primary_key=True),
    Column("created_at", Time, nullable=False),
)

# A notification to a topic: fanned out in chunks, the cursor (the last subscriber done)
# committed with each chunk's notifications, so a crash resumes where it stopped.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("topic", String(200), nullable=False),
    Column("request", Json, nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("cursor", String(200)),
    Column("fanned_out", Integer, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("lease_until", Time),
    Column("completed_at", Time),
    Index(
        "ix_broadcasts_pending",
        "created_at",
        sqlite_where=text("completed_at IS NULL"),
        postgresql_where=text("completed_at IS NULL"),
    ),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("channel", String(20), primary_key=True),
    Column("address", String(4096), primary_key=True),
    Column("kind", String(20), nullable=False, server_default="suppressed"),
    Column("reason", Text, nullable=False),
    Column("created_at", Time, nullable=False),
)

sandbox_messages = Table(
    "sandbox_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("delivery_id", String(40), nullable=False, unique=True),
    Column("notification_id", String(40), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("recipient", String(4096)),
    Column("content", Json, nullable=False),
    Column("headers", Json, nullable=False),
    Column("created_at", Time, nullable=False),
    Index("ix_sandbox_channel", "channel", "id"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", Text),
    Column("event_types", Json, nullable=False),  # empty: every event type
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("signature", String(8), nullable=False),  # "v1" (HMAC) or "v1a" (Ed25519)
    # Signing secrets, encrypted (see store/secret_box.py): [{"sealed", "created_at",
    # "retires_at"}], the newest first; more than one while a rotation overlaps.
    Column("secrets", Json, nullable=False),
    Column("rate_per_second", Float),
    Column("timeout_seconds", Float),
    Column("headers", Json, nullable=False),
    Column("client_certificate", Text),  # PEM, for mutual TLS
    Column("client_key_sealed", Text),  # its private key, encrypted
    Column("failing_since", Time),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index("ix_webhook_endpoints_user", "user_id", "created_at"),
)

# One message per (webhook delivery, endpoint): its id is the webhook-id, the same on every
# attempt. It is its endpoint's queue entry too, claimed by lease like a delivery.
webhook_messages = Table(
    "webhook_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("notification_id", String(40), nullable=False),
    Column("delivery_id", String(40), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON sent (and signed)
    Column("status", String(20), nullable=False),  # pending, sending, succeeded, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Time, nullable=False),
    Column("lease_until", Time),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    UniqueConstraint("delivery_id", "endpoint_id", name="uq_webhook_messages_delivery_endpoint"),
    Index("ix_webhook_messages_endpoint", "endpoint_id", "created_at"),
    Index(
        "ix_webhook_messages_due",
        "next_attempt_at",
        sqlite_where=text("status IN ('pending', 'sending')"),
        postgresql_where=text("status IN ('pending', 'sending')"),
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_id", String(40), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Time, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("response", Text),  # the first bytes of the answer, capped
    Column("error", Text),
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "seq"),
    Index("ix_webhook_attempts_message", "message_id", "seq"),
)
