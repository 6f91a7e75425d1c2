"""Full lifecycles through the HTTP API, as the customers, suppliers, payment provider and
carrier make them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.lifecycle.driver import StepTimes
from bench.lifecycle.shop import HOME, Shop
from bench.lifecycle.watch import ReadModelWatch
from bench.scaleout.apis import Apis, expect
from bench.scaleout.config import JWT_SECRET
from domain.states import OrderStatus
from starter.security import Role, mint_token


@dataclass
class Lifecycles(StepTimes):
    """Full lifecycles through the HTTP API, timed per step."""

    apis: Apis
    shop: Shop
    watch: ReadModelWatch
    prefix: str
    dup_pay_every: int = 0
    order_nos: list[str] = field(default_factory=list)
    dup_paid: list[str] = field(default_factory=list)
    submitted: int = 0  # submits answered 201
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_paid(self, order_no: str, supplier_order_id: str, token: str) -> None:
        """Until the supplier order is paid: from the read model (a subclass may ask the API)."""
        await self.watch.paid(supplier_order_id)

    async def wait_settled(self, order_no: str, token: str) -> str:
        """Until the order is FINISHED or CLOSED; returns which (read model here)."""
        return await self.watch.settled(order_no)

    async def one(self, i: int) -> None:
        req = self.shop.request(i)
        customer = mint_token(JWT_SECRET, req.customer_id, Role.CUSTOMER)
        key = f"{self.prefix}-{i}"
        body = {
            "lines": [{"sku": li.sku, "qty": li.qty} for li in req.lines],
            "coins": str(req.coins),
        }
        async with self.step("submit"):
            r = await self.apis.call("POST", "/orders", token=customer, body=body, key=f"{key}-o")
        placed = expect(r, 201, "submit")
        order_no = placed["order_no"]
        self.order_nos.append(order_no)
        self.submitted += 1
        self.progress.set()
        async with self.step("pay"):
            r = await self.apis.call(
                "POST", f"/orders/{order_no}/pay", token=customer, body={}, key=f"{key}-p"
            )
        expect(r, 202, f"pay {order_no}")
        sides = [
            self.supplier_side(so, customer, key, order_no) for so in placed["supplier_orders"]
        ]
        if self.dup_pay_every and i % self.dup_pay_every == 0:
            sides.append(self.second_payment(placed, customer))
        await asyncio.gather(*sides)
        async with self.step("finished visible"):
            status = await self.wait_settled(order_no, customer)
        if status != OrderStatus.FINISHED.value:
            raise RuntimeError(f"order {order_no} ended {status}")

    async def second_payment(self, placed: dict[str, Any], customer: str) -> None:
        """The provider reports a second payment once the order is paid: it goes back, once."""
        order_no = placed["order_no"]
        await self.wait_paid(order_no, placed["supplier_orders"][0]["id"], customer)
        event = {
            "event_id": f"second-{order_no}",
            "order_no": order_no,
            "status": "succeeded",
            "amount": placed["payable"],
            "method": "card",
            "at": datetime.now(UTC).isoformat(),
        }
        r = await self.apis.call("POST", "/webhooks/payment", body=event, signed=True)
        expect(r, 202, f"second payment {order_no}")
        self.dup_paid.append(order_no)

    async def supplier_side(
        self, so: dict[str, Any], customer: str, key: str, order_no: str
    ) -> None:
        so_id = so["id"]
        supplier = mint_token(
            JWT_SECRET, f"user-{so['supplier_id']}", Role.SUPPLIER, so["supplier_id"]
        )
        async with self.step("paid visible"):
            await self.wait_paid(order_no, so_id, customer)
        tracking = f"T{so_id}"
        ship = {
            "carrier": "sf",
            "tracking_no": tracking,
            "method": "standard",
            "items": [{"item_id": i["item_id"], "qty": i["qty"]} for i in so["items"]],
        }
        async with self.step("ship"):
            r = await self.apis.call(
                "POST",
                f"/supplier/orders/{so_id}/shipments",
                token=supplier,
                body=ship,
                key=f"{key}-s-{so_id}",
            )
        expect(r, 201, f"ship {so_id}")
        scan = {
            "event_id": f"scan-{so_id}",
            "carrier": "sf",
            "tracking_no": tracking,
            "lat": HOME.lat,
            "lon": HOME.lon,
            "status": "delivered",
            "at": datetime.now(UTC).isoformat(),
        }
        async with self.step("scan"):
            r = await self.apis.call("POST", "/webhooks/carrier", body=scan, signed=True)
        expect(r, 202, f"scan {so_id}")
        async with self.step("confirm"):
            r = await self.apis.call(
                "POST",
                f"/supplier-orders/{so_id}/confirm-receipt",
                token=customer,
                body={},
                key=f"{key}-c-{so_id}",
            )
        expect(r, 200, f"confirm {so_id}")
        async with self.step("review"):
            r = await self.apis.call(
                "POST",
                f"/supplier-orders/{so_id}/reviews",
                token=customer,
                body={"rating": 5, "text": "Arrived well packed."},
                key=f"{key}-r-{so_id}",
            )
        expect(r, 200, f"review {so_id}")
