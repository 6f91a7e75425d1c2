"""Live updates for the pages (DESIGN.md §9): one watcher of `order_log` per app, fanned out.

Every change to an order appends a row to `order_log` (an invariant the tests enforce), so
the log is the change feed. One `LiveHub` per app (per API process) follows it:

- One query per tick, whatever the number of open pages: the log rows after the last id
  seen, oldest first, in batches, joined to `orders` (whose customer) and `supplier_orders`
  (whose supplier, and whether that supplier may see it yet). Rows are then fanned out in
  memory to the subscribers of their topics (`order:<no>`, `customer:<id>`,
  `supplier:<id>`, `admin`).
- On PostgreSQL a trigger on `order_log` does `pg_notify('order_log', id)` (migration
  0003); the hub LISTENs on one connection and runs the same query as soon as a
  notification arrives, polling only every `fallback_interval` in case a notification is
  lost (or while the LISTEN connection is down, every `poll_interval`). On SQLite it polls
  every `poll_interval` (0.5 s).
- PostgreSQL may commit a lower id after a higher one (two concurrent transactions). Ids
  skipped by the cursor are remembered for `gap_timeout` and asked for again, so a late
  commit is still delivered (SQLite has one writer at a time: ids commit in order).
- Each subscriber has a bounded queue; a client that falls behind gets a single `refresh`
  event (its page reloads every live region anyway) instead of a growing backlog.
- A reconnecting page sends the last id it saw (`Last-Event-ID`); the rows after it that it
  may see are read again from the table (at most `replay_limit`) and sent before the live
  ones, each exactly once. A first connection gets nothing old.
- With no subscribers for `idle_after` seconds the hub stops querying; the next subscriber
  starts it again from the newest id.

Who sees what (checked when subscribing, and again for every row): a customer their own
orders; a supplier only its own supplier orders, and only once paid (never a row about an
unpaid order, a row from before the payment, nor another supplier's part of the order); an
admin everything.

uvicorn waits for open responses to end before it runs the app's shutdown, and an event
stream never ends by itself; so the hub finds the uvicorn server serving its app and, when
that server is told to exit, ends every stream at once (`shutdown.uvicorn_server_of`).

The modules, one concern each:
    topics        `?topics=` and the `Grant` of those a viewer may follow (`grant_topics`)
    events        a row (`Change`) and what each viewer is told about it (`Event`, `event_for`)
    feed          the queries: log rows joined to their customer and suppliers; replay filter
    subscription  one stream's bounded queue (`Subscription`)
    hub           the watcher and the fan-out (`LiveHub`): ticks, gaps, LISTEN, idling
    shutdown      the uvicorn server serving the app, whose exit ends the streams
    serving       the app's hub (`hub_for`, `stop_hub`), the stream body, `note_position`
"""

from starter.web.live.events import (
    PACKAGE_NOTICES,
    SUPPLIER_NOTICES,
    Change,
    Event,
    Target,
    event_for,
)
from starter.web.live.feed import FANOUT_TO_SUPPLIERS
from starter.web.live.hub import CHANNEL, MAX_GAP_SPAN, SHUTDOWN_CHECK, HubClosed, LiveHub
from starter.web.live.serving import RETRY_MS, hub_for, note_position, stop_hub, stream
from starter.web.live.subscription import CLOSED, Subscription
from starter.web.live.topics import (
    MAX_TOPIC_VALUE,
    MAX_TOPICS,
    TOPIC_KINDS,
    Grant,
    grant_topics,
    parse_topics,
)

__all__ = [
    "CHANNEL",
    "CLOSED",
    "FANOUT_TO_SUPPLIERS",
    "MAX_GAP_SPAN",
    "MAX_TOPICS",
    "MAX_TOPIC_VALUE",
    "PACKAGE_NOTICES",
    "RETRY_MS",
    "SHUTDOWN_CHECK",
    "SUPPLIER_NOTICES",
    "TOPIC_KINDS",
    "Change",
    "Event",
    "Grant",
    "HubClosed",
    "LiveHub",
    "Subscription",
    "Target",
    "event_for",
    "grant_topics",
    "hub_for",
    "note_position",
    "parse_topics",
    "stop_hub",
    "stream",
]
