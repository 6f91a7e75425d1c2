"""The customer's order pages in a real browser: one order, and "My orders".

Orders are placed, paid, shipped and scanned through the real API (`web.api`); the page
is only looked at and clicked, as a customer would.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Page, expect

from starter.web import i18n
from starter.web.routes.orders import METHOD_WORDS, PACKAGE_STATUS_WORDS, covered_percent, sketch
from tests.api.helpers import HOME, Who, footprint, uid
from tests.web.conftest import DESKTOP, PHONE, OpenPage, Web, no_horizontal_scroll, shot


def customer_account(who: Who) -> tuple[str, str, None]:
    return (who.sub, "customer", None)


def box(page: Page, supplier_id: str | None) -> Any:
    return page.locator(f'[data-testid="supplier-order-box"][data-supplier-id="{supplier_id}"]')


def items_by_sku(so: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["sku"]: i for sub in so["sub_orders"] for i in sub["items"]}


async def ship(web: Web, supplier: Who, so_id: str, lines: list[tuple[str, int]]) -> str:
    tracking_no = uid("SF")
    await web.api.ok(
        "POST",
        f"/supplier/orders/{so_id}/shipments",
        supplier,
        {
            "carrier": "sf",
            "tracking_no": tracking_no,
            "method": "express",
            "items": [{"item_id": i, "qty": q} for i, q in lines],
        },
        expect=201,
    )
    return tracking_no


async def test_unpaid_order_counts_down_and_paying_splits_it_per_supplier(
    web: Web, open_page: OpenPage
) -> None:
    tea_house, potter = web.api.supplier(), web.api.supplier()
    tea = await web.api.product(tea_house, price="12.00")
    cup = await web.api.product(potter, price="9.50", product_type="cups")
    customer = await web.api.customer()
    placed = await web.api.place(customer, [(tea, 2), (cup, 1)])
    order_no = placed["order_no"]

    page = await open_page(web, customer_account(customer))
    await page.goto(f"/ui/orders/{order_no}")
    assert await page.get_by_test_id("order-no").inner_text() == order_no
    await expect(page.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "PENDING_PAYMENT"
    )
    assert await page.locator("body").get_attribute("data-live-topics") == f"order:{order_no}"
    countdown = page.get_by_test_id("pay-countdown")
    first = int(await countdown.get_attribute("data-seconds") or "0")
    assert 100 < first <= 120
    await page.wait_for_function(
        "s => Number(document.querySelector('[data-testid=pay-countdown]').dataset.seconds) < s",
        arg=first,
    )
    await expect(page.get_by_test_id("cancel-order")).to_be_visible()
    await shot(page, "order-unpaid")

    phone = await open_page(web, customer_account(customer), viewport=PHONE, locale="zh-CN")
    await phone.goto(f"/ui/orders/{order_no}")
    await expect(phone.get_by_test_id("pay-button")).to_be_visible()
    await no_horizontal_scroll(phone)
    await shot(phone, "order-unpaid")

    # Pay from the page: the boxes turn "pending shipment" without a reload.
    await page.evaluate("window.__same_page = true")
    await page.get_by_test_id("pay-button").click()
    await expect(page.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "PAID", timeout=20_000
    )
    assert await page.evaluate("window.__same_page") is True
    boxes = page.get_by_test_id("supplier-order-box")
    await expect(boxes).to_have_count(2)
    for supplier in (tea_house, potter):
        b = box(page, supplier.supplier_id)
        await expect(b).to_have_attribute("data-status", "PENDING_SHIPMENT")
        await expect(b.get_by_test_id("supplier-order-status")).to_have_text("Pending shipment")
        await expect(b.get_by_test_id("cancel")).to_be_visible()
        await expect(b.get_by_test_id("remind")).to_be_visible()
        await expect(b.get_by_test_id("buy-again")).to_be_visible()
        for absent in ("confirm-receipt", "extend-receipt", "review", "after-sales"):
            await expect(b.get_by_test_id(absent)).to_have_count(0)
    await expect(page.get_by_test_id("pay-countdown")).to_have_count(0)

    # The same page in Chinese reads 待发货 (the code stays in data-status).
    await phone.reload()
    await expect(phone.get_by_test_id("supplier-order-status").first).to_have_text("待发货")
    await no_horizontal_scroll(phone)

    # The API's order view lists the same commands the page offers.
    record = await web.api.order(customer, order_no)
    for so in record["supplier_orders"]:
        assert so["actions"] == ["cancel", "remind", "buy-again"]


async def test_shipping_tracking_confirm_and_review_through_the_page(
    web: Web, open_page: OpenPage
) -> None:
    supplier = web.api.supplier()
    tea = await web.api.product(supplier, price="10.00", product_type="tea")
    pot = await web.api.product(supplier, price="40.00", product_type="teaware")
    customer = await web.api.customer()
    order = await web.api.paid_order(customer, [(tea, 2), (pot, 1)])
    order_no = order["order_no"]
    so = order["supplier_orders"][0]
    items = items_by_sku(so)
    tracking_no = await ship(web, supplier, so["id"], [(items[tea]["item_id"], 2)])

    page = await open_page(web, customer_account(customer))
    await page.goto(f"/ui/orders/{order_no}")
    b = box(page, supplier.supplier_id)
    await expect(b).to_have_attribute("data-status", "PENDING_RECEIPT")
    package = b.locator(f'[data-testid="package"][data-tracking-no="{tracking_no}"]')
    await expect(package).to_be_visible()
    await expect(package.get_by_test_id("shipping-method")).to_have_text("Express")
    await expect(package.get_by_test_id("distance-km")).to_have_count(0)  # no scan yet
    # The teapot has not shipped: receipt cannot be confirmed yet.
    await expect(b.get_by_test_id("confirm-receipt")).to_have_count(0)
    await expect(b.get_by_test_id("confirm-waits")).to_be_visible()
    await expect(b.get_by_test_id("extend-receipt")).to_be_visible()
    await expect(b.get_by_test_id("auto-confirm")).to_contain_text("in 9 days")
    await expect(b.get_by_test_id("cancel")).to_have_count(0)

    # Two carrier scans (Hangzhou, then Suzhou) move the parcel towards Shanghai.
    for lat, lon in ((30.2741, 120.1551), (31.2989, 120.5853)):
        scan = {
            "event_id": uid("scan-"),
            "carrier": "sf",
            "tracking_no": tracking_no,
            "lat": lat,
            "lon": lon,
            "status": "in_transit",
            "at": datetime.now(UTC).isoformat(),
        }
        assert (await web.api.signed("/webhooks/carrier", scan)).status_code == 202

    def scanned(o: dict[str, Any]) -> bool:
        (p,) = o["supplier_orders"][0]["packages"]
        return bool(p["location"] and p["location"]["lat"] == 31.2989)

    record = await web.api.wait_order(customer, order_no, scanned, "carrier scans applied")
    await page.reload()
    distance = float(await package.get_by_test_id("distance-km").inner_text())
    assert abs(distance - record["supplier_orders"][0]["packages"][0]["distance_km"]) < 0.1
    assert 50 < distance < 120
    await expect(package.get_by_test_id("eta")).to_be_visible()
    await expect(package.get_by_test_id("route-sketch")).to_be_visible()
    progress = int(
        await package.get_by_test_id("route-progress").get_attribute("aria-valuenow") or -1
    )
    assert 30 < progress < 100  # Suzhou lies most of the way from Hangzhou to Shanghai
    await shot(page, "order-shipped")
    phone = await open_page(web, customer_account(customer), viewport=PHONE)
    await phone.goto(f"/ui/orders/{order_no}")
    await expect(phone.get_by_test_id("distance-km")).to_be_visible()
    await no_horizontal_scroll(phone)
    await shot(phone, "order-shipped")

    # Everything ships: now receipt can be confirmed, then the goods reviewed.
    await ship(web, supplier, so["id"], [(items[pot]["item_id"], 1)])
    await page.reload()
    await expect(b.get_by_test_id("package")).to_have_count(2)
    await expect(b.get_by_test_id("confirm-waits")).to_have_count(0)
    await b.get_by_test_id("confirm-receipt").click()
    await expect(b).to_have_attribute("data-status", "PENDING_REVIEW")
    await expect(b.get_by_test_id("confirm-receipt")).to_have_count(0)
    await expect(b.get_by_test_id("auto-review")).to_be_visible()
    await expect(b.get_by_test_id("after-sales")).to_be_visible()
    await b.get_by_label("Rating").select_option("4")
    await b.get_by_label("Your review").fill("Fresh tea, well packed.")
    await b.get_by_test_id("review").click()
    await expect(b).to_have_attribute("data-status", "COMPLETED")
    await expect(b.get_by_test_id("review")).to_have_count(0)
    final = await web.api.order(customer, order_no)
    assert final["supplier_orders"][0]["status"] == "COMPLETED"
    assert final["supplier_orders"][0]["actions"] == ["after-sales", "buy-again"]

    # After-sales from the page: the item list caps the quantity at what is left.
    await b.get_by_test_id("after-sales").click()
    await b.get_by_test_id("after-sales-item").select_option(items[tea]["item_id"])
    await expect(b.get_by_test_id("after-sales-qty")).to_have_attribute("max", "2")
    await b.get_by_test_id("after-sales-qty").fill("1")
    await b.get_by_label("Reason").fill("One bag was torn")
    await b.get_by_test_id("after-sales-submit").click()
    request = b.get_by_test_id("after-sale")
    await expect(request).to_have_count(1)
    await expect(request).to_have_attribute("data-status", "REQUESTED")


async def test_a_refused_command_shows_the_api_message_and_changes_nothing(
    web: Web, open_page: OpenPage
) -> None:
    supplier = web.api.supplier()
    tea = await web.api.product(supplier)
    customer = await web.api.customer()
    order = await web.api.paid_order(customer, [(tea, 1)])
    page = await open_page(web, customer_account(customer))
    await page.goto(f"/ui/orders/{order['order_no']}")
    b = box(page, supplier.supplier_id)

    await b.get_by_test_id("remind").click()
    await expect(b.get_by_test_id("remind-next")).to_contain_text("next reminder is possible in")
    before = await footprint(web.api, customer, [tea])

    await b.get_by_test_id("remind").click()  # too soon: the workflow refuses it
    error = b.get_by_test_id("error-message")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("reminded already")
    await expect(b).to_have_attribute("data-status", "PENDING_SHIPMENT")
    assert await footprint(web.api, customer, [tea]) == before


async def test_the_countdown_closes_an_unpaid_order_without_a_reload(
    fast_web: Web, open_page: OpenPage
) -> None:
    supplier = fast_web.api.supplier()
    tea = await fast_web.api.product(supplier)
    customer = await fast_web.api.customer()
    placed = await fast_web.api.place(customer, [(tea, 1)])
    page = await open_page(fast_web, customer_account(customer))
    await page.goto(f"/ui/orders/{placed['order_no']}")
    await expect(page.get_by_test_id("pay-countdown")).to_be_visible()
    await page.evaluate("window.__same_page = true")

    await expect(page.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "CLOSED", timeout=20_000
    )
    await expect(page.get_by_test_id("order-close-reason")).to_contain_text("Not paid in time")
    await expect(box(page, supplier.supplier_id)).to_have_attribute("data-status", "CLOSED")
    await expect(page.get_by_test_id("pay-countdown")).to_have_count(0)
    await expect(page.get_by_test_id("pay-button")).to_have_count(0)
    assert await page.evaluate("window.__same_page") is True


async def test_another_customers_order_is_a_404_page_without_its_data(
    web: Web, open_page: OpenPage
) -> None:
    supplier = web.api.supplier()
    tea = await web.api.product(supplier)
    owner = await web.api.customer()
    placed = await web.api.place(owner, [(tea, 1)])
    stranger = await web.api.customer()
    page = await open_page(web, customer_account(stranger))
    response = await page.goto(f"/ui/orders/{placed['order_no']}")
    assert response is not None and response.status == 404
    await expect(page.get_by_test_id("error-page")).to_be_visible()
    for hook in ("order-no", "order-status", "supplier-order-box", "pay-button"):
        await expect(page.get_by_test_id(hook)).to_have_count(0)
    html = await page.content()
    assert tea not in html and str(HOME["address"]) not in html

    # An admin may look at it.
    admin = await open_page(web, ("root", "admin", None))
    await admin.goto(f"/ui/orders/{placed['order_no']}")
    assert await admin.get_by_test_id("order-no").inner_text() == placed["order_no"]
    await expect(admin.get_by_test_id("pay-button")).to_have_count(0)


async def test_my_orders_newest_first_tabs_filter_and_phone_layout(
    web: Web, open_page: OpenPage
) -> None:
    supplier = web.api.supplier()
    tea = await web.api.product(supplier)
    customer = await web.api.customer()
    paid = await web.api.paid_order(customer, [(tea, 1)])
    unpaid = await web.api.place(customer, [(tea, 2)])

    page = await open_page(web, customer_account(customer))
    await page.goto("/ui/orders")
    assert await page.locator("body").get_attribute("data-live-topics") == (
        f"customer:{customer.sub}"
    )
    rows = page.get_by_test_id("order-row")
    await expect(rows).to_have_count(2)
    assert [await r.get_attribute("data-order-no") for r in await rows.all()] == [
        unpaid["order_no"],
        paid["order_no"],
    ]
    await shot(page, "orders")

    tab = page.locator('[data-testid="order-tab"][data-status="PENDING_SHIPMENT"]')
    await tab.click()
    await expect(tab).to_have_attribute("aria-current", "page")
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-order-no", paid["order_no"])
    # The live region re-renders with the same filter (what a pushed change does).
    await page.evaluate("window.Orders.refreshAll()")
    await expect(page.get_by_test_id("order-list")).to_have_attribute(
        "data-status", "PENDING_SHIPMENT"
    )
    await expect(rows).to_have_count(1)
    await page.locator('[data-testid="order-tab"][data-status="PENDING_PAYMENT"]').click()
    await expect(rows).to_have_count(1)
    await expect(rows).to_have_attribute("data-order-no", unpaid["order_no"])
    await page.locator('[data-testid="order-tab"][data-status="COMPLETED"]').click()
    await expect(page.get_by_test_id("no-orders")).to_be_visible()

    # Each row leads to its order page.
    await page.locator('[data-testid="order-tab"][data-status=""]').click()
    await rows.first.get_by_test_id("order-link").click()
    await page.wait_for_url(f"**/ui/orders/{unpaid['order_no']}")

    phone = await open_page(web, customer_account(customer), viewport=PHONE, locale="zh-CN")
    await phone.goto("/ui/orders")
    tabs = phone.get_by_test_id("order-tab")
    assert [t.strip() for t in await tabs.all_inner_texts()] == [
        "全部",
        "待付款",
        "待发货",
        "待收货",
        "待评价",
        "已完成",
        "已关闭",
    ]
    await expect(phone.get_by_test_id("order-row")).to_have_count(2)
    await no_horizontal_scroll(phone)
    await shot(phone, "orders")


async def test_my_orders_pages_ten_at_a_time(web: Web, open_page: OpenPage) -> None:
    supplier = web.api.supplier()
    tea = await web.api.product(supplier, on_hand=100)
    customer = await web.api.customer()
    placed = await asyncio.gather(*(web.api.place(customer, [(tea, 1)]) for _ in range(11)))
    page = await open_page(web, customer_account(customer), viewport=DESKTOP)
    await page.goto("/ui/orders")
    await expect(page.get_by_test_id("order-row")).to_have_count(10)
    await expect(page.get_by_test_id("page-prev")).to_have_count(0)
    await page.get_by_test_id("page-next").click()
    await expect(page.get_by_test_id("order-row")).to_have_count(1)
    await expect(page.get_by_test_id("page-of")).to_contain_text("Page 2 of 2")
    shown = set()
    for n in (1, 2):
        await page.goto(f"/ui/orders?page={n}")
        shown |= {
            await r.get_attribute("data-order-no")
            for r in await page.get_by_test_id("order-row").all()
        }
    assert shown == {p["order_no"] for p in placed}


def test_parcel_words_have_chinese_and_the_sketch_fits_its_box() -> None:
    zh = i18n.catalog("zh_CN")
    for table in (PACKAGE_STATUS_WORDS, METHOD_WORDS):
        assert not [w for w in table.values() if w not in zh]
    k = sketch((30.27, 120.16), (31.30, 120.59), (31.23, 121.47))
    for x, y in (k.origin, k.parcel, k.dest):
        assert 0 <= x <= k.width and 0 <= y <= k.height
    same = sketch((31.0, 121.0), (31.0, 121.0), (31.0, 121.0))
    assert same.origin == same.dest == (k.width / 2, k.height / 2)
    assert covered_percent((30.27, 120.16), (31.23, 121.47), 0.0) == 100
    assert covered_percent((30.27, 120.16), (31.23, 121.47), None) == 0
