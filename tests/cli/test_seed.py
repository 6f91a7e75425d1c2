"""starter.seed.seed_demo: idempotent demo data on a migrated SQLite and PostgreSQL database."""

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.migrate import upgrade_async
from db.session import make_engine, make_session_factory, write_session
from db.tables import CoinLedger, Customer, Product
from domain.models import Address
from starter.seed import CUSTOMERS, EXAMPLE_CART, PRODUCTS, seed_demo
from tests.support.invariants import check_invariants
from tests.support.postgres import create_database, drop_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    name = ""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/seed.db"
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        name = f"seed_{uuid.uuid4().hex[:12]}"
        url = await create_database(pg_url, name)
    await upgrade_async(url)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()
        if name:
            await drop_database(pg_url, name)


async def test_demo_catalog_shape() -> None:
    types: dict[str, set[str]] = defaultdict(set)
    kinds = {p.kind for p in PRODUCTS}
    for p in PRODUCTS:
        types[p.supplier_id].add(p.product_type)
        assert p.price > 0 and p.on_hand > 0
    assert len(types) >= 3 and all(len(t) >= 2 for t in types.values())
    assert kinds == {"physical", "virtual"}
    assert {c.id for c in CUSTOMERS} >= {"alice", "bob"}
    for c in CUSTOMERS:
        assert c.address.lat is not None and c.address.lon is not None
    skus = {p.sku for p in PRODUCTS}
    assert {sku for sku, _ in EXAMPLE_CART} <= skus


async def test_seed_is_idempotent_and_balances_audit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await seed_demo(sessions)
    assert sorted(first.customers_created) == sorted(c.id for c in CUSTOMERS)

    # Orders and admins change stock and prices; a re-seed resets the catalog fields only.
    async with write_session(sessions) as s:
        tea = await s.get_one(Product, "tea-1")
        tea.on_hand, tea.price = 7, Decimal("1.00")

    second = await seed_demo(sessions)
    assert second.customers_created == []

    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Product)) == len(PRODUCTS)
        assert await s.scalar(select(func.count()).select_from(Customer)) == len(CUSTOMERS)
        assert await s.scalar(select(func.count()).select_from(CoinLedger)) == len(CUSTOMERS)
        tea = await s.get_one(Product, "tea-1")
        assert (tea.on_hand, tea.reserved, tea.price) == (7, 0, Decimal("28.00"))
        alice = await s.get_one(Customer, "alice")
        assert alice.coins == Decimal("50.00")
        assert alice.default_address is not None
        assert Address.model_validate(alice.default_address).lat == pytest.approx(31.2352)
    await check_invariants(sessions)
