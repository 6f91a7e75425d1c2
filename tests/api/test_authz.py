"""Authorization matrix: every endpoint x every kind of caller → the documented status.

Decisions (also in the API description): no/invalid token → 401; a role that may
not use an endpoint → 403; the right role but somebody else's object → 404, so
ids of other customers' orders cannot be probed. The owners' calls are chosen to
be refused by *state* (409/422) or to be harmless, so the matrix changes nothing
that another case depends on. Every refused command (POST/PATCH/PUT answered 4xx)
is checked to have changed nothing in the read model: the owner's footprint() plus
every row of the world's order, products and callers, taken before and after that
one call (a run of refused cases shares the snapshots between them).
"""

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import or_, select
from temporalio.client import Client, WorkflowExecutionStatus

from db.tables import (
    AfterSale,
    CartLine,
    CoinLedger,
    Customer,
    IdempotencyKey,
    Notification,
    Order,
    OrderItem,
    OrderLog,
    Package,
    PackageItem,
    Payment,
    Product,
    Refund,
    Review,
    SubOrder,
    SupplierOrder,
    TrackingEventRow,
)
from starter.api.temporal import (
    after_sale_workflow_id,
    order_workflow_id,
    supplier_order_workflow_id,
)
from starter.security import mint_token
from tests.api.helpers import HOME, Api, Who, eventually, footprint

CALLERS = ("anonymous", "other_customer", "customer", "other_supplier", "supplier", "admin")


@dataclass
class World:
    api: Api
    skus: list[str]
    who: dict[str, Who | None]
    ids: dict[str, str]
    # snapshot() as the last refused-command case left the read model (see `baseline`)
    settled: dict[str, Any] | None = None


async def snapshot(world: World) -> dict[str, Any]:
    """The owner's footprint plus every read-model row the world's callers could touch."""
    api = world.api
    owner = world.who["customer"]
    assert owner is not None
    subs = [w.sub for w in world.who.values() if w]
    order_no = world.ids["order"]
    sos = select(SupplierOrder.id).where(SupplierOrder.order_no == order_no)
    pkgs = select(Package.id).where(Package.supplier_order_id.in_(sos))
    rows: dict[str, tuple[Any, Any]] = {
        "products": (Product, Product.sku.in_(world.skus)),
        "customers": (Customer, Customer.id.in_(subs)),
        "ledger": (CoinLedger, CoinLedger.customer_id.in_(subs)),
        "carts": (CartLine, CartLine.customer_id.in_(subs)),
        "orders": (Order, Order.customer_id.in_(subs)),
        "supplier_orders": (SupplierOrder, SupplierOrder.order_no == order_no),
        "sub_orders": (SubOrder, SubOrder.supplier_order_id.in_(sos)),
        "items": (OrderItem, OrderItem.order_no == order_no),
        "packages": (Package, Package.supplier_order_id.in_(sos)),
        "package_items": (PackageItem, PackageItem.package_id.in_(pkgs)),
        "tracking": (TrackingEventRow, TrackingEventRow.package_id.in_(pkgs)),
        "payments": (Payment, Payment.order_no == order_no),
        "refunds": (Refund, Refund.order_no == order_no),
        "after_sales": (AfterSale, AfterSale.order_no == order_no),
        "reviews": (Review, Review.supplier_order_id.in_(sos)),
        "notifications": (
            Notification,
            or_(Notification.order_no == order_no, Notification.recipient_id.in_(subs)),
        ),
        "log": (OrderLog, OrderLog.order_no == order_no),
        "keys": (IdempotencyKey, or_(*(IdempotencyKey.key.like(f"api:{s}:%") for s in subs))),
    }
    state: dict[str, Any] = {"footprint": await footprint(api, owner, world.skus)}
    async with api.sessions() as s:
        for name, (model, where) in rows.items():
            result = await s.execute(select(model.__table__).where(where))
            state[name] = sorted(repr(dict(r._mapping)) for r in result)
    return state


async def quiet(client: Client, after_sale_id: str, so_id: str, order_no: str) -> None:
    """Wait until the rejection's tail has run: the after-sale workflow ended (its last
    step signals the supplier order) and no workflow of the order has work pending, so
    the read model only changes when a case's own call changes it."""

    async def settled() -> bool:
        ended = await client.get_workflow_handle(after_sale_workflow_id(after_sale_id)).describe()
        if ended.status is not WorkflowExecutionStatus.COMPLETED:
            return False
        for wf_id in (supplier_order_workflow_id(so_id), order_workflow_id(order_no)):
            raw = (await client.get_workflow_handle(wf_id).describe()).raw_description
            if raw.HasField("pending_workflow_task") or raw.pending_activities:
                return False
        return True

    await eventually(settled, what="the world's workflows to be idle")


@pytest.fixture(scope="module")
async def world(stack: Any) -> World:
    api: Api = stack.api
    supplier, other_supplier = api.supplier(), api.supplier()
    customer, other_customer = await api.customer(), await api.customer()
    tea = await api.product(supplier, price="10.00")
    pot = await api.product(supplier, price="30.00", product_type="teaware")
    order = await api.paid_order(customer, [(tea, 2), (pot, 1)])
    so = order["supplier_orders"][0]
    items = {i["sku"]: i["item_id"] for s in so["sub_orders"] for i in s["items"]}
    tracking = f"AZ{order['order_no']}"
    await api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {
            "carrier": "sf",
            "tracking_no": tracking,
            "items": [{"item_id": items[tea], "qty": 1}, {"item_id": items[pot], "qty": 1}],
        },
        expect=201,
    )
    await api.ok("POST", f"/supplier-orders/{so['id']}/extend-receipt", customer)
    after_sale = await api.ok(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": items[pot], "qty": 1, "type": "return_refund"},
        expect=201,
    )
    await api.ok("POST", f"/after-sales/{after_sale['id']}/reject", supplier)
    await quiet(stack.env.client, after_sale["id"], so["id"], order["order_no"])
    return World(
        api=api,
        skus=[tea, pot],
        who={
            "anonymous": None,
            "other_customer": other_customer,
            "customer": customer,
            "other_supplier": other_supplier,
            "supplier": supplier,
            "admin": api.admin,
        },
        ids={
            "order": order["order_no"],
            "so": so["id"],
            "as": after_sale["id"],
            "sku": tea,
            "tea_item": items[tea],
            "cust": customer.sub,
            "tracking": tracking,
            "supplier_id": str(supplier.supplier_id),
        },
    )


# expected status for: anonymous, other customer, owning customer, other supplier, owning supplier, admin
C_ONLY_READ = (401, 200, 200, 403, 403, 403)
MATRIX: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("GET", "/healthz", None, (200,) * 6),
    ("GET", "/products/{sku}", None, (200,) * 6),
    ("POST", "/checkout", {"lines": [{"sku": "{sku}", "qty": 1}]}, C_ONLY_READ),
    ("GET", "/cart", None, C_ONLY_READ),
    (
        "POST",
        "/orders",
        {"lines": [{"sku": "no-such-sku", "qty": 1}]},
        (401, 422, 422, 403, 403, 403),
    ),
    ("GET", "/orders", None, (401, 200, 200, 403, 403, 200)),
    ("GET", "/orders/{order}", None, (401, 404, 200, 403, 403, 200)),
    ("POST", "/orders/{order}/cancel", None, (401, 404, 409, 403, 403, 403)),
    ("POST", "/orders/{order}/pay", None, (401, 404, 409, 403, 403, 403)),
    ("POST", "/orders/{order}/buy-again", None, (401, 404, 200, 403, 403, 403)),
    ("GET", "/supplier/orders", None, (401, 403, 403, 200, 200, 200)),
    ("GET", "/supplier/orders/{so}", None, (401, 403, 403, 404, 200, 200)),
    (
        "POST",
        "/supplier/orders/{so}/shipments",
        {"carrier": "sf", "tracking_no": "Z", "items": [{"item_id": "{tea_item}", "qty": 9}]},
        (401, 403, 403, 404, 422, 403),
    ),
    (
        "PATCH",
        "/supplier/orders/{so}/shipments/{tracking}",
        {"tracking_no": "{tracking}"},
        (401, 403, 403, 404, 200, 403),
    ),
    ("PATCH", "/supplier/orders/{so}/receiver", HOME, (401, 403, 403, 404, 409, 403)),
    ("POST", "/supplier/orders/{so}/cancel", None, (401, 403, 403, 404, 409, 403)),
    ("POST", "/supplier-orders/{so}/cancel", None, (401, 404, 409, 403, 403, 403)),
    ("POST", "/supplier-orders/{so}/remind", None, (401, 404, 409, 403, 403, 403)),
    ("POST", "/supplier-orders/{so}/confirm-receipt", None, (401, 404, 409, 403, 403, 403)),
    ("POST", "/supplier-orders/{so}/extend-receipt", None, (401, 404, 409, 403, 403, 403)),
    ("POST", "/supplier-orders/{so}/reviews", {"rating": 5}, (401, 404, 409, 403, 403, 403)),
    (
        "POST",
        "/supplier-orders/{so}/after-sales",
        {"item_id": "{tea_item}", "qty": 1, "type": "refund_only"},
        (401, 404, 409, 403, 403, 403),
    ),
    ("GET", "/after-sales/{as}", None, (401, 404, 200, 404, 200, 200)),
    ("POST", "/after-sales/{as}/approve", None, (401, 403, 403, 404, 409, 403)),
    ("POST", "/after-sales/{as}/reject", None, (401, 403, 403, 404, 409, 403)),
    (
        "POST",
        "/after-sales/{as}/return-shipment",
        {"carrier": "sf", "tracking_no": "R"},
        (401, 404, 409, 403, 403, 403),
    ),
    ("POST", "/after-sales/{as}/receive-return", None, (401, 403, 403, 404, 409, 403)),
    ("POST", "/after-sales/{as}/cancel", None, (401, 404, 409, 403, 403, 403)),
    (
        "PUT",
        "/admin/products/{sku}",
        {
            "name": "Tea",
            "supplier_id": "{supplier_id}",
            "product_type": "tea",
            "kind": "physical",
            "price": "10.00",
            "on_hand": 50,
        },
        (401, 403, 403, 403, 403, 200),
    ),
    ("GET", "/admin/customers/{cust}", None, (401, 403, 403, 403, 403, 200)),
    ("PUT", "/admin/customers/{cust}", {"name": "Carol"}, (401, 403, 403, 403, 403, 200)),
    ("GET", "/admin/orders/{order}/log", None, (401, 403, 403, 403, 403, 200)),
    ("GET", "/notifications", None, (401, 200, 200, 200, 200, 200)),
    # Webhooks ignore bearer tokens: only a valid X-Signature counts.
    ("POST", "/webhooks/payment", {"event_id": "x"}, (401,) * 6),
    ("POST", "/webhooks/carrier", {"event_id": "x"}, (401,) * 6),
]


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


CASES = [
    pytest.param(method, path, body, caller, expected[i], id=f"{method} {path} as {caller}")
    for method, path, body, expected in MATRIX
    for i, caller in enumerate(CALLERS)
]


@pytest.fixture(autouse=True)
def baseline(world: World) -> dict[str, Any] | None:
    """The read model as the previous test left it, when that test was a refused-command
    case that snapshotted it after its call (and passed); None after anything else.

    Saves the "before" snapshot of runs of refused cases: ~140 cases, ~25 ms a snapshot.
    """
    taken, world.settled = world.settled, None
    return taken


@pytest.mark.parametrize(("method", "path", "body", "caller", "status"), CASES)
async def test_matrix(
    world: World,
    baseline: dict[str, Any] | None,
    method: str,
    path: str,
    body: Any,
    caller: str,
    status: int,
) -> None:
    # A refused command (401/403/404, or the owner's 409/422) must change nothing.
    refused_command = method != "GET" and status >= 400
    before = (baseline or await snapshot(world)) if refused_command else None
    r = await world.api.call(
        method, fill(path, world.ids), world.who[caller], fill(body, world.ids)
    )
    assert r.status_code == status, f"{method} {path} as {caller}: {r.status_code} {r.text}"
    if before is not None:
        after = await snapshot(world)
        changed = sorted(k for k in before if before[k] != after[k])
        assert after == before, f"refused {method} {path} as {caller} changed {changed}"
        world.settled = after
    if status >= 400:
        error = r.json()["error"]
        expected_code = {401: ("unauthorized", "invalid_signature"), 403: ("forbidden",)}
        if status in expected_code:
            assert error["code"] in expected_code[status]
        if status == 401 and error["code"] == "unauthorized":
            assert r.headers["WWW-Authenticate"] == "Bearer"


async def test_bad_tokens_are_401(world: World) -> None:
    api = world.api
    for header in ("Bearer", "Bearer not-a-jwt", "Basic abc", "Token abc"):
        r = await api.http.get("/orders", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
    forged = mint_token("some-other-secret-of-at-least-32-bytes!", "x", "admin")
    r = await api.http.get("/orders", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    expired = mint_token(api.settings.jwt_secret, "x", "admin", ttl_seconds=-10)
    r = await api.http.get("/orders", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401


async def test_lists_only_show_own(world: World) -> None:
    api, who, ids = world.api, world.who, world.ids
    other = await api.ok("GET", "/orders", who["other_customer"])
    assert ids["order"] not in [o["order_no"] for o in other["items"]]
    mine = await api.ok("GET", "/orders", who["customer"])
    assert [o["order_no"] for o in mine["items"]] == [ids["order"]]
    everyone = await api.ok("GET", f"/orders?customer_id={ids['cust']}", api.admin)
    assert [o["order_no"] for o in everyone["items"]] == [ids["order"]]
    # a customer cannot widen the filter to someone else
    sneaky = await api.ok("GET", f"/orders?customer_id={ids['cust']}", who["other_customer"])
    assert sneaky["items"] == []
    theirs = await api.ok("GET", "/supplier/orders", who["other_supplier"])
    assert theirs["items"] == []
    inbox = await api.ok("GET", "/notifications", who["other_supplier"])
    assert inbox["items"] == []
