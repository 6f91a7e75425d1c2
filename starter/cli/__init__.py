"""`orders`: the command line of the order service.

`orders dev` brings up the local stack (starter/dev.py). Every other command is an HTTP
client of the API (DESIGN.md §6), like a user's own code: it mints a short-lived token
for the role the call needs with ORDERS_JWT_SECRET (webhooks are signed with
ORDERS_WEBHOOK_SECRET) and talks to `--api` (env ORDERS_API_URL, default
http://127.0.0.1:ORDERS_API_PORT).

    orders token --role customer --sub alice
    orders submit --customer alice --line tea-1:2 --line cup-3:1 --coins 5
    orders pay <order_no>
    orders ship <supplier_order_id> --carrier sf --tracking SF1001 --item tea-1:1
    orders track sf SF1001 --lat 31.0 --lon 121.2
    orders show <order_no>
    orders list --customer alice

The package: `commands` (the Typer app and its commands), `client` (HTTP calls and
tokens), `inputs` (parsing what the user typed), `render` (what is printed), `errors`
(how a command fails).
"""

from starter.cli.commands import app
from starter.cli.render import render_list, render_order

__all__ = ["app", "render_list", "render_order"]
