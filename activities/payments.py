"""Refunds through the payment provider, by the original route, exactly once."""

from typing import Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.base import domain_failure, log
from db.session import write_session
from db.tables import Order, Refund
from domain.activity_params import IssueRefundParams
from domain.errors import NotFound
from domain.states import Actor


class PaymentProvider(Protocol):
    async def refund(self, refund_id: str, method: str, amount: str) -> str:
        """Send money back; idempotent on refund_id. Returns the provider's reference."""
        ...


class FakePaymentProvider:
    """Built-in dev provider: settles at once, remembers what it settled."""

    def __init__(self) -> None:
        self.settled: dict[str, str] = {}

    async def refund(self, refund_id: str, method: str, amount: str) -> str:
        return self.settled.setdefault(refund_id, f"fake-{method}-refund-{len(self.settled) + 1}")


class PaymentActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider
    ) -> None:
        self.sessions = sessions
        self.provider = provider

    @activity.defn
    async def issue_refund(self, p: IssueRefundParams) -> str:
        async with self.sessions() as s:
            refund = await s.get(Refund, p.refund_id)
            if refund is None:
                raise domain_failure(NotFound(f"unknown refund {p.refund_id!r}"))
            if refund.status == "succeeded" and refund.provider_ref:
                return refund.provider_ref
            method, amount = refund.method, str(refund.amount)
        # The provider call sits outside the transaction (it may be slow); its own
        # idempotency on refund_id makes the retry after a crash here safe.
        ref = await self.provider.refund(p.refund_id, method, amount)
        async with write_session(self.sessions) as s:
            refund = await s.get(Refund, p.refund_id)
            assert refund is not None
            if refund.status != "succeeded":
                refund.status = "succeeded"
                refund.provider_ref = ref
                settled_at = activity.info().current_attempt_scheduled_time
                refund.settled_at = settled_at
                log(
                    s,
                    refund.order_no,
                    "refund_settled",
                    settled_at,
                    Actor.SYSTEM,
                    "payment-provider",
                    refund.supplier_order_id,
                    refund_id=refund.id,
                    amount=str(refund.amount),
                    method=refund.method,
                    provider_ref=ref,
                    payer_id=refund.payer_id,
                )
                # Every refund settled counts, of money the order kept or of a payment it
                # never owed (that one was counted in `paid` when it arrived).
                await s.execute(
                    update(Order)
                    .where(Order.order_no == refund.order_no)
                    .values(refunded=Order.refunded + refund.amount)
                )
        return ref
