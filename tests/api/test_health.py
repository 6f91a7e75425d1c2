"""Outages: Temporal or the database unreachable → 503 with a code, never a stack trace."""

import httpx

from db.tables import Order
from starter.api.app import create_app
from tests.api.conftest import Stack, serve, stop
from tests.api.helpers import Api


async def test_healthz_ok_when_everything_answers(api: Api) -> None:
    r = await api.http.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_temporal_down(no_temporal: Api, api: Api) -> None:
    down = no_temporal
    r = await down.http.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["database"] == "ok" and body["temporal"].startswith("unavailable")
    assert body["error"]["code"] == "unavailable" and "temporal" in body["error"]["message"]

    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()
    # Commands need Temporal: 503 temporal_unavailable, nothing written.
    r = await down.submit(customer, [(sku, 1)])
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "temporal_unavailable"
    assert "Traceback" not in r.text
    assert await down.count(Order, Order.customer_id == customer.sub) == 0
    # Bad input is still refused up front, without Temporal.
    r = await down.submit(customer, [("no-such-sku", 1)])
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_sku"
    # Reads come from the database and keep working.
    order = await api.place(customer, [(sku, 1)])
    r = await down.call("GET", f"/orders/{order['order_no']}", customer)
    assert r.status_code == 200 and r.json()["status"] == "PENDING_PAYMENT"
    assert r.json()["supplier_orders"][0]["deadlines"]["source"] == "database"
    assert (await down.call("GET", "/orders", customer)).status_code == 200
    r = await down.call("POST", f"/orders/{order['order_no']}/pay", customer)
    assert r.status_code == 503 and r.json()["error"]["code"] == "temporal_unavailable"
    # A keyed submit that hit the outage can be retried with the same key once Temporal is back.
    r = await down.submit(customer, [(sku, 1)], key="outage-1")
    assert r.status_code == 503
    retried = await api.submit(customer, [(sku, 1)], key="outage-1")
    assert retried.status_code == 201, retried.text


async def test_database_down(stack: Stack, tmp_path: object) -> None:
    settings = stack.api.settings.model_copy(
        update={"database_url": "sqlite+aiosqlite:////nonexistent-dir/for/orders.db"}
    )
    running = await serve(create_app(settings), healthy=False)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            r = await http.get("/healthz")
            assert r.status_code == 503
            assert r.json()["database"].startswith("unavailable")
            assert r.json()["temporal"] == "ok"
            r = await http.get("/products/anything")
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "database_unavailable"
    finally:
        await stop(running)


async def test_readyz_names_each_check_and_turns_503_while_draining_livez_stays_200(
    api: Api, no_temporal: Api
) -> None:
    r = await api.http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "database": "ok", "temporal": "ok", "draining": False}

    r = await no_temporal.http.get("/readyz")
    assert r.status_code == 503
    assert (await no_temporal.http.get("/livez")).status_code == 200  # alive all the same
    body = r.json()
    assert body["status"] == "unavailable" and body["draining"] is False
    assert body["database"] == "ok" and body["temporal"].startswith("unavailable")
    assert body["error"]["code"] == "unavailable" and "temporal" in body["error"]["message"]

    # Draining (what SIGTERM does, starter/api/drain.py): not ready, still alive and serving.
    app = create_app(api.settings)
    running = await serve(app)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            assert (await http.get("/readyz")).status_code == 200
            app.state.drain.start()
            r = await http.get("/readyz")
            assert r.status_code == 503
            assert r.json()["status"] == "draining" and r.json()["draining"] is True
            assert r.json()["error"]["message"] == "draining: shutting down"
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/livez")).json() == {"status": "alive"}
            assert (await http.get("/products/no-such-sku")).status_code == 404
    finally:
        await stop(running)
