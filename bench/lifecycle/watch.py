"""The driver's view of the read model: waits for supplier orders paid and orders settled."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.tables import Order, SupplierOrder
from domain.states import OrderStatus, SupplierOrderStatus


class ReadModelWatch:
    """Resolves "supplier order X is paid" and "order Y is settled" from the read model.

    The driver, like the API and its users, learns from the read model, not by asking Temporal:
    a `describe()` or `result()` per workflow would itself be server load the product does not
    cause. One query per tick answers every waiting lifecycle.
    """

    # One tick every 100 ms: a lifecycle waits on the read model twice, so this adds ~0.1 s to
    # a ~10 s lifecycle, while a 20 ms tick spent ~25 ms of driver CPU per lifecycle polling
    # (py-spy) on the two cores the server and the worker need.
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tick_s: float = 0.1) -> None:
        self.sessions = sessions
        self.tick_s = tick_s
        self.paid_waits: dict[str, asyncio.Future[None]] = {}
        self.settled_waits: dict[str, asyncio.Future[str]] = {}
        self.queries = 0
        self._task: asyncio.Task[None] | None = None

    async def paid(self, supplier_order_id: str) -> None:
        """Until the supplier order has left PENDING_PAYMENT."""
        fut = self.paid_waits.setdefault(
            supplier_order_id, asyncio.get_running_loop().create_future()
        )
        await fut

    async def settled(self, order_no: str) -> str:
        """Until the order is FINISHED or CLOSED in the read model; returns which."""
        fut = self.settled_waits.setdefault(order_no, asyncio.get_running_loop().create_future())
        return await fut

    async def __aenter__(self) -> ReadModelWatch:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            so_ids = list(self.paid_waits)
            order_nos = list(self.settled_waits)
            if not so_ids and not order_nos:
                continue
            self.queries += 1
            try:
                async with self.sessions() as s:
                    paid = (
                        (
                            await s.scalars(
                                select(SupplierOrder.id).where(
                                    SupplierOrder.id.in_(so_ids),
                                    SupplierOrder.status
                                    != SupplierOrderStatus.PENDING_PAYMENT.value,
                                )
                            )
                        ).all()
                        if so_ids
                        else []
                    )
                    settled = (
                        (
                            await s.execute(
                                select(Order.order_no, Order.status).where(
                                    Order.order_no.in_(order_nos),
                                    Order.status.in_(
                                        [OrderStatus.FINISHED.value, OrderStatus.CLOSED.value]
                                    ),
                                )
                            )
                        ).all()
                        if order_nos
                        else []
                    )
            except Exception as err:  # a busy read model: try again next tick
                print(f"  (read-model watch query failed: {err})", file=sys.stderr)
                continue
            # A waiter that gave up (a unit timed out) cancelled its future: skip it, or the
            # watch itself would die of InvalidStateError and every later wait hang.
            for so_id in paid:
                if not (fut := self.paid_waits.pop(so_id)).done():
                    fut.set_result(None)
            for order_no, status in settled:
                if not (done := self.settled_waits.pop(order_no)).done():
                    done.set_result(str(status))
