"""drop the webhook outbox's leases

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00.000000+00:00

`webhook_events.lease_until` / `lease_owner` and the index `ix_webhook_events_due` (state,
next_attempt_at) served the first, in-process dispatcher, which leased due events by polling
that index. Delivery has since moved to WebhookDeliveryWorkflow (one per supplier order; its
activities update an event by id), so nothing writes the leases and no query walks the index:
it only cost a write on every event's insert and state change.

On PostgreSQL the index goes CONCURRENTLY outside the migration's transaction (as 0008 does),
so the outbox keeps taking writes; dropping a nullable column only edits the catalogue. SQLite
(3.35+) drops columns in place. Downgrade brings back the empty columns and the index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = ("ix_webhook_events_due", "webhook_events", ["state", "next_attempt_at"])


def upgrade() -> None:
    name, table, _ = INDEX
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
    else:
        op.drop_index(name, table_name=table)
    op.drop_column(table, "lease_owner")
    op.drop_column(table, "lease_until")


def downgrade() -> None:
    name, table, columns = INDEX
    op.add_column(table, sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(table, sa.Column("lease_owner", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(name, table, columns, unique=False, postgresql_concurrently=True)
    else:
        op.create_index(name, table, columns, unique=False)
