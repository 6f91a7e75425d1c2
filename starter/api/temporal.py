"""The API's side of Temporal: a lazily connected client and guarded calls.

The client connects on first use, so the API starts (and serves reads) while
Temporal is down; calls that need it answer 503 `temporal_unavailable` until it
is back. Update refusals become the domain errors they stand for.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import ERRORS_BY_CODE, Conflict, DomainError, InvalidState
from domain.messages import GetPlacement, OrderInput, OrderResult, Placement
from domain.policy import Policy
from settings import Settings
from starter.api.errors import ApiError, TemporalUnavailable, from_rpc_error, from_update_failure
from worker import connect
from workflows.common import CUSTOMER_ID, ORDER_NO, ORDER_STATUS
from workflows.order import OrderWorkflow

T = TypeVar("T")
ClientFactory = Callable[[Settings], Awaitable[Client]]

CONNECT_TIMEOUT = 5.0
# An update waits for a worker to run its validator and handler. When no worker
# answers in this time the caller gets a 504 and retries with its Idempotency-Key
# (the key is the update id, so the retry attaches to the same update).
UPDATE_TIMEOUT = 30.0
# How long to wait for a refused order's outcome when the refusal itself was lost.
EXPLAIN_TIMEOUT = 5.0
# How long "workflow not found" is retried for an object the read model shows as live.
STARTING_GRACE = 5.0
# Live deadlines on a single-order read are a nicety: give up quickly.
QUERY_TIMEOUT = 1.5


async def default_client_factory(settings: Settings) -> Client:
    """The worker's connect: one place knows the address, namespace, TLS and API key."""
    return await connect(settings)


class TemporalGateway:
    def __init__(self, settings: Settings, factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self.factory = factory or default_client_factory
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> Client | None:
        return self._client

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        self.factory(self.settings), CONNECT_TIMEOUT
                    )
                except Exception as err:
                    raise TemporalUnavailable(
                        f"cannot reach Temporal at {self.settings.temporal_address}: "
                        f"{type(err).__name__}"
                    ) from err
            return self._client

    async def check(self) -> None:
        client = await self.client()
        try:
            await client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception as err:
            raise TemporalUnavailable(f"Temporal health check failed: {err}") from err


async def guarded(
    call: Callable[[], Awaitable[T]],
    gone: str,
    timeout: float = UPDATE_TIMEOUT,
    starting: bool = False,
) -> T:
    """Run a Temporal call; map refusals, a finished workflow and outages to HTTP errors.

    `gone` is the message when the workflow no longer runs (a 409: the object
    exists but no longer takes commands). `starting` says the read model already
    shows the workflow's object as live: a supplier order is marked paid in the
    database a moment before its workflow starts, so "not found" is retried for
    a few seconds before it means "gone".
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + (STARTING_GRACE if starting else 0.0)
    delay = 0.05
    while True:
        try:
            return await asyncio.wait_for(call(), timeout)
        except WorkflowUpdateFailedError as err:
            raise from_update_failure(err) from None
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise from_rpc_error(err) from None
            if loop.time() >= give_up:
                raise InvalidState(gone) from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise ApiError(
                504,
                "temporal_timeout",
                "the command was sent but not confirmed in time; "
                "retry with the same Idempotency-Key",
            ) from None
        except (DomainError, ApiError):
            raise
        except RuntimeError as err:
            # The SDK reports a lost connection as a RuntimeError from its core.
            raise TemporalUnavailable(str(err)) from err
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def _explain_refusal(client: Client, order_no: str) -> None:
    """Why a placement update failed without a typed refusal, from the run's outcome.

    Seen when the workflow refuses the placement and ends in the same workflow
    task: the server then reports the update as lost ("Workflow Update failed
    because the Workflow completed before the Update completed") instead of
    carrying the refusal. Raises the refusal if the outcome tells it.
    """
    handle = client.get_workflow_handle(order_workflow_id(order_no), result_type=OrderResult)
    try:
        result = await asyncio.wait_for(handle.result(), EXPLAIN_TIMEOUT)
    except WorkflowFailureError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.type in ERRORS_BY_CODE:
            raise ERRORS_BY_CODE[cause.type](cause.message) from None
        return
    except (TimeoutError, RPCError):
        return
    if isinstance(result, OrderResult) and result.status is None and result.rejected:
        raise PlacementRefused(result.rejected)


class PlacementRefused(Exception):
    """The order workflow refused placement, without a typed reason (see start_order)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def order_workflow_id(order_no: str) -> str:
    return f"order-{order_no}"


def supplier_order_workflow_id(supplier_order_id: str) -> str:
    return f"order-{supplier_order_id}"


def after_sale_workflow_id(after_sale_id: str) -> str:
    return f"aftersale-{after_sale_id}"


async def start_order(
    client: Client,
    task_queue: str,
    order_no: str,
    request: OrderInput,
    policy: Policy,
    summary: str,
    details: str,
) -> Placement:
    """Start the order workflow (or join it, for a retried submit) and wait for placement."""
    assert request.policy == policy
    op = WithStartWorkflowOperation(
        OrderWorkflow.run,
        request,
        id=order_workflow_id(order_no),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A finished order is never restarted under its number: a retry that comes
        # back after the order ended is told so instead of re-running placement.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(ORDER_NO, order_no),
                SearchAttributePair(CUSTOMER_ID, request.request.customer_id),
                SearchAttributePair(ORDER_STATUS, "PENDING_PAYMENT"),
            ]
        ),
        static_summary=summary,
        static_details=details,
    )

    async def place() -> Placement:
        try:
            return await client.execute_update_with_start_workflow(
                OrderWorkflow.placement,
                GetPlacement(),
                start_workflow_operation=op,
                id=f"placement-{order_no}",
            )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in ERRORS_BY_CODE:
                raise
            await _explain_refusal(client, order_no)
            raise

    try:
        placement = await guarded(place, gone=f"order {order_no} is no longer running")
    except WorkflowAlreadyStartedError:
        raise Conflict(f"order {order_no} already ran and is finished") from None
    if placement.plan.customer_id != request.request.customer_id:
        # Only a (practically impossible) order-number collision gets here: never
        # hand one customer another's order.
        raise Conflict(f"order number {order_no} is taken; submit again")
    return placement
