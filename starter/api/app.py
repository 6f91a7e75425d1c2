"""The FastAPI application (OpenAPI at /docs): `create_app(settings)`; `serve()` runs it.

Reads come from the SQL read model; commands go to the workflows as updates or
signals (DESIGN.md §4, §6). The Temporal client connects lazily, so the API
comes up, and serves reads, while Temporal is still starting or down.
"""

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from db.session import make_engine, make_session_factory
from settings import DEV_JWT_SECRET, DEV_WEBHOOK_SECRET, Settings, get_settings
from starter import telemetry, web
from starter.api import errors, observability
from starter.api.admission import Admission
from starter.api.drain import Drain, DrainingServer
from starter.api.request_context import RequestContext
from starter.api.routers import (
    admin,
    after_sales,
    cart,
    catalog,
    checkout,
    codec,
    health,
    notifications,
    orders,
    pay_requests,
    supplier,
    supplier_orders,
    supplier_webhooks,
    webhooks,
)
from starter.api.temporal import ClientFactory, TemporalGateway
from starter.gc_pauses import freeze_startup_objects
from starter.logs import configure_logging
from starter.web.live import stop_hub

DESCRIPTION = """
Multi-supplier order lifecycle on Temporal.

* **Auth**: `Authorization: Bearer <JWT>` (HS256; claims `sub`, `role`
  customer|supplier|admin, `supplier_id`). Missing/invalid → 401; a role that may
  not use an endpoint → 403; somebody else's order, supplier order or after-sales
  request → 404, as if it did not exist.
* **Webhooks** are authenticated by `X-Signature`: hex HMAC-SHA256 of the raw body.
* **Idempotency-Key** on mutating calls: the same key and body replay the first
  response; the same key with another body → 422 `idempotency_key_reused`.
* **Errors**: `{"error": {"code", "message", ...}}`; money is a decimal string,
  times are ISO-8601 UTC.
"""


def create_app(
    settings: Settings | None = None, client_factory: ClientFactory | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # db.session's pool does not pre-ping: a connection the server dropped fails its
        # request with 503 database_unavailable (Retry-After), and the retry gets a fresh one.
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.sessions = make_session_factory(engine)
        app.state.temporal = TemporalGateway(settings, client_factory)
        try:
            yield
        finally:
            await stop_hub(app)  # live streams and their order_log watcher
            await engine.dispose()

    app = FastAPI(
        title="Orders",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    errors.install(app)
    app.state.drain = Drain()  # set on SIGTERM by DrainingServer, read by /readyz
    # Bounds the commands in flight in this process (starter/api/admission.py).
    app.state.admission = Admission(
        settings.api_max_inflight, settings.api_queue_timeout.total_seconds()
    )
    for module in (
        health,
        checkout,
        cart,
        orders,
        supplier,
        supplier_orders,
        after_sales,
        webhooks,
        catalog,
        admin,
        notifications,
        codec,
        pay_requests,
        supplier_webhooks,
    ):
        app.include_router(module.router)
    web.install(app, settings)
    app.add_middleware(RequestContext)  # request ids, access lines (starter.logs)
    observability.install(app, settings)  # last: its middlewares wrap all the others
    app.state.observability.registry.register(app.state.admission)
    return app


def serve(settings: Settings | None = None) -> None:
    """Run the API with uvicorn on ORDERS_API_HOST:ORDERS_API_PORT; SIGTERM drains it."""
    settings = settings or get_settings()
    configure_logging("api", settings.log_format, settings.log_level)
    if settings.jwt_secret == DEV_JWT_SECRET or settings.webhook_secret == DEV_WEBHOOK_SECRET:
        logging.getLogger(__name__).warning(
            "ORDERS_JWT_SECRET / ORDERS_WEBHOOK_SECRET are the development defaults: "
            "anyone can mint tokens and sign webhooks; set your own outside development"
        )
    telemetry.configure_tracing("orders-api")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # starter.logs: one JSON line per record
        access_log=False,  # RequestContext writes the access lines, with the request id
        timeout_graceful_shutdown=math.ceil(settings.api_shutdown_timeout.total_seconds()),
    )
    freeze_startup_objects()  # full collections skip the imports and the app (gc_pauses)
    DrainingServer(config, app.state.drain, settings.api_drain_delay.total_seconds()).run()
    telemetry.shutdown_tracing()
