"""Run a process's main coroutine on uvloop, the event loop the API's uvicorn also picks.

The worker's hot path is event-loop plumbing: every workflow activation is a round trip to the
SDK's activation threads, woken with `call_soon_threadsafe` (SQLite statements were too, until
they moved onto the loop's thread: db/inline_sqlite.py). uvloop does that (and socket I/O) in C.
ORDERS_EVENT_LOOP=asyncio keeps the standard loop (a comparison, or a platform without uvloop).
"""

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop unless ORDERS_EVENT_LOOP=asyncio or uvloop is not installed."""
    if os.environ.get("ORDERS_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # e.g. Windows: uvloop does not build there
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
