"""Friend pays (代付) and money on the record (DESIGN.md §11) through the HTTP API.

- a friend_pay submit returns a single-use `pay_token`; `GET /pay-requests/{token}` shows a
  logged-in customer only amount, items, deadline and status; unknown, used-up and expired
  tokens are 404; the buyer cannot pay through it (403), another customer can;
- the order records the payer; money refunds go back to the payer (who is notified), coins
  to the buyer; the buyer may still cancel while unpaid;
- `GET /orders/{no}` lists `payments` and `refunds`, and `paid` / `refunded` count all money
  received and returned (a late, a duplicate and a mismatched payment included; a replayed
  event id is one payment).
"""

from decimal import Decimal
from typing import Any

from db.tables import Order
from starter.api.pay_tokens import token_hash
from tests.api.helpers import HOME, Api, Who, eventually, footprint, uid
from tests.support.invariants import check_order_invariants

PAY_REQUEST_KEYS = {"amount", "items", "deadline", "status"}


async def friend_order(
    api: Api, buyer: Who, coins: str = "0.00", lines: int = 2
) -> tuple[dict[str, Any], list[Who]]:
    s1, s2 = api.supplier(), api.supplier()
    tea = await api.product(s1, price="12.00")
    cup = await api.product(s2, price="7.50")
    body = {
        "lines": [{"sku": tea, "qty": lines}, {"sku": cup, "qty": 1}],
        "coins": coins,
        "order_type": "friend_pay",
    }
    placed = await api.ok("POST", "/orders", buyer, body, expect=201)
    return placed, [s1, s2]


def money(order: dict[str, Any]) -> tuple[Decimal, Decimal]:
    return Decimal(order["paid"]), Decimal(order["refunded"])


async def settled(api: Api, who: Who, order_no: str, n: int) -> Any:
    return await api.wait_order(
        who,
        order_no,
        lambda o: len(o["refunds"]) == n and all(r["status"] == "succeeded" for r in o["refunds"]),
        f"{n} refunds settled",
    )


async def test_pay_request_shows_only_what_to_pay_and_a_friend_pays_it(api: Api) -> None:
    buyer = await api.customer(coins="50.00")
    friend = await api.customer(coins="0.00", address=False)
    placed, (s1, _) = await friend_order(api, buyer, coins="5.00")
    no, token = placed["order_no"], placed["pay_token"]
    assert placed["order_type"] == "friend_pay" and isinstance(token, str) and len(token) >= 40
    # The buyer finds the same token on the order; nobody else is shown it.
    assert (await api.ok("GET", f"/orders/{no}", buyer))["pay_token"] == token
    assert (await api.ok("GET", f"/orders/{no}", api.admin))["pay_token"] is None
    # Only the hash is stored.
    assert await api.count(Order, Order.pay_token_hash == token_hash(token)) == 1

    r = await api.call("GET", f"/pay-requests/{token}", friend)
    assert r.status_code == 200, r.text
    request = r.json()
    assert set(request) == PAY_REQUEST_KEYS
    assert request["amount"] == placed["payable"] and request["status"] == "PENDING_PAYMENT"
    assert request["deadline"] == placed["pay_deadline"]
    assert sorted((i["sku"], i["qty"]) for i in request["items"]) == sorted(
        (i["sku"], i["qty"]) for so in placed["supplier_orders"] for i in so["items"]
    )
    assert all(set(i) == {"sku", "name", "qty", "price", "line_total"} for i in request["items"])
    # Never the buyer's account, address or the order itself.
    for secret in (buyer.sub, HOME["phone"], HOME["address"], HOME["name"], no):
        assert str(secret) not in r.text

    # Readers must be logged-in customers.
    assert (await api.call("GET", f"/pay-requests/{token}")).status_code == 401
    assert (await api.call("GET", f"/pay-requests/{token}", s1)).status_code == 403
    assert (await api.call("GET", f"/pay-requests/{token}x", friend)).status_code == 404

    # The buyer cannot pay through it; nothing happens.
    r = await api.call("POST", f"/pay-requests/{token}/pay", buyer)
    assert r.status_code == 403, r.text
    assert "you placed this order" in r.json()["error"]["message"]
    assert (await api.order(buyer, no))["payments"] == []

    # A friend pays (body optional); an Idempotency-Key retry is the same payment.
    ack = await api.ok("POST", f"/pay-requests/{token}/pay", friend, key="k1", expect=202)
    assert ack["outcome"] == "signalled" and set(ack) == {"accepted", "event_id", "outcome"}
    again = await api.call("POST", f"/pay-requests/{token}/pay", friend, key="k1")
    assert again.status_code == 202 and again.json() == ack
    paid = await api.wait_order(buyer, no, lambda o: o["status"] == "PAID", "paid by the friend")
    assert paid["payer_id"] == friend.sub and paid["pay_token"] is None
    (p,) = paid["payments"]
    assert (p["event_id"], p["outcome"], p["payer_id"], p["amount"]) == (
        ack["event_id"],
        "applied",
        friend.sub,
        placed["payable"],
    )
    assert set(p) == {"event_id", "amount", "method", "outcome", "payer_id", "at"}

    # Used up: the same token is 404 to read and to pay.
    assert (await api.call("GET", f"/pay-requests/{token}", friend)).status_code == 404
    r = await api.call("POST", f"/pay-requests/{token}/pay", friend)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    # The operation log names the payer.
    log = await api.ok("GET", f"/admin/orders/{no}/log", api.admin)
    (applied,) = [e for e in log["entries"] if e["action"] == "payment_applied"]
    assert applied["detail"]["payer_id"] == friend.sub
    await check_order_invariants(api.sessions, [no])


async def test_refunds_of_a_friend_paid_order_go_to_the_friend_coins_to_the_buyer(
    api: Api,
) -> None:
    buyer = await api.customer(coins="50.00")
    friend = await api.customer(coins="0.00", address=False)
    placed, (s1, _) = await friend_order(api, buyer, coins="5.00")
    no = placed["order_no"]
    await api.ok("POST", f"/pay-requests/{placed['pay_token']}/pay", friend, expect=202)
    await api.wait_order(buyer, no, lambda o: o["status"] == "PAID", "paid")
    so1 = next(so for so in placed["supplier_orders"] if so["supplier_id"] == s1.supplier_id)
    coins = Decimal((await api.ok("GET", f"/admin/customers/{buyer.sub}", api.admin))["coins"])

    await api.ok("POST", f"/supplier/orders/{so1['id']}/cancel", s1, {"reason": "no stock"})
    order = await settled(api, buyer, no, 1)
    (refund,) = order["refunds"]
    assert set(refund) >= {
        "id",
        "amount",
        "coins",
        "reason",
        "status",
        "payer_id",
        "created_at",
        "settled_at",
    }
    assert (refund["payer_id"], refund["amount"], refund["coins"], refund["reason"]) == (
        friend.sub,
        so1["payable"],
        so1["coin_share"],
        "supplier_cancelled",
    )
    assert refund["settled_at"] is not None
    assert money(order) == (Decimal(placed["payable"]), Decimal(so1["payable"]))
    after = Decimal((await api.ok("GET", f"/admin/customers/{buyer.sub}", api.admin))["coins"])
    assert after == coins + Decimal(so1["coin_share"])  # coins go back to the buyer

    # The friend is told; their notice says nothing about the buyer.
    notes = await api.ok("GET", "/notifications", friend)
    (note,) = [n for n in notes["items"] if n["kind"] == "payment_refunded"]
    assert so1["payable"] in note["body"] and buyer.sub not in note["body"]
    await check_order_invariants(api.sessions, [no])


async def test_buyer_may_cancel_while_unpaid_and_the_token_is_used_up(api: Api) -> None:
    buyer = await api.customer(coins="20.00")
    friend = await api.customer(address=False)
    placed, _ = await friend_order(api, buyer, coins="3.00")
    token = placed["pay_token"]
    await api.ok("POST", f"/orders/{placed['order_no']}/cancel", buyer)
    assert (await api.call("GET", f"/pay-requests/{token}", friend)).status_code == 404
    assert (await api.call("POST", f"/pay-requests/{token}/pay", friend)).status_code == 404
    assert (await api.ok("GET", f"/admin/customers/{buyer.sub}", api.admin))["coins"] == "20.00"
    await check_order_invariants(api.sessions, [placed["order_no"]])


async def test_pay_token_expires_with_the_payment_deadline(fast_api: Api) -> None:
    api = fast_api  # 2-second payment window
    buyer = await api.customer()
    friend = await api.customer(address=False)
    placed, _ = await friend_order(api, buyer)
    token = placed["pay_token"]
    assert (await api.call("GET", f"/pay-requests/{token}", friend)).status_code == 200

    async def expired() -> bool:
        return (await api.call("GET", f"/pay-requests/{token}", friend)).status_code == 404

    await eventually(expired, 10, "token expired at the deadline")
    assert (await api.call("POST", f"/pay-requests/{token}/pay", friend)).status_code == 404


async def test_self_orders_have_no_pay_request_and_a_friend_pay_nothing_to_pay_is_422(
    api: Api,
) -> None:
    buyer = await api.customer(coins="500.00")
    s1 = api.supplier()
    tea = await api.product(s1, price="12.00")
    placed = await api.place(buyer, [(tea, 1)])
    assert placed["order_type"] == "self" and placed["pay_token"] is None
    before = await footprint(api, buyer, [tea])
    r = await api.call(
        "POST",
        "/orders",
        buyer,
        {"lines": [{"sku": tea, "qty": 1}], "coins": "20.00", "order_type": "friend_pay"},
    )
    assert r.status_code == 422 and "nothing for a friend to pay" in r.text
    assert await footprint(api, buyer, [tea]) == before


async def test_webhook_payer_id_is_recorded(api: Api) -> None:
    buyer = await api.customer()
    placed, _ = await friend_order(api, buyer)
    no = placed["order_no"]
    body = {
        "event_id": uid("evt-"),
        "order_no": no,
        "status": "succeeded",
        "amount": placed["payable"],
        "method": "alipay",
        "payer_id": "friend-from-provider",
    }
    assert (await api.signed("/webhooks/payment", body)).status_code == 202
    order = await api.wait_order(buyer, no, lambda o: o["status"] == "PAID", "paid by webhook")
    assert order["payer_id"] == "friend-from-provider"
    assert order["payments"][0]["payer_id"] == "friend-from-provider"
    await check_order_invariants(api.sessions, [no])


async def test_money_on_the_record_counts_late_duplicate_and_mismatched_payments(
    api: Api,
) -> None:
    """paid / refunded count every payment received and returned; a replay is listed once."""
    buyer = await api.customer()
    s1 = api.supplier()
    tea = await api.product(s1, price="15.00")

    def event(order: dict[str, Any], amount: str | None = None, **over: Any) -> dict[str, Any]:
        return {
            "event_id": uid("evt-"),
            "order_no": order["order_no"],
            "status": "succeeded",
            "amount": amount or order["payable"],
            "method": "card",
            **over,
        }

    # Late: paid after the buyer cancelled (was shown as paid 0.00 / refunded 0.00).
    late_order = await api.place(buyer, [(tea, 1)])
    await api.ok("POST", f"/orders/{late_order['order_no']}/cancel", buyer)
    late = event(late_order)
    assert (await api.signed("/webhooks/payment", late)).status_code == 202
    shown = await settled(api, buyer, late_order["order_no"], 1)
    payable = Decimal(late_order["payable"])
    assert money(shown) == (payable, payable)
    assert [(p["event_id"], p["outcome"]) for p in shown["payments"]] == [
        (late["event_id"], "refunded_late")
    ]
    (refund,) = shown["refunds"]
    assert (refund["reason"], refund["amount"], refund["payer_id"]) == (
        "refunded_late",
        late_order["payable"],
        buyer.sub,
    )

    # Mismatch, then the right amount, then a second payment and a replay of the first.
    order = await api.place(buyer, [(tea, 2)])
    no, payable = order["order_no"], Decimal(order["payable"])
    short = event(order, amount="1.00")
    right = event(order)
    extra = event(order)
    for body in (short, right, right, extra, right):
        assert (await api.signed("/webhooks/payment", body)).status_code == 202
        if body is right:  # wait until the first one is applied before the second
            await api.wait_order(buyer, no, lambda o: o["status"] == "PAID", "paid")
    shown = await settled(api, buyer, no, 2)
    assert [(p["event_id"], p["outcome"]) for p in shown["payments"]] == [
        (short["event_id"], "refunded_mismatch"),
        (right["event_id"], "applied"),
        (extra["event_id"], "refunded_duplicate"),
    ]
    assert money(shown) == (Decimal("1.00") + 2 * payable, Decimal("1.00") + payable)
    kept = money(shown)[0] - money(shown)[1]
    assert kept == payable  # money in = kept + refunded
    assert sorted(r["reason"] for r in shown["refunds"]) == [
        "refunded_duplicate",
        "refunded_mismatch",
    ]
    # Customers see only their own orders' money; the list view carries it too.
    page = await api.ok("GET", "/orders", buyer)
    listed = next(o for o in page["items"] if o["order_no"] == no)
    assert listed["payments"] == shown["payments"] and listed["refunds"] == shown["refunds"]
    await check_order_invariants(api.sessions, [late_order["order_no"], no])


def test_openapi_documents_pay_requests_and_money_fields() -> None:
    from settings import Settings
    from starter.api.app import create_app

    spec = create_app(Settings()).openapi()
    schemas = spec["components"]["schemas"]

    def props(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    read = spec["paths"]["/pay-requests/{token}"]["get"]
    pay = spec["paths"]["/pay-requests/{token}/pay"]["post"]
    assert {"200", "401", "403", "404"} <= set(read["responses"])
    assert {"202", "401", "403", "404", "409", "422"} <= set(pay["responses"])
    assert props("PayRequestOut") == PAY_REQUEST_KEYS
    assert {"order_type", "payer_id", "pay_token", "payments", "refunds"} <= props("OrderOut")
    assert {"order_type", "pay_token"} <= props("PlacedOrder")
    assert props("PaymentOut") == {"event_id", "amount", "method", "outcome", "payer_id", "at"}
    outcome = schemas["PaymentOut"]["properties"]["outcome"]
    assert set(outcome["enum"]) >= {
        "applied",
        "failed",
        "refunded_mismatch",
        "refunded_duplicate",
        "refunded_late",
    }
    assert {
        "id",
        "amount",
        "coins",
        "reason",
        "status",
        "payer_id",
        "created_at",
        "settled_at",
    } <= props("RefundOut")
    webhook = spec["paths"]["/webhooks/payment"]["post"]["requestBody"]["content"]
    assert "payer_id" in webhook["application/json"]["schema"]["properties"]
    # Type and zone: in the buyer's and admin's views, not in the supplier's.
    assert "source" in props("OrderItemOut") and "source" not in props("ItemOut")
    assert "order_type" not in props("SupplierViewOut")
    submit = schemas["SubmitIn"]["properties"]["order_type"]
    assert "description" in submit
    assert "source" in props("OrderLine")
    for name in ("PaymentOut", "RefundOut", "OrderOut"):
        documented = [f for f, p in schemas[name]["properties"].items() if p.get("description")]
        assert documented, name
