"""The pages' routes, one module per terminal."""

from fastapi import APIRouter

from starter.web.routes import admin, auth, live, orders, shop, supplier

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    shop.router,
    orders.router,
    supplier.router,
    admin.router,
    live.router,
)
