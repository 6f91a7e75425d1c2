"""Full lifecycles through the HTTP API, the empty-workflow rate of the same server, and what
the API does beyond its capacity (issue 13, targets 1 and 2).

    .venv/bin/python -m bench.api_load [--orders 200] [--concurrency 16] [--empty 300]
                                       [--overload-seconds 30] [--apis 1]
                                       [--api-env ORDERS_API_MAX_INFLIGHT=16 ...]

One run starts its own `temporal server start-dev` (bench/server.py, SQLite file) and a
throwaway PostgreSQL read model (`--pg-url`: a fresh database on an existing server), seeds
bench.lifecycle's shop, and runs the service as deployed (bench.scaleout's Service): one
`python -m worker` and `--apis` `python -m starter.api` processes, requests spread over them
round robin. Then, on that one server:

  (a) empty workflows (`make bench`'s phase A: a worker process of its own, 50 in flight),
      first, while the service's processes are up and idle;
  (b) `--orders` full 2-supplier lifecycles through HTTP, `--concurrency` (16) in flight
      (a closed loop): submit, pay, and on each supplier order ship, a carrier scan, confirm
      receipt, review (bench.scaleout's lifecycle), every command with an Idempotency-Key;
      a client waiting for "paid" or "finished" reads its order, GET /orders/{no}, at most
      once a second (polling);
  (c) 2x the offered load of (b) as an open loop: lifecycles arrive evenly at twice (b)'s
      measured lifecycles/s for `--overload-seconds`, whatever happens to the ones before.
      A request the API sheds (429, or 503 with Retry-After) is retried after Retry-After
      with the same key; an attempt that gets no answer within `--request-timeout` (10 s), or
      a 504, counts as timed out (and is retried).

Printed: the machine's load average and the cores each side used per phase (server, worker,
APIs, PostgreSQL, this driver, everything else), the ratio (b)/(a) (target >= 10 %), per step
p50/p99 as the clients saw them (retries included; targets: submit, ship, confirm, review
p99 <= 300 ms), per attempt accepted / shed / timed-out counts and accepted latency, (c)'s
accepted commands p99 (target <= 1 s, none timing out), a table of the targets and a JSON
line last. Exit 1 if a lifecycle failed, an order did not finish or a process did not exit 0
(targets missed do not fail the run).

The modules, one concern each:
    cli        options (`python -m bench.api_load`, `__main__`)
    runner     one run: databases, server, processes, the phases
    phases     (a), (b) and (c), and what the clients' requests met
    polling    scaleout's lifecycles, waiting by reading the order through the API
    arrivals   the open-loop driver
    progress   the progress bar
    report     the run's record, its targets and JSON; printer: the printed report

Shared with bench.scaleout (processes, readiness, the client-side balancer and its tally, the
HTTP lifecycle, phase CPU accounting) and bench.lifecycle (shop, empty phase, driver, stats).
"""

from bench.api_load.arrivals import open_loop
from bench.api_load.cli import main, parse_args
from bench.api_load.phases import TARGET_STEPS, LoadPhase, closed_phase, empty_rate, overload_phase
from bench.api_load.polling import POLL_S, PolledLifecycles
from bench.api_load.printer import print_report
from bench.api_load.report import (
    TARGET_OVERLOAD_P99_MS,
    TARGET_RATIO_PCT,
    TARGET_STEP_P99_MS,
    Report,
)
from bench.api_load.runner import run

__all__ = [
    "POLL_S",
    "TARGET_OVERLOAD_P99_MS",
    "TARGET_RATIO_PCT",
    "TARGET_STEPS",
    "TARGET_STEP_P99_MS",
    "LoadPhase",
    "PolledLifecycles",
    "Report",
    "closed_phase",
    "empty_rate",
    "main",
    "open_loop",
    "overload_phase",
    "parse_args",
    "print_report",
    "run",
]
