"""What the workflows share: search attribute keys, activity options, refusals."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import DomainError

ORDER_NO = SearchAttributeKey.for_keyword("OrderNo")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
SUPPLIER_ID = SearchAttributeKey.for_keyword("SupplierId")
ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SEARCH_ATTRIBUTES = (ORDER_NO, CUSTOMER_ID, SUPPLIER_ID, ORDER_STATUS)

# Read-model writes are local activities: they run in the worker inside the
# workflow task, which saves the server the schedule/start/complete round trips
# of a regular activity. They retry until the database answers (a business
# refusal is non-retryable and surfaces at once); idempotency keys make every
# retry safe.
DB_TIMEOUT = timedelta(seconds=15)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# Calls to the payment provider are regular activities: slow or flaky I/O
# outside the process, visible as their own row in the UI, retried for as long
# as it takes (money owed must go back).
PROVIDER_TIMEOUT = timedelta(seconds=30)
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)


def refusal(err: DomainError) -> ApplicationError:
    """How a refused command leaves a workflow: the code travels as the error type."""
    return ApplicationError(err.message, err.details or None, type=err.code, non_retryable=True)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn domain errors (and activity refusals) into update failures.

    A plain exception escaping workflow code would fail the workflow task and
    retry forever; an ApplicationError fails just the update, and the caller sees
    the code and message.
    """
    try:
        yield
    except DomainError as err:
        raise refusal(err) from None
    except (ActivityError, ApplicationError) as err:
        cause = business_refusal(err)
        if cause is None:
            raise
        if cause is err:
            raise
        raise ApplicationError(
            cause.message, *cause.details, type=cause.type, non_retryable=True
        ) from None


def business_refusal(err: BaseException) -> ApplicationError | None:
    """The non-retryable ApplicationError behind a failed activity, if that is what it was.

    A local activity's refusal can surface either as the ApplicationError itself or
    wrapped in an ActivityError; both mean "the rule said no".
    """
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    return None


def until(at: datetime) -> timedelta:
    """Time left to `at` on the workflow clock, never negative."""
    return max(at - workflow.now(), timedelta(0))


def update_key(action: str) -> str:
    """Idempotency key of the current update: workflow id + update id.

    The API passes the client's Idempotency-Key as the update id, so a retried
    request is one update to Temporal and one change to the database.
    """
    info = workflow.current_update_info()
    suffix = info.id if info else workflow.uuid4().hex
    return f"{workflow.info().workflow_id}:{action}:{suffix}"
