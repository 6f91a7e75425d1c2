"""OpenAPI (/openapi.json) lists every path of DESIGN.md §6 with request and response schemas."""

from typing import Any

import pytest

from settings import Settings
from starter.api.app import create_app
from tests.api.helpers import Api

# method, path, request body fields of the contract (None: no body)
CONTRACT: list[tuple[str, str, set[str] | None]] = [
    ("post", "/checkout", {"lines"}),
    ("post", "/orders", {"lines", "coins", "groups"}),
    ("get", "/orders", None),
    ("get", "/orders/{no}", None),
    ("post", "/orders/{no}/cancel", None),
    ("post", "/orders/{no}/pay", None),
    ("post", "/webhooks/payment", {"event_id", "order_no", "status", "amount", "method"}),
    (
        "post",
        "/webhooks/carrier",
        {"event_id", "carrier", "tracking_no", "lat", "lon", "status", "at"},
    ),
    ("get", "/supplier/orders", None),
    ("get", "/supplier/orders/{id}", None),
    ("post", "/supplier/orders/{id}/shipments", {"carrier", "tracking_no", "method", "items"}),
    ("patch", "/supplier/orders/{id}/shipments/{tracking_no}", {"tracking_no"}),
    (
        "patch",
        "/supplier/orders/{id}/receiver",
        {"name", "phone", "region", "address", "lat", "lon"},
    ),
    ("post", "/supplier/orders/{id}/cancel", None),
    ("post", "/supplier-orders/{id}/cancel", None),
    ("post", "/supplier-orders/{id}/remind", None),
    ("post", "/supplier-orders/{id}/confirm-receipt", None),
    ("post", "/supplier-orders/{id}/extend-receipt", None),
    ("post", "/supplier-orders/{id}/reviews", {"rating", "text"}),
    ("post", "/supplier-orders/{id}/after-sales", {"item_id", "qty", "type", "reason"}),
    ("post", "/after-sales/{id}/approve", None),
    ("post", "/after-sales/{id}/reject", None),
    ("post", "/after-sales/{id}/return-shipment", {"carrier", "tracking_no"}),
    ("post", "/after-sales/{id}/receive-return", None),
    ("post", "/orders/{no}/buy-again", None),
    (
        "put",
        "/admin/products/{sku}",
        {"name", "supplier_id", "product_type", "kind", "price", "on_hand", "active"},
    ),
    ("get", "/products/{sku}", None),
    ("put", "/admin/customers/{id}", {"coins", "default_address"}),
    ("get", "/admin/customers/{id}", None),
    ("get", "/admin/orders/{no}/log", None),
    ("get", "/healthz", None),
    # beyond the table: the cart, after-sales reads, inboxes
    ("get", "/cart", None),
    ("get", "/after-sales/{id}", None),
    ("post", "/after-sales/{id}/cancel", None),
    ("get", "/notifications", None),
    # DESIGN.md §11: supplier webhooks
    ("put", "/admin/suppliers/{id}/webhook", {"url", "secret"}),
    ("get", "/admin/suppliers/{id}/webhook", None),
    ("get", "/admin/suppliers/{id}/deliveries", None),
    ("post", "/admin/suppliers/{id}/deliveries/{event_id}/redeliver", None),
]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    for variant in schema.get("anyOf", []):
        if variant.get("type") != "null":
            return resolve(spec, variant)
    return schema


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings()).openapi()


@pytest.mark.parametrize(
    ("method", "path", "fields"), CONTRACT, ids=[f"{m} {p}" for m, p, _ in CONTRACT]
)
def test_every_contract_path_is_documented(
    spec: dict[str, Any], method: str, path: str, fields: set[str] | None
) -> None:
    assert path in spec["paths"], f"{path} missing from OpenAPI"
    op = spec["paths"][path].get(method)
    assert op is not None, f"{method.upper()} {path} missing"
    ok = [code for code in op["responses"] if code.startswith("2")]
    assert ok, op["responses"]
    content = op["responses"][ok[0]]["content"]["application/json"]
    assert resolve(spec, content["schema"]).get("properties"), f"{path}: untyped response"
    if fields is not None:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        props = set(resolve(spec, body)["properties"])
        assert fields <= props, f"{path}: request lacks {fields - props}"
    if path not in ("/healthz", "/products/{sku}") and not path.startswith("/webhooks"):
        assert "401" in op["responses"], f"{path}: 401 undocumented"
        error = resolve(spec, op["responses"]["401"]["content"]["application/json"]["schema"])
        assert set(error["properties"]) == {"error"}


def test_response_shapes_carry_the_contract_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]

    def props(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    assert {"order_no", "status", "payable", "pay_deadline", "supplier_orders"} <= props(
        "PlacedOrder"
    )
    assert {
        "order_no",
        "status",
        "close_reason",
        "payable",
        "paid",
        "refunded",
        "supplier_orders",
    } <= props("OrderOut")
    assert {
        "id",
        "supplier_id",
        "status",
        "close_reason",
        "sub_orders",
        "packages",
        "after_sales",
        "deadlines",
    } <= props("SupplierOrderOut")
    assert {"product_type", "items"} <= props("SubOrderOut")
    assert {"item_id", "sku", "qty", "shipped_qty", "status"} <= props("ItemOut")
    assert {
        "tracking_no",
        "carrier",
        "method",
        "items",
        "location",
        "distance_km",
        "eta",
    } <= props("PackageOut")
    assert {"lat", "lon", "at"} <= props("Location")
    assert {"id", "item_id", "qty", "type", "status"} <= props("AfterSaleBrief")
    assert {"auto_confirm_at", "auto_review_at"} <= props("DeadlinesOut")
    assert {"groups"} <= props("CheckoutOut")
    assert {"supplier_id", "needs_address", "address", "items", "postage"} <= props(
        "CheckoutGroupOut"
    )
    assert {
        "name",
        "supplier_id",
        "product_type",
        "kind",
        "price",
        "on_hand",
        "reserved",
        "active",
    } <= props("ProductOut")
    assert {"coins", "default_address"} <= props("CustomerOut")
    assert {"event_id", "type", "attempt", "status_code", "error", "at"} <= props("DeliveryOut")
    assert "secret" not in props("WebhookOut")
    assert "bearerAuth" in str(spec["components"].get("securitySchemes", {})) or spec[
        "components"
    ].get("securitySchemes")


async def test_served_openapi_and_docs(api: Api) -> None:
    r = await api.http.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert all(path in paths for _, path, _ in CONTRACT)
    docs = await api.http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
