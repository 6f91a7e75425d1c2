"""AfterSaleWorkflow (`aftersale-<id>`): a refund or return beside the order.

Its states never change the order's status; when it ends it tells its supplier
order (by workflow id, so it reaches the current run after continue-as-new),
which un-pauses auto-confirm and frees the item for another request.
"""

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.aftersales import AfterSaleActivities
    from activities.payments import PaymentActivities
    from domain.activity_params import (
        AfterSaleRefundParams,
        AfterSaleUpdateParams,
        IssueRefundParams,
        RefundRef,
    )
    from domain.errors import InvalidState
    from domain.messages import (
        AfterSaleDecision,
        AfterSaleEnded,
        AfterSaleInput,
        AfterSaleSnapshot,
        CancelAfterSale,
        ReceiveReturn,
        ReturnShipment,
        SnapshotQuery,
    )
    from domain.states import Actor, AfterSaleStatus, AfterSaleType
    from workflows.common import (
        DB_RETRY,
        DB_TIMEOUT,
        PROVIDER_RETRY,
        PROVIDER_TIMEOUT,
        refusal,
        refusals,
        until,
        update_key,
    )

A = AfterSaleStatus

# workflow.patched ids: each marks a change of the commands this workflow issues.
RETURN_DEADLINES = "after-sale-return-deadlines"


@workflow.defn
class AfterSaleWorkflow:
    @workflow.init
    def __init__(self, inp: AfterSaleInput) -> None:
        self.inp = inp
        self.status = A.REQUESTED
        self.refund: RefundRef | None = None
        self.approve_deadline: datetime | None = None
        self.return_deadline: datetime | None = None
        self.receive_deadline: datetime | None = None
        # Set while a state change is being recorded (its local activity runs), and once a
        # deadline has decided the outcome: commands then wait or are refused instead of
        # racing the automatic step.
        self.moving = 0
        self.auto_ending = False

    @workflow.run
    async def run(self, inp: AfterSaleInput) -> AfterSaleSnapshot:
        self.approve_deadline = workflow.now() + inp.policy.after_sale_auto_approve_after
        workflow.set_current_details(
            f"Waiting for the supplier's answer until {self.approve_deadline.isoformat()}"
        )
        try:
            await workflow.wait_condition(
                lambda: self.status is not A.REQUESTED,
                timeout=until(self.approve_deadline),
                timeout_summary="supplier answer deadline (auto-approve)",
            )
        except TimeoutError:
            # Recorded at the deadline itself, like the supplier order's automatic steps
            # (the timer fires a few ms after it).
            await self._move(
                A.APPROVED,
                Actor.SYSTEM,
                "",
                "auto-approved: no answer in time",
                key=f"{workflow.info().workflow_id}:auto_approve",
                at=self.approve_deadline,
            )
        if self.status is A.APPROVED and inp.type is AfterSaleType.RETURN_REFUND:
            if workflow.patched(RETURN_DEADLINES):
                await self._await_return()
            else:  # histories from before the return deadlines: wait as long as it takes
                workflow.set_current_details("Approved; waiting for the customer's return shipment")
                await workflow.wait_condition(
                    lambda: self.status not in (A.APPROVED, A.RETURN_SHIPPED)
                )
        ready = (inp.type is AfterSaleType.REFUND_ONLY and self.status is A.APPROVED) or (
            self.status is A.REFUNDED and self.refund is None
        )
        if ready:
            await self._pay_back()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await workflow.get_external_workflow_handle(f"order-{inp.supplier_order_id}").signal(
            "after_sale_ended",
            AfterSaleEnded(
                after_sale_id=inp.id,
                status=self.status,
                refunded_qty=inp.qty if self.status is A.REFUNDED else 0,
            ),
        )
        workflow.set_current_details(f"Ended: {self.status}")
        return self.snapshot()

    async def _await_return(self) -> None:
        """An approved return: shipped back in time or closed; received in time or refunded.

        Without these deadlines a customer who never sends the parcel, or a supplier who
        never confirms it, would hold the request (and the supplier order's auto-confirm,
        which open requests pause) open forever.
        """
        policy = self.inp.policy
        if self.return_deadline is None:  # auto-approved: the clock starts now
            self.return_deadline = workflow.now() + policy.after_sale_return_within
        workflow.set_current_details(
            "Approved; waiting for the customer's return shipment until "
            + self.return_deadline.isoformat()
        )
        if not await self._deadline_passed(
            lambda: self.status is not A.APPROVED,
            self.return_deadline,
            "return shipment deadline (auto-close)",
        ):
            if self.status is not A.RETURN_SHIPPED:
                return  # withdrawn by the customer
        else:
            await self._move(
                A.CANCELLED,
                Actor.SYSTEM,
                "",
                "closed: the return was not shipped in time",
                key=f"{workflow.info().workflow_id}:return_expired",
                at=self.return_deadline,
            )
            return
        if self.receive_deadline is None:
            self.receive_deadline = workflow.now() + policy.after_sale_receive_within
        workflow.set_current_details(
            "Return shipped; waiting for the supplier to confirm it until "
            + self.receive_deadline.isoformat()
        )
        if await self._deadline_passed(
            lambda: self.status is not A.RETURN_SHIPPED,
            self.receive_deadline,
            "return receipt deadline (auto-refund)",
        ):
            await self._pay_back(at=self.receive_deadline)

    async def _deadline_passed(
        self, answered: Callable[[], bool], deadline: datetime, summary: str
    ) -> bool:
        """Wait for a command until `deadline`; True if the deadline decides.

        A command whose change is still being recorded when the timer fires wins: it was
        accepted before the deadline passed.
        """
        try:
            await workflow.wait_condition(
                answered, timeout=until(deadline), timeout_summary=summary
            )
            return False
        except TimeoutError:
            await workflow.wait_condition(lambda: self.moving == 0)
            if answered():
                return False
            self.auto_ending = True
            return True

    async def _pay_back(
        self, at: datetime | None = None, actor: Actor = Actor.SYSTEM, actor_id: str = ""
    ) -> None:
        """Record and send the refund; `actor` is whoever's step released it (the log says so)."""
        self.moving += 1
        try:
            self.refund = await workflow.execute_local_activity_method(
                AfterSaleActivities.refund_after_sale,
                AfterSaleRefundParams(
                    key=f"{workflow.info().workflow_id}:refund",
                    order_no=self.inp.order_no,
                    at=at or workflow.now(),
                    actor=actor,
                    actor_id=actor_id,
                    after_sale_id=self.inp.id,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="compute and record the refund",
            )
            self.status = A.REFUNDED
        finally:
            self.moving -= 1
        if self.refund.refund_id:
            await workflow.execute_activity_method(
                PaymentActivities.issue_refund,
                IssueRefundParams(refund_id=self.refund.refund_id),
                start_to_close_timeout=PROVIDER_TIMEOUT,
                retry_policy=PROVIDER_RETRY,
                summary=f"refund {self.refund.amount}",
            )

    async def _move(
        self,
        status: AfterSaleStatus,
        actor: Actor,
        actor_id: str,
        note: str,
        key: str,
        carrier: str | None = None,
        tracking_no: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.moving += 1
        try:
            await self._record(status, actor, actor_id, note, key, carrier, tracking_no, at)
            self.status = status
        finally:
            self.moving -= 1

    async def _record(
        self,
        status: AfterSaleStatus,
        actor: Actor,
        actor_id: str,
        note: str,
        key: str,
        carrier: str | None,
        tracking_no: str | None,
        at: datetime | None,
    ) -> None:
        await workflow.execute_local_activity_method(
            AfterSaleActivities.update_after_sale,
            AfterSaleUpdateParams(
                key=key,
                order_no=self.inp.order_no,
                at=at or workflow.now(),
                actor=actor,
                actor_id=actor_id,
                after_sale_id=self.inp.id,
                status=status,
                note=note,
                return_carrier=carrier,
                return_tracking_no=tracking_no,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"after-sales → {status}",
        )

    # --- commands ---------------------------------------------------------------------

    def _require(self, *allowed: AfterSaleStatus, what: str) -> None:
        if self.auto_ending or self.moving:
            raise refusal(InvalidState(f"cannot {what}: the request is changing right now"))
        if self.status not in allowed:
            raise refusal(InvalidState(f"cannot {what}: request is {self.status}"))

    @workflow.update
    async def decide(self, cmd: AfterSaleDecision) -> AfterSaleSnapshot:
        with refusals():
            self._require(A.REQUESTED, what="decide")
            status = A.APPROVED if cmd.approve else A.REJECTED
            await self._move(status, Actor.SUPPLIER, cmd.actor_id, cmd.reason, update_key("decide"))
            if (
                status is A.APPROVED
                and self.inp.type is AfterSaleType.RETURN_REFUND
                and workflow.patched(RETURN_DEADLINES)
            ):
                # Set here so the approval's answer already says until when to ship back.
                self.return_deadline = workflow.now() + self.inp.policy.after_sale_return_within
        return self.snapshot()

    @decide.validator
    def _validate_decide(self, cmd: AfterSaleDecision) -> None:
        self._require(A.REQUESTED, what="decide")

    @workflow.update
    async def return_shipment(self, cmd: ReturnShipment) -> AfterSaleSnapshot:
        with refusals():
            self._check_return()
            await self._move(
                A.RETURN_SHIPPED,
                Actor.CUSTOMER,
                cmd.actor_id,
                f"{cmd.carrier} {cmd.tracking_no}",
                update_key("return"),
                cmd.carrier,
                cmd.tracking_no,
            )
            if workflow.patched(RETURN_DEADLINES):
                self.receive_deadline = workflow.now() + self.inp.policy.after_sale_receive_within
        return self.snapshot()

    @return_shipment.validator
    def _validate_return(self, cmd: ReturnShipment) -> None:
        self._check_return()

    def _check_return(self) -> None:
        if self.inp.type is not AfterSaleType.RETURN_REFUND:
            raise refusal(InvalidState("a refund-only request has no return shipment"))
        self._require(A.APPROVED, what="add a return shipment")

    @workflow.update
    async def receive_return(self, cmd: ReceiveReturn) -> AfterSaleSnapshot:
        with refusals():
            self._require(A.RETURN_SHIPPED, what="confirm the return")
            # The supplier's confirmation releases the refund: it is the supplier's step.
            await self._pay_back(actor=Actor.SUPPLIER, actor_id=cmd.actor_id)
        return self.snapshot()

    @receive_return.validator
    def _validate_receive(self, cmd: ReceiveReturn) -> None:
        self._require(A.RETURN_SHIPPED, what="confirm the return")

    @workflow.update
    async def cancel(self, cmd: CancelAfterSale) -> AfterSaleSnapshot:
        with refusals():
            self._require(A.REQUESTED, A.APPROVED, what="withdraw")
            await self._move(
                A.CANCELLED, Actor.CUSTOMER, cmd.actor_id, "withdrawn", update_key("cancel")
            )
        return self.snapshot()

    @cancel.validator
    def _validate_cancel(self, cmd: CancelAfterSale) -> None:
        self._require(A.REQUESTED, A.APPROVED, what="withdraw")

    @workflow.query
    def snapshot(self, _: SnapshotQuery | None = None) -> AfterSaleSnapshot:
        return AfterSaleSnapshot(
            id=self.inp.id,
            supplier_order_id=self.inp.supplier_order_id,
            item_id=self.inp.item_id,
            qty=self.inp.qty,
            type=self.inp.type,
            status=self.status,
            refund_amount=self.refund.amount if self.refund else None,
            refund_coins=self.refund.coins if self.refund else None,
            approve_deadline=self.approve_deadline,
            return_deadline=self.return_deadline,
            receive_deadline=self.receive_deadline,
        )
