"""Idempotency-Key: one order per key even under concurrency; replays; misuse."""

import asyncio

from sqlalchemy import select

from db.tables import IdempotencyKey, Order, Package, Payment, Product
from tests.api.helpers import Api, uid


async def test_concurrent_submits_with_one_key_make_one_order(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, price="9.90", on_hand=20)
    customer = await api.customer()
    key = uid("submit-")

    first, second = await asyncio.gather(
        api.submit(customer, [(sku, 2)], key=key), api.submit(customer, [(sku, 2)], key=key)
    )
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json() == second.json()
    assert await api.count(Order, Order.customer_id == customer.sub) == 1
    assert await api.scalar(select(Product.reserved).where(Product.sku == sku)) == 2

    # Later: replayed from the store, nothing new.
    third = await api.submit(customer, [(sku, 2)], key=key)
    assert third.status_code == 201 and third.json() == first.json()
    assert third.headers.get("Idempotent-Replayed") == "true"
    assert await api.count(Order, Order.customer_id == customer.sub) == 1

    # Same key, different body: refused, nothing created.
    other = await api.submit(customer, [(sku, 3)], key=key)
    assert other.status_code == 422, other.text
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await api.count(Order, Order.customer_id == customer.sub) == 1

    # Keys belong to their caller: another customer's identical key is another order.
    someone = await api.customer()
    theirs = await api.submit(someone, [(sku, 2)], key=key)
    assert theirs.status_code == 201
    assert theirs.json()["order_no"] != first.json()["order_no"]

    # Without a key, two submits are two orders.
    await asyncio.gather(api.submit(customer, [(sku, 1)]), api.submit(customer, [(sku, 1)]))
    assert await api.count(Order, Order.customer_id == customer.sub) == 3


async def test_refused_request_frees_its_key(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, on_hand=1)
    customer = await api.customer()
    key = uid("k-")
    r = await api.submit(customer, [(sku, 2)], key=key)
    assert r.status_code == 409
    assert await api.count(IdempotencyKey, IdempotencyKey.key.like(f"%:{key}")) == 0
    await api.ok(
        "PUT",
        f"/admin/products/{sku}",
        api.admin,
        {
            "name": "restocked",
            "supplier_id": supplier.supplier_id,
            "product_type": "tea",
            "kind": "physical",
            "price": "10.00",
            "on_hand": 5,
        },
    )
    r = await api.submit(customer, [(sku, 2)], key=key)
    assert r.status_code == 201, r.text


async def test_pay_and_ship_with_keys_apply_once(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, price="10.00")
    customer = await api.customer()
    order = await api.place(customer, [(sku, 3)])
    order_no = order["order_no"]

    pay_key = uid("pay-")
    paid = await asyncio.gather(
        *(api.call("POST", f"/orders/{order_no}/pay", customer, None, pay_key) for _ in range(2))
    )
    assert [r.status_code for r in paid] == [202, 202]
    assert paid[0].json() == paid[1].json()
    record = await api.wait_order(customer, order_no, lambda o: o["status"] == "PAID", "paid")
    replay = await api.call("POST", f"/orders/{order_no}/pay", customer, None, pay_key)
    assert replay.status_code == 202 and replay.json() == paid[0].json()
    assert await api.count(Payment, Payment.order_no == order_no) == 1

    so = record["supplier_orders"][0]
    item_id = so["sub_orders"][0]["items"][0]["item_id"]
    body = {
        "carrier": "sf",
        "tracking_no": f"K{order_no}",
        "items": [{"item_id": item_id, "qty": 1}],
    }
    ship_key = uid("ship-")
    shipped = await asyncio.gather(
        *(
            api.call("POST", f"/supplier/orders/{so['id']}/shipments", supplier, body, ship_key)
            for _ in range(2)
        )
    )
    assert [r.status_code for r in shipped] == [201, 201], [r.text for r in shipped]
    assert shipped[0].json() == shipped[1].json()
    assert await api.count(Package, Package.supplier_order_id == so["id"]) == 1
    assert await api.scalar(select(Product.on_hand).where(Product.sku == sku)) == 49
    # the same key on another route is another request
    remind = await api.call("POST", f"/supplier-orders/{so['id']}/remind", customer, None, ship_key)
    assert remind.status_code == 409  # already shipped: not waiting for shipment any more


async def test_an_unknown_outcome_keeps_the_key_and_its_order_number_for_the_retry(
    api: Api, no_temporal: Api
) -> None:
    # Temporal did not answer: the order may or may not exist, so the key stays reserved with
    # the order number it chose, and the retry (here through a healthy API process) lands on
    # that same workflow id instead of placing a second order.
    supplier = api.supplier()
    sku = await api.product(supplier, on_hand=5)
    customer = await api.customer()
    key = uid("k-")
    down = await no_temporal.submit(customer, [(sku, 1)], key=key)
    assert down.status_code == 503, down.text
    kept = await api.scalar(select(IdempotencyKey).where(IdempotencyKey.key.like(f"%:{key}")))
    assert kept is not None and kept.status_code is None
    assert kept.result is not None and kept.result["state"] == "retry"
    order_no = kept.result["seed"]["order_no"]

    again = await api.submit(customer, [(sku, 1)], key=key)
    assert again.status_code == 201, again.text
    assert again.json()["order_no"] == order_no
    assert await api.count(Order, Order.customer_id == customer.sub) == 1
    done = await api.scalar(select(IdempotencyKey).where(IdempotencyKey.key.like(f"%:{key}")))
    assert done is not None and done.status_code == 201 and done.result["state"] == "done"
