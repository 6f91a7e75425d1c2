"""What one unit of work costs the server, from the usage its metrics and /proc recorded; and
what one lifecycle costs in Temporal Cloud billable actions and state transitions, from its
recorded histories."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

from bench.server import Usage

# Persistence operations that write a workflow's state (each is one database transaction).
EXECUTION_WRITES = (
    "CreateWorkflowExecution",
    "UpdateWorkflowExecution",
    "ConflictResolveWorkflowExecution",
    "SetWorkflowExecution",
)


def per_unit(u: Usage, n: int) -> dict[str, float]:
    n = max(n, 1)
    return {
        "server_cpu_ms": 1000 * u.cpu_s / n,
        "persistence_requests": u.persistence_total / n,
        "execution_writes": sum(u.persistence[k] for k in EXECUTION_WRITES) / n,
        "visibility_requests": sum(u.visibility.values()) / n,
        "frontend_requests": sum(u.api.values()) / n,
    }


def top(c: Counter[str], n: int, k: int = 8) -> str:
    return ", ".join(f"{op} {v / max(n, 1):.1f}" for op, v in c.most_common(k))


# --- Temporal Cloud billable actions, counted from a recorded history -------------------------
#
# One action per (Temporal Cloud "Actions" page; what a history shows of it):
#   starts            WorkflowExecutionStarted: a client start, update-with-start's start, a
#                     child's start (counted once, in the child's own history), continue-as-new
#   signals           WorkflowExecutionSignaled
#   updates           WorkflowExecutionUpdateAccepted (update-with-start: its start and its update)
#   timers            TimerStarted (a cancelled timer was still started)
#   activities        ActivityTaskStarted, one per attempt (the event carries the last attempt)
#   local_activities  MarkerRecorded "core_local_activity": one per local activity marker
#   upserts           UpsertWorkflowSearchAttributes (a workflow.patched id writes one for
#                     TemporalChangeVersion, counted here too) and WorkflowPropertiesModified
# Children are listed (`children`) but are not added again: a child's start is its own
# history's WorkflowExecutionStarted. Not in histories, so not counted: queries, rejected
# updates, heartbeats, workflow-task heartbeats of long local activities, export.
# Patch markers ("core_patch") are not counted as actions.
#
# State transitions: the server's own count of a workflow's mutable-state transitions (each
# one a persisted update of the execution), DescribeWorkflowExecution's
# workflow_execution_info.state_transition_count, summed over the lifecycle's workflows.

# Marker names the Python SDK's core writes: a local activity's result, a workflow.patched id.
LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"

BILLABLE = (
    "starts",
    "signals",
    "updates",
    "timers",
    "activities",
    "local_activities",
    "upserts",
)


def actions(events: Sequence[HistoryEvent]) -> dict[str, int]:
    """Billable actions of one history, by kind (BILLABLE) and in total (`billable_actions`)."""
    out = dict.fromkeys(BILLABLE, 0)
    for e in events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            out["starts"] += 1
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            out["signals"] += 1
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            out["updates"] += 1
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            out["timers"] += 1
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            out["activities"] += max(e.activity_task_started_event_attributes.attempt, 1)
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            if e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                out["local_activities"] += 1
        elif t in (
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        ):
            out["upserts"] += 1
    return {**{f"action_{k}": v for k, v in out.items()}, "billable_actions": sum(out.values())}


def state_transitions(desc: DescribeWorkflowExecutionResponse) -> int:
    return int(desc.workflow_execution_info.state_transition_count)


def cost_per_lifecycle(total: dict[str, int]) -> dict[str, Any]:
    """The JSON's `cost_per_lifecycle`, from the lifecycle_total row of the history breakdown."""
    return {
        "billable_actions": total.get("billable_actions", 0),
        "by_kind": {k: total.get(f"action_{k}", 0) for k in BILLABLE},
        "children": total.get("children", 0),
        "state_transitions": total.get("state_transitions", 0),
        "workflow_tasks": total.get("workflow_tasks", 0),
        "events": total.get("events", 0),
    }
