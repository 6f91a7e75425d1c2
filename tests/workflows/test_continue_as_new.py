"""A long-lived supplier order continues as new and keeps its whole state."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from temporalio.client import WorkflowHandle

from db.tables import TrackingEventRow
from domain.messages import ConfirmReceipt, TrackingEvent
from domain.policy import Policy
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from workflows.supplier_order import SupplierOrderWorkflow


async def test_history_limit_continues_as_new_without_losing_state(shop: Shop) -> None:
    policy = Policy(continue_as_new_after_events=40)
    _, placement = await shop.paid_order([("tea-green", 2), ("cup-white", 1)], policy=policy)
    so = placement.plan.supplier_orders[0]
    child = await shop.child(so.id)
    await shop.ship_all(child, placement, so.id)
    first_run = (await child.describe()).run_id
    tracking_no = f"T1-{so.id}"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    latest: WorkflowHandle[Any, Any] = shop.client.get_workflow_handle(child.id)
    for n in range(12):
        await latest.signal(
            SupplierOrderWorkflow.tracking,
            TrackingEvent(
                event_id=f"scan-{n}",
                carrier="sf",
                tracking_no=tracking_no,
                lat=30.0 + n / 10,
                lon=120.0,
                at=start + timedelta(hours=n),
            ),
        )

        async def applied(n: int = n) -> bool:
            # Read-model probe, not a query: a query racing the run handover can stay
            # pending on the time-skipping server.
            async with shop.sessions() as s:
                count = await s.scalar(select(func.count()).select_from(TrackingEventRow))
            return count == n + 1

        # One workflow task per scan, so the history grows scan by scan.
        await eventually(applied, what=f"scan {n}")

    async def new_run() -> bool:
        desc = await shop.client.get_workflow_handle(child.id).describe()
        return desc.run_id != first_run

    await eventually(new_run, what="continue-as-new")
    # A resent scan is still recognised after the handover.
    await latest.signal(
        SupplierOrderWorkflow.tracking,
        TrackingEvent(
            event_id="scan-3", carrier="sf", tracking_no=tracking_no, lat=0, lon=0, at=start
        ),
    )
    snap = await latest.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
    assert snap.status == "PENDING_REVIEW"
    assert snap.packages[0].lat == 31.1  # the duplicate did not move the package back
    assert {i.status for i in snap.items} == {"SHIPPED"}
    await check_invariants(shop.sessions)
