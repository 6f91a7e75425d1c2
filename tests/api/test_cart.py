"""The catalog list (GET /products) and the server-side cart (/cart/lines, /cart/remove)."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.session import write_session
from db.tables import Product
from settings import Settings
from starter.api.app import create_app
from tests.api.helpers import Api, Who, uid
from tests.support.read_model import empty_read_model


async def _named_product(api: Api, supplier: Who, name: str, active: bool = True) -> str:
    sku = uid("sku-")
    await api.ok(
        "PUT",
        f"/admin/products/{sku}",
        api.admin,
        {
            "name": name,
            "supplier_id": supplier.supplier_id,
            "product_type": "tea",
            "kind": "physical",
            "price": "5.00",
            "on_hand": 10,
            "active": active,
        },
        expect=201,
    )
    return sku


async def _all_pages(api: Api, params: dict[str, Any]) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await api.call("GET", "/products", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([p["sku"] for p in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "paging does not end"


async def test_catalog_list_pages_in_sku_order_active_only(api: Api) -> None:
    supplier = api.supplier()
    skus = [await api.product(supplier) for _ in range(5)]
    hidden = await api.product(supplier, active=False)
    pages = await _all_pages(api, {"supplier_id": supplier.supplier_id, "limit": 2})
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [sku for page in pages for sku in page] == sorted(skus)
    assert hidden not in {sku for page in pages for sku in page}

    # Exactly a page's worth: no empty page after it.
    assert [len(p) for p in await _all_pages(api, {"supplier_id": supplier.supplier_id})] == [5]
    first = await api.ok("GET", f"/products?supplier_id={supplier.supplier_id}&limit=1")
    item = first["items"][0]
    assert item["sku"] == min(skus) and item["supplier_id"] == supplier.supplier_id
    assert item["available"] == 50 and item["price"] == "10.00" and item["active"] is True

    # Another supplier's products are not listed under this one.
    other = api.supplier()
    theirs = await api.product(other)
    listed = await _all_pages(api, {"supplier_id": other.supplier_id})
    assert listed == [[theirs]]
    assert (await api.ok("GET", "/products?supplier_id=nobody-sells-here"))["items"] == []


async def test_catalog_search_matches_name_or_sku_in_any_case(api: Api) -> None:
    supplier = api.supplier()
    marker = uid("Jasmine")
    jasmine = await _named_product(api, supplier, f"{marker} Pearl 50%_off")
    other = await _named_product(api, supplier, "Plain tea")
    await _named_product(api, supplier, f"{marker} retired", active=False)

    by_name = await api.ok("GET", f"/products?q={marker.upper()}")
    assert [p["sku"] for p in by_name["items"]] == [jasmine]
    by_sku = (await api.call("GET", "/products", params={"q": other.upper()})).json()
    assert [p["sku"] for p in by_sku["items"]] == [other]
    # LIKE wildcards the customer types are taken literally.
    literal = (await api.call("GET", "/products", params={"q": "50%_off"})).json()
    assert jasmine in [p["sku"] for p in literal["items"]]
    wild = (
        await api.call("GET", "/products", params={"q": "%", "supplier_id": supplier.supplier_id})
    ).json()
    assert [p["sku"] for p in wild["items"]] == [jasmine]
    both = (
        await api.call("GET", "/products", params={"q": "tea", "supplier_id": supplier.supplier_id})
    ).json()
    assert [p["sku"] for p in both["items"]] == [other]


async def test_catalog_list_refuses_bad_cursor_and_limit(api: Api) -> None:
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": "e30"},  # "{}": valid base64 and JSON, not ours
        {"limit": 0},
        {"limit": 101},
    ):
        r = await api.call("GET", "/products", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "invalid_input"
    r = await api.call("GET", "/products", params={"cursor": "not-a-cursor"})
    assert "cursor" in r.json()["error"]["message"]


async def _lines(api: Api, who: Who) -> dict[str, int]:
    body = await api.ok("GET", "/cart", who)
    return {li["sku"]: li["qty"] for li in body["lines"]}


async def test_cart_add_sums_caps_sets_and_removes(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, on_hand=3)
    other = await api.product(supplier)
    customer = await api.customer()

    cart = await api.ok("POST", "/cart/lines", customer, {"sku": sku, "qty": 2})
    assert [(li["sku"], li["qty"], li["price"]) for li in cart["lines"]] == [(sku, 2, "10.00")]
    cart = await api.ok("POST", "/cart/lines", customer, {"sku": sku, "qty": 3})
    assert cart["lines"][0]["qty"] == 5  # more than in stock: the cart reserves nothing
    await api.ok("POST", "/cart/lines", customer, {"sku": other})  # qty defaults to 1
    assert await _lines(api, customer) == {sku: 5, other: 1}
    cart = await api.ok("POST", "/cart/lines", customer, {"sku": sku, "qty": 10_000})
    assert {li["sku"]: li["qty"] for li in cart["lines"]}[sku] == 10_000
    assert await api.scalar(select(Product.reserved).where(Product.sku == sku)) == 0

    cart = await api.ok("PUT", f"/cart/lines/{sku}", customer, {"qty": 4})
    assert {li["sku"]: li["qty"] for li in cart["lines"]} == {sku: 4, other: 1}
    for bad in ({"qty": 0}, {"qty": -1}, {"qty": 10_001}, {"qty": "x"}, {}):
        r = await api.call("PUT", f"/cart/lines/{sku}", customer, bad)
        assert r.status_code == 422, bad
    r = await api.call("PUT", "/cart/lines/not-in-cart", customer, {"qty": 1})
    assert r.status_code == 404 and "not in your cart" in r.json()["error"]["message"]

    cart = await api.ok("DELETE", f"/cart/lines/{other}", customer)
    assert [li["sku"] for li in cart["lines"]] == [sku]
    cart = await api.ok("DELETE", f"/cart/lines/{other}", customer)  # idempotent
    assert [li["sku"] for li in cart["lines"]] == [sku]
    assert await _lines(api, customer) == {sku: 4}


async def test_cart_refuses_unknown_inactive_and_bad_quantities(api: Api) -> None:
    supplier = api.supplier()
    retired = await api.product(supplier, active=False)
    customer = await api.customer()
    r = await api.call("POST", "/cart/lines", customer, {"sku": "no-such-sku", "qty": 1})
    assert r.status_code == 404 and "no-such-sku" in r.json()["error"]["message"]
    r = await api.call("POST", "/cart/lines", customer, {"sku": retired, "qty": 1})
    assert r.status_code == 409 and "not on sale" in r.json()["error"]["message"]
    sku = await api.product(supplier)
    for bad in (
        {"sku": sku, "qty": 0},
        {"sku": sku, "qty": 10_001},
        {"sku": "", "qty": 1},
        {"sku": sku, "qty": 1, "extra": True},
    ):
        r = await api.call("POST", "/cart/lines", customer, bad)
        assert r.status_code == 422, bad
    assert await _lines(api, customer) == {}


async def test_cart_add_with_idempotency_key_adds_once(api: Api) -> None:
    sku = await api.product(api.supplier())
    customer = await api.customer()
    body = {"sku": sku, "qty": 2}
    await api.ok("POST", "/cart/lines", customer, body, key="add-1")
    r = await api.call("POST", "/cart/lines", customer, body, key="add-1")
    assert r.status_code == 200 and r.headers.get("Idempotent-Replayed") == "true"
    assert await _lines(api, customer) == {sku: 2}
    await api.ok("POST", "/cart/lines", customer, body, key="add-2")
    assert await _lines(api, customer) == {sku: 4}


async def test_concurrent_adds_all_count(api: Api) -> None:
    sku = await api.product(api.supplier())
    customer = await api.customer()
    results = await asyncio.gather(
        *(api.call("POST", "/cart/lines", customer, {"sku": sku, "qty": 1}) for _ in range(6))
    )
    assert [r.status_code for r in results] == [200] * 6
    assert await _lines(api, customer) == {sku: 6}


async def test_cart_remove_takes_out_what_was_ordered(api: Api) -> None:
    supplier = api.supplier()
    a, b, c = [await api.product(supplier) for _ in range(3)]
    customer = await api.customer()
    for sku, qty in ((a, 2), (b, 5), (c, 1)):
        await api.ok("POST", "/cart/lines", customer, {"sku": sku, "qty": qty})
    ordered = {"lines": [{"sku": a, "qty": 2}, {"sku": b, "qty": 3}, {"sku": "gone", "qty": 1}]}
    cart = await api.ok("POST", "/cart/remove", customer, ordered, key="order-1")
    assert {li["sku"]: li["qty"] for li in cart["lines"]} == {b: 2, c: 1}
    # The same key again (a retried request) takes nothing more out.
    await api.ok("POST", "/cart/remove", customer, ordered, key="order-1")
    assert await _lines(api, customer) == {b: 2, c: 1}
    r = await api.call("POST", "/cart/remove", customer, {"lines": []})
    assert r.status_code == 422


async def test_another_customers_cart_is_untouched(api: Api) -> None:
    sku = await api.product(api.supplier())
    alice, bob = await api.customer(), await api.customer()
    await api.ok("POST", "/cart/lines", bob, {"sku": sku, "qty": 7})
    await api.ok("POST", "/cart/lines", alice, {"sku": sku, "qty": 1})
    await api.ok("PUT", f"/cart/lines/{sku}", alice, {"qty": 3})
    await api.ok("POST", "/cart/remove", alice, {"lines": [{"sku": sku, "qty": 1}]})
    assert await _lines(api, alice) == {sku: 2}
    await api.ok("DELETE", f"/cart/lines/{sku}", alice)
    assert await _lines(api, alice) == {}
    assert await _lines(api, bob) == {sku: 7}


async def test_cart_is_for_customers_only(api: Api) -> None:
    sku = await api.product(api.supplier())
    calls: list[tuple[str, str, Any]] = [
        ("POST", "/cart/lines", {"sku": sku, "qty": 1}),
        ("PUT", f"/cart/lines/{sku}", {"qty": 1}),
        ("DELETE", f"/cart/lines/{sku}", None),
        ("POST", "/cart/remove", {"lines": [{"sku": sku, "qty": 1}]}),
    ]
    for method, path, body in calls:
        assert (await api.call(method, path, None, body)).status_code == 401, path
        for who in (api.supplier(), api.admin):
            r = await api.call(method, path, who, body)
            assert r.status_code == 403, (path, who, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    # The catalog list is public.
    assert (await api.call("GET", "/products")).status_code == 200


def test_openapi_documents_the_catalog_list_and_cart() -> None:
    spec = create_app(Settings()).openapi()
    paths = spec["paths"]
    listed = paths["/products"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {"supplier_id", "q", "limit", "cursor"}
    assert {"200", "422"} <= set(listed["responses"])
    for method, path in (
        ("post", "/cart/lines"),
        ("put", "/cart/lines/{sku}"),
        ("delete", "/cart/lines/{sku}"),
        ("post", "/cart/remove"),
    ):
        op = paths[path][method]
        assert {"200", "401", "403"} <= set(op["responses"]), (method, path)
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith("/CartOut"), (method, path)


# --- the list query itself, on both databases ------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def catalog_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with empty_read_model(request.param, request, tmp_path) as sessions:
        yield sessions


async def test_list_products_query_on_sqlite_and_postgresql(
    catalog_db: async_sessionmaker[AsyncSession],
) -> None:
    names = {
        "a-1": ("Green TEA", "s1", True),
        "a-2": ("Mug 100%", "s1", True),
        "B-3": ("Plate", "s2", True),
        "b_4": ("Old tea", "s2", False),
        "c-5": ("Oolong tea", "s2", True),
    }
    async with write_session(catalog_db) as s:
        for sku, (name, supplier, active) in names.items():
            s.add(
                Product(
                    sku=sku,
                    name=name,
                    supplier_id=supplier,
                    product_type="t",
                    kind="physical",
                    price=Decimal("1.00"),
                    on_hand=1,
                    reserved=0,
                    active=active,
                )
            )
    async with catalog_db() as s:
        page, after = await queries.list_products(s, None, None, 2, None)
        rest, end = await queries.list_products(s, None, None, 2, after)
        listed = [p.sku for p in page + rest]  # in the database's collation order
        assert sorted(listed) == sorted(["a-1", "a-2", "B-3", "c-5"]) and len(page) == 2
        assert end is None and after == page[-1].sku
        found, _ = await queries.list_products(s, None, "tea", 10, None)
        assert {p.sku for p in found} == {"a-1", "c-5"}  # the inactive one is not listed
        found, _ = await queries.list_products(s, None, "b-3", 10, None)
        assert [p.sku for p in found] == ["B-3"]
        found, _ = await queries.list_products(s, None, "0%", 10, None)
        assert [p.sku for p in found] == ["a-2"]
        found, _ = await queries.list_products(s, None, "_", 10, None)
        assert found == []  # "_" is literal: only the inactive b_4 has one
        found, _ = await queries.list_products(s, "s2", "TEA", 10, None)
        assert [p.sku for p in found] == ["c-5"]
        assert await queries.catalog_suppliers(s) == ["s1", "s2"]
