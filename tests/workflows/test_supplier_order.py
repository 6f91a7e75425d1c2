"""SupplierOrderWorkflow rules of issue 3: receipt deadlines, review, cancel refunds."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from db.tables import Customer, Notification, Order, OrderItem, Refund, Review, SupplierOrder
from domain.messages import (
    CancelSupplierOrder,
    ConfirmReceipt,
    Placement,
    ShipItems,
    ShipLine,
    SubmitReview,
)
from domain.policy import Policy
from domain.states import Actor, CloseReason, OrderStatus
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from workflows.supplier_order import SupplierOrderWorkflow

LINES = [("tea-green", 2), ("pot-clay", 1), ("cup-white", 3)]


def so_id(placement: Placement, supplier: str) -> str:
    return f"{placement.order_no}-{supplier}"


async def snapshot(handle: WorkflowHandle[SupplierOrderWorkflow, Any]) -> Any:
    return await handle.query(SupplierOrderWorkflow.snapshot)


async def ship(
    handle: WorkflowHandle[SupplierOrderWorkflow, Any], tracking: str, lines: dict[str, int]
) -> Any:
    return await handle.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(
            carrier="sf",
            tracking_no=tracking,
            items=[ShipLine(item_id=i, qty=q) for i, q in lines.items()],
        ),
    )


async def refused(coro: Any, code: str) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == code, cause.message
    return cause


async def test_full_lifecycle_finishes_the_order(shop: Shop) -> None:
    handle, placement = await shop.paid_order(LINES)
    for supplier in ("s1", "s2"):
        child = await shop.child(so_id(placement, supplier))
        await shop.ship_all(child, placement, so_id(placement, supplier))
        await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
        snap = await child.execute_update(
            SupplierOrderWorkflow.review, SubmitReview(rating=4, text="good")
        )
        assert snap.status == "COMPLETED"
    result = await handle.result()  # skips the 15-day after-sales window
    assert result.status is OrderStatus.FINISHED
    row = await shop.order_row(placement.order_no)
    assert row is not None and row.status == "FINISHED"
    async with shop.sessions() as s:
        items = (
            await s.scalars(select(OrderItem).where(OrderItem.order_no == placement.order_no))
        ).all()
        assert {i.status for i in items} == {"SHIPPED"}
        reviews = (await s.scalars(select(Review))).all()
        assert len(reviews) == len(items) and {r.auto for r in reviews} == {False}
    await check_invariants(shop.sessions)


async def test_auto_confirm_counts_from_the_last_tracking_number(shop: Shop) -> None:
    _, placement = await shop.paid_order(LINES)
    sid = so_id(placement, "s1")
    child = await shop.child(sid)
    tea, pot = (i.item_id for i in placement.plan.supplier_order(sid).items)
    first = await ship(child, "P1", {tea: 2})
    day0 = first.packages[0].shipped_at
    assert first.deadlines.auto_confirm_at == day0 + timedelta(days=10)

    await shop.skip(timedelta(days=6))
    second = await ship(child, "P2", {pot: 1})
    day6 = second.packages[1].shipped_at
    assert day6 - day0 >= timedelta(days=6)
    assert second.deadlines.auto_confirm_at == day6 + timedelta(days=10)

    # Day 15.9 (past the first package's 10 days): still waiting for receipt.
    await shop.skip(timedelta(days=9, hours=21))
    assert (await snapshot(child)).status == "PENDING_RECEIPT"
    await shop.skip(timedelta(hours=4))
    snap = await snapshot(child)
    assert snap.status == "PENDING_REVIEW"
    row = await shop.supplier_order_row(sid)
    assert row is not None and row.received_at is not None
    assert row.received_at.replace(tzinfo=None) - day6.replace(tzinfo=None) == timedelta(days=10)
    await check_invariants(shop.sessions)


async def test_confirm_is_refused_while_an_item_is_unshipped(shop: Shop) -> None:
    _, placement = await shop.paid_order(LINES)
    sid = so_id(placement, "s1")
    child = await shop.child(sid)
    tea, pot = (i.item_id for i in placement.plan.supplier_order(sid).items)
    await ship(child, "P1", {tea: 1})
    cause = await refused(
        child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt()),
        "invalid_state",
    )
    assert "not shipped yet" in cause.message
    assert (await snapshot(child)).status == "PENDING_RECEIPT"
    await ship(child, "P2", {tea: 1, pot: 1})
    snap = await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    assert snap.status == "PENDING_REVIEW"
    await check_invariants(shop.sessions)


async def test_auto_review_after_fifteen_days_writes_the_default_text(shop: Shop) -> None:
    policy = Policy()
    _, placement = await shop.paid_order(LINES, policy=policy)
    sid = so_id(placement, "s2")
    child = await shop.child(sid)
    await shop.ship_all(child, placement, sid)
    received = await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    assert received.deadlines.auto_review_at is not None
    await shop.skip(timedelta(days=14, hours=23))
    assert (await snapshot(child)).status == "PENDING_REVIEW"
    await shop.skip(timedelta(hours=2))
    assert (await snapshot(child)).status == "COMPLETED"
    async with shop.sessions() as s:
        reviews = (await s.scalars(select(Review).where(Review.supplier_order_id == sid))).all()
    assert reviews and all(r.auto and r.text == policy.default_review_text for r in reviews)
    row = await shop.supplier_order_row(sid)
    assert row is not None and row.status == "COMPLETED"
    await check_invariants(shop.sessions)


async def test_supplier_cancel_refunds_exactly_that_suppliers_share(shop: Shop) -> None:
    handle, placement = await shop.paid_order(LINES, coins="10.00")
    s1, s2 = (
        placement.plan.supplier_order(so_id(placement, "s1")),
        placement.plan.supplier_order(so_id(placement, "s2")),
    )
    child = await shop.child(s2.id)
    async with shop.sessions() as s:
        coins_before = (await s.get(Customer, "alice")).coins  # type: ignore[union-attr]
    snap = await child.execute_update(
        SupplierOrderWorkflow.cancel, CancelSupplierOrder(actor=Actor.SUPPLIER, actor_id="s2")
    )
    assert snap.status == "CLOSED" and snap.close_reason is CloseReason.SUPPLIER_CANCELLED

    async def settled() -> Refund | None:
        async with shop.sessions() as s:
            r = await s.scalar(select(Refund).where(Refund.supplier_order_id == s2.id))
            return r if r is not None and r.status == "succeeded" else None

    refund = await eventually(settled, what="supplier-cancel refund")
    assert refund.amount == s2.payable and refund.coins == s2.coin_share
    async with shop.sessions() as s:
        customer = await s.get(Customer, "alice")
        assert customer is not None and customer.coins == coins_before + s2.coin_share
        order = await s.get(Order, placement.order_no)
        assert order is not None and order.refunded == s2.payable and order.status == "PAID"
        other = await s.get(SupplierOrder, s1.id)
        assert other is not None and other.status == "PENDING_SHIPMENT"
        told = (
            await s.scalars(
                select(Notification).where(
                    Notification.supplier_order_id == s2.id,
                    Notification.kind == "supplier_cancelled",
                )
            )
        ).all()
        assert len(told) == 1 and told[0].recipient_type == "customer"
    # Cancel is refused once something shipped.
    c1 = await shop.child(s1.id)
    await ship(c1, "P1", {s1.items[0].item_id: 1})
    await refused(
        c1.execute_update(SupplierOrderWorkflow.cancel, CancelSupplierOrder(actor=Actor.CUSTOMER)),
        "invalid_state",
    )
    await check_invariants(shop.sessions)
    assert (await handle.query("snapshot"))["status"] == "PAID"


async def test_all_supplier_orders_cancelled_closes_the_parent(shop: Shop) -> None:
    handle, placement = await shop.paid_order(LINES, coins="4.00")
    for so in placement.plan.supplier_orders:
        child = await shop.child(so.id)
        await child.execute_update(
            SupplierOrderWorkflow.cancel,
            CancelSupplierOrder(actor=Actor.CUSTOMER, actor_id="alice"),
        )
    result = await handle.result()
    # Every supplier order closed by the customer: the order is closed, and says why.
    assert result.status is OrderStatus.CLOSED
    assert result.close_reason is CloseReason.USER_CANCELLED
    row = await shop.order_row(placement.order_no)
    assert row is not None and row.status == "CLOSED"
    assert row.close_reason == CloseReason.USER_CANCELLED
    assert row.refunded == placement.plan.payable and row.coins_refunded == Decimal("4.00")
    await check_invariants(shop.sessions)
