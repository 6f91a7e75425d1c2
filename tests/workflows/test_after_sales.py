"""After-sales rules (DESIGN.md sections 2 and 3) on the time-skipping server.

Requests are opened on the supplier order (`request_after_sale`) and run as their own
workflow `aftersale-<id>`. Every scenario checks both workflows' views and the read
model (after_sales, refunds, order_items, notifications, order_log), that money is
conserved per supplier order, and ends with the invariants.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from db.tables import (
    AfterSale,
    Customer,
    Notification,
    OrderItem,
    OrderLog,
    Refund,
)
from domain.messages import (
    AfterSaleDecision,
    AfterSaleRef,
    AfterSaleSnapshot,
    CancelAfterSale,
    ConfirmReceipt,
    Placement,
    ReceiveReturn,
    RequestAfterSale,
    ReturnShipment,
    ShipItems,
    ShipLine,
    SubmitReview,
    SupplierOrderSnapshot,
)
from domain.money import prorate
from domain.policy import Policy
from domain.states import AfterSaleType
from tests.support.invariants import assert_money_per_supplier_order, check_invariants
from tests.support.shop import Shop, eventually
from worker import build_worker
from workflows.after_sale import AfterSaleWorkflow
from workflows.supplier_order import SupplierOrderWorkflow

SO = WorkflowHandle[SupplierOrderWorkflow, Any]
AS = WorkflowHandle[Any, AfterSaleSnapshot]
REFUND_ONLY, RETURN_REFUND = AfterSaleType.REFUND_ONLY, AfterSaleType.RETURN_REFUND


# --- helpers ------------------------------------------------------------------------


def sid(placement: Placement, supplier: str) -> str:
    return f"{placement.order_no}-{supplier}"


def item_ids(placement: Placement, supplier: str) -> dict[str, str]:
    return {i.sku: i.item_id for i in placement.plan.supplier_order(sid(placement, supplier)).items}


async def snap(handle: SO) -> SupplierOrderSnapshot:
    return await handle.query(SupplierOrderWorkflow.snapshot)


async def refused(coro: Any, *codes: str) -> ApplicationError:
    """The update's refusal, whose type must be one of `codes`."""
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    cause = err.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type in codes, f"{cause.type}: {cause.message}"
    return cause


async def rows(shop: Shop, table: Any, *where: Any, order_by: Any = None) -> list[Any]:
    async with shop.sessions() as s:
        stmt = select(table).where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        return list((await s.scalars(stmt)).all())


async def shipped_order(
    shop: Shop, lines: list[tuple[str, int]], supplier: str, **kwargs: Any
) -> tuple[Placement, SO]:
    """A paid order whose `supplier` order shipped everything in one package."""
    _, placement = await shop.paid_order(lines, **kwargs)
    child = await shop.child(sid(placement, supplier))
    await shop.ship_all(child, placement, sid(placement, supplier))
    return placement, child


def request(item_id: str, qty: int, kind: AfterSaleType = REFUND_ONLY) -> RequestAfterSale:
    return RequestAfterSale(item_id=item_id, qty=qty, type=kind, reason="broken", actor_id="alice")


async def open_request(shop: Shop, child: SO, cmd: RequestAfterSale) -> tuple[AfterSaleRef, AS]:
    ref = await child.execute_update(SupplierOrderWorkflow.request_after_sale, cmd)
    shop.track(f"aftersale-{ref.id}")
    handle: AS = shop.client.get_workflow_handle(
        f"aftersale-{ref.id}", result_type=AfterSaleSnapshot
    )
    return ref, handle


async def ended(child: SO, after_sale_id: str, status: str) -> SupplierOrderSnapshot:
    """The supplier order has heard that the request ended (its signal is async)."""

    async def probe() -> SupplierOrderSnapshot | None:
        s = await snap(child)
        return (
            s if any(a.id == after_sale_id and a.status == status for a in s.after_sales) else None
        )

    return await eventually(probe, what=f"{after_sale_id} {status} on the supplier order")


async def settle(child: SO) -> None:
    """Wait until the supplier order has recorded that its after-sales children closed.

    The time-skipping test server never releases its clock if a parent closes (or is
    terminated at teardown) before a child's completion reached the parent's history:
    every later sleep in the session then times out. Tests end each request and call
    this before they finish. (The real server has no such problem.)
    """

    async def probe() -> bool:
        return not (await child.describe()).raw_description.pending_children

    await eventually(probe, what="after-sales children recorded as closed")


_CLOSED = {
    f"workflow_execution_{end}_event_attributes"
    for end in ("completed", "failed", "timed_out", "terminated", "canceled")
}
_TIMER_ENDS = {"timer_fired_event_attributes", "timer_canceled_event_attributes"}
_ACTIVITY_ENDS = {
    f"activity_task_{end}_event_attributes"
    for end in ("completed", "failed", "timed_out", "canceled")
}


async def at_rest(handle: WorkflowHandle[Any, Any]) -> bool:
    """Closed, or running with nothing of its own outstanding: no workflow task, timer or
    activity that has not ended. Such a run moves again only when something from outside
    reaches it (a message, a child's end); it cannot close itself before that.

    Read from the history alone, in one pass: a history only grows, so what is outstanding
    in the events read is the state of one moment (a describe() next to a history read
    could miss a timer that fired in between and the task it scheduled).
    """
    task = False
    timers: set[str] = set()
    activities: set[int] = set()
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind in _CLOSED:
            return True
        if kind == "workflow_execution_continued_as_new_event_attributes":
            return False  # read again: the new run's history
        if kind == "workflow_task_scheduled_event_attributes":
            task = True
        elif kind == "workflow_task_completed_event_attributes":
            task = False  # (a failed or timed-out task is retried: still outstanding)
        elif kind == "timer_started_event_attributes":
            timers.add(event.timer_started_event_attributes.timer_id)
        elif kind in _TIMER_ENDS:
            timers.discard(getattr(event, kind).timer_id)
        elif kind == "activity_task_scheduled_event_attributes":
            activities.add(event.event_id)
        elif kind in _ACTIVITY_ENDS:
            activities.discard(getattr(event, kind).scheduled_event_id)
    return not task and not timers and not activities


async def refunded(handle: AS) -> AfterSaleSnapshot:
    result = await handle.result()
    assert result.status == "REFUNDED"
    return result


async def notes(shop: Shop, after_sale_id: str, side: str) -> list[str]:
    found = await rows(
        shop,
        Notification,
        Notification.dedupe_key.like(f"{after_sale_id}:%"),
        Notification.recipient_type == side,
        order_by=Notification.id,
    )
    return [n.kind for n in found]


async def log_entries(shop: Shop, after_sale_id: str) -> list[OrderLog]:
    entries = await rows(shop, OrderLog, OrderLog.action.like("after_sale_%"), order_by=OrderLog.id)
    return [e for e in entries if e.detail.get("after_sale_id") == after_sale_id]


async def log_actions(shop: Shop, after_sale_id: str) -> list[str]:
    return [e.action for e in await log_entries(shop, after_sale_id)]


async def coins(shop: Shop) -> Decimal:
    async with shop.sessions() as s:
        c = await s.get(Customer, "alice")
        assert c is not None
        return c.coins


# --- who may ask, and for what ---------------------------------------------------------


async def test_requests_only_for_shipped_items_within_bought_qty(shop: Shop) -> None:
    _, placement = await shop.paid_order([("tea-green", 2), ("pot-clay", 1), ("tea-black", 1)])
    so_id = sid(placement, "s1")
    child = await shop.child(so_id)
    ids = item_ids(placement, "s1")
    green, pot = ids["tea-green"], ids["pot-clay"]
    ask = SupplierOrderWorkflow.request_after_sale

    await refused(child.execute_update(ask, request(green, 1)), "invalid_state")  # unshipped
    await child.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(carrier="sf", tracking_no="P1", items=[ShipLine(item_id=green, qty=1)]),
    )
    cause = await refused(child.execute_update(ask, request(green, 1)), "invalid_state")
    assert "not fully shipped" in cause.message
    await child.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(
            carrier="sf",
            tracking_no="P2",
            items=[ShipLine(item_id=green, qty=1), ShipLine(item_id=pot, qty=1)],
        ),
    )
    await refused(child.execute_update(ask, request(green, 3)), "invalid_input")
    await refused(child.execute_update(ask, request(green, 0)), "invalid_input")
    await refused(child.execute_update(ask, request("nope", 1)), "not_found")
    await refused(child.execute_update(ask, request(ids["tea-black"], 1)), "invalid_state")
    assert await rows(shop, AfterSale) == []

    # Allowed while awaiting receipt (tea-black has not even shipped yet).
    ref, handle = await open_request(shop, child, request(green, 2, RETURN_REFUND))
    assert (ref.item_id, ref.qty, ref.status) == (green, 2, "REQUESTED")
    cause = await refused(child.execute_update(ask, request(green, 1)), "conflict")
    assert "already has an open" in cause.message
    other, _ = await open_request(shop, child, request(pot, 1))

    s = await snap(child)
    assert s.status == "PENDING_RECEIPT"
    assert {(a.id, a.status) for a in s.after_sales} == {
        (ref.id, "REQUESTED"),
        (other.id, "REQUESTED"),
    }
    (row,) = await rows(shop, AfterSale, AfterSale.id == ref.id)
    assert (row.item_id, row.qty, row.type, row.status, row.reason) == (
        green,
        2,
        "return_refund",
        "REQUESTED",
        "broken",
    )
    assert (row.supplier_id, row.customer_id, row.supplier_order_id) == ("s1", "alice", so_id)
    assert len(await rows(shop, AfterSale)) == 2
    assert await notes(shop, ref.id, "supplier") == ["after_sale_requested"]
    assert await log_actions(shop, ref.id) == ["after_sale_requested"]
    assert (await handle.query(AfterSaleWorkflow.snapshot)).status == "REQUESTED"
    for after_sale_id in (ref.id, other.id):
        await shop.client.get_workflow_handle(f"aftersale-{after_sale_id}").execute_update(
            AfterSaleWorkflow.cancel, CancelAfterSale()
        )
        await ended(child, after_sale_id, "CANCELLED")
    await settle(child)
    await check_invariants(shop.sessions)


async def test_requests_are_refused_after_the_window(shop: Shop) -> None:
    policy = Policy(after_sales_window=timedelta(days=3))
    placement, child = await shipped_order(
        shop, [("cup-white", 1), ("plate-blue", 1)], "s2", policy=policy
    )
    ids = item_ids(placement, "s2")
    received = await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    row = await shop.supplier_order_row(sid(placement, "s2"))
    assert row is not None and row.received_at is not None
    assert received.deadlines.after_sales_until == row.received_at + policy.after_sales_window

    await shop.skip(timedelta(days=2))
    ref, handle = await open_request(shop, child, request(ids["cup-white"], 1))
    await shop.skip(timedelta(days=1, hours=1))
    cause = await refused(
        child.execute_update(
            SupplierOrderWorkflow.request_after_sale, request(ids["plate-blue"], 1)
        ),
        "invalid_state",
    )
    assert "window closed" in cause.message
    assert [a.id for a in (await snap(child)).after_sales] == [ref.id]
    assert [r.id for r in await rows(shop, AfterSale)] == [ref.id]
    # A request opened inside the window still runs to its end.
    await handle.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    await refunded(handle)
    await ended(child, ref.id, "REFUNDED")
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


# --- refund only -------------------------------------------------------------------------


async def test_refund_only_partial_refunds_add_up_to_what_was_paid(shop: Shop) -> None:
    placement, child = await shipped_order(
        shop, [("tea-green", 3), ("pot-clay", 1), ("cup-white", 2)], "s1", coins="10.00"
    )
    so_id = sid(placement, "s1")
    line = next(i for i in placement.plan.supplier_order(so_id).items if i.sku == "tea-green")
    assert line.coin_share > 0 and line.money_paid * 100 % 3 != 0  # cents do not split evenly
    await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    completed = await child.execute_update(SupplierOrderWorkflow.review, SubmitReview(rating=5))
    assert completed.status == "COMPLETED"  # after-sales still open inside the window
    coins_before = await coins(shop)

    first, handle = await open_request(shop, child, request(line.item_id, 1))
    await refused(
        handle.execute_update(
            AfterSaleWorkflow.return_shipment, ReturnShipment(carrier="sf", tracking_no="R")
        ),
        "invalid_state",
    )
    approved = await handle.execute_update(
        AfterSaleWorkflow.decide, AfterSaleDecision(approve=True, actor_id="s1")
    )
    assert approved.status in ("APPROVED", "REFUNDED")
    one = await refunded(handle)
    assert one.refund_amount == prorate(line.money_paid, 1, 3)
    assert one.refund_coins == prorate(line.coin_share, 1, 3)
    await ended(child, first.id, "REFUNDED")

    await refused(
        child.execute_update(SupplierOrderWorkflow.request_after_sale, request(line.item_id, 3)),
        "invalid_input",
    )
    second, handle2 = await open_request(shop, child, request(line.item_id, 2))
    await handle2.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    two = await refunded(handle2)
    s = await ended(child, second.id, "REFUNDED")
    assert s.status == "COMPLETED"  # after-sales never change the order status
    cause = await refused(
        child.execute_update(SupplierOrderWorkflow.request_after_sale, request(line.item_id, 1)),
        "invalid_input",
    )
    assert "only 0 of 3" in cause.message

    # Cumulative: the two refunds are exactly what was paid for the line, money and coins.
    assert one.refund_amount is not None and two.refund_amount is not None
    assert one.refund_amount + two.refund_amount == line.money_paid
    assert one.refund_coins is not None and two.refund_coins is not None
    assert one.refund_coins + two.refund_coins == line.coin_share
    assert await coins(shop) == coins_before + line.coin_share
    refunds = await rows(
        shop, Refund, Refund.supplier_order_id == so_id, order_by=Refund.created_at
    )
    assert [(r.after_sale_id, r.amount, r.reason) for r in refunds] == [
        (first.id, one.refund_amount, "after_sale_refund_only"),
        (second.id, two.refund_amount, "after_sale_refund_only"),
    ]
    (item,) = await rows(shop, OrderItem, OrderItem.id == line.item_id)
    assert item.refunded_qty == 3
    rows_ = {r.id: r for r in await rows(shop, AfterSale)}
    assert (
        rows_[first.id].status == "REFUNDED" and rows_[first.id].refund_amount == one.refund_amount
    )
    assert await notes(shop, first.id, "supplier") == ["after_sale_requested"]
    assert await notes(shop, first.id, "customer") == ["after_sale_approved", "after_sale_refunded"]
    assert await log_actions(shop, first.id) == [
        "after_sale_requested",
        "after_sale_approved",
        "after_sale_refunded",
    ]
    order = await shop.order_row(placement.order_no)
    assert order is not None and order.refunded == line.money_paid
    so_row = await shop.supplier_order_row(so_id)
    assert so_row is not None and so_row.status == "COMPLETED"
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


async def test_unanswered_request_is_auto_approved(shop: Shop) -> None:
    policy = Policy()
    placement, child = await shipped_order(shop, [("cup-white", 2)], "s2", policy=policy)
    line = placement.plan.supplier_order(sid(placement, "s2")).items[0]
    ref, handle = await open_request(shop, child, request(line.item_id, 2))
    waiting = await handle.query(AfterSaleWorkflow.snapshot)
    (row,) = await rows(shop, AfterSale, AfterSale.id == ref.id)
    # The answer clock starts with the request's workflow, just after the request is recorded.
    assert waiting.approve_deadline is not None
    late = waiting.approve_deadline - (row.created_at + policy.after_sale_auto_approve_after)
    assert timedelta(0) <= late < timedelta(seconds=5)

    await shop.skip(policy.after_sale_auto_approve_after - timedelta(hours=1))
    assert (await handle.query(AfterSaleWorkflow.snapshot)).status == "REQUESTED"
    await shop.skip(timedelta(hours=2))
    done = await refunded(handle)
    assert done.refund_amount == line.money_paid
    await ended(child, ref.id, "REFUNDED")
    (approved,) = await rows(shop, OrderLog, OrderLog.action == "after_sale_approved")
    assert approved.actor == "system" and "auto-approved" in approved.detail["note"]
    assert approved.at == waiting.approve_deadline
    # Approved on the supplier's behalf: the supplier's inbox says so, once.
    assert await notes(shop, ref.id, "supplier") == ["after_sale_requested", "after_sale_approved"]
    assert await notes(shop, ref.id, "customer") == ["after_sale_approved", "after_sale_refunded"]
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


# --- return and refund -----------------------------------------------------------------


async def test_return_refund_goes_approve_ship_back_receive_refund(shop: Shop) -> None:
    placement, child = await shipped_order(shop, [("plate-blue", 2)], "s2")
    so_id = sid(placement, "s2")
    await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    line = placement.plan.supplier_order(so_id).items[0]
    ref, handle = await open_request(shop, child, request(line.item_id, 2, RETURN_REFUND))

    ship_back = ReturnShipment(carrier="yto", tracking_no="R-1", actor_id="alice")
    await refused(
        handle.execute_update(AfterSaleWorkflow.return_shipment, ship_back), "invalid_state"
    )
    await refused(
        handle.execute_update(AfterSaleWorkflow.receive_return, ReceiveReturn()), "invalid_state"
    )
    approved = await handle.execute_update(
        AfterSaleWorkflow.decide, AfterSaleDecision(approve=True)
    )
    assert approved.status == "APPROVED"
    await refused(
        handle.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=False)),
        "invalid_state",
    )
    await refused(
        handle.execute_update(AfterSaleWorkflow.receive_return, ReceiveReturn()), "invalid_state"
    )
    # Approved and waiting for the parcel: no refund yet.
    await shop.skip(timedelta(days=3))
    assert (await handle.query(AfterSaleWorkflow.snapshot)).status == "APPROVED"
    assert await rows(shop, Refund) == []

    sent = await handle.execute_update(AfterSaleWorkflow.return_shipment, ship_back)
    assert sent.status == "RETURN_SHIPPED"
    (row,) = await rows(shop, AfterSale, AfterSale.id == ref.id)
    assert (row.status, row.return_carrier, row.return_tracking_no) == (
        "RETURN_SHIPPED",
        "yto",
        "R-1",
    )
    await refused(
        handle.execute_update(AfterSaleWorkflow.cancel, CancelAfterSale()), "invalid_state"
    )
    received = await handle.execute_update(
        AfterSaleWorkflow.receive_return, ReceiveReturn(actor_id="s2")
    )
    assert received.status == "REFUNDED" and received.refund_amount == line.money_paid
    assert received.refund_coins == line.coin_share == 0
    await refunded(handle)
    s = await ended(child, ref.id, "REFUNDED")
    assert s.status == "PENDING_REVIEW"

    (row,) = await rows(shop, AfterSale, AfterSale.id == ref.id)
    assert (row.status, row.refund_amount) == ("REFUNDED", line.money_paid)
    (refund,) = await rows(shop, Refund)
    assert (refund.after_sale_id, refund.amount, refund.reason, refund.status) == (
        ref.id,
        line.money_paid,
        "after_sale_return_refund",
        "succeeded",
    )
    assert await notes(shop, ref.id, "supplier") == [
        "after_sale_requested",
        "after_sale_return_shipped",
    ]
    assert await notes(shop, ref.id, "customer") == ["after_sale_approved", "after_sale_refunded"]
    assert await log_actions(shop, ref.id) == [
        "after_sale_requested",
        "after_sale_approved",
        "after_sale_return_shipped",
        "after_sale_refunded",
    ]
    # Who did each step, and when: the parcel went back three days after the approval.
    entries = await log_entries(shop, ref.id)
    assert [(e.actor, e.actor_id) for e in entries] == [
        ("customer", "alice"),
        ("supplier", ""),
        ("customer", "alice"),
        ("supplier", "s2"),
    ]
    times = [e.at for e in entries]
    assert times == sorted(times) and times[0] == row.created_at
    assert times[2] - times[1] >= timedelta(days=3)
    assert times[3] == refund.created_at
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


async def test_an_approved_return_never_shipped_back_closes_at_its_deadline(shop: Shop) -> None:
    policy = Policy()
    placement, child = await shipped_order(shop, [("plate-blue", 2)], "s2", policy=policy)
    so_id = sid(placement, "s2")
    line = placement.plan.supplier_order(so_id).items[0]
    ref, handle = await open_request(shop, child, request(line.item_id, 2, RETURN_REFUND))
    approved = await handle.execute_update(
        AfterSaleWorkflow.decide, AfterSaleDecision(approve=True, actor_id="s2")
    )
    assert approved.return_deadline is not None
    assert (await snap(child)).deadlines.auto_confirm_at is None  # paused while open

    await shop.skip(policy.after_sale_return_within - timedelta(hours=1))
    assert (await handle.query(AfterSaleWorkflow.snapshot)).status == "APPROVED"
    await shop.skip(timedelta(hours=2))
    done = await handle.result()
    assert done.status == "CANCELLED" and done.refund_amount is None
    s = await ended(child, ref.id, "CANCELLED")
    assert s.deadlines.auto_confirm_at is not None  # the pause is over
    (row,) = await rows(shop, AfterSale, AfterSale.id == ref.id)
    assert (row.status, row.updated_at) == ("CANCELLED", approved.return_deadline)
    assert await rows(shop, Refund) == []
    (closed,) = await rows(shop, OrderLog, OrderLog.action == "after_sale_cancelled")
    assert closed.actor == "system" and "not shipped in time" in closed.detail["note"]
    # Closed by the platform: both sides hear it, once.
    assert await notes(shop, ref.id, "customer") == ["after_sale_approved", "after_sale_cancelled"]
    assert await notes(shop, ref.id, "supplier") == ["after_sale_requested", "after_sale_cancelled"]
    # The request has ended for good; the item is free for a new request.
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    again, h2 = await open_request(shop, child, request(line.item_id, 2))
    await h2.execute_update(AfterSaleWorkflow.cancel, CancelAfterSale())
    await ended(child, again.id, "CANCELLED")
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


async def test_a_return_the_supplier_never_confirms_is_refunded_at_its_deadline(
    shop: Shop,
) -> None:
    policy = Policy()
    placement, child = await shipped_order(shop, [("plate-blue", 2)], "s2", policy=policy)
    so_id = sid(placement, "s2")
    line = placement.plan.supplier_order(so_id).items[0]
    ref, handle = await open_request(shop, child, request(line.item_id, 2, RETURN_REFUND))
    await handle.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    await shop.skip(timedelta(days=6))  # shipped back a day before the return deadline
    sent = await handle.execute_update(
        AfterSaleWorkflow.return_shipment, ReturnShipment(carrier="yto", tracking_no="R-2")
    )
    assert sent.receive_deadline is not None

    await shop.skip(policy.after_sale_receive_within - timedelta(hours=1))
    assert (await handle.query(AfterSaleWorkflow.snapshot)).status == "RETURN_SHIPPED"
    await shop.skip(timedelta(hours=2))
    done = await refunded(handle)
    assert done.refund_amount == line.money_paid
    await ended(child, ref.id, "REFUNDED")
    (refund,) = await rows(shop, Refund)
    assert (refund.after_sale_id, refund.amount, refund.status) == (
        ref.id,
        line.money_paid,
        "succeeded",
    )
    (paid_back,) = await rows(shop, OrderLog, OrderLog.action == "after_sale_refunded")
    assert paid_back.actor == "system" and paid_back.at == sent.receive_deadline
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


@pytest.fixture
async def live_shop(
    dev_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Shop]:
    """A worker on the real dev server: for the one scenario the time-skipping server
    cannot run (a parent that ends as its after-sales child ends; see `settle`)."""
    task_queue = f"after-sales-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, task_queue, sessions):
        shop = Shop(dev_env, sessions, task_queue)
        yield shop
        await shop.close()


# Real seconds go by here, and the lifecycle does not depend on the database engine.
@pytest.mark.parametrize("sessions", ["sqlite"], indirect=True)
async def test_a_request_open_past_the_window_holds_the_order_until_it_ends(
    live_shop: Shop,
) -> None:
    shop = live_shop
    # Real time on the dev server: a window of seconds.
    policy = Policy(after_sales_window=timedelta(seconds=2))
    handle_order, placement = await shop.paid_order([("plate-blue", 1)], policy=policy)
    so_id = sid(placement, "s2")
    child = await shop.child(so_id)
    await shop.ship_all(child, placement, so_id)
    await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    done = await child.execute_update(SupplierOrderWorkflow.review, SubmitReview(rating=2))
    assert done.status == "COMPLETED" and done.deadlines.after_sales_until is not None
    line = placement.plan.supplier_order(so_id).items[0]
    _, handle = await open_request(shop, child, request(line.item_id, 1, RETURN_REFUND))
    await handle.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))

    # Past the window, as the supplier order sees it: a second request for the item is
    # refused as a conflict with the open one until the window ends, and from then on
    # because it closed (the validator reads the workflow's own clock).
    window_ends = done.deadlines.after_sales_until
    ask_again = partial(
        child.execute_update, SupplierOrderWorkflow.request_after_sale, request(line.item_id, 1)
    )

    async def window_closed() -> bool:
        if datetime.now(UTC) <= window_ends:
            return False  # not yet on the wall clock: nothing to ask
        return (await refused(ask_again(), "invalid_state", "conflict")).type == "invalid_state"

    await eventually(window_closed, what="the supplier order to see its window closed")
    # Neither workflow closes at the window's end: once each has nothing of its own under
    # way (`at_rest`), only a message or a child's end can move it, so it is still running
    # for as long as the request is open. (One that closed at the window would be closed by
    # now, or still have the timer or workflow task that closes it outstanding.)
    for wf in (child, handle_order):
        await eventually(partial(at_rest, wf), what=f"{wf.id} at rest")
    assert (await child.describe()).status is WorkflowExecutionStatus.RUNNING
    assert (await handle_order.describe()).status is WorkflowExecutionStatus.RUNNING
    await refused(ask_again(), "invalid_state")

    await handle.execute_update(
        AfterSaleWorkflow.return_shipment, ReturnShipment(carrier="yto", tracking_no="R-late")
    )
    await handle.execute_update(AfterSaleWorkflow.receive_return, ReceiveReturn())
    assert (await refunded(handle)).refund_amount == line.money_paid
    result = await handle_order.result()
    assert result.status == "FINISHED"
    assert (await child.describe()).status is WorkflowExecutionStatus.COMPLETED
    so_row = await shop.supplier_order_row(so_id)
    assert so_row is not None and so_row.status == "COMPLETED"
    order = await shop.order_row(placement.order_no)
    assert order is not None and order.status == "FINISHED" and order.refunded == line.money_paid
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


# --- reject and withdraw --------------------------------------------------------------------


async def test_reject_or_withdraw_gives_the_quantity_back(shop: Shop) -> None:
    placement, child = await shipped_order(shop, [("tea-green", 2)], "s1")
    green = item_ids(placement, "s1")["tea-green"]
    ask = SupplierOrderWorkflow.request_after_sale

    rejected, h1 = await open_request(shop, child, request(green, 2))
    no = await h1.execute_update(
        AfterSaleWorkflow.decide, AfterSaleDecision(approve=False, reason="used")
    )
    assert no.status == "REJECTED"
    assert (await h1.result()).status == "REJECTED"
    await ended(child, rejected.id, "REJECTED")

    withdrawn, h2 = await open_request(shop, child, request(green, 2))
    await refused(
        h2.execute_update(AfterSaleWorkflow.receive_return, ReceiveReturn()), "invalid_state"
    )
    await h2.execute_update(AfterSaleWorkflow.cancel, CancelAfterSale(actor_id="alice"))
    assert (await h2.result()).status == "CANCELLED"
    await ended(child, withdrawn.id, "CANCELLED")

    late, h3 = await open_request(shop, child, request(green, 2, RETURN_REFUND))
    await h3.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    await h3.execute_update(AfterSaleWorkflow.cancel, CancelAfterSale())
    assert (await h3.result()).status == "CANCELLED"
    await ended(child, late.id, "CANCELLED")

    again, _ = await open_request(shop, child, request(green, 2))
    await refused(child.execute_update(ask, request(green, 1)), "conflict")
    statuses = {r.id: r.status for r in await rows(shop, AfterSale)}
    assert statuses == {
        rejected.id: "REJECTED",
        withdrawn.id: "CANCELLED",
        late.id: "CANCELLED",
        again.id: "REQUESTED",
    }
    assert await rows(shop, Refund) == []
    (item,) = await rows(shop, OrderItem, OrderItem.id == green)
    assert item.refunded_qty == 0
    assert await notes(shop, rejected.id, "customer") == ["after_sale_rejected"]
    assert await notes(shop, rejected.id, "supplier") == ["after_sale_requested"]
    assert await notes(shop, withdrawn.id, "supplier") == [
        "after_sale_requested",
        "after_sale_cancelled",
    ]
    assert await notes(shop, late.id, "supplier") == [
        "after_sale_requested",
        "after_sale_cancelled",
    ]
    assert (await snap(child)).status == "PENDING_RECEIPT"
    await shop.client.get_workflow_handle(f"aftersale-{again.id}").execute_update(
        AfterSaleWorkflow.decide, AfterSaleDecision(approve=False)
    )
    await ended(child, again.id, "REJECTED")
    await settle(child)
    await assert_money_per_supplier_order(shop, placement)
    await check_invariants(shop.sessions)


# --- auto-confirm pauses while a request is open --------------------------------------------


async def test_open_requests_pause_auto_confirm_and_the_pause_shifts_it(shop: Shop) -> None:
    # Returns may take their time here: this scenario is about the pause, not return deadlines.
    policy = Policy(after_sale_return_within=timedelta(days=30))
    placement, child = await shipped_order(
        shop, [("tea-green", 1), ("pot-clay", 1)], "s1", policy=policy
    )
    so_id = sid(placement, "s1")
    ids = item_ids(placement, "s1")
    shipped = await snap(child)
    t0 = shipped.packages[0].shipped_at
    assert shipped.deadlines.auto_confirm_at == t0 + policy.auto_confirm_after

    await shop.skip(timedelta(days=1))
    a, ha = await open_request(shop, child, request(ids["tea-green"], 1, RETURN_REFUND))
    paused = await snap(child)
    assert paused.deadlines.auto_confirm_at is None
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.auto_confirm_at is None
    await ha.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    await shop.skip(timedelta(days=1))
    b, hb = await open_request(shop, child, request(ids["pot-clay"], 1, RETURN_REFUND))
    await hb.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))

    # Day 11: well past the 10 days, still awaiting receipt.
    await shop.skip(timedelta(days=9))
    assert (await snap(child)).status == "PENDING_RECEIPT"
    await ha.execute_update(AfterSaleWorkflow.cancel, CancelAfterSale())
    s = await ended(child, a.id, "CANCELLED")
    assert s.deadlines.auto_confirm_at is None  # b is still open
    await shop.skip(timedelta(days=1))
    await hb.execute_update(AfterSaleWorkflow.cancel, CancelAfterSale())
    s = await ended(child, b.id, "CANCELLED")

    (opened,) = await rows(shop, AfterSale, AfterSale.id == a.id)
    (closed,) = await rows(shop, AfterSale, AfterSale.id == b.id)
    pause = closed.updated_at - opened.created_at
    assert timedelta(days=11) <= pause < timedelta(days=11, minutes=5)
    due = s.deadlines.auto_confirm_at
    assert due is not None
    assert abs(due - (t0 + policy.auto_confirm_after + pause)) < timedelta(minutes=1)
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.auto_confirm_at == due
    moved = await rows(
        shop, OrderLog, OrderLog.supplier_order_id == so_id, OrderLog.action == "deadline_moved"
    )
    assert [m.detail["auto_confirm_at"] for m in moved] == [None, due.isoformat()]

    now = closed.updated_at
    await shop.skip(due - now - timedelta(hours=1))
    assert (await snap(child)).status == "PENDING_RECEIPT"
    await shop.skip(timedelta(hours=2))
    assert (await snap(child)).status == "PENDING_REVIEW"
    row = await shop.supplier_order_row(so_id)
    assert row is not None and row.received_at == due
    await settle(child)
    await check_invariants(shop.sessions)
