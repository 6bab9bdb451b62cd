"""The demo's Slack click: what Slack sends when a SOC approver presses Approve on a Cordon alert, and Cordon's
answer. The request is built from the alert the Slack stand-in received (its button, its message), signed with the
demo app's signing secret as Slack signs, judged by `cordon.slack_actions.judge` and carried out by
`cordon.slack_actions.carry_out`: the code the deployed Slack actions function and runner run. Only the Lambda hop
between the two is left out here (the demo's state is a SQLite file, not the stack's tables)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cordon.audit import SqliteAuditLog
from cordon.execute import Executor, SessionFactory
from cordon.slack_actions import Click, carry_out, judge
from correlators.config import load_config
from correlators.state import sqlite_path
from responders.catalog import builtin_responders
from responders.notify.slack import APPROVE, block_id

APPROVER, OUTSIDER = "U0DEMOSOC", "U0INTERN"
SIGNING_SECRET = "demo-signing-secret-not-a-real-one"  # noqa: S105 - the demo app's, on loopback only


def _request(
    alert: dict[str, Any], action_id: str, user: str, response_url: str, secret: str
) -> tuple[bytes, dict[str, str]]:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "actions": [{"type": "button", "action_id": APPROVE, "value": action_id, "block_id": block_id(action_id)}],
        "response_url": response_url,
        "message": alert,
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def approve_in_slack(
    action_id: str, config_path: Path, state: str, endpoint: str, slack_url: str, received: list[dict[str, Any]]
) -> None:
    config = load_config(config_path)
    alert = next(m for m in received if any(b.get("block_id") == block_id(action_id) for b in m.get("blocks", [])))
    print(f"the Slack alert '{alert['text']}' carries Approve and Refuse buttons for {action_id}")
    response_url = f"{slack_url}/actions/T0DEMO/1/response"

    def judged(user: str, secret: str) -> Any:
        body, headers = _request(alert, action_id, user, response_url, secret)
        return judge(
            body,
            headers,
            signing_secret=SIGNING_SECRET,
            approvers=config.approval.slack_approvers,
            group_members=lambda group: [],
            now=time.time,
        )

    forged = judged(APPROVER, "an-attackers-guess")
    print(f"a click signed with another secret: refused ({forged.status}: {forged.reason})")
    outsider = judged(OUTSIDER, SIGNING_SECRET)
    print(f"{OUTSIDER} clicks Approve: refused ({outsider.status}: {outsider.reason})")
    click = judged(APPROVER, SIGNING_SECRET)
    assert isinstance(click, Click)
    audit = SqliteAuditLog(sqlite_path(state))
    try:
        executor = Executor(
            config,
            audit,
            builtin_responders(),
            sessions=SessionFactory(endpoint, config.execution.assume_role_name),
        )
        _, outcome = carry_out(click, executor)
    finally:
        audit.close()
    print(f"{APPROVER} clicks Approve: {outcome}")
    updated = received[-1]
    shown = [b["elements"][0]["text"] for b in updated.get("blocks", []) if b.get("type") == "context"]
    print(f"the alert in Slack now says: {shown[0] if shown else updated.get('text')}")
