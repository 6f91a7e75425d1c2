"""Log lines (starter.logs): one JSON object each, with the ids of what they are about."""

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from starter.api.request_context import RequestContext
from starter.logs import (
    ContextFilter,
    JsonFormatter,
    configure_logging,
    ids_from_path,
    ids_from_workflow_id,
    render,
)
from starter.logs import main as logs_main


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Records of every logger, formatted as in production, into a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging("test", "json", "DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        activity.logger.activity_info_on_message = True


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    text = buffer.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # every line is one JSON object


def test_ids_from_workflow_ids_and_routes() -> None:
    assert ids_from_workflow_id("order-1234") == {"order_no": "1234"}
    assert ids_from_workflow_id("order-1234-tea-house") == {
        "order_no": "1234",
        "supplier_order_id": "1234-tea-house",
    }
    assert ids_from_workflow_id("aftersale-77") == {"after_sale_id": "77"}
    assert ids_from_workflow_id("bench-xyz") == {}
    assert ids_from_path("/orders/{no}/pay", {"no": "12"}) == {"order_no": "12"}
    assert ids_from_path("/supplier-orders/{id}/reviews", {"id": "12-s1"}) == {
        "supplier_order_id": "12-s1",
        "order_no": "12",
    }
    assert ids_from_path("/supplier/orders/{id}", {"id": "12-ceramics-co"})["order_no"] == "12"
    assert ids_from_path("/after-sales/{id}/approve", {"id": "9"}) == {"after_sale_id": "9"}
    assert ids_from_path("/admin/customers/{id}", {"id": "alice"}) == {}


def test_a_line_is_one_json_object_with_time_level_logger_message_and_extras(
    lines: io.StringIO,
) -> None:
    log = logging.getLogger("orders.test")
    log.info("paid %s", "x\ny", extra={"amount": "12.50", "order_no": "42"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = parsed(lines)
    assert list(first)[:5] == ["time", "level", "logger", "message", "service"]
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "orders.test",
        "paid x\ny",
    )
    assert (first["service"], first["order_no"], first["amount"]) == ("test", "42", "12.50")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]
    assert "request_id" not in first and "workflow_id" not in first


def test_activity_lines_carry_the_workflow_and_order_ids(lines: io.StringIO) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id="order-555-tea-house",
        workflow_run_id="run-1",
        workflow_type="SupplierOrderWorkflow",
        activity_type="record_shipment",
        attempt=3,
    )

    def act() -> None:
        logging.getLogger("db.something").warning("a plain logger inside an activity")
        activity.logger.info("Temporal's activity logger")

    env.run(act)
    plain, temporal = parsed(lines)
    for line in (plain, temporal):
        assert line["workflow_id"] == "order-555-tea-house"
        assert line["order_no"] == "555" and line["supplier_order_id"] == "555-tea-house"
        assert line["run_id"] == "run-1" and line["workflow_type"] == "SupplierOrderWorkflow"
        assert line["activity_type"] == "record_shipment" and line["attempt"] == 3
        assert "temporal_activity" not in line
    # The ids are fields: Temporal's logger does not repeat them in the message.
    assert temporal["message"] == "Temporal's activity logger"


def test_render_makes_a_json_line_readable_and_leaves_other_lines_alone() -> None:
    record = logging.LogRecord("w", logging.WARNING, __file__, 1, "late %s", ("scan",), None)
    ContextFilter("worker").filter(record)
    record.order_no = "7"
    line = JsonFormatter().format(record)
    text = render(line)
    assert "WARNING" in text and "w: late scan" in text and "order_no=7" in text
    assert "{" not in text
    assert (
        render("time=2026 level=INFO msg=temporal server\n")
        == "time=2026 level=INFO msg=temporal server"
    )
    assert render('{"not": "ours"}') == '{"not": "ours"}'


async def test_api_requests_get_an_id_echoed_and_on_every_line(lines: io.StringIO) -> None:
    app = FastAPI()

    @app.get("/orders/{no}")
    async def order(no: str) -> dict[str, str]:
        logging.getLogger("starter.api.test").info("reading the order")
        return {"no": no}

    app.add_middleware(RequestContext)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        mine = await http.get("/orders/31", headers={"X-Request-ID": "req-abc.1"})
        fresh = await http.get("/orders/32")
        hostile = await http.get("/orders/33", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert mine.headers["X-Request-ID"] == "req-abc.1"
    generated = fresh.headers["X-Request-ID"]
    assert len(generated) == 32 and generated != hostile.headers["X-Request-ID"]
    assert "x" * 100 not in hostile.headers["X-Request-ID"]  # not echoed: a new id instead

    got = [line for line in parsed(lines) if line["logger"].startswith("starter.")]
    inside, access = got[0], got[1]
    assert inside["message"] == "reading the order"
    assert (inside["request_id"], inside["order_no"]) == ("req-abc.1", "31")
    assert access["logger"] == "starter.api.access" and access["request_id"] == "req-abc.1"
    assert access["order_no"] == "31" and access["route"] == "/orders/{no}"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/orders/31", 200)
    assert isinstance(access["duration_ms"], float)
    assert [line["request_id"] for line in got[2:4]] == [generated] * 2


def test_text_format_and_the_reader_for_people(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    text, as_json = io.StringIO(), io.StringIO()
    try:
        configure_logging("worker", "text", "info", stream=text)
        logging.getLogger("orders.test").info("shipped", extra={"order_no": "9"})
        logging.getLogger("orders.test").debug("not at INFO")
        configure_logging("worker", "json", "INFO", stream=as_json)
        logging.getLogger("orders.test").info("shipped", extra={"order_no": "9"})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        activity.logger.activity_info_on_message = True
    line = text.getvalue().strip()
    assert "\n" not in line and "INFO" in line and "orders.test: shipped" in line
    assert line.endswith("  [order_no=9]")  # the ids, not the service: one file per service
    # `python -m starter.logs FILE` prints a JSON log readably, the same way.
    log = tmp_path / "worker.log"
    log.write_text("=== 2026-12-03 10:00:00 python -m worker\n" + as_json.getvalue())
    assert logs_main([str(log)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "=== 2026-12-03 10:00:00 python -m worker"
    assert printed[1].split(" ", 1)[1] == line.split(" ", 1)[1]  # all but the clock's digits
