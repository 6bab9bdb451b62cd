"""The end of an SSM Automation runbook that outlived the runner's wait, from its EventBridge status-change event
(`EC2 Automation Execution Status-change Notification`, routed to the runner by template.yaml).

The event names the execution, not the action: the action is found by the execution's `cordon:action` tag
(`responders.ssm` tags every execution it starts), and the execution is read again (GetAutomationExecution) for its
outputs and failure message, which the event does not carry. Then the audit record is settled through the same
claim as every change (`Executor.settle`):

- a `running` action becomes `applied` (the runbook succeeded) or `failed` (with the execution's failure message);
- an action rolled back while its paired runbook still ran stays `rolled_back`, or goes back to `applied` with the
  reason "rollback failed" when the paired runbook failed (as a rollback that fails at once does);
- an event for an execution Cordon did not start, one still under way (an intermediate status), or one whose
  record the runner already settled (it saw the end itself) changes nothing;
- a record still claimed by the runner that started the execution raises `ActionBusyError`: the runner Lambda's
  asynchronous retries deliver the event again once that runner has written its outcome.
"""

from __future__ import annotations

from typing import Any

from cordon.audit import AuditRecord, Status
from cordon.execute import Decision, Executor
from responders.aws import call
from responders.ssm import ACTION_TAG, APPLY, PHASE_TAG, ROLLBACK, get_execution

SOURCE = "aws.ssm"
DETAIL_TYPE = "EC2 Automation Execution Status-change Notification"


def is_status_change(event: dict[str, Any]) -> bool:
    return event.get("source") == SOURCE and event.get("detail-type") == DETAIL_TYPE


def complete(executor: Executor, ssm: Any, event: dict[str, Any]) -> AuditRecord | None:
    """Settle the audit record of the execution `event` reports; None when there is nothing to settle."""
    execution_id = str(event["detail"]["ExecutionId"])
    listed = call(ssm.list_tags_for_resource, ResourceType="Automation", ResourceId=execution_id)
    tags = {tag["Key"]: tag["Value"] for tag in listed.get("TagList", [])}
    action_id = tags.get(ACTION_TAG)
    if not action_id:
        return None  # not started by Cordon
    execution = get_execution(ssm, execution_id)
    if execution["phase"] == "running":
        return None  # an intermediate status: the end has its own event
    if tags.get(PHASE_TAG, APPLY) == ROLLBACK:
        return executor.settle(action_id, Status.ROLLED_BACK, lambda record: _rollback_end(record, execution))
    return executor.settle(action_id, Status.RUNNING, lambda record: _apply_end(record, execution))


def _apply_end(record: AuditRecord, execution: dict[str, Any]) -> tuple[Decision, dict[str, Any]]:
    after = {**record.after, "execution": execution}
    if execution["execution_id"] != (record.after.get("execution") or {}).get("execution_id"):
        return Decision(record.status, record.reason), record.after  # another execution of the same action
    if execution["phase"] == "succeeded":
        return Decision(Status.APPLIED, f"runbook execution {execution['execution_id']} ended after the wait"), after
    return Decision(Status.FAILED, _failure("runbook", execution)), after


def _rollback_end(record: AuditRecord, execution: dict[str, Any]) -> tuple[Decision, dict[str, Any]]:
    rollback = dict(record.after.get("after_rollback") or {})
    if execution["execution_id"] != (rollback.get("execution") or {}).get("execution_id"):
        return Decision(record.status, record.reason), record.after
    after = {**record.after, "after_rollback": {**rollback, "execution": execution}}
    if execution["phase"] == "succeeded":
        return Decision(Status.ROLLED_BACK, record.reason), after
    return Decision(Status.APPLIED, f"rollback failed: {_failure('paired runbook', execution)}"), after


def _failure(what: str, execution: dict[str, Any]) -> str:
    message = execution.get("failure_message") or "no failure message"
    return (
        f"{what} {execution['document']} execution {execution['execution_id']} ended {execution['status']}: {message}"
    )
