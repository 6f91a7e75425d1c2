"""The record of one run: its phases, faults, checks and what the clients and logs saw."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.scaleout.apis import Tally
from bench.scaleout.checks import Check
from bench.scaleout.faults import Faults
from bench.scaleout.phase import Phase


@dataclass
class Laps:
    """Where a run's time went: `lap(name)` records the seconds since the last lap (shared by
    the scaleout, api_load and flashsale reports)."""

    timings: dict[str, float] = field(default_factory=dict)
    _lap: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self._lap, 1)
        self._lap = now


@dataclass
class Report(Laps):
    phases: list[Phase] = field(default_factory=list)
    faults: Faults | None = None
    checks: list[Check] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    pg_conflicts: int = 0
    pg_examples: list[str] = field(default_factory=list)
    isolation: str = ""
    exits: dict[str, int] = field(default_factory=dict)
    database_url: str = ""
    order_nos: list[str] = field(default_factory=list)
    dup_paid: list[str] = field(default_factory=list)
    customer_prefix: str = ""
    loadavg_start: tuple[float, float, float] = (0, 0, 0)
    elapsed_s: float = 0.0
    worker_problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [msg for ok, msg in self.checks if not ok]
