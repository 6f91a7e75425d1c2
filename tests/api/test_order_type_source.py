"""Order type and line source (DESIGN.md §11) through the HTTP API.

`order_type` and each line's `source` are stored and shown in every order view (submit,
GET /orders, GET /orders/{no}, admin search) and never in the supplier's; an unknown type
or zone is a 422 that reserves nothing.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from starter.api.app import create_app
from tests.api.conftest import Stack, serve, stack_settings, stop
from tests.api.helpers import Api, footprint
from tests.support.invariants import check_order_invariants

ZONES = "normal,zone-a,zone-b"


@pytest.fixture(scope="module")
async def zoned(stack: Stack) -> AsyncIterator[Api]:
    """An API with three catalog zones over the stack's database and worker."""
    settings = stack_settings(
        stack.api.settings.database_url, stack.env, stack.task_queue, ORDERS_SOURCE_ZONES=ZONES
    )
    running = await serve(create_app(settings))
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
            yield Api(http, settings, stack.sessions)
    finally:
        await stop(running)


def items_of(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for so in order["supplier_orders"] for sub in so["sub_orders"] for i in sub["items"]]


def sources(order: dict[str, Any]) -> dict[str, str]:
    return {i["sku"]: i["source"] for i in items_of(order)}


async def test_type_and_sources_are_stored_and_shown_in_every_order_view(zoned: Api) -> None:
    api = zoned
    s1, s2 = api.supplier(), api.supplier()
    tea, cup = await api.product(s1), await api.product(s2, price="6.00")
    alice = await api.customer()
    placed = await api.ok(
        "POST",
        "/orders",
        alice,
        {
            "lines": [{"sku": tea, "qty": 1, "source": "zone-a"}, {"sku": cup, "qty": 2}],
            "order_type": "activity",
        },
        expect=201,
    )
    no = placed["order_no"]
    assert placed["order_type"] == "activity"
    preview = {i["sku"]: i["source"] for so in placed["supplier_orders"] for i in so["items"]}
    assert preview == {tea: "zone-a", cup: "normal"}  # no source: the first zone

    record = await api.order(alice, no)
    assert record["order_type"] == "activity" and sources(record) == preview
    page = await api.ok("GET", "/orders", alice)
    (listed,) = [o for o in page["items"] if o["order_no"] == no]
    assert listed["order_type"] == "activity" and sources(listed) == preview
    found = await api.ok("GET", f"/admin/orders?customer_id={alice.sub}", api.admin)
    (searched,) = found["items"]
    assert searched["order_type"] == "activity" and sources(searched) == preview
    assert (await api.order(api.admin, no))["order_type"] == "activity"

    # Suppliers see the goods, not the order's type nor the zone it was sold from.
    await api.ok("POST", f"/orders/{no}/pay", alice, expect=202)
    await api.wait_order(alice, no, lambda o: o["status"] == "PAID", "paid")
    for s in (s1, s2):
        view = await api.ok("GET", f"/supplier/orders/{no}-{s.supplier_id}", s)
        inbox = await api.ok("GET", "/supplier/orders", s)
        for shown in (view, *inbox["items"]):
            assert "order_type" not in shown
            assert all("source" not in i for sub in shown["sub_orders"] for i in sub["items"])
    await check_order_invariants(api.sessions, [no])


async def test_defaults_are_self_and_the_first_zone(zoned: Api) -> None:
    api = zoned
    s1 = api.supplier()
    tea = await api.product(s1)
    bob = await api.customer()
    placed = await api.place(bob, [(tea, 1)])
    assert placed["order_type"] == "self"
    assert [i["source"] for i in placed["supplier_orders"][0]["items"]] == ["normal"]
    record = await api.order(bob, placed["order_no"])
    assert record["order_type"] == "self" and sources(record) == {tea: "normal"}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"order_type": "gift"}, "invalid_input"),
        ({"order_type": ""}, "invalid_input"),
        ({"lines_source": "zone-z"}, "unknown_source"),
        ({"lines_source": "ZONE-A"}, "unknown_source"),
    ],
)
async def test_unknown_type_or_zone_is_422_and_reserves_nothing(
    zoned: Api, change: dict[str, str], code: str
) -> None:
    api = zoned
    s1 = api.supplier()
    tea, pot = await api.product(s1), await api.product(s1)
    carol = await api.customer(coins="50.00")
    before = await footprint(api, carol, [tea, pot])
    body: dict[str, Any] = {
        "lines": [{"sku": tea, "qty": 1, "source": "zone-a"}, {"sku": pot, "qty": 1}],
        "coins": "5.00",
    }
    if "order_type" in change:
        body["order_type"] = change["order_type"]
    else:
        body["lines"][1]["source"] = change["lines_source"]
    r = await api.call("POST", "/orders", carol, body, key=f"k-{code}-{tea}")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    if code == "unknown_source":
        assert "zone-a" in r.json()["error"]["message"]  # names the zones that exist
    assert await footprint(api, carol, [tea, pot]) == before


async def test_a_zone_only_another_api_knows_is_refused(api: Api, zoned: Api) -> None:
    """The zones are the API's setting: the default API has only `normal`."""
    s1 = api.supplier()
    tea = await api.product(s1)
    dave = await api.customer()
    r = await api.call(
        "POST", "/orders", dave, {"lines": [{"sku": tea, "qty": 1, "source": "zone-a"}]}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_source", r.text
    r = await zoned.call(
        "POST", "/orders", dave, {"lines": [{"sku": tea, "qty": 1, "source": "zone-a"}]}
    )
    assert r.status_code == 201, r.text
