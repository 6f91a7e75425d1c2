"""Admission control: a bound on the command requests in flight in one API process.

Every command that reaches Temporal (the `Ctx` commands, the payment and carrier webhooks, a
webhook redelivery) takes a slot for as long as its handler runs. When all
`ORDERS_API_MAX_INFLIGHT` slots are taken, a request waits up to `ORDERS_API_QUEUE_TIMEOUT`
for one (first come, first served); if none frees up it is answered at once with 503
`overloaded`, `Retry-After: 1` and the usual error body, before anything is read or written
(no idempotency key reserved, no workflow touched), so a retry with the same Idempotency-Key
starts afresh. Reads (GET), the probes and /metrics never wait here.

Why: past its capacity the service (Temporal's backlog, the worker) only queues, and every
request in flight waits longer; answering the excess in milliseconds keeps the latency of
the accepted ones bounded and tells clients when to come back (docs/operations.md).
`ORDERS_API_MAX_INFLIGHT=0` turns the bound off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from starter.api.errors import ApiError

RETRY_AFTER_S = 1


class Overloaded(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            503,
            "overloaded",
            f"this API process has {limit} commands in flight, its limit; retry after "
            f"{RETRY_AFTER_S}s (with the same Idempotency-Key)",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


class Admission:
    """At most `limit` holders at a time (0: no bound); a newcomer waits up to `queue_timeout`
    seconds in a FIFO queue, then is refused. One per app (event loop)."""

    def __init__(self, limit: int, queue_timeout: float) -> None:
        self.limit = limit
        self.queue_timeout = queue_timeout
        self.in_flight = 0
        self.admitted = 0
        self.shed = 0
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._queue if not f.done())

    async def acquire(self) -> bool:
        """Take a slot (True), or give up after the queue timeout (False)."""
        if self.limit <= 0 or (self.in_flight < self.limit and not self.waiting):
            self.in_flight += 1
            self.admitted += 1
            return True
        if self.queue_timeout > 0 and await self._wait():
            self.admitted += 1
            return True
        self.shed += 1
        return False

    async def _wait(self) -> bool:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(fut)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await fut
        except TimeoutError:
            pass
        except BaseException:  # the request itself was cancelled (client gone)
            if fut.done() and not fut.cancelled():
                self.release()  # a slot was handed over meanwhile: pass it on
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._queue.remove(fut)
        # A slot handed over as the timeout fired is still ours.
        return fut.done() and not fut.cancelled()

    def release(self) -> None:
        """Hand the slot to the first one waiting, else free it."""
        if self.limit <= 0:
            self.in_flight -= 1
            return
        while self._queue:
            fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(None)  # in_flight unchanged: the slot changes hands
                return
        self.in_flight -= 1

    def collect(self) -> Iterable[Metric]:
        """Prometheus: registered in the app's registry (starter.api.observability)."""
        yield GaugeMetricFamily(
            "orders_api_commands_in_flight",
            "Command requests holding an admission slot in this API process",
            value=self.in_flight,
        )
        yield GaugeMetricFamily(
            "orders_api_commands_waiting",
            "Command requests waiting for an admission slot in this API process",
            value=self.waiting,
        )
        yield GaugeMetricFamily(
            "orders_api_command_slots",
            "ORDERS_API_MAX_INFLIGHT of this API process (0: no bound)",
            value=self.limit,
        )
        yield CounterMetricFamily(
            "orders_api_commands_shed",
            "Command requests answered 503 overloaded by this API process",
            value=self.shed,
        )

    def describe(self) -> Iterable[Metric]:
        return self.collect()


async def _admitted(request: Request) -> AsyncIterator[None]:
    admission: Admission = request.app.state.admission
    if not await admission.acquire():
        raise Overloaded(admission.limit)
    try:
        yield
    finally:
        admission.release()


# The slot is held around the endpoint function and given back before the response is sent.
Admitted = Annotated[None, Depends(_admitted, scope="function")]
admitted = Depends(_admitted, scope="function")
