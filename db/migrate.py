"""Run the Alembic migrations from code: `upgrade(url)` (sync) and `await upgrade_async(url)`.

The scripts live in db/migrations (alembic.ini at the repo root points there too, for the
`alembic` command). Both functions bring the database at `url` to `revision` (head).
"""

import asyncio
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate hook: write a TypeDecorator column (db.tables.UTCDateTime) as its SQL type.

    Migration scripts then say `sa.DateTime(timezone=True)` and never import the app's
    models, which change after the script is written. False: render as usual.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` without reading alembic.ini (works from any cwd)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not `sqlalchemy.url`: ini values are %-interpolated.
    cfg.attributes["database_url"] = url
    cfg.attributes["keep_logging"] = True
    return cfg


def _ensure_sqlite_dir(url: str) -> None:
    u = make_url(url)
    path = u.database or ""
    if u.get_backend_name() != "sqlite" or path in ("", ":memory:") or path.startswith("file:"):
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`.

    Sync and blocking; safe to call from a worker thread (env.py runs its own event loop),
    but not from a thread whose event loop is running: use `upgrade_async` there.
    """
    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` in a thread, for callers inside an event loop."""
    await asyncio.to_thread(upgrade, url, revision)
