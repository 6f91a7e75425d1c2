"""The whole stack for the pages, plus a real browser (Debian's Chromium via Playwright).

Real parts only: the Temporal dev server (`dev_env`), a worker on its own task queue over
a fresh SQLite read model seeded with the demo data, the API (pages included) under
uvicorn on a free port with `ORDERS_DEV_LOGIN=1`, and Chromium. Two API servers share
the worker and database: `web` with a 2-minute payment window, `fast_web` with 6 s (the
countdown test) and short receipt/review windows.

Screenshots go to `ORDERS_SCREENSHOTS_DIR` (default `var/screenshots/`); `make
screenshots` points it at docs/screenshots/.
"""

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from starter.security import TOKEN_COOKIE, mint_token
from starter.seed import seed_demo
from starter.web.demo import DEMO_ACCOUNTS
from tests.api.conftest import api_servers
from tests.api.helpers import Api

CHROMIUM = os.environ.get("ORDERS_CHROMIUM", "/usr/bin/chromium")
# Flags the machine needs: no sandbox as root, and no background calls to the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
SCREENSHOTS = Path(os.environ.get("ORDERS_SCREENSHOTS_DIR", "var/screenshots"))


@dataclass
class Web:
    """One API server (pages included) of the browser tests' stack."""

    url: str
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    api: Api  # the same server driven over HTTP, for setup and for checking the database


@dataclass
class WebStack:
    web: Web
    fast_web: Web
    env: WorkflowEnvironment


@pytest.fixture(scope="session")
async def web_stack(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebStack]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    common = {"ORDERS_DEV_LOGIN": "1"}
    policies = [
        {**common, "ORDERS_PAYMENT_TIMEOUT": "120"},
        {**common, "ORDERS_PAYMENT_TIMEOUT": "6", "ORDERS_LATE_PAYMENT_GRACE": "1"},
    ]
    db_path = tmp_path_factory.mktemp("web") / "orders.db"
    async with api_servers(dev_env, db_path, "web", policies, seed=seed_demo) as (
        sessions,
        _,
        (main, fast),
    ):
        yield WebStack(
            web=Web(str(main.http.base_url).rstrip("/"), main.settings, sessions, main),
            fast_web=Web(str(fast.http.base_url).rstrip("/"), fast.settings, sessions, fast),
            env=dev_env,
        )


@pytest.fixture
def web(web_stack: WebStack) -> Web:
    return web_stack.web


@pytest.fixture
def fast_web(web_stack: WebStack) -> Web:
    return web_stack.fast_web


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """`await open_page(web, "alice", viewport=PHONE, locale="zh-CN")` → a logged-in page.

    `account` is a demo account key (starter/web/demo.py) or a (sub, role, supplier_id)
    tuple; None opens a logged-out page. Each call is its own browser context (cookies).
    """
    contexts: list[BrowserContext] = []

    async def _open(
        web: Web,
        account: str | tuple[str, str, str | None] | None,
        viewport: ViewportSize | None = None,
        locale: str = "en-US",
    ) -> Page:
        context = await browser.new_context(
            viewport=viewport or DESKTOP, locale=locale, base_url=web.url
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        if account is not None:
            if isinstance(account, str):
                demo = {a.key: a for a in DEMO_ACCOUNTS}[account]
                sub, role, supplier_id = demo.sub, demo.role.value, demo.supplier_id
            else:
                sub, role, supplier_id = account
            token = mint_token(web.settings.jwt_secret, sub, role, supplier_id, ttl_seconds=3600)
            await context.add_cookies([{"name": TOKEN_COOKIE, "value": token, "url": web.url}])
        return await context.new_page()

    yield _open
    for context in contexts:
        await context.close()


async def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as `<name>-<width>.png` (kept for the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, tiny)
    width = (page.viewport_size or DESKTOP)["width"]
    path = SCREENSHOTS / f"{name}-{width}.png"
    await page.screenshot(path=str(path), full_page=True)
    # A full-page capture stretches Chromium's viewport for a moment and the page scrolls
    # back a little later: a click in between presses on one place and releases on
    # another (seen: a submit button focused but never clicked). Let two frames pass.
    await page.evaluate(
        "() => new Promise(r => { scrollTo(0, 0); requestAnimationFrame(() => requestAnimationFrame(r)); })"
    )
    return path


async def no_horizontal_scroll(page: Page) -> None:
    """The page is no wider than the window (nothing to scroll sideways)."""
    extra = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert extra <= 0, f"{page.url}: {extra}px of horizontal scroll"
