"""orders keyset index

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 23:00:00.000000+00:00

The admin search pages orders newest first with a keyset on (created_at, order_no); one
index on both columns serves it (and every query the single-column ix_orders_created_at
served, which it replaces). On PostgreSQL both are built and dropped CONCURRENTLY, outside
the migration's transaction, so a large orders table keeps taking writes meanwhile. A
concurrent build that fails leaves an INVALID index of that name behind: the next run then
stops at "already exists" (drop it and run again) rather than silently keeping it.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "ix_orders_created_at_order_no"
OLD = "ix_orders_created_at"


def _swap(create: tuple[str, list[str]], drop: str) -> None:
    name, columns = create
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(name, "orders", columns, unique=False, postgresql_concurrently=True)
            op.drop_index(drop, table_name="orders", postgresql_concurrently=True)
    else:
        op.create_index(name, "orders", columns, unique=False)
        op.drop_index(drop, table_name="orders")


def upgrade() -> None:
    _swap((NEW, ["created_at", "order_no"]), OLD)


def downgrade() -> None:
    _swap((OLD, ["created_at"]), NEW)
