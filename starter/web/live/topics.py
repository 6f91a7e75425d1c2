"""Who may follow what: the topics of `?topics=`, and the `Grant` of those a viewer may follow.

A page names the topics it shows (`order:<no>`, `customer:<id>`, `supplier:<id>`, `admin`);
`parse_topics` keeps the well-formed ones and `grant_topics` the ones the viewer may see, by
the same ownership rules as the pages (one query at most). The `Grant` goes with the viewer's
stream for its life: every row is checked against it again (`events.event_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.tables import Order, SupplierOrder
from domain.states import SupplierOrderStatus
from starter.security import Principal, Role
from starter.web import i18n

TOPIC_KINDS = ("order", "customer", "supplier")
MAX_TOPICS = 32
MAX_TOPIC_VALUE = 100


@dataclass(frozen=True)
class Grant:
    """The topics one viewer was allowed to follow (and the language of their notices)."""

    principal: Principal
    topics: frozenset[str]
    locale: str = i18n.DEFAULT_LOCALE

    @property
    def gettext(self) -> Callable[[str], str]:
        return i18n.gettext_for(self.locale)

    def split(self) -> tuple[bool, set[str], set[str], set[str]]:
        """(admin, order numbers, customer ids, supplier ids) of the topics."""
        orders: set[str] = set()
        customers: set[str] = set()
        suppliers: set[str] = set()
        for topic in self.topics:
            kind, _, value = topic.partition(":")
            {"order": orders, "customer": customers, "supplier": suppliers}.get(kind, set()).add(
                value
            )
        return "admin" in self.topics, orders, customers, suppliers


def parse_topics(raw: str) -> list[str]:
    """Well-formed topics of `?topics=` (space separated), deduplicated, at most MAX_TOPICS."""
    out: list[str] = []
    for topic in raw.split():
        kind, sep, value = topic.partition(":")
        ok = topic == "admin" or (sep and kind in TOPIC_KINDS and 0 < len(value) <= MAX_TOPIC_VALUE)
        if ok and topic not in out:
            out.append(topic)
    return out[:MAX_TOPICS]


async def grant_topics(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    requested: Iterable[str],
    locale: str = i18n.DEFAULT_LOCALE,
) -> Grant:
    """Keep only the topics `principal` may follow (one query at most).

    customer → own `customer:<sub>`, `order:<no>` of own orders; supplier → own
    `supplier:<id>`, `order:<no>` only when it holds a paid supplier order of theirs;
    admin → anything, `admin` included.
    """
    topics = list(requested)
    if principal.role is Role.ADMIN:
        return Grant(principal, frozenset(topics), locale)
    granted: set[str] = set()
    wanted_orders: set[str] = set()
    own = {"customer": principal.sub} if principal.role is Role.CUSTOMER else {}
    if principal.role is Role.SUPPLIER and principal.supplier_id:
        own = {"supplier": principal.supplier_id}
    for topic in topics:
        kind, _, value = topic.partition(":")
        if kind == "order":
            wanted_orders.add(value)
        elif own.get(kind) == value:
            granted.add(topic)
    if wanted_orders:
        query: Select[str]
        if principal.role is Role.CUSTOMER:
            query = select(Order.order_no).where(
                Order.order_no.in_(wanted_orders), Order.customer_id == principal.sub
            )
        else:
            query = select(SupplierOrder.order_no).where(
                SupplierOrder.order_no.in_(wanted_orders),
                SupplierOrder.supplier_id == principal.supplier_id,
                SupplierOrder.paid_at.is_not(None),
                SupplierOrder.status != SupplierOrderStatus.PENDING_PAYMENT,
            )
        async with sessions() as s:
            granted.update(f"order:{no}" for no in (await s.scalars(query)).all())
    return Grant(principal, frozenset(granted), locale)
