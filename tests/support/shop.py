"""Drives orders through the workflows the way the API does, for scenario tests."""

import asyncio
import contextlib
import hashlib
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from db.tables import Order, SupplierOrder
from domain.messages import (
    GetPlacement,
    OrderInput,
    OrderResult,
    PaymentEvent,
    Placement,
    ShipItems,
    ShipLine,
)
from domain.models import GroupInput, OrderLine, SubmitOrder
from domain.policy import Policy
from domain.states import OrderType
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow

T = TypeVar("T")
_numbers = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll until `probe` returns something truthy (bounded; for cross-process visibility)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Shop:
    def __init__(
        self,
        env: WorkflowEnvironment,
        sessions: async_sessionmaker[AsyncSession],
        task_queue: str,
    ) -> None:
        self.env = env
        self.client = env.client
        self.sessions = sessions
        self.task_queue = task_queue
        # Every workflow a test starts is terminated at teardown, so none is left running
        # once its worker is gone. (A leftover with a task no worker takes holds the
        # time-skipping clock, and so does a workflow terminated while its task was in
        # flight on this server: hence a server per test, tests/conftest.py.)
        self.workflow_ids: list[str] = []

    def track(self, workflow_id: str) -> None:
        self.workflow_ids.append(workflow_id)

    async def close(self) -> None:
        # Parents first: a parent terminated after its children could still start one (a
        # split or an after-sale in flight), and that child would outlive the worker.
        for wf_id in self.workflow_ids:
            with contextlib.suppress(Exception):  # already completed: nothing to clean
                await self.client.get_workflow_handle(wf_id).terminate("test finished")

    async def start(
        self,
        lines: Sequence[tuple[str, int]],
        coins: str = "0",
        customer: str = "alice",
        groups: Sequence[GroupInput] = (),
        policy: Policy | None = None,
        order_type: OrderType = OrderType.SELF,
    ) -> WorkflowHandle[OrderWorkflow, OrderResult]:
        order_no = str(next(_numbers))
        request = SubmitOrder(
            customer_id=customer,
            lines=[OrderLine(sku=s, qty=q) for s, q in lines],
            coins=Decimal(coins),
            groups=list(groups),
            order_type=order_type,
            # A friend_pay order is placed with its pay request token's hash (the API's).
            pay_token_hash=(
                hashlib.sha256(f"token-{order_no}".encode()).hexdigest()
                if order_type is OrderType.FRIEND_PAY
                else None
            ),
        )
        self.track(f"order-{order_no}")
        for supplier in ("s1", "s2", "s3"):
            self.track(f"order-{order_no}-{supplier}")
        return await self.client.start_workflow(
            OrderWorkflow.run,
            OrderInput(order_no=order_no, request=request, policy=policy or Policy()),
            id=f"order-{order_no}",
            task_queue=self.task_queue,
        )

    async def submit(
        self, lines: Sequence[tuple[str, int]], **kwargs: Any
    ) -> tuple[WorkflowHandle[OrderWorkflow, OrderResult], Placement]:
        handle = await self.start(lines, **kwargs)
        placement = await handle.execute_update(OrderWorkflow.placement, GetPlacement())
        return handle, placement

    async def pay(
        self,
        handle: WorkflowHandle[Any, Any],
        amount: Decimal,
        event_id: str | None = None,
        status: str = "succeeded",
        payer_id: str | None = None,
    ) -> str:
        event_id = event_id or f"pay-{handle.id}-{next(_numbers)}"
        event = PaymentEvent.model_validate(
            {
                "event_id": event_id,
                "status": status,
                "amount": amount,
                "method": "card",
                "payer_id": payer_id,
            }
        )
        await handle.signal(OrderWorkflow.payment, event)
        return event_id

    async def paid_order(
        self, lines: Sequence[tuple[str, int]], **kwargs: Any
    ) -> tuple[WorkflowHandle[OrderWorkflow, OrderResult], Placement]:
        handle, placement = await self.submit(lines, **kwargs)
        await self.pay(handle, placement.plan.payable)
        await self.order_status(placement.order_no, "PAID")
        return handle, placement

    async def order_row(self, order_no: str) -> Order | None:
        async with self.sessions() as s:
            return await s.get(Order, order_no)

    async def order_status(self, order_no: str, status: str) -> Order:
        async def probe() -> Order | None:
            row = await self.order_row(order_no)
            return row if row is not None and row.status == status else None

        return await eventually(probe, what=f"order {order_no} {status}")

    async def supplier_order_row(self, so_id: str) -> SupplierOrder | None:
        async with self.sessions() as s:
            return await s.get(SupplierOrder, so_id)

    async def supplier_orders(self, order_no: str) -> list[SupplierOrder]:
        async with self.sessions() as s:
            rows = await s.scalars(
                select(SupplierOrder)
                .where(SupplierOrder.order_no == order_no)
                .order_by(SupplierOrder.id)
            )
            return list(rows.all())

    async def child(self, so_id: str) -> WorkflowHandle[SupplierOrderWorkflow, Any]:
        """The supplier order workflow, once the parent has started it."""
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(f"order-{so_id}")

        async def probe() -> bool:
            try:
                await handle.describe()
                return True
            except Exception:
                return False

        await eventually(probe, what=f"workflow order-{so_id}")
        return handle

    async def ship_all(
        self,
        so: WorkflowHandle[SupplierOrderWorkflow, Any],
        placement: Placement,
        so_id: str,
        tracking_no: str = "T1",
    ) -> None:
        plan = placement.plan.supplier_order(so_id)
        await so.execute_update(
            SupplierOrderWorkflow.ship,
            ShipItems(
                carrier="sf",
                tracking_no=f"{tracking_no}-{so_id}",
                items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in plan.items],
            ),
        )

    async def skip(self, delta: timedelta) -> None:
        """Move the server's clock on by `delta`; a clock held past a minute fails the test
        (unbounded, the call would wait out `delta` in real time)."""
        try:
            await asyncio.wait_for(self.env.sleep(delta), timeout=60)
        except TimeoutError:
            raise AssertionError(f"the time-skipping clock did not move {delta}") from None
