"""The one path a payment takes into an order, from the webhook or the dev provider.

The order workflow de-duplicates by event id and decides what the money is for
(applied, mismatch, duplicate, late: the last three are refunded by the
workflow). When the workflow no longer runs at all (it ended after its
late-payment grace), the payment can't be handed to it: it is recorded in
`payments` with outcome `unmatched` and logged on the order for an operator to
refund; it is never dropped.
"""

from datetime import UTC, datetime
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode

from db import queries
from db.session import write_session
from db.tables import OrderLog, Payment
from domain.errors import Conflict, NotFound
from domain.messages import PaymentEvent
from starter.api.errors import from_rpc_error
from starter.api.schemas import PaymentAccepted
from starter.api.temporal import TemporalGateway, order_workflow_id
from workflows.order import OrderWorkflow

UNMATCHED: Final = "unmatched"


async def deliver_payment(
    sessions: async_sessionmaker[AsyncSession],
    gateway: TemporalGateway,
    order_no: str,
    event: PaymentEvent,
) -> PaymentAccepted:
    async with sessions() as s:
        order = await queries.get_order(s, order_no)
        seen = await queries.get_payment(s, event.event_id)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    if seen is not None:
        if seen.order_no != order_no:
            raise Conflict(f"payment event {event.event_id!r} belongs to another order")
        return PaymentAccepted(order_no=order_no, event_id=event.event_id, outcome="duplicate")
    client = await gateway.client()
    handle = client.get_workflow_handle(order_workflow_id(order_no))
    try:
        await handle.signal(OrderWorkflow.payment, event)
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise from_rpc_error(err) from None
        await record_unmatched(sessions, order_no, event)
        return PaymentAccepted(order_no=order_no, event_id=event.event_id, outcome=UNMATCHED)
    return PaymentAccepted(order_no=order_no, event_id=event.event_id, outcome="signalled")


async def record_unmatched(
    sessions: async_sessionmaker[AsyncSession], order_no: str, event: PaymentEvent
) -> None:
    now = datetime.now(UTC)
    try:
        async with write_session(sessions) as s:
            s.add(
                Payment(
                    event_id=event.event_id,
                    order_no=order_no,
                    status=event.status,
                    amount=event.amount,
                    method=event.method,
                    outcome=UNMATCHED,
                    at=event.at or now,
                    payer_id=event.payer_id,
                )
            )
            s.add(
                OrderLog(
                    order_no=order_no,
                    actor="system",
                    actor_id="payment-provider",
                    action="payment_unmatched",
                    detail={
                        "event_id": event.event_id,
                        "status": event.status,
                        "amount": str(event.amount),
                        "method": event.method,
                        "payer_id": event.payer_id,
                        "note": "order workflow no longer running; refund by hand",
                    },
                    at=now,
                )
            )
    except IntegrityError:
        pass  # the same event was recorded by a concurrent delivery
