"""GET /products/{sku}/reviews: the reviews centre (DESIGN.md §11), newest first, keyset-paged.

Through the real stack: a customer's own review and an automatic one (fast_api: 1-second
auto-confirm and auto-review windows) of the same product, both listed, newest first, the
automatic one marked and carrying the platform's default text, the reviewer shown masked
and never by account. The query itself (ties on the time, deep pages, other products kept
out) runs on SQLite and PostgreSQL.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import queries
from db.session import write_session
from db.tables import Customer
from domain.policy import Policy
from settings import Settings
from starter.api.app import create_app
from tests.api.helpers import Api, Who, uid
from tests.support.read_model import empty_read_model
from tests.support.reviews import Reviewed, add_reviewed_order


async def reviews(api: Api, sku: str, expect: int = 200, **params: Any) -> Any:
    r = await api.call("GET", f"/products/{sku}/reviews", params=params)  # anyone: no token
    assert r.status_code == expect, r.text
    return r.json()


async def ship_all(api: Api, supplier: Who, order: Any) -> str:
    so = order["supplier_orders"][0]
    lines = [
        {"item_id": i["item_id"], "qty": i["qty"]} for sub in so["sub_orders"] for i in sub["items"]
    ]
    await api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        supplier,
        {"carrier": "sf", "tracking_no": uid("RV"), "items": lines},
        expect=201,
    )
    return str(so["id"])


async def test_customer_and_automatic_reviews_newest_first(api: Api, fast_api: Api) -> None:
    supplier = api.supplier()
    tea = await api.product(supplier)
    other = await api.product(supplier)
    alice, quiet = await api.customer(), await api.customer()
    await api.ok("PUT", f"/admin/customers/{alice.sub}", api.admin, {"name": "alice"})
    assert await reviews(api, tea) == {"items": [], "next_cursor": None}

    # Alice receives and reviews both products of her order herself.
    mine = await api.paid_order(alice, [(tea, 1), (other, 1)])
    so_id = await ship_all(api, supplier, mine)
    await api.ok("POST", f"/supplier-orders/{so_id}/confirm-receipt", alice)
    await api.ok("POST", f"/supplier-orders/{so_id}/reviews", alice, {"rating": 4, "text": "nice"})

    # The other customer never confirms nor reviews: the 1-second windows do it for them.
    placed = await fast_api.place(quiet, [(tea, 2)])
    await fast_api.ok("POST", f"/orders/{placed['order_no']}/pay", quiet, expect=202)
    paid = await fast_api.wait_order(
        quiet, placed["order_no"], lambda o: o["status"] == "PAID", "paid"
    )
    await ship_all(fast_api, supplier, paid)
    await fast_api.wait_order(
        quiet, placed["order_no"], lambda o: o["status"] == "FINISHED", "auto review", timeout=30
    )

    page = await reviews(api, tea)
    automatic, written = page["items"]
    assert page["next_cursor"] is None
    assert automatic == {
        "rating": Policy().default_review_rating,
        "text": Policy().default_review_text,
        "auto": True,
        "at": automatic["at"],
        "reviewer": "***",  # no name on the account
    }
    assert written == {
        "rating": 4,
        "text": "nice",
        "auto": False,
        "at": written["at"],
        "reviewer": "a***e",
    }
    assert datetime.fromisoformat(automatic["at"]) > datetime.fromisoformat(written["at"])
    # Never the reviewer's account.
    assert alice.sub not in str(page) and quiet.sub not in str(page)
    # The other product has only Alice's review of it.
    assert [r["text"] for r in (await reviews(api, other))["items"]] == ["nice"]

    # One at a time, following the cursor.
    first = await reviews(api, tea, limit=1)
    assert first["items"] == [automatic] and first["next_cursor"]
    second = await reviews(api, tea, limit=1, cursor=first["next_cursor"])
    assert second == {"items": [written], "next_cursor": None}


async def test_unknown_product_and_bad_input(api: Api) -> None:
    def code(body: Any) -> str:
        return str(body["error"]["code"])

    assert code(await reviews(api, "no-such-sku", 404)) == "not_found"
    sku = await api.product(api.supplier())
    assert "cursor" in str(await reviews(api, sku, 422, cursor="not-a-cursor"))
    assert code(await reviews(api, sku, 422, cursor="eyJhdCI6MX0")) == "invalid_input"  # {"at":1}
    for limit in (0, 101):
        assert "limit" in str(await reviews(api, sku, 422, limit=limit))


# --- the query itself, on both databases ----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def review_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with empty_read_model(request.param, request, tmp_path) as sessions:
        yield sessions


T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


async def test_review_query_pages_ties_on_sqlite_and_postgresql(
    review_db: async_sessionmaker[AsyncSession],
) -> None:
    # item → (sku, at): two pairs tie on the time; one review of another product between.
    reviewed = {
        "i1": ("tea", T0),
        "i2": ("tea", T0 + timedelta(seconds=1)),
        "i3": ("tea", T0 + timedelta(seconds=1)),
        "i4": ("cup", T0 + timedelta(seconds=2)),
        "i5": ("tea", T0 + timedelta(seconds=3)),
        "i6": ("tea", T0 + timedelta(seconds=3)),
    }
    seeded = [
        Reviewed(item_id=i, sku=sku, at=at, text=i, auto=i == "i1")
        for i, (sku, at) in reviewed.items()
    ]
    async with write_session(review_db) as s:
        s.add(Customer(id="acct-1", name="Zhang San", coins=Decimal("0")))
        await add_reviewed_order(
            s, order_no="1", customer_id="acct-1", supplier_id="s1", at=T0, reviews=seeded
        )

    async def found(limit: int, sku: str = "tea") -> list[str]:
        seen: list[str] = []
        after = None
        async with review_db() as s:
            while True:
                rows, after = await queries.product_reviews(s, sku, limit, after)
                assert len(rows) <= limit
                seen += [r.item_id for r in rows]
                if after is None:
                    return seen

    newest_first = ["i6", "i5", "i3", "i2", "i1"]
    for limit in (1, 2, 3, 5, 10):
        assert await found(limit) == newest_first, limit
    assert await found(1, "cup") == ["i4"]
    assert await found(3, "nothing") == []
    async with review_db() as s:
        rows, _ = await queries.product_reviews(s, "tea", 10)
    assert {r.reviewer_name for r in rows} == {"Zhang San"}
    assert [r.auto for r in rows] == [False, False, False, False, True]


def test_openapi_documents_the_reviews_centre() -> None:
    spec = create_app(Settings()).openapi()
    op = spec["paths"]["/products/{sku}/reviews"]["get"]
    assert {"200", "404", "422"} <= set(op["responses"]) and "401" not in op["responses"]
    item = spec["components"]["schemas"]["ReviewOut"]["properties"]
    assert {"rating", "text", "auto", "at", "reviewer"} == set(item)
    assert "GetReviews" in spec["paths"]["/products/{sku}"]["get"]["responses"]["200"]["links"]
