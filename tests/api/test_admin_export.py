"""GET /admin/orders/export.csv: the admin search as CSV, streamed (DESIGN.md §11).

The API tests share one database, so every export here is narrowed to the customers and
suppliers the test made itself.
"""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update

from db.queries import OrderSearch
from db.session import write_session
from db.tables import Order, SupplierOrder
from settings import Settings
from starter.api.app import create_app
from starter.api.routers.admin import (
    EXPORT_COLUMNS,
    export_csv,
    money_cell,
    text_cell,
    time_cell,
)
from tests.api.helpers import Api, Who

PATH = "/admin/orders/export.csv"


async def export(api: Api, expect: int = 200, who: Who | None = None, **params: Any) -> Any:
    r = await api.call("GET", PATH, who or api.admin, params=params)
    assert r.status_code == expect, r.text
    if expect != 200:
        return r.json()
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="orders-')
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == list(EXPORT_COLUMNS)
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


async def test_one_row_per_supplier_order_with_the_order_money(api: Api) -> None:
    shipper, waiter = api.supplier(), api.supplier()
    tea = await api.product(shipper, price="10.00")
    cup = await api.product(waiter, price="3.50")
    customer, someone = await api.customer(), await api.customer()
    paid = await api.paid_order(customer, [(tea, 2), (cup, 1)])
    unpaid = await api.place(customer, [(cup, 2)])
    await api.place(someone, [(cup, 1)])

    rows = await export(api, customer_id=customer.sub)

    # Newest order first; its supplier orders in order.
    assert [(r["order_no"], r["supplier_id"]) for r in rows] == [
        (unpaid["order_no"], waiter.supplier_id),
        *sorted(
            ((paid["order_no"], s.supplier_id) for s in (shipper, waiter)),
            key=lambda k: next(
                so["id"] for so in paid["supplier_orders"] if so["supplier_id"] == k[1]
            ),
        ),
    ]
    first = rows[0]
    assert first == {
        "order_no": unpaid["order_no"],
        "supplier_order_id": unpaid["supplier_orders"][0]["id"],
        "supplier_id": waiter.supplier_id,
        "customer_id": customer.sub,
        "order_type": "self",
        "status": "PENDING_PAYMENT",
        "supplier_order_status": "PENDING_PAYMENT",
        "payable": unpaid["payable"],
        "paid": "0.00",
        "refunded": "0.00",
        "created_at": first["created_at"],
        "paid_at": "",  # unpaid orders are exported too
        "supplier_order_payable": unpaid["supplier_orders"][0]["payable"],
    }
    order = await api.order(api.admin, paid["order_no"])
    for row in rows[1:]:
        so = next(so for so in order["supplier_orders"] if so["id"] == row["supplier_order_id"])
        assert row["status"] == "PAID" and row["supplier_order_status"] == "PENDING_SHIPMENT"
        assert row["payable"] == row["paid"] == order["payable"]
        assert Decimal(row["paid"]) == Decimal("23.50") + Decimal(order["postage"])
        assert row["refunded"] == "0.00"
        assert row["supplier_order_payable"] == so["payable"]
        assert utc(row["paid_at"]) == datetime.fromisoformat(order["paid_at"])
        assert utc(row["created_at"]) == datetime.fromisoformat(order["created_at"])
    assert sum(Decimal(r["supplier_order_payable"]) for r in rows[1:]) == Decimal(order["payable"])


async def test_the_search_filters_apply(api: Api) -> None:
    shipper, waiter = api.supplier(), api.supplier()
    tea = await api.product(shipper)
    cup = await api.product(waiter)
    customer = await api.customer()
    both = await api.paid_order(customer, [(tea, 1), (cup, 1)])
    unpaid = await api.place(customer, [(cup, 1)])
    promo = await api.place(customer, [(tea, 1)])
    old_day = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    async with write_session(api.sessions) as s:
        await s.execute(
            update(Order)
            .where(Order.order_no == promo["order_no"])
            .values(order_type="activity", created_at=old_day)
        )
    mine: dict[str, Any] = {"customer_id": customer.sub}

    def seen(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(r["order_no"], r["supplier_id"]) for r in rows]

    # With a supplier: only that supplier's supplier orders of the orders found.
    assert seen(await export(api, supplier_id=waiter.supplier_id)) == [
        (unpaid["order_no"], waiter.supplier_id),
        (both["order_no"], waiter.supplier_id),
    ]
    # A status matches the order's or any of its supplier orders': all of its rows.
    assert {r["order_no"] for r in await export(api, status="PENDING_SHIPMENT", **mine)} == {
        both["order_no"]
    }
    assert len(await export(api, status="PENDING_SHIPMENT", **mine)) == 2
    assert seen(await export(api, order_type="activity", **mine)) == [
        (promo["order_no"], shipper.supplier_id)
    ]
    window = await export(api, created_from="2026-03-02", created_to="2026-03-02", **mine)
    assert seen(window) == [(promo["order_no"], shipper.supplier_id)]
    assert seen(await export(api, order_no=unpaid["order_no"])) == [
        (unpaid["order_no"], waiter.supplier_id)
    ]
    # The same orders as the search finds, in the same order.
    page = await api.ok("GET", f"/admin/orders?customer_id={customer.sub}&limit=100", api.admin)
    exported = list(dict.fromkeys(r["order_no"] for r in await export(api, **mine)))
    assert exported == [o["order_no"] for o in page["items"]]
    # And the search itself takes order_type too.
    found = await api.ok(
        "GET", f"/admin/orders?customer_id={customer.sub}&order_type=activity", api.admin
    )
    assert [o["order_no"] for o in found["items"]] == [promo["order_no"]]


async def test_bad_filters_and_callers_are_refused_before_any_csv(api: Api) -> None:
    def code(body: Any) -> str:
        return str(body["error"]["code"])

    assert "unknown status" in str(await export(api, 422, status="NOPE"))
    assert "unknown order_type 'gift'" in str(await export(api, 422, order_type="gift"))
    assert code(await export(api, 422, created_from="yesterday")) == "invalid_input"
    assert (await api.call("GET", PATH)).status_code == 401
    customer = await api.customer()
    for who in (customer, api.supplier()):
        r = await api.call("GET", PATH, who, params={"customer_id": customer.sub})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_cells_never_start_a_formula() -> None:
    for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert text_cell(text) == f"'{text}"
    assert text_cell("a=b") == "a=b" and text_cell("") == ""
    assert money_cell(Decimal("5")) == "5.00" and money_cell(Decimal("0.5")) == "0.50"
    at = datetime(2026, 1, 31, 16, 0, tzinfo=UTC) + timedelta(microseconds=5)
    assert time_cell(at) == "2026-01-31T16:00:00.000005Z"
    assert time_cell(at.astimezone(timezone(timedelta(hours=8)))) == time_cell(at)
    assert time_cell(None) == ""


async def test_injected_text_is_defused_in_the_file(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()
    placed = await api.place(customer, [(sku, 1)])
    async with write_session(api.sessions) as s:
        await s.execute(
            update(Order)
            .where(Order.order_no == placed["order_no"])
            .values(customer_id='=HYPERLINK("http://x","y")')
        )
    (row,) = await export(api, order_no=placed["order_no"])
    assert row["customer_id"] == '\'=HYPERLINK("http://x","y")'


async def _seed(api: Api, supplier_id: str, customer_id: str, n: int) -> None:
    """n unpaid one-supplier orders, written straight into the read model."""
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    money = Decimal("9.90")
    orders, parts = [], []
    for i in range(n):
        no = f"X{uuid.uuid4().hex[:20]}"
        at = t0 + timedelta(seconds=i)
        orders.append(
            {
                "order_no": no,
                "customer_id": customer_id,
                "status": "PENDING_PAYMENT",
                "subtotal": money,
                "postage": Decimal("0"),
                "coins": Decimal("0"),
                "payable": money,
                "paid": Decimal("0"),
                "refunded": Decimal("0"),
                "coins_refunded": Decimal("0"),
                "pay_deadline": at,
                "created_at": at,
                "plan": {},
            }
        )
        parts.append(
            {
                "id": f"{no}-{supplier_id}-1",
                "order_no": no,
                "supplier_id": supplier_id,
                "customer_id": customer_id,
                "status": "PENDING_PAYMENT",
                "needs_address": False,
                "remark": "",
                "subtotal": money,
                "postage": Decimal("0"),
                "coin_share": Decimal("0"),
                "payable": money,
                "created_at": at,
                "extended": False,
            }
        )
    async with write_session(api.sessions) as s:
        await s.execute(insert(Order), orders)
        await s.execute(insert(SupplierOrder), parts)


async def test_a_big_export_streams_in_batches(api: Api) -> None:
    supplier, customer = f"bulk-{uuid.uuid4().hex[:8]}", f"bulk-{uuid.uuid4().hex[:8]}"
    n = 2500
    await _seed(api, supplier, customer, n)

    # Over HTTP: chunked, arriving in several pieces, every row there once.
    chunks = 0
    body = bytearray()
    async with api.http.stream(
        "GET", PATH, params={"supplier_id": supplier}, headers=api.headers(api.admin)
    ) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.headers
        async for chunk in r.aiter_raw():
            chunks += 1
            body += chunk
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert len(rows) == n + 1 and chunks > 2
    assert len({row[0] for row in rows[1:]}) == n
    assert [row[10] for row in rows[1:]] == sorted((row[10] for row in rows[1:]), reverse=True)

    # The generator itself: a header, then one chunk per batch of orders.
    pieces = [p async for p in export_csv(api.sessions, OrderSearch(supplier_id=supplier), 1000)]
    assert len(pieces) == 1 + 3
    assert [p.count("\r\n") for p in pieces] == [1, 1000, 1000, 500]


def test_openapi_documents_the_export() -> None:
    spec = create_app(Settings()).openapi()
    op = spec["paths"]["/admin/orders/export.csv"]["get"]
    assert set(op["responses"]["200"]["content"]) == {"text/csv"}
    assert {"401", "403", "422"} <= set(op["responses"])
    params = {p["name"] for p in op["parameters"]}
    assert params == {
        "status",
        "customer_id",
        "supplier_id",
        "order_type",
        "created_from",
        "created_to",
        "order_no",
    }
    search = spec["paths"]["/admin/orders"]["get"]
    assert params | {"limit", "cursor"} == {p["name"] for p in search["parameters"]}
