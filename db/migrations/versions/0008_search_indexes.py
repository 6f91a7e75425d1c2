"""admin search indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 00:15:00.000000+00:00

The admin search (GET /admin/orders and its CSV export) pages newest first with a keyset on
(created_at, order_no). Each filter now walks an index in that order and stops after a page:
orders by customer, by status and by type, supplier orders by supplier, by status and by
supplier and status (their created_at and order_no are their order's, written together at
placement). Before, a supplier, a status or a type with few orders meant probing every order
placed since the last match (hundreds of ms at a million orders; bench/search.py).

Two indexes are replaced by wider ones that begin with the same columns, so every query the
old ones served is served as well: ix_orders_customer_id by (customer_id, created_at,
order_no), ix_supplier_orders_supplier_status by (supplier_id, status, created_at,
order_no). On PostgreSQL each index is built CONCURRENTLY outside the migration's
transaction (as 0002 does), the new ones before the old ones are dropped, so a large read
model keeps taking writes and never lacks an index meanwhile. A concurrent build that fails
leaves an INVALID index of that name behind: the next run stops at "already exists" (drop it
and run again) rather than silently keeping it.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns)
NEW = [
    ("ix_orders_customer_created", "orders", ["customer_id", "created_at", "order_no"]),
    ("ix_orders_status_created", "orders", ["status", "created_at", "order_no"]),
    ("ix_orders_type_created", "orders", ["order_type", "created_at", "order_no"]),
    (
        "ix_supplier_orders_supplier_status_created",
        "supplier_orders",
        ["supplier_id", "status", "created_at", "order_no"],
    ),
    (
        "ix_supplier_orders_supplier_created",
        "supplier_orders",
        ["supplier_id", "created_at", "order_no"],
    ),
    ("ix_supplier_orders_status_created", "supplier_orders", ["status", "created_at", "order_no"]),
]
OLD = [
    ("ix_orders_customer_id", "orders", ["customer_id"]),
    ("ix_supplier_orders_supplier_status", "supplier_orders", ["supplier_id", "status"]),
]


def _swap(create: list[tuple[str, str, list[str]]], drop: list[tuple[str, str, list[str]]]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, table, columns in create:
                op.create_index(name, table, columns, unique=False, postgresql_concurrently=True)
            for name, table, _ in drop:
                op.drop_index(name, table_name=table, postgresql_concurrently=True)
    else:
        for name, table, columns in create:
            op.create_index(name, table, columns, unique=False)
        for name, table, _ in drop:
            op.drop_index(name, table_name=table)


def upgrade() -> None:
    _swap(NEW, OLD)


def downgrade() -> None:
    _swap(OLD, NEW)
