"""Scale-out and fault proof: 2 worker and 2 API processes on one Temporal dev server.

    .venv/bin/python -m bench.scaleout [--orders 100] [--fault-orders 100] [--concurrency 32]
                                       [--pg-url URL] [--in-memory] [--keep]

One run starts its own `temporal server start-dev` (bench/server.py) and a throwaway PostgreSQL
read model (tests/support/postgres.py; `--pg-url` puts a fresh database on an existing server
instead), migrates it and seeds two suppliers' products and 64 customers (bench.lifecycle.Shop).
The service runs as deployed: `python -m worker` and `python -m starter.api` processes on one
task queue, each API on its own port. The load is full lifecycles through HTTP — submit, pay,
and per supplier order ship, a carrier scan (signed webhook), confirm receipt, review; every
few orders also a second payment (signed webhook) that must be refunded exactly once — with an
Idempotency-Key on every command, and retries of 503/504/429 (honouring Retry-After) and of
refused connections, each retry on the next API as a load balancer would. The driver learns that
a supplier order is paid and an order is finished from the read model (bench.lifecycle's
ReadModelWatch), as the clients' pages would.

Phases, all on the same server, database and task queue:
  1+1     N lifecycles, one worker and one API;
  2+2     N lifecycles, two workers and two APIs, requests alternating between them;
  faults  M lifecycles (and on until both faults are over) on 2+2 while worker 1 is SIGKILLed
          and started again, then API 2 is SIGTERMed (it drains) and started again.

Then it checks, and exits 1 if anything fails: every order FINISHED in the read model and every
workflow of the task queue Completed (none lost, none twice); the notifications each lifecycle
owes, exactly once each; one settled refund per extra payment and no other; every package
delivered; the read-model invariants of tests/support/invariants.py (stock, coins, money,
inbox, operation log); no 500 seen by any client and no PostgreSQL deadlock or serialization
failure in the APIs' logs (those the activities meet are retried and reported); both faults
happened and both services came back; every process exits 0 on SIGTERM at the end.

Printed per phase: lifecycles/s, lifecycle and per-step p50/p99, the load average and where the
cores went; then 2+2 against 1+1. The last line is JSON with all of it.

The modules, one concern each:
    cli                 options (`python -m bench.scaleout`, `__main__`)
    runner              one run: databases, server, processes, phases, checks
    config, service     the service's settings; one restartable process and its logs
    readiness           until a worker polls / an API answers /readyz
    apis                the client-side load balancer with retries; the tally of answers
    lifecycles          one lifecycle through the HTTP API, timed per step
    stack, phase        what a run started; one phase and the cores it used
    phases, faults      warm-ups, the clean phases and the fault phase; the faults
    checks              workflows, clients, faults
    read_model_checks   the read model: nothing lost, nothing twice, invariants
    logs                PostgreSQL conflicts and worker errors in the logs
    report, printer     the run's record; the printed report and its JSON line

Shared with bench.lifecycle: its read model (Shop), watch, load driver, CPU and percentiles.
"""

from bench.scaleout.apis import REQUEST_DEADLINE_S, RETRY_AFTER_CAP_S, Apis, Tally, expect
from bench.scaleout.checks import Check, check_clients, check_faults, check_workflows
from bench.scaleout.cli import main, parse_args
from bench.scaleout.config import DRAIN_DELAY_S, JWT_SECRET, WEBHOOK_SECRET, service_env
from bench.scaleout.faults import Faults, inject_faults
from bench.scaleout.lifecycles import Lifecycles
from bench.scaleout.logs import (
    DB_CONFLICT,
    WORKFLOW_TASK_FAILURE,
    pg_log_and_pids,
    pg_log_conflicts,
    worker_log_problems,
)
from bench.scaleout.phase import STEPS, Phase, measured
from bench.scaleout.phases import all_closed, clean_phase, fault_phase, lifecycles, warm_up
from bench.scaleout.printer import SCALES_ABOVE, print_report, scale_verdict
from bench.scaleout.read_model_checks import (
    SETTLE_TIMEOUT_S,
    check_read_model,
    expected_notices,
    wait_refunds_settled,
)
from bench.scaleout.readiness import READY_TIMEOUT_S, poll_until, ready, start_ready
from bench.scaleout.report import Report
from bench.scaleout.runner import run
from bench.scaleout.service import Service
from bench.scaleout.stack import Stack

__all__ = [
    "DB_CONFLICT",
    "DRAIN_DELAY_S",
    "JWT_SECRET",
    "READY_TIMEOUT_S",
    "REQUEST_DEADLINE_S",
    "RETRY_AFTER_CAP_S",
    "SCALES_ABOVE",
    "SETTLE_TIMEOUT_S",
    "STEPS",
    "WEBHOOK_SECRET",
    "WORKFLOW_TASK_FAILURE",
    "Apis",
    "Check",
    "Faults",
    "Lifecycles",
    "Phase",
    "Report",
    "Service",
    "Stack",
    "Tally",
    "all_closed",
    "check_clients",
    "check_faults",
    "check_read_model",
    "check_workflows",
    "clean_phase",
    "expect",
    "expected_notices",
    "fault_phase",
    "inject_faults",
    "lifecycles",
    "main",
    "measured",
    "parse_args",
    "pg_log_and_pids",
    "pg_log_conflicts",
    "poll_until",
    "print_report",
    "ready",
    "run",
    "scale_verdict",
    "service_env",
    "start_ready",
    "wait_refunds_settled",
    "warm_up",
    "worker_log_problems",
]
