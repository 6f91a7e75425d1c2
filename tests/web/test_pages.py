"""Every page, at both sizes and in both languages: fits the screen, labels every control,
can be used with the keyboard, and is photographed for the README.

The pages are filled with one real order (placed, paid, shipped and scanned through the
API) so that each shows what it is for, not an empty state.
"""

from datetime import UTC, datetime

import pytest
from playwright.async_api import Page, ViewportSize

from starter.security import Role
from tests.api.helpers import Who, uid
from tests.web.conftest import DESKTOP, PHONE, OpenPage, Web, no_horizontal_scroll, shot

# Controls without a name, by the rules a screen reader uses: a <label for>, a wrapping
# <label>, aria-label / aria-labelledby, or (buttons, links) their own text.
UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href], [role=button]')]
  .filter(el => el.offsetParent !== null || el.getClientRects().length)
  .filter(el => {
    const name = (el.getAttribute('aria-label') || '').trim()
      || (el.getAttribute('aria-labelledby') || '').split(' ').map(id =>
           (document.getElementById(id) || {}).textContent || '').join('').trim()
      || (el.labels ? [...el.labels].map(l => l.textContent).join('').trim() : '')
      || (['BUTTON', 'A'].includes(el.tagName) ? (el.textContent || el.title || '').trim() : '');
    return !name;
  })
  .map(el => el.outerHTML.slice(0, 140))"""

# The next Tab goes somewhere the user can see, with a visible focus ring.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return 'nothing focused';
  const style = getComputedStyle(el);
  const ring = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  return ring ? '' : 'no focus ring on ' + el.outerHTML.slice(0, 100);
}"""


async def _check(page: Page, name: str) -> None:
    await no_horizontal_scroll(page)
    assert await page.evaluate(UNLABELLED) == [], f"{name}: controls without a name"
    assert await page.locator('meta[name="viewport"]').count() == 1
    await shot(page, f"page-{name}")
    for _ in range(3):
        await page.keyboard.press("Tab")
        problem = await page.evaluate(FOCUS_RING)
        assert not problem, f"{name}: {problem}"


@pytest.fixture
async def story(web: Web) -> dict[str, str]:
    """One order of a fresh customer, paid, one package shipped and scanned."""
    api = web.api
    customer = await api.customer()
    placed = await api.paid_order(customer, [("tea-1", 2), ("cup-3", 1), ("gift-50", 1)])
    order_no = placed["order_no"]
    tea = next(so for so in placed["supplier_orders"] if so["supplier_id"] == "tea-house")
    item = tea["sub_orders"][0]["items"][0]["item_id"]
    tracking = uid("SF")
    supplier = Who("tea-house", Role.SUPPLIER, "tea-house")
    await api.ok(
        "POST",
        f"/supplier/orders/{tea['id']}/shipments",
        supplier,
        {
            "carrier": "sf",
            "tracking_no": tracking,
            "method": "express",
            "items": [{"item_id": item, "qty": 1}],
        },
        expect=201,
    )
    scan = {
        "event_id": uid("scan-"),
        "carrier": "sf",
        "tracking_no": tracking,
        "lat": 31.2989,
        "lon": 120.5853,
        "status": "in_transit",
        "at": datetime.now(UTC).isoformat(),
    }
    assert (await api.signed("/webhooks/carrier", scan)).status_code == 202
    unpaid = await api.place(customer, [("tea-2", 1)])
    # Something in the cart, so the cart and checkout pages show their forms.
    await api.ok("POST", "/cart/lines", customer, {"sku": "pot-1", "qty": 1})
    await api.ok("POST", "/cart/lines", customer, {"sku": "gift-100", "qty": 1})
    return {
        "customer": customer.sub,
        "order": order_no,
        "unpaid": unpaid["order_no"],
        "tea": tea["id"],
    }


SIZES: list[tuple[str, ViewportSize]] = [("desktop", DESKTOP), ("phone", PHONE)]


@pytest.mark.parametrize(("size", "viewport"), SIZES, ids=[s for s, _ in SIZES])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_every_page_fits_labels_and_takes_the_keyboard(
    web: Web,
    open_page: OpenPage,
    story: dict[str, str],
    size: str,
    viewport: ViewportSize,
    locale: str,
) -> None:
    suffix = "" if locale == "en-US" else "-zh"
    customer = (story["customer"], "customer", None)
    pages: list[tuple[str | tuple[str, str, str | None] | None, str, str]] = [
        (None, "/ui/login", "login"),
        (customer, "/ui/shop", "shop"),
        (customer, "/ui/products/tea-1", "product"),
        (customer, "/ui/cart", "cart"),
        (customer, "/ui/checkout", "checkout"),
        (customer, "/ui/orders", "orders"),
        (customer, f"/ui/orders/{story['unpaid']}", "order-unpaid"),
        (customer, f"/ui/orders/{story['order']}", "order"),
        ("tea-house", "/ui/supplier", "supplier-inbox"),
        ("tea-house", f"/ui/supplier/orders/{story['tea']}", "supplier-order"),
        ("admin", "/ui/admin", "admin"),
        ("admin", f"/ui/admin/orders/{story['order']}/log", "admin-log"),
        ("bob", f"/ui/orders/{story['order']}", "not-found"),
    ]
    for account, url, name in pages:
        page = await open_page(web, account, viewport=viewport, locale=locale)
        response = await page.goto(url)
        assert response is not None
        expected = 404 if name == "not-found" else 200
        assert response.status == expected, f"{url}: {response.status}"
        lang = "zh-CN" if locale == "zh-CN" else "en"
        assert await page.locator("html").get_attribute("lang") == lang
        await _check(page, f"{name}{suffix}")
        await page.context.close()
