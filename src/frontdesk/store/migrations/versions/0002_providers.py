"""providers: delivery details, receipts by message id, devices by token, opt-outs

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column(
            "provider_details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )
    op.create_index("ix_deliveries_provider_message", "deliveries", ["provider_message_id"])
    op.create_index("ix_devices_token", "devices", ["token"])
    op.add_column(
        "suppressions",
        sa.Column("kind", sa.String(length=20), nullable=False, server_default="suppressed"),
    )


def downgrade() -> None:
    with op.batch_alter_table("suppressions") as suppressions:
        suppressions.drop_column("kind")
    op.drop_index("ix_devices_token", table_name="devices")
    op.drop_index("ix_deliveries_provider_message", table_name="deliveries")
    with op.batch_alter_table("deliveries") as deliveries:
        deliveries.drop_column("provider_details")
