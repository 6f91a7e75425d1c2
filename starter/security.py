"""Bearer tokens (JWT, HS256) and webhook signatures (HMAC-SHA256 of the raw body)."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt


class Role(StrEnum):
    CUSTOMER = "customer"
    SUPPLIER = "supplier"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    supplier_id: str | None = None


class InvalidToken(Exception):
    pass


def mint_token(
    secret: str,
    sub: str,
    role: Role | str,
    supplier_id: str | None = None,
    ttl_seconds: int = 24 * 3600,
) -> str:
    role = Role(role)
    if role is Role.SUPPLIER and not supplier_id:
        supplier_id = sub
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl_seconds}
    if supplier_id:
        claims["supplier_id"] = supplier_id
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
        role = Role(str(claims.get("role")))
    except (jwt.PyJWTError, ValueError) as err:
        raise InvalidToken(str(err)) from err
    supplier_id = claims.get("supplier_id")
    if role is Role.SUPPLIER and not supplier_id:
        raise InvalidToken("supplier tokens need a supplier_id claim")
    return Principal(sub=str(claims["sub"]), role=role, supplier_id=supplier_id)


def sign_body(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the exact bytes sent (header `X-Signature`)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    given = signature.removeprefix("sha256=").strip().lower()
    return hmac.compare_digest(sign_body(secret, body), given)


# --- browser sessions (the web terminals) ------------------------------------------------------

# The pages carry the same JWT as the API, in an HttpOnly cookie, so the API endpoints the
# pages' script calls authenticate it exactly like a bearer header (DESIGN.md §9).
TOKEN_COOKIE = "orders_token"
# Signed double-submit CSRF token: a random nonce and its HMAC under the JWT secret, in a
# cookie the page echoes back in `X-CSRF-Token` (or the form field `csrf_token`). Another
# origin can neither read the cookie nor forge a signed value, and SameSite=Lax already
# keeps the session cookie off cross-site POSTs; this is the second, independent guard.
CSRF_COOKIE = "orders_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_csrf_token(secret: str) -> str:
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_csrf_mac(secret, nonce)}"


def _csrf_mac(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def csrf_valid(secret: str, cookie: str | None, sent: str | None) -> bool:
    """The token sent with a request equals the cookie, and the cookie is one we signed."""
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        return False
    nonce, _, mac = cookie.partition(".")
    return bool(nonce) and hmac.compare_digest(_csrf_mac(secret, nonce), mac)
