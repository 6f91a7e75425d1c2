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

`GcPauses` exports the time each collection took as `python_gc_pause_seconds{generation}`
(prometheus_client's default collectors count collections, not their duration).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

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


def _installed() -> _Recorder:
    global _recorder
    if _recorder is None:
        _recorder = _Recorder()
        gc.callbacks.append(_recorder)
    return _recorder


class GcPauses(Collector):
    """`python_gc_pause_seconds{generation}` for the whole process (any registry may hold it;
    the hook is installed once)."""

    def __init__(self) -> None:
        self.recorder = _installed()

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "python_gc_pause_seconds",
            "Time the garbage collector stopped this process, per collection, by generation",
            labels=["generation"],
        )
        counts, sums = self.recorder.snapshot()
        for generation, per_bucket in counts.items():
            cumulative, buckets = 0, []
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], per_bucket, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            family.add_metric([str(generation)], buckets, sums[generation])
        yield family
