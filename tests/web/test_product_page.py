"""/ui/products/{sku}: a product and its reviews centre, as served (no browser needed).

The reviews are written straight into the read model (the API tests drive real customer and
automatic reviews through the workflows); this checks what the page shows of them: newest
first, ten a page with a link to older ones, the automatic one marked and its default text
in the reader's language, the reviewer masked, never the account.
"""

import re
from datetime import UTC, datetime, timedelta

from db.session import write_session
from domain.policy import Policy
from tests.api.helpers import uid
from tests.support.reviews import Reviewed, add_reviewed_order
from tests.web.conftest import Web


async def _reviews(web: Web, sku: str, customer_id: str, n: int) -> None:
    """n reviews of `sku` by `customer_id`, a minute apart; the oldest automatic."""
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    no = uid("RV")
    reviews = [
        Reviewed(
            item_id=f"{no}-i{i}",
            sku=sku,
            at=t0 + timedelta(minutes=i),
            rating=5 if i == 0 else 1 + i % 5,
            text=Policy().default_review_text if i == 0 else f"review number {i}",
            auto=i == 0,
        )
        for i in range(n)
    ]
    async with write_session(web.sessions) as s:
        await add_reviewed_order(
            s, order_no=no, customer_id=customer_id, supplier_id="s", at=t0, reviews=reviews
        )


def _texts(html: str) -> list[str]:
    return re.findall(r'data-testid="review-text">([^<]*)<', html)


async def test_product_page_lists_reviews_newest_first_with_pages(web: Web) -> None:
    api = web.api
    sku = await api.product(api.supplier())
    customer = await api.customer()
    await api.ok("PUT", f"/admin/customers/{customer.sub}", api.admin, {"name": "Wang Wu"})

    empty = await api.http.get(f"/ui/products/{sku}")
    assert empty.status_code == 200 and 'data-testid="no-reviews"' in empty.text

    await _reviews(web, sku, customer.sub, 12)
    first = await api.http.get(f"/ui/products/{sku}")
    assert first.status_code == 200
    assert f'data-testid="product-page" data-sku="{sku}"' in first.text
    assert _texts(first.text) == [f"review number {i}" for i in range(11, 1, -1)]
    assert customer.sub not in first.text and "W***u" in first.text
    older = re.search(r'href="([^"]+)" data-testid="next-reviews"', first.text)
    assert older is not None

    second = await api.http.get(older.group(1).replace("&amp;", "&"))
    assert _texts(second.text) == ["review number 1", Policy().default_review_text]
    assert second.text.count('data-auto="true"') == 1
    assert (
        'data-testid="review-auto"' in second.text
        and 'data-testid="next-reviews"' not in second.text
    )
    assert 'data-testid="first-reviews"' in second.text

    # In Chinese the default review reads as Taobao's 系统默认好评.
    zh = await api.http.get(
        older.group(1).replace("&amp;", "&"), headers={"Accept-Language": "zh-CN"}
    )
    assert "系统默认好评" in zh.text and "系统默认评价" in zh.text and "评价" in zh.text


async def test_unknown_product_and_bad_cursor_are_pages(web: Web) -> None:
    missing = await web.api.http.get("/ui/products/no-such-sku")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    sku = await web.api.product(web.api.supplier())
    bad = await web.api.http.get(f"/ui/products/{sku}?cursor=nope")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]


async def test_the_shop_card_links_to_the_product_page(web: Web) -> None:
    sku = await web.api.product(web.api.supplier())
    shop = await web.api.http.get("/ui/shop", params={"q": sku})
    assert f'href="/ui/products/{sku}" data-testid="product-link"' in shop.text
