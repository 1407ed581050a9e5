"""webhook endpoints

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontdesk.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = frontdesk.store.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_types", _JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("signature", sa.String(length=8), nullable=False),
        sa.Column("secrets", _JSON, nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("headers", _JSON, nullable=False),
        sa.Column("client_certificate", sa.Text(), nullable=True),
        sa.Column("client_key_sealed", sa.Text(), nullable=True),
        sa.Column("failing_since", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_endpoints_user", "webhook_endpoints", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_endpoints_user", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
