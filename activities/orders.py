"""Order-level activities: place (reserve + deduct), payment outcomes, close."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import DbActivities, log, notify
from db.mappers import catalog_product, customer_account
from db.session import append_row
from db.tables import (
    CoinLedger,
    Customer,
    Order,
    OrderItem,
    Payment,
    Product,
    Refund,
    SubOrder,
    SupplierOrder,
)
from domain.activity_params import CloseOrderParams, PaymentParams, PlaceOrderParams, RefundRef
from domain.errors import InsufficientCoins, InsufficientStock, NotFound
from domain.models import OrderPlan
from domain.split import build_plan
from domain.states import (
    CloseReason,
    ItemStatus,
    OrderStatus,
    SupplierOrderStatus,
)


async def release_unshipped(session: AsyncSession, items: list[OrderItem]) -> None:
    """Give back reserved stock of lines that never shipped, and close them."""
    for item in sorted(items, key=lambda i: i.sku):
        if item.status == ItemStatus.CLOSED:
            continue
        left = item.qty - item.shipped_qty
        if left > 0:
            await session.execute(
                update(Product)
                .where(Product.sku == item.sku)
                .values(reserved=Product.reserved - left)
            )
        item.status = ItemStatus.CLOSED


async def return_coins(
    session: AsyncSession, order: Order, coins: Decimal, reason: str, at: Any
) -> None:
    if coins <= 0:
        return
    await session.execute(
        update(Customer)
        .where(Customer.id == order.customer_id)
        .values(coins=Customer.coins + coins)
    )
    session.add(
        CoinLedger(
            customer_id=order.customer_id,
            delta=coins,
            reason=reason,
            order_no=order.order_no,
            at=at,
        )
    )
    order.coins_refunded = order.coins_refunded + coins


def payer_of(order: Order) -> str:
    """Who paid the order: money refunds go back to them (orders from before friend pays,
    and unpaid ones, have no payer recorded: the buyer)."""
    return order.payer_id or order.customer_id


def add_refund(
    session: AsyncSession,
    order: Order,
    refund_id: str,
    amount: Decimal,
    reason: str,
    at: datetime,
    *,
    coins: Decimal = Decimal("0"),
    method: str | None = None,
    payer_id: str | None = None,
    supplier_order_id: str | None = None,
    after_sale_id: str | None = None,
    payment_event_id: str | None = None,
) -> Refund:
    """Record money going back, to whoever paid it (`payer_id`, else the order's payer).

    The buyer is told by the caller, in words that fit the change; a payer who is not the
    buyer (a friend who paid) is told here that the money is on its way back to them.
    """
    payer = payer_id or payer_of(order)
    row = Refund(
        id=refund_id,
        order_no=order.order_no,
        supplier_order_id=supplier_order_id,
        after_sale_id=after_sale_id,
        payment_event_id=payment_event_id,
        amount=amount,
        coins=coins,
        method=method or order.payment_method or "card",
        reason=reason,
        created_at=at,
        payer_id=payer,
    )
    session.add(row)
    if payer != order.customer_id:
        notify(
            session,
            f"{refund_id}:payer",
            "customer",
            payer,
            "payment_refunded",
            order.order_no,
            f"{amount} that you paid for order {order.order_no} is being refunded to your "
            "original payment method.",
            at,
            supplier_order_id,
        )
    return row


class OrderActivities(DbActivities):
    @activity.defn
    async def place_order(self, p: PlaceOrderParams) -> OrderPlan:
        """Price from the catalog, reserve stock and deduct coins: all or nothing."""

        async def work(s: AsyncSession) -> dict[str, Any]:
            skus = sorted({line.sku for line in p.request.lines})
            rows = (await s.scalars(select(Product).where(Product.sku.in_(skus)))).all()
            catalog = {r.sku: catalog_product(r) for r in rows}
            customer = await s.get(Customer, p.request.customer_id)
            if customer is None:
                raise NotFound(f"unknown customer {p.request.customer_id!r}")
            plan = build_plan(p.order_no, p.request, catalog, customer_account(customer), p.policy)
            items = sorted(
                (i for so in plan.supplier_orders for i in so.items), key=lambda i: i.sku
            )
            for item in items:
                # Conditional update: the check and the reservation are one statement,
                # so two orders can never both take the last unit.
                res = await s.execute(
                    update(Product)
                    .where(
                        Product.sku == item.sku,
                        Product.active.is_(True),
                        Product.on_hand - Product.reserved >= item.qty,
                    )
                    .values(reserved=Product.reserved + item.qty)
                    .execution_options(synchronize_session=False)  # `rows` are not read again
                )
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    raise InsufficientStock(f"not enough stock of {item.sku!r}", sku=item.sku)
            if plan.coins > 0:
                res = await s.execute(
                    update(Customer)
                    .where(Customer.id == customer.id, Customer.coins >= plan.coins)
                    .values(coins=Customer.coins - plan.coins)
                    .execution_options(synchronize_session=False)  # nor is `customer`
                )
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    raise InsufficientCoins("coin balance changed; not enough coins")
                s.add(
                    CoinLedger(
                        customer_id=customer.id,
                        delta=-plan.coins,
                        reason="order_submitted",
                        order_no=plan.order_no,
                        at=p.at,
                    )
                )
            await _insert_order(s, plan, p)
            return plan.model_dump(mode="json")

        result = await self.once(p.key, "place_order", p.at, work)
        return OrderPlan.model_validate(result)

    @activity.defn
    async def apply_payment(self, p: PaymentParams) -> RefundRef:
        """Record a payment event; apply it, or record a refund for money not owed."""

        async def work(s: AsyncSession) -> dict[str, Any]:
            order = await s.get(Order, p.order_no)
            if order is None:
                raise NotFound(f"unknown order {p.order_no!r}")
            ev = p.event
            outcome = {
                "applied": "applied",
                "failed": "failed",
                "mismatch": "refunded_mismatch",
                "duplicate": "refunded_duplicate",
                "late": "refunded_late",
            }[p.outcome]
            payer = ev.payer_id or order.customer_id
            s.add(
                Payment(
                    event_id=ev.event_id,
                    order_no=p.order_no,
                    status=ev.status,
                    amount=ev.amount,
                    method=ev.method,
                    outcome=outcome,
                    at=ev.at or p.at,
                    payer_id=payer,
                )
            )
            if p.outcome != "failed":
                # Money received, whatever it is for: `paid` counts it all, and what the
                # order did not owe is counted again in `refunded` once it is sent back.
                order.paid = order.paid + ev.amount
            detail = {
                "event_id": ev.event_id,
                "amount": str(ev.amount),
                "method": ev.method,
                "payer_id": payer,
            }
            if p.outcome == "applied":
                await _mark_paid(s, order, p)
                log(s, p.order_no, "payment_applied", p.at, p.actor, p.actor_id, **detail)
                return RefundRef().model_dump(mode="json")
            if p.outcome == "failed":
                log(s, p.order_no, "payment_failed", p.at, p.actor, p.actor_id, **detail)
                await _close(s, order, CloseReason.PAYMENT_FAILED, p)
                return RefundRef().model_dump(mode="json")
            # Money arrived that the order does not owe: keep the record, send it back
            # to whoever paid it.
            refund_id = f"refund:payment:{ev.event_id}"
            add_refund(
                s,
                order,
                refund_id,
                ev.amount,
                outcome,
                p.at,
                method=ev.method,
                payer_id=payer,
                payment_event_id=ev.event_id,
            )
            log(s, p.order_no, f"payment_{outcome}", p.at, p.actor, p.actor_id, **detail)
            notify(
                s,
                f"{refund_id}:customer",
                "customer",
                order.customer_id,
                "payment_refunded",
                p.order_no,
                f"A payment of {ev.amount} for order {p.order_no} was not needed and is being "
                "refunded to its original method.",
                p.at,
            )
            return RefundRef(refund_id=refund_id, amount=ev.amount).model_dump(mode="json")

        result = await self.once(p.key, "apply_payment", p.at, work)
        return RefundRef.model_validate(result)

    @activity.defn
    async def close_order(self, p: CloseOrderParams) -> None:
        """Close an unpaid order: release stock, return coins."""

        async def work(s: AsyncSession) -> None:
            order = await s.get(Order, p.order_no)
            if order is None:
                raise NotFound(f"unknown order {p.order_no!r}")
            await _close(s, order, p.reason, p)
            return None

        await self.once(p.key, "close_order", p.at, work)


async def _insert_order(s: AsyncSession, plan: OrderPlan, p: PlaceOrderParams) -> None:
    # New rows nothing reads back in this transaction: appended (db.session.append_row),
    # parents first, each table in one statement.
    append_row(
        s,
        Order,
        {
            "order_no": plan.order_no,
            "customer_id": plan.customer_id,
            "status": OrderStatus.PENDING_PAYMENT,
            "subtotal": plan.subtotal,
            "postage": plan.postage,
            "coins": plan.coins,
            "payable": plan.payable,
            "pay_deadline": p.pay_deadline,
            "created_at": p.at,
            "plan": plan.model_dump(mode="json"),
            "order_type": plan.order_type,
            "pay_token_hash": p.request.pay_token_hash,
        },
    )
    for so in plan.supplier_orders:
        append_row(
            s,
            SupplierOrder,
            {
                "id": so.id,
                "order_no": plan.order_no,
                "supplier_id": so.supplier_id,
                "customer_id": plan.customer_id,
                "status": SupplierOrderStatus.PENDING_PAYMENT,
                "needs_address": so.needs_address,
                "address": so.address.model_dump(mode="json") if so.address else None,
                "remark": so.remark,
                "subtotal": so.subtotal,
                "postage": so.postage,
                "coin_share": so.coin_share,
                "payable": so.payable,
                "created_at": p.at,
            },
        )
    sub_of: dict[str, str] = {}
    for so in plan.supplier_orders:
        for sub in so.sub_orders:
            append_row(
                s,
                SubOrder,
                {"id": sub.id, "supplier_order_id": so.id, "product_type": sub.product_type},
            )
            sub_of.update({item_id: sub.id for item_id in sub.item_ids})
    for so in plan.supplier_orders:
        for i in so.items:
            append_row(
                s,
                OrderItem,
                {
                    "id": i.item_id,
                    "order_no": plan.order_no,
                    "supplier_order_id": so.id,
                    "sub_order_id": sub_of[i.item_id],
                    "sku": i.sku,
                    "name": i.name,
                    "product_type": i.product_type,
                    "kind": i.kind,
                    "price": i.price,
                    "qty": i.qty,
                    "line_total": i.line_total,
                    "coin_share": i.coin_share,
                    "status": ItemStatus.PENDING_SHIPMENT,
                    "source": i.source,
                },
            )
    log(
        s,
        plan.order_no,
        "order_submitted",
        p.at,
        "customer",
        plan.customer_id,
        payable=str(plan.payable),
        coins=str(plan.coins),
        suppliers=[so.supplier_id for so in plan.supplier_orders],
        order_type=plan.order_type,
    )


async def _mark_paid(s: AsyncSession, order: Order, p: PaymentParams) -> None:
    order.status = OrderStatus.PAID
    order.paid_at = p.at
    order.payment_method = p.event.method
    order.payer_id = p.event.payer_id or order.customer_id
    sos = (
        await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no == order.order_no))
    ).all()
    for so in sos:
        if so.status == SupplierOrderStatus.PENDING_PAYMENT:
            # Only the unpaid state flips: the supplier order workflow may already
            # have written a later one.
            so.status = SupplierOrderStatus.PENDING_SHIPMENT
        so.paid_at = p.at
        # The patent's step: one paid order to each supplier's terminal, one paid
        # record per supplier order to the customer's.
        notify(
            s,
            f"{so.id}:paid:supplier",
            "supplier",
            so.supplier_id,
            "order_paid",
            order.order_no,
            f"New paid order {so.id}: {so.subtotal} of goods, ship to {(so.address or {}).get('region', 'n/a (virtual)')}.",
            p.at,
            so.id,
        )
        notify(
            s,
            f"{so.id}:paid:customer",
            "customer",
            order.customer_id,
            "order_paid",
            order.order_no,
            f"Payment received for {so.id} ({so.supplier_id}); waiting for the supplier to ship.",
            p.at,
            so.id,
        )


async def _close(s: AsyncSession, order: Order, reason: CloseReason, p: Any) -> None:
    if order.status == OrderStatus.CLOSED:
        return
    items = (await s.scalars(select(OrderItem).where(OrderItem.order_no == order.order_no))).all()
    await release_unshipped(s, list(items))
    await return_coins(s, order, order.coins, f"order_closed_{reason.lower()}", p.at)
    sos = (
        await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no == order.order_no))
    ).all()
    for so in sos:
        so.status = SupplierOrderStatus.CLOSED
        so.close_reason = reason
        so.closed_at = p.at
    order.status = OrderStatus.CLOSED
    order.close_reason = reason
    order.closed_at = p.at
    log(s, order.order_no, "order_closed", p.at, p.actor, p.actor_id, reason=reason)
    notify(
        s,
        f"{order.order_no}:closed:customer",
        "customer",
        order.customer_id,
        "order_closed",
        order.order_no,
        f"Order {order.order_no} was closed ({reason}); reserved goods and coins were returned.",
        p.at,
    )
