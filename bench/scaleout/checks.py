"""The checks of a run that are not about the read model: workflows, clients, faults."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from temporalio.client import Client

from bench.scaleout.apis import Tally
from bench.scaleout.faults import Faults
from bench.scaleout.logs import DB_CONFLICT
from bench.scaleout.service import Service

# One check: passed, and what it found.
Check = tuple[bool, str]


async def check_workflows(client: Client, task_queue: str, lifecycles: int) -> Check:
    total = (await client.count_workflows(f'TaskQueue="{task_queue}"')).count
    done = (
        await client.count_workflows(f'TaskQueue="{task_queue}" AND ExecutionStatus="Completed"')
    ).count
    want = 3 * lifecycles  # the order and its two supplier orders
    return (
        total == done == want,
        f"workflows: {done} Completed of {total} on the task queue, {want} expected "
        "(order + 2 supplier orders per lifecycle, warm-ups included)",
    )


def check_clients(tally: Tally, apis: Sequence[Service]) -> list[Check]:
    five_hundreds = {k: v for k, v in tally.server_errors.items() if k.startswith("500")}
    api_hits = sum(len(DB_CONFLICT.findall(a.log_text())) for a in apis)
    return [
        (
            not five_hundreds,
            f"client-visible 5xx by code: {dict(tally.server_errors) or 'none'} "
            f"(500s: {sum(five_hundreds.values())}; 503/504 are retried with the same key)",
        ),
        (
            api_hits == 0,
            f"PostgreSQL deadlock/serialization errors in the APIs' logs: {api_hits}",
        ),
    ]


def check_faults(faults: Faults, tally: Tally) -> list[Check]:
    w, a = faults.worker, faults.api
    served_after = tally.served.get(f"{a.get('name')}#{a.get('generation')}", 0)
    return [
        (faults.error is None, f"fault injection: {faults.error or 'ran to the end'}"),
        (
            w.get("exit") == -signal.SIGKILL and bool(w.get("new_pid")),
            f"{w.get('name')} SIGKILLed after {w.get('at_submit')} submits (exit {w.get('exit')}), "
            f"pid {w.get('pid')} → {w.get('new_pid')} polling after {w.get('back_after_s')} s",
        ),
        (
            a.get("exit") == 0 and served_after > 0,
            f"{a.get('name')} SIGTERMed after {a.get('at_submit')} submits: drained and exited "
            f"{a.get('exit')} in {a.get('drained_in_s')} s, pid {a.get('pid')} → "
            f"{a.get('new_pid')} ready after {a.get('back_after_s')} s, answered {served_after} "
            "requests since",
        ),
    ]


# --- the run -------------------------------------------------------------------------------------
