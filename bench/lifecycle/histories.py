"""What one recorded history holds, counted by event type: one empty workflow against one
lifecycle's three workflows; and what those histories cost in Temporal Cloud billable actions
and state transitions (bench.lifecycle.cost)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.lifecycle.cost import LOCAL_ACTIVITY_MARKER, PATCH_MARKER, actions, state_transitions
from bench.lifecycle.shop import Shop
from db.tables import SupplierOrder
from workflows.order import supplier_order_workflow_id

COUNTED = {
    "events": None,
    "workflow_tasks": EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    "activities": EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    "local_activities": EventType.EVENT_TYPE_MARKER_RECORDED,  # core_local_activity markers
    "timers": EventType.EVENT_TYPE_TIMER_STARTED,
    "timers_cancelled": EventType.EVENT_TYPE_TIMER_CANCELED,
    "children": EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    "updates": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    "signals": EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    "search_attr_upserts": EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    "properties_modified": EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
}


def marker_name(e: HistoryEvent) -> str:
    return e.marker_recorded_event_attributes.marker_name


def event_counts(events: list[HistoryEvent]) -> dict[str, int]:
    """COUNTED for one history, plus its patch markers and upserts of `TemporalChangeVersion`
    (the search attribute `workflow.patched` writes with its marker)."""
    kinds = Counter(e.event_type for e in events)
    out = {"events": len(events)}
    for name, kind in COUNTED.items():
        if kind is not None:
            out[name] = kinds.get(kind, 0)
    markers = Counter(
        marker_name(e) for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    )
    out["local_activities"] = markers[LOCAL_ACTIVITY_MARKER]
    out["patch_markers"] = markers[PATCH_MARKER]
    out["change_version_upserts"] = sum(
        1
        for e in events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and "TemporalChangeVersion"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    )
    return out


async def history_counts(client: Client, workflow_id: str) -> dict[str, int]:
    handle = client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    events = list(history.events)
    out = event_counts(events)
    out.update(actions(events))
    desc = await handle.describe()
    out["state_transitions"] = state_transitions(desc.raw_description)
    return out


async def breakdown(
    client: Client, empty_id: str, order_no: str, shop: Shop
) -> dict[str, dict[str, int]]:
    """Event counts and costs of one empty workflow and of one lifecycle's three workflows."""
    rows: dict[str, dict[str, int]] = {}
    if empty_id:
        rows["empty"] = await history_counts(client, empty_id)
    if not order_no:
        return rows
    rows["order"] = await history_counts(client, f"order-{order_no}")
    async with shop.sessions() as s:
        so_ids = list(
            (
                await s.scalars(
                    select(SupplierOrder.id)
                    .where(SupplierOrder.order_no == order_no)
                    .order_by(SupplierOrder.id)
                )
            ).all()
        )
    for k, so_id in enumerate(so_ids, 1):
        rows[f"supplier_order_{k}"] = await history_counts(
            client, supplier_order_workflow_id(so_id)
        )
    total: Counter[str] = Counter()
    for name, counts in rows.items():
        if name != "empty":
            total.update(counts)
    rows["lifecycle_total"] = dict(total)
    return rows
