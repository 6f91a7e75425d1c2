"""order_log notify trigger

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:00:00.000000+00:00

PostgreSQL only: every row inserted into order_log sends `pg_notify('order_log', id)`, so the
pages' live-update hub (starter/web/live/), which LISTENs on that channel, reads the new
rows at once instead of waiting for its next poll. Notifications are delivered when the
inserting transaction commits, so the row is visible by the time the hub reads. Nothing on
SQLite (the hub polls there). A trigger is not part of the models, so db.tables is unchanged.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION order_log_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('order_log', NEW.id::text);
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER order_log_notify AFTER INSERT ON order_log "
        "FOR EACH ROW EXECUTE FUNCTION order_log_notify()"
    )


def downgrade() -> None:
    if not _postgresql():
        return
    op.execute("DROP TRIGGER IF EXISTS order_log_notify ON order_log")
    op.execute("DROP FUNCTION IF EXISTS order_log_notify()")
