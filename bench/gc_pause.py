"""What a full garbage collection costs the API and the worker, before and after
`starter.gc_pauses.freeze_startup_objects()`.

`python -m bench.gc_pause [--repeat N]`: for each role, a fresh interpreter imports what the
process imports (the API: `create_app()`; the worker: `worker` and its workflow modules),
then times `gc.collect()` N times (min / median, ms) with the startup objects tracked, freezes
them, and times it again. Printed: a table, the machine's load, and a JSON line.

The figure is the pause every coroutine on the process's event loop sees when a full
collection runs (under load, one every few seconds); objects made while serving add to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc, json, statistics, sys, time
role, repeat = sys.argv[1], int(sys.argv[2])
if role == "api":
    from starter.api.app import create_app
    app = create_app()
else:
    import worker
    import workflows.order, workflows.supplier_order, workflows.after_sale
from starter.gc_pauses import freeze_startup_objects

def full():
    took = []
    for _ in range(repeat):
        t = time.perf_counter()
        gc.collect()
        took.append(1000 * (time.perf_counter() - t))
    return {"min_ms": round(min(took), 2), "median_ms": round(statistics.median(took), 2)}

tracked = len(gc.get_objects())
before = full()
frozen = freeze_startup_objects()
after = full()
print(json.dumps({"role": role, "tracked": tracked, "frozen": frozen, "before": before,
                  "after": after, "left": len(gc.get_objects())}))
"""


def probe(role: str, repeat: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, role, str(repeat)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gc_pause", description=__doc__)
    p.add_argument("--repeat", type=int, default=7, help="collections timed each way (7)")
    args = p.parse_args(argv)
    load_start = os.getloadavg()
    rows = [probe(role, args.repeat) for role in ("api", "worker")]
    load_end = os.getloadavg()

    table = Table(title="a full gc.collect(), ms (min / median)")
    for column in ("process", "objects tracked", "before freeze", "after freeze", "frozen"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["role"],
            f"{r['tracked']:,}",
            f"{r['before']['min_ms']:.1f} / {r['before']['median_ms']:.1f}",
            f"{r['after']['min_ms']:.1f} / {r['after']['median_ms']:.1f}",
            f"{r['frozen']:,}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"load average (1 min) {load_start[0]:.2f} -> {load_end[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        json.dumps(
            {
                "bench": "gc_pause",
                "repeat": args.repeat,
                "cpus": os.cpu_count(),
                "loadavg_start": [round(x, 2) for x in load_start],
                "loadavg_end": [round(x, 2) for x in load_end],
                "processes": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
