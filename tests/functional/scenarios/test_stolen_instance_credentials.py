"""Scenario examples/attacks/stolen-instance-credentials, replayed with --execute against a moto server.

The real Stratus Red Team detonation log, with no GuardDuty finding: the instance role's sessions must be revoked
and the role denied ML data in the account, and the operator's key must wait for a person.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from cordon.cli import main
from infra.ml_account import account_session, rewrite
from tests.e2e.test_replay_execute import server

__all__ = ["server"]  # fixture, used by name

REPO = Path(__file__).resolve().parents[3]
SCENARIO = REPO / "examples" / "attacks" / "stolen-instance-credentials"
ACCOUNT = "017622104382"  # the detonation's (anonymised) account
ROLE = "stratus-red-team-ec2-steal-credentials-role"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
ML_BUCKET = "stratus-ml-training"
# Ids the detonation log uses, which AWS (moto) generates itself when the account is built.
LOGGED_KEY = "AKIAAM80VXLJF8NPK4VC"
LOGGED_INSTANCE = "i-786a3A8B5C0d92eF4"


def _account(endpoint: str) -> tuple[Any, dict[str, str]]:
    """The detonation's account as far as the incident names it (the instance and its role, the user and its key,
    an ML bucket), and how the log's ids map to the ones AWS gave them."""
    session = account_session(endpoint, ACCOUNT)
    iam = session.client("iam", endpoint_url=endpoint)
    ec2_trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(ec2_trust))
    iam.create_instance_profile(InstanceProfileName=ROLE)
    iam.add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    iam.create_user(UserName="christophe")
    key = iam.create_access_key(UserName="christophe")["AccessKey"]["AccessKeyId"]
    ec2 = session.client("ec2", endpoint_url=endpoint)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", IamInstanceProfile={"Name": ROLE}
    )["Instances"][0]["InstanceId"]
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=ML_BUCKET)
    return session, {LOGGED_KEY: key, LOGGED_INSTANCE: instance}


def test_the_stratus_detonation_is_contained_without_guardduty(server, tmp_path, capsys) -> None:
    # GIVEN the account and a site config naming its ML bucket
    session, ids = _account(server)
    events = tmp_path / "events"
    rewrite(SCENARIO, events, ids)
    config = tmp_path / "cordon.yaml"
    config.write_text(yaml.safe_dump({"site": {"asset_buckets": [ML_BUCKET]}}))
    expected = yaml.safe_load((SCENARIO / "scenario.yaml").read_text())["expect"][0]

    # WHEN the scenario is replayed with --execute
    code = main(
        [
            "replay", str(events / "events.jsonl"), "--config", str(config), "--execute",
            "--endpoint-url", server, "--state", f"sqlite:///{tmp_path / 'state.db'}", "--output", "json",
        ]
    )  # fmt: skip
    output = json.loads(capsys.readouterr().out)
    assert code == 0

    # THEN one incident, at the expected severity, raised by the expected rules, with no GuardDuty in it
    [incident] = output["incidents"]
    assert set(expected["rules"]) <= set(incident["rules"])
    assert incident["severity"] == expected["severity"]
    assert not any(rule.startswith("guardduty") for rule in incident["rules"])
    assert {a["playbook"] for a in incident["actions"]} >= set(expected["playbooks"])
    # AND the audit: the role contained, the operator's key and the instance waiting for a person
    actions = {(a["step"], a["target"]): a["status"] for a in incident["actions"]}
    assert actions[("revoke-role-sessions", ROLE_ARN)] == "applied"
    assert actions[("deny-ml-data", ROLE_ARN)] == "applied"
    assert actions[("deny-asset-buckets", ROLE_ARN)] == "applied"
    assert actions[("deactivate-operator-key", ids[LOGGED_KEY])] == "pending_approval"
    assert actions[("isolate-instance", ids[LOGGED_INSTANCE])] == "pending_approval"
    # AND the account, read back: deny policies on the role, the role denied in the bucket policy
    iam = session.client("iam", endpoint_url=server)
    policies = iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    assert "cordon-revoke-older-sessions" in policies
    assert len(policies) == 2  # and the ML-data quarantine
    bucket_policy = json.loads(session.client("s3", endpoint_url=server).get_bucket_policy(Bucket=ML_BUCKET)["Policy"])
    denied = [s for s in bucket_policy["Statement"] if s["Effect"] == "Deny"]
    assert [s["Principal"]["AWS"] for s in denied] == [ROLE_ARN]
    # AND the user who ran the command keeps an active key until someone approves
    assert [k["Status"] for k in iam.list_access_keys(UserName="christophe")["AccessKeyMetadata"]] == ["Active"]
