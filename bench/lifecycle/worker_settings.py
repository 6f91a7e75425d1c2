"""How a benchmark worker is built: the knobs it takes and the two kinds of worker (empty
workflows for phase A, the real order worker for phase B)."""

from __future__ import annotations

import concurrent.futures
import inspect
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

import worker as order_worker
from bench.empty import EmptyWorkflow


@dataclass(frozen=True)
class WorkerSettings:
    """The knobs tuned by the benchmark; the same values drive both phases."""

    max_concurrent_workflow_tasks: int = 100
    max_concurrent_activities: int = 100
    workflow_task_pollers: int | None = None  # SDK default: 5
    activity_task_pollers: int | None = None  # SDK default: 5
    max_cached_workflows: int | None = None  # SDK default: 1000 (the sticky cache)
    nonsticky_to_sticky_poll_ratio: float | None = None  # SDK default: 0.2
    workflow_threads: int | None = None  # SDK default: max_concurrent_workflow_tasks threads
    autoscale_pollers: bool = False  # workflow-task pollers scaled on the server's hints

    def extras(self) -> dict[str, Any]:
        """Worker options that `worker.build_worker` does not (yet) take."""
        out: dict[str, Any] = {}
        if self.autoscale_pollers or self.workflow_task_pollers is not None:
            # The production worker's rule (ORDERS_WORKER_WORKFLOW_POLLERS / _AUTOSCALE_POLLERS).
            out["workflow_task_poller_behavior"] = order_worker.poller_behavior(
                self.workflow_task_pollers, self.autoscale_pollers
            )
        if self.activity_task_pollers is not None:
            out["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
                self.activity_task_pollers
            )
        if self.max_cached_workflows is not None:
            out["max_cached_workflows"] = self.max_cached_workflows
        if self.nonsticky_to_sticky_poll_ratio is not None:
            out["nonsticky_to_sticky_poll_ratio"] = self.nonsticky_to_sticky_poll_ratio
        if self.workflow_threads is not None:
            # Lives as long as the worker's process (the bench never reuses a worker).
            out["workflow_task_executor"] = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.workflow_threads, thread_name_prefix="bench_workflow_"
            )
        return out


def empty_worker(client: Client, task_queue: str, ws: WorkerSettings) -> Worker:
    """Phase A's worker: the production workflow runner and the same settings as phase B."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EmptyWorkflow],
        workflow_runner=order_worker.workflow_runner(client.data_converter),
        max_concurrent_workflow_tasks=ws.max_concurrent_workflow_tasks,
        **ws.extras(),
    )


def lifecycle_worker(
    client: Client,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    ws: WorkerSettings,
) -> tuple[Worker, str]:
    """Phase B's worker: `worker.build_worker`, unless a knob it does not take is set.

    Then the same parts (WORKFLOWS, activities_for, workflow_runner) are assembled here with the
    extra options; the second value says which way the worker was built.
    """
    extras = ws.extras()
    params = inspect.signature(order_worker.build_worker).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_kwargs or set(extras) <= set(params):
        w = order_worker.build_worker(
            client,
            task_queue,
            sessions,
            max_concurrent_workflow_tasks=ws.max_concurrent_workflow_tasks,
            max_concurrent_activities=ws.max_concurrent_activities,
            **extras,
        )
        return w, "worker.build_worker"
    w = Worker(
        client,
        task_queue=task_queue,
        workflows=list(order_worker.WORKFLOWS),
        activities=order_worker.activities_for(sessions),
        workflow_runner=order_worker.workflow_runner(client.data_converter),
        max_concurrent_workflow_tasks=ws.max_concurrent_workflow_tasks,
        max_concurrent_activities=ws.max_concurrent_activities,
        max_concurrent_local_activities=ws.max_concurrent_activities,
        **extras,
    )
    return w, "build_worker parts + " + ",".join(sorted(extras))
