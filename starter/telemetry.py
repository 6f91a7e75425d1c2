"""Process-wide telemetry: OpenTelemetry tracing (API and worker) and the worker's SDK metrics.

Tracing is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set:
then `configure_tracing` builds a tracer provider that exports spans with OTLP over
http/protobuf (the exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables itself:
endpoint, headers, timeout, certificate). `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` needs the
gRPC exporter package, which this project does not install: it is refused at start instead
of silently exporting nothing. While a provider is active, every Temporal client made by
`worker.connect` carries Temporal's `TracingInterceptor` (client calls, and through the
client the worker: workflows, activities, local activities), and the API's middleware opens
a server span per request; with no provider both cost nothing.

Worker metrics: `metrics_runtime` gives a Temporal `Runtime` whose core exposes the SDK's
own metrics (`temporal_` prefix) in Prometheus text on ORDERS_WORKER_METRICS_HOST:PORT.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from settings import Settings
from starter.logs import temporal_logging

log = logging.getLogger(__name__)

TRACER_NAME = "orders"
HTTP_PROTOBUF = "http/protobuf"

_provider: TracerProvider | None = None


class TracingConfigError(ValueError):
    """OTEL_* variables ask for something this build cannot do."""


def otlp_exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    """The span exporter the OTEL_EXPORTER_OTLP_* variables ask for; None when tracing is off."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return None
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or HTTP_PROTOBUF
    ).strip()
    if protocol != HTTP_PROTOBUF:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported here: only "
            f"{HTTP_PROTOBUF!r} is installed (point the endpoint at the collector's OTLP/HTTP "
            "port, usually 4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # No arguments: the exporter reads endpoint, headers, timeout, compression and
    # certificates from the same variables (and appends /v1/traces to a base endpoint).
    return OTLPSpanExporter()


def configure_tracing(
    service_name: str, environ: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """Set up this process's tracing from the environment; None (and nothing done) when off."""
    environ = os.environ if environ is None else environ
    exporter = otlp_exporter(environ)
    if exporter is None:
        return None
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    use_tracer_provider(provider)
    log.info("tracing: exporting spans with OTLP (%s) as %s", HTTP_PROTOBUF, service_name)
    return provider


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Make `provider` this process's tracer provider (None turns tracing off; tests use it)."""
    global _provider
    _provider = provider


def tracer_provider() -> TracerProvider | None:
    return _provider


def tracer() -> Tracer | None:
    """The tracer for our own spans (HTTP server spans); None when tracing is off."""
    return _provider.get_tracer(TRACER_NAME) if _provider is not None else None


def tracing_interceptors() -> Sequence[Interceptor]:
    """Temporal interceptors for a new client: Temporal's tracing one while tracing is on.

    On a client it also applies to every worker built from that client (workflows,
    activities and local activities).
    """
    if _provider is None:
        return []
    return [TracingInterceptor(_provider.get_tracer("temporalio"))]


def shutdown_tracing() -> None:
    """Flush spans still queued for export; call before the process exits."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics, or None when the port is unset.

    A port that cannot be bound is logged and the worker runs without metrics: losing
    the dashboards must not stop orders from being processed.
    """
    port = settings.worker_metrics_port
    if port is None:
        return None
    address = f"{settings.worker_metrics_host}:{port}"
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True),
                # Core's own warnings as our log lines (JSON), like the default runtime's.
                logging=temporal_logging(),
            )
        )
    except Exception as err:
        log.error("worker metrics: cannot serve on %s (%s); running without them", address, err)
        return None
    log.info("worker metrics (Prometheus) on http://%s/metrics", address)
    return runtime
