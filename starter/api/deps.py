"""FastAPI dependencies: settings, database sessions, Temporal, the caller and role guards.

Handlers open their own short database sessions (`async with sessions() as s`)
rather than holding one for the whole request: a command waits on a workflow
whose activity writes the same database, and on SQLite an open transaction in
the API would block that write.

The dependencies are `async def` although none of them awaits: FastAPI runs a plain `def`
dependency in its thread pool, a thread handoff per dependency per request (py-spy: ~10 % of
the API's CPU under load, bench.api_load).

Command endpoints take one bundle, `Ctx` (the caller, settings, sessions, the
Temporal gateway and the client's `Idempotency-Key`), as `CustomerCtx` or
`SupplierCtx`: the role guard and the documented header parameter come with it.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from settings import Settings
from starter.api.admission import Admitted
from starter.api.errors import ApiError, forbidden, unauthorized
from starter.api.idempotency import Work, run_idempotent, update_id
from starter.api.temporal import TemporalGateway
from starter.security import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SAFE_METHODS,
    TOKEN_COOKIE,
    InvalidToken,
    Principal,
    Role,
    csrf_valid,
    decode_token,
)

_bearer = HTTPBearer(auto_error=False, description="JWT (HS256) with claims sub, role, supplier_id")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


async def get_gateway(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.temporal
    return gateway


def bearer_or_cookie(request: Request, creds: HTTPAuthorizationCredentials | None) -> str | None:
    """The caller's JWT: the Authorization header, else the web terminals' session cookie."""
    if creds is not None:
        if creds.scheme.lower() != "bearer" or not creds.credentials:
            return None
        return creds.credentials
    return request.cookies.get(TOKEN_COOKIE) or None


async def current_principal(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = bearer_or_cookie(request, creds)
    if token is None:
        raise unauthorized()
    try:
        principal = decode_token(settings.jwt_secret, token)
    except InvalidToken as err:
        raise unauthorized(f"invalid token: {err}") from None
    # A cookie rides along on any request the browser makes, a header only on ones our
    # own script makes: cookie-authenticated commands must prove they came from our pages.
    if creds is None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if not csrf_valid(settings.jwt_secret, request.cookies.get(CSRF_COOKIE), sent):
            raise ApiError(
                403,
                "csrf_failed",
                f"missing or wrong {CSRF_HEADER}: reload the page and try again",
            )
    return principal


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def guard(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise forbidden(
                f"role {principal.role.value!r} may not call this endpoint "
                f"(allowed: {', '.join(sorted(r.value for r in allowed))})"
            )
        return principal

    return guard


SettingsDep = Annotated[Settings, Depends(get_settings)]
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
Gateway = Annotated[TemporalGateway, Depends(get_gateway)]
AnyPrincipal = Annotated[Principal, Depends(current_principal)]
Customer = Annotated[Principal, Depends(require(Role.CUSTOMER))]
Supplier = Annotated[Principal, Depends(require(Role.SUPPLIER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
CustomerOrAdmin = Annotated[Principal, Depends(require(Role.CUSTOMER, Role.ADMIN))]
SupplierOrAdmin = Annotated[Principal, Depends(require(Role.SUPPLIER, Role.ADMIN))]
Party = Annotated[Principal, Depends(require(Role.CUSTOMER, Role.SUPPLIER, Role.ADMIN))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry-safe key: the same key and body replay the first response",
    ),
]


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a command endpoint works with, resolved once per request."""

    principal: Principal
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    gateway: TemporalGateway
    idempotency_key: str | None

    def update_id(self, route: str) -> str | None:
        """The Temporal update id of this command (None without an Idempotency-Key)."""
        return update_id(self.principal, route, self.idempotency_key)

    async def run(
        self,
        route: str,
        payload: Any,
        work: Work,
        seed: Callable[[], dict[str, Any]] = dict,
    ) -> JSONResponse:
        """`work` at most once per (caller, route, Idempotency-Key); see run_idempotent."""
        return await run_idempotent(
            self.sessions, self.principal, route, self.idempotency_key, payload, work, seed=seed
        )


def command(*roles: Role) -> Callable[..., Awaitable[Ctx]]:
    """The `Ctx` dependency of a command the given roles may send."""
    guard = require(*roles)

    async def ctx(
        principal: Annotated[Principal, Depends(guard)],
        _: Admitted,  # a slot of ORDERS_API_MAX_INFLIGHT, after the caller is known
        settings: SettingsDep,
        sessions: Sessions,
        gateway: Gateway,
        idempotency_key: IdempotencyKey = None,
    ) -> Ctx:
        return Ctx(principal, settings, sessions, gateway, idempotency_key)

    return ctx


CustomerCtx = Annotated[Ctx, Depends(command(Role.CUSTOMER))]
SupplierCtx = Annotated[Ctx, Depends(command(Role.SUPPLIER))]
