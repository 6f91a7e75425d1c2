"""Browser sessions: the cookie is the API's token, cookie-borne commands need the CSRF
token, the login mints only in dev mode and never redirects off the site.

In-process (ASGI) against a fresh read model: these checks stop before Temporal.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from db.session import create_all, make_engine
from settings import Settings
from starter.api.app import create_app
from starter.security import CSRF_COOKIE, TOKEN_COOKIE, mint_token, new_csrf_token

SECRET = "web-session-tests-secret-0123456789abcdef"


def _settings(db: Path, **extra: str) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "TEMPORAL_ADDRESS": "127.0.0.1:1",  # never reached by these tests
            "ORDERS_JWT_SECRET": SECRET,
            **extra,
        }
    )


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    engine = make_engine(settings.database_url)
    await create_all(engine)
    await engine.dispose()
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(_settings(tmp_path / "o.db", ORDERS_DEV_LOGIN="1")):
        yield c


@pytest.fixture
async def prod(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(_settings(tmp_path / "o.db")):
        yield c


def _login_cookie(client: httpx.AsyncClient, sub: str = "alice", role: str = "customer") -> None:
    client.cookies.set(TOKEN_COOKIE, mint_token(SECRET, sub, role))


async def test_cookie_commands_need_the_csrf_token(dev: httpx.AsyncClient) -> None:
    _login_cookie(dev)
    # Reads need no token.
    assert (await dev.get("/cart")).status_code == 200
    # A cookie-authenticated command without the header: refused before anything runs.
    r = await dev.post("/orders/NOPE/cancel")
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    # A header that does not match the cookie, or a cookie we did not sign: refused.
    token = new_csrf_token(SECRET)
    dev.cookies.set(CSRF_COOKIE, token)
    r = await dev.post("/orders/NOPE/cancel", headers={"X-CSRF-Token": new_csrf_token(SECRET)})
    assert r.json()["error"]["code"] == "csrf_failed"
    forged = "abc.0123456789abcdef0123456789abcdef"
    dev.cookies.set(CSRF_COOKIE, forged)
    r = await dev.post("/orders/NOPE/cancel", headers={"X-CSRF-Token": forged})
    assert r.json()["error"]["code"] == "csrf_failed"
    # The page's token passes the guard (and the command meets the ordinary 404).
    dev.cookies.set(CSRF_COOKIE, token)
    r = await dev.post("/orders/NOPE/cancel", headers={"X-CSRF-Token": token})
    assert r.status_code == 404, r.text


async def test_bearer_callers_need_no_csrf_token(dev: httpx.AsyncClient) -> None:
    bearer = {"Authorization": f"Bearer {mint_token(SECRET, 'alice', 'customer')}"}
    r = await dev.post("/orders/NOPE/cancel", headers=bearer)
    assert r.status_code == 404, r.text


async def test_every_page_hands_out_a_signed_csrf_cookie(dev: httpx.AsyncClient) -> None:
    r = await dev.get("/ui/login")
    token = r.cookies.get(CSRF_COOKIE)
    assert token and f'content="{token}"' in r.text
    # Kept while valid: the next page shows the same token and sets no new cookie.
    again = await dev.get("/ui/login")
    assert CSRF_COOKIE not in again.cookies and f'content="{token}"' in again.text


async def test_dev_login_sets_an_httponly_lax_cookie(dev: httpx.AsyncClient) -> None:
    page = await dev.get("/ui/login")
    assert 'data-account="alice"' in page.text and 'data-account="tea-house"' in page.text
    csrf = dev.cookies[CSRF_COOKIE]
    r = await dev.post(
        "/ui/login", data={"csrf_token": csrf, "account": "tea-house", "next": "/ui/supplier"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/supplier"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(f"{TOKEN_COOKIE}=") and "httponly" in cookie
    assert "samesite=lax" in cookie and "secure" not in cookie
    # Behind an https proxy the cookie is Secure.
    r = await dev.post(
        "/ui/login",
        data={"csrf_token": csrf, "account": "alice"},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "; secure" in r.headers["set-cookie"].lower()


async def test_login_refuses_a_forged_form_and_foreign_redirects(dev: httpx.AsyncClient) -> None:
    await dev.get("/ui/login")
    r = await dev.post("/ui/login", data={"csrf_token": "nope", "account": "alice"})
    assert r.status_code == 403 and TOKEN_COOKIE not in r.cookies
    assert 'data-testid="error-message"' in r.text  # a page, not JSON
    csrf = dev.cookies[CSRF_COOKIE]
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        r = await dev.post(
            "/ui/login", data={"csrf_token": csrf, "account": "alice", "next": target}
        )
        assert r.status_code == 303 and r.headers["location"] == "/ui/shop", target


async def test_without_dev_mode_no_accounts_and_no_minting(prod: httpx.AsyncClient) -> None:
    page = await prod.get("/ui/login")
    assert page.status_code == 200 and "data-account=" not in page.text
    csrf = prod.cookies[CSRF_COOKIE]
    r = await prod.post("/ui/login", data={"csrf_token": csrf, "account": "alice"})
    assert r.status_code == 403 and TOKEN_COOKIE not in r.cookies
    # A token issued elsewhere still logs in.
    token = mint_token(SECRET, "bob", "customer")
    r = await prod.post("/ui/login", data={"csrf_token": csrf, "token": token})
    assert r.status_code == 303 and r.cookies.get(TOKEN_COOKIE) == token
    r = await prod.post("/ui/login", data={"csrf_token": csrf, "token": "not-a-jwt"})
    assert r.status_code == 401 and TOKEN_COOKIE not in r.cookies


async def test_logout_needs_the_form_token_and_clears_the_cookie(dev: httpx.AsyncClient) -> None:
    _login_cookie(dev)
    await dev.get("/ui/login")
    r = await dev.post("/ui/logout", data={})
    assert r.status_code == 403
    r = await dev.post("/ui/logout", data={"csrf_token": dev.cookies[CSRF_COOKIE]})
    assert r.status_code == 303 and f'{TOKEN_COOKIE}=""' in r.headers["set-cookie"]


async def test_pages_redirect_to_login_and_refuse_other_roles(dev: httpx.AsyncClient) -> None:
    r = await dev.get("/ui/admin?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/admin%3Fx%3D1"
    _login_cookie(dev, "alice", "customer")
    r = await dev.get("/ui/admin")
    assert r.status_code == 403 and 'data-testid="error-page"' in r.text
    assert r.headers["content-type"].startswith("text/html")


async def test_root_goes_to_the_shop_and_language_switch_is_remembered(
    dev: httpx.AsyncClient,
) -> None:
    r = await dev.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/shop"
    r = await dev.get("/ui/lang", params={"to": "zh-CN", "next": "/ui/login"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert "orders_lang=zh_CN" in r.headers["set-cookie"]
    page = await dev.get("/ui/login", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in page.text and "登录" in page.text
    r = await dev.get("/ui/lang", params={"to": "en", "next": "//evil.example"})
    assert r.headers["location"] == "/ui/shop"


async def test_a_refused_fragment_is_the_error_page_not_a_500(dev: httpx.AsyncClient) -> None:
    _login_cookie(dev, "alice", "customer")
    r = await dev.get("/ui/orders/NOPE", params={"fragment": "order_live"})
    assert r.status_code == 404 and 'data-testid="error-page"' in r.text


async def test_live_pages_carry_the_change_they_were_read_up_to(dev: httpx.AsyncClient) -> None:
    # The page's stream starts after this id, so nothing committed in between is lost.
    _login_cookie(dev, "alice", "customer")
    page = await dev.get("/ui/orders")
    assert page.status_code == 200
    assert 'data-live-topics="customer:alice"' in page.text
    assert 'data-live-since="0"' in page.text
