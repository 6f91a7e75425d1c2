"""The scale-out fault run, reduced: a few lifecycles through two APIs and two workers (real
processes on a dev server of their own and a fresh PostgreSQL database) while worker 1 is
SIGKILLed and API 2 is SIGTERMed, both started again. No speed thresholds: every order must
finish exactly once with every read-model invariant, no client may see a 500, and both faults
must really have happened. Then the checks are shown to catch what they look for: a duplicate
notification, a duplicate refund and an order left unfinished, written into that database.
"""

import time
from datetime import UTC, datetime

from sqlalchemy import select, update

from bench.scaleout import check_read_model, parse_args, print_report, run
from db.session import make_engine, make_session_factory, write_session
from db.tables import Notification, Order, Refund
from domain.states import OrderStatus

FAULT_ORDERS = 6


async def test_two_workers_two_apis_survive_a_kill_and_a_restart(pg_url: str) -> None:
    t0 = time.monotonic()
    args = parse_args(
        [
            "--orders",
            "0",  # no throughput phases: the fault phase only
            "--fault-orders",
            str(FAULT_ORDERS),
            "--concurrency",
            str(FAULT_ORDERS),
            "--warmup",
            "0",
            "--dup-pay-every",
            "2",
            "--pg-url",
            pg_url,
        ]
    )
    report = await run(args)
    result = print_report(report, args)
    assert not report.failed, report.failed

    faults = result["faults"]
    assert faults["error"] is None
    worker, api = faults["worker"], faults["api"]
    assert worker["exit"] == -9 and worker["new_pid"] != worker["pid"]
    assert api["exit"] == 0 and api["new_pid"] != api["pid"] and api["generation"] == 2
    assert report.tally.served[f"api-2#{api['generation']}"] > 0  # the new API 2 served
    assert report.tally.served["api-2#1"] > 0 and report.tally.served["api-1#1"] > 0
    phase = result["phases"]["faults"]
    assert phase["lifecycles"] >= FAULT_ORDERS and phase["errors"] == 0
    assert not any(code.startswith("500") for code in result["client"]["server_errors"])
    assert result["lifecycles"] == len(report.order_nos) >= FAULT_ORDERS
    assert result["second_payments"] >= FAULT_ORDERS // 2
    assert result["postgres"]["isolation"] == "read committed"
    assert set(result["exits"].values()) == {0}
    print(f"fault run: {time.monotonic() - t0:.1f}s")

    # The checks can fail: break the read model the way a lost or doubled step would.
    engine = make_engine(report.database_url)
    sessions = make_session_factory(engine)
    try:
        victim = report.order_nos[0]
        second = report.dup_paid[0]
        async with write_session(sessions) as s:
            shipped = (
                await s.scalars(
                    select(Notification).where(
                        Notification.order_no == victim, Notification.kind == "shipped"
                    )
                )
            ).first()
            assert shipped is not None
            s.add(
                Notification(
                    dedupe_key=f"{shipped.dedupe_key}:again",
                    recipient_type=shipped.recipient_type,
                    recipient_id=shipped.recipient_id,
                    kind=shipped.kind,
                    order_no=shipped.order_no,
                    supplier_order_id=shipped.supplier_order_id,
                    body=shipped.body,
                    at=shipped.at,
                )
            )
            refund = (await s.scalars(select(Refund).where(Refund.order_no == second))).one()
            s.add(
                Refund(
                    id=f"{refund.id}:again",
                    order_no=refund.order_no,
                    payment_event_id=refund.payment_event_id,
                    amount=refund.amount,
                    method=refund.method,
                    reason=refund.reason,
                    status="succeeded",
                    created_at=refund.created_at,
                    settled_at=datetime.now(UTC),
                )
            )
            await s.execute(
                update(Order).where(Order.order_no == victim).values(status=OrderStatus.PAID)
            )
        checks = await check_read_model(
            sessions, report.order_nos, report.dup_paid, report.customer_prefix
        )
    finally:
        await engine.dispose()
    failed = [msg for ok, msg in checks if not ok]
    assert any(m.startswith("orders:") and "not finished: {'" + victim in m for m in failed), failed
    assert any(m.startswith("notifications:") and "1 duplicate" in m for m in failed), failed
    assert any(m.startswith("refunds:") and "(1 duplicate" in m for m in failed), failed
    assert any(m.startswith("read-model invariants:") for m in failed), failed
