"""The patent's story end to end in a real browser, across the three terminals at once.

A customer fills one edit box per supplier and creates all orders with one button, pays
under the countdown, and watches one box per supplier order; the supplier's terminal gets
only its own paid order and ships it in two packages; a carrier scan moves the parcel on
the customer's open page (distance and ETA, no reload); the customer confirms and reviews.
Every step goes through the pages; the API is used only to look and to sign the carrier.
"""

from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Page, expect

from tests.api.helpers import HOME, Who, eventually, uid
from tests.web.conftest import PHONE, OpenPage, Web, no_horizontal_scroll, shot

LIVE = 5_000  # DESIGN.md §9: a change reaches an open page within 5 s


def box(page: Page, supplier_id: str) -> Any:
    return page.locator(f'[data-testid="supplier-order-box"][data-supplier-id="{supplier_id}"]')


async def add_to_cart(web: Web, page: Page, who: Who, sku: str, qty: int) -> None:
    # Found the way a customer would: by its SKU in the search box (the shared test
    # catalog holds other tests' products too, so the first page may not show it).
    await page.get_by_test_id("shop-search").fill(sku)
    await page.get_by_test_id("shop-search-submit").click()
    await page.wait_for_url(f"**q={sku}*")
    card = page.locator(f'[data-testid="product-card"][data-sku="{sku}"]')
    await card.get_by_test_id("add-qty").fill(str(qty))
    await card.get_by_test_id("add-to-cart").click()

    async def in_cart() -> bool:
        cart = await web.api.ok("GET", "/cart", who)
        return any(line["sku"] == sku and line["qty"] >= qty for line in cart["lines"])

    await eventually(in_cart, what=f"{sku} in the cart")


async def test_one_order_three_suppliers_from_cart_to_review(web: Web, open_page: OpenPage) -> None:
    customer = await web.api.customer(coins="50.00")
    shopper = await open_page(web, (customer.sub, "customer", None))

    # 1. The shop: one physical product of two suppliers and a virtual one of a third.
    await shopper.goto("/ui/shop")
    for sku, qty in (("tea-1", 2), ("cup-3", 1), ("gift-50", 1)):
        await add_to_cart(web, shopper, customer, sku, qty)

    # 2. Checkout: one edit box per supplier; an address only where goods travel,
    #    pre-filled with the default address; one button creates all.
    await shopper.goto("/ui/checkout")
    forms = shopper.get_by_test_id("supplier-form")
    await expect(forms).to_have_count(3)
    tea_form = forms.and_(shopper.locator('[data-supplier-id="tea-house"]'))
    gift_form = forms.and_(shopper.locator('[data-supplier-id="digital-goods"]'))
    await expect(gift_form.get_by_test_id("address-form")).to_have_count(0)
    for supplier in ("tea-house", "ceramics-co"):
        form = forms.and_(shopper.locator(f'[data-supplier-id="{supplier}"]'))
        address = form.get_by_test_id("address-form")
        await expect(address.locator('input[name$="name"]')).to_have_value(str(HOME["name"]))
        await expect(address.locator('input[name$="address"]')).to_have_value(str(HOME["address"]))
    await tea_form.get_by_test_id("remark").fill("Please ring twice")
    await shopper.get_by_test_id("coins-input").fill("5")
    await shot(shopper, "journey-checkout")
    await shopper.get_by_test_id("submit-all").click()
    await shopper.wait_for_url("**/ui/orders/*")
    order_no = await shopper.get_by_test_id("order-no").inner_text()

    # 3. Unpaid: a live countdown and the pay button; paying splits it per supplier.
    status = shopper.get_by_test_id("order-status")
    await expect(status).to_have_attribute("data-status", "PENDING_PAYMENT")
    seconds = int(await shopper.get_by_test_id("pay-countdown").get_attribute("data-seconds") or 0)
    assert 0 < seconds <= 120
    await shopper.get_by_test_id("pay-button").click()
    boxes = shopper.get_by_test_id("supplier-order-box")
    await expect(boxes).to_have_count(3, timeout=15_000)
    for supplier in ("tea-house", "ceramics-co", "digital-goods"):
        await expect(box(shopper, supplier)).to_have_attribute("data-status", "PENDING_SHIPMENT")
    await expect(box(shopper, "tea-house").get_by_test_id("confirm-receipt")).to_have_count(0)

    # 4. The supplier's terminal: only its own paid order, the remark up front.
    seller = await open_page(web, "tea-house")
    await seller.goto("/ui/supplier")
    row = seller.locator(f'[data-testid="supplier-order-row"][data-order-no="{order_no}"]')
    await expect(row).to_have_count(1)
    assert customer.sub not in await seller.content()
    so_id = await row.get_attribute("data-supplier-order-id")
    assert so_id and so_id.endswith("-tea-house")
    await seller.goto(f"/ui/supplier/orders/{so_id}")
    assert "Please ring twice" in await seller.locator(".remark").first.inner_text()
    assert customer.sub not in await seller.content()

    # Two packages, one tea each.
    tracking = [uid("SF"), uid("SF")]
    for tracking_no in tracking:
        form = seller.get_by_test_id("ship-form")
        await form.get_by_test_id("ship-qty").first.fill("1")
        await form.get_by_test_id("carrier").fill("sf")
        await form.get_by_test_id("tracking-no").fill(tracking_no)
        await form.get_by_test_id("shipping-method").select_option("express")
        await form.get_by_test_id("ship-submit").click()
        await expect(
            seller.locator(f'[data-testid="package"][data-tracking-no="{tracking_no}"]')
        ).to_have_count(1, timeout=15_000)

    # 5. The customer's open page follows without a reload: 待收货 and two parcels...
    tea_box = box(shopper, "tea-house")
    await expect(tea_box).to_have_attribute("data-status", "PENDING_RECEIPT", timeout=LIVE)
    await expect(tea_box.get_by_test_id("package")).to_have_count(2, timeout=LIVE)
    # ...and a carrier scan puts the first on the map: distance to the address and ETA.
    scan = {
        "event_id": uid("scan-"),
        "carrier": "sf",
        "tracking_no": tracking[0],
        "lat": 31.2989,
        "lon": 120.5853,
        "status": "in_transit",
        "at": datetime.now(UTC).isoformat(),
    }
    assert (await web.api.signed("/webhooks/carrier", scan)).status_code == 202
    parcel = tea_box.locator(f'[data-testid="package"][data-tracking-no="{tracking[0]}"]')
    await expect(parcel.get_by_test_id("distance-km")).to_be_visible(timeout=LIVE)
    distance = float(await parcel.get_by_test_id("distance-km").inner_text())
    assert 50 < distance < 120  # Suzhou → Shanghai
    await expect(parcel.get_by_test_id("eta")).to_be_visible()
    await expect(parcel.get_by_test_id("shipping-method")).to_have_attribute(
        "data-method", "express"
    )
    await shot(shopper, "journey-order")

    # 6. Everything of this supplier shipped: confirm receipt, then review.
    await tea_box.get_by_test_id("confirm-receipt").click()
    await expect(tea_box).to_have_attribute("data-status", "PENDING_REVIEW", timeout=LIVE)
    await tea_box.get_by_test_id("review-rating").select_option("5")
    await tea_box.get_by_test_id("review-text").fill("Fresh and fragrant")
    await tea_box.get_by_test_id("review").click()
    await expect(tea_box).to_have_attribute("data-status", "COMPLETED", timeout=LIVE)

    record = await web.api.order(customer, order_no)
    by_supplier = {so["supplier_id"]: so for so in record["supplier_orders"]}
    assert by_supplier["tea-house"]["status"] == "COMPLETED"
    assert by_supplier["ceramics-co"]["status"] == "PENDING_SHIPMENT"
    assert by_supplier["digital-goods"]["status"] == "PENDING_SHIPMENT"
    assert {p["tracking_no"] for p in by_supplier["tea-house"]["packages"]} == set(tracking)

    # The other suppliers' terminals never saw the tea house's part.
    potter = await open_page(web, "ceramics-co")
    await potter.goto("/ui/supplier")
    rows = potter.locator(f'[data-testid="supplier-order-row"][data-order-no="{order_no}"]')
    await expect(rows).to_have_count(1)
    assert (await rows.get_attribute("data-supplier-order-id") or "").endswith("-ceramics-co")
    await potter.goto(f"/ui/supplier/orders/{so_id}")
    assert "Please ring twice" not in await potter.content()


async def test_the_customer_terminal_in_chinese_on_a_phone(web: Web, open_page: OpenPage) -> None:
    customer = await web.api.customer()
    placed = await web.api.paid_order(customer, [("tea-1", 1), ("gift-50", 1)])
    order_no = placed["order_no"]
    page = await open_page(web, (customer.sub, "customer", None), viewport=PHONE, locale="zh-CN")
    await page.goto(f"/ui/orders/{order_no}")
    await expect(box(page, "tea-house").get_by_test_id("supplier-order-status")).to_have_text(
        "待发货"
    )
    await no_horizontal_scroll(page)
    await page.goto("/ui/orders")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    for tab in ("待付款", "待发货", "待收货", "待评价", "已完成", "已关闭"):
        await expect(page.get_by_role("link", name=tab, exact=False).first).to_be_visible()
    await no_horizontal_scroll(page)
