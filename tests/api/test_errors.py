"""Every refusal answers its documented status and code, and changes nothing."""

from typing import Any

import pytest

from tests.api.helpers import HOME, Api, Who, footprint


def error_of(body: Any) -> tuple[str, str]:
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]["code"], body["error"]["message"]


@pytest.fixture
async def shop(api: Api) -> tuple[Who, Who, dict[str, str]]:
    supplier = api.supplier()
    skus = {
        "tea": await api.product(supplier, price="10.00", on_hand=5),
        "gift": await api.product(supplier, price="30.00", kind="virtual", product_type="gift"),
        "retired": await api.product(supplier, active=False),
    }
    return await api.customer(coins="5.00"), supplier, skus


@pytest.mark.parametrize(
    ("case", "lines", "coins", "status", "code"),
    [
        ("unknown sku", [("no-such-sku", 1)], "0.00", 422, "unknown_sku"),
        ("qty 0", [("tea", 0)], "0.00", 422, "invalid_input"),
        ("negative qty", [("tea", -2)], "0.00", 422, "invalid_input"),
        ("inactive product", [("retired", 1)], "0.00", 422, "inactive_product"),
        ("insufficient stock", [("tea", 6)], "0.00", 409, "insufficient_stock"),
        ("insufficient coins", [("tea", 1)], "5.01", 409, "insufficient_coins"),
        ("control: a valid order", [("gift", 1)], "5.00", None, None),
    ],
)
async def test_submit_refusals_change_nothing(
    api: Api,
    shop: tuple[Who, Who, dict[str, str]],
    case: str,
    lines: list[tuple[str, int]],
    coins: str,
    status: int | None,
    code: str | None,
) -> None:
    customer, _, skus = shop
    real = [(skus.get(s, s), q) for s, q in lines]
    before = await footprint(api, customer, list(skus.values()))
    r = await api.submit(customer, real, coins=coins, key=f"k-{case}")
    if status is None:  # a control: a valid order is accepted, so the refusals above are real
        assert r.status_code == 201, r.text
        return
    assert r.status_code == status, r.text
    assert error_of(r.json())[0] == code
    assert await footprint(api, customer, list(skus.values())) == before


async def test_missing_address_and_malformed_bodies(
    api: Api, shop: tuple[Who, Who, dict[str, str]]
) -> None:
    _, supplier, skus = shop
    homeless = await api.customer(address=False)
    before = await footprint(api, homeless, list(skus.values()))
    r = await api.submit(homeless, [(skus["tea"], 1)])
    assert r.status_code == 422 and error_of(r.json())[0] == "address_required", r.text
    # A virtual-only order needs no address.
    r = await api.submit(homeless, [(skus["gift"], 1)])
    assert r.status_code == 201, r.text
    before = await footprint(api, homeless, list(skus.values()))
    bad_bodies: list[Any] = [
        {},
        {"lines": []},
        {"lines": [{"sku": skus["tea"], "qty": 1.5}]},
        {"lines": [{"sku": skus["tea"], "qty": 1}], "coins": "-1"},
        {"lines": [{"sku": skus["tea"], "qty": 1}], "colour": "red"},
        {"lines": [{"sku": skus["tea"], "qty": 1}], "groups": [{"supplier_id": "nobody"}]},
        {
            "lines": [{"sku": skus["tea"], "qty": 1}],
            "groups": [{"supplier_id": supplier.supplier_id, "address": {**HOME, "lat": 91}}],
        },
    ]
    for body in bad_bodies:
        r = await api.call("POST", "/orders", homeless, body)
        assert r.status_code == 422, (body, r.text)
        assert error_of(r.json())[0] == "invalid_input"
    r = await api.http.post(
        "/orders",
        content=b"{not json",
        headers={**api.headers(homeless), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and error_of(r.json())[0] == "invalid_input"
    assert await footprint(api, homeless, list(skus.values())) == before


async def test_command_refusals_change_nothing(
    api: Api, shop: tuple[Who, Who, dict[str, str]]
) -> None:
    customer, supplier, skus = shop
    order = await api.paid_order(customer, [(skus["tea"], 3)])
    order_no = order["order_no"]
    so = order["supplier_orders"][0]
    item_id = so["sub_orders"][0]["items"][0]["item_id"]
    every_sku = list(skus.values())

    async def refused(
        method: str, path: str, who: Who, body: Any, status: int, code: str
    ) -> dict[str, Any]:
        before = await footprint(api, customer, every_sku)
        r = await api.call(method, path, who, body)
        assert r.status_code == status, f"{method} {path}: {r.text}"
        got, _ = error_of(r.json())
        assert got == code, r.text
        assert await footprint(api, customer, every_sku) == before, f"{method} {path} changed state"
        return dict(r.json()["error"])

    # cancel after pay (the parent order is no longer unpaid)
    await refused("POST", f"/orders/{order_no}/cancel", customer, None, 409, "invalid_state")
    # pay twice with the dev provider
    await refused("POST", f"/orders/{order_no}/pay", customer, None, 409, "invalid_state")
    # confirm while nothing shipped
    await refused(
        "POST", f"/supplier-orders/{so['id']}/confirm-receipt", customer, None, 409, "invalid_state"
    )
    # review before receipt
    await refused(
        "POST",
        f"/supplier-orders/{so['id']}/reviews",
        customer,
        {"rating": 5},
        409,
        "invalid_state",
    )
    # ship more than bought, or zero
    ship = f"/supplier/orders/{so['id']}/shipments"
    over = {"carrier": "sf", "tracking_no": "X1", "items": [{"item_id": item_id, "qty": 4}]}
    await refused("POST", ship, supplier, over, 422, "invalid_input")
    zero = {"carrier": "sf", "tracking_no": "X1", "items": [{"item_id": item_id, "qty": 0}]}
    await refused("POST", ship, supplier, zero, 422, "invalid_input")
    ghost = {"carrier": "sf", "tracking_no": "X1", "items": [{"item_id": "nope", "qty": 1}]}
    await refused("POST", ship, supplier, ghost, 404, "not_found")
    # after-sales on an unshipped item
    await refused(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": item_id, "qty": 1, "type": "refund_only"},
        409,
        "invalid_state",
    )

    # remind: once is fine, the second time within the interval is 429 with retry_at
    first = await api.call("POST", f"/supplier-orders/{so['id']}/remind", customer)
    assert first.status_code == 200, first.text
    err = await refused(
        "POST", f"/supplier-orders/{so['id']}/remind", customer, None, 429, "rate_limited"
    )
    assert err["retry_at"]
    r = await api.call("POST", f"/supplier-orders/{so['id']}/remind", customer)
    assert int(r.headers["Retry-After"]) > 3600

    # partial shipment: confirm is refused while an item is unshipped, with a clear message
    part = {
        "carrier": "sf",
        "tracking_no": f"P{order_no}",
        "items": [{"item_id": item_id, "qty": 2}],
    }
    await api.ok("POST", ship, supplier, part, expect=201)
    err = await refused(
        "POST", f"/supplier-orders/{so['id']}/confirm-receipt", customer, None, 409, "invalid_state"
    )
    assert "not shipped" in err["message"] and err["unshipped"] == {item_id: 1}
    # a cancel once something shipped, by either side
    await refused(
        "POST", f"/supplier-orders/{so['id']}/cancel", customer, None, 409, "invalid_state"
    )
    await refused(
        "POST", f"/supplier/orders/{so['id']}/cancel", supplier, None, 409, "invalid_state"
    )
    # receiver change after the first shipment; tracking number already used
    await refused(
        "PATCH", f"/supplier/orders/{so['id']}/receiver", supplier, HOME, 409, "invalid_state"
    )
    dup = {
        "carrier": "sf",
        "tracking_no": f"P{order_no}",
        "items": [{"item_id": item_id, "qty": 1}],
    }
    await refused("POST", ship, supplier, dup, 409, "conflict")

    # unknown ids
    await refused("GET", "/orders/404404", customer, None, 404, "not_found")
    await refused("POST", "/supplier-orders/nope/remind", customer, None, 404, "not_found")
    await refused("GET", "/after-sales/nope", customer, None, 404, "not_found")


async def test_commands_on_unpaid_supplier_orders(
    api: Api, shop: tuple[Who, Who, dict[str, str]]
) -> None:
    customer, supplier, skus = shop
    placed = await api.place(customer, [(skus["tea"], 1)])
    so_id = placed["supplier_orders"][0]["id"]
    before = await footprint(api, customer, list(skus.values()))
    r = await api.call("POST", f"/supplier-orders/{so_id}/remind", customer)
    assert r.status_code == 409 and error_of(r.json())[0] == "invalid_state"
    # the supplier does not even see it
    r = await api.call("GET", f"/supplier/orders/{so_id}", supplier)
    assert r.status_code == 404
    r = await api.call(
        "POST",
        f"/supplier/orders/{so_id}/shipments",
        supplier,
        {"carrier": "sf", "tracking_no": "U1", "items": [{"item_id": f"{so_id}-1", "qty": 1}]},
    )
    assert r.status_code == 404
    assert await footprint(api, customer, list(skus.values())) == before
    # and the unpaid order can be cancelled by its customer
    closed = await api.ok("POST", f"/orders/{placed['order_no']}/cancel", customer)
    assert closed["status"] == "CLOSED" and closed["close_reason"] == "USER_CANCELLED"
