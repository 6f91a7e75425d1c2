"""Determinism guard: recorded histories must replay against the current workflow code.

A change that alters the commands a running workflow would issue fails here;
guard it with `workflow.patched(...)` instead of re-recording.
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_histories_cover_every_workflow() -> None:
    names = " ".join(p.stem for p in HISTORIES)
    for prefix in ("order_", "supplier_order_", "after_sale_", "webhook_delivery"):
        assert prefix in names, f"no recorded history for {prefix}*"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    workflow_id = path.stem
    history = WorkflowHistory.from_json(workflow_id, path.read_text())  # noqa: ASYNC240 (tiny file)
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        workflow_runner=workflow_runner(),
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
