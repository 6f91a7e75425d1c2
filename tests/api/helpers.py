"""Drives the real HTTP API the way clients do: tokens, signed webhooks, seeding, polling."""

import asyncio
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from settings import Settings
from starter.security import Role, mint_token, sign_body

T = TypeVar("T")
_seq = itertools.count(1)

HOME = {
    "name": "Alice",
    "phone": "13800000000",
    "region": "Shanghai",
    "address": "1 Century Ave",
    "lat": 31.2304,
    "lon": 121.4737,
}


def uid(prefix: str) -> str:
    return f"{prefix}{next(_seq)}x{uuid.uuid4().hex[:6]}"


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 20.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy, with a deadline (no blind sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Who:
    sub: str
    role: Role
    supplier_id: str | None = None


class Api:
    """An httpx client on one API server plus what a test needs to talk to it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.http = http
        self.settings = settings
        self.sessions = sessions
        self.admin = Who("root", Role.ADMIN)

    # --- auth -----------------------------------------------------------------------------

    def headers(self, who: Who | None, key: str | None = None) -> dict[str, str]:
        h: dict[str, str] = {}
        if who is not None:
            token = mint_token(self.settings.jwt_secret, who.sub, who.role, who.supplier_id)
            h["Authorization"] = f"Bearer {token}"
        if key is not None:
            h["Idempotency-Key"] = key
        return h

    async def call(
        self,
        method: str,
        path: str,
        who: Who | None = None,
        json_body: Any = None,
        key: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        return await self.http.request(
            method,
            path,
            headers=self.headers(who, key),
            json=json_body,
            params=params,
        )

    async def ok(
        self,
        method: str,
        path: str,
        who: Who | None = None,
        json_body: Any = None,
        key: str | None = None,
        expect: int = 200,
    ) -> Any:
        r = await self.call(method, path, who, json_body, key)
        assert r.status_code == expect, f"{method} {path} → {r.status_code}: {r.text}"
        return r.json()

    async def signed(
        self, path: str, body: Any, secret: str | None = None, raw: bytes | None = None
    ) -> httpx.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        sig = sign_body(secret or self.settings.webhook_secret, data)
        return await self.http.post(
            path, content=data, headers={"X-Signature": sig, "Content-Type": "application/json"}
        )

    # --- seeding through the admin API ----------------------------------------------------------

    async def customer(self, coins: str = "100.00", address: bool = True) -> Who:
        who = Who(uid("cust-"), Role.CUSTOMER)
        body: dict[str, Any] = {"coins": coins}
        if address:
            body["default_address"] = HOME
        await self.ok("PUT", f"/admin/customers/{who.sub}", self.admin, body, expect=201)
        return who

    def supplier(self) -> Who:
        sid = uid("sup-")
        return Who(f"user-{sid}", Role.SUPPLIER, sid)

    async def product(
        self,
        supplier: Who,
        price: str = "10.00",
        on_hand: int = 50,
        kind: str = "physical",
        product_type: str = "tea",
        active: bool = True,
    ) -> str:
        sku = uid("sku-")
        await self.ok(
            "PUT",
            f"/admin/products/{sku}",
            self.admin,
            {
                "name": f"Product {sku}",
                "supplier_id": supplier.supplier_id,
                "product_type": product_type,
                "kind": kind,
                "price": price,
                "on_hand": on_hand,
                "active": active,
            },
            expect=201,
        )
        return sku

    # --- order flow ----------------------------------------------------------------------------------

    async def submit(
        self,
        who: Who,
        lines: list[tuple[str, int]],
        coins: str = "0.00",
        groups: list[dict[str, Any]] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        return await self.call(
            "POST",
            "/orders",
            who,
            {
                "lines": [{"sku": s, "qty": q} for s, q in lines],
                "coins": coins,
                "groups": groups or [],
            },
            key,
        )

    async def place(self, who: Who, lines: list[tuple[str, int]], coins: str = "0.00") -> Any:
        r = await self.submit(who, lines, coins)
        assert r.status_code == 201, r.text
        return r.json()

    async def order(self, who: Who, order_no: str, live: bool = False) -> Any:
        return await self.ok("GET", f"/orders/{order_no}?live={str(live).lower()}", who)

    async def wait_order(
        self,
        who: Who,
        order_no: str,
        pred: Callable[[Any], bool],
        what: str,
        timeout: float = 20.0,
    ) -> Any:
        async def probe() -> Any:
            body = await self.order(who, order_no)
            return body if pred(body) else None

        return await eventually(probe, timeout, what)

    async def paid_order(self, who: Who, lines: list[tuple[str, int]], coins: str = "0.00") -> Any:
        placed = await self.place(who, lines, coins)
        await self.ok("POST", f"/orders/{placed['order_no']}/pay", who, expect=202)
        return await self.wait_order(
            who,
            placed["order_no"],
            lambda o: (
                o["status"] == "PAID"
                and all(so["status"] == "PENDING_SHIPMENT" for so in o["supplier_orders"])
            ),
            "order paid and split",
        )

    # --- direct read-model checks ----------------------------------------------------------------------

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def scalar(self, stmt: Any) -> Any:
        async with self.sessions() as s:
            return await s.scalar(stmt)


async def footprint(api: Api, customer: Who, skus: list[str]) -> dict[str, Any]:
    """Everything a customer's requests can have written, to prove a refusal changed nothing."""
    from db.tables import (
        AfterSale,
        CoinLedger,
        Customer,
        IdempotencyKey,
        Notification,
        Order,
        OrderLog,
        Package,
        Payment,
        Product,
        Refund,
        SupplierOrder,
    )

    async with api.sessions() as s:
        nos = select(Order.order_no).where(Order.customer_id == customer.sub)
        sos = select(SupplierOrder.id).where(SupplierOrder.customer_id == customer.sub)

        async def n(model: Any, *where: Any) -> int:
            return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        stock = {
            p.sku: (p.on_hand, p.reserved)
            for p in (await s.scalars(select(Product).where(Product.sku.in_(skus)))).all()
        }
        statuses = sorted(
            (r.id, r.status)
            for r in (
                await s.scalars(
                    select(SupplierOrder).where(SupplierOrder.customer_id == customer.sub)
                )
            ).all()
        )
        return {
            "orders": await n(Order, Order.customer_id == customer.sub),
            "supplier_orders": statuses,
            "payments": await n(Payment, Payment.order_no.in_(nos)),
            "packages": await n(Package, Package.supplier_order_id.in_(sos)),
            "log": await n(OrderLog, OrderLog.order_no.in_(nos)),
            "notifications": await n(Notification, Notification.order_no.in_(nos)),
            "refunds": await n(Refund, Refund.order_no.in_(nos)),
            "after_sales": await n(AfterSale, AfterSale.customer_id == customer.sub),
            "ledger": await n(CoinLedger, CoinLedger.customer_id == customer.sub),
            "coins": await s.scalar(select(Customer.coins).where(Customer.id == customer.sub)),
            "keys": await n(IdempotencyKey, IdempotencyKey.key.like(f"api:{customer.sub}:%")),
            "stock": stock,
        }
