"""Logging in through the page, in a real browser."""

from tests.web.conftest import PHONE, OpenPage, Web, no_horizontal_scroll, shot


async def test_dev_login_lists_demo_accounts_and_signs_in(web: Web, open_page: OpenPage) -> None:
    page = await open_page(web, None)
    await page.goto("/ui/orders")
    assert "/ui/login" in page.url
    accounts = page.get_by_test_id("login-as")
    assert await accounts.count() >= 6
    await shot(page, "login")
    await page.locator('[data-testid="login-as"][data-account="alice"]').click()
    await page.wait_for_url("**/ui/orders")
    assert await page.get_by_test_id("who").inner_text() == "alice"


async def test_login_page_fits_a_phone_in_chinese(web: Web, open_page: OpenPage) -> None:
    page = await open_page(web, None, viewport=PHONE, locale="zh-CN")
    await page.goto("/ui/login")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"
    await no_horizontal_scroll(page)
    await shot(page, "login")
