"""Scenario examples/attacks/notebook-lifecycle-code-execution, replayed with --execute against a moto server.

An intern's IAM user plants a lifecycle script on notebook research-nb and restarts it (the Stratus sequence).
What costs the ML team its notebook waits for a person: stop-notebook, detach-lifecycle-config and the intern's
quarantine are pending approval, and the notebook keeps running until someone approves; approving stop-notebook
stops it in the account. (moto 5.2 has no UpdateNotebookInstance: the detach itself is tested with a Stubber in
tests/functional/responders/test_sagemaker_lifecycle.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from cordon.cli import main
from cordon.coverage import load_scenarios
from infra.ml_account import account_session
from tests.e2e.test_replay_execute import server

__all__ = ["server"]  # fixture, used by name

REPO = Path(__file__).resolve().parents[3]
[SCENARIO] = [s for s in load_scenarios(REPO / "examples") if s.path.name == "notebook-lifecycle-code-execution"]
ACCOUNT = "111122223333"
NOTEBOOK = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:notebook-instance/research-nb"


def _account(endpoint: str) -> Any:
    session = account_session(endpoint, ACCOUNT)
    iam = session.client("iam", endpoint_url=endpoint)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="research-nb-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.create_user(UserName="ml-intern")
    session.client("sagemaker", endpoint_url=endpoint).create_notebook_instance(
        NotebookInstanceName="research-nb", InstanceType="ml.t3.medium", RoleArn=role
    )
    return session


def _status(session: Any, endpoint: str) -> str:
    notebook = session.client("sagemaker", endpoint_url=endpoint).describe_notebook_instance(
        NotebookInstanceName="research-nb"
    )
    return str(notebook["NotebookInstanceStatus"])


def test_the_notebook_stops_only_when_a_person_approves(server: str, tmp_path: Path, capsys: Any) -> None:
    # GIVEN the account, with the notebook running
    session = _account(server)
    assert _status(session, server) == "InService"
    config = tmp_path / "cordon.yaml"
    config.write_text((REPO / "examples" / "cordon.yaml").read_text())
    state = f"sqlite:///{tmp_path / 'state.db'}"
    [expected] = SCENARIO.expect

    # WHEN the scenario is replayed with --execute
    args = ["--config", str(config), "--endpoint-url", server, "--state", state]
    code = main(["replay", *map(str, SCENARIO.events), "--execute", "--output", "json", *args])
    [incident] = json.loads(capsys.readouterr().out)["incidents"]
    assert code == 0

    # THEN the incident the scenario names, and what costs the ML team waits for a person
    assert set(expected.rules) <= set(incident["rules"]) and incident["severity"] == expected.severity.value
    actions = {a["step"]: a for a in incident["actions"] if a["playbook"] == "contain-notebook-code-execution"}
    assert {step: a["status"] for step, a in actions.items() if not step.startswith("notify")} == {
        "stop-notebook": "pending_approval",
        "detach-lifecycle-config": "pending_approval",
        "deny-ml-data": "pending_approval",
    }
    assert _status(session, server) == "InService"
    iam = session.client("iam", endpoint_url=server)
    assert iam.list_user_policies(UserName="ml-intern")["PolicyNames"] == []

    # WHEN a person approves stopping the notebook, THEN it is stopped in the account
    assert main(["approve", actions["stop-notebook"]["id"], *args]) == 0
    assert _status(session, server) in ("Stopping", "Stopped")
    assert yaml.safe_load(capsys.readouterr().out.split(": ", 1)[1]) == "applied"
