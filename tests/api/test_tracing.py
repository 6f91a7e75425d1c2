"""Tracing: one trace from the HTTP request through the workflow to its activities.

A tracer provider with the in-memory exporter stands in for the OTLP one
(starter.telemetry). The API and the worker are built exactly as in production: the API's
lazily connected Temporal client and the worker's client both come from `worker.connect`,
which adds Temporal's TracingInterceptor while a provider is active.
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from starter import telemetry
from starter.api.app import create_app
from tests.api.conftest import serve, stack_settings, stop
from tests.api.helpers import Api, eventually
from worker import build_worker, connect


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        telemetry.use_tracer_provider(None)
        provider.shutdown()


@pytest.fixture
async def traced_api(
    spans: InMemorySpanExporter, dev_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[Api]:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/traced.db"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    settings = stack_settings(db_url, dev_env, f"traced-{uuid.uuid4().hex[:8]}")
    client = await connect(settings)  # with the tracing interceptor: tracing is on
    async with build_worker(client, settings.task_queue, sessions):
        running = await serve(create_app(settings))
        try:
            async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
                yield Api(http, settings, sessions)
        finally:
            await stop(running)
    await engine.dispose()


def _trace(spans: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.context is not None and s.context.trace_id == trace_id
    ]


async def test_one_trace_from_the_request_to_each_activity(
    traced_api: Api, spans: InMemorySpanExporter
) -> None:
    api = traced_api
    supplier = api.supplier()
    sku = await api.product(supplier)
    customer = await api.customer()

    # The caller's trace continues: the submit carries a W3C traceparent.
    trace_id = int(uuid.uuid4().hex, 16)
    parent_span = int(uuid.uuid4().hex[:16], 16)
    traceparent = f"00-{trace_id:032x}-{parent_span:016x}-01"
    r = await api.http.post(
        "/orders",
        json={"lines": [{"sku": sku, "qty": 1}], "coins": "0.00", "groups": []},
        headers={**api.headers(customer), "traceparent": traceparent},
    )
    assert r.status_code == 201, r.text
    order_no = r.json()["order_no"]

    submit = _trace(spans, trace_id)
    by_name = {s.name: s for s in submit}
    server = by_name["POST /orders"]
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None and server.parent.span_id == parent_span
    assert server.attributes is not None and server.attributes["http.route"] == "/orders"
    assert server.attributes["http.response.status_code"] == 201
    names = set(by_name)
    assert "StartUpdateWithStartWorkflow:OrderWorkflow" in names, names
    assert "RunWorkflow:OrderWorkflow" in names, names
    # place_order is a local activity: the interceptor covers those too.
    assert "StartActivity:place_order" in names, names
    assert "RunActivity:place_order" in names, names
    ids = {s.context.span_id for s in submit if s.context is not None}
    # Every span hangs off another span of the same trace, up to the caller's.
    assert all(s.parent is not None and s.parent.span_id in ids | {parent_span} for s in submit)

    # Paying is a signal: its request has its own trace, and the workflow's handling of it
    # (apply_payment, the supplier orders' workflows) stays in the order's trace, the
    # submit's, with a link back to the request that sent the signal.
    spans.clear()
    await api.ok("POST", f"/orders/{order_no}/pay", customer, expect=202)
    await api.wait_order(customer, order_no, lambda o: o["status"] == "PAID", "paid")

    async def order_trace() -> list[ReadableSpan] | None:
        found = _trace(spans, trace_id)
        wanted = {"HandleSignal:payment", "RunActivity:apply_payment"}
        wanted.add("RunWorkflow:SupplierOrderWorkflow")
        return found if wanted <= {s.name for s in found} else None

    later = {s.name: s for s in await eventually(order_trace, 20, "payment handled in the trace")}
    sent = next(s for s in spans.get_finished_spans() if s.name == "SignalWorkflow:payment")
    request = next(s for s in spans.get_finished_spans() if s.name == "POST /orders/{no}/pay")
    assert sent.context is not None and request.context is not None
    assert sent.context.trace_id == request.context.trace_id != trace_id
    assert sent.parent is not None and sent.parent.span_id == request.context.span_id
    handled = later["HandleSignal:payment"]
    assert [link.context.span_id for link in handled.links] == [sent.context.span_id]
    assert "StartChildWorkflow:SupplierOrderWorkflow" in later


async def test_tracing_is_off_without_an_endpoint() -> None:
    assert telemetry.configure_tracing("orders-api", environ={}) is None
    assert telemetry.tracer_provider() is None
    assert telemetry.tracing_interceptors() == []
    with pytest.raises(telemetry.TracingConfigError, match="http/protobuf"):
        telemetry.otlp_exporter(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )
    exporter = telemetry.otlp_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert exporter is not None
    exporter.shutdown()
