"""Races the API's pre-check cannot see: the workflow's placement has the last word."""

import asyncio

from sqlalchemy import select

from db.tables import Order, Product
from tests.api.helpers import Api


async def test_two_customers_race_for_the_last_unit(api: Api) -> None:
    supplier = api.supplier()
    sku = await api.product(supplier, on_hand=1)
    first, second = await api.customer(), await api.customer()
    responses = await asyncio.gather(api.submit(first, [(sku, 1)]), api.submit(second, [(sku, 1)]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"]["code"] == "insufficient_stock", loser.text
    assert await api.scalar(select(Product.reserved).where(Product.sku == sku)) == 1
    orders = await api.count(Order, Order.customer_id.in_([first.sub, second.sub]))
    assert orders == 1
