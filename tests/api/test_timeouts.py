"""Durable timers seen through the API (a server with a 2 s payment window)."""

from decimal import Decimal

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from db.tables import CoinLedger, Customer, Payment, Product
from tests.api.conftest import Stack
from tests.api.helpers import Api, eventually, uid


async def test_unpaid_order_auto_cancels_and_gives_everything_back(fast_api: Api) -> None:
    api = fast_api
    supplier = api.supplier()
    tea = await api.product(supplier, price="20.00", on_hand=10)
    cup = await api.product(supplier, price="5.00", on_hand=10, product_type="cups")
    alice = await api.customer(coins="30.00")

    placed = await api.place(alice, [(tea, 3), (cup, 2)], coins="12.00")
    order_no = placed["order_no"]
    assert await api.scalar(select(Product.reserved).where(Product.sku == tea)) == 3
    assert await api.scalar(select(Product.reserved).where(Product.sku == cup)) == 2
    assert await api.scalar(select(Customer.coins).where(Customer.id == alice.sub)) == Decimal(
        "18.00"
    )

    closed = await api.wait_order(
        alice, order_no, lambda o: o["status"] == "CLOSED", "payment timeout", timeout=15
    )
    assert closed["close_reason"] == "PAYMENT_TIMEOUT"
    assert {so["status"] for so in closed["supplier_orders"]} == {"CLOSED"}
    assert {so["close_reason"] for so in closed["supplier_orders"]} == {"PAYMENT_TIMEOUT"}
    items = [i for so in closed["supplier_orders"] for s in so["sub_orders"] for i in s["items"]]
    assert {i["status"] for i in items} == {"CLOSED"}
    assert closed["coins_refunded"] == "12.00"
    assert await api.scalar(select(Product.reserved).where(Product.sku == tea)) == 0
    assert await api.scalar(select(Product.reserved).where(Product.sku == cup)) == 0
    assert await api.scalar(select(Product.on_hand).where(Product.sku == tea)) == 10
    account = await api.ok("GET", f"/admin/customers/{alice.sub}", api.admin)
    assert account["coins"] == "30.00"
    ledger = await api.scalar(
        select(CoinLedger.delta)
        .where(CoinLedger.customer_id == alice.sub, CoinLedger.order_no == order_no)
        .order_by(CoinLedger.id.desc())
    )
    assert ledger == Decimal("12.00")

    # Cancel and pay are refused now (409), and the supplier never saw the order.
    r = await api.call("POST", f"/orders/{order_no}/cancel", alice)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"
    page = await api.ok("GET", "/supplier/orders", supplier)
    assert page["items"] == []


async def test_payment_after_the_workflow_ended_is_recorded_unmatched(
    fast_api: Api, stack: Stack
) -> None:
    api = fast_api
    supplier = api.supplier()
    tea = await api.product(supplier, price="20.00")
    bob = await api.customer()
    placed = await api.place(bob, [(tea, 1)])
    order_no = placed["order_no"]
    await api.wait_order(bob, order_no, lambda o: o["status"] == "CLOSED", "payment timeout")

    # After its late-payment grace (1 s here) the order workflow completes.
    handle = stack.env.client.get_workflow_handle(f"order-{order_no}")

    async def completed() -> bool:
        return (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED

    await eventually(completed, timeout=15, what="order workflow to complete")

    event_id = uid("evt-late-")
    body = {
        "event_id": event_id,
        "order_no": order_no,
        "status": "succeeded",
        "amount": placed["payable"],
        "method": "card",
    }
    r = await api.signed("/webhooks/payment", body)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "outcome": "unmatched"}
    row = await api.scalar(select(Payment).where(Payment.event_id == event_id))
    assert row is not None and row.order_no == order_no and row.outcome == "unmatched"
    assert row.amount == Decimal(placed["payable"])
    actions = await api.ok("GET", f"/admin/orders/{order_no}/log", api.admin)
    assert "payment_unmatched" in [e["action"] for e in actions["entries"]]
    # The provider retries: still recorded once.
    again = await api.signed("/webhooks/payment", body)
    assert again.status_code == 202 and again.json()["outcome"] == "duplicate"
    assert await api.count(Payment, Payment.order_no == order_no) == 1


async def test_auto_confirm_auto_review_then_the_record_is_finished(
    fast_api: Api, stack: Stack
) -> None:
    api = fast_api
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00")
    customer = await api.customer()
    placed = await api.place(customer, [(tea, 2)])
    order_no = placed["order_no"]
    await api.ok("POST", f"/orders/{order_no}/pay", customer, expect=202)  # well inside 2 s
    order = await api.wait_order(customer, order_no, lambda o: o["status"] == "PAID", "paid")
    so = order["supplier_orders"][0]
    item_id = so["sub_orders"][0]["items"][0]["item_id"]
    tracking = uid("AUTO")
    shipped = await api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {"carrier": "sf", "tracking_no": tracking, "items": [{"item_id": item_id, "qty": 2}]},
        expect=201,
    )
    assert shipped["deadlines"]["auto_confirm_at"] is not None

    # Nobody confirms or reviews: the timers do, writing the default review.
    done = await api.wait_order(
        customer,
        order_no,
        lambda o: o["status"] == "FINISHED",
        "auto-confirm and auto-review",
        timeout=20,
    )
    box = done["supplier_orders"][0]
    assert box["status"] == "COMPLETED" and box["received_at"] and box["completed_at"]
    log = await api.ok("GET", f"/admin/orders/{order_no}/log", api.admin)
    actions = [e["action"] for e in log["entries"]]
    assert "receipt_auto_confirmed" in actions and "auto_reviewed" in actions

    # Once the after-sales window is over the supplier order's workflow ends.
    handle = stack.env.client.get_workflow_handle(f"order-{so['id']}")

    async def ended() -> bool:
        return (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED

    await eventually(ended, timeout=15, what="supplier order workflow to end")
    scan = {
        "event_id": uid("scan-"),
        "carrier": "sf",
        "tracking_no": tracking,
        "lat": 31.0,
        "lon": 121.0,
        "status": "delivered",
        "at": "2026-01-01T00:00:00Z",
    }
    r = await api.signed("/webhooks/carrier", scan)
    assert r.status_code == 202 and r.json() == {"accepted": True, "outcome": "order_finished"}
    r = await api.call(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": item_id, "qty": 1, "type": "refund_only"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state", r.text
    # The record still reads fine (deadlines from the database, the workflow is gone).
    record = await api.order(customer, order_no, live=True)
    assert record["supplier_orders"][0]["status"] == "COMPLETED"
