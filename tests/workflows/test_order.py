"""OrderWorkflow rules (DESIGN.md §3) on the time-skipping server, on SQLite and PostgreSQL.

Every scenario ends with the read-model invariants (stock, coins, money, inbox, log).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from db.session import write_session
from db.tables import (
    CoinLedger,
    Customer,
    Notification,
    Order,
    OrderLog,
    Payment,
    Product,
    Refund,
    SubOrder,
    SupplierOrder,
)
from domain.messages import CancelOrder, GetPlacement
from domain.policy import Policy
from domain.states import CloseReason, OrderStatus
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from workflows.order import OrderWorkflow

TWO_SUPPLIERS = [("tea-green", 2), ("pot-clay", 1), ("cup-white", 3)]


async def _reserved(shop: Shop) -> dict[str, int]:
    async with shop.sessions() as s:
        return dict((await s.execute(select(Product.sku, Product.reserved))).all())


async def _coins(shop: Shop, customer: str = "alice") -> Decimal:
    async with shop.sessions() as s:
        c = await s.get(Customer, customer)
        assert c is not None
        return c.coins


async def _created_at(shop: Shop, order_no: str) -> datetime:
    row = await shop.order_row(order_no)
    assert row is not None
    return row.created_at


async def _timers_fired(handle: WorkflowHandle[Any, Any]) -> list[datetime]:
    """When each timer of the run fired, on the (time-skipping) server's clock."""
    history = await handle.fetch_history()
    return [
        e.event_time.ToDatetime(tzinfo=UTC)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    ]


async def _accepted_updates(handle: WorkflowHandle[Any, Any]) -> dict[str, str]:
    """Update id -> update name of every update the workflow's history accepted."""
    history = await handle.fetch_history()
    accepted = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            accepted[request.meta.update_id] = request.input.name
    return accepted


async def _count(shop: Shop, table: type, *where: Any) -> int:
    async with shop.sessions() as s:
        stmt: Any = select(func.count()).select_from(table).where(*where)
        return int(await s.scalar(stmt) or 0)


async def test_placement_reserves_stock_and_deducts_coins(shop: Shop) -> None:
    _, placement = await shop.submit(TWO_SUPPLIERS, coins="10.00")
    plan = placement.plan
    # 2x12.50 + 40 = 65 (s1, postage 8) ; 3x6 = 18 (s2, postage 8) → 99, minus 10 coins.
    assert plan.subtotal == Decimal("83.00")
    assert plan.postage == Decimal("16.00")
    assert plan.payable == Decimal("89.00")
    assert sum(so.coin_share for so in plan.supplier_orders) == Decimal("10.00")
    reserved = await _reserved(shop)
    assert (reserved["tea-green"], reserved["pot-clay"], reserved["cup-white"]) == (2, 1, 3)
    assert await _coins(shop) == Decimal("90.00")
    row = await shop.order_row(placement.order_no)
    assert row is not None and row.status == OrderStatus.PENDING_PAYMENT
    await check_invariants(shop.sessions)


async def test_payment_timeout_closes_at_exactly_the_deadline(shop: Shop) -> None:
    # Not the 30-minute default: the deadline must come from the policy in the input.
    timeout = timedelta(minutes=7)
    handle, placement = await shop.submit(
        TWO_SUPPLIERS, coins="5.00", policy=Policy(payment_timeout=timeout)
    )
    assert placement.pay_deadline - (await _created_at(shop, placement.order_no)) == timeout

    # Just before the deadline: still waiting, in the workflow and the read model. (Five
    # seconds of margin: the test server's clock also runs in real time between our calls,
    # and a loaded CI machine may spend a second on them; the fired time is checked below.)
    await shop.skip(timeout - timedelta(seconds=5))
    snap = await handle.query(OrderWorkflow.snapshot)
    assert (snap.status, snap.close_reason) == (OrderStatus.PENDING_PAYMENT, None)
    row = await shop.order_row(placement.order_no)
    assert row is not None and row.status == "PENDING_PAYMENT" and row.closed_at is None
    assert (await _reserved(shop))["pot-clay"] == 1 and await _coins(shop) == Decimal("95.00")

    # Just after it: closed by the timer, without anyone waiting on the result
    # (that would let the server skip time on its own, hiding a late timer).
    await shop.skip(timedelta(seconds=6))

    async def closed() -> Any:
        s = await handle.query(OrderWorkflow.snapshot)
        return s if s.status is OrderStatus.CLOSED else None

    snap = await eventually(closed, timeout=5, what="close at the payment deadline")
    assert snap.close_reason is CloseReason.PAYMENT_TIMEOUT
    # The server's clock runs on while we poll: the history says when the timer fired.
    (fired,) = await _timers_fired(handle)
    assert placement.pay_deadline <= fired < placement.pay_deadline + timedelta(seconds=1)
    row = await shop.order_status(placement.order_no, "CLOSED")
    assert row.close_reason == CloseReason.PAYMENT_TIMEOUT
    assert row.closed_at == row.pay_deadline == placement.pay_deadline
    assert set((await _reserved(shop)).values()) == {0}
    assert await _coins(shop) == Decimal("100.00")
    for so in await shop.supplier_orders(placement.order_no):
        assert (so.status, so.close_reason) == ("CLOSED", "PAYMENT_TIMEOUT")
    result = await handle.result()  # skips through the late-payment grace period
    assert (result.status, result.close_reason) == (OrderStatus.CLOSED, CloseReason.PAYMENT_TIMEOUT)
    await check_invariants(shop.sessions)


async def test_payment_before_deadline_splits_into_supplier_orders(shop: Shop) -> None:
    handle, placement = await shop.submit(TWO_SUPPLIERS)
    await shop.skip(timedelta(minutes=29))
    await shop.pay(handle, placement.plan.payable)
    await shop.order_status(placement.order_no, "PAID")
    for so in placement.plan.supplier_orders:
        child = await shop.child(so.id)
        snap = await child.query("snapshot")
        assert snap["status"] == "PENDING_SHIPMENT"
    rows = await shop.supplier_orders(placement.order_no)
    assert [r.status for r in rows] == ["PENDING_SHIPMENT", "PENDING_SHIPMENT"]
    # The customer gets one paid record per supplier order.
    assert (
        await _count(
            shop,
            Notification,
            Notification.order_no == placement.order_no,
            Notification.recipient_type == "customer",
            Notification.kind == "order_paid",
        )
        == 2
    )
    await check_invariants(shop.sessions)


async def test_duplicate_payment_event_is_applied_once(shop: Shop) -> None:
    handle, placement = await shop.submit(TWO_SUPPLIERS)
    for _ in range(3):
        await shop.pay(handle, placement.plan.payable, event_id=f"evt-{placement.order_no}")
    row = await shop.order_status(placement.order_no, "PAID")
    assert row.paid == placement.plan.payable
    assert await _count(shop, Payment, Payment.order_no == placement.order_no) == 1
    snap = await handle.query(OrderWorkflow.snapshot)
    assert len(snap.payments) == 1
    await check_invariants(shop.sessions)


async def test_wrong_amount_is_recorded_refunded_and_order_stays_pending(shop: Shop) -> None:
    handle, placement = await shop.submit(TWO_SUPPLIERS)
    wrong = placement.plan.payable - Decimal("1.00")
    await shop.pay(handle, wrong, event_id=f"short-{placement.order_no}")

    async def refunded() -> bool:
        async with shop.sessions() as s:
            r = await s.scalar(select(Refund).where(Refund.order_no == placement.order_no))
            return r is not None and r.status == "succeeded"

    await eventually(refunded, what="mismatch refund")
    snap = await handle.query(OrderWorkflow.snapshot)
    assert snap.status is OrderStatus.PENDING_PAYMENT
    assert [p.outcome for p in snap.payments] == ["mismatch"]
    row = await shop.order_row(placement.order_no)
    # The wrong amount was received and sent back: both totals show it.
    assert row is not None and row.status == "PENDING_PAYMENT"
    assert (row.paid, row.refunded) == (wrong, wrong)
    # The right amount still pays the order.
    await shop.pay(handle, placement.plan.payable)
    row = await shop.order_status(placement.order_no, "PAID")
    assert (row.paid, row.refunded) == (wrong + placement.plan.payable, wrong)
    await check_invariants(shop.sessions)


async def test_payment_failure_closes_and_releases(shop: Shop) -> None:
    handle, placement = await shop.submit(TWO_SUPPLIERS, coins="3.00")
    await shop.pay(handle, placement.plan.payable, status="failed")
    row = await shop.order_status(placement.order_no, "CLOSED")
    assert row.close_reason == CloseReason.PAYMENT_FAILED
    assert set((await _reserved(shop)).values()) == {0}
    assert await _coins(shop) == Decimal("100.00")
    await check_invariants(shop.sessions)


async def test_customer_cancel_while_unpaid(shop: Shop) -> None:
    handle, placement = await shop.submit(TWO_SUPPLIERS, coins="7.50")
    snap = await handle.execute_update(OrderWorkflow.cancel, CancelOrder(actor_id="alice"))
    assert snap.status is OrderStatus.CLOSED and snap.close_reason is CloseReason.USER_CANCELLED
    row = await shop.order_row(placement.order_no)
    assert row is not None and row.close_reason == CloseReason.USER_CANCELLED
    assert set((await _reserved(shop)).values()) == {0}
    assert await _coins(shop) == Decimal("100.00")
    log = await _count(shop, OrderLog, OrderLog.order_no == placement.order_no)
    assert log >= 2  # submitted, closed
    await check_invariants(shop.sessions)


async def test_cancel_refused_after_payment_reaches_the_caller(shop: Shop) -> None:
    handle, placement = await shop.paid_order(TWO_SUPPLIERS)
    log_before = await _count(shop, OrderLog, OrderLog.order_no == placement.order_no)
    update_id = f"cancel-after-paid-{placement.order_no}"
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(
            OrderWorkflow.cancel, CancelOrder(actor_id="alice"), id=update_id
        )
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "invalid_state"
    assert "only unpaid orders" in cause.message
    # The validator refused it: a rejected update leaves no trace in the history, while
    # one refused by its handler would have been accepted (and failed) first.
    accepted = await _accepted_updates(handle)
    assert "placement" in accepted.values()  # the lookup does see accepted updates
    assert update_id not in accepted, "cancel was accepted: refused by the handler"
    assert "cancel" not in accepted.values()
    row = await shop.order_row(placement.order_no)
    assert row is not None and row.status == "PAID"
    assert await _count(shop, OrderLog, OrderLog.order_no == placement.order_no) == log_before
    await check_invariants(shop.sessions)


async def test_late_payment_after_close_is_recorded_and_refunded(shop: Shop) -> None:
    handle, placement = await shop.submit(TWO_SUPPLIERS)
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(actor_id="alice"))
    await shop.pay(handle, placement.plan.payable, event_id=f"late-{placement.order_no}")
    result = await handle.result()
    assert result.status is OrderStatus.CLOSED
    async with shop.sessions() as s:
        pay = await s.get(Payment, f"late-{placement.order_no}")
        assert pay is not None and pay.outcome == "refunded_late"
        refund = await s.scalar(select(Refund).where(Refund.payment_event_id == pay.event_id))
        assert refund is not None and refund.status == "succeeded"
        assert refund.amount == placement.plan.payable
        # The late money shows on the record: received and returned (was 0.00 / 0.00).
        order = await s.get(Order, placement.order_no)
        payable = placement.plan.payable
        assert order is not None and (order.paid, order.refunded) == (payable, payable)
    await check_invariants(shop.sessions)


async def test_second_payment_after_paid_is_refunded_as_duplicate(shop: Shop) -> None:
    handle, placement = await shop.paid_order(TWO_SUPPLIERS)
    await shop.pay(handle, placement.plan.payable, event_id=f"again-{placement.order_no}")

    async def refunded() -> bool:
        async with shop.sessions() as s:
            r = await s.scalar(
                select(Refund).where(Refund.payment_event_id == f"again-{placement.order_no}")
            )
            return r is not None and r.status == "succeeded"

    await eventually(refunded, what="duplicate refund")
    row = await shop.order_row(placement.order_no)
    # Two payments received, one sent back: paid counts both, refunded the second.
    payable = placement.plan.payable
    assert row is not None and (row.paid, row.refunded) == (2 * payable, payable)
    await check_invariants(shop.sessions)


async def test_three_suppliers_with_mixed_types_split_into_children_and_sub_orders(
    shop: Shop,
) -> None:
    lines = [
        ("tea-green", 1),
        ("pot-clay", 1),  # s1: tea, teaware
        ("cup-white", 2),
        ("plate-blue", 1),  # s2: cups, plates
        ("gift-50", 1),
        ("lic-pro", 1),  # s3: virtual gift card + software
    ]
    _handle, placement = await shop.paid_order(lines)
    plan = placement.plan
    assert [so.supplier_id for so in plan.supplier_orders] == ["s1", "s2", "s3"]
    virtual = plan.supplier_order(f"{plan.order_no}-s3")
    assert virtual.needs_address is False and virtual.address is None and virtual.postage == 0
    for so in plan.supplier_orders:
        child = await shop.child(so.id)
        desc = await child.describe()
        sa = desc.typed_search_attributes
        from workflows.common import ORDER_NO, SUPPLIER_ID

        assert sa.get(ORDER_NO) == plan.order_no and sa.get(SUPPLIER_ID) == so.supplier_id
    async with shop.sessions() as s:
        subs = (await s.execute(select(SubOrder.supplier_order_id, SubOrder.product_type))).all()
    by_so: dict[str, set[str]] = {}
    for so_id, ptype in subs:
        by_so.setdefault(so_id.rsplit("-", 1)[1], set()).add(ptype)
    assert by_so == {
        "s1": {"tea", "teaware"},
        "s2": {"cups", "plates"},
        "s3": {"gift_card", "software"},
    }
    # Exactly one paid-order notice per supplier (checked for all by the invariants too).
    assert (
        await _count(
            shop,
            Notification,
            Notification.kind == "order_paid",
            Notification.recipient_type == "supplier",
            Notification.order_no == plan.order_no,
        )
        == 3
    )
    await check_invariants(shop.sessions)


async def test_coins_covering_everything_pay_the_order_at_once(shop: Shop) -> None:
    _, placement = await shop.submit([("lic-pro", 1)], coins="30.00")
    assert placement.plan.payable == 0
    row = await shop.order_status(placement.order_no, "PAID")
    assert row.payment_method == "coins"
    await check_invariants(shop.sessions)


# --- bad input: a typed error, nothing reserved or deducted ------------------------------


@pytest.mark.parametrize(
    ("lines", "coins", "customer", "code", "names"),
    [
        ([("nope", 1)], "0", "alice", "unknown_sku", ["'nope'"]),
        ([("tea-green", 0)], "0", "alice", "invalid_input", ["'tea-green'", "positive", "got 0"]),
        ([("tea-green", -2)], "0", "alice", "invalid_input", ["'tea-green'", "positive", "got -2"]),
        ([("old-mug", 1)], "0", "alice", "inactive_product", ["'old-mug'", "not on sale"]),
        # The short line is named, not the one that is fine.
        (
            [("tea-green", 1), ("pot-clay", 21)],
            "0",
            "alice",
            "insufficient_stock",
            ["'pot-clay'", "stock", "20", "21"],
        ),
        ([("tea-green", 1)], "100.01", "alice", "insufficient_coins", ["coin", "100.01"]),
        ([("tea-green", 1)], "0", "nobody", "not_found", ["customer", "'nobody'"]),
        # Bob has no address; only the physical group (s1) needs one, not the virtual s3.
        (
            [("tea-green", 1), ("gift-50", 1)],
            "0",
            "bob",
            "address_required",
            ["address", "'s1'"],
        ),
    ],
)
async def test_bad_input_is_refused_with_nothing_changed(
    shop: Shop,
    lines: list[tuple[str, int]],
    coins: str,
    customer: str,
    code: str,
    names: list[str],
) -> None:
    if customer == "bob":
        async with write_session(shop.sessions) as s:
            s.add(Customer(id="bob", name="Bob", coins=Decimal("0"), default_address=None))
    before = await _reserved(shop), await _coins(shop)
    handle = await shop.start(lines, coins=coins, customer=customer)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(OrderWorkflow.placement, GetPlacement())
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == code, cause.message
    # A clear sentence naming the cause (the SKU, the coins, the address...).
    for name in names:
        assert name in cause.message, f"{name!r} not in {cause.message!r}"
    assert "Traceback" not in cause.message
    for sku, _ in lines:
        if f"'{sku}'" not in names:
            assert f"'{sku}'" not in cause.message, f"{sku} named but not at fault"
    result = await handle.result()
    assert result.rejected == cause.message and result.status is None
    assert (await _reserved(shop), await _coins(shop)) == before
    assert await _count(shop, Order) == 0
    assert await _count(shop, SupplierOrder) == 0
    assert await _count(shop, CoinLedger, CoinLedger.reason != "seed") == 0
    await check_invariants(shop.sessions)
