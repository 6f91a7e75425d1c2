"""The admin's pages in a real browser: order search, the Temporal link, the operation log."""

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, expect

from starter.api.routers.admin import STATUSES
from tests.api.helpers import Who
from tests.web.conftest import DESKTOP, PHONE, OpenPage, Web, no_horizontal_scroll, shot


async def rows(page: Page) -> list[str]:
    found: list[str] = await page.get_by_test_id("admin-order-row").evaluate_all(
        "rows => rows.map(r => r.dataset.orderNo)"
    )
    return found


async def search(page: Page, **fields: str) -> None:
    """Fill the form (by the controls' labels) and submit it."""
    labels = {
        "order_no": "Order number",
        "customer_id": "Customer ID",
        "supplier_id": "Supplier ID",
        "created_from": "Created from",
        "created_to": "Created to",
    }
    for name, value in fields.items():
        if name == "status":
            await page.get_by_label("Status").select_option(value)
        else:
            await page.get_by_label(labels[name], exact=True).fill(value)
    async with page.expect_navigation():
        await page.get_by_test_id("search-submit").click()


async def orders(web: Web) -> dict[str, Any]:
    """A customer with an unpaid and a paid order, and someone else's order."""
    api = web.api
    supplier = api.supplier()
    sku = await api.product(supplier, price="12.50")
    customer, someone = await api.customer(), await api.customer()
    unpaid = await api.place(customer, [(sku, 1)])
    paid = await api.paid_order(customer, [(sku, 2)])
    other = await api.place(someone, [(sku, 1)])
    return {
        "customer": customer,
        "supplier": supplier,
        "unpaid": unpaid["order_no"],
        "paid": paid["order_no"],
        "other": other["order_no"],
    }


async def test_search_by_number_customer_and_status(web: Web, open_page: OpenPage) -> None:
    o = await orders(web)
    customer: Who = o["customer"]
    page = await open_page(web, "admin", viewport=DESKTOP)
    await page.goto("/ui/admin")
    assert await page.locator("body").get_attribute("data-live-topics") == "admin"
    # Every status the API accepts is offered, in words.
    options = (
        await page.get_by_label("Status")
        .locator("option")
        .evaluate_all("os => os.map(o => o.value).filter(Boolean)")
    )
    assert sorted(options) == sorted(STATUSES)

    await search(page, order_no=o["paid"])
    assert await rows(page) == [o["paid"]]
    row = page.get_by_test_id("admin-order-row")
    status = row.get_by_test_id("order-status")
    assert await status.get_attribute("data-status") == "PAID"
    await expect(status).to_have_text("Paid")
    view = await web.api.order(web.api.admin, o["paid"])
    for field in ("payable", "paid", "refunded"):
        assert await row.get_by_test_id(field).inner_text() == f"¥{Decimal(view[field]):.2f}"
    assert view["paid"] == view["payable"] != "0.00"
    box = row.get_by_test_id("supplier-status")
    assert await box.get_attribute("data-supplier-id") == o["supplier"].supplier_id
    assert await box.get_attribute("data-status") == "PENDING_SHIPMENT"
    await expect(box).to_contain_text("Pending shipment")
    assert await row.get_by_test_id("order-link").get_attribute("href") == f"/ui/orders/{o['paid']}"

    # The form keeps what was searched; a new search replaces it.
    await page.get_by_label("Order number", exact=True).fill("")
    await search(page, customer_id=customer.sub)
    assert await rows(page) == [o["paid"], o["unpaid"]]  # newest first, not someone else's
    await search(page, status="PENDING_PAYMENT")
    assert await rows(page) == [o["unpaid"]]
    await expect(page.get_by_label("Customer ID")).to_have_value(customer.sub)
    await search(page, status="PENDING_SHIPMENT")  # a supplier order's status
    assert await rows(page) == [o["paid"]]
    await search(page, status="COMPLETED")
    assert await rows(page) == []
    await expect(page.get_by_test_id("no-results")).to_be_visible()

    await page.goto(f"/ui/admin?customer_id={customer.sub}")
    await shot(page, "admin")
    await no_horizontal_scroll(page)


async def test_order_type_filter_and_csv_export(web: Web, open_page: OpenPage) -> None:
    """The type select narrows the search; "Export CSV" downloads the same search as CSV."""
    o = await orders(web)
    customer: Who = o["customer"]
    sku = await web.api.product(o["supplier"])
    promo = await web.api.ok(
        "POST",
        "/orders",
        customer,
        {"lines": [{"sku": sku, "qty": 1}], "coins": "0.00", "order_type": "activity"},
        expect=201,
    )
    page = await open_page(web, "admin", viewport=DESKTOP)
    await page.goto(f"/ui/admin?customer_id={customer.sub}")
    assert await rows(page) == [promo["order_no"], o["paid"], o["unpaid"]]
    await page.get_by_label("Order type").select_option("activity")
    async with page.expect_navigation():
        await page.get_by_test_id("search-submit").click()
    assert await rows(page) == [promo["order_no"]]
    await expect(page.get_by_label("Order type")).to_have_value("activity")

    link = page.get_by_test_id("export-csv")
    href = await link.get_attribute("href") or ""
    assert urlsplit(href).path == "/admin/orders/export.csv"
    assert parse_qs(urlsplit(href).query) == {
        "customer_id": [customer.sub],
        "order_type": ["activity"],
    }
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    path = await download.path()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("order_no,")
    assert len(lines) == 2 and lines[1].startswith(promo["order_no"] + ","), lines

    # A refused search offers no export (it would not be the search shown).
    await page.goto("/ui/admin?order_type=gift")
    await expect(page.get_by_test_id("error-message")).to_contain_text("order_type")
    await expect(page.get_by_test_id("export-csv")).to_have_count(0)


async def test_pages_with_a_next_link(web: Web, open_page: OpenPage) -> None:
    o = await orders(web)
    customer: Who = o["customer"]
    page = await open_page(web, "admin", viewport=PHONE)
    await page.goto(f"/ui/admin?customer_id={customer.sub}&limit=1")
    assert await rows(page) == [o["paid"]]
    await no_horizontal_scroll(page)  # English labels are longer
    await expect(page.get_by_test_id("first-page")).to_have_count(0)
    async with page.expect_navigation():
        await page.get_by_test_id("next-page").click()
    assert await rows(page) == [o["unpaid"]]
    await expect(page.get_by_test_id("next-page")).to_have_count(0)
    await expect(page.get_by_test_id("first-page")).to_be_visible()


async def test_temporal_link_and_operation_log(web: Web, open_page: OpenPage) -> None:
    o = await orders(web)
    page = await open_page(web, "admin")
    await page.goto(f"/ui/admin?order_no={o['paid']}")
    href = await page.get_by_test_id("temporal-link").get_attribute("href")
    assert href is not None
    settings = web.settings
    base = f"{settings.temporal_ui_base()}/namespaces/{settings.temporal_namespace}/workflows"
    assert href.startswith(base + "?query=")
    assert parse_qs(urlsplit(href).query) == {"query": [f'OrderNo="{o["paid"]}"']}

    async with page.expect_navigation():
        await page.get_by_test_id("log-link").click()
    assert urlsplit(page.url).path == f"/ui/admin/orders/{o['paid']}/log"
    await expect(page.get_by_test_id("order-no")).to_have_text(o["paid"])
    expected = (await web.api.ok("GET", f"/admin/orders/{o['paid']}/log", web.api.admin))["entries"]
    entries = page.get_by_test_id("log-entry")
    await expect(entries).to_have_count(len(expected))
    assert len(expected) >= 2  # placed, paid...
    shown = await entries.evaluate_all(
        "rows => rows.map(r => [r.dataset.actor, r.dataset.action,"
        " r.querySelector('[data-testid=actor-id]').textContent.trim()])"
    )
    assert shown == [[e["actor"], e["action"], e["actor_id"] or "—"] for e in expected]
    assert await page.get_by_test_id("temporal-link").get_attribute("href") == href
    await shot(page, "admin-log")
    await no_horizontal_scroll(page)

    missing = await page.goto("/ui/admin/orders/NO-SUCH-ORDER/log")
    assert missing is not None and missing.status == 404


async def test_customers_and_suppliers_get_a_403_page(web: Web, open_page: OpenPage) -> None:
    for account in ("alice", "tea-house"):
        page = await open_page(web, account)
        for path in ("/ui/admin", "/ui/admin/orders/ANY/log"):
            response = await page.goto(path)
            assert response is not None and response.status == 403, (account, path)
            error = page.get_by_test_id("error-page")
            assert await error.get_attribute("data-status") == "403"
            await expect(page.get_by_test_id("admin-search")).to_have_count(0)


async def test_bad_input_is_shown_next_to_the_form(web: Web, open_page: OpenPage) -> None:
    page = await open_page(web, "admin")
    response = await page.goto("/ui/admin?created_from=2026-02-02&created_to=2026-02-01")
    assert response is not None and response.status == 422
    await expect(page.get_by_test_id("error-message")).to_contain_text(
        "created_from is after created_to"
    )
    await expect(page.get_by_label("Created from")).to_have_value("2026-02-02")


async def test_phone_in_chinese(web: Web, open_page: OpenPage) -> None:
    o = await orders(web)
    customer: Who = o["customer"]
    page = await open_page(web, "admin", viewport=PHONE, locale="zh-CN")
    await page.goto("/ui/admin")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"
    await expect(page.locator("h1")).to_have_text("订单查询")
    await page.get_by_label("顾客 ID").fill(customer.sub)
    await page.get_by_label("状态").select_option("PENDING_PAYMENT")
    async with page.expect_navigation():
        await page.get_by_test_id("search-submit").click()
    assert await rows(page) == [o["unpaid"]]
    await expect(page.get_by_test_id("order-status")).to_have_text("待付款")
    await expect(page.locator("th", has_text="已付金额")).to_have_count(1)
    # Every control has a label.
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('form[data-testid=admin-search] input,'
                + 'form[data-testid=admin-search] select')]
                .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"""
    )
    assert unlabelled == []
    await no_horizontal_scroll(page)
    await page.goto(f"/ui/admin?customer_id={customer.sub}")
    await no_horizontal_scroll(page)
    await shot(page, "admin")

    await page.goto(f"/ui/admin/orders/{o['paid']}/log")
    await expect(page.locator("h1")).to_contain_text("操作日志")
    await expect(page.get_by_test_id("log-entry").first).to_be_visible()
    await no_horizontal_scroll(page)
    await shot(page, "admin-log")


async def test_new_orders_appear_without_a_reload(web: Web, open_page: OpenPage) -> None:
    o = await orders(web)
    customer: Who = o["customer"]
    page = await open_page(web, "admin")
    await page.goto(f"/ui/admin?customer_id={customer.sub}")
    assert await rows(page) == [o["paid"], o["unpaid"]]
    await page.evaluate("window.__same_page = true")
    sku = await web.api.product(o["supplier"])
    placed = (await web.api.place(customer, [(sku, 1)]))["order_no"]

    await expect(page.get_by_test_id("admin-order-row")).to_have_count(3, timeout=5_000)
    assert await rows(page) == [placed, o["paid"], o["unpaid"]]
    assert await page.evaluate("window.__same_page") is True  # no reload
