"""The read model after the run: nothing lost, nothing twice, every invariant; refunds settled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.scaleout.checks import Check
from bench.scaleout.readiness import poll_until
from db.tables import Notification, Order, Package, Refund, SupplierOrder
from domain.states import OrderStatus
from tests.support.invariants import check_invariants

SETTLE_TIMEOUT_S = 120.0  # refunds settled after the last lifecycle


def expected_notices(so_ids: Sequence[str], second_payment: bool) -> Counter[tuple[str, str, str]]:
    """What one finished lifecycle owes: (kind, recipient type, supplier order or "")."""
    want: Counter[tuple[str, str, str]] = Counter()
    for so in so_ids:
        want[("order_paid", "supplier", so)] += 1
        want[("order_paid", "customer", so)] += 1
        want[("shipped", "customer", so)] += 1
    if second_payment:
        want[("payment_refunded", "customer", "")] += 1
    return want


async def check_read_model(
    sessions: async_sessionmaker[AsyncSession],
    order_nos: Sequence[str],
    dup_paid: Sequence[str],
    customer_prefix: str,
) -> list[Check]:
    """The read model after the run: nothing lost, nothing twice, every invariant."""
    out: list[Check] = []
    nos = set(order_nos)
    second = set(dup_paid)
    async with sessions() as s:
        statuses: dict[str, str] = {
            no: str(st)
            for no, st in (
                await s.execute(select(Order.order_no, Order.status).where(Order.order_no.in_(nos)))
            ).all()
        }
        unfinished = {n: st for n, st in statuses.items() if st != OrderStatus.FINISHED.value}
        missing = nos - set(statuses)
        out.append(
            (
                not unfinished and not missing and len(nos) == len(order_nos),
                f"orders: {len(statuses) - len(unfinished)} of {len(order_nos)} submitted are "
                f"FINISHED (lost: {len(missing)}, "
                f"not finished: {dict(list(unfinished.items())[:5])})",
            )
        )
        ours = int(
            await s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.customer_id.like(f"{customer_prefix}%"))
            )
            or 0
        )
        out.append(
            (
                ours == len(nos),
                f"orders in the read model: {ours} for {len(nos)} submits (no order placed twice)",
            )
        )

        rows = (
            await s.execute(
                select(
                    Notification.order_no,
                    Notification.kind,
                    Notification.recipient_type,
                    Notification.supplier_order_id,
                ).where(Notification.order_no.in_(nos))
            )
        ).all()
        got: dict[str, Counter[tuple[str, str, str]]] = {n: Counter() for n in nos}
        for r in rows:
            got[r.order_no][(r.kind, r.recipient_type, r.supplier_order_id or "")] += 1
        so_ids: dict[str, list[str]] = {n: [] for n in nos}
        for so_id, o in (
            await s.execute(
                select(SupplierOrder.id, SupplierOrder.order_no).where(
                    SupplierOrder.order_no.in_(nos)
                )
            )
        ).all():
            so_ids[o].append(so_id)
        dups = lost = 0
        examples: list[str] = []
        for n in nos:
            want = expected_notices(so_ids[n], n in second)
            extra, short = got[n] - want, want - got[n]
            dups += sum(extra.values())
            lost += sum(short.values())
            if (extra or short) and len(examples) < 3:
                examples.append(f"{n}: extra {dict(extra)}, missing {dict(short)}")
        out.append(
            (
                dups == 0 and lost == 0,
                f"notifications: {len(rows)}, {dups} duplicate or unexpected, {lost} missing"
                + (f" ({'; '.join(examples)})" if examples else ""),
            )
        )

        refunds = (await s.scalars(select(Refund).where(Refund.order_no.in_(nos)))).all()
        per_event = Counter(r.payment_event_id for r in refunds)
        want_events = {f"second-{n}" for n in second}
        unsettled = [r.id for r in refunds if r.status != "succeeded"]
        out.append(
            (
                set(per_event) == want_events
                and all(c == 1 for c in per_event.values())
                and not unsettled,
                f"refunds: {len(refunds)} for {len(second)} second payments "
                f"({sum(c - 1 for c in per_event.values())} duplicate, "
                f"{len(want_events - set(per_event))} missing, "
                f"{len(set(per_event) - want_events)} unexpected, {len(unsettled)} unsettled)",
            )
        )

        packages = (
            await s.execute(
                select(Package.status, func.count())
                .where(Package.supplier_order_id.in_([i for v in so_ids.values() for i in v]))
                .group_by(Package.status)
            )
        ).all()
        by_status = {str(st): int(c) for st, c in packages}
        n_sos = sum(len(v) for v in so_ids.values())
        out.append(
            (
                by_status == ({"delivered": n_sos} if n_sos else {}),
                f"packages: {by_status} for {n_sos} supplier orders (each one, scanned delivered)",
            )
        )
    try:
        await check_invariants(sessions)
        out.append((True, "read-model invariants: stock, coins, money, inbox, operation log"))
    except AssertionError as err:
        out.append((False, f"read-model invariants: {str(err)[:500]}"))
    return out


async def wait_refunds_settled(
    sessions: async_sessionmaker[AsyncSession], nos: Sequence[str]
) -> None:
    async def settled() -> bool:
        async with sessions() as s:
            pending = await s.scalar(
                select(func.count())
                .select_from(Refund)
                .where(Refund.order_no.in_(list(nos)), Refund.status != "succeeded")
            )
        return not pending

    await poll_until(settled, SETTLE_TIMEOUT_S, "refunds settled", tick=0.5)
