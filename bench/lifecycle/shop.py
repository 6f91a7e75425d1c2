"""The read model the lifecycles run against: seeded suppliers' products and customers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import CoinLedger, Customer, Order, Product
from domain.models import Address, OrderLine, SubmitOrder
from domain.states import OrderStatus

SUPPLIERS = ("bs1", "bs2")
PRODUCTS_PER_SUPPLIER = 8
CUSTOMERS = 64
HOME = Address(
    name="Bench Customer",
    phone="13800000000",
    region="Shanghai",
    address="1 Century Ave",
    lat=31.2304,
    lon=121.4737,
)


@dataclass
class Shop:
    """The read model the lifecycles run against, and the ids that were seeded into it.

    `sessions` is the application's (db.session.make_engine), used by an in-process worker and
    for seeding. The driver reads through `reads`, a small engine of its own on the same URL, so
    its polling never takes a connection the activities are waiting for.
    """

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reader: AsyncEngine
    reads: async_sessionmaker[AsyncSession]
    tag: str

    def sku(self, supplier: str, k: int) -> str:
        return f"{self.tag}-{supplier}-{k}"

    def customer(self, k: int) -> str:
        return f"{self.tag}-c{k}"

    async def seed(self) -> None:
        """Two suppliers' products with stock that never runs out, customers with coins."""
        at = datetime.now(UTC)
        async with write_session(self.sessions) as s:
            for supplier in SUPPLIERS:
                for k in range(PRODUCTS_PER_SUPPLIER):
                    s.add(
                        Product(
                            sku=self.sku(supplier, k),
                            name=f"Bench product {supplier}/{k}",
                            supplier_id=supplier,
                            product_type=("tea", "cups")[k % 2],
                            kind="physical",
                            price=Decimal("20.00") + k,
                            on_hand=1_000_000_000,
                            reserved=0,
                            active=True,
                        )
                    )
            for k in range(CUSTOMERS):
                cid = self.customer(k)
                coins = Decimal("1000000.00")
                s.add(
                    Customer(
                        id=cid, name=cid, coins=coins, default_address=HOME.model_dump(mode="json")
                    )
                )
                s.add(CoinLedger(customer_id=cid, delta=coins, reason="seed", order_no=None, at=at))

    def request(self, i: int) -> SubmitOrder:
        """Order i: one product of each supplier (rotating), a few coins, default address."""
        return SubmitOrder(
            customer_id=self.customer(i % CUSTOMERS),
            lines=[
                OrderLine(sku=self.sku(sup, (i + j) % PRODUCTS_PER_SUPPLIER), qty=1 + i % 2)
                for j, sup in enumerate(SUPPLIERS)
            ],
            coins=Decimal("1.00"),
        )

    async def finished(self, order_nos: Sequence[str]) -> int:
        n = 0
        for chunk in range(0, len(order_nos), 500):
            async with self.sessions() as s:
                n += int(
                    await s.scalar(
                        select(func.count())
                        .select_from(Order)
                        .where(
                            Order.order_no.in_(order_nos[chunk : chunk + 500]),
                            Order.status == OrderStatus.FINISHED.value,
                        )
                    )
                    or 0
                )
        return n

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.reader.dispose()


def connect_shop(url: str, tag_prefix: str, pool_size: int | None = None) -> Shop:
    """A Shop on `url` (the app's engine, optionally with its own pool size, and the driver's
    small reader), tagged `tag_prefix` + 6 random hex digits; not seeded yet."""
    pool: dict[str, Any] = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 0}
    engine = make_engine(url, **pool)
    reader = create_async_engine(url, pool_size=2, max_overflow=0)
    return Shop(
        url,
        engine,
        make_session_factory(engine),
        reader,
        make_session_factory(reader),
        tag=f"{tag_prefix}{uuid.uuid4().hex[:6]}",
    )


async def open_shop(database_url: str | None, workdir: Path, pool_size: int | None = None) -> Shop:
    """The read model's tables created on `database_url` (default: a SQLite file in `workdir`)
    and seeded."""
    shop = connect_shop(
        database_url or f"sqlite+aiosqlite:///{workdir / 'orders.db'}", "b", pool_size
    )
    await create_all(shop.engine)
    await shop.seed()
    return shop
