"""Carrier scans no longer restart the supplier order's deadline timer (KEEP_TIMER_ON_SIGNALS).

Before, each scan woke the main loop, which cancelled the auto-confirm timer and started a new
one at the same deadline: one more timer (a billable action) and two more events per scan. Now a
scan is applied beside the wait; the history shows it. Histories recorded before still replay
the old way (tests/workflows/test_replay.py, supplier_order_confirmed_reviewed has a scan).
"""

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from db.tables import TrackingEventRow
from domain.messages import TrackingEvent
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from workflows.supplier_order import KEEP_TIMER_ON_SIGNALS, SupplierOrderWorkflow

LINES = [("tea-green", 2), ("pot-clay", 1), ("cup-white", 3)]


async def events(handle: WorkflowHandle[Any, Any]) -> list[Any]:
    return list((await handle.fetch_history()).events)


def marker_names(history: list[Any]) -> list[str]:
    return [
        e.marker_recorded_event_attributes.marker_name
        for e in history
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def test_scans_keep_the_auto_confirm_timer_running(shop: Shop) -> None:
    _, placement = await shop.paid_order(LINES)
    sid = f"{placement.order_no}-s1"
    child: WorkflowHandle[SupplierOrderWorkflow, Any] = await shop.child(sid)
    await shop.ship_all(child, placement, sid)
    shipped = await child.query(SupplierOrderWorkflow.snapshot)
    due = shipped.deadlines.auto_confirm_at
    assert due is not None
    tracking_no = shipped.packages[0].tracking_no
    for k, (lat, lon) in enumerate([(31.2, 121.5), (30.3, 120.2)], 1):
        await child.signal(
            SupplierOrderWorkflow.tracking,
            TrackingEvent(
                event_id=f"scan-{k}",
                carrier="sf",
                tracking_no=tracking_no,
                lat=lat,
                lon=lon,
                at=shipped.packages[0].shipped_at + timedelta(hours=k),
            ),
        )

    async def scans_recorded() -> bool:
        async with shop.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(TrackingEventRow))
        return n == 2

    await eventually(scans_recorded, what="both scans in the read model")
    snap = await child.query(SupplierOrderWorkflow.snapshot)
    assert (snap.packages[0].lat, snap.packages[0].lon) == (30.3, 120.2)
    assert snap.deadlines.auto_confirm_at == due  # the scans moved no deadline

    history = await events(child)
    kinds = [e.event_type for e in history]
    # One auto-confirm timer, still running: the scans neither cancelled nor restarted it.
    assert kinds.count(EventType.EVENT_TYPE_TIMER_STARTED) == 1
    assert EventType.EVENT_TYPE_TIMER_CANCELED not in kinds
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 2
    assert marker_names(history).count("core_local_activity") == 3  # ship + 2 scans
    assert marker_names(history).count("core_patch") == 1
    patch = next(
        e
        for e in history
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and "TemporalChangeVersion"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    )
    assert KEEP_TIMER_ON_SIGNALS.encode() in (
        patch.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields[
            "TemporalChangeVersion"
        ].data
    )

    # The same timer still fires at the deadline the shipment set.
    await shop.skip(timedelta(days=10, hours=1))
    row = await shop.supplier_order_row(sid)
    assert row is not None and row.received_at is not None
    assert row.received_at.replace(tzinfo=None) == due.replace(tzinfo=None)
    kinds = [e.event_type for e in await events(child)]
    assert kinds.count(EventType.EVENT_TYPE_TIMER_FIRED) == 1
    await check_invariants(shop.sessions)


async def test_a_run_without_scans_writes_no_patch_marker(shop: Shop) -> None:
    _, placement = await shop.paid_order(LINES)
    sid = f"{placement.order_no}-s2"
    child: WorkflowHandle[SupplierOrderWorkflow, Any] = await shop.child(sid)
    await shop.ship_all(child, placement, sid)
    await shop.skip(timedelta(days=10, hours=1))  # auto-confirm
    history = await events(child)
    assert "core_patch" not in marker_names(history)
    assert not any(
        e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and "TemporalChangeVersion"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in history
    )
