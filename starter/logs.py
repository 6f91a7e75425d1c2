"""Logs of the API and the worker: one JSON object a line, with the ids of what it is about.

`configure_logging(service, fmt, level)` (called once at process start by `python -m starter.api`
and `python -m worker`) sends every record of the process through one handler on stderr:

    {"time": "2026-12-02T10:15:03.120Z", "level": "INFO", "logger": "starter.api.access",
     "message": "GET /orders/123 200 4.1ms", "service": "api", "request_id": "9f2c...",
     "order_no": "123", "method": "GET", "route": "/orders/{no}", "status": 200, ...}

The ids come from where they are known, by `ContextFilter`, never from the caller:

- API requests: `request_id` and the ids in the route's path parameters
  (starter/api/request_context.py sets `current_request`);
- worker: Temporal's activity or workflow info (the `temporal_activity` /
  `temporal_workflow` extra of the SDK's loggers, else `activity.info()` /
  `workflow.info()`), `workflow_id`, `run_id`, `workflow_type`, `activity_type`,
  `attempt`, and the order ids our workflow ids carry (`order-<order_no>`,
  `order-<order_no>-<supplier_id>` = the supplier order, `aftersale-<id>`);
- anything passed as `extra={...}` is kept as a field.

Temporal's core (Rust) logs are forwarded into Python logging too (`temporal_logging()`), so
they are JSON lines like the rest; a process that builds its own `temporalio.runtime.Runtime`
should pass `telemetry=TelemetryConfig(logging=temporal_logging(), ...)`.

`ORDERS_LOG_FORMAT=text` prints the same records readably; `render(line)` turns a JSON line
back into that text, which `orders dev` uses for the log tails it prints and
`tail -f var/logs/api.log | python -m starter.logs` for a person reading along.
"""

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any

from temporalio import activity, workflow
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

# Order of the known fields on a line; other extras follow, then the exception.
HEAD = ("time", "level", "logger", "message", "service")
IDS = (
    "request_id",
    "order_no",
    "supplier_order_id",
    "after_sale_id",
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity_type",
    "attempt",
)


@dataclass(frozen=True)
class RequestInfo:
    """The request being served: its id and ASGI scope (read lazily: the router adds the
    route and path parameters after the middleware set this). Set by
    starter/api/request_context.py."""

    request_id: str
    scope: MutableMapping[str, Any]


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)

_ORDER_WF = re.compile(r"^order-(?P<order_no>\d+)(?:-(?P<supplier>.+))?$")
_AFTER_SALE_WF = re.compile(r"^aftersale-(?P<id>.+)$")
_SUPPLIER_ORDER_ID = re.compile(r"^(?P<order_no>\d+)-.+$")

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_SKIPPED = {
    "temporal_activity",
    "temporal_workflow",
    "temporal_log",
    "activity_info",
    "color_message",
}


def ids_from_workflow_id(workflow_id: str) -> dict[str, str]:
    """The order ids a workflow id carries (`order-123`, `order-123-tea-house`, ...)."""
    if m := _ORDER_WF.match(workflow_id):
        ids = {"order_no": m["order_no"]}
        if m["supplier"]:
            ids["supplier_order_id"] = f"{m['order_no']}-{m['supplier']}"
        return ids
    if m := _AFTER_SALE_WF.match(workflow_id):
        return {"after_sale_id": m["id"]}
    return {}


def ids_from_path(route: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The ids in an API route's path parameters: `/orders/{no}` → order_no, ..."""
    ids: dict[str, str] = {}
    for name, value in params.items():
        text = str(value)
        if name in ("no", "order_no"):
            ids["order_no"] = text
        elif name in ("supplier_order_id", "so") or (
            name == "id" and ("/supplier-orders/" in route or "/supplier/orders/" in route)
        ):
            ids["supplier_order_id"] = text
            if m := _SUPPLIER_ORDER_ID.match(text):
                ids.setdefault("order_no", m["order_no"])
        elif name in ("after_sale_id",) or (name == "id" and "/after-sales/" in route):
            ids["after_sale_id"] = text
    return ids


def _temporal_fields(record: logging.LogRecord) -> dict[str, Any]:
    details: Mapping[str, Any] | None = getattr(record, "temporal_activity", None)
    if details is None:
        details = getattr(record, "temporal_workflow", None)
    fields: dict[str, Any] = {}
    if details is not None:
        fields["workflow_id"] = details.get("workflow_id")
        fields["run_id"] = details.get("workflow_run_id") or details.get("run_id")
        fields["workflow_type"] = details.get("workflow_type")
        fields["activity_type"] = details.get("activity_type")
        fields["attempt"] = details.get("attempt")
    else:
        # Loggers other than Temporal's (ours, the database driver's) inside a task.
        with contextlib.suppress(Exception):
            if activity.in_activity():
                a = activity.info()
                fields = {
                    "workflow_id": a.workflow_id,
                    "run_id": a.workflow_run_id,
                    "workflow_type": a.workflow_type,
                    "activity_type": a.activity_type,
                    "attempt": a.attempt,
                }
            elif workflow.in_workflow():
                w = workflow.info()
                fields = {
                    "workflow_id": w.workflow_id,
                    "run_id": w.run_id,
                    "workflow_type": w.workflow_type,
                }
    fields = {k: v for k, v in fields.items() if v is not None}
    if wf_id := fields.get("workflow_id"):
        fields = {**ids_from_workflow_id(str(wf_id)), **fields}
    return fields


class ContextFilter(logging.Filter):
    """Puts the ids of what a record is about on it (see the module docstring)."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = {}
        if self.service:
            fields["service"] = self.service
        request = current_request.get()
        if request is not None:
            fields["request_id"] = request.request_id
            route = getattr(request.scope.get("route"), "path", "") or ""
            fields.update(ids_from_path(route, request.scope.get("path_params") or {}))
        fields.update(_temporal_fields(record))
        for key, value in fields.items():
            # What the caller passed explicitly wins.
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _utc(created: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{stamp}.{int(created % 1 * 1000):03d}Z"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """time, level, logger, message, service, the ids, then extras (JSON-ready values)."""
    out: dict[str, Any] = {
        "time": _utc(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    attrs = record.__dict__
    for key in ("service", *IDS):
        if attrs.get(key) is not None:
            out[key] = attrs[key]
    for key, value in attrs.items():
        if key in out or key in _STANDARD or key in _SKIPPED or key.startswith("_"):
            continue
        out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
    if record.exc_info:
        out["exception"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        out["exception"] = record.exc_text
    if record.stack_info:
        out["stack"] = record.stack_info
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), ensure_ascii=False, default=str)


def render_fields(fields: Mapping[str, Any]) -> str:
    """`10:15:03.120 INFO  starter.api.access: GET /orders/1 200  request_id=.. order_no=1`."""
    stamp = str(fields.get("time", ""))
    clock = stamp[11:23] if len(stamp) >= 23 else stamp
    rest = {k: v for k, v in fields.items() if k not in (*HEAD, "exception", "stack")}
    ids = "  ".join(f"{k}={v}" for k, v in rest.items())
    line = f"{clock} {fields.get('level', ''):<7} {fields.get('logger', '')}: "
    line += str(fields.get("message", ""))
    if ids:
        line += f"  [{ids}]"
    for key in ("exception", "stack"):
        if fields.get(key):
            line += "\n" + str(fields[key])
    return line


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return render_fields(record_fields(record))


def render(line: str) -> str:
    """One of our JSON lines, readable; any other line as it is."""
    text = line.rstrip("\n")
    if not text.startswith("{"):
        return text
    try:
        fields = json.loads(text)
    except ValueError:
        return text
    if not isinstance(fields, dict) or "message" not in fields or "level" not in fields:
        return text
    return render_fields(fields)


def render_lines(lines: Iterable[str]) -> str:
    return "\n".join(render(line) for line in lines)


def temporal_logging() -> LoggingConfig:
    """Temporal core's own logs (WARN and up) through Python logging (`temporalio.core`)."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )


def _forward_temporal_core_logs() -> None:
    # Only when nothing set a default runtime yet (it is used by clients created after).
    with contextlib.suppress(RuntimeError):
        Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=temporal_logging())))


def configure_logging(
    service: str, fmt: str = "json", level: str = "INFO", stream: IO[str] | None = None
) -> logging.Handler:
    """Route every log record of this process through one handler (JSON or text)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Loggers that bring their own handlers (uvicorn's) go through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The ids are fields of the line: no need to repeat them in Temporal's messages.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    _forward_temporal_core_logs()
    return handler


def main(argv: list[str] | None = None) -> int:
    """`python -m starter.logs [FILE ...]`: print JSON log lines (files or stdin) readably."""
    paths = sys.argv[1:] if argv is None else argv
    try:
        if not paths:
            for line in sys.stdin:
                print(render(line), flush=True)
        for path in paths:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    print(render(line), flush=True)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
