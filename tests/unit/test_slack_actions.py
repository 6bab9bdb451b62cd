"""Judging a Slack button click before anything is done (cordon/slack_actions.py): a request Slack did not sign, an
old one replayed, a user who is not an approver, a forged or foreign payload are each refused with a reason; a
guard that cannot decide (no approvers, an unreadable user group, a malformed timestamp) refuses."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import pytest

from cordon.slack_actions import Click, Refusal, decided_message, judge
from responders.notify.slack import APPROVE, REFUSE, block_id, buttons

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_764_500_000
ACTION = "act-0123456789abcdef"
RESPONSE_URL = "https://hooks.slack.com/actions/T0/1/abc"
FOREIGN_URL = "the click's response_url is not on Slack's host"


def payload(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0APPROVER", "username": "alice"},
        "actions": [{"action_id": APPROVE, "value": ACTION, "block_id": block_id(ACTION)}],
        "response_url": RESPONSE_URL,
        "message": {"text": "[Cordon HIGH] stolen key", "blocks": [buttons(ACTION, "iam.deactivate-access-key")]},
    }
    document.update(changes)
    return document


def signed(
    document: Any, *, at: int = NOW, secret: str = SECRET, raw: bytes | None = None
) -> tuple[bytes, dict[str, str]]:
    body = raw if raw is not None else urlencode({"payload": json.dumps(document)}).encode()
    base = b"v0:" + str(at).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": str(at), "X-Slack-Signature": signature}


def verdict(
    body: bytes,
    headers: dict[str, str],
    approvers: Sequence[str] = ("U0APPROVER",),
    groups: dict[str, list[str]] | None = None,
) -> Click | Refusal:
    def members(group: str) -> list[str]:
        if groups is None or group not in groups:
            raise LookupError(f"cannot read {group}")
        return groups[group]

    return judge(body, headers, signing_secret=SECRET, approvers=approvers, group_members=members, now=lambda: NOW)


def test_a_signed_click_by_an_approver_is_accepted() -> None:
    click = verdict(*signed(payload()))
    assert click == Click("approve", ACTION, "U0APPROVER", "alice", RESPONSE_URL, payload()["message"])
    assert click.by == "slack:U0APPROVER"


def test_refuse_is_a_verb_too() -> None:
    click = verdict(*signed(payload(actions=[{"action_id": REFUSE, "value": ACTION}])))
    assert isinstance(click, Click) and click.verb == "refuse"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Slack-Signature": "v0=" + "0" * 64}, "wrong signature"),
        ({"X-Slack-Request-Timestamp": "yesterday"}, "a timestamp that is not a number"),
        ({"X-Slack-Request-Timestamp": ""}, "no timestamp"),
        ({"X-Slack-Signature": ""}, "no signature"),
    ],
)
def test_a_request_slack_did_not_sign_is_refused(headers: dict[str, str], reason: str) -> None:
    body, good = signed(payload())
    result = verdict(body, {**good, **headers})
    assert result == Refusal(401, "bad or expired Slack signature: refused"), reason


def test_another_apps_secret_is_refused() -> None:
    assert verdict(*signed(payload(), secret="another-apps-signing-secret")) == Refusal(
        401, "bad or expired Slack signature: refused"
    )


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_a_replayed_or_future_request_is_refused(age: int) -> None:
    assert isinstance(verdict(*signed(payload(), at=NOW - age)), Refusal)


def test_a_request_just_inside_five_minutes_passes() -> None:
    assert isinstance(verdict(*signed(payload(), at=NOW - 299)), Click)


def test_a_tampered_body_is_refused() -> None:
    body, headers = signed(payload())
    tampered = body.replace(b"U0APPROVER", b"U0MALLORY0")
    assert verdict(tampered, headers) == Refusal(401, "bad or expired Slack signature: refused")


def test_a_user_who_is_not_an_approver_is_refused() -> None:
    result = verdict(*signed(payload(user={"id": "U0MALLORY"})))
    assert result == Refusal(403, "U0MALLORY is not an approver (approval.slack_approvers)", "U0MALLORY", ACTION)


def test_no_approvers_means_nobody() -> None:
    assert verdict(*signed(payload()), approvers=()) == Refusal(
        403, "U0APPROVER is not an approver (approval.slack_approvers)", "U0APPROVER", ACTION
    )


def test_a_member_of_an_approver_group_passes_and_an_unreadable_group_vouches_for_nobody() -> None:
    body, headers = signed(payload(user={"id": "U0ONCALL"}))
    assert isinstance(verdict(body, headers, approvers=("S0SOC",), groups={"S0SOC": ["U0ONCALL"]}), Click)
    assert isinstance(verdict(body, headers, approvers=("S0SOC",), groups={"S0SOC": ["U0OTHER"]}), Refusal)
    assert isinstance(verdict(body, headers, approvers=("S0SOC",), groups=None), Refusal)


@pytest.mark.parametrize(
    ("document", "status", "reason"),
    [
        (payload(type="view_submission"), 400, "not a block_actions interaction"),
        (payload(actions=[]), 400, "the click carries no single button"),
        (payload(actions=[{"action_id": APPROVE, "value": ACTION}] * 2), 400, "the click carries no single button"),
        (payload(actions=[{"action_id": "other_app", "value": ACTION}]), 400, "not a Cordon button"),
        (payload(actions=[{"action_id": APPROVE, "value": "act-x' OR 1=1"}]), 400, "the button names no action id"),
        (payload(actions=[{"action_id": APPROVE, "value": "../../etc"}]), 400, "the button names no action id"),
        (payload(user={"id": "<script>"}), 400, "the click names no Slack user"),
        (payload(user="U0APPROVER"), 400, "the click names no Slack user"),
        (payload(response_url="https://evil.example/collect"), 400, "the click's response_url is not on Slack's host"),
        (payload(response_url="http://hooks.slack.com/a"), 400, "the click's response_url is not on Slack's host"),
        (
            payload(response_url="https://hooks.slack.com.evil.example/a"),
            400,
            "the click's response_url is not on Slack's host",
        ),
        ([1, 2, 3], 400, "not a block_actions interaction"),
    ],
)
def test_a_malformed_or_foreign_payload_is_refused(document: Any, status: int, reason: str) -> None:
    result = verdict(*signed(document))
    assert isinstance(result, Refusal) and (result.status, result.reason) == (status, reason)


@pytest.mark.parametrize(
    "raw",
    [
        b"payload=%7B",  # truncated JSON
        b"not a form",
        b"payload=" + b"%5B" * 5000 + b"%5D" * 5000,  # deep nesting
        "payload=\udc80".encode("utf-8", "surrogatepass"),  # not UTF-8
        b"",
    ],
)
def test_a_body_that_is_not_an_interaction_is_refused(raw: bytes) -> None:
    assert isinstance(verdict(*signed(None, raw=raw)), Refusal)


def test_a_huge_body_is_refused_before_anything_else() -> None:
    body, headers = signed(None, raw=b"x" * 70_000)
    assert verdict(body, headers).status == 413  # type: ignore[union-attr]


def test_the_decided_message_replaces_only_that_actions_buttons() -> None:
    other = "act-fedcba9876543210"
    message = {"text": "alert", "blocks": [{"type": "header"}, buttons(ACTION, "a"), buttons(other, "b")]}
    update = decided_message(message, ACTION, "Approved by <@U0APPROVER>: *applied*")
    assert update["replace_original"] is True and update["text"] == "alert"
    assert update["blocks"][0] == {"type": "header"} and update["blocks"][2] == buttons(other, "b")
    assert update["blocks"][1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Approved by <@U0APPROVER>: *applied*"}],
    }
