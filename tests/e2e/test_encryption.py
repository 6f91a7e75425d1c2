"""Encrypted payloads on the real dev server, end to end: the API and the worker as deployed
(`worker.connect` with ORDERS_PAYLOAD_KEY) run an order whose receiver is a real person.

- Temporal's store holds no plain name, phone, region or address: the raw bytes of every
  history of the order's family are searched.
- The key rotates mid-order: the order is placed and paid under key `old`; then the worker and
  the API restart with `new,old`, and the supplier changes the receiver. The new worker replays
  the `old` history and writes `new` payloads; the history holds both key ids.
- `POST /codec/decode` turns the history's payloads back into the JSON the workflows exchanged
  (both keys), and refuses by key id when the key is missing or wrong.
- A worker with a wrong key fails loudly (the query that makes it replay names the key id), and
  never decodes garbage.
- Search attributes stay plain and hold only OrderNo / CustomerId / SupplierId / OrderStatus.
"""

import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from domain.messages import SupplierOrderResult
from domain.states import OrderStatus, SupplierOrderStatus
from settings import Settings
from starter.api.app import create_app
from starter.payload_codec import ENCODING, KEY_ID_METADATA, PayloadDecryptionError, data_converter
from starter.security import Role
from tests.api.helpers import Api, Who, uid
from worker import build_worker, connect
from workflows.supplier_order import SupplierOrderWorkflow

PERSON = {
    "name": "Mei Lanternfield",
    "phone": "13912345678",
    "region": "Zhejiang Hillside",
    "address": "42 Lantern Lane",
    "lat": 30.25,
    "lon": 120.16,
}
MOVED = {
    "name": "Jun Quietcourt",
    "phone": "13787654321",
    "region": "Jiangsu Plainsview",
    "address": "7 Quiet Court",
}
SECRETS = [v.encode() for p in (PERSON, MOVED) for k, v in p.items() if isinstance(v, str)]
SEARCH_ATTRIBUTES = {"OrderNo", "CustomerId", "SupplierId", "OrderStatus"}


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


OLD, NEW, WRONG = _key(), _key(), _key()


def _settings(env: WorkflowEnvironment, db_url: str, task_queue: str, keys: str) -> Settings:
    return Settings.model_validate(
        {
            "DATABASE_URL": db_url,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": env.client.namespace,
            "ORDERS_TASK_QUEUE": task_queue,
            "ORDERS_JWT_SECRET": "encryption-tests-jwt-secret-0123456789abcdef",
            "ORDERS_WEBHOOK_SECRET": "encryption-tests-webhook-secret",
            "ORDERS_PAYLOAD_KEY": keys,
        }
    )


@contextlib.asynccontextmanager
async def _stack(settings: Settings, sessions: Any) -> AsyncIterator[tuple[Api, Client]]:
    """The worker (`python -m worker`'s connect and build) and the API on one settings."""
    client = await connect(settings)
    app = create_app(settings)
    async with (
        build_worker(client, settings.task_queue, sessions),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60
        ) as http,
    ):
        yield Api(http, settings, sessions), client


def _payloads(message: Message, skip: tuple[str, ...] = ("search_attributes",)) -> list[Payload]:
    """Every Payload inside a protobuf message (search attributes left out)."""
    found: list[Payload] = []

    def visit(msg: Message) -> None:
        if isinstance(msg, Payload):
            found.append(msg)
            return
        for field, value in msg.ListFields():
            if field.message_type is None or field.name in skip:
                continue
            if field.message_type.GetOptions().map_entry:
                values = list(value.values())
            elif field.is_repeated:
                values = list(value)
            else:
                values = [value]
            for v in values:
                if isinstance(v, Message):
                    visit(v)

    visit(message)
    return found


async def _history(client: Client, workflow_id: str) -> History:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return History(events=history.events)


def _key_ids(payloads: list[Payload]) -> set[str]:
    return {
        p.metadata[KEY_ID_METADATA].decode()
        for p in payloads
        if p.metadata.get("encoding") == ENCODING
    }


async def test_histories_are_encrypted_rotate_and_decode_through_the_codec_endpoint(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/orders.db"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    task_queue = f"enc-{uuid.uuid4().hex[:8]}"
    before = _settings(dev_env, db_url, task_queue, f"old:{OLD}")
    after = _settings(dev_env, db_url, task_queue, f"new:{NEW},old:{OLD}")

    # 1. Placed and paid under key `old`.
    async with _stack(before, sessions) as (api, _):
        customer = Who(uid("cust-"), Role.CUSTOMER)
        await api.ok(
            "PUT",
            f"/admin/customers/{customer.sub}",
            api.admin,
            {"coins": "10.00", "default_address": PERSON},
            expect=201,
        )
        supplier = api.supplier()
        sku = await api.product(supplier, price="20.00")
        order = await api.paid_order(customer, [(sku, 2)])
        order_no = order["order_no"]
        [so] = order["supplier_orders"]
        assert so["address"]["phone"] == PERSON["phone"]

    # 2. Rotated: `new` encrypts, `old` still decrypts; the new worker replays the old history.
    async with _stack(after, sessions) as (api, client):
        r = await api.call("PATCH", f"/supplier/orders/{so['id']}/receiver", supplier, MOVED)
        assert r.status_code == 200, r.text
        assert r.json()["address"]["phone"] == MOVED["phone"]
        got = await api.order(customer, order_no, live=True)
        assert got["status"] == OrderStatus.PAID
        assert got["supplier_orders"][0]["status"] == SupplierOrderStatus.PENDING_SHIPMENT

        family = {f"order-{order_no}": "order", f"order-{so['id']}": "supplier order"}
        histories = {wf: await _history(dev_env.client, wf) for wf in family}

        # No personal data in Temporal's store, in any form the bytes could hold it.
        for wf, history in histories.items():
            raw = history.SerializeToString()
            assert ENCODING in raw
            for secret in SECRETS:
                assert secret not in raw, f"{secret!r} in plain in the history of {wf}"
        so_payloads = _payloads(histories[f"order-{so['id']}"])
        assert _key_ids(so_payloads) == {"old", "new"}
        assert _key_ids(_payloads(histories[f"order-{order_no}"])) == {"old"}

        # The codec endpoint (what the Temporal UI calls) decodes them back, both keys.
        encrypted = [p for p in so_payloads if p.metadata.get("encoding") == ENCODING]
        body = {
            "payloads": [
                {
                    "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                    "data": base64.b64encode(p.data).decode(),
                }
                for p in encrypted
            ]
        }
        r = await api.http.post(
            "/codec/decode",
            json=body,
            headers={**api.headers(api.admin), "X-Namespace": after.temporal_namespace},
        )
        assert r.status_code == 200, r.text
        decoded = [
            (base64.b64decode(p["metadata"]["encoding"]), base64.b64decode(p["data"]))
            for p in r.json()["payloads"]
        ]
        assert len(decoded) == len(encrypted)
        assert all(encoding != ENCODING for encoding, _ in decoded)
        plain = b"".join(data for _, data in decoded)
        for secret in SECRETS:
            assert secret in plain, f"{secret!r} not decoded back"
        # Outside dev mode, nobody else may decode.
        r = await api.http.post("/codec/decode", json=body)
        assert r.status_code == 401

        # Search attributes: plain, only the four ids, no personal data.
        for wf in family:
            desc = await client.get_workflow_handle(wf).describe()
            fields = desc.raw_description.workflow_execution_info.search_attributes.indexed_fields
            custom = {k for k in fields if not k.startswith(("Temporal", "BuildIds"))}
            assert custom <= SEARCH_ATTRIBUTES, custom
            assert {"OrderNo", "CustomerId", "OrderStatus"} <= custom
            for name, payload in fields.items():
                assert payload.metadata["encoding"] == b"json/plain", name
                for secret in SECRETS:
                    assert secret not in payload.data, (wf, name)
            typed = desc.typed_search_attributes
            values = {p.key.name: p.value for p in typed if p.key.name in SEARCH_ATTRIBUTES}
            assert values["OrderNo"] == order_no and values["CustomerId"] == customer.sub
            expected = "PAID" if family[wf] == "order" else "PENDING_SHIPMENT"
            assert values["OrderStatus"] == expected
            assert values.get("SupplierId") == (
                supplier.supplier_id if family[wf] == "supplier order" else None
            )

    # 3. Wrong keys fail loudly, never as garbage: the SDK's converter, ...
    dropped = data_converter(after.payload_keys()[:1])  # `new` only
    with pytest.raises(PayloadDecryptionError, match="key id 'old', which is not among"):
        await dropped.decode(encrypted)
    # ... and a worker whose `old` key is not the one the history was written with: the query
    # that makes it replay the history fails, naming the key id.
    wrong = _settings(dev_env, db_url, task_queue, f"new:{NEW},old:{WRONG}")
    good_client = await connect(after)
    async with build_worker(await connect(wrong), task_queue, sessions):
        handle: WorkflowHandle[SupplierOrderWorkflow, SupplierOrderResult] = (
            good_client.get_workflow_handle_for(SupplierOrderWorkflow.run, f"order-{so['id']}")
        )
        with pytest.raises(WorkflowQueryFailedError, match="key id 'old' failed authentication"):
            await handle.query(SupplierOrderWorkflow.snapshot, None)
    for wf in family:  # (the children end with their parent)
        with contextlib.suppress(RPCError):
            await good_client.get_workflow_handle(wf).terminate("encryption test finished")
    await engine.dispose()
