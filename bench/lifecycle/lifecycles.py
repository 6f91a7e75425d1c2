"""Full two-supplier order lifecycles driven through the Temporal client, as the API would."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from bench.lifecycle.driver import StepTimes
from bench.lifecycle.shop import Shop
from bench.lifecycle.watch import ReadModelWatch
from domain.ids import new_order_no
from domain.messages import (
    ConfirmReceipt,
    GetPlacement,
    OrderInput,
    OrderResult,
    PaymentEvent,
    Placement,
    ShipItems,
    ShipLine,
    SubmitReview,
    SupplierOrderResult,
)
from domain.models import SubmitOrder, SupplierOrderPlan
from domain.policy import Policy
from domain.states import OrderStatus
from workflows.common import CUSTOMER_ID, ORDER_NO, ORDER_STATUS
from workflows.order import OrderWorkflow, supplier_order_workflow_id
from workflows.supplier_order import SupplierOrderWorkflow

T = TypeVar("T")

# A submit whose answer was lost (the server's deadline under overload) is tried again.
RETRYABLE = frozenset(
    {RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED}
)
SUBMIT_TRIES = 5


@dataclass
class Lifecycles(StepTimes):
    """Full lifecycles through the Temporal client, timed per step."""

    client: Client
    task_queue: str
    shop: Shop
    watch: ReadModelWatch
    eager: bool = False
    order_nos: list[str] = field(default_factory=list)
    not_found_retries: int = 0
    submit_retries: int = 0

    async def submit(self, order_no: str, req: SubmitOrder) -> Placement:
        inp = OrderInput(
            order_no=order_no, request=req, policy=Policy(after_sales_window=timedelta(0))
        )
        wf_id = f"order-{order_no}"
        attrs = TypedSearchAttributes(
            [
                SearchAttributePair(ORDER_NO, order_no),
                SearchAttributePair(CUSTOMER_ID, req.customer_id),
                SearchAttributePair(ORDER_STATUS, OrderStatus.PENDING_PAYMENT.value),
            ]
        )
        if self.eager:
            # Experiment: eager start (the first workflow task comes back in the start
            # response) followed by the placement update as a second call.
            handle = await self.client.start_workflow(
                OrderWorkflow.run,
                inp,
                id=wf_id,
                task_queue=self.task_queue,
                search_attributes=attrs,
                request_eager_start=True,
            )
            return await handle.execute_update(OrderWorkflow.placement, GetPlacement())
        # Retried as the API's clients retry: the start is USE_EXISTING and the placement
        # update only reads, so a second attempt after a lost answer changes nothing. Without
        # it one overloaded moment left an order started, never paid, and the phase waiting.
        for attempt in itertools.count():
            try:
                result: Placement = await self.client.execute_update_with_start_workflow(
                    OrderWorkflow.placement,
                    GetPlacement(),
                    start_workflow_operation=WithStartWorkflowOperation(
                        OrderWorkflow.run,
                        inp,
                        id=wf_id,
                        task_queue=self.task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        search_attributes=attrs,
                    ),
                )
                return result
            except RPCError as err:
                if err.status not in RETRYABLE or attempt >= SUBMIT_TRIES:
                    raise
                self.submit_retries += 1
        raise AssertionError("unreachable")

    async def supplier_side(self, so: SupplierOrderPlan) -> None:
        async with self.step("paid visible"):
            await self.watch.paid(so.id)
        handle: WorkflowHandle[SupplierOrderWorkflow, SupplierOrderResult] = (
            self.client.get_workflow_handle_for(
                SupplierOrderWorkflow.run, supplier_order_workflow_id(so.id)
            )
        )
        ship = ShipItems(
            carrier="sf",
            tracking_no=f"T{so.id}",
            items=[ShipLine(item_id=i.item_id, qty=i.qty) for i in so.items],
        )
        # The row turns paid inside the parent's workflow task; the child is started when that
        # task completes, a few milliseconds later.
        async with self.step("ship"):
            await self._retry_not_found(
                lambda: handle.execute_update(SupplierOrderWorkflow.ship, ship)
            )
        async with self.step("confirm"):
            await handle.execute_update(SupplierOrderWorkflow.confirm_receipt, ConfirmReceipt())
        async with self.step("review"):
            await handle.execute_update(
                SupplierOrderWorkflow.review, SubmitReview(rating=5, text="Arrived well packed.")
            )

    async def _retry_not_found(self, call: Callable[[], Awaitable[T]], tries: int = 100) -> T:
        """Retry while the workflow does not exist yet, backing off (each miss is a server call)."""
        delay = 0.02
        for attempt in itertools.count():
            try:
                return await call()
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND or attempt >= tries:
                    raise
                self.not_found_retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
        raise AssertionError("unreachable")

    async def one(self, i: int) -> None:
        order_no = new_order_no()
        self.order_nos.append(order_no)
        async with self.step("submit"):
            placement = await self.submit(order_no, self.shop.request(i))
        handle: WorkflowHandle[OrderWorkflow, OrderResult] = self.client.get_workflow_handle_for(
            OrderWorkflow.run, f"order-{order_no}"
        )
        async with self.step("pay signal"):
            await handle.signal(
                OrderWorkflow.payment,
                PaymentEvent(
                    event_id=f"pay-{order_no}", status="succeeded", amount=placement.plan.payable
                ),
            )
        await asyncio.gather(*(self.supplier_side(so) for so in placement.plan.supplier_orders))
        async with self.step("finished visible"):
            status = await self.watch.settled(order_no)
        if status != OrderStatus.FINISHED.value:
            raise RuntimeError(f"order {order_no} ended {status} in the read model")
