"""Order-lifecycle throughput against empty-workflow throughput, on one dev server, in one run.

    .venv/bin/python -m bench.lifecycle [--orders 300] [--concurrency 50] [--empty 300]
                                        [--in-memory] [--database-url URL] ...

Phase A runs N empty workflows; phase B runs N full two-supplier order lifecycles (submit by
update-with-start, payment signal, ship / confirm receipt / review updates on both supplier
orders, the order's result) with the real worker and a real read model. Both phases use the same
worker settings and the same bounded concurrency. Printed: both rates, their ratio against the
target, lifecycle latency, what one lifecycle costs the server (history events per workflow,
persistence requests, server CPU), and a JSON line with all of it.

The server, the worker and this client share the machine: on 2 cores the Python process (worker +
driver) and the Temporal server compete for CPU, which the report shows (CPU seconds per unit of
work for each side).

The modules, one concern each:
    cli               options and the run (`python -m bench.lifecycle`, `__main__`)
    worker_settings   the worker's knobs; the empty and the order worker
    worker_processes  the worker in this process or in bench.worker_proc processes
    shop              the read model: seeded products and customers
    watch             the driver's read-model watch (paid, settled)
    lifecycles        one lifecycle through the Temporal client, timed per step
    driver            bounded-concurrency load, warm-ups, step times, all-closed wait
    phases            phase A (empty workflows) and phase B (lifecycles)
    run, stats        what a phase measured; percentiles
    cpu, measure      CPU from /proc; a phase's server usage and CPU
    histories, cost   event counts of recorded histories; server cost per unit
    report, result    the printed report; the JSON line
    repo              the repository's root and commit

Everything the module bench/lifecycle.py offered is importable from here as before.
"""

from bench.lifecycle.cli import main, parse_args
from bench.lifecycle.cost import EXECUTION_WRITES, per_unit, top
from bench.lifecycle.cpu import machine_busy_s, process_cpu_s
from bench.lifecycle.driver import UNIT_TIMEOUT_S, StepTimes, drive, wait_all_closed, warm_up
from bench.lifecycle.histories import COUNTED, breakdown, history_counts
from bench.lifecycle.lifecycles import Lifecycles
from bench.lifecycle.measure import METRICS_SETTLE_S, measured
from bench.lifecycle.phases import phase_empty, phase_lifecycle
from bench.lifecycle.repo import ROOT, code_version
from bench.lifecycle.report import NOISY_OTHER_CORES, report
from bench.lifecycle.result import TARGET_RATIO_PCT
from bench.lifecycle.run import Run
from bench.lifecycle.shop import (
    CUSTOMERS,
    HOME,
    PRODUCTS_PER_SUPPLIER,
    SUPPLIERS,
    Shop,
    connect_shop,
    open_shop,
)
from bench.lifecycle.stats import nearest_rank, quantile
from bench.lifecycle.stats import quantile as _q
from bench.lifecycle.watch import ReadModelWatch
from bench.lifecycle.worker_processes import Topology, worker_processes, workers
from bench.lifecycle.worker_settings import WorkerSettings, empty_worker, lifecycle_worker

__all__ = [
    "COUNTED",
    "CUSTOMERS",
    "EXECUTION_WRITES",
    "HOME",
    "METRICS_SETTLE_S",
    "NOISY_OTHER_CORES",
    "PRODUCTS_PER_SUPPLIER",
    "ROOT",
    "SUPPLIERS",
    "TARGET_RATIO_PCT",
    "UNIT_TIMEOUT_S",
    "Lifecycles",
    "ReadModelWatch",
    "Run",
    "Shop",
    "StepTimes",
    "Topology",
    "WorkerSettings",
    "_q",
    "breakdown",
    "code_version",
    "connect_shop",
    "drive",
    "empty_worker",
    "history_counts",
    "lifecycle_worker",
    "machine_busy_s",
    "main",
    "measured",
    "nearest_rank",
    "open_shop",
    "parse_args",
    "per_unit",
    "phase_empty",
    "phase_lifecycle",
    "process_cpu_s",
    "quantile",
    "report",
    "top",
    "wait_all_closed",
    "warm_up",
    "worker_processes",
    "workers",
]
