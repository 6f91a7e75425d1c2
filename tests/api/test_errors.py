"""Every refusal answers its documented status and code, and changes nothing."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from db.tables import AfterSale, CartLine, Package, Review, SupplierOrder
from tests.api.helpers import HOME, Api, Who, footprint, uid

Refused = Callable[[str, str, Who, Any, int, str], Awaitable[dict[str, Any]]]


def error_of(body: Any) -> tuple[str, str]:
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]["code"], body["error"]["message"]


@pytest.fixture
async def spec(api: Api) -> dict[str, Any]:
    """The OpenAPI document the server publishes."""
    r = await api.http.get("/openapi.json")
    assert r.status_code == 200, r.text
    return dict(r.json())


def documented(spec: dict[str, Any], method: str, path: str) -> set[int]:
    """The statuses the spec lists for the operation serving `path` (a concrete URL)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    candidates = []
    for template, ops in spec["paths"].items():
        tparts = template.strip("/").split("/")
        if len(tparts) == len(parts) and all(
            t == p or (t.startswith("{") and t.endswith("}") and p)
            for t, p in zip(tparts, parts, strict=True)
        ):
            candidates.append((sum(t.startswith("{") for t in tparts), template, ops))
    assert candidates, f"no path of the spec serves {path}"
    _, template, ops = min(candidates, key=lambda c: c[0])  # a literal segment wins
    op = ops.get(method.lower())
    assert op is not None, f"{method} {template} is not in the spec"
    return {int(code) for code in op["responses"] if code.isdigit()}


def assert_documented(spec: dict[str, Any], method: str, path: str, status: int) -> None:
    listed = documented(spec, method, path)
    assert status in listed, f"{method} {path} answered {status}; the spec lists {sorted(listed)}"


async def state(api: Api, customer: Who, skus: list[str]) -> dict[str, Any]:
    """`footprint` plus what fulfilment and after-sales commands edit in place."""
    out = await footprint(api, customer, skus)
    async with api.sessions() as s:
        sos = (
            await s.scalars(
                select(SupplierOrder)
                .where(SupplierOrder.customer_id == customer.sub)
                .order_by(SupplierOrder.id)
            )
        ).all()
        ids = [so.id for so in sos]
        out["supplier_order_fields"] = [
            (so.id, so.address, so.extended, so.auto_confirm_at, so.received_at) for so in sos
        ]
        packages = await s.scalars(select(Package).where(Package.supplier_order_id.in_(ids)))
        out["tracking"] = sorted((p.supplier_order_id, p.carrier, p.tracking_no) for p in packages)
        after_sales = await s.scalars(
            select(AfterSale).where(AfterSale.customer_id == customer.sub)
        )
        out["after_sale_states"] = sorted(
            (a.id, a.item_id, a.qty, a.status, a.return_tracking_no) for a in after_sales
        )
        reviews = await s.scalars(select(Review).where(Review.supplier_order_id.in_(ids)))
        out["reviews"] = sorted((r.item_id, r.rating) for r in reviews)
        cart = await s.scalars(select(CartLine).where(CartLine.customer_id == customer.sub))
        out["cart"] = sorted((c.sku, c.qty) for c in cart)
    return out


def refuser(api: Api, spec: dict[str, Any], customer: Who, skus: list[str]) -> Refused:
    """`refused(method, path, who, body, status, code)`: the call answers `status` and
    `code`, the spec documents that status for the operation, and `state` is unchanged."""

    async def refused(
        method: str, path: str, who: Who, body: Any, status: int, code: str
    ) -> dict[str, Any]:
        before = await state(api, customer, skus)
        r = await api.call(method, path, who, body)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        got, _ = error_of(r.json())
        assert got == code, r.text
        assert_documented(spec, method, path, status)
        assert await state(api, customer, skus) == before, f"{method} {path} changed state"
        return dict(r.json()["error"])

    return refused


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
    spec: dict[str, Any],
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
    assert_documented(spec, "POST", "/orders", status)
    assert await footprint(api, customer, list(skus.values())) == before


async def test_missing_address_and_malformed_bodies(
    api: Api, spec: dict[str, Any], shop: tuple[Who, Who, dict[str, str]]
) -> None:
    _, supplier, skus = shop
    homeless = await api.customer(address=False)
    before = await footprint(api, homeless, list(skus.values()))
    r = await api.submit(homeless, [(skus["tea"], 1)])
    assert r.status_code == 422 and error_of(r.json())[0] == "address_required", r.text
    assert_documented(spec, "POST", "/orders", 422)
    assert await footprint(api, homeless, list(skus.values())) == before
    # A virtual-only order needs no address (a control: the footprint sees a placed order).
    r = await api.submit(homeless, [(skus["gift"], 1)])
    assert r.status_code == 201, r.text
    after_gift = await footprint(api, homeless, list(skus.values()))
    assert after_gift["orders"] == before["orders"] + 1
    before = after_gift
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
    api: Api, spec: dict[str, Any], shop: tuple[Who, Who, dict[str, str]]
) -> None:
    customer, supplier, skus = shop
    order = await api.paid_order(customer, [(skus["tea"], 3)])
    order_no = order["order_no"]
    so = order["supplier_orders"][0]
    item_id = so["sub_orders"][0]["items"][0]["item_id"]
    refused = refuser(api, spec, customer, list(skus.values()))

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
    api: Api, spec: dict[str, Any], shop: tuple[Who, Who, dict[str, str]]
) -> None:
    customer, supplier, skus = shop
    placed = await api.place(customer, [(skus["tea"], 1)])
    so_id = placed["supplier_orders"][0]["id"]
    refused = refuser(api, spec, customer, list(skus.values()))
    await refused("POST", f"/supplier-orders/{so_id}/remind", customer, None, 409, "invalid_state")
    # the supplier does not even see it
    await refused("GET", f"/supplier/orders/{so_id}", supplier, None, 404, "not_found")
    await refused(
        "POST",
        f"/supplier/orders/{so_id}/shipments",
        supplier,
        {"carrier": "sf", "tracking_no": "U1", "items": [{"item_id": f"{so_id}-1", "qty": 1}]},
        404,
        "not_found",
    )
    # and the unpaid order can be cancelled by its customer
    closed = await api.ok("POST", f"/orders/{placed['order_no']}/cancel", customer)
    assert closed["status"] == "CLOSED" and closed["close_reason"] == "USER_CANCELLED"


async def test_fulfilment_and_after_sales_refusals_change_nothing(
    api: Api, spec: dict[str, Any]
) -> None:
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00", on_hand=10)
    cup = await api.product(supplier, price="4.00", on_hand=10, product_type="cups")
    customer = await api.customer()
    refused = refuser(api, spec, customer, [tea, cup])
    order = await api.paid_order(customer, [(tea, 3), (cup, 2)])
    order_no = order["order_no"]
    so = order["supplier_orders"][0]
    ids = {i["sku"]: i["item_id"] for sub in so["sub_orders"] for i in sub["items"]}
    base = f"/supplier-orders/{so['id']}"
    ship = f"/supplier/orders/{so['id']}/shipments"
    t1, t2, t3 = uid("T1-"), uid("T2-"), uid("T3-")

    # Before anything ships: no receipt to extend; a malformed receiver is invalid input.
    await refused("POST", f"{base}/extend-receipt", customer, None, 409, "invalid_state")
    receiver = f"/supplier/orders/{so['id']}/receiver"
    for bad_address in (
        {**HOME, "lat": 91},
        {**HOME, "lon": -181},
        {k: v for k, v in HOME.items() if k != "phone"},
        {**HOME, "name": ""},
        {**HOME, "floor": 3},
    ):
        await refused("PATCH", receiver, supplier, bad_address, 422, "invalid_input")

    await api.ok(
        "POST",
        ship,
        supplier,
        {"carrier": "sf", "tracking_no": t1, "items": [{"item_id": ids[tea], "qty": 3}]},
        expect=201,
    )
    await api.ok(
        "POST",
        ship,
        supplier,
        {"carrier": "sf", "tracking_no": t2, "items": [{"item_id": ids[cup], "qty": 1}]},
        expect=201,
    )

    # Fixing tracking numbers: unknown package, a number already used, bad bodies.
    await refused("PATCH", f"{ship}/NOPE-{t1}", supplier, {"tracking_no": "X"}, 404, "not_found")
    await refused("PATCH", f"{ship}/{t1}", supplier, {"tracking_no": t2}, 409, "conflict")
    for bad_fix in (
        {},
        {"tracking_no": ""},
        {"tracking_no": "X" * 81},
        {"tracking_no": 7},
        {"tracking_no": "X", "carrier": ""},
        {"tracking_no": "X", "colour": "red"},
    ):
        await refused("PATCH", f"{ship}/{t1}", supplier, bad_fix, 422, "invalid_input")

    # After-sales requests that are refused.
    def claim(item: str, qty: Any = 1, kind: str = "return_refund") -> dict[str, Any]:
        return {"item_id": item, "qty": qty, "type": kind, "reason": "broken"}

    after_sales = f"{base}/after-sales"
    await refused("POST", after_sales, customer, claim(ids[tea], 0), 422, "invalid_input")
    await refused("POST", after_sales, customer, claim(ids[tea], -1), 422, "invalid_input")
    err = await refused("POST", after_sales, customer, claim(ids[tea], 4), 422, "invalid_input")
    assert "only 3 of 3" in err["message"]
    await refused("POST", after_sales, customer, claim(ids[tea], 1.5), 422, "invalid_input")
    await refused(
        "POST", after_sales, customer, claim(ids[tea], kind="exchange"), 422, "invalid_input"
    )
    await refused("POST", after_sales, customer, claim("no-such-item"), 404, "not_found")
    await refused("POST", after_sales, customer, claim(""), 422, "invalid_input")
    # the cup is only partly shipped
    await refused("POST", after_sales, customer, claim(ids[cup]), 409, "invalid_state")
    opened = await api.ok("POST", after_sales, customer, claim(ids[tea], 2), expect=201)
    assert opened["status"] == "REQUESTED"
    err = await refused("POST", after_sales, customer, claim(ids[tea], 1), 409, "conflict")
    assert "open after-sales request" in err["message"]

    # The request's own steps, each in a state it is not for.
    req = f"/after-sales/{opened['id']}"
    back = {"carrier": "sf", "tracking_no": uid("RET-")}
    await refused("POST", f"{req}/return-shipment", customer, back, 409, "invalid_state")
    await refused("POST", f"{req}/receive-return", supplier, None, 409, "invalid_state")
    approved = await api.ok("POST", f"{req}/approve", supplier)
    assert approved["status"] == "APPROVED"
    await refused("POST", f"{req}/approve", supplier, None, 409, "invalid_state")
    await refused("POST", f"{req}/reject", supplier, None, 409, "invalid_state")
    await refused("POST", f"{req}/receive-return", supplier, None, 409, "invalid_state")
    for bad_back in ({"carrier": "sf"}, {"carrier": "sf", "tracking_no": ""}, {}):
        await refused("POST", f"{req}/return-shipment", customer, bad_back, 422, "invalid_input")
    assert (await api.ok("GET", req, customer))["status"] == "APPROVED"

    # Extending receipt works once.
    extended = await api.ok("POST", f"{base}/extend-receipt", customer)
    assert extended["extended"] is True
    err = await refused("POST", f"{base}/extend-receipt", customer, None, 409, "invalid_state")
    assert "already extended" in err["message"]

    # After receipt: tracking numbers are fixed for good; reviews 1-5, once per item.
    await api.ok(
        "POST",
        ship,
        supplier,
        {"carrier": "sf", "tracking_no": t3, "items": [{"item_id": ids[cup], "qty": 1}]},
        expect=201,
    )
    await api.ok("POST", f"{base}/confirm-receipt", customer)
    await refused("PATCH", f"{ship}/{t1}", supplier, {"tracking_no": "LATE"}, 409, "invalid_state")
    for rating in (0, 6, -1, "five"):
        await refused("POST", f"{base}/reviews", customer, {"rating": rating}, 422, "invalid_input")
    reviewed = await api.ok(
        "POST", f"{base}/reviews", customer, {"rating": 4, "item_id": ids[tea], "text": "ok"}
    )
    assert reviewed["status"] == "PENDING_REVIEW"
    await refused(
        "POST", f"{base}/reviews", customer, {"rating": 5, "item_id": ids[tea]}, 409, "conflict"
    )

    await refused("POST", "/orders/nope404/buy-again", customer, None, 404, "not_found")
    # Another customer's order is as unknown as a missing one.
    stranger = await api.customer()
    await refused("POST", f"/orders/{order_no}/buy-again", stranger, None, 404, "not_found")


async def test_after_sales_outside_the_window_is_refused(fast_api: Api) -> None:
    """fast_api: auto-confirm, auto-review and the after-sales window are 1 s."""
    api = fast_api
    spec = (await api.http.get("/openapi.json")).json()
    supplier = api.supplier()
    tea = await api.product(supplier, price="10.00")
    cup = await api.product(supplier, price="4.00", product_type="cups")
    customer = await api.customer()
    refused = refuser(api, spec, customer, [tea, cup])
    order = await api.paid_order(customer, [(tea, 1), (cup, 1)])
    so = order["supplier_orders"][0]
    ids = {i["sku"]: i["item_id"] for sub in so["sub_orders"] for i in sub["items"]}
    lines = [{"item_id": ids[tea], "qty": 1}, {"item_id": ids[cup], "qty": 1}]
    await api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {"carrier": "sf", "tracking_no": uid("W-"), "items": lines},
        expect=201,
    )
    # A request opened before receipt keeps the supplier order's workflow running (and
    # pauses auto-confirm), so the refusal below comes from the window rule itself.
    claim = {"item_id": ids[tea], "qty": 1, "type": "refund_only"}
    opened = await api.ok(
        "POST", f"/supplier-orders/{so['id']}/after-sales", customer, claim, expect=201
    )
    received = await api.ok("POST", f"/supplier-orders/{so['id']}/confirm-receipt", customer)
    assert received["status"] == "PENDING_REVIEW"
    # Auto-review fires when the window closes (both 1 s after receipt).
    await api.wait_order(
        customer,
        order["order_no"],
        lambda o: o["supplier_orders"][0]["status"] == "COMPLETED",
        "auto-review at the end of the window",
    )
    err = await refused(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": ids[cup], "qty": 1, "type": "refund_only"},
        409,
        "invalid_state",
    )
    assert "after-sales window closed" in err["message"], err
    # Withdrawing the open request lets the supplier order finish.
    withdrawn = await api.ok("POST", f"/after-sales/{opened['id']}/cancel", customer)
    assert withdrawn["status"] == "CANCELLED"
