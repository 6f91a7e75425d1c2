"""Flash-sale expiry and bounded memory (issue 13, targets 5 and 6).

    .venv/bin/python -m bench.flashsale [--orders 10000] [--clients 16] [--payment-timeout 90]
                                        [--cache N] [--env K=V] [--dynamic-config K=V] [--keep]

One run starts its own `temporal server start-dev` (bench/server.py) and a PostgreSQL read
model (bench.scaleout.database), seeds bench.lifecycle's shop, and runs the service as deployed
with bench.scaleout's processes: one `python -m worker` and one `python -m starter.api`, with a
short ORDERS_PAYMENT_TIMEOUT so that deadlines fall while submissions are still arriving.
`--orders` unpaid orders are submitted through the HTTP API by `--clients` concurrent clients,
as fast as it takes them (429/503 retried after Retry-After), and all are left to expire.

Measured and printed: submit rate and p50/p99; each order's auto-cancel lateness (the time it
really closed, from its workflow's history — see histories.py for why not the read model —
minus its pay deadline) p50/p99/max, split into the server's timer, the wait for a poller and
the worker; the drain time after the last deadline; once a second the RSS of the worker, the
API and the server, and the worker's workflow cache size (its SDK metrics), from which the RSS
per cached workflow; the cores each process used and the load average. Checked: every order
CLOSED(PAYMENT_TIMEOUT), stock and coins back, tests/support/invariants.py, no client-visible
500, every process exits 0. A summary table, then a JSON line.

The modules:
    cli          options (`python -m bench.flashsale`, `__main__`)
    runner       one run: databases, server, processes, the sale, the checks
    submit       the clients submitting unpaid orders
    sampler      RSS, cache size and orders closed, once a second
    histories    when each order really closed, from its history
    report       the run's record and its figures; printer: the table and the JSON line
"""

from bench.flashsale.cli import main, parse_args
from bench.flashsale.printer import print_report, summary
from bench.flashsale.report import Report
from bench.flashsale.runner import run

__all__ = ["Report", "main", "parse_args", "print_report", "run", "summary"]
