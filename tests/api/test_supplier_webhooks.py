"""Signed supplier webhooks (DESIGN.md §11), end to end on the real stack.

The `api` stack (Temporal dev server, worker, API, SQLite read model) makes the orders; a
receiving HTTP server of the test's own (uvicorn on 127.0.0.1) plays the suppliers'
systems; `Dispatcher`s run in the test against the same database with short backoff, as
the worker process runs one, and hand the events to the stack's worker, whose
WebhookDeliveryWorkflow delivers them.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from db.tables import OrderLog, WebhookCursor, WebhookEvent
from domain.webhooks import delivery_workflow_id, verify
from starter.api.app import create_app
from starter.webhooks import CURSOR, Dispatcher
from tests.api.conftest import Stack, serve, stop
from tests.api.helpers import Api, Who, eventually, uid

SECRET = "whsec-test-0123456789abcdef"


@dataclass
class Received:
    hook: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


Decide = Callable[[Received], int]


@dataclass
class Receiver:
    """Suppliers' systems: POST /hook/{name} is recorded and answered as `plans` says."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    plans: dict[str, Decide] = field(default_factory=dict)

    def endpoint(self, name: str, decide: Decide | None = None) -> str:
        if decide is not None:
            self.plans[name] = decide
        return f"{self.url}/hook/{name}"

    def at(self, name: str) -> list[Received]:
        return [r for r in self.received if r.hook == name]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/hook/{name}")
        async def hook(name: str, request: Request) -> Response:
            got = Received(name, dict(request.headers), await request.body())
            self.received.append(got)
            decide = self.plans.get(name)
            return Response(status_code=decide(got) if decide else 200)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    running = await serve(rec.app())
    rec.url = running.url
    try:
        yield rec
    finally:
        await stop(running)


@pytest.fixture
async def hooks(api: Api) -> AsyncIterator[list[str]]:
    """Suppliers whose webhook a test set: removed afterwards (their pending events drop)."""
    suppliers: list[str] = []
    yield suppliers
    for supplier_id in suppliers:
        await api.call("DELETE", f"/admin/suppliers/{supplier_id}/webhook", api.admin)


async def set_hook(
    api: Api, hooks: list[str], supplier: Who, url: str, secret: str = SECRET
) -> dict[str, Any]:
    assert supplier.supplier_id
    hooks.append(supplier.supplier_id)
    body = {"url": url, "secret": secret}
    r = await api.call("PUT", f"/admin/suppliers/{supplier.supplier_id}/webhook", api.admin, body)
    assert r.status_code in (200, 201), r.text
    answer: dict[str, Any] = r.json()
    return answer


@contextlib.asynccontextmanager
async def dispatchers(stack: Stack, n: int = 1, **kwargs: Any) -> AsyncIterator[list[Dispatcher]]:
    api = stack.api
    settings = api.settings.model_copy(
        update={
            "webhook_backoff": timedelta(seconds=0.3),
            "webhook_backoff_max": timedelta(seconds=1),
            "webhook_poll_interval": timedelta(seconds=0.05),
            "webhook_timeout": timedelta(seconds=5),
        }
    )
    running = [
        Dispatcher(api.sessions, settings, stack.env.client, task_queue=stack.task_queue, **kwargs)
        for _ in range(n)
    ]
    tasks = [asyncio.create_task(d.run()) for d in running]

    async def started() -> bool:
        # The first dispatcher on a database starts its cursor at the newest order_log row:
        # orders made before that would not be sent.
        return bool(
            await api.scalar(select(WebhookCursor.last_id).where(WebhookCursor.name == CURSOR))
            is not None
        )

    try:
        await eventually(started, what="dispatcher cursor")
        yield running
    finally:
        for d in running:
            d.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


async def order_for(api: Api, customer: Who, *suppliers: Who) -> dict[str, Any]:
    """A paid order with one product of each supplier."""
    skus = [await api.product(s) for s in suppliers]
    order: dict[str, Any] = await api.paid_order(customer, [(sku, 1) for sku in skus])
    return order


def so_of(order: dict[str, Any], supplier: Who) -> dict[str, Any]:
    found: dict[str, Any] = next(
        so for so in order["supplier_orders"] if so["supplier_id"] == supplier.supplier_id
    )
    return found


async def received(
    rec: Receiver, hook: str, n: int, what: str, timeout: float = 20
) -> list[Received]:
    async def probe() -> list[Received] | None:
        got = rec.at(hook)
        return got if len(got) >= n else None

    return await eventually(probe, timeout, what)


# "Nothing more will arrive", proved rather than slept for, in two steps:
#
# 1. `derived` (dispatchers running): the persisted cursor has passed every order_log row of
#    the orders. The cursor moves past rows only after their webhook_events were inserted and
#    signalled (starter/webhooks.py, Dispatcher.derive), so every event these rows make
#    exists by then; stopping the dispatchers (leaving `dispatchers()`) waits for the round in
#    progress, so no signal is sent after that.
# 2. `drained` (dispatchers stopped): each supplier order's delivery workflow is closed, or
#    running with no pending workflow task (every signal it got is handled) and no pending
#    activity. Its only sender is the `deliver_webhook` activity it runs for a queued delivery
#    (workflows/webhook_delivery.py), one at a time, so with no signal to come it sends nothing
#    more. An endpoint is only ever called for a webhook_events row of its supplier
#    (activities/webhooks.py).


async def derived(api: Api, *order_nos: str) -> None:
    """Wait until the dispatchers' cursor has passed every order_log row of `order_nos`."""
    newest = await api.scalar(select(func.max(OrderLog.id)).where(OrderLog.order_no.in_(order_nos)))
    assert newest is not None

    async def passed() -> bool:
        cursor = await api.scalar(select(WebhookCursor.last_id).where(WebhookCursor.name == CURSOR))
        return cursor is not None and cursor >= newest

    await eventually(passed, what=f"the webhook cursor past order_log row {newest}")


async def drained(stack: Stack, *so_ids: str) -> None:
    """Wait until the delivery workflow of each supplier order has nothing left to send."""
    for so_id in so_ids:
        handle = stack.env.client.get_workflow_handle(delivery_workflow_id(so_id))
        await eventually(partial(_idle, handle), what=f"the delivery workflow of {so_id} idle")


async def _idle(handle: WorkflowHandle[Any, Any]) -> bool:
    described = await handle.describe()
    if described.status != WorkflowExecutionStatus.RUNNING:
        return True
    raw = described.raw_description
    return not raw.pending_activities and not raw.HasField("pending_workflow_task")


async def test_a_paid_order_reaches_its_suppliers_signed(
    api: Api, stack: Stack, receiver: Receiver, hooks: list[str]
) -> None:
    s1, s2, bystander = api.supplier(), api.supplier(), api.supplier()
    for s in (s1, s2, bystander):
        assert s.supplier_id
        await set_hook(api, hooks, s, receiver.endpoint(s.supplier_id))
    customer = await api.customer(coins="3.00")
    async with dispatchers(stack):
        order = await order_for(api, customer, s1, s2)
        await received(receiver, str(s1.supplier_id), 1, "s1's paid event")
        await received(receiver, str(s2.supplier_id), 1, "s2's paid event")
        await derived(api, order["order_no"])
    # Anything else (a second attempt, another event, one for the bystander) is sent by now.
    await drained(stack, *(so["id"] for so in order["supplier_orders"]))
    assert await api.count(WebhookEvent, WebhookEvent.supplier_id == bystander.supplier_id) == 0

    for s in (s1, s2):
        [got] = receiver.at(str(s.supplier_id))
        # The signature verifies over the raw body, and only over it.
        signature = got.headers["x-orders-signature"]
        assert signature.startswith("t=") and ",v1=" in signature
        assert verify(signature, got.body, SECRET)
        assert not verify(signature, got.body.replace(b'"qty":1', b'"qty":9'), SECRET)
        assert not verify(signature, got.body, "another-secret-0123456789")
        event = got.event
        assert set(event) == {"id", "type", "created_at", "data"}
        assert got.headers["x-orders-event-id"] == event["id"]
        assert got.headers["content-type"] == "application/json"
        assert event["type"] == "supplier_order.paid"
        data = event["data"]
        mine = so_of(order, s)
        assert data["order_no"] == order["order_no"]
        assert data["supplier_order_id"] == mine["id"]
        assert data["supplier_id"] == s.supplier_id
        assert [i["item_id"] for i in data["items"]] == [
            i["item_id"] for sub in mine["sub_orders"] for i in sub["items"]
        ]
        assert data["items"][0]["qty"] == 1 and data["items"][0]["price"] == "10.00"
        assert data["receiver"]["name"] == "Alice" and data["receiver"]["phone"]
        # Never the customer's account or coins.
        assert customer.sub.encode() not in got.body
        assert b"coin" not in got.body
    assert receiver.at(str(bystander.supplier_id)) == []

    page = await api.ok("GET", f"/admin/suppliers/{s1.supplier_id}/deliveries", api.admin)
    [attempt] = page["items"]
    assert attempt["event_id"] == receiver.at(str(s1.supplier_id))[0].event["id"]
    assert attempt["type"] == "supplier_order.paid"
    assert (attempt["attempt"], attempt["status_code"], attempt["error"]) == (1, 200, None)
    assert attempt["event_state"] == "delivered" and page["next_cursor"] is None


async def test_a_failing_endpoint_gets_the_same_event_until_it_answers_2xx(
    api: Api, stack: Stack, receiver: Receiver, hooks: list[str]
) -> None:
    supplier = api.supplier()
    answers = iter([500, 500])
    url = receiver.endpoint("flaky", lambda _got: next(answers, 200))
    await set_hook(api, hooks, supplier, url)
    customer = await api.customer()
    async with dispatchers(stack):
        order = await order_for(api, customer, supplier)
        got = await received(receiver, "flaky", 3, "three attempts")
        await derived(api, order["order_no"])
    # A 2xx ends the retries: the attempt activity is over and nothing else is queued.
    await drained(stack, so_of(order, supplier)["id"])
    assert len(receiver.at("flaky")) == 3
    ids = {r.headers["x-orders-event-id"] for r in got}
    assert len(ids) == 1 and {r.event["id"] for r in got} == ids
    assert {r.body for r in got} == {got[0].body}  # the same body every time
    assert all(verify(r.headers["x-orders-signature"], r.body, SECRET) for r in got)
    assert got[0].event["data"]["order_no"] == order["order_no"]

    page = await api.ok(
        "GET", f"/admin/suppliers/{supplier.supplier_id}/deliveries?limit=2", api.admin
    )
    assert [(a["attempt"], a["status_code"]) for a in page["items"]] == [(3, 200), (2, 500)]
    assert page["items"][1]["error"] == "answered HTTP 500"
    older = await api.ok(
        "GET",
        f"/admin/suppliers/{supplier.supplier_id}/deliveries?limit=2&cursor={page['next_cursor']}",
        api.admin,
    )
    assert [(a["attempt"], a["status_code"]) for a in older["items"]] == [(1, 500)]
    assert older["next_cursor"] is None
    assert {a["event_id"] for a in page["items"] + older["items"]} == ids
    assert all(a["event_state"] == "delivered" for a in page["items"] + older["items"])

    # Temporal delivered it: the supplier order's delivery workflow, listed by OrderNo and
    # SupplierId only (no personal data in the visibility store).
    [event_id] = ids
    so_id = got[0].event["data"]["supplier_order_id"]
    described = await stack.env.client.get_workflow_handle(f"webhook-{so_id}").describe()
    assert described.workflow_type == "WebhookDeliveryWorkflow"
    custom = set(described.search_attributes) - {"BuildIds"}  # the server's own
    assert custom == {"OrderNo", "SupplierId"}
    assert described.search_attributes["OrderNo"] == [order["order_no"]]

    # Redeliver: the same event once more, a fourth attempt.
    redo = f"/admin/suppliers/{supplier.supplier_id}/deliveries/{event_id}/redeliver"
    again = await api.ok("POST", redo, api.admin, expect=202)
    assert (again["event_id"], again["state"]) == (event_id, "pending")
    [*_, fourth] = await received(receiver, "flaky", 4, "the redelivery")
    assert fourth.headers["x-orders-event-id"] == event_id and fourth.body == got[0].body
    assert verify(fourth.headers["x-orders-signature"], fourth.body, SECRET)

    async def redelivered() -> list[Any] | None:
        page = await api.ok("GET", f"/admin/suppliers/{supplier.supplier_id}/deliveries", api.admin)
        newest = page["items"][0]
        return (
            page["items"]
            if newest["attempt"] == 4 and newest["event_state"] == "delivered"
            else None
        )

    items = await eventually(redelivered, what="the fourth attempt recorded")
    assert [(a["attempt"], a["status_code"]) for a in items] == [
        (4, 200),
        (3, 200),
        (2, 500),
        (1, 500),
    ]
    r = await api.call(
        "POST", f"/admin/suppliers/{supplier.supplier_id}/deliveries/evt_nope/redeliver", api.admin
    )
    assert r.status_code == 404


async def test_events_of_one_supplier_order_wait_for_the_one_being_retried(
    api: Api, stack: Stack, receiver: Receiver, hooks: list[str]
) -> None:
    supplier = api.supplier()
    customer = await api.customer()
    stuck: set[str] = set()  # order numbers whose paid event the endpoint refuses, for now

    def decide(got: Received) -> int:
        event = got.event
        if event["type"] == "supplier_order.paid" and event["data"]["order_no"] in stuck:
            return 503
        return 200

    await set_hook(api, hooks, supplier, receiver.endpoint("ordered", decide))
    async with dispatchers(stack):
        first = await api.place(customer, [(await api.product(supplier), 1)])
        stuck.add(first["order_no"])
        await api.ok("POST", f"/orders/{first['order_no']}/pay", customer, expect=202)
        await received(receiver, "ordered", 2, "the paid event failing twice")
        so_id = f"{first['order_no']}-{supplier.supplier_id}"
        await api.wait_order(
            customer, first["order_no"], lambda o: o["status"] == "PAID", "first order paid"
        )
        await api.ok("POST", f"/supplier-orders/{so_id}/remind", customer)

        async def reminder_made() -> bool:
            return bool(
                await api.scalar(
                    select(WebhookEvent.id).where(
                        WebhookEvent.supplier_order_id == so_id,
                        WebhookEvent.type == "supplier_order.reminded",
                    )
                )
            )

        await eventually(reminder_made, what="the reminder's event")
        # Another order of the same supplier is not held up by this one.
        second = await order_for(api, customer, supplier)
        await eventually(
            lambda: _has(receiver, "ordered", second["order_no"], "supplier_order.paid"),
            what="the other order's paid event",
        )
        failures = len(receiver.at("ordered"))
        await received(receiver, "ordered", failures + 2, "more retries of the stuck event")
        types = [r.event["type"] for r in receiver.at("ordered") if _of(r, first["order_no"])]
        assert set(types) == {"supplier_order.paid"}, types  # the reminder waits its turn

        stuck.clear()
        await eventually(
            lambda: _has(receiver, "ordered", first["order_no"], "supplier_order.reminded"),
            what="the reminder after the paid event",
        )
    mine = [r.event for r in receiver.at("ordered") if _of(r, first["order_no"])]
    assert [e["type"] for e in mine][-2:] == ["supplier_order.paid", "supplier_order.reminded"]
    assert len({e["id"] for e in mine if e["type"] == "supplier_order.paid"}) == 1
    assert mine[-1]["data"]["reminded_at"]


def _of(got: Received, order_no: str) -> bool:
    return bool(got.event["data"]["order_no"] == order_no)


async def _has(receiver: Receiver, hook: str, order_no: str, type_: str) -> bool:
    return any(r.event["type"] == type_ and _of(r, order_no) for r in receiver.at(hook))


async def test_two_dispatchers_deliver_each_event_once(
    api: Api, stack: Stack, receiver: Receiver, hooks: list[str]
) -> None:
    suppliers = [api.supplier() for _ in range(3)]
    for s in suppliers:
        await set_hook(api, hooks, s, receiver.endpoint("shared"))
    customer = await api.customer()
    async with dispatchers(stack, n=2):
        orders = await asyncio.gather(*(order_for(api, customer, *suppliers) for _ in range(3)))
        await received(receiver, "shared", 9, "nine paid events")
        await derived(api, *(o["order_no"] for o in orders))
    # Both dispatchers stopped, every delivery workflow idle: a duplicate would be here by now.
    await drained(stack, *(so["id"] for o in orders for so in o["supplier_orders"]))
    ids = [r.headers["x-orders-event-id"] for r in receiver.at("shared")]
    assert len(ids) == 9 and len(set(ids)) == 9, ids
    expected = {(o["order_no"], so["id"]) for o in orders for so in o["supplier_orders"]}
    assert {
        (r.event["data"]["order_no"], r.event["data"]["supplier_order_id"])
        for r in receiver.at("shared")
    } == expected
    for s in suppliers:
        page = await api.ok("GET", f"/admin/suppliers/{s.supplier_id}/deliveries", api.admin)
        assert [a["attempt"] for a in page["items"]] == [1, 1, 1]


async def test_cancel_remind_and_after_sales_have_their_types(
    api: Api, stack: Stack, receiver: Receiver, hooks: list[str]
) -> None:
    supplier = api.supplier()
    await set_hook(api, hooks, supplier, receiver.endpoint("types"))
    customer = await api.customer()
    async with dispatchers(stack):
        cancelled = await order_for(api, customer, supplier)
        so_id = so_of(cancelled, supplier)["id"]
        await api.ok("POST", f"/supplier-orders/{so_id}/remind", customer)
        await api.ok("POST", f"/supplier-orders/{so_id}/cancel", customer)

        shipped = await order_for(api, customer, supplier)
        so = so_of(shipped, supplier)
        item_id = so["sub_orders"][0]["items"][0]["item_id"]
        await api.ok(
            "POST",
            f"/supplier/orders/{so['id']}/shipments",
            supplier,
            {
                "carrier": "sf",
                "tracking_no": uid("T"),
                "method": "express",
                "items": [{"item_id": item_id, "qty": 1}],
            },
            expect=201,
        )
        request = await api.ok(
            "POST",
            f"/supplier-orders/{so['id']}/after-sales",
            customer,
            {"item_id": item_id, "qty": 1, "type": "refund_only", "reason": "broken"},
            expect=201,
        )
        await eventually(
            lambda: _has(receiver, "types", shipped["order_no"], "after_sale.requested"),
            what="the after-sales request's event",
        )
        await eventually(
            lambda: _has(receiver, "types", cancelled["order_no"], "supplier_order.cancelled"),
            what="the cancel's event",
        )
    first = [r.event for r in receiver.at("types") if _of(r, cancelled["order_no"])]
    assert [e["type"] for e in first] == [
        "supplier_order.paid",
        "supplier_order.reminded",
        "supplier_order.cancelled",
    ]
    assert first[-1]["data"]["cancelled_by"] == "customer"
    assert first[-1]["data"]["reason"] == "USER_CANCELLED"
    second = [r.event for r in receiver.at("types") if _of(r, shipped["order_no"])]
    assert [e["type"] for e in second] == ["supplier_order.paid", "after_sale.requested"]
    after_sale = second[-1]["data"]["after_sale"]
    assert after_sale["id"] == request["id"]
    assert (after_sale["item_id"], after_sale["qty"], after_sale["type"]) == (
        item_id,
        1,
        "refund_only",
    )
    assert after_sale["reason"] == "broken"
    assert len({e["id"] for e in first + second}) == 5


async def test_endpoint_admin_private_targets_and_rotation(
    api: Api, stack: Stack, receiver: Receiver, hooks: list[str]
) -> None:
    supplier = api.supplier()
    path = f"/admin/suppliers/{supplier.supplier_id}/webhook"
    assert (await api.call("GET", path, api.admin)).status_code == 404
    r = await api.call("PUT", path, supplier, {"url": "https://example.com/h", "secret": SECRET})
    assert r.status_code == 403
    for bad in ("ftp://example.com/h", "https://user:pw@example.com/h", "not a url"):
        r = await api.call("PUT", path, api.admin, {"url": bad, "secret": SECRET})
        assert r.status_code == 422, (bad, r.text)
    r = await api.call("PUT", path, api.admin, {"url": receiver.endpoint("rot"), "secret": "short"})
    assert r.status_code == 422

    created = await set_hook(
        api, hooks, supplier, receiver.endpoint("rot"), "old-secret-0123456789"
    )
    assert created["url"] == receiver.endpoint("rot")
    assert created["previous_secret_until"] is None
    read = await api.ok("GET", path, api.admin)
    assert "secret" not in json.dumps(read).replace("previous_secret_until", "")
    rotated = await set_hook(
        api, hooks, supplier, receiver.endpoint("rot"), "new-secret-0123456789"
    )
    assert rotated["previous_secret_until"] is not None

    customer = await api.customer()
    async with dispatchers(stack):
        await order_for(api, customer, supplier)
        [got] = await received(receiver, "rot", 1, "the paid event")
    header = got.headers["x-orders-signature"]
    assert header.count("v1=") == 2  # both secrets sign while the old one is still valid
    assert verify(header, got.body, "new-secret-0123456789")
    assert verify(header, got.body, "old-secret-0123456789")

    # Without ORDERS_WEBHOOK_ALLOW_PRIVATE, loopback and private targets are refused.
    strict = api.settings.model_copy(update={"webhook_allow_private": False})
    running = await serve(create_app(strict))
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            strict_api = Api(http, strict, stack.sessions)
            for url in (
                receiver.endpoint("rot"),
                "http://localhost:9/h",
                "http://10.0.0.1/h",
                "http://[::1]:8080/h",
                "http://169.254.169.254/latest",
                "https://192.168.1.20/h",
            ):
                r = await strict_api.call(
                    "PUT", path, strict_api.admin, {"url": url, "secret": SECRET}
                )
                assert r.status_code == 422, (url, r.text)
                assert (
                    "private" in r.json()["error"]["message"]
                    or "loopback" in r.json()["error"]["message"]
                )
    finally:
        await stop(running)

    assert (await api.call("DELETE", path, api.admin)).status_code == 204
    assert (await api.call("GET", path, api.admin)).status_code == 404
    assert (await api.call("DELETE", path, api.admin)).status_code == 404
