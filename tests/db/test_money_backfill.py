"""Migrations 0004/0005 on existing rows, on SQLite and PostgreSQL.

Orders written before read as `self` with `normal` lines; every existing payment, refund and
paid order gets the buyer as its payer; `paid` / `refunded` are recomputed to count all money
received and returned (a refunded late or duplicate payment showed 0.00 / 0.00 before), and
the downgrade gives the old figures back.
"""

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.migrate import downgrade, upgrade_async
from db.tables import Base
from tests.support.postgres import create_database, drop_database

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _order(no: str, paid: str, refunded: str, paid_at: datetime | None) -> dict[str, Any]:
    return {
        "order_no": no,
        "customer_id": "alice",
        "status": "CLOSED" if paid_at is None else "PAID",
        "subtotal": Decimal("20.00"),
        "postage": Decimal("0.00"),
        "coins": Decimal("0.00"),
        "payable": Decimal("20.00"),
        "paid": Decimal(paid),
        "refunded": Decimal(refunded),
        "coins_refunded": Decimal("0.00"),
        "pay_deadline": T0,
        "created_at": T0,
        "paid_at": paid_at,
        "plan": {},
    }


async def _insert(engine: AsyncEngine, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Only the columns given (and those with defaults that 0004 has) are written."""
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(Base.metadata.tables[table].insert().values(**row))


async def _seed_before_0005(engine: AsyncEngine) -> None:
    """Three orders as the code before 0005 wrote them."""
    await _insert(
        engine,
        "orders",
        [
            _order("LATE", "0.00", "0.00", None),  # closed, then paid late: refunded whole
            _order("DUP", "20.00", "5.00", T0),  # paid twice; a 5.00 after-sales refund
            _order("PLAIN", "20.00", "0.00", T0),  # nothing to recompute
        ],
    )

    def pay(event: str, no: str, outcome: str, status: str = "succeeded") -> dict[str, Any]:
        return {
            "event_id": event,
            "order_no": no,
            "status": status,
            "amount": Decimal("20.00"),
            "method": "card",
            "outcome": outcome,
            "at": T0,
        }

    await _insert(
        engine,
        "payments",
        [
            pay("e-late", "LATE", "refunded_late"),
            pay("e-dup-1", "DUP", "applied"),
            pay("e-dup-2", "DUP", "refunded_duplicate"),
            pay("e-dup-3", "DUP", "failed", status="failed"),
            pay("e-plain", "PLAIN", "applied"),
        ],
    )

    def refund(rid: str, no: str, amount: str, event: str | None) -> dict[str, Any]:
        return {
            "id": rid,
            "order_no": no,
            "payment_event_id": event,
            "amount": Decimal(amount),
            "coins": Decimal("0.00"),
            "method": "card",
            "reason": "x",
            "status": "succeeded",
            "created_at": T0,
            "settled_at": T0,
        }

    await _insert(
        engine,
        "refunds",
        [
            refund("r-late", "LATE", "20.00", "e-late"),
            refund("r-dup", "DUP", "20.00", "e-dup-2"),
            refund("r-as", "DUP", "5.00", None),
        ],
    )


async def _rows(engine: AsyncEngine, sql: str) -> dict[str, tuple[Any, ...]]:
    async with engine.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in (await conn.execute(text(sql))).all()}


async def _check(url: str) -> None:
    await upgrade_async(url, "0004")
    engine = create_async_engine(url)
    try:
        await _seed_before_0005(engine)
        defaults = await _rows(engine, "SELECT order_no, order_type FROM orders")
        assert set(defaults.values()) == {("self",)}

        await upgrade_async(url)
        orders = await _rows(
            engine, "SELECT order_no, paid, refunded, payer_id, pay_token_hash FROM orders"
        )
        money = {no: (Decimal(str(p)), Decimal(str(r))) for no, (p, r, *_) in orders.items()}
        assert money == {
            "LATE": (Decimal("20.00"), Decimal("20.00")),
            "DUP": (Decimal("40.00"), Decimal("25.00")),
            "PLAIN": (Decimal("20.00"), Decimal("0.00")),
        }
        assert {no: row[2] for no, row in orders.items()} == {
            "LATE": None,  # never paid: no payer
            "DUP": "alice",
            "PLAIN": "alice",
        }
        assert {row[3] for row in orders.values()} == {None}
        payers = await _rows(engine, "SELECT event_id, payer_id FROM payments")
        assert set(payers.values()) == {("alice",)}
        payers = await _rows(engine, "SELECT id, payer_id FROM refunds")
        assert set(payers.values()) == {("alice",)}

        await asyncio.to_thread(downgrade, url, "0004")
        before = await _rows(engine, "SELECT order_no, paid, refunded FROM orders")
        assert {no: (Decimal(str(p)), Decimal(str(r))) for no, (p, r) in before.items()} == {
            "LATE": (Decimal("0.00"), Decimal("0.00")),
            "DUP": (Decimal("20.00"), Decimal("5.00")),
            "PLAIN": (Decimal("20.00"), Decimal("0.00")),
        }
        await upgrade_async(url)
    finally:
        await engine.dispose()


async def test_backfill_on_sqlite(tmp_path: Any) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path}/backfill.db")


async def test_backfill_on_postgres(pg_url: str) -> None:
    name = f"bf_{uuid.uuid4().hex[:12]}"
    url = await create_database(pg_url, name)
    try:
        await _check(url)
    finally:
        await drop_database(pg_url, name)
