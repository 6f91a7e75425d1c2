"""The garbage collector in long-running processes: startup objects frozen, pauses measured.

Importing the API (FastAPI, SQLAlchemy, pydantic, temporalio and this project) leaves ~180,000
objects that live as long as the process; the worker ~125,000. A full collection (the oldest
generation) walks all of them: ~100 ms in the API and ~65 ms in the worker on this machine
(`python -m bench.gc_pause`), and under load one comes every few seconds. Everything on the
event loop stalls meanwhile: every request in flight, every workflow activation. The
bench process showed them as the whole-page p99 of `make bench-search` (bench/README.md).

`freeze_startup_objects()` moves what startup made into the permanent generation, which
collections skip (CPython's gc.freeze): a full collection then walks only what was made since.
Objects made later are collected as usual; a frozen object is never freed, which suits what
an import or the app's construction makes, as it lives until exit anyway.

`recorder()` times every collection, by generation, for the API's
`python_gc_pause_seconds` (starter/api/gc_metrics.py). Only the standard library here: the
worker imports this module, and the workflow sandbox validates the worker's modules.
"""

from __future__ import annotations

import gc
import time
from typing import Any

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def freeze_startup_objects() -> int:
    """Collect what startup left as garbage, freeze the rest; how many objects are frozen."""
    gc.collect()  # garbage goes now, not into the permanent generation for good
    gc.freeze()
    return gc.get_freeze_count()


class _Recorder:
    """Per generation, a cumulative histogram of collection times (one per process).

    No lock: CPython runs one collection at a time, callbacks included (a collection that
    would start meanwhile is skipped), so only one callback ever writes. A lock would also
    deadlock: the scrape that holds it allocates, which can start a collection whose
    callback then waits for the lock on the same thread.
    """

    def __init__(self) -> None:
        self.counts = {g: [0] * (len(BUCKETS) + 1) for g in range(3)}
        self.sums = dict.fromkeys(range(3), 0.0)
        self.started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        if self.started is None:
            return
        took, self.started = time.perf_counter() - self.started, None
        generation = int(info.get("generation", 2))
        slot = next((i for i, b in enumerate(BUCKETS) if took <= b), len(BUCKETS))
        self.counts[generation][slot] += 1
        self.sums[generation] += took

    def snapshot(self) -> tuple[dict[int, list[int]], dict[int, float]]:
        """Copies to read from (each copy is one C call, which no collection interrupts)."""
        return {g: list(c) for g, c in self.counts.items()}, dict(self.sums)


_recorder: _Recorder | None = None


def recorder() -> _Recorder:
    """The process's recorder, installed in gc.callbacks the first time it is asked for."""
    global _recorder
    if _recorder is None:
        _recorder = _Recorder()
        gc.callbacks.append(_recorder)
    return _recorder
