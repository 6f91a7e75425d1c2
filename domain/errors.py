"""Typed domain errors: a stable machine code, a clear message, an HTTP hint.

They travel through Temporal as `ApplicationError(type=code)` and come back out
of the API as `{"error": {"code", "message"}}` with `http_status`.
"""

from typing import Any, ClassVar


class DomainError(Exception):
    """A refused command or invalid input; nothing was changed."""

    code: ClassVar[str] = "invalid_request"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422


class UnknownSku(DomainError):
    code = "unknown_sku"
    http_status = 422


class InactiveProduct(DomainError):
    code = "inactive_product"
    http_status = 422


class UnknownSource(DomainError):
    """A line names a catalog zone the platform does not have (ORDERS_SOURCE_ZONES)."""

    code = "unknown_source"
    http_status = 422


class InsufficientStock(DomainError):
    code = "insufficient_stock"
    http_status = 409


class InsufficientCoins(DomainError):
    code = "insufficient_coins"
    http_status = 409


class AddressRequired(DomainError):
    code = "address_required"
    http_status = 422


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class InvalidState(DomainError):
    """The command is not allowed in the order's current state."""

    code = "invalid_state"
    http_status = 409


class RateLimited(DomainError):
    code = "rate_limited"
    http_status = 429


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


ERRORS_BY_CODE: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        DomainError,
        InvalidInput,
        UnknownSku,
        InactiveProduct,
        UnknownSource,
        InsufficientStock,
        InsufficientCoins,
        AddressRequired,
        NotFound,
        InvalidState,
        RateLimited,
        Conflict,
    )
}


def error_from_code(code: str, message: str) -> DomainError:
    """Rebuild a domain error from the code carried by an ApplicationError."""
    return ERRORS_BY_CODE.get(code, DomainError)(message)
