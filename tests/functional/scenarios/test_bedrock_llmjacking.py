"""examples/attacks/bedrock-llmjacking: the real Stratus Red Team detonation of aws.impact.bedrock-invoke-model,
replayed with --execute against moto, raises the LLM-jacking incident with no GuardDuty finding and contains it
in the account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from .attack_replay import assert_expected_incidents, audit, replay_execute, scenario

ACCOUNT = "494659789341"  # the account of the Stratus records, as Datadog anonymised it
ROLE = "test-role"


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOTO_ACCOUNT_ID": ACCOUNT,  # Cordon acts in the incident's account with its own credentials
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CORDON_KILL_SWITCH", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        trust = {"Version": "2012-10-17", "Statement": []}
        session.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        yield session


def test_stratus_llmjacking_is_raised_from_cloudtrail_alone_and_contained(
    account: boto3.session.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the role the Stratus records name, and no GuardDuty finding anywhere in the events
    events = (Path(__file__).resolve().parents[3] / "examples/attacks/bedrock-llmjacking/events.jsonl").read_text()
    assert "guardduty" not in events.lower()
    # WHEN the scenario is replayed with --execute
    state = tmp_path / "state.db"
    output = replay_execute(capsys, "bedrock-llmjacking", state)
    # THEN the incident scenario.yaml expects is raised, on the role
    [incident] = assert_expected_incidents(output, scenario("bedrock-llmjacking")["expect"])
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    assert {"type": "principal", "id": role_arn} in incident["entities"]
    actions = {a["step"]: a["status"] for a in incident["actions"]}
    # (no site config: no notification channel)
    assert actions == {"deny-model-invocation": "applied", "revoke-sessions-on-approval": "pending_approval"}
    # AND the account says so: the role carries the invocation deny, and its sessions are not revoked yet
    iam = account.client("iam")
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["cordon-deny-model-invocation"]
    document = iam.get_role_policy(RoleName=ROLE, PolicyName="cordon-deny-model-invocation")["PolicyDocument"]
    denied = {action for statement in document["Statement"] for action in statement["Action"]}
    assert {"bedrock:InvokeModel*", "bedrock:Converse*", "bedrock:PutUseCaseForModelAccess"} <= denied
    # AND the audit records the deny as applied, with the state before it (no policy) for rollback
    [deny] = [record for record in audit(capsys, state) if record["responder"] == "bedrock.deny-invocation"]
    assert deny["status"] == "applied"
    assert deny["target"]["id"] == role_arn
