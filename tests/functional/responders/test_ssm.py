"""ssm.start-automation through the executor, against moto for everything moto has (STS, IAM, the audit flow).

moto 5.2 implements no SSM Automation call: StartAutomationExecution and GetAutomationExecution raise
NotImplementedError, and ListTagsForResource refuses the `Automation` resource type
(`test_moto_lacks_automation_executions` fails the day that changes). So the SSM client is a botocore Stubber that
checks every request exactly (document, parameters with the automation role, idempotency token, tags) and answers
as SSM documents it; an SSM call the test did not expect fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cordon import automation
from cordon.audit import MemoryAuditLog, Status
from cordon.execute import ActionBusyError, Executor, SessionFactory
from cordon.playbooks.model import Mode, OnError
from cordon.playbooks.plan import PlannedAction
from correlators.config import Config, ExecutionConfig, GuardsConfig
from responders.base import ActionContext, ResponderError, Target
from responders.catalog import builtin_responders
from responders.ssm import StartAutomation, StartAutomationParams, client_token, poll_delays

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SocAutomationRole"
BUCKET_ARN = "arn:aws:s3:::acme-fraud-training"
EXECUTION = "4a7c2d51-0f3e-4b6a-9d3c-1e2f3a4b5c6d"
ROLLBACK_EXECUTION = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CONTAIN = {
    "document_name": "AWSSupport-ContainS3Resource",
    "target_parameter": "BucketName",
    "parameters": {"Action": "Contain", "DryRun": "False"},
    "rollback_document": "AWSSupport-ContainS3Resource",
    "rollback_target_parameter": "BucketName",
    "rollback_parameters": {"Action": "Restore", "DryRun": "False"},
}
INCIDENT = {
    "id": "inc-00000000000000aa",
    "title": "ML asset bucket turned public, then read by a stranger",
    "rules": ["ml_asset_bucket_public_then_new_reader"],
    "severity": "high",
    "first_seen": "2026-11-20T10:00:00+00:00",
    "last_seen": "2026-11-20T10:20:00+00:00",
    "entities": [{"type": "bucket", "id": BUCKET_ARN}, {"type": "account", "id": ACCOUNT}],
    "signals": [],
    "actions": [],
}


class FakeTime:
    """The responder's clock and sleep: waiting costs no wall time, and the test sees every pause."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(StartAutomation, "clock", staticmethod(fake.clock))
    monkeypatch.setattr(StartAutomation, "sleep", staticmethod(fake.sleep))
    return fake


@pytest.fixture
def ssm(aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """Every action's `ctx.client("ssm")` is this one stubbed client; other services go to moto."""
    stubbed = aws.client("ssm")
    original = ActionContext.client

    def client(self: ActionContext, service: str, region: str | None = None) -> Any:
        return stubbed if service == "ssm" else original(self, service, region)

    monkeypatch.setattr(ActionContext, "client", client)
    with Stubber(stubbed) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _executor(aws: boto3.session.Session, wait: str = "1m", **guards: Any) -> Executor:
    config = Config(
        execution=ExecutionConfig(automation_role_arn=ROLE, automation_wait=wait),
        guards=GuardsConfig(**guards),
    )
    sessions = SessionFactory(None, "CordonResponderRole", base=aws)
    return Executor(config, MemoryAuditLog(), builtin_responders(), sessions=sessions)


def _plan(params: dict[str, Any], key: str = "contain") -> PlannedAction:
    return PlannedAction(
        playbook="contain-public-ml-bucket",
        step="contain-bucket",
        responder="ssm.start-automation",
        target=Target(type="bucket", id=BUCKET_ARN, account=ACCOUNT, region="us-east-1"),
        params=params,
        mode=Mode.ENFORCE,
        on_error=OnError.CONTINUE,
        key=f"{INCIDENT['id']}|{key}",
    )


def _run(executor: Executor, params: dict[str, Any]) -> Any:
    [action] = executor.run(dict(INCIDENT), [_plan(params)])
    return executor._audit.get(action["id"])


def _expect_start(stubber: Stubber, action_id: str, execution_id: str, phase: str = "apply") -> None:
    action = "Restore" if phase == "rollback" else "Contain"
    stubber.add_response(
        "start_automation_execution",
        {"AutomationExecutionId": execution_id},
        {
            "DocumentName": "AWSSupport-ContainS3Resource",
            "Parameters": {
                "Action": [action],
                "DryRun": ["False"],
                "BucketName": ["acme-fraud-training"],  # the bucket's name, not its ARN
                "AutomationAssumeRole": [ROLE],
            },
            "ClientToken": client_token(action_id, phase),
            "Tags": [{"Key": "cordon:action", "Value": action_id}, {"Key": "cordon:phase", "Value": phase}],
        },
    )


def _expect_status(
    stubber: Stubber, execution_id: str, status: str, *, outputs: dict[str, list[str]] | None = None, **more: Any
) -> None:
    execution = {
        "AutomationExecutionId": execution_id,
        "DocumentName": "AWSSupport-ContainS3Resource",
        "AutomationExecutionStatus": status,
        "ExecutionStartTime": datetime(2026, 11, 20, 10, 21, tzinfo=UTC),
        "Outputs": outputs or {},
        **more,
    }
    stubber.add_response(
        "get_automation_execution", {"AutomationExecution": execution}, {"AutomationExecutionId": execution_id}
    )


def _action_id(executor: Executor, key: str = "contain") -> str:
    from cordon.audit import action_id

    return action_id(f"{INCIDENT['id']}|{key}")


def test_moto_lacks_automation_executions(aws: boto3.session.Session) -> None:
    client = aws.client("ssm")
    with pytest.raises(NotImplementedError):
        client.start_automation_execution(DocumentName="AWSSupport-ContainS3Resource")
    with pytest.raises(client.exceptions.InvalidResourceType):
        client.list_tags_for_resource(ResourceType="Automation", ResourceId=EXECUTION)


def test_a_runbook_that_succeeds_within_the_budget_is_applied_with_its_outputs(
    aws: Any, ssm: Stubber, fake_time: FakeTime
) -> None:
    # GIVEN the runbook runs for one poll, then succeeds
    executor = _executor(aws)
    _expect_start(ssm, _action_id(executor), EXECUTION)
    _expect_status(ssm, EXECUTION, "InProgress")
    _expect_status(ssm, EXECUTION, "Success", outputs={"ContainS3Resource.Output": ["bucket contained"]})
    # WHEN the step runs
    record = _run(executor, CONTAIN)
    # THEN it is applied, and the audit keeps the execution id, status and outputs
    assert record.status is Status.APPLIED, record.reason
    execution = record.after["execution"]
    assert (execution["execution_id"], execution["status"]) == (EXECUTION, "Success")
    assert execution["outputs"] == {"ContainS3Resource.Output": ["bucket contained"]}
    assert record.before["execution"] is None and record.before["document"] == "AWSSupport-ContainS3Resource"
    assert fake_time.slept == [2.0]  # one pause, the first of the backoff


def test_a_failed_runbook_is_audited_failed_with_its_failure_message(
    aws: Any, ssm: Stubber, fake_time: FakeTime
) -> None:
    executor = _executor(aws)
    _expect_start(ssm, _action_id(executor), EXECUTION)
    _expect_status(
        ssm, EXECUTION, "Failed", FailureMessage="Step fails when it is Contain: AccessDenied on PutBucketPolicy"
    )
    record = _run(executor, CONTAIN)
    assert record.status is Status.FAILED
    assert record.reason == (
        f"runbook AWSSupport-ContainS3Resource execution {EXECUTION} ended Failed:"
        " Step fails when it is Contain: AccessDenied on PutBucketPolicy"
    )
    assert record.after["execution"]["status"] == "Failed"
    assert record.applied_at is None  # nothing counts against the budgets


def test_a_runbook_still_running_at_the_budget_end_is_recorded_running_and_its_event_settles_it(
    aws: Any, ssm: Stubber, fake_time: FakeTime
) -> None:
    # GIVEN a 10 s budget and a runbook that does not end within it
    executor = _executor(aws, wait="10s")
    action = _action_id(executor)
    _expect_start(ssm, action, EXECUTION)
    for _ in range(5):  # polls at 0, 2, 5, 9.5 and 10 s (the backoff, cut at the budget)
        _expect_status(ssm, EXECUTION, "InProgress")
    # WHEN the step runs
    record = _run(executor, CONTAIN)
    # THEN it is recorded running, not applied and not failed, and counts as a change
    assert record.status is Status.RUNNING
    assert record.reason == "started and still running when the wait ended: its completion event settles this record"
    assert record.after["execution"]["phase"] == "running"
    assert fake_time.now == 10.0 and fake_time.slept == [2.0, 3.0, 4.5, 0.5]
    assert executor._audit.applied_count(incident_id=INCIDENT["id"]) == 1
    # WHEN its status-change event arrives (the runner finds the action by the execution's tag)
    event = _status_event(EXECUTION, "Success")
    _expect_tags(ssm, EXECUTION, action, "apply")
    _expect_status(ssm, EXECUTION, "Success", outputs={"ContainS3Resource.Output": ["bucket contained"]})
    settled = automation.complete(executor, _ssm_client(ssm), event)
    # THEN the record is applied, with the outputs read from the execution
    assert settled is not None and settled.status is Status.APPLIED
    assert settled.after["execution"]["outputs"] == {"ContainS3Resource.Output": ["bucket contained"]}
    assert settled.applied_at == record.applied_at
    # AND a second delivery of the event changes nothing
    _expect_tags(ssm, EXECUTION, action, "apply")
    _expect_status(ssm, EXECUTION, "Success")
    assert automation.complete(executor, _ssm_client(ssm), event) is None


def test_a_runbook_that_fails_after_the_wait_is_settled_failed(aws: Any, ssm: Stubber, fake_time: FakeTime) -> None:
    executor = _executor(aws, wait="1s")
    action = _action_id(executor)
    _expect_start(ssm, action, EXECUTION)
    _expect_status(ssm, EXECUTION, "InProgress")
    _expect_status(ssm, EXECUTION, "InProgress")
    assert _run(executor, CONTAIN).status is Status.RUNNING
    _expect_tags(ssm, EXECUTION, action, "apply")
    _expect_status(ssm, EXECUTION, "TimedOut", FailureMessage="Step timed out")
    settled = automation.complete(executor, _ssm_client(ssm), _status_event(EXECUTION, "TimedOut"))
    assert settled is not None and settled.status is Status.FAILED
    assert settled.reason == (
        f"runbook AWSSupport-ContainS3Resource execution {EXECUTION} ended TimedOut: Step timed out"
    )


def test_an_event_for_an_action_still_claimed_is_retried_later(aws: Any, ssm: Stubber) -> None:
    # GIVEN the runner that started the execution still holds its claim (it is waiting for it)
    executor = _executor(aws)
    audit = executor._audit
    plan = _plan(CONTAIN)
    from cordon.audit import AuditRecord, action_id

    now = datetime.now(UTC)
    record = AuditRecord(
        id=action_id(plan.key),
        key=plan.key,
        incident_id=INCIDENT["id"],
        playbook=plan.playbook,
        step=plan.step,
        responder=plan.responder,
        target={"id": BUCKET_ARN},
        params=CONTAIN,
        mode="enforce",
        status=Status.PLANNED,
        created_at=now,
        updated_at=now,
    )
    assert audit.claim(plan.key, record).acquired
    # WHEN the end event comes THEN it raises, so that Lambda delivers it again once the claim is settled
    _expect_tags(ssm, EXECUTION, record.id, "apply")
    _expect_status(ssm, EXECUTION, "Success")
    with pytest.raises(ActionBusyError, match="is in progress"):
        automation.complete(executor, _ssm_client(ssm), _status_event(EXECUTION, "Success"))


def test_an_execution_cordon_did_not_start_is_ignored(aws: Any, ssm: Stubber) -> None:
    ssm.add_response(
        "list_tags_for_resource",
        {"TagList": [{"Key": "team", "Value": "platform"}]},
        {"ResourceType": "Automation", "ResourceId": EXECUTION},
    )
    assert automation.complete(_executor(aws), _ssm_client(ssm), _status_event(EXECUTION, "Success")) is None


def test_rollback_runs_the_paired_runbook(aws: Any, ssm: Stubber, fake_time: FakeTime) -> None:
    # GIVEN the containment runbook succeeded
    executor = _executor(aws)
    action = _action_id(executor)
    _expect_start(ssm, action, EXECUTION)
    _expect_status(ssm, EXECUTION, "Success")
    assert _run(executor, CONTAIN).status is Status.APPLIED
    # WHEN it is rolled back
    _expect_status(ssm, EXECUTION, "Success")  # ended: nothing to cancel
    _expect_start(ssm, action, ROLLBACK_EXECUTION, phase="rollback")
    _expect_status(ssm, ROLLBACK_EXECUTION, "Success", outputs={"Restore.Output": ["policy restored"]})
    rolled = executor.rollback(action)
    # THEN the paired runbook ran on the same bucket, under the same role, and the audit keeps it
    assert rolled.status is Status.ROLLED_BACK
    undone = rolled.after["after_rollback"]
    assert undone["cancelled"] is None
    assert (undone["execution"]["execution_id"], undone["execution"]["outputs"]) == (
        ROLLBACK_EXECUTION,
        {"Restore.Output": ["policy restored"]},
    )


def test_rollback_of_a_running_execution_cancels_it_first(aws: Any, ssm: Stubber, fake_time: FakeTime) -> None:
    executor = _executor(aws, wait="1s")
    action = _action_id(executor)
    _expect_start(ssm, action, EXECUTION)
    _expect_status(ssm, EXECUTION, "InProgress")
    _expect_status(ssm, EXECUTION, "InProgress")
    assert _run(executor, CONTAIN).status is Status.RUNNING
    _expect_status(ssm, EXECUTION, "InProgress")
    ssm.add_response("stop_automation_execution", {}, {"AutomationExecutionId": EXECUTION, "Type": "Cancel"})
    _expect_start(ssm, action, ROLLBACK_EXECUTION, phase="rollback")
    _expect_status(ssm, ROLLBACK_EXECUTION, "Success")
    rolled = executor.rollback(action)
    assert rolled.status is Status.ROLLED_BACK
    assert rolled.after["after_rollback"]["cancelled"] == EXECUTION


def test_without_a_paired_runbook_an_ended_execution_cannot_be_rolled_back(
    aws: Any, ssm: Stubber, fake_time: FakeTime
) -> None:
    params = {k: v for k, v in CONTAIN.items() if not k.startswith("rollback")}
    executor = _executor(aws)
    action = _action_id(executor)
    _expect_start(ssm, action, EXECUTION)
    _expect_status(ssm, EXECUTION, "Success")
    assert _run(executor, params).status is Status.APPLIED
    _expect_status(ssm, EXECUTION, "Success")
    with pytest.raises(ResponderError, match="names no rollback_document"):
        executor.rollback(action)
    assert executor._audit.get(action).status is Status.APPLIED


def test_a_runbook_parameter_naming_a_protected_role_never_reaches_ssm(aws: Any, ssm: Stubber) -> None:
    # GIVEN a runbook step whose bound parameter names a break-glass role (nested in `parameters`)
    executor = _executor(aws, protected_principals=[f"arn:aws:iam::{ACCOUNT}:role/break-glass-*"])
    params = {
        "document_name": "AWS-DetachIAMPolicyFromRole",
        "parameters": {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/break-glass-admin"},
    }
    # WHEN it runs (the Stubber has no response queued: any SSM call would fail the test)
    record = _run(executor, params)
    # THEN it is denied by the guard, before any AWS call
    assert record.status is Status.DENIED
    assert record.reason == (
        f"arn:aws:iam::{ACCOUNT}:role/break-glass-admin is protected by guards.protected_principals"
        f" (arn:aws:iam::{ACCOUNT}:role/break-glass-*)"
    )


def test_a_role_tagged_protected_in_iam_never_reaches_ssm(aws: Any, ssm: Stubber) -> None:
    aws.client("iam").create_role(
        RoleName="ml-pipeline",
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": "cordon:protected", "Value": "true"}],
    )
    params = {
        "document_name": "AWS-DetachIAMPolicyFromRole",
        "parameters": {"RoleArn": [f"arn:aws:iam::{ACCOUNT}:role/ml-pipeline"]},
    }
    record = _run(_executor(aws), params)
    assert record.status is Status.DENIED
    assert record.reason == f"arn:aws:iam::{ACCOUNT}:role/ml-pipeline is tagged cordon:protected=true"


def test_no_automation_role_or_another_account_refuses_before_any_call(aws: Any, ssm: Stubber) -> None:
    params = StartAutomationParams.model_validate(CONTAIN)
    target = Target(type="bucket", id=BUCKET_ARN, account="210987654321")
    ctx = ActionContext(session=aws, incident=INCIDENT, execution=ExecutionConfig())
    with pytest.raises(ResponderError, match=r"execution\.automation_role_arn is not set"):
        StartAutomation().apply(ctx, target, params, {})
    ctx = ActionContext(session=aws, incident=INCIDENT, execution=ExecutionConfig(automation_role_arn=ROLE))
    with pytest.raises(ResponderError, match=f"runbooks run only in the automation role's account {ACCOUNT}"):
        StartAutomation().apply(ctx, target, params, {})


def test_the_backoff_grows_to_its_cap() -> None:
    delays = poll_delays()
    assert [round(next(delays), 3) for _ in range(8)] == [2.0, 3.0, 4.5, 6.75, 10.125, 15.0, 15.0, 15.0]


# --- helpers for the event path -----------------------------------------------------------------------------------
def _ssm_client(stubber: Stubber) -> Any:
    return stubber.client


def _expect_tags(stubber: Stubber, execution_id: str, action_id: str, phase: str) -> None:
    stubber.add_response(
        "list_tags_for_resource",
        {"TagList": [{"Key": "cordon:action", "Value": action_id}, {"Key": "cordon:phase", "Value": phase}]},
        {"ResourceType": "Automation", "ResourceId": execution_id},
    )


def _status_event(execution_id: str, status: str) -> dict[str, Any]:
    """The event as the SSM documentation shows it ("EC2 Automation Execution Status-change Notification")."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Automation Execution Status-change Notification",
        "source": "aws.ssm",
        "account": ACCOUNT,
        "time": "2026-11-20T10:25:35Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ssm:us-east-1:{ACCOUNT}:automation-execution/{execution_id}"],
        "detail": {
            "ExecutedBy": f"arn:aws:sts::{ACCOUNT}:assumed-role/cordon-runner/session",
            "Definition": "AWSSupport-ContainS3Resource",
            "DefinitionVersion": 1.0,
            "ExecutionId": execution_id,
            "Status": status,
            "StartTime": 1795249260000,
            "EndTime": 1795249535000,
            "Time": 275000.0,
        },
    }
