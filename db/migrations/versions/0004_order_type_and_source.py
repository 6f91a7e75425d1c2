"""order type and line source

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 12:00:00.000000+00:00

`orders.order_type` (self | friend_pay | activity) and `order_items.source` (the catalog
zone a line was bought from, ORDERS_SOURCE_ZONES). Orders written before have neither:
they read as the buyer's own order (`self`) with every line from the `normal` zone, the
server defaults, so the columns are added NOT NULL without touching a row by hand (on
PostgreSQL 11+ a constant default is a catalog change, not a table rewrite).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column("order_type", sa.String(length=16), server_default="self", nullable=False),
    )
    op.add_column(
        "order_items",
        sa.Column("source", sa.String(length=32), server_default="normal", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("order_items", "source")
    op.drop_column("orders", "order_type")
