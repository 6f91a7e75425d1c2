"""The supplier terminal in a real browser: the inbox of own paid orders and one order's page.

Each test works with fresh suppliers and products (`web.api.supplier()`, `web.api.product()`),
so other tests' orders never show up in its inbox. Commands go through the page (the page's
script calls the API); the results are checked through the API as well.
"""

from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Page, expect

from domain.models import Address
from domain.states import ItemStatus, ProductKind, SupplierOrderStatus, item_status
from starter.api.schemas import (
    DeadlinesOut,
    ItemOut,
    PackageItemOut,
    PackageOut,
    SubOrderOut,
    SupplierViewOut,
)
from starter.web import i18n
from starter.web.routes import live
from starter.web.routes import supplier as supplier_page
from tests.api.helpers import HOME, Who, eventually
from tests.web.conftest import PHONE, OpenPage, Web, no_horizontal_scroll, shot

ROW = '[data-testid="supplier-order-row"]'


def as_page_account(who: Who) -> tuple[str, str, str | None]:
    return (who.sub, who.role.value, who.supplier_id)


async def paid(
    web: Web, customer: Who, lines: list[tuple[str, int]], remarks: dict[str, str] | None = None
) -> Any:
    """Place (with a remark per supplier) and pay; the paid order once split."""
    groups = [
        {"supplier_id": sid, "address": HOME, "remark": text}
        for sid, text in (remarks or {}).items()
    ]
    r = await web.api.submit(customer, lines, groups=groups)
    assert r.status_code == 201, r.text
    order_no = r.json()["order_no"]
    await web.api.ok("POST", f"/orders/{order_no}/pay", customer, expect=202)
    return await web.api.wait_order(
        customer,
        order_no,
        lambda o: (
            o["status"] == "PAID"
            and all(so["status"] == "PENDING_SHIPMENT" for so in o["supplier_orders"])
        ),
        "order paid and split",
    )


def supplier_order_of(order: Any, supplier: Who) -> Any:
    (so,) = [so for so in order["supplier_orders"] if so["supplier_id"] == supplier.supplier_id]
    return so


def item_ids(so: Any) -> list[str]:
    return [i["item_id"] for sub in so["sub_orders"] for i in sub["items"]]


async def supplier_view(web: Web, supplier: Who, so_id: str) -> Any:
    return await web.api.ok("GET", f"/supplier/orders/{so_id}", supplier)


def live_stream_built() -> bool:
    return any(getattr(r, "path", "") == "/ui/live" for r in live.router.routes)


async def live_or_refresh(page: Page) -> None:
    """The live stream swaps the regions by itself once it exists; until then, do what it does."""
    if not live_stream_built():
        await page.evaluate("window.Orders.refreshAll()")


async def ship_through_form(
    page: Page, qty: dict[str, int], tracking_no: str, carrier: str = "SF", method: str = "express"
) -> None:
    form = page.get_by_test_id("ship-form")
    for input_ in await form.get_by_test_id("ship-qty").all():
        item_id = await input_.get_attribute("data-item-id")
        await input_.fill(str(qty.get(item_id or "", 0)))
    await form.get_by_test_id("carrier").fill(carrier)
    await form.get_by_test_id("shipping-method").select_option(method)
    await form.get_by_test_id("tracking-no").fill(tracking_no)
    await form.get_by_test_id("ship-submit").click()


async def two_supplier_order(web: Web) -> tuple[Who, Who, Who, Any, list[str]]:
    """A customer's paid order with goods of two fresh suppliers (two lines of the first)."""
    mine, other = web.api.supplier(), web.api.supplier()
    tea = await web.api.product(mine, price="12.00", product_type="tea")
    cup = await web.api.product(mine, price="30.00", product_type="cups")
    theirs = await web.api.product(other, price="5.00")
    customer = await web.api.customer()
    order = await paid(
        web,
        customer,
        [(tea, 3), (cup, 1), (theirs, 2)],
        {mine.supplier_id or "": "Please wrap <b>as a gift</b>"},
    )
    return mine, other, customer, order, [tea, cup]


async def test_inbox_shows_exactly_own_paid_orders_and_new_ones_live(
    web: Web, open_page: OpenPage
) -> None:
    mine, other, customer, order, (tea, _) = await two_supplier_order(web)
    so = supplier_order_of(order, mine)
    unpaid = await web.api.place(customer, [(tea, 1)])

    page = await open_page(web, as_page_account(mine))
    await page.goto("/ui/supplier")
    rows = page.locator(ROW)
    await expect(rows).to_have_count(1)
    row = rows.first
    assert await row.get_attribute("data-supplier-order-id") == so["id"]
    assert await row.get_attribute("data-order-no") == order["order_no"]
    assert await row.get_attribute("data-status") == "PENDING_SHIPMENT"
    await expect(row.locator(".status")).to_have_text("Pending shipment")
    await expect(row.get_by_test_id("items-summary")).to_contain_text("\N{MULTIPLICATION SIGN} 3")
    # The remark is marked (and escaped: the customer's text is shown, never run as HTML).
    await expect(row.get_by_test_id("remark-marker")).to_contain_text("<b>as a gift</b>")
    html = await page.content()
    assert customer.sub not in html
    assert "coin" not in html.lower()
    assert unpaid["order_no"] not in html
    assert supplier_order_of(order, other)["id"] not in html
    # The other supplier sees its own part only.
    other_page = await open_page(web, as_page_account(other))
    await other_page.goto("/ui/supplier")
    await expect(other_page.locator(ROW)).to_have_count(1)
    assert (
        await other_page.locator(ROW).first.get_attribute("data-supplier-order-id")
        == (supplier_order_of(order, other)["id"])
    )

    # Filter tabs: nothing is waiting for receipt yet.
    await (
        page.get_by_test_id("status-tab")
        .and_(page.locator('[data-status="PENDING_RECEIPT"]'))
        .click()
    )
    await page.wait_for_url("**/ui/supplier?status=PENDING_RECEIPT")
    await expect(page.get_by_test_id("empty-inbox")).to_be_visible()
    await page.goto("/ui/supplier")

    # The customer asks to ship: the reminder shows on the row.
    await web.api.ok("POST", f"/supplier-orders/{so['id']}/remind", customer)
    await live_or_refresh(page)
    await expect(row.get_by_test_id("reminder-marker")).to_contain_text("Customer asked to ship")

    # A new paid order appears with a notice and is marked new; the older one is not.
    newer = await paid(web, customer, [(tea, 1)])
    await live_or_refresh(page)
    await expect(rows).to_have_count(2, timeout=10_000)
    first = rows.first
    assert await first.get_attribute("data-order-no") == newer["order_no"]
    await expect(first.get_by_test_id("new-marker")).to_be_visible()
    await expect(rows.nth(1).get_by_test_id("new-marker")).to_have_count(0)
    await expect(page.get_by_test_id("new-orders-notice")).to_be_visible()
    await no_horizontal_scroll(page)
    await shot(page, "supplier-inbox")


async def test_ships_in_two_packages_through_the_form(web: Web, open_page: OpenPage) -> None:
    mine, _, customer, order, _ = await two_supplier_order(web)
    so = supplier_order_of(order, mine)
    tea_item, cup_item = item_ids(so)

    page = await open_page(web, as_page_account(mine))
    await page.goto("/ui/supplier")
    await page.locator(ROW).first.get_by_test_id("open-order").click()
    await page.wait_for_url(f"**/ui/supplier/orders/{so['id']}")
    await expect(page.get_by_test_id("remark")).to_contain_text("Please wrap <b>as a gift</b>")
    await expect(page.get_by_test_id("receiver-name")).to_have_text(str(HOME["name"]))
    await expect(page.get_by_test_id("receiver-phone")).to_have_text(str(HOME["phone"]))
    await expect(page.get_by_test_id("receiver-address")).to_have_text(str(HOME["address"]))
    html = await page.content()
    assert customer.sub not in html
    assert "coin" not in html.lower()
    qty = page.get_by_test_id("ship-qty")
    await expect(qty).to_have_count(2)
    assert await qty.nth(0).get_attribute("max") == "3"
    assert await qty.nth(1).get_attribute("max") == "1"
    methods = await page.get_by_test_id("shipping-method").locator("option").all_inner_texts()
    assert len(methods) >= 2
    assert "virtual" not in [
        await o.get_attribute("value")
        for o in await page.get_by_test_id("shipping-method").locator("option").all()
    ]

    # First package: two of the tea.
    await ship_through_form(page, {tea_item: 2}, f"T1-{so['id']}")
    packages = page.get_by_test_id("package")
    await expect(packages).to_have_count(1)
    await expect(page.get_by_test_id("supplier-order-status")).to_have_attribute(
        "data-status", "PENDING_RECEIPT"
    )
    # Shipped: no receiver change, no cancel any more.
    await expect(page.get_by_test_id("receiver-form")).to_have_count(0)
    await expect(page.get_by_test_id("cancel-form")).to_have_count(0)
    await expect(qty).to_have_count(2)
    assert await qty.nth(0).get_attribute("max") == "1"

    # Refused: more than is left, then a tracking number already used. Nothing changes.
    before = await supplier_view(web, mine, so["id"])
    await ship_through_form(page, {tea_item: 5}, f"T9-{so['id']}")
    error = page.get_by_test_id("ship-form").get_by_test_id("error-message")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("only 1 left unshipped")
    await ship_through_form(page, {tea_item: 1}, f"T1-{so['id']}")
    await expect(error).to_contain_text("already used")
    # A live refresh of the order (say, a carrier scan) keeps the refusal and what was typed.
    region = page.get_by_test_id("supplier-order")
    await region.evaluate("el => (el.dataset.before = '1')")
    await page.evaluate("window.Orders.refreshAll()")
    await expect(region).not_to_have_attribute("data-before", "1")  # swapped for a fresh one
    await expect(error).to_contain_text("already used")
    await expect(page.get_by_test_id("tracking-no")).to_have_value(f"T1-{so['id']}")
    await expect(
        page.locator(f'[data-item-id="{tea_item}"][data-testid="ship-qty"]')
    ).to_have_value("1")
    await ship_through_form(page, {}, f"T8-{so['id']}")
    await expect(error).to_contain_text("Enter how many")
    assert await supplier_view(web, mine, so["id"]) == before
    await expect(packages).to_have_count(1)

    # Second package: the rest (one tea, one cup).
    await ship_through_form(page, {tea_item: 1, cup_item: 1}, f"T2-{so['id']}")
    await expect(packages).to_have_count(2)
    await expect(page.get_by_test_id("ship-form")).to_have_count(0)
    for item in await page.get_by_test_id("item").all():
        await expect(item.get_by_test_id("remaining")).to_have_text("0")
        await expect(item).to_have_attribute("data-status", "SHIPPED")
    view = await supplier_view(web, mine, so["id"])
    assert view["status"] == "PENDING_RECEIPT"
    shipped = {p["tracking_no"]: p["items"] for p in view["packages"]}
    assert shipped == {
        f"T1-{so['id']}": [{"item_id": tea_item, "qty": 2}],
        f"T2-{so['id']}": sorted(
            [{"item_id": tea_item, "qty": 1}, {"item_id": cup_item, "qty": 1}],
            key=lambda line: str(line["item_id"]),
        ),
    }
    assert {p["method"] for p in view["packages"]} == {"express"}
    # The customer's record says the same.
    record = supplier_order_of(await web.api.order(customer, order["order_no"]), mine)
    assert record["status"] == "PENDING_RECEIPT"
    assert len(record["packages"]) == 2

    # Fix the second tracking number.
    second = page.locator(f'[data-testid="package"][data-tracking-no="T2-{so["id"]}"]')
    await second.locator("summary").click()
    await second.get_by_test_id("new-tracking-no").fill(f"T2b-{so['id']}")
    await second.get_by_test_id("tracking-fix-submit").click()
    await expect(
        page.locator(f'[data-testid="package"][data-tracking-no="T2b-{so["id"]}"]')
    ).to_have_count(1)
    view = await supplier_view(web, mine, so["id"])
    assert sorted(p["tracking_no"] for p in view["packages"]) == sorted(
        [f"T1-{so['id']}", f"T2b-{so['id']}"]
    )
    await no_horizontal_scroll(page)
    await shot(page, "supplier-order")


async def test_another_suppliers_or_an_unpaid_order_is_a_404_page(
    web: Web, open_page: OpenPage
) -> None:
    mine, other, customer, order, (tea, _) = await two_supplier_order(web)
    so = supplier_order_of(order, mine)
    unpaid = await web.api.place(customer, [(tea, 1)])
    (unpaid_so,) = unpaid["supplier_orders"]

    intruder = await open_page(web, as_page_account(other))
    response = await intruder.goto(f"/ui/supplier/orders/{so['id']}")
    assert response is not None and response.status == 404
    await expect(intruder.get_by_test_id("error-page")).to_have_attribute("data-status", "404")
    html = await intruder.content()
    assert "as a gift" not in html
    assert str(HOME["phone"]) not in html
    fragment = await intruder.request.get(f"/ui/supplier/orders/{so['id']}?fragment=supplier_order")
    assert fragment.status == 404
    assert "as a gift" not in await fragment.text()

    owner = await open_page(web, as_page_account(mine))
    response = await owner.goto(f"/ui/supplier/orders/{unpaid_so['id']}")
    assert response is not None and response.status == 404
    await expect(owner.get_by_test_id("error-page")).to_be_visible()

    # A customer is not a supplier: 403, not the page.
    shopper = await open_page(web, as_page_account(customer))
    response = await shopper.goto("/ui/supplier")
    assert response is not None and response.status == 403


async def test_receiver_change_then_cancel_on_a_phone_in_chinese(
    web: Web, open_page: OpenPage
) -> None:
    mine, _, _, order, _ = await two_supplier_order(web)
    so = supplier_order_of(order, mine)
    page = await open_page(web, as_page_account(mine), viewport=PHONE, locale="zh-CN")
    await page.goto(f"/ui/supplier/orders/{so['id']}")
    await expect(page.locator("h1")).to_have_text(f"订单 {order['order_no']}")
    await expect(page.get_by_test_id("supplier-order-status")).to_have_text("待发货")
    await expect(page.get_by_test_id("ship-submit")).to_have_text("发出此包裹")
    await expect(page.locator('label[for="ship-tracking"]')).to_have_text("运单号")
    await no_horizontal_scroll(page)
    await shot(page, "supplier-order")

    # Every control has a label.
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.outerHTML)"""
    )
    assert unlabelled == []

    # Change the receiver (only name and phone: the map position stays with the address).
    await page.get_by_test_id("change-receiver").locator("summary").click()
    form = page.get_by_test_id("receiver-form")
    await form.locator('input[name="name"]').fill("Bob Li")
    await form.locator('input[name="phone"]').fill("13900000000")
    await form.get_by_test_id("receiver-submit").click()
    await expect(page.get_by_test_id("receiver-name")).to_have_text("Bob Li")
    view = await supplier_view(web, mine, so["id"])
    assert view["address"]["name"] == "Bob Li"
    assert view["address"]["phone"] == "13900000000"
    assert view["address"]["address"] == HOME["address"]
    assert view["address"]["lat"] == HOME["lat"]

    # A refused receiver change shows the API's message.
    await page.get_by_test_id("change-receiver").locator("summary").click()
    await form.locator('input[name="phone"]').fill("1")
    await form.evaluate("f => f.noValidate = true")
    await form.get_by_test_id("receiver-submit").click()
    await expect(form.get_by_test_id("error-message")).to_contain_text("phone")
    assert (await supplier_view(web, mine, so["id"]))["address"]["phone"] == "13900000000"

    # Cancel before shipping, after the confirmation.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_test_id("cancel-form").locator('input[name="reason"]').fill("out of stock")
    await page.get_by_test_id("cancel").click()
    await expect(page.get_by_test_id("supplier-order-status")).to_have_attribute(
        "data-status", "CLOSED"
    )
    await expect(page.get_by_test_id("close-reason")).to_have_text("你已取消")
    await expect(page.get_by_test_id("ship-form")).to_have_count(0)
    await expect(page.get_by_test_id("cancel-form")).to_have_count(0)
    view = await supplier_view(web, mine, so["id"])
    assert view["status"] == "CLOSED"
    assert view["close_reason"] == "SUPPLIER_CANCELLED"

    # The inbox in Chinese on a phone.
    await page.goto("/ui/supplier")
    await expect(page.locator("h1")).to_have_text("供应商订单")
    await expect(page.locator(ROW).first.locator(".status")).to_have_text("已关闭")
    await no_horizontal_scroll(page)
    await shot(page, "supplier-inbox")


async def test_cancel_needs_confirmation(web: Web, open_page: OpenPage) -> None:
    mine, _, _, order, _ = await two_supplier_order(web)
    so = supplier_order_of(order, mine)
    page = await open_page(web, as_page_account(mine))
    await page.goto(f"/ui/supplier/orders/{so['id']}")
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_test_id("cancel").click()
    await expect(page.get_by_test_id("cancel-form")).to_be_visible()
    assert (await supplier_view(web, mine, so["id"]))["status"] == "PENDING_SHIPMENT"


async def test_virtual_only_order_ships_with_method_virtual(web: Web, open_page: OpenPage) -> None:
    mine = web.api.supplier()
    code = await web.api.product(mine, price="20.00", kind="virtual", product_type="codes")
    customer = await web.api.customer()
    order = await paid(web, customer, [(code, 2)])
    so = supplier_order_of(order, mine)

    page = await open_page(web, as_page_account(mine))
    await page.goto(f"/ui/supplier/orders/{so['id']}")
    await expect(page.get_by_test_id("shipping-method")).to_have_value("virtual")
    await expect(page.get_by_test_id("receiver-form")).to_have_count(0)
    await expect(page.get_by_test_id("ship-qty")).to_have_value("2")
    form = page.get_by_test_id("ship-form")
    await form.get_by_test_id("tracking-no").fill(f"CODE-{so['id']}")
    await form.get_by_test_id("ship-submit").click()
    package = page.get_by_test_id("package")
    await expect(package).to_have_attribute("data-status", "delivered")
    await expect(package).to_have_attribute("data-method", "virtual")
    view = await supplier_view(web, mine, so["id"])
    assert view["status"] == "PENDING_RECEIPT"
    assert [p["method"] for p in view["packages"]] == ["virtual"]


async def test_after_sales_approve_and_receive_the_return(web: Web, open_page: OpenPage) -> None:
    mine = web.api.supplier()
    tea = await web.api.product(mine, price="12.00")
    cup = await web.api.product(mine, price="30.00", product_type="cups")
    customer = await web.api.customer()
    order = await paid(web, customer, [(tea, 2), (cup, 1)])
    so = supplier_order_of(order, mine)
    tea_item, cup_item = item_ids(so)
    await web.api.ok(
        "POST",
        f"/supplier/orders/{so['id']}/shipments",
        mine,
        {
            "carrier": "SF",
            "tracking_no": f"AS-{so['id']}",
            "method": "standard",
            "items": [{"item_id": tea_item, "qty": 2}, {"item_id": cup_item, "qty": 1}],
        },
        expect=201,
    )
    refund = await web.api.ok(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": tea_item, "qty": 1, "type": "refund_only", "reason": "leaves were broken"},
        expect=201,
    )
    ret = await web.api.ok(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": cup_item, "qty": 1, "type": "return_refund", "reason": "chipped"},
        expect=201,
    )

    page = await open_page(web, as_page_account(mine))
    await page.goto("/ui/supplier")
    await expect(page.locator(ROW).first.get_by_test_id("after-sales-marker")).to_be_visible()
    await page.goto(f"/ui/supplier/orders/{so['id']}")
    first = page.locator(f'[data-testid="after-sale"][data-after-sale-id="{refund["id"]}"]')
    second = page.locator(f'[data-testid="after-sale"][data-after-sale-id="{ret["id"]}"]')
    await expect(first).to_have_attribute("data-status", "REQUESTED")
    await expect(first.get_by_test_id("after-sale-reason")).to_contain_text("leaves were broken")
    await expect(first.get_by_test_id("receive-return")).to_have_count(0)

    # Refund only: approving refunds at once.
    await first.get_by_test_id("approve").click()

    async def refunded() -> bool:
        body = await web.api.ok("GET", f"/after-sales/{refund['id']}", mine)
        return bool(body["status"] == "REFUNDED")

    await eventually(refunded, what="refund-only request refunded")
    await live_or_refresh(page)
    await expect(first).to_have_attribute("data-status", "REFUNDED", timeout=10_000)
    await expect(first.get_by_test_id("approve")).to_have_count(0)

    # Return and refund: approve, the customer ships it back, the supplier receives it.
    await second.get_by_test_id("approve").click()
    await expect(second).to_have_attribute("data-status", "APPROVED")
    await expect(second.get_by_test_id("approve")).to_have_count(0)
    await expect(second.get_by_test_id("receive-return")).to_have_count(0)
    await web.api.ok(
        "POST",
        f"/after-sales/{ret['id']}/return-shipment",
        customer,
        {"carrier": "SF", "tracking_no": f"BACK-{so['id']}"},
    )
    await live_or_refresh(page)
    await expect(second).to_have_attribute("data-status", "RETURN_SHIPPED", timeout=10_000)
    await expect(second).to_contain_text(f"BACK-{so['id']}")
    page.once("dialog", lambda dialog: dialog.accept())
    await second.get_by_test_id("receive-return").click()
    await expect(second).to_have_attribute("data-status", "REFUNDED", timeout=10_000)
    body = await web.api.ok("GET", f"/after-sales/{ret['id']}", mine)
    assert body["status"] == "REFUNDED"

    # A request the supplier rejects, with its reason.
    again = await web.api.ok(
        "POST",
        f"/supplier-orders/{so['id']}/after-sales",
        customer,
        {"item_id": tea_item, "qty": 1, "type": "refund_only", "reason": "changed my mind"},
        expect=201,
    )
    await live_or_refresh(page)
    third = page.locator(f'[data-testid="after-sale"][data-after-sale-id="{again["id"]}"]')
    await expect(third).to_have_attribute("data-status", "REQUESTED", timeout=10_000)
    await third.get_by_test_id("reject-form").locator('input[name="reason"]').fill("opened")
    await third.get_by_test_id("reject").click()
    await expect(third).to_have_attribute("data-status", "REJECTED")
    await expect(third.get_by_test_id("approve")).to_have_count(0)
    body = await web.api.ok("GET", f"/after-sales/{again['id']}", mine)
    assert body["status"] == "REJECTED"


def test_the_supplier_word_tables_have_chinese() -> None:
    zh = i18n.catalog("zh_CN")
    for table in (
        supplier_page.METHOD_WORDS,
        supplier_page.PACKAGE_STATUS_WORDS,
        supplier_page.CLOSE_REASON_WORDS,
    ):
        assert not [w for w in table.values() if w not in zh]


# --- which commands the order page offers (the domain's rules on the read model's facts) ---


def _view(
    status: str,
    items: list[tuple[str, str, int, int]],
    packages: tuple[str, ...] = (),
    needs_address: bool = True,
) -> SupplierViewOut:
    """A supplier view with items (item_id, kind, qty, shipped_qty) and packages."""
    now = datetime.now(UTC)
    return SupplierViewOut(
        id="o1-s1",
        order_no="o1",
        supplier_id="s1",
        status=SupplierOrderStatus(status),
        close_reason=None,
        needs_address=needs_address,
        address=Address.model_validate(HOME) if needs_address else None,
        remark="",
        subtotal="10.00",
        postage="0.00",
        total="10.00",
        created_at=now,
        paid_at=now,
        received_at=None,
        completed_at=None,
        sub_orders=[
            SubOrderOut(
                id="o1-s1-1",
                product_type="t",
                status=ItemStatus.PENDING_SHIPMENT,
                items=[
                    ItemOut(
                        item_id=item_id,
                        sku=f"sku-{item_id}",
                        name=item_id,
                        product_type="t",
                        kind=ProductKind(kind),
                        price="1.00",
                        qty=qty,
                        shipped_qty=shipped,
                        refunded_qty=0,
                        status=item_status(qty, shipped),
                    )
                    for item_id, kind, qty, shipped in items
                ],
            )
        ],
        packages=[
            PackageOut(
                tracking_no=tn,
                carrier="SF",
                method="standard",
                status="shipped",
                shipped_at=now,
                items=[PackageItemOut(item_id=items[0][0], qty=1)],
                location=None,
                distance_km=None,
                eta=None,
            )
            for tn in packages
        ],
        after_sales=[],
        deadlines=DeadlinesOut(),
    )


SPEEDS = ["express", "standard", "economy"]


def test_offers_before_the_first_shipment() -> None:
    offer = supplier_page.commands_offered(
        _view("PENDING_SHIPMENT", [("a", "physical", 3, 0)]), SPEEDS
    )
    assert offer.ship and offer.receiver and offer.cancel
    assert [(line.item.item_id, line.remaining, line.default) for line in offer.lines] == [
        ("a", 3, 3)
    ]
    assert offer.methods == SPEEDS
    assert offer.method == "standard"
    assert offer.fix_tracking == set()


def test_offers_while_partly_shipped() -> None:
    view = _view("PENDING_RECEIPT", [("a", "physical", 3, 1), ("b", "physical", 1, 1)], ("T1",))
    offer = supplier_page.commands_offered(view, SPEEDS)
    assert offer.ship
    assert [(line.item.item_id, line.remaining) for line in offer.lines] == [("a", 2)]
    assert offer.fix_tracking == {"T1"}
    assert not offer.receiver
    assert not offer.cancel


def test_offers_nothing_after_receipt() -> None:
    view = _view("PENDING_REVIEW", [("a", "physical", 1, 1)], ("T1",))
    offer = supplier_page.commands_offered(view, SPEEDS)
    assert not (offer.ship or offer.receiver or offer.cancel or offer.fix_tracking)


def test_virtual_goods_ship_with_method_virtual() -> None:
    only = supplier_page.commands_offered(
        _view("PENDING_SHIPMENT", [("v", "virtual", 2, 0)], needs_address=False), SPEEDS
    )
    assert only.method == "virtual"
    assert "virtual" in only.methods
    assert not only.receiver  # no address to change
    mixed = supplier_page.commands_offered(
        _view("PENDING_SHIPMENT", [("a", "physical", 1, 0), ("v", "virtual", 1, 0)]), SPEEDS
    )
    assert mixed.methods == [*SPEEDS, "virtual"]
    assert mixed.method == "standard"
    # A package is one kind: nothing is pre-filled when both kinds wait to ship.
    assert [line.default for line in mixed.lines] == [0, 0]


async def test_a_click_pressed_while_a_live_refresh_lands_is_not_lost(
    web: Web, open_page: OpenPage
) -> None:
    """A live refresh that arrives between a button's press and its release waits for the
    release: swapping the region under the pointer made the click (and the shipment) vanish."""
    mine, _, _, order, _ = await two_supplier_order(web)
    so = supplier_order_of(order, mine)
    tea_item, _ = item_ids(so)
    page = await open_page(web, as_page_account(mine))
    await page.goto(f"/ui/supplier/orders/{so['id']}")
    form = page.get_by_test_id("ship-form")
    for input_ in await form.get_by_test_id("ship-qty").all():
        item_id = await input_.get_attribute("data-item-id")
        await input_.fill("1" if item_id == tea_item else "0")
    await form.get_by_test_id("carrier").fill("SF")
    await form.get_by_test_id("tracking-no").fill(f"TP-{so['id']}")
    button = form.get_by_test_id("ship-submit")
    await button.scroll_into_view_if_needed()
    spot = await button.bounding_box()
    assert spot is not None
    await page.mouse.move(spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2)
    await page.mouse.down()
    # A refresh of the region comes back while the button is held down...
    async with page.expect_response(lambda r: "fragment=" in r.url) as fetched:
        await page.evaluate("() => { window.__refreshed = window.Orders.refreshAll(); }")
    assert (await fetched.value).ok
    await page.mouse.up()
    # ...and the click still ships the package.
    await expect(
        page.locator(f'[data-testid="package"][data-tracking-no="TP-{so["id"]}"]')
    ).to_have_count(1)
    await page.evaluate("() => window.__refreshed")
