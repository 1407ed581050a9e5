"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 16:37:01.363645
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontdesk.store.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "audit_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=20), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=True),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_notification", ["notification_id", "seq"], unique=False)
        batch_op.create_index("ix_audit_user_at", ["user_id", "at"], unique=False)

    op.create_table(
        "broadcasts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(length=200), nullable=True),
        sa.Column("fanned_out", sa.Integer(), nullable=False),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_broadcasts_pending",
            ["created_at"],
            unique=False,
            sqlite_where=sa.text("completed_at IS NULL"),
            postgresql_where=sa.text("completed_at IS NULL"),
        )

    op.create_table(
        "dedupe_keys",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("dedupe_keys", schema=None) as batch_op:
        batch_op.create_index("ix_dedupe_keys_expires", ["expires_at"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("lane", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=4096), nullable=True),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("provider_message_id", sa.String(length=400), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "available_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("lease_until", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("escalation_of", sa.String(length=40), nullable=True),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "notification_id", "channel", name="uq_deliveries_notification_channel"
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_dead",
            ["channel", "id"],
            unique=False,
            sqlite_where=sa.text("status = 'dead'"),
            postgresql_where=sa.text("status = 'dead'"),
        )
        batch_op.create_index(
            "ix_deliveries_leased",
            ["channel", "lease_until"],
            unique=False,
            sqlite_where=sa.text("status = 'sending'"),
            postgresql_where=sa.text("status = 'sending'"),
        )
        batch_op.create_index(
            "ix_deliveries_ready",
            ["channel", "lane", "available_at"],
            unique=False,
            sqlite_where=sa.text("status IN ('queued', 'deferred')"),
            postgresql_where=sa.text("status IN ('queued', 'deferred')"),
        )
        batch_op.create_index("ix_deliveries_user", ["user_id", "created_at"], unique=False)

    op.create_table(
        "devices",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=4096), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "token"),
    )
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("action_url", sa.Text(), nullable=True),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("read_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("archived_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id"),
    )
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_items_user", ["user_id", "id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("template_id", sa.String(length=200), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("collapse_key", sa.String(length=200), nullable=True),
        sa.Column("lane", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "orchestrated_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_created", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_notifications_pending",
            ["lane", "created_at"],
            unique=False,
            sqlite_where=sa.text("orchestrated_at IS NULL"),
            postgresql_where=sa.text("orchestrated_at IS NULL"),
        )
        batch_op.create_index(
            "ix_notifications_user_created", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "sandbox_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=4096), nullable=True),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id"),
    )
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_sandbox_channel", ["channel", "id"], unique=False)

    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "suppressions",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=4096), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address"),
    )
    op.create_table(
        "templates",
        sa.Column("template_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=80), nullable=False),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("template_id", "version"),
    )
    op.create_table(
        "topic_subscribers",
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "user_id"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "quiet_hours",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "consent",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "preferences",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", frontdesk.store.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("topic_subscribers")
    op.drop_table("templates")
    op.drop_table("suppressions")
    op.drop_table("server_secrets")
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_channel")

    op.drop_table("sandbox_messages")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_user_created")
        batch_op.drop_index(
            "ix_notifications_pending",
            sqlite_where=sa.text("orchestrated_at IS NULL"),
            postgresql_where=sa.text("orchestrated_at IS NULL"),
        )
        batch_op.drop_index("ix_notifications_created")

    op.drop_table("notifications")
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_user")

    op.drop_table("inbox_items")
    op.drop_table("devices")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_user")
        batch_op.drop_index(
            "ix_deliveries_ready",
            sqlite_where=sa.text("status IN ('queued', 'deferred')"),
            postgresql_where=sa.text("status IN ('queued', 'deferred')"),
        )
        batch_op.drop_index(
            "ix_deliveries_leased",
            sqlite_where=sa.text("status = 'sending'"),
            postgresql_where=sa.text("status = 'sending'"),
        )
        batch_op.drop_index(
            "ix_deliveries_dead",
            sqlite_where=sa.text("status = 'dead'"),
            postgresql_where=sa.text("status = 'dead'"),
        )

    op.drop_table("deliveries")
    with op.batch_alter_table("dedupe_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_dedupe_keys_expires")

    op.drop_table("dedupe_keys")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_broadcasts_pending",
            sqlite_where=sa.text("completed_at IS NULL"),
            postgresql_where=sa.text("completed_at IS NULL"),
        )

    op.drop_table("broadcasts")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_user_at")
        batch_op.drop_index("ix_audit_notification")
        batch_op.drop_index("ix_audit_at")

    op.drop_table("audit_entries")
    op.drop_table("api_keys")
