"""examples/attacks/ml-data-destruction and guardduty-attack-sequence, replayed with --execute against moto: the
role that batch-deletes training data and expires the model registry is denied on both buckets and its sessions
are revoked; the GuardDuty attack sequence naming its session joins that incident and adds its own containment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from responders.s3 import deny_sid

from .attack_replay import REPO, assert_expected_incidents, replay_execute, scenario

ACCOUNT = "111122223333"  # the scenario's account (examples/cordon.yaml)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/etl-role"
CONFIG = REPO / "examples" / "cordon.yaml"


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOTO_ACCOUNT_ID": ACCOUNT,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CORDON_KILL_SWITCH", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        for bucket in ("acme-fraud-training", "acme-model-registry"):
            session.client("s3").create_bucket(Bucket=bucket)
        trust = {"Version": "2012-10-17", "Statement": []}
        session.client("iam").create_role(RoleName="etl-role", AssumeRolePolicyDocument=json.dumps(trust))
        session.client("sns").create_topic(Name="cordon-alerts")
        yield session


def _denied_on(session: boto3.session.Session, bucket: str) -> bool:
    s3 = session.client("s3")
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError:
        return False
    return any(
        s.get("Sid") == deny_sid(ROLE_ARN) and s["Effect"] == "Deny" and s["Principal"] == {"AWS": ROLE_ARN}
        for s in policy["Statement"]
    )


def _inline_policies(session: boto3.session.Session) -> list[str]:
    return sorted(session.client("iam").list_role_policies(RoleName="etl-role")["PolicyNames"])


def test_ml_data_destruction_denies_the_role_on_both_buckets_and_revokes_its_sessions(
    account: boto3.session.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the scenario is replayed with --execute
    output = replay_execute(capsys, "ml-data-destruction", tmp_path / "state.db", CONFIG)
    # THEN one critical incident, raised by both destruction rules, contained by its playbook
    [incident] = assert_expected_incidents(output, scenario("ml-data-destruction")["expect"])
    assert {a["step"]: a["status"] for a in incident["actions"]} == {
        "deny-principal-on-buckets": "applied",
        "revoke-sessions": "applied",
        "notify:notify.sns": "applied",
    }
    # AND in the account: the role is denied on the bucket it emptied and the one it set to expire
    assert _denied_on(account, "acme-fraud-training") and _denied_on(account, "acme-model-registry")
    assert _inline_policies(account) == ["cordon-revoke-older-sessions"]


def test_an_attack_sequence_joins_the_open_incident_and_adds_its_containment(
    account: boto3.session.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the role's batch deletions (a critical incident), then GuardDuty's S3 attack sequence naming its session
    output = replay_execute(capsys, "guardduty-attack-sequence", tmp_path / "state.db", CONFIG)
    # THEN the sequence joined that incident: one incident, both rules, both playbooks acted
    [incident] = assert_expected_incidents(output, scenario("guardduty-attack-sequence")["expect"])
    assert len(output["incidents"]) == 1
    assert {"type": "access_key", "id": "ASIAQETLROLEEXAMPLE1"} in incident["entities"]
    applied = {(a["playbook"], a["step"]) for a in incident["actions"] if a["status"] == "applied"}
    # revoking the role's sessions is asked by both playbooks: one action makes it, the first playbook's
    assert {
        ("contain-attack-sequence", "deny-ml-data"),
        ("contain-ml-data-destruction", "deny-principal-on-buckets"),
    } <= applied
    revokes = [a for a in incident["actions"] if a["responder"] == "iam.revoke-sessions"]
    assert [a["status"] for a in revokes] == ["applied"]
    # AND in the account: the role is denied on the training bucket, quarantined from ML data, sessions revoked
    assert _denied_on(account, "acme-fraud-training")
    assert _inline_policies(account) == ["cordon-quarantine", "cordon-revoke-older-sessions"]
