"""Approve and refuse from Slack, end to end in process: a click in Slack's real request format, signed with the
app's signing secret, reaches the Slack actions handler; an accepted one is handed to the runner, which applies it
exactly once through the executor's claim, audits the Slack user, and replaces the alert's buttons through the
click's response_url (a loopback HTTP server stands in for Slack, and for its usergroups API).

moto runs the account (IAM, DynamoDB, SSM, Secrets Manager). It cannot run a Lambda without Docker, so the
asynchronous invoke that hands a click to the runner is checked with botocore's Stubber (function, invocation
type, payload) and that payload is then given to the runner's handler, as Lambda would."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cordon import constants
from cordon.audit import Status
from cordon.handlers import runner, runtime, slack_actions
from cordon.playbooks.plan import plan_incident
from responders.notify.slack import APPROVE, REFUSE, buttons
from tests.e2e.deployed_stack import FakeLambdaContext
from tests.functional.test_handlers import REGION, REPO, stack
from tests.unit.test_state_contract import SerializedClient

__all__ = ["stack"]  # fixture, used by name

SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-token"
APPROVER, ONCALL, OUTSIDER = "U0APPROVER", "U0ONCALL", "U0MALLORY"


class FakeSlack:
    """Slack's side on loopback: records what is POSTed to a response_url, and answers usergroups.users.list."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.group_lookups: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake.updates.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._reply(200, b"ok")

            def do_GET(self) -> None:
                fake.group_lookups.append(self.headers.get("Authorization", ""))
                ok = self.headers.get("Authorization") == f"Bearer {BOT_TOKEN}" and "usergroup=S0SOC" in self.path
                body = {"ok": True, "users": [ONCALL]} if ok else {"ok": False, "error": "invalid_auth"}
                self._reply(200, json.dumps(body).encode())

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def slack(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    fake = FakeSlack()
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(
        Name="cordon/slack-app", SecretString=json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN})
    )["ARN"]
    config = (REPO / "examples/cordon.yaml").read_text() + f"approval:\n  slack_approvers: [{APPROVER}, S0SOC]\n"
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/cordon/test/config", Type="String", Value=config, Overwrite=True
    )
    for name, value in {
        constants.SLACK_APP_SECRET_ENV: arn,
        constants.RUNNER_FUNCTION_ENV: "cordon-runner",
        constants.SLACK_API_URL_ENV: fake.url,
        constants.ENFORCEMENT_MODE_ENV: "approval",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    runner.reset()
    slack_actions.reset()
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="mallory")
    keys = [iam.create_access_key(UserName="mallory")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    yield {"fake": fake, "iam": iam, "key": keys[0], "other_key": keys[1]}
    fake.close()
    slack_actions.reset()


def _pending(world: dict[str, Any]) -> str:
    """The stolen-key playbook run for an incident naming mallory's key, under the approval ceiling: its
    deactivation waits for approval. Returns that action's id."""
    incident = {
        "id": "inc-slack-1",
        "title": "stolen key",
        "rules": ["ml_credential_finding_then_ml_access"],
        "severity": "critical",
        "first_seen": "2026-11-20T10:00:00+00:00",
        "last_seen": "2026-11-20T10:20:00+00:00",
        "entities": [
            {"type": "access_key", "id": world["key"]},
            {"type": "principal", "id": "arn:aws:iam::123456789012:user/mallory"},
        ],
        "signals": [],
        "actions": [],
    }
    response = runner.response()
    plans = plan_incident(incident, response.playbooks, response.responders, response.config.site, REGION)
    actions = response.executor.run(incident, plans)
    [waiting] = [a for a in actions if a["step"] == "deactivate-access-key"]
    assert waiting["status"] == "pending_approval"
    return str(waiting["id"])


def _click(
    world: dict[str, Any],
    action_id: str,
    *,
    user: str = APPROVER,
    verb: str = APPROVE,
    age: int = 0,
    secret: str = SIGNING_SECRET,
) -> dict[str, Any]:
    """A Function URL event carrying Slack's block_actions request for one button, signed as Slack signs."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "actions": [{"action_id": verb, "value": action_id, "block_id": f"cordon:{action_id}", "type": "button"}],
        "response_url": f"{world['fake'].url}/actions/T0/1/xyz",
        "message": {"text": "[Cordon CRITICAL] stolen key", "blocks": [buttons(action_id, "deactivate")]},
    }
    body = urlencode({"payload": json.dumps(payload)})
    stamp = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": f"v0={digest}"}
    return {"body": body, "isBase64Encoded": False, "headers": headers, "requestContext": {"http": {"method": "POST"}}}


def _send(event: dict[str, Any], *, handed: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The Slack actions handler's answer, and the decision it handed to the runner (None: it handed nothing)."""
    client = runtime.client("lambda")
    with Stubber(client) as stub:
        if handed:
            stub.add_response(
                "invoke",
                {"StatusCode": 202},
                {"FunctionName": "cordon-runner", "InvocationType": "Event", "Payload": ANY},
            )
        calls: list[dict[str, Any]] = []
        client.meta.events.register("before-parameter-build.lambda.Invoke", lambda params, **_: calls.append(params))
        answer = slack_actions.handler(event, FakeLambdaContext("slack-actions"))
        stub.assert_no_pending_responses()
    decision = json.loads(calls[0]["Payload"]) if calls else None
    return answer, decision


def _decide(decision: dict[str, Any]) -> dict[str, Any]:
    return runner.handler(decision, FakeLambdaContext("runner"))


def _status(world: dict[str, Any], key: str) -> str:
    keys = world["iam"].list_access_keys(UserName="mallory")["AccessKeyMetadata"]
    return str(next(k["Status"] for k in keys if k["AccessKeyId"] == key))


def test_an_approvers_click_applies_the_action_audits_who_and_updates_the_message(slack: dict[str, Any]) -> None:
    action = _pending(slack)
    answer, decision = _send(_click(slack, action), handed=True)
    assert answer["statusCode"] == 200 and decision is not None
    assert decision["source"] == constants.SLACK_DECISION_SOURCE and decision["decision"]["action_id"] == action

    outcome = _decide(decision)

    assert outcome["decided"] is True
    record = runner.response().executor._audit.get(action)
    assert record.status is Status.APPLIED and record.decided_by == f"slack:{APPROVER}"
    assert _status(slack, slack["key"]) == "Inactive" and _status(slack, slack["other_key"]) == "Active"
    [update] = slack["fake"].updates
    [context] = [b for b in update["blocks"] if b["type"] == "context"]
    assert update["replace_original"] is True and not any(b["type"] == "actions" for b in update["blocks"])
    assert context["elements"][0]["text"].startswith(f"Approved by <@{APPROVER}> at ")
    assert context["elements"][0]["text"].endswith(": *applied*")


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"secret": "not-the-apps-signing-secret"}, 401),
        ({"age": 301}, 401),
        ({"user": OUTSIDER}, 403),
    ],
    ids=["bad signature", "replayed after five minutes", "user outside the allowlist"],
)
def test_a_refused_click_changes_nothing(slack: dict[str, Any], change: dict[str, Any], status: int) -> None:
    action = _pending(slack)
    answer, decision = _send(_click(slack, action, **change), handed=False)
    assert answer["statusCode"] == status and decision is None
    assert runner.response().executor._audit.get(action).status is Status.PENDING_APPROVAL
    assert _status(slack, slack["key"]) == "Active" and slack["fake"].updates == []


def test_a_member_of_an_approver_group_may_approve(slack: dict[str, Any]) -> None:
    action = _pending(slack)
    answer, decision = _send(_click(slack, action, user=ONCALL), handed=True)
    assert answer["statusCode"] == 200 and slack["fake"].group_lookups == [f"Bearer {BOT_TOKEN}"]
    assert decision is not None and _decide(decision)["decided"] is True
    assert runner.response().executor._audit.get(action).decided_by == f"slack:{ONCALL}"


def test_a_double_click_applies_once(slack: dict[str, Any]) -> None:
    action = _pending(slack)
    _, decision = _send(_click(slack, action), handed=True)
    assert decision is not None
    first, second = _decide(decision), _decide(decision)
    assert (first["decided"], second["decided"]) == (True, False)
    assert "is already applied: nothing to approve" in second["outcome"]
    assert runner.response().executor._audit.get(action).attempts == 2  # the run's claim, and one approval


def test_two_approvers_at_once_apply_once(slack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's in-process DynamoDB is not thread-safe; DynamoDB runs each request atomically, and so does the wrapper
    serialized = SerializedClient(runtime.client("dynamodb"))
    original = runtime.client

    def client(service: str) -> Any:
        return serialized if service == "dynamodb" else original(service)

    client.cache_clear = original.cache_clear  # type: ignore[attr-defined]
    monkeypatch.setattr(runtime, "client", client)
    action = _pending(slack)
    decisions = [_send(_click(slack, action, user=user), handed=True)[1] for user in (APPROVER, ONCALL)]
    outcomes: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def decide(decision: dict[str, Any]) -> None:
        start.wait()
        outcomes.append(_decide(decision))

    threads = [threading.Thread(target=decide, args=(d,)) for d in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o["decided"] for o in outcomes) == [False, True]
    assert runner.response().executor._audit.get(action).attempts == 2  # the run's claim, and one approval


def test_refused_then_approved_is_not_applied(slack: dict[str, Any]) -> None:
    action = _pending(slack)
    _, refusal = _send(_click(slack, action, verb=REFUSE), handed=True)
    _, approval = _send(_click(slack, action), handed=True)
    assert refusal is not None and approval is not None
    assert _decide(refusal)["decided"] is True
    late = _decide(approval)
    record = runner.response().executor._audit.get(action)
    assert record.status is Status.REFUSED and record.decided_by == f"slack:{APPROVER}"
    assert late["decided"] is False and f"was refused by slack:{APPROVER}" in late["outcome"]
    assert _status(slack, slack["key"]) == "Active"
    assert slack["fake"].updates[0]["blocks"][-1]["elements"][0]["text"].startswith(f"Refused by <@{APPROVER}>")


def test_an_action_rolled_back_is_not_applied_again(slack: dict[str, Any]) -> None:
    action = _pending(slack)
    _, decision = _send(_click(slack, action), handed=True)
    assert decision is not None and _decide(decision)["decided"] is True
    runner.response().executor.rollback(action)
    again = _decide(decision)
    assert again["decided"] is False and "was rolled back" in again["outcome"]
    assert _status(slack, slack["key"]) == "Active"


def test_a_forged_action_id_is_refused(slack: dict[str, Any]) -> None:
    _pending(slack)
    answer, decision = _send(_click(slack, "act-00000000deadbeef"), handed=True)
    assert answer["statusCode"] == 200 and decision is not None  # well-formed: only the audit can tell
    outcome = _decide(decision)
    assert outcome["decided"] is False and "no action 'act-00000000deadbeef' in the audit log" in outcome["outcome"]
    malformed, nothing = _send(_click(slack, "act-<script>"), handed=False)
    assert malformed["statusCode"] == 400 and nothing is None


def test_the_runner_ignores_a_decision_of_the_wrong_shape(slack: dict[str, Any]) -> None:
    action = _pending(slack)
    forged = {
        "source": constants.SLACK_DECISION_SOURCE,
        "decision": {
            "verb": "approve",
            "action_id": action,
            "user_id": APPROVER,
            "response_url": "https://evil.example/x",
        },
    }
    assert _decide(forged) == {"decided": False}
    assert runner.response().executor._audit.get(action).status is Status.PENDING_APPROVAL
