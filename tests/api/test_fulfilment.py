"""Fulfilment end to end: packages, carrier scans, distance/ETA, after-sales refund, inboxes."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.tables import AfterSale, Refund, TrackingEventRow
from domain.geo import DEFAULT_SPEEDS_KMH, haversine_km
from tests.api.helpers import HOME, Api, eventually, uid


def items_by_sku(so: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["sku"]: i for sub in so["sub_orders"] for i in sub["items"]}


async def test_packages_tracking_eta_after_sales_and_inbox(api: Api) -> None:
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00", product_type="tea")
    pot = await api.product(supplier, price="40.00", product_type="teaware")
    customer = await api.customer(coins="7.00")
    order = await api.paid_order(customer, [(tea, 3), (pot, 1)], coins="7.00")
    order_no = order["order_no"]
    so = order["supplier_orders"][0]
    so_id = so["id"]
    items = items_by_sku(so)
    tea_id, pot_id = items[tea]["item_id"], items[pot]["item_id"]
    assert {s["product_type"] for s in so["sub_orders"]} == {"tea", "teaware"}

    # Two packages: one holds two different items, and tea travels in both.
    ship = f"/supplier/orders/{so_id}/shipments"
    t1, t2 = uid("SF"), uid("SF")
    await api.ok(
        "POST",
        ship,
        supplier,
        {
            "carrier": "sf",
            "tracking_no": "TYPO",
            "method": "express",
            "items": [{"item_id": tea_id, "qty": 2}, {"item_id": pot_id, "qty": 1}],
        },
        expect=201,
    )
    fixed = await api.ok(
        "PATCH", f"/supplier/orders/{so_id}/shipments/TYPO", supplier, {"tracking_no": t1}
    )
    assert [p["tracking_no"] for p in fixed["packages"]] == [t1]
    mid = await api.order(customer, order_no)
    assert items_by_sku(mid["supplier_orders"][0])[tea]["status"] == "PARTIALLY_SHIPPED"
    await api.ok(
        "POST",
        ship,
        supplier,
        {
            "carrier": "sf",
            "tracking_no": t2,
            "method": "standard",
            "items": [{"item_id": tea_id, "qty": 1}],
        },
        expect=201,
    )

    # Carrier scans: package 1 in Hangzhou (sent twice), package 2 delivered.
    at = datetime.now(UTC).replace(microsecond=0)
    scan = {
        "event_id": uid("scan-"),
        "carrier": "sf",
        "tracking_no": t1,
        "lat": 30.2741,
        "lon": 120.1551,
        "status": "in_transit",
        "at": at.isoformat(),
    }
    for _ in range(2):
        r = await api.signed("/webhooks/carrier", scan)
        assert r.status_code == 202 and r.json()["accepted"] is True, r.text
    delivered = {
        **scan,
        "event_id": uid("scan-"),
        "tracking_no": t2,
        "lat": HOME["lat"],
        "lon": HOME["lon"],
        "status": "delivered",
    }
    assert (await api.signed("/webhooks/carrier", delivered)).status_code == 202

    def tracked(o: dict[str, Any]) -> bool:
        pk = {p["tracking_no"]: p for p in o["supplier_orders"][0]["packages"]}
        return pk[t1]["location"] is not None and pk[t2]["status"] == "delivered"

    record = await api.wait_order(customer, order_no, tracked, "carrier scans applied")
    box = record["supplier_orders"][0]
    packages = {p["tracking_no"]: p for p in box["packages"]}
    p1, p2 = packages[t1], packages[t2]
    assert {i["item_id"]: i["qty"] for i in p1["items"]} == {tea_id: 2, pot_id: 1}
    assert p2["items"] == [{"item_id": tea_id, "qty": 1}]
    expected = haversine_km(30.2741, 120.1551, float(HOME["lat"]), float(HOME["lon"]))  # type: ignore[arg-type]
    assert abs(p1["distance_km"] - expected) < 0.01
    assert 150 < p1["distance_km"] < 180
    eta = datetime.fromisoformat(p1["eta"])
    assert abs(eta - (at + timedelta(hours=expected / DEFAULT_SPEEDS_KMH["express"]))) < timedelta(
        seconds=1
    )
    assert p1["location"]["lat"] == 30.2741 and p1["status"] == "in_transit"
    assert p2["distance_km"] == 0.0
    assert await api.count(TrackingEventRow, TrackingEventRow.event_id == scan["event_id"]) == 1
    assert box["status"] == "PENDING_RECEIPT"
    assert all(i["status"] == "SHIPPED" for s in box["sub_orders"] for i in s["items"])

    # Live deadlines from the workflow; extend once.
    live = await api.order(customer, order_no, live=True)
    deadlines = live["supplier_orders"][0]["deadlines"]
    assert deadlines["source"] == "workflow" and deadlines["auto_confirm_at"]
    extended = await api.ok("POST", f"/supplier-orders/{so_id}/extend-receipt", customer)
    assert extended["extended"] is True
    assert extended["deadlines"]["auto_confirm_at"] > deadlines["auto_confirm_at"]

    # After-sales: return the pot → approve → ship it back → receive → refund.
    asr = await api.ok(
        "POST",
        f"/supplier-orders/{so_id}/after-sales",
        customer,
        {"item_id": pot_id, "qty": 1, "type": "return_refund", "reason": "chipped"},
        expect=201,
    )
    as_id = asr["id"]
    assert asr["status"] == "REQUESTED" and asr["supplier_order_id"] == so_id
    twice = await api.call(
        "POST",
        f"/supplier-orders/{so_id}/after-sales",
        customer,
        {"item_id": pot_id, "qty": 1, "type": "refund_only"},
    )
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "conflict"
    early = await api.call(
        "POST",
        f"/after-sales/{as_id}/return-shipment",
        customer,
        {"carrier": "sf", "tracking_no": "R1"},
    )
    assert early.status_code == 409
    approved = await api.ok("POST", f"/after-sales/{as_id}/approve", supplier, {"reason": "sorry"})
    assert approved["status"] == "APPROVED"
    back = await api.ok(
        "POST",
        f"/after-sales/{as_id}/return-shipment",
        customer,
        {"carrier": "sf", "tracking_no": uid("R")},
    )
    assert back["status"] == "RETURN_SHIPPED" and back["return_carrier"] == "sf"
    refunded = await api.ok("POST", f"/after-sales/{as_id}/receive-return", supplier)
    assert refunded["status"] == "REFUNDED"
    # pot: 40.00 of 80.00 goods (no postage: 70 < 99? 30 + 40 = 70 → postage 8); coins 7.00
    # spread over 30 / 40 / 8 → the pot's coin share, the rest in money.
    assert Decimal(refunded["refund_amount"]) + Decimal(refunded["refund_coins"]) == Decimal(
        "40.00"
    )
    row = await eventually(
        lambda: api.scalar(
            select(Refund).where(Refund.after_sale_id == as_id, Refund.status == "succeeded")
        ),
        what="after-sales refund settled",
    )
    assert row.amount == Decimal(refunded["refund_amount"])
    # The request's workflow has ended: further commands are refused, not lost.
    late = await api.call("POST", f"/after-sales/{as_id}/approve", supplier)
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_state", late.text
    seen = await api.ok("GET", f"/after-sales/{as_id}", customer)
    assert seen["status"] == "REFUNDED"
    assert (await api.ok("GET", f"/after-sales/{as_id}", supplier))["id"] == as_id
    assert await api.scalar(select(AfterSale.status).where(AfterSale.id == as_id)) == "REFUNDED"

    after = await api.wait_order(
        customer,
        order_no,
        lambda o: Decimal(o["refunded"]) == Decimal(refunded["refund_amount"]),
        "order refunded total",
    )
    # After-sales never changes the order's status.
    assert after["supplier_orders"][0]["status"] == "PENDING_RECEIPT"
    assert after["supplier_orders"][0]["after_sales"][0]["status"] == "REFUNDED"
    assert items_by_sku(after["supplier_orders"][0])[pot]["refunded_qty"] == 1

    # Receipt and review finish the record.
    await api.ok("POST", f"/supplier-orders/{so_id}/confirm-receipt", customer)
    done = await api.ok("POST", f"/supplier-orders/{so_id}/reviews", customer, {"rating": 4})
    assert done["status"] == "COMPLETED"

    # The supplier's inbox shows every event once.
    inbox = await api.ok("GET", f"/notifications?order_no={order_no}", supplier)
    kinds = Counter(n["kind"] for n in inbox["items"])
    assert kinds == Counter(
        {"order_paid": 1, "after_sale_requested": 1, "after_sale_return_shipped": 1}
    ), kinds
    assert all(n["recipient_id"] == supplier.supplier_id for n in inbox["items"])
    mine = await api.ok("GET", f"/notifications?order_no={order_no}", customer)
    ckinds = Counter(n["kind"] for n in mine["items"])
    assert ckinds["shipped"] == 2 and ckinds["after_sale_approved"] == 1
    assert ckinds["after_sale_refunded"] == 1
    assert all(n["recipient_id"] == customer.sub for n in mine["items"])

    # Buy again: two distinct items go to the cart.
    again = await api.ok("POST", f"/orders/{order_no}/buy-again", customer)
    assert again["product"] is None
    assert {line["sku"]: line["qty"] for line in again["added"]} == {tea: 3, pot: 1}
    cart = await api.ok("GET", "/cart", customer)
    assert {line["sku"] for line in cart["lines"]} == {tea, pot}
