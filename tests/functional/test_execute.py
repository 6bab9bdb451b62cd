"""Executing playbooks against moto: guards, budgets, the kill switch, idempotency, approval, rollback,
failures, and cross-account containment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cordon.audit import MemoryAuditLog, Status
from cordon.execute import Executor, SessionFactory
from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.model import Mode, OnError
from cordon.playbooks.plan import plan_incident
from correlators.config import Config, GuardsConfig
from responders.catalog import builtin_responders

RESPONDERS = builtin_responders()
ACCOUNT = "123456789012"  # moto's own account: the caller
OTHER_ACCOUNT = "111122223333"

PLAYBOOK = """\
name: contain
mode: enforce
trigger: {rules: [r], min_severity: high}
steps:
  - name: deactivate-key
    responder: iam.deactivate-access-key
    target: "entities[?type=='access_key'].id"
  - name: deny-ml-data
    responder: iam.quarantine-principal
    target: "entities[?type=='principal'].id"
notify:
  - responder: notify.sns
    bind: {topic_arn: site.topic}
"""


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CORDON_KILL_SWITCH", raising=False)


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


class World:
    """A user with two keys, an SNS topic with an SQS inbox, and a runner over one playbook."""

    def __init__(self, session: boto3.session.Session, tmp_path: Path, account: str = ACCOUNT, **guards: Any):
        self.session = session
        self.iam = session.client("iam")
        self.iam.create_user(UserName="mallory")
        self.key = self.iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
        self.other_key = self.iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"]
        sns, sqs = session.client("sns"), session.client("sqs")
        self.topic = sns.create_topic(Name="alerts")["TopicArn"]
        self.inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=arn)
        self.sqs = sqs
        path = tmp_path / "playbook.yaml"
        path.write_text(PLAYBOOK)
        self.playbooks, _ = load_playbooks([path], RESPONDERS, {"r"})
        self.config = Config(guards=GuardsConfig(**guards), site={"topic": self.topic})
        self.audit = MemoryAuditLog()
        self.executor = Executor(
            self.config, self.audit, RESPONDERS, sessions=SessionFactory(None, "CordonResponderRole", session)
        )
        self.incident = {
            "id": "inc-1",
            "title": "stolen key",
            "rules": ["r"],
            "severity": "high",
            "first_seen": "2026-11-20T10:00:00+00:00",
            "last_seen": "2026-11-20T10:20:00+00:00",
            "entities": [
                {"type": "principal", "id": f"arn:aws:iam::{account}:user/mallory"},
                {"type": "access_key", "id": self.key},
                {"type": "account", "id": account},
            ],
            "signals": [],
            "actions": [],
        }

    def run(self) -> list[dict[str, Any]]:
        plans = plan_incident(self.incident, self.playbooks, RESPONDERS, self.config.site, "us-east-1")
        return self.executor.run(self.incident, plans)

    def key_status(self) -> dict[str, str]:
        keys = self.iam.list_access_keys(UserName="mallory")["AccessKeyMetadata"]
        return {k["AccessKeyId"]: k["Status"] for k in keys}

    def alerts(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]


def _statuses(actions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["step"], a["status"]) for a in actions]


def test_enforce_applies_only_the_named_key_and_notifies(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    actions = world.run()
    assert _statuses(actions) == [
        ("deactivate-key", "applied"),
        ("deny-ml-data", "applied"),
        ("notify:notify.sns", "applied"),
    ]
    assert world.key_status() == {world.key: "Inactive", world.other_key: "Active"}
    assert world.iam.list_user_policies(UserName="mallory")["PolicyNames"] == ["cordon-quarantine"]
    [alert] = world.alerts()
    assert alert["id"] == "inc-1"


def test_replaying_the_same_incident_applies_nothing_twice(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    first = world.run()
    second = world.run()
    assert second == first  # the same audit records, not new attempts
    assert len(world.audit.records()) == 3
    assert world.audit.applied_count(incident_id="inc-1") == 2


def test_a_protected_principal_is_denied_with_the_reason_and_the_soc_is_told(aws, tmp_path) -> None:
    world = World(aws, tmp_path, protected_principals=["arn:aws:iam::*:user/mallory"])
    actions = world.run()
    assert _statuses(actions) == [
        ("deactivate-key", "denied"),
        ("deny-ml-data", "denied"),
        ("notify:notify.sns", "applied"),
    ]
    assert actions[0]["reason"] == (
        f"arn:aws:iam::{ACCOUNT}:user/mallory is protected by guards.protected_principals (arn:aws:iam::*:user/mallory)"
    )
    assert world.key_status() == {world.key: "Active", world.other_key: "Active"}
    [alert] = world.alerts()
    assert [a["status"] for a in alert["actions"]] == ["denied", "denied"]


def test_a_principal_tagged_protected_is_denied(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    world.iam.tag_user(UserName="mallory", Tags=[{"Key": "cordon:protected", "Value": "true"}])
    actions = world.run()
    assert actions[0]["reason"] == f"arn:aws:iam::{ACCOUNT}:user/mallory is tagged cordon:protected=true"
    assert _statuses(actions)[:2] == [("deactivate-key", "denied"), ("deny-ml-data", "denied")]
    assert world.key_status()[world.key] == "Active"


def test_cordons_own_roles_and_service_linked_roles_are_never_touched() -> None:
    from cordon.playbooks.guards import protected_reason

    guards = GuardsConfig()
    assert "Cordon's own roles" in protected_reason("arn:aws:iam::1:role/cordon-responder", guards)
    assert "service-linked" in protected_reason("arn:aws:iam::1:role/aws-service-role/x.amazonaws.com/R", guards)
    assert protected_reason("arn:aws:iam::1:role/ml-training-role", guards) is None
    # in every partition: a stack in China or GovCloud must not lock itself out either
    for partition in ("aws-cn", "aws-us-gov"):
        assert "Cordon's own roles" in protected_reason(f"arn:{partition}:iam::1:role/CordonRunnerRole", guards)


def test_an_exhausted_budget_skips_the_remaining_actions_with_the_reason(aws, tmp_path) -> None:
    world = World(aws, tmp_path, max_actions_per_incident=1)
    actions = world.run()
    assert _statuses(actions) == [
        ("deactivate-key", "applied"),
        ("deny-ml-data", "skipped"),
        ("notify:notify.sns", "applied"),
    ]
    assert actions[1]["reason"] == "action budget exhausted: 1 per incident"
    assert world.iam.list_user_policies(UserName="mallory")["PolicyNames"] == []


def test_the_hourly_budget_counts_across_incidents(aws, tmp_path) -> None:
    world = World(aws, tmp_path, max_actions_per_hour=1)
    world.run()
    world.incident = {**world.incident, "id": "inc-2"}
    actions = world.run()
    assert actions[0]["status"] == "skipped"
    assert actions[0]["reason"] == "action budget exhausted: 1 per hour"


def test_the_kill_switch_applies_nothing(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CORDON_KILL_SWITCH", "1")
    world = World(aws, tmp_path)
    actions = world.run()
    assert _statuses(actions) == [
        ("deactivate-key", "skipped"),
        ("deny-ml-data", "skipped"),
        ("notify:notify.sns", "applied"),
    ]
    assert actions[0]["reason"] == "kill switch is on (CORDON_KILL_SWITCH): nothing is changed"
    assert world.key_status() == {world.key: "Active", world.other_key: "Active"}
    assert world.iam.list_user_policies(UserName="mallory")["PolicyNames"] == []


def test_the_config_kill_switch_applies_nothing(aws, tmp_path) -> None:
    world = World(aws, tmp_path, kill_switch=True)
    assert [a["status"] for a in world.run()][:2] == ["skipped", "skipped"]
    assert world.key_status()[world.key] == "Active"


def test_approval_mode_waits_and_approve_applies(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    world.playbooks = [world.playbooks[0].model_copy(update={"mode": Mode.APPROVAL})]
    actions = world.run()
    assert [a["status"] for a in actions][:2] == ["pending_approval", "pending_approval"]
    assert world.key_status()[world.key] == "Active"
    approved = world.executor.approve(actions[0]["id"])
    assert approved.status is Status.APPLIED
    assert world.key_status() == {world.key: "Inactive", world.other_key: "Active"}
    assert world.run()[0]["status"] == "applied"  # settled: replay does not ask again


def test_dry_run_reads_state_back_and_changes_nothing(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    world.playbooks = [world.playbooks[0].model_copy(update={"mode": Mode.DRY_RUN})]
    actions = world.run()
    record = world.audit.records()[0]
    assert record.status is Status.PLANNED
    assert record.before  # the current state, read with read-only calls
    assert actions[0]["current_state"] == record.before
    assert world.key_status()[world.key] == "Active"


def test_rollback_restores_the_previous_state(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    actions = world.run()
    world.executor.rollback(actions[0]["id"])
    world.executor.rollback(actions[1]["id"])
    assert world.key_status() == {world.key: "Active", world.other_key: "Active"}
    assert world.iam.list_user_policies(UserName="mallory")["PolicyNames"] == []
    assert [r.status for r in world.audit.records()][:2] == [Status.ROLLED_BACK, Status.ROLLED_BACK]


def test_a_failed_action_is_recorded_and_the_playbook_goes_on(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    world.iam.delete_access_key(UserName="mallory", AccessKeyId=world.key)  # gone before Cordon acts
    actions = world.run()
    assert actions[0]["status"] == "failed"
    assert actions[1]["status"] == "applied"


def test_on_error_stop_skips_the_playbooks_remaining_steps(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    world.iam.delete_access_key(UserName="mallory", AccessKeyId=world.key)
    playbook = world.playbooks[0]
    steps = [playbook.steps[0].model_copy(update={"on_error": OnError.STOP}), playbook.steps[1]]
    world.playbooks = [playbook.model_copy(update={"steps": steps})]
    actions = world.run()
    assert _statuses(actions)[:2] == [("deactivate-key", "failed"), ("deny-ml-data", "skipped")]
    assert actions[1]["reason"] == "an earlier step of this playbook failed (on_error: stop)"


def test_another_accounts_incident_is_contained_through_an_assumed_role(aws, tmp_path) -> None:
    # GIVEN the key lives in a member account, reached by assuming CordonResponderRole there
    sts = aws.client("sts")
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/CordonResponderRole", RoleSessionName="setup"
    )["Credentials"]
    member = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    world = World(member, tmp_path, account=OTHER_ACCOUNT)
    world.executor = Executor(
        world.config, world.audit, RESPONDERS, sessions=SessionFactory(None, "CordonResponderRole", aws)
    )
    # WHEN the caller's account runs the playbook
    actions = world.run()
    # THEN the member account's key is the one deactivated
    assert actions[0]["status"] == "applied"
    assert world.key_status()[world.key] == "Inactive"


def test_the_ssm_kill_switch_applies_nothing_while_on(aws, tmp_path) -> None:
    world = World(aws, tmp_path, kill_switch_parameter="/cordon/kill-switch")
    aws.client("ssm").put_parameter(Name="/cordon/kill-switch", Value="on", Type="String")
    actions = world.run()
    assert actions[0]["status"] == "skipped"
    assert actions[0]["reason"] == "kill switch is on (SSM parameter /cordon/kill-switch): nothing is changed"
    assert world.key_status()[world.key] == "Active"
    aws.client("ssm").put_parameter(Name="/cordon/kill-switch", Value="off", Type="String", Overwrite=True)
    world.incident = {**world.incident, "id": "inc-2"}
    assert world.run()[0]["status"] == "applied"


def test_an_unreadable_ssm_kill_switch_counts_as_on(aws, tmp_path, monkeypatch) -> None:
    from responders.base import ResponderError

    world = World(aws, tmp_path, kill_switch_parameter="/cordon/kill-switch")

    def denied(self: SessionFactory, name: str) -> str:
        raise ResponderError("get_parameter: AccessDeniedException", code="AccessDeniedException")

    monkeypatch.setattr(SessionFactory, "parameter", denied)
    actions = world.run()
    assert actions[0]["status"] == "skipped"
    assert actions[0]["reason"].startswith("kill switch parameter /cordon/kill-switch unreadable")
    assert world.key_status()[world.key] == "Active"


def test_member_account_sessions_are_reused_and_re_assumed_before_their_credentials_expire(aws) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime.now(UTC)]
    sessions = SessionFactory(None, "CordonResponderRole", aws, clock=lambda: now[0])
    first = sessions.session(OTHER_ACCOUNT, "us-east-1")
    assert sessions.session(OTHER_ACCOUNT, "us-east-1") is first
    assert sessions.assumed_count == 1
    expiry = sessions._assumed[(OTHER_ACCOUNT, "us-east-1")][1]
    now[0] = expiry - timedelta(minutes=4)  # inside the refresh margin of 5 minutes
    assert sessions.session(OTHER_ACCOUNT, "us-east-1") is not first
    assert sessions.assumed_count == 2


def test_the_role_to_assume_is_in_the_regions_partition(aws) -> None:
    from cordon.execute import role_arn

    sessions = SessionFactory(None, "CordonResponderRole", aws)
    assert role_arn(sessions.partition("cn-north-1"), "111122223333", "R") == "arn:aws-cn:iam::111122223333:role/R"
    assert role_arn(sessions.partition("us-gov-west-1"), "1", "R") == "arn:aws-us-gov:iam::1:role/R"
    assert role_arn(sessions.partition("eu-west-1"), "1", "R") == "arn:aws:iam::1:role/R"
