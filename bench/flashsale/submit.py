"""The flash sale's customers: unpaid orders submitted through the HTTP API as fast as it takes
them, by a few concurrent clients (each retry honouring Retry-After: bench.scaleout.apis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bench.lifecycle.shop import Shop
from bench.scaleout.apis import Apis, expect
from bench.scaleout.config import JWT_SECRET
from starter.security import Role, mint_token


@dataclass
class Submitted:
    order_no: str
    deadline: datetime  # the pay deadline the API answered with
    latency_s: float  # the whole call as the client saw it, retries included
    done_at: float  # time.monotonic() when the answer came


@dataclass
class Submits:
    """Every submit of the run (warm-up included, flagged by `measured`)."""

    apis: Apis
    shop: Shop
    prefix: str
    orders: list[Submitted] = field(default_factory=list)
    measured: list[Submitted] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0
    on_submit: Callable[[], None] = lambda: None

    @property
    def rate(self) -> float:
        wall = self.ended_at - self.started_at
        return len(self.measured) / wall if wall > 0 else 0.0

    async def one(self, i: int, measured: bool) -> None:
        req = self.shop.request(i)
        token = mint_token(JWT_SECRET, req.customer_id, Role.CUSTOMER)
        body = {
            "lines": [{"sku": li.sku, "qty": li.qty} for li in req.lines],
            "coins": str(req.coins),
        }
        t0 = time.monotonic()
        try:
            r = await self.apis.call(
                "POST", "/orders", token=token, body=body, key=f"{self.prefix}-{i}"
            )
            placed = expect(r, 201, "submit")
        except Exception as err:  # counted and reported; the run goes on
            self.errors.append(f"order {i}: {err}"[:300])
            return
        t1 = time.monotonic()
        s = Submitted(
            placed["order_no"], datetime.fromisoformat(placed["pay_deadline"]), t1 - t0, t1
        )
        self.orders.append(s)
        if measured:
            self.measured.append(s)
        self.on_submit()

    async def run(self, first: int, n: int, clients: int, measured: bool = True) -> None:
        """Orders first..first+n-1, `clients` at a time, each client one request after another."""
        numbers = iter(range(first, first + n))

        async def client() -> None:
            for i in numbers:
                await self.one(i, measured)

        if measured:
            self.started_at = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        if measured:
            self.ended_at = time.monotonic()
