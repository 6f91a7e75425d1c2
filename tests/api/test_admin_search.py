"""GET /admin/orders: the admin's order search (DESIGN.md §11), keyset-paged newest first.

The API tests share one database, so every search here is narrowed to the customers and
suppliers the test made itself.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.queries import OrderSearch
from db.session import write_session
from db.tables import Order, SupplierOrder
from tests.api.helpers import Api, Who
from tests.support.read_model import empty_read_model


async def search(api: Api, expect: int = 200, who: Who | None = None, **params: Any) -> Any:
    r = await api.call("GET", "/admin/orders", who or api.admin, params=params)
    assert r.status_code == expect, r.text
    return r.json()


def numbers(page: Any) -> list[str]:
    return [o["order_no"] for o in page["items"]]


async def walk(api: Api, limit: int, **params: Any) -> list[str]:
    """Every page of a search, following next_cursor."""
    seen: list[str] = []
    cursor = None
    while True:
        page = await search(api, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= limit
        seen += numbers(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_finds_by_number_with_the_order_view(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()
    wanted = await api.paid_order(customer, [(sku, 2)])
    other = await api.place(customer, [(sku, 1)])

    page = await search(api, order_no=wanted["order_no"])

    assert numbers(page) == [wanted["order_no"]] and page["next_cursor"] is None
    # The same view as GET /orders/{no} (deadlines from the read model, as in the lists).
    assert page["items"][0] == await api.order(api.admin, wanted["order_no"], live=False)
    assert numbers(await search(api, order_no=f"  {other['order_no']} ")) == [other["order_no"]]
    assert numbers(await search(api, order_no="NO-SUCH-ORDER")) == []


async def test_customer_filter_pages_newest_first(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer, someone = await api.customer(), await api.customer()
    placed = [(await api.place(customer, [(sku, 1)]))["order_no"] for _ in range(5)]
    theirs = (await api.place(someone, [(sku, 1)]))["order_no"]

    first = await search(api, customer_id=customer.sub, limit=2)
    assert numbers(first) == placed[::-1][:2] and first["next_cursor"]
    everything = await walk(api, 2, customer_id=customer.sub)
    assert everything == placed[::-1]
    assert theirs not in everything
    assert {o["customer_id"] for o in first["items"]} == {customer.sub}

    # Keyset paging: orders placed after the first page never shift the next one.
    newer = (await api.place(customer, [(sku, 1)]))["order_no"]
    second = await search(api, customer_id=customer.sub, limit=2, cursor=first["next_cursor"])
    assert numbers(second) == placed[::-1][2:4]
    assert newer == numbers(await search(api, customer_id=customer.sub, limit=1))[0]


async def test_equal_creation_times_are_paged_by_number(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()
    nos = [(await api.place(customer, [(sku, 1)]))["order_no"] for _ in range(3)]
    same = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    async with write_session(api.sessions) as s:
        await s.execute(update(Order).where(Order.order_no.in_(nos)).values(created_at=same))

    assert await walk(api, 1, customer_id=customer.sub) == sorted(nos, reverse=True)


async def test_supplier_and_status_filters(api: Api) -> None:
    shipper, waiter = api.supplier(), api.supplier()
    tea = await api.product(shipper)
    cup = await api.product(waiter)
    customer = await api.customer()
    both = await api.paid_order(customer, [(tea, 1), (cup, 1)])
    unpaid = await api.place(customer, [(cup, 1)])
    shipped_so = next(
        so for so in both["supplier_orders"] if so["supplier_id"] == shipper.supplier_id
    )
    item_id = shipped_so["sub_orders"][0]["items"][0]["item_id"]
    await api.ok(
        "POST",
        f"/supplier/orders/{shipped_so['id']}/shipments",
        shipper,
        {
            "carrier": "sf",
            "tracking_no": f"SF-{both['order_no']}",
            "method": "express",
            "items": [{"item_id": item_id, "qty": 1}],
        },
        expect=201,
    )
    paid_no, unpaid_no = both["order_no"], unpaid["order_no"]
    mine: dict[str, Any] = {"customer_id": customer.sub}

    assert numbers(await search(api, supplier_id=shipper.supplier_id)) == [paid_no]
    assert numbers(await search(api, supplier_id=waiter.supplier_id)) == [unpaid_no, paid_no]
    # The order's own status...
    assert numbers(await search(api, status="PAID", **mine)) == [paid_no]
    assert numbers(await search(api, status="PENDING_PAYMENT", **mine)) == [unpaid_no]
    # ...or any of its supplier orders'.
    assert numbers(await search(api, status="PENDING_RECEIPT", **mine)) == [paid_no]
    assert numbers(await search(api, status="PENDING_SHIPMENT", **mine)) == [paid_no]
    assert numbers(await search(api, status="COMPLETED", **mine)) == []
    # With a supplier too, the status is that supplier's supplier order's.
    shipper_id, waiter_id = shipper.supplier_id, waiter.supplier_id
    assert numbers(await search(api, status="PENDING_RECEIPT", supplier_id=shipper_id)) == [paid_no]
    assert numbers(await search(api, status="PENDING_RECEIPT", supplier_id=waiter_id)) == []
    assert numbers(await search(api, status="PAID", supplier_id=waiter_id)) == [paid_no]


async def test_creation_time_window(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()
    nos = [(await api.place(customer, [(sku, 1)]))["order_no"] for _ in range(3)]
    days = [datetime(2026, 3, d, 23, 30, tzinfo=UTC) for d in (1, 2, 3)]
    async with write_session(api.sessions) as s:
        for no, at in zip(nos, days, strict=True):
            await s.execute(update(Order).where(Order.order_no == no).values(created_at=at))
    mine: dict[str, Any] = {"customer_id": customer.sub}

    # Bare dates: from midnight UTC, up to and including the whole last day.
    found = await search(api, created_from="2026-03-02", created_to="2026-03-03", **mine)
    assert numbers(found) == [nos[2], nos[1]]
    assert numbers(await search(api, created_to="2026-03-01", **mine)) == [nos[0]]
    # Date-times are inclusive bounds; an offset is honoured (+ encoded as %2B by httpx).
    exact = days[1].isoformat()
    assert numbers(await search(api, created_from=exact, created_to=exact, **mine)) == [nos[1]]
    assert numbers(
        await search(api, created_from="2026-03-03T07:30:00+08:00", **mine)  # = 03-02 23:30Z
    ) == [nos[2], nos[1]]
    assert numbers(await search(api, created_from="2026-03-02T23:30:00.000001Z", **mine)) == [
        nos[2]
    ]
    later = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert numbers(await search(api, created_from=later, **mine)) == []


async def test_bad_input_is_a_clear_422(api: Api) -> None:
    def message(body: Any) -> str:
        assert body["error"]["code"] == "invalid_input", body
        return str(body["error"]["message"])

    assert "unknown status 'SHIPPED_ALL'" in message(await search(api, 422, status="SHIPPED_ALL"))
    assert "created_from 'yesterday' is not an ISO-8601" in message(
        await search(api, 422, created_from="yesterday")
    )
    assert "%2B" in message(await search(api, 422, created_to="2026-01-01T08:00:00 08:00"))
    assert "created_from is after created_to" in message(
        await search(api, 422, created_from="2026-02-02", created_to="2026-02-01")
    )
    assert "cursor" in message(await search(api, 422, cursor="not-a-cursor"))
    assert "limit" in message(await search(api, 422, limit=0))
    assert "limit" in message(await search(api, 422, limit=101))


async def test_admins_only(api: Api) -> None:
    customer = await api.customer()
    supplier = api.supplier()
    assert (await api.call("GET", "/admin/orders")).status_code == 401
    for who in (customer, supplier):
        r = await api.call("GET", "/admin/orders", who, params={"customer_id": customer.sub})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"


# --- the search query itself, on both databases -------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def search_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with empty_read_model(request.param, request, tmp_path) as sessions:
        yield sessions


T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
# order no → (created_at, status, {supplier: supplier order status})
ROWS: dict[str, tuple[datetime, str, dict[str, str]]] = {
    "100": (T0, "PAID", {"s1": "PENDING_SHIPMENT", "s2": "PENDING_RECEIPT"}),
    "101": (T0 + timedelta(microseconds=1), "PENDING_PAYMENT", {"s1": "PENDING_PAYMENT"}),
    "102": (T0 + timedelta(microseconds=1), "CLOSED", {"s2": "CLOSED"}),  # a tie on time
    "103": (T0 + timedelta(days=1), "FINISHED", {"s1": "COMPLETED"}),
    "104": (T0 + timedelta(days=1), "PAID", {"s2": "PENDING_SHIPMENT"}),
}


async def test_search_query_on_sqlite_and_postgresql(
    search_db: async_sessionmaker[AsyncSession],
) -> None:
    money = Decimal("1.00")
    async with write_session(search_db) as s:
        for no, (at, status, parts) in ROWS.items():
            s.add(
                Order(
                    order_no=no,
                    customer_id="c-odd" if int(no) % 2 else "c-even",
                    status=status,
                    subtotal=money,
                    postage=money,
                    coins=Decimal("0"),
                    payable=money,
                    pay_deadline=at,
                    created_at=at,
                    plan={},
                )
            )
            await s.flush()
            for supplier, part_status in parts.items():
                s.add(
                    SupplierOrder(
                        id=f"{no}-{supplier}-1",
                        order_no=no,
                        supplier_id=supplier,
                        customer_id="c",
                        status=part_status,
                        needs_address=False,
                        subtotal=money,
                        postage=money,
                        coin_share=Decimal("0"),
                        payable=money,
                        created_at=at,
                    )
                )

    async def found(limit: int = 10, **filters: Any) -> list[str]:
        seen: list[str] = []
        after = None
        async with search_db() as s:
            while True:
                rows, after = await queries.search_orders(s, OrderSearch(**filters), limit, after)
                assert len(rows) <= limit
                seen += [r.order_no for r in rows]
                if after is None:
                    return seen

    newest_first = ["104", "103", "102", "101", "100"]
    for limit in (1, 2, 5, 10):
        assert await found(limit) == newest_first, limit
    assert await found(1, customer_id="c-odd") == ["103", "101"]
    assert await found(order_no="102") == ["102"]
    assert await found(2, supplier_id="s1") == ["103", "101", "100"]
    assert await found(status="PAID") == ["104", "100"]
    assert await found(1, status="PENDING_SHIPMENT") == ["104", "100"]
    assert await found(status="PENDING_RECEIPT") == ["100"]
    assert await found(status="CLOSED") == ["102"]
    assert await found(status="PENDING_RECEIPT", supplier_id="s1") == []
    assert await found(status="PENDING_RECEIPT", supplier_id="s2") == ["100"]
    assert await found(status="PAID", supplier_id="s1") == ["100"]
    tick = T0 + timedelta(microseconds=1)
    assert await found(1, created_from=tick, created_before=T0 + timedelta(days=1)) == [
        "102",
        "101",
    ]
    assert await found(created_before=tick) == ["100"]
