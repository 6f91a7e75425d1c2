"""payers, pay requests and all money on the record

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 13:00:00.000000+00:00

Friend pays (DESIGN.md §11): `orders.payer_id` (who paid the order), `orders.pay_token_hash`
(SHA-256 of a friend_pay order's pay request token; unique, so a token finds its order),
`payments.payer_id` and `refunds.payer_id` (whom a refund's money goes back to).

Money on the record: `orders.paid` and `orders.refunded` now count all money received and
returned. Before, `paid` held only the applied payment and `refunded` only refunds of money
the order kept, so a payment refunded as a mismatch, a duplicate or a late one showed
neither. The backfill recomputes both, but only for the orders such a payment touched (the
others already agree); every existing payment and refund is the buyer's (there was no other
payer), and so is every paid order's payer. Downgrade restores the old meaning.

On PostgreSQL the unique index is built CONCURRENTLY outside the migration's transaction
(as 0002 does), so a large orders table keeps taking writes meanwhile.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_orders_pay_token_hash"
REFUNDED_OUTCOMES = "('refunded_mismatch', 'refunded_duplicate', 'refunded_late')"
RECEIVED_OUTCOMES = "('applied', 'refunded_mismatch', 'refunded_duplicate', 'refunded_late')"
# Orders a payment the order did not owe touched: the only ones whose totals change.
TOUCHED = (
    "EXISTS (SELECT 1 FROM payments p WHERE p.order_no = orders.order_no "
    f"AND p.outcome IN {REFUNDED_OUTCOMES})"
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("orders", sa.Column("payer_id", sa.String(length=64), nullable=True))
    op.add_column("orders", sa.Column("pay_token_hash", sa.String(length=64), nullable=True))
    op.add_column("payments", sa.Column("payer_id", sa.String(length=64), nullable=True))
    op.add_column("refunds", sa.Column("payer_id", sa.String(length=64), nullable=True))

    op.execute("UPDATE orders SET payer_id = customer_id WHERE paid_at IS NOT NULL")
    op.execute(
        "UPDATE payments SET payer_id = "
        "(SELECT o.customer_id FROM orders o WHERE o.order_no = payments.order_no)"
    )
    op.execute(
        "UPDATE refunds SET payer_id = "
        "(SELECT o.customer_id FROM orders o WHERE o.order_no = refunds.order_no)"
    )
    op.execute(
        "UPDATE orders SET "
        "paid = (SELECT COALESCE(SUM(p.amount), 0) FROM payments p "
        "WHERE p.order_no = orders.order_no AND p.status = 'succeeded' "
        f"AND p.outcome IN {RECEIVED_OUTCOMES}), "
        "refunded = (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r "
        "WHERE r.order_no = orders.order_no AND r.status = 'succeeded') "
        f"WHERE {TOUCHED}"
    )

    if _postgresql():
        with op.get_context().autocommit_block():
            op.create_index(
                INDEX, "orders", ["pay_token_hash"], unique=True, postgresql_concurrently=True
            )
    else:
        op.create_index(INDEX, "orders", ["pay_token_hash"], unique=True)


def downgrade() -> None:
    if _postgresql():
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name="orders", postgresql_concurrently=True)
    else:
        op.drop_index(INDEX, table_name="orders")
    op.execute(
        "UPDATE orders SET "
        "paid = (SELECT COALESCE(SUM(p.amount), 0) FROM payments p "
        "WHERE p.order_no = orders.order_no AND p.outcome = 'applied'), "
        "refunded = (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r "
        "WHERE r.order_no = orders.order_no AND r.status = 'succeeded' "
        "AND r.payment_event_id IS NULL) "
        f"WHERE {TOUCHED}"
    )
    op.drop_column("refunds", "payer_id")
    op.drop_column("payments", "payer_id")
    op.drop_column("orders", "pay_token_hash")
    op.drop_column("orders", "payer_id")
