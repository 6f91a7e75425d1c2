"""SupplierOrderWorkflow (`order-<order_no>-<supplier_id>`): ship → receipt → review.

Commands are updates whose validators run the pure rules of
`domain.supplier_rules`; handlers compute the next state on a copy, write the
read model through a local activity, and only then adopt the new state, so a
failed write leaves the workflow exactly as it was. Deadlines are derived from
state and waited on with one durable timer at a time.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.aftersales import AfterSaleActivities
    from activities.fulfilment import FulfilmentActivities
    from activities.payments import PaymentActivities
    from domain import supplier_rules as rules
    from domain.activity_params import (
        AfterSaleOpenParams,
        CancelSupplierOrderParams,
        DeadlineParams,
        EditTrackingParams,
        IssueRefundParams,
        ReceiptParams,
        ReceiverParams,
        ReminderParams,
        ReviewLine,
        ReviewParams,
        ShipmentParams,
        SupplierOrderParams,
        TrackingParams,
    )
    from domain.errors import DomainError
    from domain.messages import (
        AfterSaleEnded,
        AfterSaleInput,
        AfterSaleRef,
        CancelSupplierOrder,
        ChangeReceiver,
        ConfirmReceipt,
        EditTracking,
        ExtendReceipt,
        ItemView,
        RemindShipment,
        RequestAfterSale,
        ShipItems,
        SnapshotQuery,
        SubmitReview,
        SupplierOrderInput,
        SupplierOrderResult,
        SupplierOrderSnapshot,
        SupplierOrderState,
        TrackingEvent,
    )
    from domain.states import Actor, CloseReason, SupplierOrderStatus, item_status
    from workflows.after_sale import AfterSaleWorkflow
    from workflows.common import (
        CUSTOMER_ID,
        DB_RETRY,
        DB_TIMEOUT,
        ORDER_NO,
        ORDER_STATUS,
        PROVIDER_RETRY,
        PROVIDER_TIMEOUT,
        SUPPLIER_ID,
        refusal,
        refusals,
        until,
        update_key,
    )

S = SupplierOrderStatus
P = TypeVar("P", bound=SupplierOrderParams)
MAX_SEEN_EVENTS = 2000

# workflow.patched ids: each marks a change of the commands this workflow issues.
# A signal (a carrier scan, an after-sale's end) that arrives while the main loop waits on a
# deadline timer used to wake the loop, which cancelled the timer and started it again at the
# same deadline: a timer action and two events per scan that carried nothing. Now such signals
# are applied beside the wait and the timer runs on; one that moves a deadline (through
# `_adopt`) still wakes the loop. Asked at the first such signal, so a run without one writes no
# marker (and no TemporalChangeVersion upsert).
KEEP_TIMER_ON_SIGNALS = "keep-deadline-timer-on-signals"


def _validate(check: Callable[[], object]) -> None:
    try:
        check()
    except DomainError as err:
        raise refusal(err) from None


@workflow.defn
class SupplierOrderWorkflow:
    @workflow.init
    def __init__(self, inp: SupplierOrderInput) -> None:
        self.inp = inp
        self.plan = inp.plan
        self.policy = inp.policy
        self.state: SupplierOrderState = inp.state or rules.initial_state(inp.plan)
        self.lock = asyncio.Lock()
        self.changed = False
        self.inbox: list[TrackingEvent | AfterSaleEnded] = []
        self.refunds: list[str] = []
        self.timer_running = False  # the main loop waits on a deadline timer
        self.signals_aside = False  # KEEP_TIMER_ON_SIGNALS: signals applied beside the wait
        self.pumping = False  # ... and being applied right now

    # --- run -------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: SupplierOrderInput) -> SupplierOrderResult:
        self._describe()
        while True:
            await self._drain()
            if rules.finished(self.state, self.policy, workflow.now()):
                break
            if self._history_is_long():
                # Hand over to a fresh run once nothing is in flight; messages that
                # arrived meanwhile are applied first so none is lost in the handover.
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._signals_settled()
                await self._drain()
                workflow.continue_as_new(inp.model_copy(update={"state": self.state}))
            deadline, action = self._next_deadline()
            self.changed = False
            self.timer_running = deadline is not None
            try:
                await workflow.wait_condition(
                    lambda: (
                        self.changed
                        or (bool(self.inbox) and not self.signals_aside)
                        or bool(self.refunds)
                        # Signals applied beside the wait still grow the history.
                        or (self.signals_aside and self._history_is_long())
                    ),
                    timeout=until(deadline) if deadline else None,
                    timeout_summary=action,
                )
                self.timer_running = False
            except TimeoutError:
                self.timer_running = False
                assert deadline is not None
                async with self.lock:
                    await self._deadline_reached(deadline)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._signals_settled()
        await self._drain()
        return SupplierOrderResult(
            id=self.plan.id, status=self.state.status, close_reason=self.state.close_reason
        )

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.policy.continue_as_new_after_events
        )

    def _next_deadline(self) -> tuple[datetime | None, str]:
        now = workflow.now()
        if self.state.status is S.PENDING_RECEIPT:
            return rules.auto_confirm_at(self.state, self.policy, now), "auto-confirm receipt"
        if self.state.status is S.PENDING_REVIEW:
            return rules.auto_review_at(self.state, self.policy), "auto-review"
        if self.state.status is S.COMPLETED and not rules.open_after_sales(self.state):
            return rules.after_sales_until(self.state, self.policy), "after-sales window ends"
        return None, ""

    async def _deadline_reached(self, fired: datetime) -> None:
        """Act on a timer, unless an update moved the deadline in the meantime."""
        now = workflow.now()
        st = self.state
        due = rules.auto_confirm_at(st, self.policy, now)
        # Automatic steps are recorded at their deadline: the timer itself fires a few
        # ms later (it starts when the workflow task that set it completes).
        if st.status is S.PENDING_RECEIPT and due is not None and (due == fired or due <= now):
            await self._receive(auto=True, actor_id="", at=due)
            return
        due = rules.auto_review_at(st, self.policy)
        if st.status is S.PENDING_REVIEW and due is not None and (due == fired or due <= now):
            items = [i.item_id for i in st.items.values() if not i.reviewed]
            await self._record_reviews(
                items,
                self.policy.default_review_rating,
                self.policy.default_review_text,
                auto=True,
                key=f"{workflow.info().workflow_id}:auto_review",
                actor_id="",
                at=due,
            )

    async def _drain(self) -> None:
        await self._drain_inbox()
        while self.refunds:
            await workflow.execute_activity_method(
                PaymentActivities.issue_refund,
                IssueRefundParams(refund_id=self.refunds[0]),
                start_to_close_timeout=PROVIDER_TIMEOUT,
                retry_policy=PROVIDER_RETRY,
                summary="refund to the original payment method",
            )
            self.refunds.pop(0)

    async def _drain_inbox(self) -> None:
        while self.inbox:
            event = self.inbox.pop(0)
            async with self.lock:
                if isinstance(event, TrackingEvent):
                    await self._apply_tracking(event)
                else:
                    await self._apply_after_sale_ended(event)

    def _signalled(self) -> None:
        """A signal was queued: past KEEP_TIMER_ON_SIGNALS, apply it beside a timed wait."""
        if self.signals_aside or not self.timer_running:
            return
        if workflow.patched(KEEP_TIMER_ON_SIGNALS):
            self.signals_aside = True
            asyncio.create_task(self._apply_signals_aside())  # noqa: RUF006 (lives as long as the run)

    async def _apply_signals_aside(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.inbox))
            self.pumping = True
            try:
                await self._drain_inbox()
            finally:
                self.pumping = False

    async def _signals_settled(self) -> None:
        """Until a signal being applied beside the wait is recorded (none before the patch)."""
        if self.signals_aside:
            await workflow.wait_condition(lambda: not self.pumping)

    # --- local activity plumbing ---------------------------------------------------------

    def _params(
        self,
        cls: type[P],
        key: str,
        actor: Actor,
        actor_id: str,
        at: datetime | None = None,
        **fields: Any,
    ) -> P:
        return cls(
            key=key,
            order_no=self.inp.order_no,
            supplier_order_id=self.plan.id,
            at=at or workflow.now(),
            actor=actor,
            actor_id=actor_id,
            **fields,
        )

    def _adopt(self, new_state: SupplierOrderState) -> None:
        old = self.state.status
        self.state = new_state
        self.changed = True
        if new_state.status is not old:
            workflow.upsert_search_attributes([ORDER_STATUS.value_set(new_state.status.value)])
        self._describe()

    # --- shipping ------------------------------------------------------------------------

    @workflow.update
    async def ship(self, cmd: ShipItems) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                rules.check_ship(self.state, cmd, self.plan)
                new = self.state.model_copy(deep=True)
                rules.apply_ship(new, cmd, workflow.now())
                await workflow.execute_local_activity_method(
                    FulfilmentActivities.record_shipment,
                    self._params(
                        ShipmentParams,
                        update_key("ship"),
                        Actor.SUPPLIER,
                        cmd.actor_id,
                        shipment=cmd,
                        auto_confirm_at=rules.auto_confirm_at(new, self.policy, workflow.now()),
                    ),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                    summary=f"ship {cmd.tracking_no}",
                )
                self._adopt(new)
        return self.snapshot()

    @ship.validator
    def _validate_ship(self, cmd: ShipItems) -> None:
        _validate(lambda: rules.check_ship(self.state, cmd, self.plan))

    @workflow.update
    async def edit_tracking(self, cmd: EditTracking) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                rules.check_edit_tracking(self.state, cmd)
                new = self.state.model_copy(deep=True)
                rules.apply_edit_tracking(new, cmd)
                await workflow.execute_local_activity_method(
                    FulfilmentActivities.edit_tracking,
                    self._params(
                        EditTrackingParams,
                        update_key("edit_tracking"),
                        Actor.SUPPLIER,
                        cmd.actor_id,
                        edit=cmd,
                    ),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                    summary=f"tracking {cmd.tracking_no} → {cmd.new_tracking_no}",
                )
                self._adopt(new)
        return self.snapshot()

    @edit_tracking.validator
    def _validate_edit_tracking(self, cmd: EditTracking) -> None:
        _validate(lambda: rules.check_edit_tracking(self.state, cmd))

    @workflow.update
    async def change_receiver(self, cmd: ChangeReceiver) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                rules.check_change_receiver(self.state, self.plan)
                new = self.state.model_copy(deep=True)
                new.address = cmd.address
                await workflow.execute_local_activity_method(
                    FulfilmentActivities.change_receiver,
                    self._params(
                        ReceiverParams,
                        update_key("receiver"),
                        Actor.SUPPLIER,
                        cmd.actor_id,
                        address=cmd.address,
                    ),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                    summary="change receiver",
                )
                self._adopt(new)
        return self.snapshot()

    @change_receiver.validator
    def _validate_change_receiver(self, cmd: ChangeReceiver) -> None:
        _validate(lambda: rules.check_change_receiver(self.state, self.plan))

    @workflow.signal
    def tracking(self, event: TrackingEvent) -> None:
        # Carriers resend scans: one event id is applied once.
        if event.event_id in self.state.seen_events:
            return
        self.state.seen_events.append(event.event_id)
        del self.state.seen_events[:-MAX_SEEN_EVENTS]
        self.inbox.append(event)
        self._signalled()

    async def _apply_tracking(self, ev: TrackingEvent) -> None:
        if not any(p.tracking_no == ev.tracking_no for p in self.state.packages):
            workflow.logger.warning("scan for unknown package %s ignored", ev.tracking_no)
            return
        await workflow.execute_local_activity_method(
            FulfilmentActivities.record_tracking,
            self._params(
                TrackingParams,
                f"{workflow.info().workflow_id}:tracking:{ev.event_id}",
                Actor.SYSTEM,
                ev.carrier,
                event=ev,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"scan {ev.tracking_no}: {ev.status}",
        )
        for p in self.state.packages:
            if p.tracking_no != ev.tracking_no:
                continue
            # Scans can arrive out of order: only a newer one moves the package, except
            # the delivery scan, which always counts (the same rule as the read model).
            delivered = ev.status == "delivered"
            if p.located_at is None or ev.at >= p.located_at or delivered:
                p.lat, p.lon, p.located_at = ev.lat, ev.lon, ev.at
            p.delivered = p.delivered or delivered

    # --- cancel and remind -------------------------------------------------------------------

    @workflow.update
    async def cancel(self, cmd: CancelSupplierOrder) -> SupplierOrderSnapshot:
        reason = (
            CloseReason.SUPPLIER_CANCELLED
            if cmd.actor is Actor.SUPPLIER
            else CloseReason.USER_CANCELLED
        )
        with refusals():
            async with self.lock:
                rules.check_cancel(self.state)
                new = self.state.model_copy(deep=True)
                rules.apply_cancel(new, reason)
                ref = await workflow.execute_local_activity_method(
                    FulfilmentActivities.cancel_supplier_order,
                    self._params(
                        CancelSupplierOrderParams,
                        update_key("cancel"),
                        cmd.actor,
                        cmd.actor_id,
                        reason=reason,
                    ),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                    summary=f"cancel ({reason}): release stock, return coins, record refund",
                )
                if ref.refund_id:
                    # Paid back by the main loop so the caller does not wait on the provider.
                    self.refunds.append(ref.refund_id)
                self._adopt(new)
        return self.snapshot()

    @cancel.validator
    def _validate_cancel(self, cmd: CancelSupplierOrder) -> None:
        _validate(lambda: rules.check_cancel(self.state))

    @workflow.update
    async def remind(self, cmd: RemindShipment) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                rules.check_remind(self.state, self.policy, workflow.now())
                new = self.state.model_copy(deep=True)
                new.last_remind_at = workflow.now()
                await workflow.execute_local_activity_method(
                    FulfilmentActivities.record_reminder,
                    self._params(
                        ReminderParams,
                        update_key("remind"),
                        Actor.CUSTOMER,
                        cmd.actor_id,
                        supplier_id=self.plan.supplier_id,
                    ),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                    summary="remind supplier to ship",
                )
                self._adopt(new)
        return self.snapshot()

    @remind.validator
    def _validate_remind(self, cmd: RemindShipment) -> None:
        _validate(lambda: rules.check_remind(self.state, self.policy, workflow.now()))

    # --- receipt and review ----------------------------------------------------------------

    @workflow.update
    async def confirm_receipt(self, cmd: ConfirmReceipt) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                rules.check_confirm(self.state)
                await self._receive(auto=False, actor_id=cmd.actor_id)
        return self.snapshot()

    @confirm_receipt.validator
    def _validate_confirm(self, cmd: ConfirmReceipt) -> None:
        _validate(lambda: rules.check_confirm(self.state))

    async def _receive(self, auto: bool, actor_id: str, at: datetime | None = None) -> None:
        now = at or workflow.now()
        new = self.state.model_copy(deep=True)
        rules.apply_receipt(new, now)
        review_at = rules.auto_review_at(new, self.policy)
        assert review_at is not None
        key = f"{workflow.info().workflow_id}:auto_confirm" if auto else update_key("confirm")
        # Lines unshipped at auto-confirm are closed and refunded by the activity; its
        # result is recorded, so histories from before it returned one replay as None.
        ref = await workflow.execute_local_activity_method(
            FulfilmentActivities.record_receipt,
            self._params(
                ReceiptParams,
                key,
                Actor.SYSTEM if auto else Actor.CUSTOMER,
                actor_id,
                at=now,
                auto=auto,
                auto_review_at=review_at,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="auto-confirm receipt" if auto else "confirm receipt",
        )
        if ref is not None and ref.refund_id:
            self.refunds.append(ref.refund_id)
        self._adopt(new)

    @workflow.update
    async def extend_receipt(self, cmd: ExtendReceipt) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                rules.check_extend(self.state)
                new = self.state.model_copy(deep=True)
                new.extended = True
                await self._move_deadline(new, "extend_receipt", update_key("extend"), cmd.actor_id)
                self._adopt(new)
        return self.snapshot()

    @extend_receipt.validator
    def _validate_extend(self, cmd: ExtendReceipt) -> None:
        _validate(lambda: rules.check_extend(self.state))

    async def _move_deadline(
        self,
        new: SupplierOrderState,
        action: Literal["extend_receipt", "deadline_moved"],
        key: str,
        actor_id: str,
    ) -> None:
        await workflow.execute_local_activity_method(
            FulfilmentActivities.move_deadline,
            self._params(
                DeadlineParams,
                key,
                Actor.CUSTOMER if actor_id else Actor.SYSTEM,
                actor_id,
                action=action,
                auto_confirm_at=rules.auto_confirm_at(new, self.policy, workflow.now()),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=action.replace("_", " "),
        )

    @workflow.update
    async def review(self, cmd: SubmitReview) -> SupplierOrderSnapshot:
        with refusals():
            async with self.lock:
                items = rules.check_review(self.state, cmd)
                await self._record_reviews(
                    items,
                    cmd.rating,
                    cmd.text,
                    auto=False,
                    key=update_key("review"),
                    actor_id=cmd.actor_id,
                )
        return self.snapshot()

    @review.validator
    def _validate_review(self, cmd: SubmitReview) -> None:
        _validate(lambda: rules.check_review(self.state, cmd))

    async def _record_reviews(
        self,
        items: list[str],
        rating: int,
        text: str,
        auto: bool,
        key: str,
        actor_id: str,
        at: datetime | None = None,
    ) -> None:
        new = self.state.model_copy(deep=True)
        completed = rules.apply_reviews(new, items)
        await workflow.execute_local_activity_method(
            FulfilmentActivities.record_reviews,
            self._params(
                ReviewParams,
                key,
                Actor.SYSTEM if auto else Actor.CUSTOMER,
                actor_id,
                at=at,
                reviews=[ReviewLine(item_id=i, rating=rating, text=text) for i in items],
                auto=auto,
                completed=completed,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="auto-review" if auto else "review",
        )
        if completed:
            new.completed_at = at or workflow.now()
        self._adopt(new)

    # --- after-sales -------------------------------------------------------------------------

    @workflow.update
    async def request_after_sale(self, cmd: RequestAfterSale) -> AfterSaleRef:
        with refusals():
            async with self.lock:
                now = workflow.now()
                rules.check_after_sale(self.state, cmd, self.policy, now)
                new = self.state.model_copy(deep=True)
                new.after_sale_seq += 1
                after_sale_id = f"{self.plan.id}-as{new.after_sale_seq}"
                was_paused = new.paused_at is not None
                ref = rules.apply_after_sale_opened(new, cmd, after_sale_id, now)
                request = AfterSaleInput(
                    id=after_sale_id,
                    order_no=self.inp.order_no,
                    customer_id=self.inp.customer_id,
                    supplier_id=self.plan.supplier_id,
                    supplier_order_id=self.plan.id,
                    item_id=cmd.item_id,
                    qty=cmd.qty,
                    type=cmd.type,
                    reason=cmd.reason,
                    policy=self.policy,
                )
                await workflow.execute_local_activity_method(
                    AfterSaleActivities.open_after_sale,
                    AfterSaleOpenParams(
                        key=update_key("after_sale"),
                        order_no=self.inp.order_no,
                        at=now,
                        actor=Actor.CUSTOMER,
                        actor_id=cmd.actor_id,
                        request=request,
                    ),
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                    summary=f"after-sales {after_sale_id}",
                )
                if not was_paused and new.paused_at is not None:
                    await self._move_deadline(
                        new, "deadline_moved", f"{update_key('pause')}", cmd.actor_id
                    )
                await workflow.start_child_workflow(
                    AfterSaleWorkflow.run,
                    request,
                    id=f"aftersale-{after_sale_id}",
                    # Outlives a continue-as-new of this workflow; it reports back by id.
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(ORDER_NO, self.inp.order_no),
                            SearchAttributePair(CUSTOMER_ID, self.inp.customer_id),
                            SearchAttributePair(SUPPLIER_ID, self.plan.supplier_id),
                        ]
                    ),
                    static_summary=f"After-sales {after_sale_id} · {cmd.type} x {cmd.qty}",
                    static_details=f"Item {cmd.item_id} of supplier order {self.plan.id}: {cmd.reason}",
                )
                self._adopt(new)
        return ref

    @request_after_sale.validator
    def _validate_after_sale(self, cmd: RequestAfterSale) -> None:
        _validate(lambda: rules.check_after_sale(self.state, cmd, self.policy, workflow.now()))

    @workflow.signal
    def after_sale_ended(self, event: AfterSaleEnded) -> None:
        self.inbox.append(event)
        self._signalled()

    async def _apply_after_sale_ended(self, ev: AfterSaleEnded) -> None:
        now = workflow.now()
        new = self.state.model_copy(deep=True)
        was_paused = new.paused_at is not None
        rules.apply_after_sale_ended(new, ev.after_sale_id, ev.status, now)
        if was_paused and new.paused_at is None and new.status is S.PENDING_RECEIPT:
            await self._move_deadline(
                new,
                "deadline_moved",
                f"{workflow.info().workflow_id}:resume:{ev.after_sale_id}",
                "",
            )
        self._adopt(new)

    # --- queries and UI ----------------------------------------------------------------------

    @workflow.query
    def snapshot(self, _: SnapshotQuery | None = None) -> SupplierOrderSnapshot:
        st = self.state
        return SupplierOrderSnapshot(
            id=self.plan.id,
            order_no=self.inp.order_no,
            supplier_id=self.plan.supplier_id,
            status=st.status,
            close_reason=st.close_reason,
            items=[
                ItemView(
                    item_id=i.item_id,
                    sku=i.sku,
                    qty=i.qty,
                    shipped_qty=i.shipped_qty,
                    status=item_status(i.qty, i.shipped_qty, i.closed),
                )
                for i in st.items.values()
            ],
            packages=st.packages,
            after_sales=list(st.after_sales.values()),
            deadlines=rules.deadlines(st, self.policy, workflow.now()),
            address=st.address,
        )

    def _describe(self) -> None:
        st = self.state
        d = rules.deadlines(st, self.policy, workflow.now())
        waits = {
            S.PENDING_SHIPMENT: "Waiting for the supplier to ship",
            S.PENDING_RECEIPT: (
                f"Shipped {len(st.packages)} package(s); auto-confirm at {d.auto_confirm_at.isoformat()}"
                if d.auto_confirm_at
                else "Auto-confirm paused by an open after-sales request"
            ),
            S.PENDING_REVIEW: f"Received; auto-review at {d.auto_review_at.isoformat() if d.auto_review_at else '?'}",
            S.COMPLETED: f"Completed; after-sales open until {d.after_sales_until.isoformat() if d.after_sales_until else '?'}",
            S.CLOSED: f"Closed ({st.close_reason})",
        }
        workflow.set_current_details(waits.get(st.status, str(st.status)))
