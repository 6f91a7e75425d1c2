"""When each order really closed, from its workflow's history.

The read model cannot say: the close is recorded *at the deadline* (`closed_at` is the pay
deadline, by design: workflows/order.py passes `at=self.pay_deadline`). The workflow closes an
unpaid order in the workflow task that its deadline timer wakes: the `close_order` local
activity commits the read-model change (stock released, coins back, status CLOSED) inside that
task, and the task's completion records the activity's marker. So the marker's event time (the
server's clock when it accepted the task's result) is when the order was closed, at most a few
milliseconds after the commit. The same history times each step of the way:

    deadline → TimerFired            the server's timer queue (the timer fires late)
    TimerFired → WorkflowTaskStarted the task waits for a worker's poller (schedule-to-start)
    Started → marker recorded        the worker: replay if evicted, the local activity, commit
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.flashsale.submit import Submitted


@dataclass
class Close:
    order_no: str
    deadline: datetime
    fired: datetime | None = None
    started: datetime | None = None  # the first workflow task started after the timer fired
    closed: datetime | None = None  # the close_order marker
    task_timeouts: int = 0  # workflow tasks that timed out (e.g. a sticky one) before it
    error: str | None = None

    @property
    def lateness_s(self) -> float | None:
        return None if self.closed is None else (self.closed - self.deadline).total_seconds()

    def parts_s(self) -> dict[str, float] | None:
        if self.closed is None or self.fired is None or self.started is None:
            return None
        return {
            "timer": (self.fired - self.deadline).total_seconds(),
            "queue": (self.started - self.fired).total_seconds(),
            "worker": (self.closed - self.started).total_seconds(),
        }


def _time(e: object) -> datetime:
    return e.event_time.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined, no-any-return]


async def close_of(client: Client, s: Submitted) -> Close:
    c = Close(s.order_no, s.deadline)
    try:
        history = await client.get_workflow_handle(f"order-{s.order_no}").fetch_history()
    except Exception as err:
        c.error = f"{type(err).__name__}: {err}"[:200]
        return c
    for e in history.events:
        t = e.event_type
        if c.fired is None:
            if t == EventType.EVENT_TYPE_TIMER_FIRED:
                c.fired = _time(e)
            continue
        if t == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            c.task_timeouts += 1
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and c.started is None:
            c.started = _time(e)
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            c.closed = _time(e)
            break
    if c.closed is None:
        c.error = "no close marker after the deadline timer"
    return c


async def closes(
    client: Client, submitted: Sequence[Submitted], concurrency: int = 16
) -> list[Close]:
    sem = asyncio.Semaphore(concurrency)

    async def one(s: Submitted) -> Close:
        async with sem:
            return await close_of(client, s)

    return list(await asyncio.gather(*(one(s) for s in submitted)))
