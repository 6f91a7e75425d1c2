"""A rich progress bar over a phase, fed from a counter the phase already keeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

# On stderr: stdout carries the report and its JSON line.
CONSOLE = Console(stderr=True)


@contextlib.asynccontextmanager
async def progress(what: str, total: int, done: Callable[[], int]) -> AsyncIterator[None]:
    """Show `done()` of `total` while the block runs (twice a second)."""
    columns = (
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=CONSOLE) as bar:
        task = bar.add_task(what, total=total)

        async def tick() -> None:
            while True:
                bar.update(task, completed=done())
                await asyncio.sleep(0.5)

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            bar.update(task, completed=done())
