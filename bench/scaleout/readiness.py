"""Waiting until the service's processes are ready: a worker polls, an API answers /readyz."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx
from temporalio.client import Client

from bench.scaleout.service import Service
from starter.dev import has_workflow_poller

READY_TIMEOUT_S = 90.0  # a process start on a busy 2-core machine


async def poll_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, what: str, tick: float = 0.1
) -> float:
    """Poll `probe` until true, with a deadline; returns the seconds it took."""
    t0 = time.monotonic()
    while not await probe():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(tick)
    return time.monotonic() - t0


async def ready(svc: Service, client: Client, task_queue: str) -> float:
    """Until the worker's own pid polls the task queue / the API answers /readyz 200."""
    if svc.role == "worker":

        async def probe() -> bool:
            svc.check_alive()
            return await has_workflow_poller(client, task_queue, svc.pid)

        return await poll_until(probe, READY_TIMEOUT_S, f"{svc.name} polling")

    async with httpx.AsyncClient(base_url=svc.url, timeout=5) as http:

        async def probe() -> bool:
            svc.check_alive()
            try:
                return (await http.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        return await poll_until(probe, READY_TIMEOUT_S, f"{svc.name} /readyz")


async def start_ready(services: Sequence[Service], client: Client, task_queue: str) -> None:
    for svc in services:
        await svc.start()
    await asyncio.gather(*(ready(svc, client, task_queue) for svc in services))
