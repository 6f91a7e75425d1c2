"""Bad input is never a 500: the OpenAPI schema's bounds, and a fuzzer over every operation.

1. Every integer parameter the schema documents has a minimum and a maximum, so a number
   the database cannot hold (`GET /notifications?offset=10177970328114075648` was a 500)
   is a 422 before it reaches a query.
2. schemathesis (its Python API: one Hypothesis strategy per operation) generates valid and
   invalid requests for every operation, as a customer, a supplier and an admin, against a
   stack of our own (fresh read model, worker, API on a free port). Any 5xx, or a response
   that does not match the documented schema, fails. The budget is small and the examples
   derandomized, so `make test` stays reproducible; ORDERS_FUZZ_EXAMPLES=200 digs deeper.
3. The schema's OpenAPI links (submit → read/pay/cancel, after-sales request → read/decide,
   product or customer upsert → read) exist, and schemathesis' state machine follows them
   in short chains of calls, with the same checks.
"""

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from temporalio.testing import WorkflowEnvironment

from db.session import create_all, make_engine, make_session_factory
from starter.api.app import create_app
from starter.security import Role, mint_token
from tests.api.conftest import serve, stack_settings, stop
from tests.api.helpers import HOME, Api, Who
from worker import build_worker

EXAMPLES = int(os.environ.get("ORDERS_FUZZ_EXAMPLES", "4"))
CHECKS = [not_a_server_error, response_schema_conformance]


async def test_every_integer_parameter_is_bounded(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    unbounded = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                options = schema.get("anyOf", [schema])
                for s in options:
                    if s.get("type") == "integer" and not {"minimum", "maximum"} <= set(s):
                        unbounded.append(f"{method.upper()} {path} {param['name']}")
    assert unbounded == []
    customer = await api.customer()
    r = await api.call("GET", "/notifications?offset=10177970328114075648", customer)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input", r.text


@dataclass
class FuzzStack:
    url: str
    tokens: dict[str, str]


@pytest.fixture
async def fuzz_stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[FuzzStack]:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/fuzz.db"
    engine = make_engine(db_url)
    await create_all(engine)
    sessions = make_session_factory(engine)
    settings_ = stack_settings(db_url, dev_env, f"fuzz-{uuid.uuid4().hex[:8]}")
    async with build_worker(dev_env.client, settings_.task_queue, sessions):
        running = await serve(create_app(settings_))
        try:
            async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
                api = Api(http, settings_, sessions)
                # Somebody to be: a customer with an address and coins, a supplier with goods.
                await api.ok(
                    "PUT",
                    "/admin/customers/fuzz-customer",
                    api.admin,
                    {"coins": "50.00", "default_address": HOME},
                    expect=201,
                )
                supplier = Who("fuzz-supplier-user", Role.SUPPLIER, "fuzz-supplier")
                for _ in range(2):
                    await api.product(supplier)
            secret = settings_.jwt_secret
            yield FuzzStack(
                running.url,
                {
                    "customer": mint_token(secret, "fuzz-customer", Role.CUSTOMER),
                    "supplier": mint_token(
                        secret, supplier.sub, Role.SUPPLIER, supplier.supplier_id
                    ),
                    "admin": mint_token(secret, "root", Role.ADMIN),
                },
            )
        finally:
            await stop(running)
    await engine.dispose()


def _fuzz(url: str, tokens: dict[str, str], examples: int) -> tuple[list[str], Counter[Any]]:
    """Every operation, every role, valid then invalid inputs; returns the failures."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 30, [op.label for op in operations]
    failures: list[str] = []
    seen: Counter[Any] = Counter()
    modes = [
        (schemathesis.GenerationMode.POSITIVE, examples),
        (schemathesis.GenerationMode.NEGATIVE, max(2, examples // 2)),
    ]
    for role, token in tokens.items():
        for op in operations:
            for mode, budget in modes:
                failure = _fuzz_one(url, role, token, op, mode, budget, seen)
                if failure:
                    failures.append(failure)
    return failures, seen


def _fuzz_one(
    url: str,
    role: str,
    token: str,
    op: schemathesis.APIOperation,
    mode: schemathesis.GenerationMode,
    budget: int,
    seen: Counter[Any],
) -> str | None:
    headers = {"Authorization": f"Bearer {token}"}

    @settings(
        max_examples=budget,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=headers, timeout=60)
        seen[(role, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        check()
    except Unsatisfiable:
        return None  # nothing to make invalid (no parameters, no body)
    except (Exception, BaseExceptionGroup) as err:
        return f"--- as {role}, {mode.value}: {op.label}\n{err}"
    return None


async def test_fuzzer_finds_no_server_error_and_no_undocumented_response(
    fuzz_stack: FuzzStack,
) -> None:
    started = time.monotonic()
    # The fuzzer's requests are blocking: it runs in a thread while this loop serves them.
    failures, seen = await asyncio.to_thread(_fuzz, fuzz_stack.url, fuzz_stack.tokens, EXAMPLES)
    took = time.monotonic() - started
    assert failures == [], "\n".join(failures)
    # It really reached the handlers, as each role: answers beyond 401/403/404/422.
    for role in fuzz_stack.tokens:
        assert seen[(role, 200)] > 0, seen
    assert sum(seen.values()) > 300, seen
    print(f"fuzzed {sum(seen.values())} requests in {took:.1f}s: {sorted(seen.items())}")


def _stateful(url: str, token: str, examples: int) -> Counter[tuple[str, int]]:
    """Chains of calls along the schema's OpenAPI links (submit → read/pay/cancel, ...)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    calls: Counter[tuple[str, int]] = Counter()

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": url, "headers": headers, "timeout": 60}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            calls[(case.operation.label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

    Chains.run(
        settings=settings(
            max_examples=examples,
            stateful_step_count=5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
    )
    return calls


async def test_links_chain_calls_without_server_errors(fuzz_stack: FuzzStack) -> None:
    async with httpx.AsyncClient(base_url=fuzz_stack.url) as http:
        spec = (await http.get("/openapi.json")).json()
    linked = {
        (method, path): sorted(response["links"])
        for path, item in spec["paths"].items()
        for method, op in item.items()
        for response in op["responses"].values()
        if "links" in response
    }
    assert linked[("post", "/orders")] == ["CancelOrder", "GetOrder", "PayOrder"]
    assert "GetAfterSale" in linked[("post", "/supplier-orders/{id}/after-sales")]
    for role in ("customer", "admin"):
        calls = await asyncio.to_thread(
            _stateful, fuzz_stack.url, fuzz_stack.tokens[role], 2 * EXAMPLES
        )
        assert sum(calls.values()) > 0, role
