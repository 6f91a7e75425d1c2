"""A supplier's Idempotency-Key is scoped to the supplier order it was sent for.

Like every other command (orders/{no}/…, supplier-orders/{id}/…, after-sales/{id}/…), one key
reused by the same caller on two different objects is two commands, not a replay.
"""

from tests.api.helpers import Api, uid


async def test_one_key_on_two_supplier_orders_is_two_commands(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()
    first = (await api.paid_order(customer, [(sku, 1)]))["supplier_orders"][0]["id"]
    second = (await api.paid_order(customer, [(sku, 1)]))["supplier_orders"][0]["id"]
    key = uid("sup-cancel-")

    a = await api.ok("POST", f"/supplier/orders/{first}/cancel", supplier, {}, key=key)
    b = await api.call("POST", f"/supplier/orders/{second}/cancel", supplier, {}, key=key)

    assert b.status_code == 200, b.text
    assert b.headers.get("Idempotent-Replayed") is None
    assert (a["id"], b.json()["id"]) == (first, second)
    assert b.json()["status"] == "CLOSED"
    # The same key on the first one again is still a replay of its own response.
    again = await api.call("POST", f"/supplier/orders/{first}/cancel", supplier, {}, key=key)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first
