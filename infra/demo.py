"""`make demo`: the whole story against a moto server on a free loopback port.

1. start the moto server and build the small ML account the scenario happens in (infra/ml_account.py);
2. `cordon replay examples/scenarios --execute --endpoint-url ...`: incidents, and their playbooks applied
   (credential containment enforced, availability-costing actions waiting for approval);
3. read the account back: what changed, what did not;
4. a SOC approver clicks Approve on the Slack alert: the click, signed as Slack signs it, is judged (a forged and
   an outsider's click are refused) and applies the endpoint quarantine through the same claim as `cordon approve`;
   the alert's buttons are replaced by who approved; then the audit trail;
5. write the critical incident's HTML report (.cordon/demo-incident.html);
6. stop the server.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, ClassVar

from moto.server import ThreadedMotoServer

from infra import ml_account, slack_approval

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / ".cordon" / "demo-incident.html"  # kept after the demo, beside the laptop's default state


class _SlackInbox(BaseHTTPRequestHandler):
    """Stands in for Slack's incoming-webhook endpoint, on loopback: keeps what Cordon posts."""

    received: ClassVar[list[dict[str, Any]]] = []  # shared by the handler instances, one per request
    history: ClassVar[list[dict[str, Any]]] = []  # everything, never cleared

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append(json.loads(body))
        self.history.append(self.received[-1])
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # keep the demo's output readable
        pass


def _start_slack() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlackInbox)
    Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cordon(*args: str, capture: bool = False) -> str:
    command = [sys.executable, "-m", "cordon.cli", *args]
    print(f"\n$ cordon {' '.join(args)}", flush=True)
    result = subprocess.run(command, check=False, text=True, capture_output=capture)  # noqa: S603 - our own CLI
    if result.returncode not in (0,):
        raise SystemExit(f"cordon {args[0]} exited {result.returncode}: {result.stderr if capture else ''}")
    return result.stdout if capture else ""


def _heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 100 - len(text)), flush=True)


def _read_back(ml: ml_account.MlAccount) -> None:
    iam, s3, sagemaker, sqs = ml.client("iam"), ml.client("s3"), ml.client("sagemaker"), ml.client("sqs")
    keys = iam.list_access_keys(UserName="ml-contractor")["AccessKeyMetadata"]
    for key in keys:
        named = (
            " (named by the incident)" if key["AccessKeyId"] == ml.id_map[ml_account.SCENARIO_CONTRACTOR_KEY] else ""
        )
        print(f"ml-contractor key {key['AccessKeyId']}: {key['Status']}{named}")
    for kind, name in (("user", "ml-contractor"), ("role", "ml-training-role")):
        lister = iam.list_user_policies if kind == "user" else iam.list_role_policies
        policies = lister(**{"UserName" if kind == "user" else "RoleName": name})["PolicyNames"]
        print(f"{kind} {name} inline policies: {', '.join(policies) or '(none)'}")
    policy = s3.get_bucket_policy(Bucket=ml_account.TRAINING_BUCKET)["Policy"] if _has_policy(s3) else "{}"
    sids = [s.get("Sid", "") for s in json.loads(policy).get("Statement", [])]
    print(f"bucket {ml_account.TRAINING_BUCKET} policy statements: {', '.join(sids) or '(none)'}")
    endpoint = f"arn:aws:sagemaker:{ml_account.REGION}:{ml_account.ACCOUNT}:endpoint/fraud-scorer"
    tags = ", ".join(f"{tag['Key']}={tag['Value']}" for tag in sagemaker.list_tags(ResourceArn=endpoint)["Tags"])
    print(f"endpoint fraud-scorer tags: {tags or '(none)'}")
    messages = sqs.receive_message(QueueUrl=ml.alerts_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        print(f"SNS alert received by the SOC inbox: {json.loads(message['Body'])['Subject']}")
    for payload in _SlackInbox.received:
        print(f"Slack message received: {payload['text']}")
    _SlackInbox.received.clear()


def _has_policy(s3: Any) -> bool:
    try:
        s3.get_bucket_policy(Bucket=ml_account.TRAINING_BUCKET)
    except s3.exceptions.ClientError:
        return False
    return True


def main() -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", ml_account.REGION),
    ):
        os.environ[name] = value  # moto's account; never a real one
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log would drown the story
    port = _free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    slack = _start_slack()
    os.environ["CORDON_SLACK_WEBHOOK_URL"] = f"http://127.0.0.1:{slack.server_address[1]}/services/demo"
    try:
        with tempfile.TemporaryDirectory(prefix="cordon-demo-") as workdir:
            # The bundled config, plus where this demo's Slack stand-in listens.
            config = Path(workdir) / "cordon.yaml"
            config.write_text(
                (REPO / "examples" / "cordon.yaml").read_text()
                + "  slack_webhook_env: CORDON_SLACK_WEBHOOK_URL\n"
                + f"approval:\n  slack_approvers: [{slack_approval.APPROVER}]\n"
            )
            _heading(f"An ML account in a moto server at {endpoint}")
            ml = ml_account.build(endpoint)
            print(
                f"account {ml_account.ACCOUNT}: buckets, ml-contractor (2 keys), ml-training-role on "
                f"{ml.id_map[ml_account.SCENARIO_INSTANCE]}, endpoint fraud-scorer, REST API fraud-api, SNS topic"
            )
            scenarios = Path(workdir) / "scenarios"
            ml_account.rewrite(REPO / "examples" / "scenarios", scenarios, ml.id_map)
            state = f"sqlite:///{workdir}/state.db"

            _heading("Replay the attack scenario and apply the playbooks")
            _cordon(
                "replay",
                str(scenarios),
                "--config",
                str(config),
                "--execute",
                "--endpoint-url",
                endpoint,
                "--state",
                state,
            )

            _heading("What the account looks like now")
            _read_back(ml)

            _heading("A SOC approver clicks Approve on the Slack alert")
            audit = json.loads(_cordon("audit", "--state", state, "--output", "json", capture=True))
            pending = [a for a in audit if a["status"] == "pending_approval"]
            for action in pending:
                print(f"pending: {action['id']} {action['responder']} {action['target']['id']}")
            quarantine = next(a for a in pending if a["responder"] == "sagemaker.quarantine-endpoint")
            slack_url = f"http://127.0.0.1:{slack.server_address[1]}"
            slack_approval.approve_in_slack(quarantine["id"], config, state, endpoint, slack_url, _SlackInbox.history)
            _read_back(ml)

            _heading("The audit trail")
            _cordon("audit", "--state", state)

            _heading("The critical incident as a page a SOC opens (no script, nothing fetched)")
            REPORT.parent.mkdir(exist_ok=True)
            _cordon("report", quarantine["incident_id"], "--state", state, "--config", str(config), "-o", str(REPORT))
    finally:
        server.stop()
        slack.shutdown()


if __name__ == "__main__":
    main()
