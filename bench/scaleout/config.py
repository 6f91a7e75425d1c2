"""The service's settings for the run: shared secrets, drain delay, each process's environment."""

from __future__ import annotations

import os

JWT_SECRET = "scaleout-bench-jwt-secret-0123456789abcdef"
WEBHOOK_SECRET = "scaleout-bench-webhook-secret-0123456789"
DRAIN_DELAY_S = 1.0  # ORDERS_API_DRAIN_DELAY of the APIs: /readyz 503 before the listener closes


def service_env(
    temporal_address: str, database_url: str, task_queue: str, port: int = 0
) -> dict[str, str]:
    """The environment of one process: this machine's, minus any service settings, plus ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERS_", "TEMPORAL_", "OTEL_")) and k != "DATABASE_URL"
    }
    env |= {
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": database_url,
        "ORDERS_TASK_QUEUE": task_queue,
        "ORDERS_JWT_SECRET": JWT_SECRET,
        "ORDERS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # A lifecycle ends at the review: the supplier orders' workflows close then.
        "ORDERS_AFTER_SALES_WINDOW": "0",
        "ORDERS_API_DRAIN_DELAY": str(DRAIN_DELAY_S),
    }
    if port:
        env["ORDERS_API_PORT"] = str(port)
    return env
