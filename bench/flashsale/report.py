"""The record of one run, and the figures derived from it (percentiles, memory per workflow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.flashsale.histories import Close
from bench.flashsale.sampler import Sample
from bench.lifecycle.stats import quantile
from bench.scaleout.apis import Tally
from bench.scaleout.checks import Check
from bench.scaleout.report import Laps

# A window's load: the 1-minute load average at its start and end, the cores each side used.
Window = dict[str, Any]


def pct(xs: list[float]) -> dict[str, float]:
    """p50/p99/max, rounded to ms."""
    return {
        "p50": round(quantile(xs, 0.5), 3),
        "p99": round(quantile(xs, 0.99), 3),
        "max": round(max(xs), 3) if xs else 0.0,
    }


@dataclass
class Report(Laps):
    orders: int = 0
    clients: int = 0
    payment_timeout_s: float = 0.0
    cache_max: int = 0
    submit_rate: float = 0.0
    submit_s: list[float] = field(default_factory=list)
    submit_errors: list[str] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)
    drain_s: float | None = None  # last close - last deadline (histories)
    first_deadline_during_submits: bool = False
    submits_ended: datetime | None = None  # wall clock of the last submit's answer
    samples: list[Sample] = field(default_factory=list)
    base: Sample | None = None  # after the warm-up, before the measured submits
    all_open: Sample | None = None  # right after the last submit
    peaks_mb: dict[str, float] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)  # submit, drain
    checks: list[Check] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    exits: dict[str, int] = field(default_factory=dict)
    worker_problems: list[str] = field(default_factory=list)
    loadavg_start: tuple[float, float, float] = (0, 0, 0)
    database_url: str = ""
    elapsed_s: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [msg for ok, msg in self.checks if not ok]

    # --- figures ----------------------------------------------------------------------------

    def lateness(self) -> dict[str, Any]:
        late = [x for c in self.closes if (x := c.lateness_s) is not None]
        parts = [p for c in self.closes if (p := c.parts_s()) is not None]
        end = self.submits_ended
        during = [
            x
            for c in self.closes
            if (x := c.lateness_s) is not None and end is not None and c.deadline <= end
        ]
        after = [
            x
            for c in self.closes
            if (x := c.lateness_s) is not None and end is not None and c.deadline > end
        ]
        return {
            "orders": len(late),
            "total_s": pct(late),
            # deadlines that fell while submissions were still arriving, and those after
            "during_submits": {"orders": len(during), **pct(during)},
            "after_submits": {"orders": len(after), **pct(after)},
            "timer_s": pct([p["timer"] for p in parts]),
            "queue_s": pct([p["queue"] for p in parts]),
            "worker_s": pct([p["worker"] for p in parts]),
            "over_5s": sum(1 for x in late if x > 5),
            "task_timeouts": sum(c.task_timeouts for c in self.closes),
        }

    def memory(self) -> dict[str, Any]:
        """RSS per cached workflow: the worker's growth while its cache fills, per workflow
        cached; per open workflow beyond the cache: its growth after the cache is full, per
        workflow submitted since."""
        out: dict[str, Any] = {
            "cache_max": self.cache_max,
            "base_mb": self.base.rss_mb if self.base else {},
            "all_open_mb": self.all_open.rss_mb if self.all_open else {},
            "all_open_workflows": self.all_open.submitted if self.all_open else 0,
            "all_open_cached": self.all_open.cached if self.all_open else None,
            "peak_mb": self.peaks_mb,
            "per_cached_kb": None,
            "per_uncached_open_kb": None,
        }
        # ~20 points of the run: seconds, open workflows, cached, worker RSS MB, orders closed
        step = max(len(self.samples) // 20, 1)
        out["series"] = [
            [
                round(s.t - self.samples[0].t),
                s.submitted,
                s.cached,
                round(s.rss_mb.get("worker", 0)),
                s.closed,
            ]
            for s in self.samples[::step]
        ]
        base, end = self.base, self.all_open
        if base is None or end is None:
            return out
        during = [s for s in self.samples if base.t <= s.t <= end.t and s.cached is not None]
        full = next((s for s in during if (s.cached or 0) >= self.cache_max), None)
        upto = full or end
        grown = (upto.cached or 0) - (base.cached or 0)
        if grown > 0:
            rss = upto.rss_mb["worker"] - base.rss_mb["worker"]
            out["per_cached_kb"] = round(1024 * rss / grown, 1)
        if full is not None and end.submitted - full.submitted >= 100:
            rss = end.rss_mb["worker"] - full.rss_mb["worker"]
            out["per_uncached_open_kb"] = round(1024 * rss / (end.submitted - full.submitted), 2)
        return out
