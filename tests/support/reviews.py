"""Reviewed items written straight into the read model, for the reviews centre's tests (the
API's and the product page's): a finished order with one supplier order and one sub-order,
one item per review, and the reviews."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from db.tables import Order, OrderItem, Review, SubOrder, SupplierOrder

MONEY = Decimal("1.00")


@dataclass(frozen=True)
class Reviewed:
    item_id: str
    sku: str
    at: datetime
    rating: int = 5
    text: str = ""
    auto: bool = False


async def add_reviewed_order(
    s: AsyncSession,
    *,
    order_no: str,
    customer_id: str,
    supplier_id: str,
    at: datetime,
    reviews: list[Reviewed],
) -> str:
    """The order, its items and their reviews (in the session's transaction); the supplier
    order's id."""
    so_id = f"{order_no}-{supplier_id}-1"
    sub_id = f"{so_id}-x"
    s.add(
        Order(
            order_no=order_no,
            customer_id=customer_id,
            status="FINISHED",
            subtotal=MONEY,
            postage=MONEY,
            coins=Decimal("0"),
            payable=MONEY,
            pay_deadline=at,
            created_at=at,
            plan={},
        )
    )
    await s.flush()
    s.add(
        SupplierOrder(
            id=so_id,
            order_no=order_no,
            supplier_id=supplier_id,
            customer_id=customer_id,
            status="COMPLETED",
            needs_address=False,
            subtotal=MONEY,
            postage=MONEY,
            coin_share=Decimal("0"),
            payable=MONEY,
            created_at=at,
        )
    )
    await s.flush()
    s.add(SubOrder(id=sub_id, supplier_order_id=so_id, product_type="x"))
    await s.flush()
    for r in reviews:
        s.add(
            OrderItem(
                id=r.item_id,
                order_no=order_no,
                supplier_order_id=so_id,
                sub_order_id=sub_id,
                sku=r.sku,
                name=r.sku,
                product_type="x",
                kind="physical",
                price=MONEY,
                qty=1,
                line_total=MONEY,
                coin_share=Decimal("0"),
                status="COMPLETED",
            )
        )
    await s.flush()
    for r in reviews:
        s.add(
            Review(
                item_id=r.item_id,
                sku=r.sku,
                supplier_order_id=so_id,
                rating=r.rating,
                text=r.text,
                auto=r.auto,
                at=r.at,
            )
        )
    return so_id
