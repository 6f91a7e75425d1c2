"""GET /admin/orders: the admin's order search (DESIGN.md §11), keyset-paged newest first.

The API tests share one database, so every search here is narrowed to the customers and
suppliers the test made itself.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from db.session import write_session
from db.tables import Order
from tests.api.helpers import Api, Who


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
