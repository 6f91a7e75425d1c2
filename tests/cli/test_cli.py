"""The `orders` CLI: tokens, and what it prints for the API's responses.

The HTTP layer is an httpx.MockTransport serving canned responses in the API's own shapes
(DESIGN.md §6): these tests are about the CLI's requests and formatting; the API itself is
tested against the real stack in tests/api.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from settings import get_settings
from starter.cli import app, render_list, render_order
from starter.security import Role, decode_token

runner = CliRunner()
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
NO = "383393139892342784"

ORDER: dict[str, Any] = {
    "order_no": NO,
    "customer_id": "alice",
    "status": "PAID",
    "close_reason": None,
    "subtotal": "122.00",
    "postage": "16.00",
    "coins": "5.00",
    "payable": "133.00",
    "paid": "133.00",
    "refunded": "23.13",
    "coins_refunded": "0.87",
    "payment_method": "card",
    "pay_deadline": "2026-01-10T11:30:00Z",
    "created_at": "2026-01-10T11:00:00Z",
    "paid_at": "2026-01-10T11:01:00Z",
    "closed_at": None,
    "supplier_orders": [
        {
            "id": f"{NO}-ceramics-co",
            "order_no": NO,
            "supplier_id": "ceramics-co",
            "status": "CLOSED",
            "close_reason": "SUPPLIER_CANCELLED",
            "needs_address": True,
            "address": {
                "name": "Alice Chen",
                "phone": "+86 138 0013 8000",
                "region": "Shanghai",
                "address": "100 Nanjing East Road",
                "lat": 31.2352,
                "lon": 121.4846,
            },
            "remark": "",
            "subtotal": "16.00",
            "postage": "8.00",
            "coin_share": "0.87",
            "payable": "23.13",
            "created_at": "2026-01-10T11:00:00Z",
            "paid_at": "2026-01-10T11:01:00Z",
            "received_at": None,
            "completed_at": None,
            "extended": False,
            "sub_orders": [
                {
                    "id": f"{NO}-ceramics-co-cups",
                    "product_type": "cups",
                    "status": "CLOSED",
                    "items": [
                        {
                            "item_id": f"{NO}-2",
                            "sku": "cup-3",
                            "name": "Stoneware mug",
                            "product_type": "cups",
                            "kind": "physical",
                            "price": "16.00",
                            "qty": 1,
                            "shipped_qty": 0,
                            "refunded_qty": 0,
                            "status": "CLOSED",
                        }
                    ],
                }
            ],
            "packages": [],
            "after_sales": [],
            "deadlines": {"source": "database"},
        },
        {
            "id": f"{NO}-tea-house",
            "order_no": NO,
            "supplier_id": "tea-house",
            "status": "PENDING_RECEIPT",
            "close_reason": None,
            "needs_address": True,
            "address": {
                "name": "Alice Chen",
                "phone": "+86 138 0013 8000",
                "region": "Shanghai",
                "address": "100 Nanjing East Road",
                "lat": 31.2352,
                "lon": 121.4846,
            },
            "remark": "",
            "subtotal": "106.00",
            "postage": "8.00",
            "coin_share": "4.13",
            "payable": "109.87",
            "created_at": "2026-01-10T11:00:00Z",
            "paid_at": "2026-01-10T11:01:00Z",
            "received_at": None,
            "completed_at": None,
            "extended": False,
            "sub_orders": [
                {
                    "id": f"{NO}-tea-house-tea",
                    "product_type": "tea",
                    "status": "PARTIALLY_SHIPPED",
                    "items": [
                        {
                            "item_id": f"{NO}-1",
                            "sku": "tea-1",
                            "name": "Longjing green tea",
                            "product_type": "tea",
                            "kind": "physical",
                            "price": "28.00",
                            "qty": 2,
                            "shipped_qty": 1,
                            "refunded_qty": 0,
                            "status": "PARTIALLY_SHIPPED",
                        }
                    ],
                },
                {
                    "id": f"{NO}-tea-house-teaware",
                    "product_type": "teaware",
                    "status": "SHIPPED",
                    "items": [
                        {
                            "item_id": f"{NO}-4",
                            "sku": "pot-1",
                            "name": "Yixing clay teapot",
                            "product_type": "teaware",
                            "kind": "physical",
                            "price": "50.00",
                            "qty": 1,
                            "shipped_qty": 1,
                            "refunded_qty": 0,
                            "status": "SHIPPED",
                        }
                    ],
                },
            ],
            "packages": [
                {
                    "tracking_no": "SF1001",
                    "carrier": "sf",
                    "method": "express",
                    "status": "in_transit",
                    "shipped_at": "2026-01-10T11:10:00Z",
                    "items": [{"item_id": f"{NO}-1", "qty": 1}, {"item_id": f"{NO}-4", "qty": 1}],
                    "location": {"lat": 31.1, "lon": 121.3, "at": "2026-01-10T11:50:00Z"},
                    "distance_km": 23.104,
                    "eta": "2026-01-10T12:23:06Z",
                }
            ],
            "after_sales": [
                {
                    "id": f"as-{NO}-4-1",
                    "item_id": f"{NO}-4",
                    "qty": 1,
                    "type": "refund_only",
                    "status": "REQUESTED",
                    "refund_amount": None,
                }
            ],
            "deadlines": {
                "auto_confirm_at": "2026-01-20T11:10:00Z",
                "auto_review_at": None,
                "after_sales_until": None,
                "source": "workflow",
            },
        },
    ],
}

EXPECTED_TREE = f"""\
Order {NO} · PAID · customer alice
├── payable 133.00 · paid 133.00 · refunded 23.13 · coins 5.00 (returned 0.87)
├── paid 2026-01-10 11:01:00Z (59m ago) by card
├── Supplier order {NO}-ceramics-co · ceramics-co · CLOSED (SUPPLIER_CANCELLED)
│   ├── subtotal 16.00 + postage 8.00 - coins 0.87 = payable 23.13
│   ├── ship to Alice Chen, Shanghai, 100 Nanjing East Road (31.2352, 121.4846)
│   └── Sub-order cups · CLOSED
│       └── {NO}-2  cup-3 Stoneware mug · shipped 0/1 · CLOSED
└── Supplier order {NO}-tea-house · tea-house · PENDING_RECEIPT
    ├── subtotal 106.00 + postage 8.00 - coins 4.13 = payable 109.87
    ├── ship to Alice Chen, Shanghai, 100 Nanjing East Road (31.2352, 121.4846)
    ├── deadlines: auto-confirm 2026-01-20 11:10:00Z (in 9d23h)
    ├── Sub-order tea · PARTIALLY_SHIPPED
    │   └── {NO}-1  tea-1 Longjing green tea · shipped 1/2 · PARTIALLY_SHIPPED
    ├── Sub-order teaware · SHIPPED
    │   └── {NO}-4  pot-1 Yixing clay teapot · shipped 1/1 · SHIPPED
    ├── Packages (1)
    │   └── sf SF1001 (express) · in_transit: {NO}-1 x1, {NO}-4 x1
    │       └── last seen (31.1, 121.3) 2026-01-10 11:50:00Z (10m ago) · 23.1 km to go · ETA 2026-01-10 12:23:06Z (in 23m)
    └── After-sales (1)
        └── as-{NO}-4-1 · refund_only {NO}-4 x1 · REQUESTED"""


Handler = Callable[[httpx.Request], httpx.Response]


def invoke(handler: Handler, *args: str) -> Any:
    return runner.invoke(app, list(args), obj={"transport": httpx.MockTransport(handler)})


def principal(request: httpx.Request) -> Any:
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return decode_token(get_settings().jwt_secret, token)


# --- token ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "claims"),
    [
        (["--role", "customer", "--sub", "alice"], {"sub": "alice", "role": "customer"}),
        (
            ["--role", "supplier", "--sub", "u7", "--supplier-id", "tea-house"],
            {"sub": "u7", "role": "supplier", "supplier_id": "tea-house"},
        ),
        (
            ["--role", "supplier", "--sub", "tea-house"],
            {"sub": "tea-house", "role": "supplier", "supplier_id": "tea-house"},
        ),
        (["--role", "admin", "--sub", "ops"], {"sub": "ops", "role": "admin"}),
    ],
)
def test_token_decodes_with_the_right_claims(args: list[str], claims: dict[str, str]) -> None:
    result = runner.invoke(app, ["token", *args, "--ttl", "120"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    decoded = jwt.decode(token, get_settings().jwt_secret, algorithms=["HS256"])
    assert {k: decoded[k] for k in claims} == claims
    assert (
        "supplier_id" in decoded if claims["role"] == "supplier" else "supplier_id" not in decoded
    )
    assert decoded["exp"] - decoded["iat"] == 120
    assert decode_token(get_settings().jwt_secret, token).role == Role(claims["role"])


def test_token_refuses_unknown_role_and_stray_supplier_id() -> None:
    assert runner.invoke(app, ["token", "--role", "root", "--sub", "x"]).exit_code == 2
    stray = runner.invoke(app, ["token", "--role", "customer", "--sub", "x", "--supplier-id", "s"])
    assert stray.exit_code == 2


# --- show / list ---------------------------------------------------------------------------


def test_help_shows_the_defaults_written_in_brackets() -> None:
    # Typer's help is rich markup, where an unescaped "[...]" is a style tag and vanishes.
    wide = {"COLUMNS": "200"}
    show = runner.invoke(app, ["show", "--help"], env=wide)
    assert "[default: http://127.0.0.1:$ORDERS_API_PORT]" in show.output
    ship = runner.invoke(app, ["ship", "--help"], env=wide)
    assert "[default: standard, or virtual for a supplier order of virtual goods]" in ship.output


def test_render_order_tree() -> None:
    assert render_order(ORDER, now=NOW) == EXPECTED_TREE


def test_render_pending_order_shows_the_pay_deadline() -> None:
    pending = {**ORDER, "status": "PENDING_PAYMENT", "paid": "0.00", "paid_at": None}
    lines = render_order(pending, now=NOW).splitlines()
    assert lines[2] == "├── pay by 2026-01-10 11:30:00Z (30m ago)"


def test_show_gets_the_order_as_admin_and_prints_the_tree() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert principal(request).role is Role.ADMIN
        return httpx.Response(200, json=ORDER)

    result = invoke(handler, "show", NO, "--api", "http://api.test:9000")
    assert result.exit_code == 0, result.output
    assert [(r.method, str(r.url)) for r in seen] == [("GET", f"http://api.test:9000/orders/{NO}")]
    out = result.stdout.splitlines()
    assert out[0] == f"Order {NO} · PAID · customer alice"
    # Same tree as above, only the relative times differ from NOW.
    strip = [line.split(" (")[0] for line in EXPECTED_TREE.splitlines()]
    assert [line.split(" (")[0] for line in out] == strip


def test_show_json_prints_the_response() -> None:
    result = invoke(lambda r: httpx.Response(200, json=ORDER), "show", NO, "--json")
    assert json.loads(result.stdout) == ORDER


def test_show_reports_api_errors_and_unreachable_api() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "not_found", "message": "no order '42'"}}
        return httpx.Response(404, json=body)

    result = invoke(not_found, "show", "42")
    assert result.exit_code == 1
    assert "GET /orders/42 → 404 not_found: no order '42'" in result.stderr

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = invoke(down, "show", "42", "--api", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert "cannot reach the API at http://127.0.0.1:1" in result.stderr
    assert "make dev" in result.stderr


def test_list_as_admin_filters_by_customer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert principal(request).role is Role.ADMIN
        assert request.url.path == "/orders"
        assert dict(request.url.params) == {"customer_id": "alice", "limit": "20", "offset": "0"}
        return httpx.Response(200, json={"items": [ORDER], "total": 3, "limit": 20, "offset": 0})

    result = invoke(handler, "list", "--customer", "alice")
    assert result.exit_code == 0, result.output
    header, row, more = result.stdout.splitlines()
    assert header.split() == [
        "ORDER",
        "CUSTOMER",
        "STATUS",
        "PAYABLE",
        "CREATED",
        "SUPPLIER",
        "ORDERS",
    ]
    assert row.startswith(f"{NO}  alice     PAID    133.00   2026-01-10 11:00:00Z")
    assert row.endswith("ceramics-co:CLOSED tea-house:PENDING_RECEIPT")
    assert more == "(1 of 3; --limit/--offset for more)"
    assert render_list({"items": [], "total": 0}) == "no orders"


# --- submit / pay / ship -------------------------------------------------------------------

PLACED = {
    "order_no": NO,
    "status": "PENDING_PAYMENT",
    "payable": "133.00",
    "pay_deadline": "2099-01-01T00:30:00Z",
    "subtotal": "122.00",
    "postage": "16.00",
    "coins": "5.00",
    "supplier_orders": [
        {"id": f"{NO}-tea-house", "items": [{"sku": "tea-1", "qty": 2}], "payable": "61.68"},
        {"id": f"{NO}-ceramics-co", "items": [{"sku": "cup-3", "qty": 1}], "payable": "23.13"},
    ],
}


def test_submit_posts_the_cart_as_the_customer() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert principal(request).sub == "alice"
        assert principal(request).role is Role.CUSTOMER
        assert request.headers["Idempotency-Key"]
        assert (request.method, request.url.path) == ("POST", "/orders")
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json=PLACED)

    args = ["submit", "--customer", "alice", "--line", "tea-1:2", "--line", "cup-3"]
    result = invoke(handler, *args, "--coins", "5")
    assert result.exit_code == 0, result.output
    assert bodies == [
        {"lines": [{"sku": "tea-1", "qty": 2}, {"sku": "cup-3", "qty": 1}], "coins": "5.00"}
    ]
    out = result.stdout
    assert f"order {NO} · PENDING_PAYMENT" in out
    assert "payable 133.00" in out
    assert "pay by 2099-01-01 00:30:00Z" in out
    assert f"{NO}-tea-house: tea-1 x2 · payable 61.68" in out


def test_submit_address_goes_to_the_groups_that_need_one() -> None:
    address = {"name": "Bob", "phone": "123", "region": "Beijing", "address": "1 Rd"}
    posted: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/checkout":
            groups = [
                {"supplier_id": "tea-house", "needs_address": True},
                {"supplier_id": "digital-goods", "needs_address": False},
            ]
            return httpx.Response(200, json={"groups": groups})
        posted.update(json.loads(request.content))
        return httpx.Response(201, json=PLACED)

    args = ["submit", "--customer", "bob", "--line", "tea-2:1", "--line", "lic-1:1"]
    result = invoke(handler, *args, "--address-json", json.dumps(address))
    assert result.exit_code == 0, result.output
    assert posted["groups"] == [{"supplier_id": "tea-house", "address": address}]


def test_submit_rejects_a_malformed_line() -> None:
    result = invoke(lambda r: httpx.Response(500), "submit", "--customer", "a", "--line", "tea:x")
    assert result.exit_code == 2
    assert "SKU:QTY" in result.output


def test_pay_as_the_orders_customer_then_reports_the_status() -> None:
    calls: list[tuple[str, str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        who = principal(request)
        calls.append((request.method, request.url.path, f"{who.role.value}:{who.sub}"))
        if request.method == "POST":
            assert json.loads(request.content) == {"method": "card", "status": "succeeded"}
            ack = {"accepted": True, "order_no": NO, "event_id": "dev-1", "outcome": "signalled"}
            return httpx.Response(202, json=ack)
        return httpx.Response(200, json=ORDER)

    result = invoke(handler, "pay", NO)
    assert result.exit_code == 0, result.output
    assert calls[:2] == [
        ("GET", f"/orders/{NO}", "admin:orders-cli"),
        ("POST", f"/orders/{NO}/pay", "customer:alice"),
    ]
    assert f"order {NO} is PAID" in result.stdout


def test_ship_resolves_skus_as_the_supplier() -> None:
    view = ORDER["supplier_orders"][1]
    posted: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        who = principal(request)
        assert (who.role, who.supplier_id) == (Role.SUPPLIER, "tea-house")
        if request.method == "GET":
            assert request.url.path == f"/supplier/orders/{NO}-tea-house"
            return httpx.Response(200, json=view)
        assert request.url.path == f"/supplier/orders/{NO}-tea-house/shipments"
        posted.append(json.loads(request.content))
        return httpx.Response(201, json={**view, "status": "PENDING_RECEIPT"})

    args = ["ship", f"{NO}-tea-house", "--carrier", "sf", "--tracking", "SF2", "--item", "tea-1"]
    result = invoke(handler, *args)
    assert result.exit_code == 0, result.output
    assert posted == [
        {
            "carrier": "sf",
            "tracking_no": "SF2",
            "method": "standard",
            "items": [{"item_id": f"{NO}-1", "qty": 1}],  # what was left of tea-1
        }
    ]
    assert f"supplier order {NO}-tea-house is PENDING_RECEIPT" in result.stdout
