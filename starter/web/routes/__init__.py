"""The pages' routes, one module per terminal."""

from fastapi import APIRouter

from starter.web.routes import admin, auth, live, orders, pay, shop, supplier

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    shop.router,
    orders.router,
    pay.router,
    supplier.router,
    admin.router,
    live.router,
)
