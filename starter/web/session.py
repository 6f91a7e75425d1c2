"""Who is looking at a page: the API's JWT from the `orders_token` cookie (or header).

Pages use the same token, roles and ownership checks as the API (`starter.api.access`).
Not logged in → redirect to /ui/login; logged in with the wrong role → a 403 page;
somebody else's order → a 404 page, exactly as the API answers.
"""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import Settings
from starter.api.deps import get_settings
from starter.security import (
    CSRF_COOKIE,
    TOKEN_COOKIE,
    InvalidToken,
    Principal,
    Role,
    csrf_valid,
    decode_token,
    new_csrf_token,
)


@dataclass(frozen=True)
class Viewer:
    """The logged-in person, as the pages need them."""

    principal: Principal

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def sub(self) -> str:
        return self.principal.sub

    @property
    def supplier_id(self) -> str | None:
        return self.principal.supplier_id

    @property
    def home(self) -> str:
        return {
            Role.CUSTOMER: "/ui/shop",
            Role.SUPPLIER: "/ui/supplier",
            Role.ADMIN: "/ui/admin",
        }[self.role]


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def login_url(next_url: str) -> str:
    return f"/ui/login?next={quote(next_url, safe='/')}"


def optional_viewer(
    request: Request, settings: Annotated[Settings, Depends(get_settings)]
) -> Viewer | None:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = token or request.cookies.get(TOKEN_COOKIE)
    if not token:
        return None
    try:
        return Viewer(decode_token(settings.jwt_secret, token))
    except InvalidToken:
        return None


def _viewer(request: Request, viewer: Viewer | None, *roles: Role) -> Viewer:
    if viewer is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    if roles and viewer.role not in roles:
        raise PageForbidden(f"this page is for {' / '.join(r.value for r in roles)} accounts")
    return viewer


def any_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    return _viewer(request, viewer)


def customer_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    return _viewer(request, viewer, Role.CUSTOMER)


def customer_or_admin_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    return _viewer(request, viewer, Role.CUSTOMER, Role.ADMIN)


def supplier_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    return _viewer(request, viewer, Role.SUPPLIER)


def admin_viewer(
    request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    return _viewer(request, viewer, Role.ADMIN)


MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
AnyViewer = Annotated[Viewer, Depends(any_viewer)]
CustomerViewer = Annotated[Viewer, Depends(customer_viewer)]
CustomerOrAdminViewer = Annotated[Viewer, Depends(customer_or_admin_viewer)]
SupplierViewer = Annotated[Viewer, Depends(supplier_viewer)]
AdminViewer = Annotated[Viewer, Depends(admin_viewer)]


class CsrfCookie:
    """ASGI middleware for /ui/: every page gets a signed CSRF token (cookie + request.state).

    Pure ASGI rather than BaseHTTPMiddleware, so server-sent event streams pass untouched.
    """

    def __init__(self, app: ASGIApp, secret: str, secure: bool = False) -> None:
        self.app = app
        self.secret = secret
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/ui"):
            await self.app(scope, receive, send)
            return
        current = _cookie(scope, CSRF_COOKIE)
        fresh = not (current and csrf_valid(self.secret, current, current))
        token = new_csrf_token(self.secret) if fresh else current
        scope.setdefault("state", {})["csrf_token"] = token

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                cookie = f"{CSRF_COOKIE}={token}; Path=/; SameSite=Lax"
                if self.secure:
                    cookie += "; Secure"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return str(v)
    return None
