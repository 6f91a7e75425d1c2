"""`python_gc_pause_seconds{generation}`: how long each garbage collection stopped this
process (prometheus_client's default collectors count collections, not their duration); the
times come from starter.gc_pauses' recorder."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from starter.gc_pauses import BUCKETS, recorder


class GcPauses(Collector):
    """`python_gc_pause_seconds{generation}` for the whole process (any registry may hold it;
    the hook is installed once)."""

    def __init__(self) -> None:
        self.recorder = recorder()

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
