"""What the API relies on from the workflows, checked on the dev server the API uses.

A refused placement must reach the submitter as an update failure whose type is
the refusal's code. (It once failed the whole run instead: a local activity's
ApplicationError arrives unwrapped, not as an ActivityError. The API still copes
with that shape, see starter.api.temporal.start_order.)
"""

import uuid

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from domain.messages import GetPlacement, OrderInput
from domain.models import OrderLine, SubmitOrder
from domain.policy import Policy
from tests.api.conftest import Stack
from workflows.order import OrderWorkflow


async def test_refused_placement_reaches_the_caller_with_its_code(stack: Stack) -> None:
    order_no = str(uuid.uuid4().int % 10**15)
    request = SubmitOrder(customer_id="nobody-at-all", lines=[OrderLine(sku="no-such-sku", qty=1)])
    op = WithStartWorkflowOperation(
        OrderWorkflow.run,
        OrderInput(order_no=order_no, request=request, policy=Policy()),
        id=f"order-{order_no}",
        task_queue=stack.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await stack.env.client.execute_update_with_start_workflow(
            OrderWorkflow.placement, GetPlacement(), start_workflow_operation=op
        )
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type in ("unknown_sku", "not_found"), (cause.type, cause.message)


async def test_refused_placement_for_stock_reaches_the_caller(stack: Stack) -> None:
    api = stack.api
    supplier = api.supplier()
    sku = await api.product(supplier, on_hand=1)
    customer = await api.customer()
    order_no = str(uuid.uuid4().int % 10**15)
    request = SubmitOrder(customer_id=customer.sub, lines=[OrderLine(sku=sku, qty=2)])
    op = WithStartWorkflowOperation(
        OrderWorkflow.run,
        OrderInput(order_no=order_no, request=request, policy=Policy()),
        id=f"order-{order_no}",
        task_queue=stack.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await stack.env.client.execute_update_with_start_workflow(
            OrderWorkflow.placement, GetPlacement(), start_workflow_operation=op
        )
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "insufficient_stock"
