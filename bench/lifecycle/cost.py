"""What one unit of work costs the server, from the usage its metrics and /proc recorded."""

from __future__ import annotations

from collections import Counter

from bench.server import Usage

# Persistence operations that write a workflow's state (each is one database transaction).
EXECUTION_WRITES = (
    "CreateWorkflowExecution",
    "UpdateWorkflowExecution",
    "ConflictResolveWorkflowExecution",
    "SetWorkflowExecution",
)


def per_unit(u: Usage, n: int) -> dict[str, float]:
    n = max(n, 1)
    return {
        "server_cpu_ms": 1000 * u.cpu_s / n,
        "persistence_requests": u.persistence_total / n,
        "execution_writes": sum(u.persistence[k] for k in EXECUTION_WRITES) / n,
        "visibility_requests": sum(u.visibility.values()) / n,
        "frontend_requests": sum(u.api.values()) / n,
    }


def top(c: Counter[str], n: int, k: int = 8) -> str:
    return ", ".join(f"{op} {v / max(n, 1):.1f}" for op, v in c.most_common(k))
