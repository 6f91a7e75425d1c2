"""GET /metrics (Prometheus text), HTTP request metrics and HTTP server spans.

`install(app, settings)` adds two pure ASGI middlewares and the route:

- `HttpMetrics`: `http_requests_total{method,route,status}` and
  `http_request_duration_seconds{method,route}`. `route` is the matched route's template
  (`/orders/{no}`), never the concrete path, so a scan of made-up ids cannot blow up the
  number of series; a path no route matches is counted as `route="unmatched"`.
- `HttpTracing`: one SERVER span per request while tracing is on (starter.telemetry),
  continuing a W3C `traceparent` sent by the caller; Temporal's client interceptor makes the
  workflow and activity spans its children. Off, it passes requests straight through.

Each app has its own registry: two apps in one process (the tests) count separately, like
two API processes. The business metrics (starter.api.metrics) come from the read model, so
every process reports the same values for them.
"""

from __future__ import annotations

import time

import prometheus_client
from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import Settings
from starter import telemetry
from starter.api.gc_metrics import GcPauses
from starter.api.metrics import ReadModelCollector

# No `*_created` series next to every counter: Prometheus does not need them.
prometheus_client.disable_created_metrics()

UNMATCHED = "unmatched"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

router = APIRouter(tags=["operations"])


class Observability:
    """What one app exports: its registry, HTTP metrics and the read-model collector."""

    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.business = ReadModelCollector(settings.metrics_cache_seconds)
        self.registry.register(self.business)
        self.registry.register(GcPauses())  # the process's, shared by its apps


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request (set by the router), or UNMATCHED."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        return path.rstrip("/") + "/{path}"
    return path


class HttpMetrics:
    def __init__(self, app: ASGIApp, observability: Observability) -> None:
        self.app = app
        self.obs = observability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception becomes a 500 further out

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method, route = scope["method"], route_template(scope)
            self.obs.requests.labels(method, route, str(status)).inc()
            self.obs.duration.labels(method, route).observe(time.perf_counter() - started)


_propagator = TraceContextTextMapPropagator()


class HttpTracing:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = telemetry.tracer() if scope["type"] == "http" else None
        if tracer is None:
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", [])
            if k in (b"traceparent", b"tracestate")
        }
        parent = _propagator.extract(carrier) if carrier else None
        method = scope["method"]
        status: int | None = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                if status is None or status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text: HTTP metrics of this process, business metrics of the read model."""
    obs: Observability = request.app.state.observability
    await obs.business.refresh(request.app.state.sessions)
    return Response(prometheus_client.generate_latest(obs.registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, settings: Settings) -> None:
    """Call last in create_app: the middlewares then wrap every other one."""
    obs = Observability(settings)
    app.state.observability = obs
    app.include_router(router)
    app.add_middleware(HttpMetrics, observability=obs)
    # Added after: outermost, so the span also covers the metrics middleware's work.
    app.add_middleware(HttpTracing)
