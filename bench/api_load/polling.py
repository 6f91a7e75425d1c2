"""Lifecycles whose clients learn "paid" and "finished" by reading their order through the API,
at most once a second per order, as a page or an app would (GET /orders/{no})."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.scaleout.apis import expect
from bench.scaleout.lifecycles import Lifecycles
from domain.states import OrderStatus, SupplierOrderStatus

POLL_S = 1.0  # at most one GET /orders/{no} a second for each order
SETTLED = (OrderStatus.FINISHED.value, OrderStatus.CLOSED.value)

Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class _Watched:
    """One order being waited on: its waiters, its poll loop, when it was last read."""

    token: str
    waiters: list[tuple[Predicate, asyncio.Future[dict[str, Any]]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    last_at: float = float("-inf")


@dataclass
class PolledLifecycles(Lifecycles):
    """scaleout's lifecycles through HTTP, waiting by polling the order through the API."""

    poll_s: float = POLL_S
    live: bool = True  # GET /orders/{no}?live=false reads deadlines from the DB only
    polls: int = 0
    _watched: dict[str, _Watched] = field(default_factory=dict, init=False)

    async def wait_paid(self, order_no: str, supplier_order_id: str, token: str) -> None:
        def paid(order: dict[str, Any]) -> bool:
            return any(
                so["id"] == supplier_order_id
                and so["status"] != SupplierOrderStatus.PENDING_PAYMENT.value
                for so in order["supplier_orders"]
            )

        await self.until(order_no, token, paid)

    async def wait_settled(self, order_no: str, token: str) -> str:
        order = await self.until(order_no, token, lambda o: o["status"] in SETTLED)
        self._watched.pop(order_no, None)
        return str(order["status"])

    async def until(self, order_no: str, token: str, predicate: Predicate) -> dict[str, Any]:
        """The order as the API shows it once `predicate` holds; one poll loop per order, shared
        by every waiter on it (both supplier sides wait on the same order)."""
        w = self._watched.setdefault(order_no, _Watched(token))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        w.waiters.append((predicate, fut))
        if w.task is None or w.task.done():
            w.task = asyncio.create_task(self._poll(order_no, w))
        return await fut

    async def _poll(self, order_no: str, w: _Watched) -> None:
        while w.waiters:
            await asyncio.sleep(max(0.0, w.last_at + self.poll_s - time.monotonic()))
            w.last_at = time.monotonic()
            try:
                path = f"/orders/{order_no}" + ("" if self.live else "?live=false")
                r = await self.apis.call("GET", path, token=w.token)
                order = expect(r, 200, f"GET /orders/{order_no}")
            except Exception as err:
                for _, fut in w.waiters:
                    if not fut.done():
                        fut.set_exception(err)
                w.waiters.clear()
                return
            self.polls += 1
            waiting = []
            for predicate, fut in w.waiters:
                if fut.done():  # the waiter gave up (its lifecycle timed out)
                    continue
                if predicate(order):
                    fut.set_result(order)
                else:
                    waiting.append((predicate, fut))
            w.waiters = waiting
