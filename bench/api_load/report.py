"""The record of one run, its targets, and the JSON line that ends the output."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.api_load.gc import Pauses
from bench.api_load.phases import TARGET_STEPS, LoadPhase
from bench.lifecycle.repo import code_version
from bench.lifecycle.run import Run
from bench.lifecycle.stats import quantile
from bench.scaleout.report import Laps

# Issue 13, targets 1 and 2.
TARGET_RATIO_PCT = 10.0
TARGET_STEP_P99_MS = 300.0  # submit, ship, confirm, review at (b)'s load
TARGET_OVERLOAD_P99_MS = 1000.0  # accepted commands at (c)'s load
STEP_TARGETS = ("submit", "ship", "confirm", "review")


@dataclass
class Report(Laps):
    loadavg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    empty: Run | None = None
    steady: LoadPhase | None = None
    overload: LoadPhase | None = None
    api_env: dict[str, str] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    api_gc: dict[str, Pauses] = field(default_factory=dict)  # per API process, whole run
    elapsed_s: float = 0.0

    @property
    def ratio_pct(self) -> float | None:
        if self.empty is None or self.steady is None or self.empty.rate <= 0:
            return None
        return 100.0 * self.steady.phase.run.rate / self.empty.rate

    @property
    def errors(self) -> list[str]:
        """What went wrong (not targets missed): failed lifecycles, unfinished orders, exits."""
        out: list[str] = []
        for lp in (self.steady, self.overload):
            if lp is None:
                continue
            run = lp.phase.run
            out += [f"({lp.phase.name}) {e}" for e in run.errors[:5]]
            if lp.finished != run.done:
                out.append(f"({lp.phase.name}) {lp.finished} of {run.done} orders FINISHED")
        out += [f"{name} exited {code}" for name, code in self.exits.items() if code != 0]
        return out

    def targets(self) -> list[tuple[str, str, bool | None]]:
        """(target, measured, met) for issue 13's targets 1 and 2; met is None if not measured."""
        rows: list[tuple[str, str, bool | None]] = []
        ratio = self.ratio_pct
        rows.append(
            (
                f"lifecycles/s >= {TARGET_RATIO_PCT:g} % of empty",
                "-" if ratio is None else f"{ratio:.1f} %",
                None if ratio is None else ratio >= TARGET_RATIO_PCT,
            )
        )
        steps = self.steady.phase.run.steps_s if self.steady else {}
        for s in STEP_TARGETS:
            xs = steps.get(s)
            p99 = 1000 * quantile(xs, 0.99) if xs else None
            rows.append(
                (
                    f"{s} p99 <= {TARGET_STEP_P99_MS:g} ms at (b)",
                    "-" if p99 is None else f"{p99:.0f} ms",
                    None if p99 is None else p99 <= TARGET_STEP_P99_MS,
                )
            )
        if self.overload is not None:
            t = self.overload.tally
            xs = t.accepted_s.get("command", [])
            p99 = 1000 * quantile(xs, 0.99) if xs else None
            rows.append(
                (
                    f"accepted commands p99 <= {TARGET_OVERLOAD_P99_MS:g} ms at (c)",
                    "-" if p99 is None else f"{p99:.0f} ms",
                    None if p99 is None else p99 <= TARGET_OVERLOAD_P99_MS,
                )
            )
            rows.append(("no request timed out at (c)", f"{t.timeouts} timed out", t.timeouts == 0))
        return rows

    def to_json(self, args: Any) -> dict[str, Any]:
        def load_phase(lp: LoadPhase | None) -> dict[str, Any] | None:
            if lp is None:
                return None
            s = lp.phase.summary()
            s.update(
                load=lp.load,
                rate_offered=round(lp.rate_offered, 3),
                arrivals=lp.arrivals,
                finished=lp.finished,
                polls=lp.polls,
                requests=lp.requests(),
                steps_p50_p99_ms={
                    k: v for k, v in s["steps_p50_p99_ms"].items() if k in (*TARGET_STEPS,)
                }
                | {k: v for k, v in s["steps_p50_p99_ms"].items() if k not in (*TARGET_STEPS,)},
            )
            return s

        ratio = self.ratio_pct
        return {
            "bench": "api_load",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "code": code_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in self.loadavg_start],
            "apis": args.apis,
            "api_env": self.api_env,
            "concurrency": args.concurrency,
            "poll": {"every_s": args.poll_s, "live": not args.poll_no_live},
            "empty": None
            if self.empty is None
            else {
                "workflows": self.empty.done,
                "errors": len(self.empty.errors),
                "per_s": round(self.empty.rate, 2),
                "cores": [round(x, 2) for x in self.empty.cores()],
            },
            "b": load_phase(self.steady),
            "c": load_phase(self.overload),
            "ratio_pct": None if ratio is None else round(ratio, 2),
            "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in self.targets()],
            "errors": self.errors,
            "exits": self.exits,
            "api_gc": self.api_gc,
            "elapsed_s": round(self.elapsed_s, 1),
            "timings_s": self.timings,
        }
