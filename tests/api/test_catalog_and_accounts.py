"""Catalog and accounts (admin), lists and filters, the cart, and the smaller commands."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from db.tables import CoinLedger, Customer
from tests.api.helpers import HOME, Api, eventually, uid


async def test_products_upsert_and_reserved_floor(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, price="3.30", on_hand=4)
    product = await api.ok("GET", f"/products/{sku}")  # public: no token needed
    assert product["price"] == "3.30" and product["available"] == 4 and product["reserved"] == 0
    customer = await api.customer()
    await api.place(customer, [(sku, 3)])

    body = {
        "name": "Renamed",
        "supplier_id": supplier.supplier_id,
        "product_type": "tea",
        "kind": "physical",
        "price": "3.50",
        "on_hand": 2,
    }
    r = await api.call("PUT", f"/admin/products/{sku}", api.admin, body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert r.json()["error"]["reserved"] == 3
    assert (await api.ok("GET", f"/products/{sku}"))["name"] != "Renamed"
    updated = await api.ok("PUT", f"/admin/products/{sku}", api.admin, {**body, "on_hand": 3})
    assert updated == {**updated, "name": "Renamed", "price": "3.50", "on_hand": 3, "available": 0}
    for bad in ({**body, "price": "-1"}, {**body, "on_hand": -1}, {**body, "kind": "digital"}):
        r = await api.call("PUT", f"/admin/products/{sku}", api.admin, bad)
        assert r.status_code == 422, bad
    assert (await api.call("GET", "/products/nope")).status_code == 404


async def test_customer_accounts_are_ledgered(api: Api) -> None:
    cid = uid("acct-")
    created = await api.ok(
        "PUT", f"/admin/customers/{cid}", api.admin, {"coins": "50.00"}, expect=201
    )
    assert created == {"id": cid, "name": "", "coins": "50.00", "default_address": None}
    await api.ok("PUT", f"/admin/customers/{cid}", api.admin, {"coins": "20.00", "name": "Dee"})
    updated = await api.ok("PUT", f"/admin/customers/{cid}", api.admin, {"default_address": HOME})
    assert updated["coins"] == "20.00" and updated["name"] == "Dee"
    assert updated["default_address"]["lat"] == HOME["lat"]
    cleared = await api.ok("PUT", f"/admin/customers/{cid}", api.admin, {"default_address": None})
    assert cleared["default_address"] is None
    async with api.sessions() as s:
        deltas = (await s.scalars(select(CoinLedger).where(CoinLedger.customer_id == cid))).all()
    assert [(d.delta, d.reason) for d in deltas] == [
        (Decimal("50.00"), "admin_set"),
        (Decimal("-30.00"), "admin_set"),
    ]
    balance = await api.scalar(select(Customer.coins).where(Customer.id == cid))
    total = await api.scalar(
        select(func.sum(CoinLedger.delta)).where(CoinLedger.customer_id == cid)
    )
    assert balance == total == Decimal("20.00")
    r = await api.call("PUT", f"/admin/customers/{cid}", api.admin, {"coins": "-5"})
    assert r.status_code == 422
    assert (await api.call("GET", "/admin/customers/nobody", api.admin)).status_code == 404


async def test_lists_filters_and_pagination(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, price="1.00")
    customer = await api.customer()
    nos = [(await api.place(customer, [(sku, 1)]))["order_no"] for _ in range(3)]
    await api.ok("POST", f"/orders/{nos[0]}/cancel", customer)
    page = await api.ok("GET", "/orders?limit=2", customer)
    assert page["total"] == 3 and [o["order_no"] for o in page["items"]] == nos[::-1][:2]
    rest = await api.ok("GET", "/orders?limit=2&offset=2", customer)
    assert [o["order_no"] for o in rest["items"]] == [nos[0]]
    closed = await api.ok("GET", "/orders?status=CLOSED", customer)
    assert [o["order_no"] for o in closed["items"]] == [nos[0]]
    pending = await api.ok("GET", "/orders?status=PENDING_PAYMENT", customer)
    assert {o["order_no"] for o in pending["items"]} == set(nos[1:])
    r = await api.call("GET", "/orders?status=LOST", customer)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = await api.call("GET", "/orders?limit=0", customer)
    assert r.status_code == 422


async def test_buy_again_one_item_and_skipped_lines(api: Api) -> None:
    supplier = api.supplier()
    tea = await api.product(supplier)
    cup = await api.product(supplier, product_type="cups")
    customer = await api.customer()
    single = await api.place(customer, [(tea, 2)])
    again = await api.ok("POST", f"/orders/{single['order_no']}/buy-again", customer)
    assert again["product"]["sku"] == tea and again["added"] == [] and again["skipped"] == []

    both = await api.place(customer, [(tea, 1), (cup, 1)])
    await api.ok(
        "PUT",
        f"/admin/products/{cup}",
        api.admin,
        {
            "name": "Retired cup",
            "supplier_id": supplier.supplier_id,
            "product_type": "cups",
            "kind": "physical",
            "price": "10.00",
            "on_hand": 50,
            "active": False,
        },
    )
    started = datetime.now(UTC)
    again = await api.ok("POST", f"/orders/{both['order_no']}/buy-again", customer)
    assert [line["sku"] for line in again["added"]] == [tea]
    assert again["skipped"] == [{"sku": cup, "reason": "not on sale"}]
    twice = await api.ok("POST", f"/orders/{both['order_no']}/buy-again", customer)
    assert {line["sku"]: line["qty"] for line in twice["cart"]} == {tea: 2}
    finished = datetime.now(UTC)

    # Each cart change is in the order's operation log: the customer, when, what.
    async def buy_again_log(order_no: str) -> list[dict[str, Any]]:
        log = await api.ok("GET", f"/admin/orders/{order_no}/log", api.admin)
        return [e for e in log["entries"] if e["action"] == "buy_again"]

    entries = await buy_again_log(both["order_no"])
    assert [(e["actor"], e["actor_id"]) for e in entries] == [("customer", customer.sub)] * 2
    assert [e["detail"] for e in entries] == [{"added": {tea: 1}, "skipped": [cup]}] * 2
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert started <= times[0] <= times[1] <= finished
    # written in the cart change's transaction, with its time
    assert times[0] == datetime.fromisoformat(again["added"][0]["added_at"])
    # One distinct item only points at its product: the cart and the log stay as they were.
    assert await buy_again_log(single["order_no"]) == []


async def test_receiver_change_customer_cancel_and_refund_only(api: Api) -> None:
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00")
    gift = await api.product(supplier, price="25.00", kind="virtual", product_type="gift")
    customer = await api.customer(coins="5.00")

    # receiver change before shipping, then the customer cancels: refund + coins back
    order = await api.paid_order(customer, [(tea, 2)], coins="5.00")
    so_id = order["supplier_orders"][0]["id"]
    new_home = {**HOME, "name": "Bob", "lat": 39.9042, "lon": 116.4074}
    changed = await api.ok("PATCH", f"/supplier/orders/{so_id}/receiver", supplier, new_home)
    assert changed["address"]["name"] == "Bob"
    assert (await api.order(customer, order["order_no"]))["supplier_orders"][0]["address"][
        "name"
    ] == "Bob"
    cancelled = await api.ok("POST", f"/supplier-orders/{so_id}/cancel", customer, {"reason": "x"})
    assert cancelled["status"] == "CLOSED" and cancelled["close_reason"] == "USER_CANCELLED"
    account = await api.ok("GET", f"/admin/customers/{customer.sub}", api.admin)
    assert account["coins"] == "5.00"
    final = await api.wait_order(
        customer,
        order["order_no"],
        lambda o: o["status"] == "CLOSED" and o["refunded"] == o["paid"],
        "refund settled",
    )
    assert final["paid"] == order["payable"]

    # a virtual item: delivered on "shipping"; refund-only approved → refunded at once
    order = await api.paid_order(customer, [(gift, 1)])
    so = order["supplier_orders"][0]
    item_id = so["sub_orders"][0]["items"][0]["item_id"]
    shipped = await api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {
            "carrier": "email",
            "tracking_no": uid("code-"),
            "method": "virtual",
            "items": [{"item_id": item_id, "qty": 1}],
        },
        expect=201,
    )
    assert shipped["packages"][0]["distance_km"] == 0.0
    # A carrier cannot scan a code: the webhook refuses it and the delivery stays put.
    code = shipped["packages"][0]["tracking_no"]
    scan = {
        "event_id": uid("scan-"),
        "carrier": "email",
        "tracking_no": code,
        "lat": 31.0,
        "lon": 121.0,
        "status": "in_transit",
        "at": "2026-01-01T00:00:00Z",
    }
    r = await api.signed("/webhooks/carrier", scan)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state", r.text
    assert "virtual delivery" in r.json()["error"]["message"]
    pkg = (await api.order(customer, order["order_no"]))["supplier_orders"][0]["packages"][0]
    assert pkg["location"] is None and pkg["distance_km"] == 0.0
    asr = await api.ok(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": item_id, "qty": 1, "type": "refund_only", "reason": "wrong code"},
        expect=201,
    )
    await api.ok("POST", f"/after-sales/{asr['id']}/approve", supplier)

    async def refunded() -> bool:
        row = await api.ok("GET", f"/after-sales/{asr['id']}", customer)
        return bool(row["status"] == "REFUNDED")

    await eventually(refunded, what="refund-only request refunded")
    assert (await api.ok("GET", f"/after-sales/{asr['id']}", supplier))["refund_amount"] == "25.00"
