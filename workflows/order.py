"""OrderWorkflow (`order-<order_no>`): place, wait for payment, split, follow children."""

import asyncio
import contextlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ChildWorkflowHandle

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities
    from activities.payments import PaymentActivities
    from domain.activity_params import (
        CloseOrderParams,
        IssueRefundParams,
        PaymentOutcomeKind,
        PaymentParams,
        PlaceOrderParams,
    )
    from domain.errors import InvalidState
    from domain.messages import (
        CancelOrder,
        ChildRef,
        GetPlacement,
        OrderInput,
        OrderResult,
        OrderSnapshot,
        PaymentEvent,
        PaymentRecord,
        Placement,
        SnapshotQuery,
        SupplierOrderInput,
        SupplierOrderResult,
    )
    from domain.models import OrderPlan, SupplierOrderPlan
    from domain.states import (
        Actor,
        CloseReason,
        OrderStatus,
        SupplierOrderStatus,
        order_close_reason,
        order_status,
    )
    from workflows.common import (
        CUSTOMER_ID,
        DB_RETRY,
        DB_TIMEOUT,
        ORDER_NO,
        ORDER_STATUS,
        PROVIDER_RETRY,
        PROVIDER_TIMEOUT,
        SUPPLIER_ID,
        business_refusal,
        refusal,
        refusals,
        until,
    )
    from workflows.supplier_order import SupplierOrderWorkflow


# workflow.patched ids: each marks a change of the commands this workflow issues.
CHILDREN_FIRST = "start-children-before-paid-record"


def supplier_order_workflow_id(supplier_order_id: str) -> str:
    return f"order-{supplier_order_id}"


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, inp: OrderInput) -> None:
        self.inp = inp
        self.policy = inp.policy
        self.status = OrderStatus.PENDING_PAYMENT
        self.close_reason: CloseReason | None = None
        self.plan: OrderPlan | None = None
        self.rejected: ApplicationError | None = None
        self.placement_answered = False
        self.pay_deadline: datetime | None = None
        self.paid = False
        self.paid_amount = Decimal("0")
        self.method = "card"
        self.seen_events: set[str] = set()
        self.inbox: list[PaymentEvent] = []
        self.payments: list[PaymentRecord] = []
        self.children: dict[str, ChildRef] = {}
        self.child_handles: dict[str, ChildWorkflowHandle[Any, SupplierOrderResult]] = {}
        # Payment processing and customer cancel both decide the order's fate;
        # the lock makes them take turns so a cancel can't slip past a payment.
        self.lock = asyncio.Lock()

    # --- run -----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: OrderInput) -> OrderResult:
        wf_id = workflow.info().workflow_id
        self._ensure_search_attributes()
        self.pay_deadline = workflow.now() + self.policy.payment_timeout
        try:
            self.plan = await workflow.execute_local_activity_method(
                OrderActivities.place_order,
                PlaceOrderParams(
                    key=f"{wf_id}:place",
                    order_no=inp.order_no,
                    at=workflow.now(),
                    actor=Actor.CUSTOMER,
                    actor_id=inp.request.customer_id,
                    request=inp.request,
                    policy=self.policy,
                    pay_deadline=self.pay_deadline,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="reserve stock, deduct coins, write order",
            )
        except (ActivityError, ApplicationError) as err:
            # Refused placement (bad SKU, no stock, ...): nothing was written; the
            # submit update reports the reason and the workflow ends.
            cause = business_refusal(err)
            if cause is None:
                raise
            self.rejected = cause
            workflow.set_current_details(f"Rejected: {cause.message}")
            # The submitter learns the reason from the placement update. It normally
            # rides with the start (update-with-start), but a caller that starts first
            # and asks next is given a short while to ask before the run ends.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.placement_answered,
                    timeout=timedelta(seconds=30),
                    timeout_summary="rejected: waiting for the submitter to read why",
                )
            await workflow.wait_condition(workflow.all_handlers_finished)
            return OrderResult(order_no=inp.order_no, status=None, rejected=cause.message)

        self._describe()
        if self.plan.payable == 0:
            # Coins cover everything: nothing to wait for.
            self.inbox.append(
                PaymentEvent(
                    event_id=f"{inp.order_no}:coins",
                    status="succeeded",
                    amount=self.plan.payable,
                    method="coins",
                )
            )
        await self._await_payment()
        if self.status is OrderStatus.PAID:
            await self._follow_supplier_orders()
        else:
            await self._late_payment_grace()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OrderResult(
            order_no=inp.order_no,
            status=self.status,
            close_reason=self.close_reason,
            supplier_orders=list(self.children.values()),
        )

    async def _await_payment(self) -> None:
        assert self.pay_deadline is not None
        while self.status is OrderStatus.PENDING_PAYMENT:
            try:
                await workflow.wait_condition(
                    lambda: bool(self.inbox) or self.status is not OrderStatus.PENDING_PAYMENT,
                    timeout=until(self.pay_deadline),
                    timeout_summary="payment deadline",
                )
            except TimeoutError:
                async with self.lock:
                    if self.status is OrderStatus.PENDING_PAYMENT and not self.inbox:
                        # Recorded as closed at the deadline itself: the timer fires a
                        # few ms after it (it starts when the workflow task completes).
                        await self._close(
                            CloseReason.PAYMENT_TIMEOUT, Actor.SYSTEM, "", at=self.pay_deadline
                        )
                continue
            await self._drain_payments()

    async def _late_payment_grace(self) -> None:
        """A closed order keeps listening a while so late money is sent back."""
        ends = workflow.now() + self.policy.late_payment_grace
        workflow.set_current_details(
            f"Closed ({self.close_reason}); refunding late payments until {ends.isoformat()}"
        )
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self.inbox),
                    timeout=until(ends),
                    timeout_summary="late payment grace",
                )
            except TimeoutError:
                return
            await self._drain_payments()

    async def _follow_supplier_orders(self) -> None:
        assert self.plan is not None
        if not self.child_handles:  # histories from before CHILDREN_FIRST start them here
            await self._start_children()
        children = [
            asyncio.create_task(self._await_child(so_id, handle))
            for so_id, handle in self.child_handles.items()
        ]
        while not all(c.done() for c in children):
            await workflow.wait_condition(
                lambda: bool(self.inbox) or all(c.done() for c in children)
            )
            await self._drain_payments()
        for c in children:
            c.result()  # a failed child fails the order loudly rather than hiding it
        status = order_status((c.status for c in self.children.values()), paid=True)
        if status is OrderStatus.CLOSED:
            self.close_reason = order_close_reason(c.close_reason for c in self.children.values())
        self._set_status(status)

    async def _start_children(self) -> None:
        """Start every supplier order in one workflow task and wait until they exist."""
        assert self.plan is not None
        handles = await asyncio.gather(*(self._start_child(so) for so in self.plan.supplier_orders))
        self.child_handles = {
            so.id: h for so, h in zip(self.plan.supplier_orders, handles, strict=True)
        }

    async def _await_child(
        self, so_id: str, handle: ChildWorkflowHandle[Any, SupplierOrderResult]
    ) -> None:
        result = await handle
        ref = self.children[so_id]
        ref.status = result.status
        ref.close_reason = result.close_reason

    async def _start_child(
        self, so: SupplierOrderPlan
    ) -> ChildWorkflowHandle[Any, SupplierOrderResult]:
        assert self.plan is not None
        ref = ChildRef(
            id=so.id,
            supplier_id=so.supplier_id,
            workflow_id=supplier_order_workflow_id(so.id),
            status=SupplierOrderStatus.PENDING_SHIPMENT,
        )
        self.children[so.id] = ref
        return await workflow.start_child_workflow(
            SupplierOrderWorkflow.run,
            SupplierOrderInput(
                order_no=self.plan.order_no,
                customer_id=self.plan.customer_id,
                plan=so,
                policy=self.policy,
                paid_at=workflow.now(),
                payment_method=self.method,
            ),
            id=ref.workflow_id,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ORDER_NO, self.plan.order_no),
                    SearchAttributePair(CUSTOMER_ID, self.plan.customer_id),
                    SearchAttributePair(SUPPLIER_ID, so.supplier_id),
                    SearchAttributePair(ORDER_STATUS, SupplierOrderStatus.PENDING_SHIPMENT.value),
                ]
            ),
            static_summary=f"Supplier order {so.id} · {so.supplier_id} · {len(so.items)} lines",
            static_details=(
                f"**Order** {self.plan.order_no}  \n**Supplier** {so.supplier_id}  \n"
                f"**Goods** {so.subtotal} + postage {so.postage}, coins {so.coin_share}, "
                f"paid {so.payable}  \n**Sub-orders** "
                + ", ".join(f"{s.product_type} ({len(s.item_ids)})" for s in so.sub_orders)
            ),
        )

    # --- payments --------------------------------------------------------------------

    async def _drain_payments(self) -> None:
        while self.inbox:
            event = self.inbox.pop(0)
            async with self.lock:
                await self._apply_payment(event)

    async def _apply_payment(self, ev: PaymentEvent) -> None:
        assert self.plan is not None
        outcome: PaymentOutcomeKind
        if ev.status == "failed":
            outcome = "failed"
        elif self.status is OrderStatus.PENDING_PAYMENT:
            outcome = "applied" if ev.amount == self.plan.payable else "mismatch"
        elif self.status is OrderStatus.CLOSED:
            outcome = "late"
        else:
            outcome = "duplicate"
        if outcome == "applied" and workflow.patched(CHILDREN_FIRST):
            # The supplier orders exist before the read model says "paid", so whoever
            # sees a paid supplier order can command it at once. Same workflow tasks
            # as before: the paid record moves from the task issuing the starts to
            # the one that learns they started.
            self.method = ev.method
            await self._start_children()
        ref = await workflow.execute_local_activity_method(
            OrderActivities.apply_payment,
            PaymentParams(
                key=f"{workflow.info().workflow_id}:payment:{ev.event_id}",
                order_no=self.plan.order_no,
                at=workflow.now(),
                actor=Actor.SYSTEM,
                actor_id="payment-provider",
                event=ev,
                outcome=outcome,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"payment {ev.event_id}: {outcome}",
        )
        self.payments.append(
            PaymentRecord(event_id=ev.event_id, status=ev.status, amount=ev.amount, outcome=outcome)
        )
        if outcome == "applied":
            self.paid = True
            self.paid_amount = ev.amount
            self.method = ev.method
            self._set_status(OrderStatus.PAID)
        elif outcome == "failed" and self.status is OrderStatus.PENDING_PAYMENT:
            self.close_reason = CloseReason.PAYMENT_FAILED
            self._set_status(OrderStatus.CLOSED)
        if ref.refund_id:
            await workflow.execute_activity_method(
                PaymentActivities.issue_refund,
                IssueRefundParams(refund_id=ref.refund_id),
                start_to_close_timeout=PROVIDER_TIMEOUT,
                retry_policy=PROVIDER_RETRY,
                summary=f"refund {ref.amount} ({outcome} payment)",
            )

    async def _close(
        self, reason: CloseReason, actor: Actor, actor_id: str, at: datetime | None = None
    ) -> None:
        assert self.plan is not None
        await workflow.execute_local_activity_method(
            OrderActivities.close_order,
            CloseOrderParams(
                key=f"{workflow.info().workflow_id}:close",
                order_no=self.plan.order_no,
                at=at or workflow.now(),
                actor=actor,
                actor_id=actor_id,
                reason=reason,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"close ({reason}): release stock, return coins",
        )
        self.close_reason = reason
        self._set_status(OrderStatus.CLOSED)

    # --- messages -------------------------------------------------------------------

    @workflow.signal
    def payment(self, event: PaymentEvent) -> None:
        # Providers deliver at least once: the same event id is applied once.
        if event.event_id in self.seen_events:
            return
        self.seen_events.add(event.event_id)
        self.inbox.append(event)

    @workflow.update
    async def placement(self, _: GetPlacement) -> Placement:
        await workflow.wait_condition(lambda: self.plan is not None or self.rejected is not None)
        self.placement_answered = True
        if self.rejected is not None:
            raise self.rejected
        assert self.plan is not None and self.pay_deadline is not None
        return Placement(
            order_no=self.plan.order_no,
            status=self.status,
            plan=self.plan,
            pay_deadline=self.pay_deadline,
        )

    @workflow.update
    async def cancel(self, cmd: CancelOrder) -> OrderSnapshot:
        with refusals():
            async with self.lock:
                # Re-checked under the lock: a payment may have landed meanwhile.
                self._check_cancel()
                await self._close(CloseReason.USER_CANCELLED, cmd.actor, cmd.actor_id)
        return self.snapshot(SnapshotQuery())

    @cancel.validator
    def _validate_cancel(self, cmd: CancelOrder) -> None:
        try:
            self._check_cancel()
        except InvalidState as err:
            raise refusal(err) from None

    def _check_cancel(self) -> None:
        if self.plan is None:
            raise InvalidState("the order is not placed")
        if self.status is not OrderStatus.PENDING_PAYMENT:
            raise InvalidState(
                f"only unpaid orders can be cancelled here (order is {self.status}); "
                "cancel a paid supplier order instead"
            )

    @workflow.query
    def snapshot(self, _: SnapshotQuery | None = None) -> OrderSnapshot:
        return OrderSnapshot(
            order_no=self.inp.order_no,
            customer_id=self.inp.request.customer_id,
            status=self.status,
            close_reason=self.close_reason,
            payable=self.plan.payable if self.plan else Decimal("0"),
            paid=self.paid_amount,
            pay_deadline=self.pay_deadline,
            rejected=self.rejected.message if self.rejected else None,
            supplier_orders=list(self.children.values()),
            payments=self.payments,
        )

    # --- UI ----------------------------------------------------------------------------

    def _ensure_search_attributes(self) -> None:
        """The API sets them at start; a workflow started by hand still lists by OrderNo."""
        current = workflow.info().typed_search_attributes
        if current.get(ORDER_NO) is None:
            workflow.upsert_search_attributes(
                [
                    ORDER_NO.value_set(self.inp.order_no),
                    CUSTOMER_ID.value_set(self.inp.request.customer_id),
                    ORDER_STATUS.value_set(self.status.value),
                ]
            )

    def _set_status(self, status: OrderStatus) -> None:
        if status is not self.status:
            self.status = status
            workflow.upsert_search_attributes([ORDER_STATUS.value_set(status.value)])
        self._describe()

    def _describe(self) -> None:
        if self.plan is None:
            return
        if self.status is OrderStatus.PENDING_PAYMENT:
            assert self.pay_deadline is not None
            text = (
                f"Waiting for payment of {self.plan.payable} until {self.pay_deadline.isoformat()}"
            )
        elif self.status is OrderStatus.PAID:
            text = f"Paid {self.paid_amount}; following {len(self.plan.supplier_orders)} supplier orders"
        else:
            text = f"{self.status}" + (f" ({self.close_reason})" if self.close_reason else "")
        workflow.set_current_details(text)
