"""What every router shares: documented error responses."""

from typing import Any

from starter.api.schemas import ErrorResponse


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an endpoint can answer with."""
    text = {
        400: "Bad request",
        401: "Missing or invalid bearer token / webhook signature",
        403: "The caller's role may not use this endpoint",
        404: "Unknown id, or not the caller's",
        409: "Refused in the current state",
        422: "Invalid input",
        429: "Too soon; see retry_at",
        503: "Temporal or the database is unreachable, or the API process is at its limit "
        "of commands in flight (`overloaded`); retry after Retry-After",
        504: "Sent but not confirmed in time; retry with the same Idempotency-Key",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}


AUTH = (401, 403)


def link(path: str, method: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: what the response (or request) feeds into another operation.

    `parameters` maps that operation's parameter names to runtime expressions such as
    `$response.body#/order_no` or `$request.path.sku`. Clients, docs and the fuzzer's
    stateful phase follow them from one call to the next.
    """
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "parameters": parameters,
        "description": description,
    }


# Bounds of integer parameters: past them a request is a 422, never a number the database
# cannot take (a 64-bit overflow was a 500). Offsets fit a 32-bit integer on every engine.
MAX_OFFSET = 2**31 - 1
