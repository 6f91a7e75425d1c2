"""The clients' side of the APIs: a client-side load balancer with careful retries, and the
tally of every answer the clients got."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.scaleout.config import WEBHOOK_SECRET
from bench.scaleout.service import Service
from starter.security import sign_body

REQUEST_DEADLINE_S = 120.0  # one HTTP call, retries included
RETRY_AFTER_CAP_S = 10.0


@dataclass
class Tally:
    """Every answer the clients got, including those that were retried."""

    status: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)  # "503 temporal_unavailable"
    transport_errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    served: Counter[str] = field(default_factory=Counter)  # "api-2#2": answers per generation
    # Per attempt: seconds of each accepted answer (not 429/503/504) by kind ("read" for GET,
    # else "command"), answers that shed the request (429 or 503 with Retry-After), attempts
    # that timed out (the client's timeout or a 504).
    accepted_s: dict[str, list[float]] = field(default_factory=dict)
    # The same by route ("POST /orders/{}/pay": segments with a digit become {}).
    accepted_by_route_s: dict[str, list[float]] = field(default_factory=dict)
    shed: int = 0
    timeouts: int = 0


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP_S)
    except ValueError:
        return None


def route(method: str, path: str) -> str:
    """`POST /orders/{}/pay`: the request's route, ids (segments with a digit) left out."""
    segments = path.split("?", 1)[0].split("/")
    return f"{method} " + "/".join("{}" if any(c.isdigit() for c in x) else x for x in segments)


def _error_code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


class Apis:
    """The API processes behind a client-side "load balancer": round robin, retry elsewhere."""

    def __init__(
        self,
        services: Sequence[Service],
        tally: Tally,
        timeout: float = 60.0,
        deadline: float = REQUEST_DEADLINE_S,
    ) -> None:
        """`timeout`: one attempt (httpx); `deadline`: one call, its retries included."""
        self.services = list(services)
        self.tally = tally
        self.active = 1
        self.deadline = deadline
        self._next = itertools.count()
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.http = [
            httpx.AsyncClient(base_url=s.url, timeout=timeout, limits=limits) for s in self.services
        ]

    async def aclose(self) -> None:
        for h in self.http:
            await h.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        key: str | None = None,
        signed: bool = False,
    ) -> httpx.Response:
        """One request as a careful client makes it: the same key and body on every retry."""
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode() if body is not None else b""
        if signed:
            headers["X-Signature"] = sign_body(WEBHOOK_SECRET, data)
        deadline = time.monotonic() + self.deadline
        k = next(self._next)
        delay = 0.2
        while True:
            i = k % self.active
            svc = self.services[i]
            wait: float | None
            t0 = time.perf_counter()
            try:
                r = await self.http[i].request(method, path, content=data, headers=headers)
            except httpx.TransportError as err:
                self.tally.transport_errors[type(err).__name__] += 1
                if isinstance(err, httpx.TimeoutException):
                    self.tally.timeouts += 1
                wait = delay
            else:
                self.tally.status[str(r.status_code)] += 1
                self.tally.served[f"{svc.name}#{svc.generation}"] += 1
                if r.status_code >= 500:
                    self.tally.server_errors[f"{r.status_code} {_error_code(r)}"] += 1
                if r.status_code not in (429, 503, 504):
                    kind = "read" if method == "GET" else "command"
                    took = time.perf_counter() - t0
                    self.tally.accepted_s.setdefault(kind, []).append(took)
                    self.tally.accepted_by_route_s.setdefault(route(method, path), []).append(took)
                    return r
                wait = _retry_after(r)
                if r.status_code == 504:
                    self.tally.timeouts += 1
                elif wait is not None:
                    self.tally.shed += 1
                if wait is None:
                    wait = delay
            if time.monotonic() + wait > deadline:
                raise RuntimeError(f"{method} {path}: no answer within {self.deadline:.0f}s")
            self.tally.retries += 1
            await asyncio.sleep(wait)
            delay = min(delay * 2, 2.0)
            k += 1  # the next attempt goes to the next API


def expect(r: httpx.Response, status: int, what: str) -> Any:
    if r.status_code != status:
        raise RuntimeError(f"{what} → {r.status_code}: {r.text[:300]}")
    return r.json()
