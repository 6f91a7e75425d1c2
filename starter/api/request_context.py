"""Per request: an id on every log line and in the response, and one access line at the end.

The id is the caller's `X-Request-ID` when it is a sane token (1-128 characters of
letters, digits and `._:/+=@-`: what proxies and load balancers send), else a new one; the
response carries it back in `X-Request-ID`. While the request runs, `starter.logs` puts it
and the ids in the route's path parameters (`/orders/{no}` → `order_no`, ...) on every line.
The access line (logger `starter.api.access`) says method, path (never the query string),
route template, status and duration; probes (`/livez`, `/readyz`, `/healthz`) and
`/metrics` log at DEBUG.
"""

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.logs import RequestInfo, current_request

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/metrics"})

access = logging.getLogger("starter.api.access")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1").strip()
            if _VALID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware (no BaseHTTPMiddleware: streaming and context stay intact)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = current_request.set(RequestInfo(request_id, scope))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            route = getattr(scope.get("route"), "path", None)
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            access.log(
                logging.DEBUG if path in QUIET_PATHS and status < 500 else logging.INFO,
                "%s %s %s %.1fms",
                scope.get("method", ""),
                path,
                status,
                elapsed_ms,
                extra={
                    "method": scope.get("method", ""),
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": elapsed_ms,
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            current_request.reset(token)
