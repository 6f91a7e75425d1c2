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
        503: "Temporal or the database is unreachable",
        504: "Sent but not confirmed in time; retry with the same Idempotency-Key",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}


AUTH = (401, 403)

# Bounds of integer parameters: past them a request is a 422, never a number the database
# cannot take (a 64-bit overflow was a 500). Offsets fit a 32-bit integer on every engine.
MAX_OFFSET = 2**31 - 1
