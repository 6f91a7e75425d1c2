"""reviews by product

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:45:00.000000+00:00

The reviews centre (`GET /products/{sku}/reviews`, DESIGN.md §11) pages a product's reviews
newest first. A review only knew its item, so listing one product's meant reading every item
ever sold of it and sorting their reviews for each page. Now each review carries its item's
`sku` (copied from order_items, which never changes it) and one index on (sku, at, item_id)
serves the keyset: a page costs the same however popular the product and however deep.

Existing reviews are backfilled from their items, then the column is made NOT NULL. A worker
still running the old code during a rollout writes a review without it: that insert fails
(a plain IntegrityError, so the local activity is retried) until a new worker takes the task
over, so no review is lost or written without its product. On PostgreSQL the index is built
CONCURRENTLY outside the migration's transaction (as 0002 does); SET NOT NULL scans the table
once under a short exclusive lock.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_reviews_sku_at_item"
COLUMNS = ["sku", "at", "item_id"]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("reviews", sa.Column("sku", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE reviews SET sku = (SELECT i.sku FROM order_items i WHERE i.id = reviews.item_id)"
    )
    with op.batch_alter_table("reviews") as batch:
        batch.alter_column("sku", existing_type=sa.String(length=64), nullable=False)
    if _postgresql():
        with op.get_context().autocommit_block():
            op.create_index(INDEX, "reviews", COLUMNS, unique=False, postgresql_concurrently=True)
    else:
        op.create_index(INDEX, "reviews", COLUMNS, unique=False)


def downgrade() -> None:
    if _postgresql():
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name="reviews", postgresql_concurrently=True)
    else:
        op.drop_index(INDEX, table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("sku")
