"""starter/event_loop.py: the worker's main runs on uvloop unless told otherwise."""

import asyncio

import pytest
import uvloop

from starter import event_loop


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_runs_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERS_EVENT_LOOP", raising=False)
    assert event_loop.run(_loop_type()) is uvloop.Loop


def test_asyncio_setting_keeps_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_EVENT_LOOP", "asyncio")
    loop_type = event_loop.run(_loop_type())
    assert loop_type is not uvloop.Loop
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_the_result_and_errors_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERS_EVENT_LOOP", raising=False)

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        event_loop.run(fails())
