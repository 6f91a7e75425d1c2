"""Friend pays (代付) in the browser: the buyer shares a link, a friend pays it on a page
that shows the amount and the items only; the buyer's open order page turns paid by itself
and names the payer; the order's money record lists the payment."""

from playwright.async_api import expect

from tests.api.helpers import HOME
from tests.web.conftest import PHONE, OpenPage, Web, no_horizontal_scroll, shot


async def test_a_friend_pays_through_the_shared_link(web: Web, open_page: OpenPage) -> None:
    buyer, friend = await web.api.customer(), await web.api.customer()
    placed = await web.api.ok(
        "POST",
        "/orders",
        buyer,
        {"lines": [{"sku": "tea-2", "qty": 1}], "order_type": "friend_pay"},
        expect=201,
    )
    order_no = placed["order_no"]

    # The buyer's page: the order type and the link to send.
    mine = await open_page(web, (buyer.sub, "customer", None))
    await mine.goto(f"/ui/orders/{order_no}")
    await expect(mine.get_by_test_id("order-type")).to_have_attribute(
        "data-order-type", "friend_pay"
    )
    link = await mine.get_by_test_id("pay-link").input_value()
    assert link.startswith(web.url) and "/ui/pay/" in link

    # The buyer cannot pay through the friend's page: the API's message, nothing paid.
    own = await open_page(web, (buyer.sub, "customer", None))
    await own.goto(link)
    await own.get_by_test_id("pay-button").click()
    await expect(own.get_by_test_id("error-message")).to_contain_text("you placed this order")

    # The friend sees what it costs and what is in it — not who asked, nor where it goes.
    theirs = await open_page(web, (friend.sub, "customer", None), viewport=PHONE, locale="zh-CN")
    await theirs.goto(link)
    await expect(theirs.get_by_test_id("pay-request-amount")).to_have_text(f"¥{placed['payable']}")
    await expect(theirs.get_by_test_id("pay-request-item")).to_have_count(1)
    html = await theirs.content()
    for secret in (buyer.sub, order_no, str(HOME["address"]), str(HOME["phone"])):
        assert secret not in html
    await no_horizontal_scroll(theirs)
    await shot(theirs, "pay-request")
    await theirs.get_by_test_id("pay-button").click()
    await theirs.wait_for_url("**/ui/pay/done")

    # The buyer's open page turns paid by itself and names the payer; the money is listed.
    await expect(mine.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "PAID", timeout=10_000
    )
    await expect(mine.get_by_test_id("order-payer")).to_have_text(friend.sub)
    await expect(mine.get_by_test_id("pay-link")).to_have_count(0)
    await mine.get_by_test_id("money-record").locator("summary").click()
    payment = mine.get_by_test_id("payment")
    await expect(payment).to_have_count(1)
    await expect(payment).to_have_attribute("data-outcome", "applied")

    # The link is used up: a 404 page, no data.
    later = await open_page(web, (friend.sub, "customer", None))
    response = await later.goto(link)
    assert response is not None and response.status == 404
    await expect(later.get_by_test_id("pay-request-amount")).to_have_count(0)
