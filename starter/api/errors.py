"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Domain refusals keep their code and HTTP status (domain/errors.py), whether they
were raised here (pre-validation) or came back from a workflow update. Temporal
being unreachable is a 503 `temporal_unavailable`, never a stack trace.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import ERRORS_BY_CODE, DomainError

log = logging.getLogger("starter.api")

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """An HTTP failure with a stable code (auth, idempotency, infrastructure)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


class TemporalUnavailable(ApiError):
    def __init__(self, message: str = "the workflow service is unreachable; retry later") -> None:
        super().__init__(503, "temporal_unavailable", message, headers={"Retry-After": "5"})


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "this role may not call this endpoint") -> ApiError:
    return ApiError(403, "forbidden", message)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {k: v for k, v in jsonable_encoder(extra).items() if v is not None}
    detail.update(code=code, message=message)
    return {"error": detail}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _retry_after(details: dict[str, Any]) -> dict[str, str] | None:
    retry_at = details.get("retry_at")
    if not isinstance(retry_at, str):
        return None
    try:
        at = datetime.fromisoformat(retry_at)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    seconds = max(0, int((at - datetime.now(UTC)).total_seconds()) + 1)
    return {"Retry-After": str(seconds)}


def domain_response(err: DomainError) -> JSONResponse:
    details = dict(err.details)
    return error_response(
        err.http_status, err.code, err.message, headers=_retry_after(details), **details
    )


def from_update_failure(err: WorkflowUpdateFailedError) -> Exception:
    """The refusal a validator or handler raised, as the domain error it stands for."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in ERRORS_BY_CODE:
        details: dict[str, Any] = {}
        for d in cause.details:
            if isinstance(d, dict):
                details.update({str(k): v for k, v in d.items()})
        error = ERRORS_BY_CODE[cause.type](cause.message, **details)
        return error
    message = cause.message if isinstance(cause, ApplicationError) else str(cause)
    log.error("workflow update failed unexpectedly: %r", cause)
    return ApiError(500, "workflow_error", message or "the workflow refused the command")


def from_rpc_error(err: RPCError) -> ApiError:
    if err.status in (RPCStatusCode.NOT_FOUND,):
        return ApiError(404, "not_found", err.message)
    log.warning("temporal RPC failed: %s %s", err.status, err.message)
    return TemporalUnavailable(f"the workflow service failed: {err.message}")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.code, err.message, headers=err.headers, **err.extra)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, err: DomainError) -> JSONResponse:
        return domain_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = _CODES_BY_STATUS.get(err.status_code, "error")
        message = err.detail if isinstance(err.detail, str) else code.replace("_", " ")
        return error_response(
            err.status_code, code, message, headers=dict(err.headers) if err.headers else None
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append({"field": where, "message": e.get("msg", "invalid")})
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
        return error_response(422, "invalid_input", summary or "invalid request", fields=problems)

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update_failed(_: Request, err: WorkflowUpdateFailedError) -> JSONResponse:
        mapped = from_update_failure(err)
        if isinstance(mapped, DomainError):
            return domain_response(mapped)
        assert isinstance(mapped, ApiError)
        return error_response(mapped.status, mapped.code, mapped.message)

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def _update_timeout(
        _: Request, err: WorkflowUpdateRPCTimeoutOrCancelledError
    ) -> JSONResponse:
        return error_response(
            504,
            "temporal_timeout",
            "the command was sent but not confirmed in time; retry with the same Idempotency-Key",
        )

    @app.exception_handler(RPCError)
    async def _rpc(_: Request, err: RPCError) -> JSONResponse:
        mapped = from_rpc_error(err)
        return error_response(mapped.status, mapped.code, mapped.message, headers=mapped.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(OSError)
    async def _database(request: Request, err: Exception) -> JSONResponse:
        log.warning("database unreachable on %s %s: %s", request.method, request.url.path, err)
        return error_response(
            503,
            "database_unavailable",
            "the database is unreachable; retry later",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error")
