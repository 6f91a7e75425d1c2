"""Read-model invariants every scenario must leave true (DESIGN.md §5).

- stock: per product, reserved == sum of unshipped qty of open order lines;
- coins: per customer, balance == sum of the coin ledger, and per order the
  coins returned never exceed the coins spent;
- money: per order, paid == kept + refunded (refunds settled), and money the
  order never owed (wrong amount, duplicate, late) was refunded in full;
- supplier inbox: each paid supplier order got exactly one paid-order notice.
"""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.tables import (
    CoinLedger,
    Customer,
    Notification,
    Order,
    OrderItem,
    Payment,
    Product,
    Refund,
    SupplierOrder,
)
from domain.states import ItemStatus


async def check_invariants(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s:
        await _stock(s)
        await _coins(s)
        await _money(s)
        await _inbox(s)


async def _stock(s: AsyncSession) -> None:
    unshipped: dict[str, int] = defaultdict(int)
    for item in (await s.scalars(select(OrderItem))).all():
        if item.status != ItemStatus.CLOSED:
            unshipped[item.sku] += item.qty - item.shipped_qty
    for p in (await s.scalars(select(Product))).all():
        assert p.reserved == unshipped[p.sku], (
            f"{p.sku}: reserved {p.reserved} != unshipped open qty {unshipped[p.sku]}"
        )
        assert p.reserved >= 0 and p.on_hand >= p.reserved, f"{p.sku}: {p.on_hand=} {p.reserved=}"


async def _coins(s: AsyncSession) -> None:
    ledger = dict(
        (
            await s.execute(
                select(CoinLedger.customer_id, func.sum(CoinLedger.delta)).group_by(
                    CoinLedger.customer_id
                )
            )
        ).all()
    )
    for c in (await s.scalars(select(Customer))).all():
        assert c.coins == Decimal(ledger.get(c.id, 0)), (
            f"{c.id}: {c.coins} != ledger {ledger.get(c.id)}"
        )
        assert c.coins >= 0
    for o in (await s.scalars(select(Order))).all():
        assert 0 <= o.coins_refunded <= o.coins, (
            f"{o.order_no}: coins back {o.coins_refunded} > {o.coins}"
        )


async def _money(s: AsyncSession) -> None:
    for o in (await s.scalars(select(Order))).all():
        refunds = (await s.scalars(select(Refund).where(Refund.order_no == o.order_no))).all()
        for r in refunds:
            assert r.status == "succeeded", f"refund {r.id} not settled"
        kept_refunds = sum((r.amount for r in refunds if r.payment_event_id is None), Decimal(0))
        assert o.refunded == kept_refunds, f"{o.order_no}: refunded {o.refunded} != {kept_refunds}"
        applied = (
            await s.scalars(
                select(Payment).where(Payment.order_no == o.order_no, Payment.outcome == "applied")
            )
        ).all()
        assert len(applied) <= 1, f"{o.order_no}: payment applied {len(applied)} times"
        assert o.paid == sum((p.amount for p in applied), Decimal(0))
        kept = o.paid - o.refunded
        assert kept >= 0, f"{o.order_no}: refunded more than paid"
        if applied:
            assert o.paid == o.payable
        # Money not owed goes back whole.
        for p in (
            await s.scalars(
                select(Payment).where(
                    Payment.order_no == o.order_no, Payment.outcome.like("refunded_%")
                )
            )
        ).all():
            back = [r for r in refunds if r.payment_event_id == p.event_id]
            assert len(back) == 1 and back[0].amount == p.amount, (
                f"payment {p.event_id} not refunded"
            )


async def _inbox(s: AsyncSession) -> None:
    paid = (await s.scalars(select(SupplierOrder).where(SupplierOrder.paid_at.is_not(None)))).all()
    for so in paid:
        n = await s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.supplier_order_id == so.id,
                Notification.recipient_type == "supplier",
                Notification.kind == "order_paid",
            )
        )
        assert n == 1, f"{so.id}: {n} paid-order notices to the supplier"
