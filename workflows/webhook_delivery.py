"""WebhookDeliveryWorkflow (`webhook-<supplier_order_id>`): a supplier order's webhook events,
delivered by Temporal, one at a time and in order (DESIGN.md §11, docs/ARCHITECTURE.md).

The outbox (starter/webhooks.py) makes `webhook_events` rows and signals this workflow
with signal-with-start; each delivery is queued once per key (the event id, or a fresh key
per redelivery). The head of the queue is sent by the `deliver_webhook` activity with the
retry policy of the workflow's input (exponential backoff from ORDERS_WEBHOOK_BACKOFF to
ORDERS_WEBHOOK_BACKOFF_MAX, for ORDERS_WEBHOOK_RETRY_FOR); the next event waits until it
is delivered or, when the window is over, given up. With nothing to do for `idle_s` the
workflow ends; the next signal starts a new one. Each supplier order has its own
workflow, so a slow or dead endpoint holds up only that supplier order's own events.
"""

import bisect
from collections import deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from domain.webhooks import (
        DeliverWebhookParams,
        WebhookDelivery,
        WebhookDeliveryInput,
    )
    from workflows.common import DB_RETRY, DB_TIMEOUT

MAX_SEEN = 1000  # delivery keys remembered for de-duplication (carried over continue-as-new)
CONTINUE_AS_NEW_AFTER = 2000  # history events
START_MARGIN = timedelta(seconds=15)  # resolving the host and the two database writes


@workflow.defn
class WebhookDeliveryWorkflow:
    @workflow.init
    def __init__(self, inp: WebhookDeliveryInput) -> None:
        self.queue: deque[WebhookDelivery] = deque(inp.queue)
        self.seen: list[str] = list(inp.seen)
        self._seen = set(self.seen)

    @workflow.signal
    def deliver(self, d: WebhookDelivery) -> None:
        """Queue a delivery, once per key, in log order among those not yet started."""
        if d.key in self._seen:
            return
        self._seen.add(d.key)
        self.seen.append(d.key)
        if len(self.seen) > MAX_SEEN:
            self._seen.discard(self.seen.pop(0))
        at = bisect.bisect_right([q.log_id for q in self.queue], d.log_id)
        self.queue.insert(at, d)

    @workflow.query
    def pending(self) -> list[str]:
        return [d.event_id for d in self.queue]

    @workflow.run
    async def run(self, inp: WebhookDeliveryInput) -> None:
        p = inp.policy
        policy = RetryPolicy(
            initial_interval=timedelta(seconds=p.backoff_s),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=max(p.backoff_max_s, p.backoff_s)),
        )
        while True:
            if not self.queue:
                try:
                    await workflow.wait_condition(
                        lambda: bool(self.queue), timeout=timedelta(seconds=p.idle_s)
                    )
                except TimeoutError:
                    if not self.queue:
                        break
            d = self.queue.popleft()
            try:
                await workflow.execute_activity_method(
                    WebhookActivities.deliver_webhook,
                    DeliverWebhookParams(
                        event_id=d.event_id, timeout_s=p.timeout_s, allow_private=p.allow_private
                    ),
                    schedule_to_close_timeout=timedelta(seconds=p.retry_for_s),
                    start_to_close_timeout=timedelta(seconds=p.timeout_s) + START_MARGIN,
                    retry_policy=policy,
                    summary=f"deliver {d.event_id}",
                )
            except ActivityError:
                # The retry window is over (or the event is gone): give up, go on.
                await workflow.execute_local_activity_method(
                    WebhookActivities.give_up_webhook,
                    d.event_id,
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=DB_RETRY,
                )
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= CONTINUE_AS_NEW_AFTER
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    inp.model_copy(update={"queue": list(self.queue), "seen": self.seen})
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
