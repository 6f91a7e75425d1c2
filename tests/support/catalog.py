"""A small test catalog: three suppliers, physical and virtual goods, several product types."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import write_session
from db.tables import CoinLedger, Customer, Product
from domain.models import Address

HOME = Address(
    name="Alice",
    phone="13800000000",
    region="Shanghai",
    address="1 Century Ave",
    lat=31.2304,
    lon=121.4737,
)

SEEDED_AT = datetime(2024, 1, 1, tzinfo=UTC)

PRODUCTS = [
    # sku, name, supplier, product_type, kind, price, on_hand
    ("tea-green", "Green tea 250g", "s1", "tea", "physical", "12.50", 100),
    ("tea-black", "Black tea 250g", "s1", "tea", "physical", "15.00", 100),
    ("pot-clay", "Clay teapot", "s1", "teaware", "physical", "40.00", 20),
    ("cup-white", "White cup", "s2", "cups", "physical", "6.00", 200),
    ("plate-blue", "Blue plate", "s2", "plates", "physical", "9.90", 50),
    ("gift-50", "E-gift card 50", "s3", "gift_card", "virtual", "50.00", 1000),
    ("lic-pro", "Pro licence", "s3", "software", "virtual", "30.00", 1000),
    ("old-mug", "Retired mug", "s2", "cups", "physical", "5.00", 10),
]


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    customers: dict[str, Decimal] | None = None,
    with_address: bool = True,
) -> None:
    customers = customers if customers is not None else {"alice": Decimal("100.00")}
    async with write_session(sessions) as s:
        for sku, name, supplier, ptype, kind, price, on_hand in PRODUCTS:
            s.add(
                Product(
                    sku=sku,
                    name=name,
                    supplier_id=supplier,
                    product_type=ptype,
                    kind=kind,
                    price=Decimal(price),
                    on_hand=on_hand,
                    reserved=0,
                    active=sku != "old-mug",
                )
            )
        for cid, coins in customers.items():
            s.add(
                Customer(
                    id=cid,
                    name=cid.title(),
                    coins=coins,
                    default_address=HOME.model_dump(mode="json") if with_address else None,
                )
            )
            s.add(
                CoinLedger(customer_id=cid, delta=coins, reason="seed", order_no=None, at=SEEDED_AT)
            )
