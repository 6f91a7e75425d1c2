"""Payment and carrier webhooks: HMAC on the raw body, de-duplication, nothing dropped."""

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from db.tables import Payment, Refund
from starter.api.temporal import order_workflow_id
from starter.security import sign_body
from tests.api.conftest import Stack
from tests.api.helpers import Api, Who, eventually, footprint, uid


@pytest.fixture
async def unpaid(api: Api) -> tuple[Who, str, dict[str, Any]]:
    supplier = api.supplier()
    sku = await api.product(supplier, price="15.00")
    customer = await api.customer()
    return customer, sku, await api.place(customer, [(sku, 2)])


def payment(order: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "event_id": uid("evt-"),
        "order_no": order["order_no"],
        "status": "succeeded",
        "amount": order["payable"],
        "method": "card",
        **over,
    }


async def signals(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Names of the signals in the workflow's history, in order."""
    history = await handle.fetch_history()
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


async def test_bad_or_missing_signature_is_401_and_signals_nothing(
    api: Api, stack: Stack, unpaid: tuple[Who, str, dict[str, Any]]
) -> None:
    customer, sku, order = unpaid
    body = payment(order)
    raw = json.dumps(body).encode()
    handle = stack.env.client.get_workflow_handle(order_workflow_id(order["order_no"]))
    assert await signals(handle) == []
    before = await footprint(api, customer, [sku])
    attempts = [
        {},
        {"X-Signature": ""},
        {"X-Signature": "deadbeef"},
        {"X-Signature": "sha256=" + "0" * 64},
    ]
    for headers in attempts:
        r = await api.http.post(
            "/webhooks/payment",
            content=raw,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "invalid_signature"
    # signed with another secret, or a body changed after signing
    r = await api.signed("/webhooks/payment", body, secret="not-the-secret")
    assert r.status_code == 401

    tampered = json.dumps({**body, "amount": "0.01"}).encode()
    r = await api.http.post(
        "/webhooks/payment",
        content=tampered,
        headers={"X-Signature": sign_body(api.settings.webhook_secret, raw)},
    )
    assert r.status_code == 401
    r = await api.signed("/webhooks/carrier", {"event_id": "x"}, secret="wrong")
    assert r.status_code == 401
    # The API signals synchronously (the signal is in the history before it answers), so
    # a wrongly accepted webhook would show here already: no waiting needed.
    assert await signals(handle) == []
    assert await footprint(api, customer, [sku]) == before
    assert (await api.order(customer, order["order_no"]))["status"] == "PENDING_PAYMENT"
    assert await api.count(Payment, Payment.event_id == body["event_id"]) == 0

    # The same body correctly signed is signalled, and the check above would have seen it.
    r = await api.signed("/webhooks/payment", body)
    assert r.status_code == 202 and r.json()["outcome"] == "signalled", r.text
    assert await signals(handle) == ["payment"]


async def test_malformed_bodies_are_422(api: Api, unpaid: tuple[Who, str, dict[str, Any]]) -> None:
    customer, sku, order = unpaid
    before = await footprint(api, customer, [sku])
    bad: list[bytes] = [
        b"{not json",
        b"[]",
        json.dumps({**payment(order), "status": "maybe"}).encode(),
        json.dumps({k: v for k, v in payment(order).items() if k != "event_id"}).encode(),
        json.dumps({**payment(order), "amount": "ten"}).encode(),
    ]
    for raw in bad:
        r = await api.signed("/webhooks/payment", None, raw=raw)
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["error"]["code"] == "invalid_input"
    scan = {
        "event_id": "e",
        "carrier": "sf",
        "tracking_no": "T",
        "lat": 95.0,
        "lon": 0,
        "at": "2026-01-01T00:00:00Z",
    }
    r = await api.signed("/webhooks/carrier", scan)
    assert r.status_code == 422
    r = await api.signed("/webhooks/payment", payment(order, order_no="999999"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.signed("/webhooks/carrier", {**scan, "lat": 1.0, "tracking_no": "NOPE"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert await footprint(api, customer, [sku]) == before


async def test_replayed_event_is_applied_once(
    api: Api, unpaid: tuple[Who, str, dict[str, Any]]
) -> None:
    customer, _, order = unpaid
    order_no = order["order_no"]
    body = payment(order)
    # delivered three times, two of them at once
    first = await asyncio.gather(*(api.signed("/webhooks/payment", body) for _ in range(2)))
    assert [r.status_code for r in first] == [202, 202]
    paid = await api.wait_order(customer, order_no, lambda o: o["status"] == "PAID", "paid")
    again = await api.signed("/webhooks/payment", body)
    assert again.status_code == 202 and again.json()["outcome"] == "duplicate"
    assert paid["paid"] == order["payable"]
    assert await api.count(Payment, Payment.order_no == order_no) == 1
    assert await api.count(Refund, Refund.order_no == order_no) == 0

    # A second, different payment for a paid order is kept and refunded (never dropped).
    extra = payment(order)
    r = await api.signed("/webhooks/payment", extra)
    assert r.status_code == 202
    row = await eventually(
        lambda: api.scalar(select(Payment).where(Payment.event_id == extra["event_id"])),
        what="duplicate payment recorded",
    )
    assert row.outcome == "refunded_duplicate"
    refund = await eventually(
        lambda: api.scalar(
            select(Refund).where(
                Refund.payment_event_id == extra["event_id"], Refund.status == "succeeded"
            )
        ),
        what="refund of the duplicate payment",
    )
    assert refund.amount == Decimal(order["payable"])
    final = await api.order(customer, order_no)
    # Both payments were received and the second went back (DESIGN.md §11).
    payable = Decimal(order["payable"])
    assert Decimal(final["paid"]) == 2 * payable and Decimal(final["refunded"]) == payable
    assert final["status"] == "PAID"


async def test_wrong_amount_failure_and_late_payment(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, price="15.00")
    customer = await api.customer()

    # A payment of the wrong amount is refunded; the order keeps waiting.
    order = await api.place(customer, [(sku, 1)])
    wrong = payment(order, amount="1.00")
    assert (await api.signed("/webhooks/payment", wrong)).status_code == 202
    row = await eventually(
        lambda: api.scalar(select(Payment).where(Payment.event_id == wrong["event_id"])),
        what="mismatched payment recorded",
    )
    assert row.outcome == "refunded_mismatch"
    assert (await api.order(customer, order["order_no"]))["status"] == "PENDING_PAYMENT"

    # A failed payment closes the order.
    failed = payment(order, status="failed")
    assert (await api.signed("/webhooks/payment", failed)).status_code == 202
    closed = await api.wait_order(
        customer, order["order_no"], lambda o: o["status"] == "CLOSED", "payment failure"
    )
    assert closed["close_reason"] == "PAYMENT_FAILED"

    # Money arriving after a cancel is recorded and refunded by the (still listening) order.
    other = await api.place(customer, [(sku, 1)])
    await api.ok("POST", f"/orders/{other['order_no']}/cancel", customer)
    late = payment(other)
    r = await api.signed("/webhooks/payment", late)
    assert r.status_code == 202 and r.json()["outcome"] == "signalled"
    row = await eventually(
        lambda: api.scalar(select(Payment).where(Payment.event_id == late["event_id"])),
        what="late payment recorded",
    )
    assert row.outcome == "refunded_late"
    await eventually(
        lambda: api.scalar(
            select(Refund).where(
                Refund.payment_event_id == late["event_id"], Refund.status == "succeeded"
            )
        ),
        what="late payment refunded",
    )
