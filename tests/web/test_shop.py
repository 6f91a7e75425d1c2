"""The customer's shop, cart and checkout pages, in a real browser.

Tests that change stock or carts use their own customers and products (the stack and its
database are shared by every browser test of the session).
"""

import re
from typing import Any

from playwright.async_api import Page, expect
from sqlalchemy import select

from db.tables import Order, Product
from starter.security import Role
from tests.api.helpers import HOME, Api, Who
from tests.web.conftest import PHONE, OpenPage, Web, no_horizontal_scroll, shot

TEA = Who("tea-house", Role.SUPPLIER, "tea-house")
CERAMICS = Who("ceramics-co", Role.SUPPLIER, "ceramics-co")
DIGITAL = Who("digital-goods", Role.SUPPLIER, "digital-goods")

# Every visible control has a name a screen reader reads: a <label for>, a wrapping label,
# aria-label or aria-labelledby. Returns the ones without.
UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea')].filter((el) => {
  if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
  if (el.closest('label')) return false;
  return !(el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`));
}).map((el) => el.outerHTML)"""


def as_login(who: Who) -> tuple[str, str, str | None]:
    return (who.sub, who.role.value, who.supplier_id)


async def all_labelled(page: Page) -> None:
    assert await page.evaluate(UNLABELLED) == [], page.url
    # Nothing is taken out of the keyboard's reach.
    assert (
        await page.locator("a[tabindex='-1'], button[tabindex='-1'], input[tabindex='-1']").count()
        == 0
    )


async def cart_of(api: Api, who: Who) -> dict[str, int]:
    body = await api.ok("GET", "/cart", who)
    return {li["sku"]: li["qty"] for li in body["lines"]}


async def reserved(api: Api, *skus: str) -> dict[str, int]:
    async with api.sessions() as s:
        rows = (await s.scalars(select(Product).where(Product.sku.in_(skus)))).all()
    return {r.sku: r.reserved for r in rows}


async def orders_of(api: Api, who: Who) -> int:
    return await api.count(Order, Order.customer_id == who.sub)


async def set_stock(api: Api, sku: str, on_hand: int) -> None:
    p = await api.ok("GET", f"/products/{sku}")
    body = {k: p[k] for k in ("name", "supplier_id", "product_type", "kind", "price", "active")}
    await api.ok("PUT", f"/admin/products/{sku}", api.admin, {**body, "on_hand": on_hand})


async def three_supplier_cart(api: Api, who: Who) -> dict[str, str]:
    """A physical product of tea-house and ceramics-co and a virtual one of digital-goods."""
    skus = {
        "tea-house": await api.product(TEA, price="12.00", on_hand=20),
        "ceramics-co": await api.product(CERAMICS, price="30.00", on_hand=20, product_type="cups"),
        "digital-goods": await api.product(
            DIGITAL, price="50.00", on_hand=100, kind="virtual", product_type="gift_cards"
        ),
    }
    for supplier, qty in (("tea-house", 2), ("ceramics-co", 1), ("digital-goods", 1)):
        await api.ok("POST", "/cart/lines", who, {"sku": skus[supplier], "qty": qty})
    return skus


# --- shop ------------------------------------------------------------------------------------


async def test_shop_browse_search_filter_and_pages(web: Web, open_page: OpenPage) -> None:
    page = await open_page(web, None)
    await page.goto("/ui/shop")
    cards = page.get_by_test_id("product-card")
    assert await cards.count() >= 1
    await all_labelled(page)
    await no_horizontal_scroll(page)
    await shot(page, "shop")

    # Search by name, any case: the seeded Longjing tea, with its supplier, price and stock.
    await page.get_by_label("Search by name or SKU").fill("LONGJING")
    await page.get_by_test_id("shop-search-submit").click()
    await page.wait_for_url(re.compile(r"q=LONGJING"))
    assert await cards.count() == 1
    card = page.locator('[data-testid="product-card"][data-sku="tea-1"]')
    await expect(card).to_contain_text("Longjing green tea")
    await expect(card).to_contain_text("tea-house")
    await expect(card.get_by_test_id("product-price")).to_have_text("¥28.00")
    p = await web.api.ok("GET", "/products/tea-1")
    await expect(card.get_by_test_id("product-stock")).to_have_attribute(
        "data-available", str(p["on_hand"] - p["reserved"])
    )
    await expect(card.get_by_test_id("product-kind")).to_have_text("Physical goods")
    # Logged out: the card's add-to-cart leads to the login page, and back.
    add = card.get_by_test_id("add-to-cart")
    assert "/ui/login?next=" in (await add.get_attribute("href") or "")

    # Search by SKU, and the supplier filter.
    await page.goto("/ui/shop?q=GIFT-")
    assert sorted(await cards.evaluate_all("cs => cs.map(c => c.dataset.sku)")) == [
        "gift-100",
        "gift-50",
    ]
    await page.goto("/ui/shop")
    await page.get_by_label("Supplier").select_option("digital-goods")
    await page.get_by_test_id("shop-search-submit").click()
    await page.wait_for_url(re.compile(r"supplier_id=digital-goods"))
    suppliers = await cards.evaluate_all("cs => cs.map(c => c.dataset.supplierId)")
    assert suppliers and set(suppliers) == {"digital-goods"}
    assert {"gift-50", "gift-100", "lic-1"} <= set(
        await cards.evaluate_all("cs => cs.map(c => c.dataset.sku)")
    )
    await expect(
        page.locator('[data-testid="product-card"][data-sku="lic-1"] [data-testid="product-kind"]')
    ).to_have_text("Virtual goods")

    # Keyset pages: a fresh supplier's three products, two a page.
    supplier = web.api.supplier()
    skus = sorted([await web.api.product(supplier) for _ in range(3)])
    await page.goto(f"/ui/shop?supplier_id={supplier.supplier_id}&limit=2")
    first = await cards.evaluate_all("cs => cs.map(c => c.dataset.sku)")
    await page.get_by_test_id("next-page").click()
    await page.wait_for_url(re.compile(r"cursor="))
    second = await cards.evaluate_all("cs => cs.map(c => c.dataset.sku)")
    assert first == skus[:2] and second == skus[2:]
    assert await page.get_by_test_id("next-page").count() == 0
    await page.get_by_test_id("first-page").click()
    await page.wait_for_url(re.compile(r"^(?!.*cursor=)"))
    assert await cards.evaluate_all("cs => cs.map(c => c.dataset.sku)") == skus[:2]


async def test_add_to_cart_from_a_card(web: Web, open_page: OpenPage) -> None:
    api = web.api
    who = await api.customer()
    sku = await api.product(TEA, price="7.50", on_hand=9)
    page = await open_page(web, as_login(who))
    await page.goto(f"/ui/shop?q={sku}")
    card = page.locator(f'[data-testid="product-card"][data-sku="{sku}"]')
    await card.get_by_label("Quantity").fill("2")
    await card.get_by_test_id("add-to-cart").click()
    await expect(page.get_by_test_id("cart-summary")).to_have_attribute("data-count", "2")
    assert await cart_of(api, who) == {sku: 2}
    await card.get_by_label("Quantity").fill("3")
    await card.get_by_test_id("add-to-cart").press("Enter")  # keyboard works too
    await expect(page.get_by_test_id("cart-summary")).to_have_attribute("data-count", "5")
    assert await cart_of(api, who) == {sku: 5}
    assert (await reserved(api, sku)) == {sku: 0}  # the cart reserves nothing
    await all_labelled(page)

    # Taken off sale after the page was shown: the API's refusal appears in that card.
    p = await api.ok("GET", f"/products/{sku}")
    body = {k: p[k] for k in ("name", "supplier_id", "product_type", "kind", "price", "on_hand")}
    await api.ok("PUT", f"/admin/products/{sku}", api.admin, {**body, "active": False})
    await card.get_by_test_id("add-to-cart").click()
    error = card.get_by_test_id("error-message")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text(f"product '{sku}' is not on sale")
    assert await cart_of(api, who) == {sku: 5}


# --- cart ------------------------------------------------------------------------------------


async def test_cart_change_quantity_and_remove(web: Web, open_page: OpenPage) -> None:
    api = web.api
    who = await api.customer()
    tea = await api.product(TEA, price="10.00")
    cup = await api.product(CERAMICS, price="4.00", product_type="cups")
    gift = await api.product(DIGITAL, price="50.00", kind="virtual", product_type="gift_cards")
    for sku, qty in ((tea, 1), (cup, 2), (gift, 1)):
        await api.ok("POST", "/cart/lines", who, {"sku": sku, "qty": qty})
    page = await open_page(web, as_login(who))
    await page.goto("/ui/cart")
    groups = page.get_by_test_id("cart-group")
    assert sorted(await groups.evaluate_all("gs => gs.map(g => g.dataset.supplierId)")) == [
        "ceramics-co",
        "digital-goods",
        "tea-house",
    ]
    await expect(page.get_by_test_id("cart-subtotal")).to_have_text("¥68.00")
    # Two physical suppliers under the free-postage threshold: flat postage each.
    await expect(page.get_by_test_id("cart-postage")).to_have_text("¥16.00")
    await all_labelled(page)
    await shot(page, "cart")

    line = page.locator(f'[data-testid="cart-line"][data-sku="{tea}"]')
    await line.get_by_label("Quantity").fill("4")
    await line.get_by_test_id("update-qty").click()
    await expect(page.locator(f'[data-testid="cart-line"][data-sku="{tea}"]')).to_have_attribute(
        "data-qty", "4"
    )
    await expect(page.get_by_test_id("cart-subtotal")).to_have_text("¥98.00")
    assert await cart_of(api, who) == {tea: 4, cup: 2, gift: 1}

    await (
        page.locator(f'[data-testid="cart-line"][data-sku="{cup}"]')
        .get_by_test_id("remove-line")
        .click()
    )
    await expect(page.locator(f'[data-testid="cart-line"][data-sku="{cup}"]')).to_have_count(0)
    assert await cart_of(api, who) == {tea: 4, gift: 1}

    # Removed elsewhere (another device) before this page changes it: the API's message.
    await api.ok("DELETE", f"/cart/lines/{gift}", who)
    line = page.locator(f'[data-testid="cart-line"][data-sku="{gift}"]')
    await line.get_by_label("Quantity").fill("2")
    await line.get_by_test_id("update-qty").click()
    await expect(line.get_by_test_id("error-message")).to_contain_text(
        f"'{gift}' is not in your cart"
    )
    assert await cart_of(api, who) == {tea: 4}

    await page.get_by_test_id("go-checkout").click()
    await page.wait_for_url("**/ui/checkout")


async def test_cart_and_checkout_need_a_customer(web: Web, open_page: OpenPage) -> None:
    page = await open_page(web, None)
    for path in ("/ui/cart", "/ui/checkout"):
        await page.goto(path)
        assert "/ui/login" in page.url
    supplier = await open_page(web, "tea-house")
    response = await supplier.goto("/ui/cart")
    assert response is not None and response.status == 403
    # A supplier may browse the shop but not buy.
    await supplier.goto("/ui/shop?q=tea-1")
    await expect(supplier.get_by_test_id("add-to-cart").first).to_be_disabled()


# --- checkout ------------------------------------------------------------------------------------


async def test_checkout_three_suppliers_submit_all(web: Web, open_page: OpenPage) -> None:
    api = web.api
    who = await api.customer(coins="100.00")
    skus = await three_supplier_cart(api, who)
    page = await open_page(web, as_login(who))
    await page.goto("/ui/checkout")

    boxes = page.get_by_test_id("supplier-form")
    assert sorted(await boxes.evaluate_all("bs => bs.map(b => b.dataset.supplierId)")) == [
        "ceramics-co",
        "digital-goods",
        "tea-house",
    ]
    box = {s: page.locator(f'[data-testid="supplier-form"][data-supplier-id="{s}"]') for s in skus}
    # Virtual goods only: no address form, no postage.
    await expect(box["digital-goods"].get_by_test_id("address-form")).to_have_count(0)
    await expect(box["digital-goods"].get_by_test_id("group-postage")).to_have_text("¥0.00")
    for supplier in ("tea-house", "ceramics-co"):
        form = box[supplier].get_by_test_id("address-form")
        await expect(form).to_have_count(1)
        for name in ("name", "phone", "region", "address"):
            await expect(form.locator(f'[name="{name}"]')).to_have_value(str(HOME[name]))
        await expect(form.locator('[name="lat"]')).to_have_value(str(HOME["lat"]))
        await expect(form.locator('[name="lon"]')).to_have_value(str(HOME["lon"]))
        await expect(box[supplier].get_by_test_id("group-postage")).to_have_text("¥8.00")
    await expect(box["tea-house"].get_by_test_id("group-total")).to_have_text("¥32.00")
    await expect(page.get_by_test_id("checkout-total")).to_have_text("¥120.00")
    await all_labelled(page)

    # Edit one box's receiver, leave remarks, spend coins (1 coin = ¥1 off).
    await box["ceramics-co"].get_by_label("Receiver").fill("Office reception")
    await box["tea-house"].get_by_test_id("remark").fill("Please pack the tea carefully")
    await box["digital-goods"].get_by_test_id("remark").fill("Send to my email")
    await page.get_by_test_id("coins-input").fill("6.50")
    await expect(page.get_by_test_id("coins-saving")).to_have_text("\u2212¥6.50")
    await expect(page.get_by_test_id("checkout-payable")).to_have_text("¥113.50")
    await shot(page, "checkout")
    before = await reserved(api, *skus.values())
    assert set(before.values()) == {0}

    await page.get_by_test_id("submit-all").click()
    await page.wait_for_url(re.compile(r"/ui/orders/[^/?#]+$"))
    order_no = page.url.rsplit("/", 1)[-1]
    order = await api.order(who, order_no)
    assert order["order_no"] == order_no and order["status"] == "PENDING_PAYMENT"
    assert order["payable"] == "113.50"
    by_supplier: dict[str, Any] = {so["supplier_id"]: so for so in order["supplier_orders"]}
    assert set(by_supplier) == set(skus)
    async with api.sessions() as s:
        from db.tables import SupplierOrder

        rows = {
            r.supplier_id: r
            for r in (
                await s.scalars(select(SupplierOrder).where(SupplierOrder.order_no == order_no))
            ).all()
        }
    assert rows["ceramics-co"].address is not None
    assert rows["ceramics-co"].address["name"] == "Office reception"
    assert rows["ceramics-co"].address["lat"] == HOME["lat"]  # the default's position travels
    assert rows["tea-house"].address == HOME
    assert rows["digital-goods"].address is None and not rows["digital-goods"].needs_address
    assert rows["tea-house"].remark == "Please pack the tea carefully"
    assert rows["digital-goods"].remark == "Send to my email"
    # Stock is reserved by the submit; the cart no longer holds what was ordered.
    assert await reserved(api, *skus.values()) == {
        skus["tea-house"]: 2,
        skus["ceramics-co"]: 1,
        skus["digital-goods"]: 1,
    }
    assert await cart_of(api, who) == {}


async def test_checkout_refused_for_coins_shows_the_message_above_the_boxes(
    web: Web, open_page: OpenPage
) -> None:
    api = web.api
    who = await api.customer(coins="10.00")
    skus = await three_supplier_cart(api, who)
    page = await open_page(web, as_login(who))
    await page.goto("/ui/checkout")
    await page.get_by_test_id("coins-input").fill("25")
    await page.get_by_test_id("submit-all").click()
    top = page.locator('#checkout-form > [data-testid="error-message"]')
    await expect(top).to_be_visible()
    await expect(top).to_contain_text("coin balance is 10.00, 25.00 requested")
    assert page.url.endswith("/ui/checkout")
    assert (
        await page.locator(
            '[data-testid="supplier-form"] [data-testid="error-message"]:visible'
        ).count()
        == 0
    )
    assert set((await reserved(api, *skus.values())).values()) == {0}
    assert await orders_of(api, who) == 0
    assert len(await cart_of(api, who)) == 3

    # More coins than the order costs: refused too, same place.
    await api.ok("PUT", f"/admin/customers/{who.sub}", api.admin, {"coins": "500.00"})
    await page.get_by_test_id("coins-input").fill("400")
    await page.get_by_test_id("submit-all").click()
    await expect(top).to_contain_text("exceed the order total")
    assert await orders_of(api, who) == 0


async def test_checkout_refused_for_stock_shows_the_message_in_that_box(
    web: Web, open_page: OpenPage
) -> None:
    api = web.api
    who = await api.customer()
    skus = await three_supplier_cart(api, who)
    page = await open_page(web, as_login(who))
    await page.goto("/ui/checkout")
    # Stock runs low after the page was built: the submit finds out.
    cup = skus["ceramics-co"]
    await set_stock(api, cup, 0)
    await page.get_by_test_id("submit-all").click()
    box = page.locator('[data-testid="supplier-form"][data-supplier-id="ceramics-co"]')
    error = box.get_by_test_id("error-message")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text(f"only 0 of '{cup}' in stock, 1 requested")
    assert await page.locator('[data-testid="error-message"]:visible').count() == 1
    assert set((await reserved(api, *skus.values())).values()) == {0}
    assert await orders_of(api, who) == 0

    # Restocked: the same page goes through.
    await set_stock(api, cup, 5)
    await page.get_by_test_id("submit-all").click()
    await page.wait_for_url(re.compile(r"/ui/orders/[^/?#]+$"))
    assert await orders_of(api, who) == 1


async def test_checkout_without_an_address_is_refused_in_the_box(
    web: Web, open_page: OpenPage
) -> None:
    api = web.api
    who = await api.customer(address=False)
    sku = await api.product(TEA, price="5.00")
    await api.ok("POST", "/cart/lines", who, {"sku": sku, "qty": 1})
    page = await open_page(web, as_login(who))
    await page.goto("/ui/checkout")
    box = page.locator('[data-testid="supplier-form"][data-supplier-id="tea-house"]')
    form = box.get_by_test_id("address-form")
    await expect(form.locator('[name="name"]')).to_have_value("")
    await page.get_by_test_id("submit-all").click()
    await expect(box.get_by_test_id("error-message")).to_contain_text(
        "a delivery address is required"
    )
    assert await orders_of(api, who) == 0 and await reserved(api, sku) == {sku: 0}

    await form.get_by_label("Receiver").fill("Dee Wang")
    await form.get_by_label("Phone").fill("13900001111")
    await form.get_by_label("Region").fill("Hangzhou")
    await form.get_by_label("Street address").fill("9 West Lake Road")
    await page.get_by_test_id("submit-all").click()
    await page.wait_for_url(re.compile(r"/ui/orders/[^/?#]+$"))
    order = await api.order(who, page.url.rsplit("/", 1)[-1])
    assert len(order["supplier_orders"]) == 1
    assert await reserved(api, sku) == {sku: 1}


async def test_checkout_of_an_empty_or_short_cart(web: Web, open_page: OpenPage) -> None:
    api = web.api
    who = await api.customer()
    page = await open_page(web, as_login(who))
    await page.goto("/ui/checkout")
    await expect(page.get_by_test_id("checkout-empty")).to_be_visible()
    assert await page.get_by_test_id("submit-all").count() == 0
    # More in the cart than in stock: the page says what POST /checkout says.
    sku = await api.product(TEA, on_hand=1)
    await api.ok("POST", "/cart/lines", who, {"sku": sku, "qty": 3})
    await page.goto("/ui/checkout")
    await expect(page.get_by_test_id("error-message")).to_contain_text(
        f"only 1 of '{sku}' in stock, 3 requested"
    )
    await page.goto("/ui/cart")
    await expect(page.get_by_test_id("cart-line-problem")).to_contain_text("Only 1 in stock")


# --- phones and Chinese ------------------------------------------------------------------------------


async def test_shop_cart_checkout_fit_a_phone_in_chinese(web: Web, open_page: OpenPage) -> None:
    api = web.api
    who = await api.customer()
    await three_supplier_cart(api, who)
    page = await open_page(web, as_login(who), viewport=PHONE, locale="zh-CN")
    for path, heading, name in (
        ("/ui/shop", "商城", "shop"),
        ("/ui/cart", "我的购物车", "cart"),
        ("/ui/checkout", "结算", "checkout"),
    ):
        await page.goto(path)
        assert await page.locator("html").get_attribute("lang") == "zh-CN"
        await expect(page.locator("h1")).to_have_text(heading)
        await no_horizontal_scroll(page)
        await all_labelled(page)
        await shot(page, name)
    await expect(page.get_by_test_id("submit-all")).to_have_text("全部提交订单")
    boxes = page.get_by_test_id("supplier-form")
    assert await boxes.count() == 3
    await expect(
        page.locator('[data-testid="supplier-form"][data-supplier-id="tea-house"] legend')
    ).to_have_text("收货地址")
    # Even a long unbroken remark does not widen the phone page.
    await page.get_by_test_id("remark").first.fill("x" * 300)
    await no_horizontal_scroll(page)
