"""Bearer tokens (JWT, HS256) and webhook signatures (HMAC-SHA256 of the raw body)."""

import hashlib
import hmac
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
