"""The one place configuration is read (environment, pydantic-settings)."""

import json
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.geo import DEFAULT_SPEEDS_KMH
from domain.policy import Policy, parse_duration
from starter.payload_codec import PayloadKey, parse_payload_keys

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _speeds(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _merge_speeds(value: dict[str, float]) -> dict[str, float]:
    """Operators add or override methods; the defaults they do not name stay."""
    bad = {method: kmh for method, kmh in value.items() if not kmh > 0}
    if bad:
        raise ValueError(f"shipping speeds must be positive km/h, got {bad}")
    return {**DEFAULT_SPEEDS_KMH, **value}


def _payload_keys_parse(value: SecretStr | None) -> SecretStr | None:
    """A bad ORDERS_PAYLOAD_KEY stops the process at start, not at the first payload."""
    if value is None or not value.get_secret_value().strip():
        return None  # unset or empty: payloads stay plain
    parse_payload_keys(value.get_secret_value())
    return value


def _zones(value: Any) -> Any:
    """`normal,zone-a` → ("normal", "zone-a"): trimmed, blanks dropped, order kept."""
    if isinstance(value, str):
        value = value.split(",")
    zones = tuple(dict.fromkeys(str(z).strip() for z in value if str(z).strip()))
    if not zones:
        raise ValueError("name at least one source zone")
    bad = [z for z in zones if len(z) > 32]
    if bad:
        raise ValueError(f"source zones are at most 32 characters: {bad}")
    return zones


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be positive")
    return value


DEV_JWT_SECRET = "dev-jwt-secret-change-me-before-deploying"
DEV_WEBHOOK_SECRET = "dev-webhook-secret-change-me-before-deploying"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(default="sqlite+aiosqlite:///var/orders.db", alias="DATABASE_URL")
    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    temporal_api_key: str | None = Field(default=None, alias="TEMPORAL_API_KEY")
    temporal_tls: bool = Field(default=False, alias="TEMPORAL_TLS")
    temporal_tls_cert: str | None = Field(default=None, alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: str | None = Field(default=None, alias="TEMPORAL_TLS_KEY")
    task_queue: str = Field(default="orders", alias="ORDERS_TASK_QUEUE")
    api_host: str = Field(default="127.0.0.1", alias="ORDERS_API_HOST")
    api_port: int = Field(default=8000, ge=1, le=65535, alias="ORDERS_API_PORT")
    # The local Temporal's web UI, when `make dev` starts the server itself.
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535, alias="TEMPORAL_UI_PORT")
    # Development defaults, long enough for HS256 (RFC 7518 asks for >= 32 bytes); the API
    # logs a warning while either is in use. Deployments set their own.
    # The web terminals' /ui/login mints demo tokens for the seeded accounts: only in dev.
    dev_login: bool = Field(default=False, alias="ORDERS_DEV_LOGIN")
    # Where the admin page links an order's workflows (default: the local dev server's UI).
    temporal_ui_url: str | None = Field(default=None, alias="ORDERS_TEMPORAL_UI_URL")
    # Browser sessions last this long; `Secure` cookies when the site is served over https.
    ui_session_ttl: Duration = Field(default=timedelta(hours=8), alias="ORDERS_UI_SESSION_TTL")
    jwt_secret: str = Field(default=DEV_JWT_SECRET, alias="ORDERS_JWT_SECRET")
    webhook_secret: str = Field(default=DEV_WEBHOOK_SECRET, alias="ORDERS_WEBHOOK_SECRET")
    # Payload encryption (starter/payload_codec.py): `[id:]base64-of-32-bytes[,...]`, the
    # first key encrypts, all decrypt. Unset: payloads go to Temporal as plain JSON.
    payload_key: Annotated[SecretStr | None, AfterValidator(_payload_keys_parse)] = Field(
        default=None, alias="ORDERS_PAYLOAD_KEY"
    )
    # Browser origins (comma-separated) allowed to call /codec, i.e. the Temporal UI's.
    # Unset: the local UI's in dev mode, else the origin of ORDERS_TEMPORAL_UI_URL.
    codec_cors_origins: str | None = Field(default=None, alias="ORDERS_CODEC_CORS_ORIGINS")

    payment_timeout: Duration = Field(default=timedelta(minutes=30), alias="ORDERS_PAYMENT_TIMEOUT")
    auto_confirm_after: Duration = Field(
        default=timedelta(days=10), alias="ORDERS_AUTO_CONFIRM_AFTER"
    )
    auto_review_after: Duration = Field(
        default=timedelta(days=15), alias="ORDERS_AUTO_REVIEW_AFTER"
    )
    after_sales_window: Duration = Field(
        default=timedelta(days=15), alias="ORDERS_AFTER_SALES_WINDOW"
    )
    remind_interval: Duration = Field(default=timedelta(hours=24), alias="ORDERS_REMIND_INTERVAL")
    receipt_extension: Duration = Field(default=timedelta(days=5), alias="ORDERS_RECEIPT_EXTENSION")
    after_sale_auto_approve_after: Duration = Field(
        default=timedelta(days=2), alias="ORDERS_AFTER_SALE_AUTO_APPROVE_AFTER"
    )
    after_sale_return_within: Duration = Field(
        default=timedelta(days=7), alias="ORDERS_AFTER_SALE_RETURN_WITHIN"
    )
    after_sale_receive_within: Duration = Field(
        default=timedelta(days=10), alias="ORDERS_AFTER_SALE_RECEIVE_WITHIN"
    )
    late_payment_grace: Duration = Field(
        default=timedelta(days=1), alias="ORDERS_LATE_PAYMENT_GRACE"
    )
    # Catalog zones a line's `source` may name (comma list); the first is the default.
    source_zones: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_zones)] = Field(
        default=("normal",), alias="ORDERS_SOURCE_ZONES"
    )
    shipping_speeds_kmh: Annotated[
        dict[str, float], BeforeValidator(_speeds), AfterValidator(_merge_speeds)
    ] = Field(default_factory=lambda: dict(DEFAULT_SPEEDS_KMH), alias="ORDERS_SHIPPING_SPEEDS")

    worker_max_concurrent_workflow_tasks: int = Field(
        default=100, alias="ORDERS_WORKER_WORKFLOW_TASKS"
    )
    worker_max_concurrent_activities: int = Field(default=100, alias="ORDERS_WORKER_ACTIVITIES")
    # Workflow-task pollers (Temporal's SDK default: 5). With ORDERS_WORKER_AUTOSCALE_POLLERS the
    # SDK scales them between 1 and this many (default 100 then) on the server's backlog hints,
    # so a burst of new runs (submits, children) is picked up instead of waiting in the backlog.
    worker_workflow_pollers: int | None = Field(
        default=None, ge=2, alias="ORDERS_WORKER_WORKFLOW_POLLERS"
    )
    worker_autoscale_pollers: bool = Field(default=False, alias="ORDERS_WORKER_AUTOSCALE_POLLERS")
    # Workflows the worker keeps in memory (the sticky cache); an evicted one is rebuilt by
    # replaying its history on its next task. Sized from the RSS each cached workflow costs
    # (bench/README.md, bench-flashsale); 0 turns caching off (every task replays).
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0, alias="ORDERS_WORKER_MAX_CACHED_WORKFLOWS"
    )

    # Logs of the API and the worker (starter/logs.py): one JSON object a line, or text.
    log_format: Literal["json", "text"] = Field(default="json", alias="ORDERS_LOG_FORMAT")
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(lambda v: str(v).upper())
    ] = Field(default="INFO", alias="ORDERS_LOG_LEVEL")
    # Graceful stop (docs/operations.md): on SIGTERM the API answers /readyz 503 but keeps
    # serving for the drain delay, then stops accepting and gives requests in flight the
    # shutdown timeout; the worker stops polling and gives in-flight activities its own.
    api_drain_delay: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(0), alias="ORDERS_API_DRAIN_DELAY"
    )
    api_shutdown_timeout: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(seconds=30), alias="ORDERS_API_SHUTDOWN_TIMEOUT"
    )
    # Admission control (starter/api/admission.py, docs/operations.md): at most this many
    # command requests (those that reach Temporal) in flight per API process; one more waits
    # up to the queue timeout for a slot, then gets 503 `overloaded` with Retry-After.
    # Reads, probes and /metrics are never held. 0: no bound.
    api_max_inflight: int = Field(default=32, ge=0, alias="ORDERS_API_MAX_INFLIGHT")
    api_queue_timeout: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(milliseconds=250), alias="ORDERS_API_QUEUE_TIMEOUT"
    )
    worker_shutdown_timeout: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(seconds=30), alias="ORDERS_WORKER_SHUTDOWN_TIMEOUT"
    )
    # The worker's Temporal SDK metrics (Prometheus text); off when the port is unset.
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, alias="ORDERS_WORKER_METRICS_PORT"
    )
    worker_metrics_host: str = Field(default="127.0.0.1", alias="ORDERS_WORKER_METRICS_HOST")
    # The API's business metrics come from the read model; a scrape reuses a result this
    # young, so a storm of scrapes costs the database one set of queries.
    metrics_cache_seconds: float = Field(default=5.0, ge=0, alias="ORDERS_METRICS_CACHE_SECONDS")

    # Supplier webhooks (DESIGN.md §11, starter/webhooks.py). Endpoints on loopback or
    # private networks are refused unless allowed (make dev and the tests allow them).
    webhook_allow_private: bool = Field(default=False, alias="ORDERS_WEBHOOK_ALLOW_PRIVATE")
    # An event is retried until a 2xx or until this long after it was created.
    webhook_retry_for: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(days=3), alias="ORDERS_WEBHOOK_RETRY_FOR"
    )
    # Exponential backoff: the first retry after about this long, doubling up to the cap.
    webhook_backoff: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(seconds=10), alias="ORDERS_WEBHOOK_BACKOFF"
    )
    webhook_backoff_max: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(hours=1), alias="ORDERS_WEBHOOK_BACKOFF_MAX"
    )
    # Every HTTP call to an endpoint (connect, send, answer) gives up after this long.
    webhook_timeout: Annotated[Duration, AfterValidator(_positive)] = Field(
        default=timedelta(seconds=10), alias="ORDERS_WEBHOOK_TIMEOUT"
    )
    # How often the dispatcher looks for new order_log rows and due events.
    webhook_poll_interval: Annotated[Duration, AfterValidator(_positive)] = Field(
        default=timedelta(seconds=1), alias="ORDERS_WEBHOOK_POLL_INTERVAL"
    )
    # After a secret is replaced the old one still signs (a second v1) for this long.
    webhook_secret_overlap: Annotated[Duration, AfterValidator(_not_negative)] = Field(
        default=timedelta(days=1), alias="ORDERS_WEBHOOK_SECRET_OVERLAP"
    )
    # The worker process runs the dispatcher (0: this worker does not deliver webhooks).
    webhook_dispatcher: bool = Field(default=True, alias="ORDERS_WEBHOOK_DISPATCHER")

    def temporal_ui_base(self) -> str:
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    def payload_keys(self) -> tuple[PayloadKey, ...]:
        if self.payload_key is None:
            return ()
        return parse_payload_keys(self.payload_key.get_secret_value())

    def codec_origins(self) -> list[str]:
        if self.codec_cors_origins is not None:
            return [o.strip().rstrip("/") for o in self.codec_cors_origins.split(",") if o.strip()]
        if self.dev_login:
            port = self.temporal_ui_port
            return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        if self.temporal_ui_url:
            scheme, _, rest = self.temporal_ui_url.partition("://")
            return [f"{scheme}://{rest.split('/', 1)[0]}"]
        return []

    def policy(self) -> Policy:
        """The windows new orders start with (each running order keeps its own copy)."""
        return Policy(
            payment_timeout=self.payment_timeout,
            auto_confirm_after=self.auto_confirm_after,
            auto_review_after=self.auto_review_after,
            after_sales_window=self.after_sales_window,
            remind_interval=self.remind_interval,
            receipt_extension=self.receipt_extension,
            after_sale_auto_approve_after=self.after_sale_auto_approve_after,
            after_sale_return_within=self.after_sale_return_within,
            after_sale_receive_within=self.after_sale_receive_within,
            late_payment_grace=self.late_payment_grace,
            source_zones=self.source_zones,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
