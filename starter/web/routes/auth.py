"""Log in and out, the language switch, and `GET /` → the shop.

In dev mode (`ORDERS_DEV_LOGIN=1`) /ui/login lists the seeded demo accounts and mints a
short-lived token for the one picked. Otherwise it only accepts a token issued
elsewhere (pasted, or set as the cookie by a front proxy): the API never hands out
tokens to whoever asks.
"""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from starter.api.deps import SettingsDep
from starter.api.errors import ApiError
from starter.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    TOKEN_COOKIE,
    InvalidToken,
    Role,
    csrf_valid,
    decode_token,
    mint_token,
)
from starter.web import i18n, render
from starter.web.demo import DEMO_ACCOUNTS, DemoAccount
from starter.web.session import MaybeViewer

router = APIRouter(include_in_schema=False)
HOME = {Role.CUSTOMER: "/ui/shop", Role.SUPPLIER: "/ui/supplier", Role.ADMIN: "/ui/admin"}


def _safe_next(next_url: str | None, fallback: str) -> str:
    """Only paths on this site (no `//host`, no scheme): no open redirect."""
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return fallback


def check_form_csrf(request: Request, settings: SettingsDep, sent: str | None) -> None:
    if not csrf_valid(settings.jwt_secret, request.cookies.get(CSRF_COOKIE), sent):
        raise ApiError(403, "csrf_failed", "the form expired: reload the page and try again")


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def _signed_in(request: Request, token: str, ttl: int, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    return response


@router.get("/", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse("/ui/shop", status_code=307)


@router.get("/ui", include_in_schema=False)
@router.get("/ui/", include_in_schema=False)
async def ui_root(viewer: MaybeViewer) -> Response:
    return RedirectResponse(viewer.home if viewer else "/ui/shop", status_code=303)


@router.get("/ui/login")
async def login_page(
    request: Request,
    settings: SettingsDep,
    viewer: MaybeViewer,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    return render.page(
        request,
        viewer,
        "login.html",
        accounts=DEMO_ACCOUNTS if settings.dev_login else (),
        dev_login=settings.dev_login,
        next=_safe_next(next, ""),
    )


@router.post("/ui/login")
async def login(
    request: Request,
    settings: SettingsDep,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    account: Annotated[str | None, Form(max_length=100)] = None,
    token: Annotated[str | None, Form(max_length=4000)] = None,
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    check_form_csrf(request, settings, csrf_token)
    ttl = int(settings.ui_session_ttl.total_seconds())
    if account:
        if not settings.dev_login:
            raise ApiError(403, "forbidden", "demo login is off (ORDERS_DEV_LOGIN is not set)")
        picked: DemoAccount | None = {a.key: a for a in DEMO_ACCOUNTS}.get(account)
        if picked is None:
            raise ApiError(404, "not_found", f"no demo account {account!r}")
        minted = mint_token(
            settings.jwt_secret, picked.sub, picked.role, picked.supplier_id, ttl_seconds=ttl
        )
        return _signed_in(request, minted, ttl, _safe_next(next, HOME[picked.role]))
    if token:
        try:
            principal = decode_token(settings.jwt_secret, token.strip())
        except InvalidToken as err:
            raise ApiError(401, "unauthorized", f"invalid token: {err}") from None
        return _signed_in(request, token.strip(), ttl, _safe_next(next, HOME[principal.role]))
    raise ApiError(422, "invalid_input", "pick an account or paste a token")


@router.post("/ui/logout")
async def logout(
    request: Request,
    settings: SettingsDep,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    check_form_csrf(request, settings, csrf_token)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


@router.get("/ui/lang")
async def switch_language(
    request: Request,
    to: Annotated[str, Query(max_length=20)],
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The language switch: remembered in a cookie for a year (no account data involved)."""
    locale = i18n.normalize(to) or i18n.DEFAULT_LOCALE
    response = RedirectResponse(_safe_next(next, "/ui/shop"), status_code=303)
    response.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax", path="/")
    return response
