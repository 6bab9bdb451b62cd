"""The whole flow through the CLI against a moto server on loopback: the demo's path, asserted."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from cordon.cli import main
from infra import ml_account

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "examples" / "cordon.yaml")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CORDON_KILL_SWITCH", raising=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.stop()


def _inbox(ml: Any) -> list[dict[str, Any]]:
    """The incidents the SOC inbox queue (subscribed to the alert topic) received, one per SNS message."""
    sqs = ml.client("sqs")
    received = []
    while messages := sqs.receive_message(QueueUrl=ml.alerts_queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            envelope = json.loads(message["Body"])
            received.append(json.loads(envelope["Message"]) if "Message" in envelope else envelope)
            sqs.delete_message(QueueUrl=ml.alerts_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main(list(args))
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out) if "--output" in args else out


def test_replay_execute_contains_the_attack_and_a_second_replay_applies_nothing(server, tmp_path, capsys) -> None:
    # GIVEN the scenario's account in the moto server
    ml = ml_account.build(server)
    scenarios = tmp_path / "scenarios"
    ml_account.rewrite(REPO / "examples" / "scenarios", scenarios, ml.id_map)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    replay = [
        "replay",
        str(scenarios),
        "--config",
        CONFIG,
        "--execute",
        "--endpoint-url",
        server,
        "--state",
        state,
        "--output",
        "json",
    ]
    # WHEN the scenario is replayed with --execute
    output = _cli(capsys, *replay)
    # THEN credential containment is applied, availability-costing actions wait for approval
    actions = {(a["responder"], a["target"]): a["status"] for i in output["incidents"] for a in i["actions"]}
    contractor_key = ml.id_map[ml_account.SCENARIO_CONTRACTOR_KEY]
    role = "arn:aws:iam::111122223333:role/ml-training-role"
    assert actions[("iam.deactivate-access-key", contractor_key)] == "applied"
    assert actions[("iam.revoke-sessions", role)] == "applied"
    assert actions[("iam.quarantine-principal", role)] == "applied"
    assert actions[("ec2.isolate-instance", ml.id_map[ml_account.SCENARIO_INSTANCE])] == "pending_approval"
    endpoint = "arn:aws:sagemaker:us-east-1:111122223333:endpoint/fraud-scorer"
    assert actions[("sagemaker.quarantine-endpoint", endpoint)] == "pending_approval"
    # AND the account says so when read back
    iam = ml.client("iam")
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="ml-contractor")["AccessKeyMetadata"]}
    assert keys.pop(contractor_key) == "Inactive"
    assert list(keys.values()) == ["Active"]  # the contractor's other key is untouched
    assert "cordon-revoke-older-sessions" in iam.list_role_policies(RoleName="ml-training-role")["PolicyNames"]
    assert ml.client("sagemaker").list_tags(ResourceArn=endpoint)["Tags"] == []
    # AND the SOC hears once per incident, though two playbooks (credentials, endpoint) alert on the critical one,
    # and the critical alert lists both actions waiting for approval
    alerts = _inbox(ml)
    assert sorted(a["severity"] for a in alerts) == ["critical", "high"]
    critical = next(a for a in alerts if a["severity"] == "critical")
    assert "pending_approval" in json.dumps(critical)
    audit_before = _cli(capsys, "audit", "--state", state, "--output", "json")

    # WHEN the same events are replayed again into the same state
    again = _cli(capsys, *replay)
    # THEN nothing is applied twice
    assert again["incidents"] == []
    assert _cli(capsys, "audit", "--state", state, "--output", "json") == audit_before

    # WHEN a person approves the endpoint quarantine
    pending = next(a for a in audit_before if a["responder"] == "sagemaker.quarantine-endpoint")
    _cli(capsys, "approve", pending["id"], "--state", state, "--endpoint-url", server, "--config", CONFIG)
    tags = ml.client("sagemaker").list_tags(ResourceArn=endpoint)["Tags"]
    assert tags == [{"Key": "cordon:quarantine", "Value": pending["incident_id"]}]

    # WHEN the key deactivation is rolled back
    deactivation = next(a for a in audit_before if a["responder"] == "iam.deactivate-access-key")
    _cli(capsys, "rollback", deactivation["id"], "--state", state, "--endpoint-url", server, "--config", CONFIG)
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="ml-contractor")["AccessKeyMetadata"]}
    assert keys[contractor_key] == "Active"
    audit = {a["id"]: a["status"] for a in _cli(capsys, "audit", "--state", state, "--output", "json")}
    assert audit[deactivation["id"]] == "rolled_back"
    assert audit[pending["id"]] == "applied"


def test_without_execute_replay_only_plans_and_calls_no_aws(tmp_path, capsys, monkeypatch) -> None:
    # No server and no credentials: planning must not need them.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "invalid")
    output = _cli(capsys, "replay", str(REPO / "examples" / "scenarios"), "--config", CONFIG, "--output", "json")
    statuses = {a["status"] for i in output["incidents"] for a in i["actions"]}
    assert statuses == {"planned"}
    assert all(
        set(a) >= {"playbook", "step", "responder", "target", "status", "params"}
        for i in output["incidents"]
        for a in i["actions"]
    )
