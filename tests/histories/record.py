"""Record workflow histories for the replay tests: `python -m tests.histories.record [NAME...]`.

NAME picks scenarios (functions below) to re-record; none records them all.

Runs representative scenarios on the time-skipping server with the real worker
and a throwaway SQLite read model, and writes each workflow's history as JSON
next to this file. Re-record only when a change is *meant* to be incompatible;
otherwise guard the change with `workflow.patched` and keep the old histories.
"""

import asyncio
import contextlib
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from activities.webhooks import WebhookActivities
from db.session import create_all, make_engine, make_session_factory, write_session
from db.tables import SupplierWebhook, WebhookEvent
from domain.messages import (
    AfterSaleDecision,
    CancelOrder,
    CancelSupplierOrder,
    ConfirmReceipt,
    ReceiveReturn,
    RequestAfterSale,
    ReturnShipment,
    SubmitReview,
    TrackingEvent,
)
from domain.policy import Policy
from domain.states import Actor, AfterSaleType, OrderType
from domain.webhooks import WebhookPolicy
from starter.webhooks import signal_delivery
from tests.support.catalog import seed
from tests.support.shop import Shop
from tests.support.temporal import start_time_skipping_env
from worker import build_worker, workflow_runner
from workflows.after_sale import AfterSaleWorkflow
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

HERE = Path(__file__).parent
LINES = [("tea-green", 2), ("pot-clay", 1), ("cup-white", 3)]


async def save(handle: WorkflowHandle[Any, Any], name: str) -> None:
    history = await handle.fetch_history()
    data = json.loads(history.to_json())
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"recorded {name}: {len(history.events)} events")


async def lifecycle(shop: Shop) -> None:
    """Pay, ship (two packages, a scan), confirm/auto-confirm, review/auto-review."""
    handle, placement = await shop.paid_order(LINES, coins="5.00")
    s1, s2 = (so.id for so in placement.plan.supplier_orders)
    c1, c2 = await shop.child(s1), await shop.child(s2)
    items1 = placement.plan.supplier_order(s1).items
    from domain.messages import ShipItems, ShipLine

    await c1.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(
            carrier="sf", tracking_no="R1", items=[ShipLine(item_id=items1[0].item_id, qty=2)]
        ),
    )
    await c1.execute_update(
        SupplierOrderWorkflow.ship,
        ShipItems(
            carrier="sf", tracking_no="R2", items=[ShipLine(item_id=items1[1].item_id, qty=1)]
        ),
    )
    await c1.signal(
        SupplierOrderWorkflow.tracking,
        TrackingEvent(
            event_id="scan-1",
            carrier="sf",
            tracking_no="R1",
            lat=31.0,
            lon=121.0,
            at=placement.pay_deadline,
        ),
    )
    await c1.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    await c1.execute_update(SupplierOrderWorkflow.review, SubmitReview(rating=5, text="fine"))
    await shop.ship_all(c2, placement, s2)
    await shop.skip(timedelta(days=11))  # s2 auto-confirms
    await shop.skip(timedelta(days=16))  # s2 auto-reviews, windows close
    await handle.result()
    await save(handle, "order_lifecycle")
    await save(c1, "supplier_order_confirmed_reviewed")
    await save(c2, "supplier_order_auto_confirm_review")


async def scans(shop: Shop) -> None:
    """Two carrier scans while the auto-confirm timer runs (KEEP_TIMER_ON_SIGNALS: applied
    beside the wait, the timer runs on), auto-confirm at the shipment's deadline, review."""
    handle, placement = await shop.paid_order(LINES)
    s1, s2 = (so.id for so in placement.plan.supplier_orders)
    c1, c2 = await shop.child(s1), await shop.child(s2)
    await shop.ship_all(c1, placement, s1)
    for k in (1, 2):
        await c1.signal(
            SupplierOrderWorkflow.tracking,
            TrackingEvent(
                event_id=f"scan-{k}",
                carrier="sf",
                tracking_no=f"T1-{s1}",
                lat=31.0 - k,
                lon=121.0 - k,
                at=placement.pay_deadline + timedelta(hours=k),
            ),
        )
    await shop.skip(timedelta(days=11))  # s1 auto-confirms at the shipment's deadline
    await c1.execute_update(SupplierOrderWorkflow.review, SubmitReview(rating=5, text="ok"))
    await shop.ship_all(c2, placement, s2)
    await c2.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    await c2.execute_update(SupplierOrderWorkflow.review, SubmitReview(rating=4, text="fine"))
    await shop.skip(timedelta(days=16))  # after-sales windows close
    await handle.result()
    await save(c1, "supplier_order_scans_keep_timer")


async def timeout_and_cancels(shop: Shop) -> None:
    handle, _ = await shop.submit(LINES, policy=Policy(payment_timeout=timedelta(minutes=5)))
    await handle.result()
    await save(handle, "order_payment_timeout")
    handle, _ = await shop.submit(LINES)
    await handle.execute_update(OrderWorkflow.cancel, CancelOrder(actor_id="alice"))
    await handle.result()
    await save(handle, "order_customer_cancel")
    handle, placement = await shop.paid_order(LINES)
    for so in placement.plan.supplier_orders:
        child = await shop.child(so.id)
        await child.execute_update(
            SupplierOrderWorkflow.cancel,
            CancelSupplierOrder(actor=Actor.SUPPLIER, actor_id=so.supplier_id),
        )
    await handle.result()
    await save(handle, "order_all_supplier_cancelled")
    await save(await shop.child(placement.plan.supplier_orders[0].id), "supplier_order_cancelled")


async def after_sales(shop: Shop) -> None:
    handle, placement = await shop.paid_order([("tea-green", 2)])
    so = placement.plan.supplier_orders[0]
    child = await shop.child(so.id)
    await shop.ship_all(child, placement, so.id)
    ref = await child.execute_update(
        SupplierOrderWorkflow.request_after_sale,
        RequestAfterSale(
            item_id=so.items[0].item_id, qty=1, type=AfterSaleType.RETURN_REFUND, reason="chipped"
        ),
    )
    aftersale: WorkflowHandle[Any, Any] = shop.client.get_workflow_handle(f"aftersale-{ref.id}")
    shop.track(aftersale.id)
    await aftersale.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    await aftersale.execute_update(
        AfterSaleWorkflow.return_shipment, ReturnShipment(carrier="sf", tracking_no="RET1")
    )
    await aftersale.execute_update(AfterSaleWorkflow.receive_return, ReceiveReturn())
    await aftersale.result()
    await save(aftersale, "after_sale_return_refund")
    await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    await handle.result()
    await save(child, "supplier_order_with_after_sale")


async def after_sale_deadlines(shop: Shop) -> None:
    """An approved return never shipped back: closed by the system at its deadline."""
    _, placement = await shop.paid_order([("plate-blue", 1)])
    so = placement.plan.supplier_orders[0]
    child = await shop.child(so.id)
    await shop.ship_all(child, placement, so.id)
    ref = await child.execute_update(
        SupplierOrderWorkflow.request_after_sale,
        RequestAfterSale(
            item_id=so.items[0].item_id, qty=1, type=AfterSaleType.RETURN_REFUND, reason="wrong"
        ),
    )
    aftersale: WorkflowHandle[Any, Any] = shop.client.get_workflow_handle(f"aftersale-{ref.id}")
    shop.track(aftersale.id)
    await aftersale.execute_update(AfterSaleWorkflow.decide, AfterSaleDecision(approve=True))
    await shop.skip(Policy().after_sale_return_within + timedelta(hours=1))
    await aftersale.result()
    await save(aftersale, "after_sale_return_expired")


async def friend_pay(shop: Shop) -> None:
    """A friend_pay order paid by a friend (payer_id on the signal), a second friend's
    payment refunded as a duplicate, then both supplier orders cancelled (refunds to the
    friend who paid)."""
    handle, placement = await shop.submit(LINES, coins="2.00", order_type=OrderType.FRIEND_PAY)
    await shop.pay(handle, placement.plan.payable, payer_id="bob")
    await shop.order_status(placement.order_no, "PAID")
    await shop.pay(handle, placement.plan.payable, payer_id="carol")
    for so in placement.plan.supplier_orders:
        child = await shop.child(so.id)
        await child.execute_update(
            SupplierOrderWorkflow.cancel,
            CancelSupplierOrder(actor=Actor.SUPPLIER, actor_id=so.supplier_id),
        )
    await handle.result()
    await save(handle, "order_friend_pay_refunds")


async def rejected(shop: Shop) -> None:
    handle = await shop.start([("nope", 1)])
    from domain.messages import GetPlacement

    with contextlib.suppress(Exception):  # refused: that is the scenario
        await handle.execute_update(OrderWorkflow.placement, GetPlacement())
    await handle.result()
    await save(handle, "order_rejected")


async def webhook_delivery(shop: Shop) -> None:
    """One supplier order's three events: the first retried twice, the second given up
    (a one-minute window), the third signalled twice and delivered once."""
    now = datetime.now(UTC)
    so_id = "820000000000000001-s1"
    rows = [
        {
            "id": f"evt_{'abc'[i]}{'0' * 31}",
            "supplier_id": "s1",
            "supplier_order_id": so_id,
            "order_no": "820000000000000001",
            "log_id": 10 + i,
        }
        for i in range(3)
    ]
    async with write_session(shop.sessions) as s:
        s.add(
            SupplierWebhook(
                supplier_id="s1",
                url="https://erp.example.com/hook",
                secret="record-secret-0123456789",
                created_at=now,
                updated_at=now,
            )
        )
        for row in rows:
            s.add(
                WebhookEvent(
                    **row,
                    type="supplier_order.paid",
                    body="{}",
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    retry_until=now,
                    created_at=now,
                )
            )
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        eid = request.headers["X-Orders-Event-Id"]
        calls.append(eid)
        if eid == rows[1]["id"] or (eid == rows[0]["id"] and calls.count(eid) < 3):
            return httpx.Response(500)
        return httpx.Response(200)

    acts = WebhookActivities(shop.sessions, transport=httpx.MockTransport(answer))
    policy = WebhookPolicy(
        backoff_s=10, backoff_max_s=20, retry_for_s=60, timeout_s=10, allow_private=True
    )
    task_queue = f"record-hooks-{uuid.uuid4().hex[:6]}"
    async with Worker(
        shop.client,
        task_queue=task_queue,
        workflows=[WebhookDeliveryWorkflow],
        activities=[acts.deliver_webhook, acts.give_up_webhook],
        workflow_runner=workflow_runner(),
    ):
        for row in [*rows, rows[2]]:
            handle = await signal_delivery(shop.client, task_queue, policy, row)
        await handle.result()
    await save(handle, "webhook_delivery")


SCENARIOS: list[Callable[[Shop], Awaitable[None]]] = [
    lifecycle,
    scans,
    timeout_and_cancels,
    after_sales,
    after_sale_deadlines,
    rejected,
    friend_pay,
    webhook_delivery,
]


async def main(names: list[str]) -> None:
    unknown = set(names) - {s.__name__ for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if not names or s.__name__ in names]
    env = await start_time_skipping_env()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp}/record.db")
        await create_all(engine)
        sessions = make_session_factory(engine)
        await seed(sessions)
        task_queue = f"record-{uuid.uuid4().hex[:6]}"
        async with build_worker(env.client, task_queue, sessions):
            shop = Shop(env, sessions, task_queue)
            for scenario in chosen:
                await scenario(shop)
            await shop.close()
        await engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
