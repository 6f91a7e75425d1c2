"""Demo data for the local stack: three suppliers' catalogs and two customers.

`await seed_demo(sessions)` is idempotent and safe to run on every `orders dev` start:

* products are upserted by SKU: the catalog fields (name, supplier, product type, kind,
  price, active) are reset to the demo values, stock (`on_hand`, `reserved`) is only set
  when the product is created, so orders placed in earlier sessions stay consistent;
* customers are inserted once, with their initial coins written to `coin_ledger` in the
  same transaction (balances audit: coins == sum(delta)); an existing customer is left
  alone (their coins and address may have changed through orders or the admin API).

Both use INSERT ... ON CONFLICT, so two seeders racing do not fail (SQLite and PostgreSQL).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import dialect_insert, write_session
from db.tables import CoinLedger, Customer, Product
from domain.models import Address
from domain.states import ProductKind


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    supplier_id: str
    product_type: str
    kind: ProductKind
    price: Decimal
    on_hand: int


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    coins: Decimal
    address: Address


PHYSICAL, VIRTUAL = ProductKind.PHYSICAL, ProductKind.VIRTUAL

PRODUCTS: tuple[DemoProduct, ...] = (
    # tea-house: loose tea and teaware (physical)
    DemoProduct(
        "tea-1", "Longjing green tea, 250 g", "tea-house", "tea", PHYSICAL, Decimal("28.00"), 120
    ),
    DemoProduct(
        "tea-2", "Tieguanyin oolong, 250 g", "tea-house", "tea", PHYSICAL, Decimal("24.50"), 80
    ),
    DemoProduct(
        "pot-1",
        "Yixing clay teapot, 200 ml",
        "tea-house",
        "teaware",
        PHYSICAL,
        Decimal("68.00"),
        15,
    ),
    # ceramics-co: cups and plates (physical)
    DemoProduct("cup-1", "Celadon tea cup", "ceramics-co", "cups", PHYSICAL, Decimal("9.90"), 200),
    DemoProduct(
        "cup-3", "Stoneware mug, 350 ml", "ceramics-co", "cups", PHYSICAL, Decimal("16.00"), 60
    ),
    DemoProduct(
        "plate-2",
        "Blue-and-white plate, 24 cm",
        "ceramics-co",
        "plates",
        PHYSICAL,
        Decimal("19.50"),
        40,
    ),
    # digital-goods: gift cards and software licences (virtual: no address, no postage)
    DemoProduct(
        "gift-50",
        "E-gift card, 50",
        "digital-goods",
        "gift_cards",
        VIRTUAL,
        Decimal("50.00"),
        10000,
    ),
    DemoProduct(
        "gift-100",
        "E-gift card, 100",
        "digital-goods",
        "gift_cards",
        VIRTUAL,
        Decimal("100.00"),
        10000,
    ),
    DemoProduct(
        "lic-1",
        "Photo editor licence, 1 year",
        "digital-goods",
        "software",
        VIRTUAL,
        Decimal("39.00"),
        10000,
    ),
)

CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        "alice",
        "Alice",
        Decimal("50.00"),
        Address(
            name="Alice Chen",
            phone="+86 138 0013 8000",
            region="Shanghai, Huangpu District",
            address="100 Nanjing East Road, Apt 1203",
            lat=31.2352,
            lon=121.4846,
        ),
    ),
    DemoCustomer(
        "bob",
        "Bob",
        Decimal("20.00"),
        Address(
            name="Bob Li",
            phone="+86 139 1001 2000",
            region="Beijing, Dongcheng District",
            address="8 Wangfujing Street, Unit 5",
            lat=39.9139,
            lon=116.4108,
        ),
    ),
)

SUPPLIERS: tuple[str, ...] = tuple(dict.fromkeys(p.supplier_id for p in PRODUCTS))

# What `orders dev` prints as the example cart: goods from two suppliers.
EXAMPLE_CART: tuple[tuple[str, int], ...] = (("tea-1", 2), ("cup-3", 1))


@dataclass(frozen=True)
class SeedResult:
    products: int
    customers_created: list[str]


def _insert(session: AsyncSession, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the session's dialect."""
    return dialect_insert(session.get_bind().dialect.name, table)


async def seed_demo(sessions: async_sessionmaker[AsyncSession]) -> SeedResult:
    """Upsert the demo catalog and customers (see the module docstring)."""
    now = datetime.now(UTC)
    created: list[str] = []
    async with write_session(sessions) as s:
        for p in PRODUCTS:
            catalog = {
                "name": p.name,
                "supplier_id": p.supplier_id,
                "product_type": p.product_type,
                "kind": p.kind.value,
                "price": p.price,
                "active": True,
            }
            stmt = _insert(s, Product).values(
                sku=p.sku, on_hand=p.on_hand, reserved=0, updated_at=now, **catalog
            )
            upsert: Insert = stmt.on_conflict_do_update(
                index_elements=[Product.sku], set_={**catalog, "updated_at": now}
            )
            await s.execute(upsert)
        for c in CUSTOMERS:
            stmt = _insert(s, Customer).values(
                id=c.id,
                name=c.name,
                coins=c.coins,
                default_address=c.address.model_dump(mode="json"),
            )
            inserted = await s.scalar(
                stmt.on_conflict_do_nothing(index_elements=[Customer.id]).returning(Customer.id)
            )
            if inserted is not None:
                s.add(
                    CoinLedger(
                        customer_id=c.id, delta=c.coins, reason="seed", order_no=None, at=now
                    )
                )
                created.append(c.id)
    return SeedResult(products=len(PRODUCTS), customers_created=created)
