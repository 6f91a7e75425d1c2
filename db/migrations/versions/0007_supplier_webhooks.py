"""supplier webhooks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00.000000+00:00

Signed supplier webhooks (DESIGN.md §11, starter/webhooks.py): `supplier_webhooks` (one
endpoint and secret per supplier, plus the previous secret during a rotation),
`webhook_events` (the outbox the dispatchers derive from order_log: one row per event and
supplier, the body sent on every attempt, its delivery state and lease), `webhook_attempts`
(every attempt, for `GET /admin/suppliers/{id}/deliveries`) and `webhook_cursor` (how far
order_log has been turned into events). New tables only: nothing existing is touched, so
the migration is instant on a large database. The dispatcher starts its cursor at the newest
order_log row the first time it runs: history is not replayed to endpoints.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supplier_webhooks",
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("previous_secret", sa.String(length=256), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("supplier_id"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("supplier_order_id", sa.String(length=100), nullable=False),
        sa.Column("order_no", sa.String(length=32), nullable=False),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_events_due", "webhook_events", ["state", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_webhook_events_sequence",
        "webhook_events",
        ["supplier_order_id", "log_id"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_events_supplier", "webhook_events", ["supplier_id", "state"], unique=False
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("supplier_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["webhook_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_attempts_event_id"), "webhook_attempts", ["event_id"], unique=False
    )
    op.create_index(
        "ix_webhook_attempts_supplier", "webhook_attempts", ["supplier_id", "id"], unique=False
    )
    op.create_table(
        "webhook_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursor")
    op.drop_index("ix_webhook_attempts_supplier", table_name="webhook_attempts")
    op.drop_index(op.f("ix_webhook_attempts_event_id"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_events_supplier", table_name="webhook_events")
    op.drop_index("ix_webhook_events_sequence", table_name="webhook_events")
    op.drop_index("ix_webhook_events_due", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("supplier_webhooks")
