"""After-sales activities: the request's record and the refund of an item's share."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DbActivities, log, notify
from activities.orders import add_refund, return_coins
from db.tables import AfterSale, Order, OrderItem
from domain.activity_params import (
    AfterSaleOpenParams,
    AfterSaleRefundParams,
    AfterSaleUpdateParams,
    RefundRef,
)
from domain.errors import NotFound
from domain.money import prorate
from domain.states import Actor, AfterSaleStatus

# Who hears about each step: the other side of the conversation.
_TELL = {
    AfterSaleStatus.APPROVED: "customer",
    AfterSaleStatus.REJECTED: "customer",
    AfterSaleStatus.RETURN_SHIPPED: "supplier",
    AfterSaleStatus.CANCELLED: "supplier",
    AfterSaleStatus.REFUNDED: "customer",
}


async def _after_sale(s: AsyncSession, after_sale_id: str) -> AfterSale:
    row = await s.get(AfterSale, after_sale_id)
    if row is None:
        raise NotFound(f"unknown after-sales request {after_sale_id!r}")
    return row


class AfterSaleActivities(DbActivities):
    @activity.defn
    async def open_after_sale(self, p: AfterSaleOpenParams) -> None:
        async def work(s: AsyncSession) -> None:
            r = p.request
            s.add(
                AfterSale(
                    id=r.id,
                    order_no=r.order_no,
                    supplier_order_id=r.supplier_order_id,
                    supplier_id=r.supplier_id,
                    customer_id=r.customer_id,
                    item_id=r.item_id,
                    qty=r.qty,
                    type=r.type,
                    reason=r.reason,
                    status=AfterSaleStatus.REQUESTED,
                    created_at=p.at,
                    updated_at=p.at,
                )
            )
            log(
                s,
                r.order_no,
                "after_sale_requested",
                p.at,
                p.actor,
                p.actor_id,
                r.supplier_order_id,
                after_sale_id=r.id,
                item_id=r.item_id,
                qty=r.qty,
                type=r.type,
            )
            notify(
                s,
                f"{r.id}:requested:supplier",
                "supplier",
                r.supplier_id,
                "after_sale_requested",
                r.order_no,
                f"After-sales request {r.id}: {r.type} of {r.qty} x item {r.item_id}. {r.reason}",
                p.at,
                r.supplier_order_id,
            )
            return None

        await self.once(p.key, "open_after_sale", p.at, work)

    @activity.defn
    async def update_after_sale(self, p: AfterSaleUpdateParams) -> None:
        async def work(s: AsyncSession) -> None:
            row = await _after_sale(s, p.after_sale_id)
            row.status = p.status
            row.updated_at = p.at
            if p.return_tracking_no:
                row.return_carrier = p.return_carrier
                row.return_tracking_no = p.return_tracking_no
            log(
                s,
                row.order_no,
                f"after_sale_{p.status.lower()}",
                p.at,
                p.actor,
                p.actor_id,
                row.supplier_order_id,
                after_sale_id=row.id,
                note=p.note,
            )
            sides = [_TELL[p.status]] if p.status in _TELL else []
            if p.actor is Actor.SYSTEM:
                # Decided by the platform at a deadline, not by either side: both hear it.
                sides = ["customer", "supplier"]
            for side in sides:
                notify(
                    s,
                    f"{row.id}:{p.status.lower()}:{side}",
                    side,
                    row.customer_id if side == "customer" else row.supplier_id,
                    f"after_sale_{p.status.lower()}",
                    row.order_no,
                    f"After-sales request {row.id} is now {p.status}. {p.note}".strip(),
                    p.at,
                    row.supplier_order_id,
                )
            return None

        await self.once(p.key, "update_after_sale", p.at, work)

    @activity.defn
    async def refund_after_sale(self, p: AfterSaleRefundParams) -> RefundRef:
        """Pay back the item's share for the requested quantity, coins proportionally.

        Amounts are cumulative differences (share of refunded-so-far + qty minus share
        of refunded-so-far), so successive partial refunds of one line add up to at
        most exactly what was paid for it.
        """

        async def work(s: AsyncSession) -> dict[str, Any]:
            row = await _after_sale(s, p.after_sale_id)
            item = await s.get(OrderItem, row.item_id)
            order = await s.get(Order, row.order_no)
            if item is None or order is None:
                raise NotFound("after-sales item or order is gone")
            before, after = item.refunded_qty, item.refunded_qty + row.qty
            money_paid = item.line_total - item.coin_share
            amount = prorate(money_paid, after, item.qty) - prorate(money_paid, before, item.qty)
            coins = prorate(item.coin_share, after, item.qty) - prorate(
                item.coin_share, before, item.qty
            )
            item.refunded_qty = after
            await return_coins(s, order, coins, "after_sale_refund", p.at)
            ref = RefundRef(amount=amount, coins=coins)
            if amount > 0:
                ref.refund_id = f"refund:{row.id}"
                add_refund(
                    s,
                    order,
                    ref.refund_id,
                    amount,
                    f"after_sale_{row.type}",
                    p.at,
                    coins=coins,
                    supplier_order_id=row.supplier_order_id,
                    after_sale_id=row.id,
                )
            row.status = AfterSaleStatus.REFUNDED
            row.refund_amount = amount
            row.refund_coins = coins
            row.updated_at = p.at
            log(
                s,
                row.order_no,
                "after_sale_refunded",
                p.at,
                p.actor,
                p.actor_id,
                row.supplier_order_id,
                after_sale_id=row.id,
                amount=str(amount),
                coins=str(coins),
            )
            notify(
                s,
                f"{row.id}:refunded:customer",
                "customer",
                row.customer_id,
                "after_sale_refunded",
                row.order_no,
                f"After-sales request {row.id} refunded: {amount} and {coins} coins.",
                p.at,
                row.supplier_order_id,
            )
            return ref.model_dump(mode="json")

        result = await self.once(p.key, "refund_after_sale", p.at, work)
        return RefundRef.model_validate(result)
