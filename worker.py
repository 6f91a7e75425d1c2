"""The Temporal worker: connects, registers workflows and activities, runs until told to stop."""

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.worker import (
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from activities.aftersales import AfterSaleActivities
from activities.fulfilment import FulfilmentActivities
from activities.orders import OrderActivities
from activities.payments import FakePaymentProvider, PaymentActivities, PaymentProvider
from activities.webhooks import WebhookActivities
from db.session import make_engine, make_session_factory
from settings import Settings, get_settings
from shutdown import exit_now
from starter import event_loop
from starter.gc_pauses import freeze_startup_objects
from starter.logs import configure_logging
from starter.payload_codec import data_converter
from starter.sandbox import FastSandboxedWorkflowRunner, context_free
from starter.telemetry import (
    configure_tracing,
    metrics_runtime,
    shutdown_tracing,
    tracing_interceptors,
)
from starter.webhooks import Dispatcher
from workflows.after_sale import AfterSaleWorkflow
from workflows.order import OrderWorkflow
from workflows.supplier_order import SupplierOrderWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

log = logging.getLogger("worker")

WORKFLOWS: Sequence[type] = (
    OrderWorkflow,
    SupplierOrderWorkflow,
    AfterSaleWorkflow,
    WebhookDeliveryWorkflow,
)

# Pure modules the workflows import: passed through so the sandbox does not
# re-import them on every workflow task (much faster, and they hold no state
# that could leak between runs).
PASSTHROUGH = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "domain",
    "activities",
    "db",
    "sqlalchemy",
    # C extensions must never be re-imported inside the sandbox: a second copy of
    # their module state crashed asyncpg in the same process.
    "asyncpg",
    "aiosqlite",
    "greenlet",
    # The payload codec's AES-GCM (a Rust extension) reaches the sandbox through the
    # settings whenever a workflow's module imports them, as the tests' modules do.
    "cryptography",
    # Temporal's tracing interceptor runs inside workflows: one OpenTelemetry context module.
    "opentelemetry",
)


def workflow_runner(converter: DataConverter | None = None) -> FastSandboxedWorkflowRunner:
    """The sandbox with PASSTHROUGH; its calls compiled once, and no per-payload serialization
    context lookups when `converter` (the worker's) has no codec (starter/sandbox.py)."""
    return FastSandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH),
        skip_contexts=context_free(converter),
    )


def activities_for(
    sessions: async_sessionmaker[AsyncSession], provider: PaymentProvider | None = None
) -> list[Callable[..., Any]]:
    orders = OrderActivities(sessions)
    fulfilment = FulfilmentActivities(sessions)
    after_sales = AfterSaleActivities(sessions)
    payments = PaymentActivities(sessions, provider or FakePaymentProvider())
    webhooks = WebhookActivities(sessions)
    return [
        orders.place_order,
        orders.apply_payment,
        orders.close_order,
        fulfilment.record_shipment,
        fulfilment.edit_tracking,
        fulfilment.change_receiver,
        fulfilment.cancel_supplier_order,
        fulfilment.record_reminder,
        fulfilment.move_deadline,
        fulfilment.record_receipt,
        fulfilment.record_reviews,
        fulfilment.record_tracking,
        after_sales.open_after_sale,
        after_sales.update_after_sale,
        after_sales.refund_after_sale,
        payments.issue_refund,
        webhooks.deliver_webhook,
        webhooks.give_up_webhook,
    ]


def build_worker(
    client: Client,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    provider: PaymentProvider | None = None,
    max_concurrent_workflow_tasks: int = 100,
    max_concurrent_activities: int = 100,
    graceful_shutdown_timeout: timedelta = timedelta(0),
    max_cached_workflows: int = 1000,
    workflow_pollers: int | None = None,
    autoscale_pollers: bool = False,
) -> Worker:
    """`graceful_shutdown_timeout`: how long activities in flight may run on after shutdown
    begins (polling stops at once); then they are cancelled. `max_cached_workflows`: the
    sticky cache (ORDERS_WORKER_MAX_CACHED_WORKFLOWS); an evicted workflow replays its
    history on its next task, so it bounds memory, not what the worker can run."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(sessions, provider),
        workflow_runner=workflow_runner(client.data_converter),
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_local_activities=max_concurrent_activities,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        max_cached_workflows=max_cached_workflows,
        workflow_task_poller_behavior=poller_behavior(workflow_pollers, autoscale_pollers),
    )


def poller_behavior(pollers: int | None, autoscale: bool) -> PollerBehavior:
    """Workflow-task pollers: a fixed number (the SDK's 5 by default), or scaled by the SDK
    on the server's hints up to `pollers` (100 when unset)."""
    if autoscale:
        return PollerBehaviorAutoscaling(maximum=pollers or 100)
    return PollerBehaviorSimpleMaximum(pollers or 5)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for the API, the worker and the CLI; traced while tracing is on (starter.telemetry).

    `runtime`: the worker's, serving the SDK's metrics (ORDERS_WORKER_METRICS_PORT).
    """
    tls: TLSConfig | bool = settings.temporal_tls
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=Path(settings.temporal_tls_cert).read_bytes(),  # noqa: ASYNC240
            client_private_key=Path(settings.temporal_tls_key).read_bytes(),  # noqa: ASYNC240
        )
    return await Client.connect(
        settings.temporal_address,
        interceptors=tracing_interceptors(),
        runtime=runtime,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        # The pydantic converter; payloads AES-GCM encrypted when ORDERS_PAYLOAD_KEY is set.
        data_converter=data_converter(settings.payload_keys()),
    )


async def main(provider: PaymentProvider | None = None) -> None:
    """`python -m worker`: runs until SIGTERM/SIGINT, then drains (stops polling, finishes the
    tasks in flight within ORDERS_WORKER_SHUTDOWN_TIMEOUT) and returns."""
    settings = get_settings()
    configure_logging("worker", settings.log_format, settings.log_level)
    configure_tracing("orders-worker")
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    client = await connect(settings, runtime=metrics_runtime(settings))
    worker = build_worker(
        client,
        settings.task_queue,
        sessions,
        provider,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        graceful_shutdown_timeout=settings.worker_shutdown_timeout,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_pollers=settings.worker_workflow_pollers,
        autoscale_pollers=settings.worker_autoscale_pollers,
    )
    freeze_startup_objects()  # full collections skip the imports and the worker (gc_pauses)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker on task queue %r at %s", settings.task_queue, settings.temporal_address)
    # Supplier webhooks (starter/webhooks.py): the outbox is turned into events here and
    # handed to WebhookDeliveryWorkflow, which delivers them (workflows/webhook_delivery.py).
    dispatcher = Dispatcher(sessions, settings, client) if settings.webhook_dispatcher else None
    delivering = asyncio.create_task(dispatcher.run()) if dispatcher else None
    async with worker:
        await stop.wait()
        if dispatcher and delivering:
            dispatcher.stop()
            await delivering
        grace = settings.worker_shutdown_timeout.total_seconds()
        log.info(
            "shutting down: no more polling; finishing the tasks in flight (up to %.0fs)", grace
        )
    log.info("worker stopped")
    await engine.dispose()
    shutdown_tracing()


if __name__ == "__main__":
    event_loop.run(main())
    exit_now(0)
