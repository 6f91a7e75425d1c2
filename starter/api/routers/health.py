"""GET /healthz: 200 when the database and Temporal answer, else 503 naming the part."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from starter.api.deps import Gateway, Sessions
from starter.api.errors import error_body
from starter.api.schemas import HealthOut

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Database or Temporal unreachable"}},
)
async def healthz(sessions: Sessions, gateway: Gateway) -> JSONResponse:
    async def database() -> str:
        async with sessions() as s:
            await s.execute(text("SELECT 1"))
        return "ok"

    async def temporal() -> str:
        await gateway.check()
        return "ok"

    results = await asyncio.gather(
        asyncio.wait_for(database(), CHECK_TIMEOUT),
        asyncio.wait_for(temporal(), CHECK_TIMEOUT),
        return_exceptions=True,
    )
    parts: dict[str, str] = {}
    for name, result in zip(("database", "temporal"), results, strict=True):
        if isinstance(result, BaseException):
            detail = str(result) or type(result).__name__
            parts[name] = f"unavailable: {detail}"
        else:
            parts[name] = "ok"
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
