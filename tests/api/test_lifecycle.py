"""Happy paths end to end through the HTTP API, the workflows and the read model."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.tables import Customer, Notification, Product, Refund
from tests.api.helpers import Api, eventually


def so_of(order: dict[str, Any], supplier_id: str | None) -> dict[str, Any]:
    return next(so for so in order["supplier_orders"] if so["supplier_id"] == supplier_id)


def items_of(so: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for sub in so["sub_orders"] for i in sub["items"]]


async def test_submit_pay_split_ship_confirm_review(api: Api) -> None:
    s1, s2 = api.supplier(), api.supplier()
    tea = await api.product(s1, price="12.50", product_type="tea")
    pot = await api.product(s1, price="40.00", product_type="teaware")
    cup = await api.product(s2, price="6.00", product_type="cups")
    alice = await api.customer(coins="20.00")

    checkout = await api.ok(
        "POST", "/checkout", alice, {"lines": [{"sku": tea, "qty": 2}, {"sku": cup, "qty": 3}]}
    )
    assert {g["supplier_id"] for g in checkout["groups"]} == {s1.supplier_id, s2.supplier_id}
    assert all(
        g["needs_address"] and g["address"]["region"] == "Shanghai" for g in checkout["groups"]
    )
    assert all(g["postage"] == "8.00" for g in checkout["groups"])

    r = await api.submit(alice, [(tea, 2), (pot, 1), (cup, 3)], coins="10.00")
    assert r.status_code == 201, r.text
    placed = r.json()
    order_no = placed["order_no"]
    # 25 + 40 (s1, free postage under 99? no: 65 + 8) and 18 + 8 for s2, minus 10 coins
    assert placed["status"] == "PENDING_PAYMENT"
    assert placed["payable"] == "89.00"
    assert datetime.fromisoformat(placed["pay_deadline"]) > datetime.now(UTC)
    assert len(placed["supplier_orders"]) == 2
    assert {so["id"] for so in placed["supplier_orders"]} == {
        f"{order_no}-{s1.supplier_id}",
        f"{order_no}-{s2.supplier_id}",
    }
    assert await api.scalar(select(Product.reserved).where(Product.sku == tea)) == 2
    assert await api.scalar(select(Customer.coins).where(Customer.id == alice.sub)) == Decimal(
        "10.00"
    )

    # Unpaid: the suppliers see nothing yet.
    for s in (s1, s2):
        page = await api.ok("GET", "/supplier/orders", s)
        assert page["items"] == []

    ack = await api.ok("POST", f"/orders/{order_no}/pay", alice, expect=202)
    assert ack["outcome"] == "signalled"
    order = await api.wait_order(alice, order_no, lambda o: o["status"] == "PAID", "paid")
    assert order["paid"] == "89.00"
    assert {so["status"] for so in order["supplier_orders"]} == {"PENDING_SHIPMENT"}
    s1_order = so_of(order, s1.supplier_id)
    assert {sub["product_type"] for sub in s1_order["sub_orders"]} == {"tea", "teaware"}

    # Each supplier sees exactly its own paid supplier order, without customer account info.
    for s, rival in ((s1, s2), (s2, s1)):
        page = await api.ok("GET", "/supplier/orders", s)
        assert [x["id"] for x in page["items"]] == [f"{order_no}-{s.supplier_id}"]
        view = page["items"][0]
        assert "customer_id" not in view and "coin_share" not in view and "payable" not in view
        assert view["address"]["name"] == "Alice"
        mine = await api.call("GET", f"/supplier/orders/{order_no}-{s.supplier_id}", s)
        assert mine.status_code == 200
        theirs = await api.call("GET", f"/supplier/orders/{order_no}-{rival.supplier_id}", s)
        assert theirs.status_code == 404
        assert theirs.json()["error"]["code"] == "not_found"

    # Ship everything of s1 in one package, confirm, review.
    so_id = s1_order["id"]
    lines = [{"item_id": i["item_id"], "qty": i["qty"]} for i in items_of(s1_order)]
    shipped = await api.ok(
        "POST",
        f"/supplier/orders/{so_id}/shipments",
        s1,
        {"carrier": "sf", "tracking_no": f"T{order_no}", "method": "express", "items": lines},
        expect=201,
    )
    assert shipped["status"] == "PENDING_RECEIPT"
    assert shipped["packages"][0]["tracking_no"] == f"T{order_no}"
    assert await api.scalar(select(Product.reserved).where(Product.sku == tea)) == 0
    assert await api.scalar(select(Product.on_hand).where(Product.sku == tea)) == 48

    confirmed = await api.ok("POST", f"/supplier-orders/{so_id}/confirm-receipt", alice)
    assert confirmed["status"] == "PENDING_REVIEW"
    assert confirmed["deadlines"]["auto_review_at"] is not None
    reviewed = await api.ok(
        "POST", f"/supplier-orders/{so_id}/reviews", alice, {"rating": 5, "text": "lovely"}
    )
    assert reviewed["status"] == "COMPLETED"

    # The other supplier cancels before shipping: refund, stock and coins back.
    other = so_of(order, s2.supplier_id)
    cancelled = await api.ok(
        "POST", f"/supplier/orders/{other['id']}/cancel", s2, {"reason": "oos"}
    )
    assert cancelled["status"] == "CLOSED" and cancelled["close_reason"] == "SUPPLIER_CANCELLED"
    assert await api.scalar(select(Product.reserved).where(Product.sku == cup)) == 0

    final = await api.wait_order(
        alice, order_no, lambda o: o["status"] == "FINISHED", "order finished"
    )
    assert so_of(final, s1.supplier_id)["status"] == "COMPLETED"
    assert so_of(final, s2.supplier_id)["status"] == "CLOSED"
    assert all(i["status"] == "SHIPPED" for i in items_of(so_of(final, s1.supplier_id)))
    refund = await eventually(
        lambda: api.scalar(select(Refund).where(Refund.supplier_order_id == other["id"])),
        what="refund row",
    )
    assert refund.amount == Decimal(other["payable"])
    live = await api.ok("GET", f"/orders/{order_no}", alice)
    assert so_of(live, s1.supplier_id)["deadlines"]["source"] in ("workflow", "database")

    log = await api.ok("GET", f"/admin/orders/{order_no}/log", api.admin)
    actions = [e["action"] for e in log["entries"]]
    for expected in (
        "order_submitted",
        "payment_applied",
        "shipped",
        "receipt_confirmed",
        "reviewed",
    ):
        assert expected in actions
    inbox = await api.ok("GET", "/notifications", s1)
    assert [n["kind"] for n in inbox["items"]].count("order_paid") == 1
    assert await api.count(Notification, Notification.recipient_id == s1.supplier_id) >= 1
    assert timedelta(0) <= datetime.now(UTC) - datetime.fromisoformat(final["created_at"])
