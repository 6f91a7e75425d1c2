"""GET /healthz: 200 when the database and Temporal answer, else 503 naming the part.

GET /readyz: the same checks, and 503 as soon as the process is draining (SIGTERM,
starter/api/drain.py), so a load balancer stops sending it requests.

GET /livez: 200 while the process answers at all, whatever its dependencies and the drain:
the liveness probe, which must not restart every API process when Temporal or the database
is down, nor one that is stopping on purpose (docs/operations.md).
"""

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from starter.api.deps import Gateway, Sessions
from starter.api.drain import Drain
from starter.api.errors import error_body
from starter.api.schemas import ErrorDetail, HealthOut

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0
# Readiness probes come every few seconds with a short timeout of their own.
READY_CHECK_TIMEOUT = 2.0


class ReadyOut(BaseModel):
    status: Literal["ready", "unavailable", "draining"]
    database: str
    temporal: str
    draining: bool
    error: ErrorDetail | None = None


async def dependency_checks(
    sessions: Sessions, gateway: Gateway, timeout: float = CHECK_TIMEOUT
) -> dict[str, str]:
    """{"database": "ok" | "unavailable: ...", "temporal": ...}, both checked at once."""

    async def database() -> None:
        async with sessions() as s:
            await s.execute(text("SELECT 1"))

    results = await asyncio.gather(
        asyncio.wait_for(database(), timeout),
        asyncio.wait_for(gateway.check(), timeout),
        return_exceptions=True,
    )
    parts: dict[str, str] = {}
    for name, result in zip(("database", "temporal"), results, strict=True):
        if isinstance(result, BaseException):
            detail = str(result) or type(result).__name__
            parts[name] = f"unavailable: {detail}"
        else:
            parts[name] = "ok"
    return parts


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Database or Temporal unreachable"}},
)
async def healthz(sessions: Sessions, gateway: Gateway) -> JSONResponse:
    parts = await dependency_checks(sessions, gateway)
    healthy = all(v == "ok" for v in parts.values())
    body = HealthOut(
        status="ok" if healthy else "unavailable",
        database=parts["database"],
        temporal=parts["temporal"],
    ).model_dump()
    if not healthy:
        failed = ", ".join(k for k, v in parts.items() if v != "ok")
        body.update(error_body("unavailable", f"unreachable: {failed}"))
    return JSONResponse(body, status_code=200 if healthy else 503)


class LiveOut(BaseModel):
    status: Literal["alive"]


@router.get("/livez", response_model=LiveOut)
async def livez() -> LiveOut:
    return LiveOut(status="alive")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    response_model_exclude_none=True,
    responses={
        503: {
            "model": ReadyOut,
            "description": "Draining (SIGTERM received), or the database or Temporal unreachable",
        }
    },
)
async def readyz(request: Request, sessions: Sessions, gateway: Gateway) -> JSONResponse:
    drain: Drain | None = getattr(request.app.state, "drain", None)
    draining = drain is not None and drain.draining
    parts = await dependency_checks(sessions, gateway, READY_CHECK_TIMEOUT)
    reachable = all(v == "ok" for v in parts.values())
    status: Literal["ready", "unavailable", "draining"] = (
        "draining" if draining else "ready" if reachable else "unavailable"
    )
    body = ReadyOut(
        status=status, database=parts["database"], temporal=parts["temporal"], draining=draining
    ).model_dump(exclude_none=True)
    if status != "ready":
        failed = [k for k, v in parts.items() if v != "ok"]
        why = "draining: shutting down" if draining else ""
        if failed:
            why += ("; " if why else "") + f"unreachable: {', '.join(failed)}"
        body.update(error_body("unavailable", why))
    return JSONResponse(body, status_code=200 if status == "ready" else 503)
