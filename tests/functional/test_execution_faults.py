"""Execution when AWS, a webhook or a responder misbehaves: guards fail closed, any exception fails only its
action (with an audit record), secrets stay out of every message, a change that took despite a 500 is recorded
applied, rollback after a retry restores the state before the first attempt, and the idempotency and
notification keys (issue 7, "Execution and guards")."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import botocore.client
import pytest
from botocore.exceptions import ClientError

from cordon.audit import Status
from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.plan import plan_incident
from responders.base import ResponderError
from responders.iam import DeactivateAccessKey
from responders.notify import webhook
from tests.functional.test_execute import ACCOUNT, RESPONDERS, World, _credentials, _statuses, aws

__all__ = ["_credentials", "aws"]  # fixtures, used by name

SECRET = "T0FAKE/B0FAKE/SeCrEtToKeN1234567890"


def _fault(monkeypatch: pytest.MonkeyPatch, operation: str, fault: Callable[[Any, dict[str, Any]], Any]) -> None:
    """Every client's `operation` answered by `fault(original_call, params)` (across sessions: the executor makes
    its own). moto cannot refuse or half-answer on demand, so the fault sits in front of it."""
    original = botocore.client.BaseClient._make_api_call

    def patched(client: Any, name: str, params: dict[str, Any]) -> Any:
        if name == operation:
            return fault(lambda: original(client, name, params), params)
        return original(client, name, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", patched)


def _error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


# --- guards fail closed ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["AccessDenied", "Throttling"])
def test_an_unreadable_key_owner_denies_the_action(aws, tmp_path, monkeypatch, code) -> None:
    # GIVEN mallory is protected by tag, and the owner of her key cannot be read
    world = World(aws, tmp_path)
    world.iam.tag_user(UserName="mallory", Tags=[{"Key": "cordon:protected", "Value": "true"}])
    _fault(
        monkeypatch,
        "GetAccessKeyLastUsed",
        lambda call, params: (_ for _ in ()).throw(_error(code, 403, "GetAccessKeyLastUsed")),
    )
    # WHEN the playbook runs
    actions = world.run()
    # THEN the key is not touched: denied, with the reason in the audit
    assert actions[0]["status"] == "denied"
    assert f"cannot tell whether {world.key} is protected" in actions[0]["reason"]
    assert code in actions[0]["reason"] and "guards fail closed" in actions[0]["reason"]
    assert world.key_status()[world.key] == "Active"
    assert world.audit.get(actions[0]["id"]).status is Status.DENIED


def test_an_unreadable_tag_denies_the_action(aws, tmp_path, monkeypatch) -> None:
    world = World(aws, tmp_path)
    _fault(
        monkeypatch,
        "ListUserTags",
        lambda call, params: (_ for _ in ()).throw(_error("AccessDenied", 403, "ListUserTags")),
    )
    actions = world.run()
    assert _statuses(actions)[:2] == [("deactivate-key", "denied"), ("deny-ml-data", "denied")]
    assert "AccessDenied" in actions[1]["reason"]
    assert world.key_status()[world.key] == "Active"


# --- any exception fails only its action ----------------------------------------------------------------------------
def test_an_empty_reply_fails_that_action_and_the_run_goes_on(aws, tmp_path, monkeypatch) -> None:
    # GIVEN ListAccessKeys answers 200 with an empty body (KeyError in the responder)
    world = World(aws, tmp_path)
    _fault(monkeypatch, "ListAccessKeys", lambda call, params: {})
    # WHEN the playbook runs
    actions = world.run()
    # THEN that action is failed with a record, and the next step and the notification still happen
    assert _statuses(actions) == [
        ("deactivate-key", "failed"),
        ("deny-ml-data", "applied"),
        ("notify:notify.sns", "applied"),
    ]
    assert actions[0]["reason"].startswith("internal error: KeyError")
    assert world.audit.get(actions[0]["id"]).status is Status.FAILED


# --- secrets ---------------------------------------------------------------------------------------------------------
SLACK_PLAYBOOK = """\
name: tell
mode: enforce
trigger: {rules: [r], min_severity: high}
steps: []
notify:
  - responder: notify.slack
  - responder: notify.sns
    bind: {topic_arn: site.topic}
"""


@pytest.mark.parametrize("bad", ["\n", "\x01", " "])
def test_a_webhook_url_with_a_control_character_never_leaks(aws, tmp_path, monkeypatch, caplog, capsys, bad) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CORDON_SLACK_WEBHOOK_URL", f"https://hooks.slack.com/services/{SECRET}{bad}x")
    world = World(aws, tmp_path)
    path = tmp_path / "tell.yaml"
    path.write_text(SLACK_PLAYBOOK)
    world.playbooks, _ = load_playbooks([path], RESPONDERS, {"r"})
    actions = world.run()
    assert _statuses(actions) == [("notify:notify.slack", "failed"), ("notify:notify.sns", "applied")]
    told = (
        repr(actions) + repr([r.model_dump() for r in world.audit.records()]) + caplog.text + str(capsys.readouterr())
    )
    assert "SeCrEtToKeN" not in told


@pytest.mark.parametrize("bad", ["\n", "\x01", "\r\nX-Evil: 1"])
def test_post_json_never_puts_the_url_in_an_error(caplog, bad) -> None:
    # check_url refuses such a URL first; post_json must be safe on its own too (http.client's InvalidURL).
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:9/services/{SECRET}{bad}"
    with pytest.raises(ResponderError) as raised:
        webhook.post_json(url, {"text": "hi"}, name="notify.slack", sleep=lambda _: None)
    assert "SeCrEtToKeN" not in str(raised.value) + caplog.text
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_an_internal_error_message_keeps_urls_out() -> None:
    from cordon.execute import failure_reason

    reason = failure_reason(ValueError(f"bad https://hooks.slack.com/services/{SECRET}?x=1 and \x07"))
    assert "SeCrEtToKeN" not in reason and "https://hooks.slack.com/<redacted>" in reason and "\x07" not in reason


# --- verify after a failed call --------------------------------------------------------------------------------------
def test_a_change_that_took_before_a_500_is_recorded_applied(aws, tmp_path, monkeypatch) -> None:
    # GIVEN UpdateAccessKey changes the key and then answers 500
    world = World(aws, tmp_path)

    def applied_then_500(call: Callable[[], Any], params: dict[str, Any]) -> Any:
        call()
        raise _error("InternalError", 500, "UpdateAccessKey")

    _fault(monkeypatch, "UpdateAccessKey", applied_then_500)
    # WHEN the playbook runs
    actions = world.run()
    # THEN the audit says what is true: applied (read back), with the error noted, and rollback can undo it
    assert actions[0]["status"] == "applied"
    assert "verified by reading it back" in actions[0]["reason"] and "InternalError" in actions[0]["reason"]
    assert world.key_status()[world.key] == "Inactive"
    record = world.audit.get(actions[0]["id"])
    assert record.before["status"] == "Active" and record.after["status"] == "Inactive"


def test_a_refused_call_stays_failed(aws, tmp_path, monkeypatch) -> None:
    world = World(aws, tmp_path)
    _fault(
        monkeypatch,
        "UpdateAccessKey",
        lambda call, params: (_ for _ in ()).throw(_error("AccessDenied", 403, "UpdateAccessKey")),
    )
    actions = world.run()
    assert actions[0]["status"] == "failed" and "AccessDenied" in actions[0]["reason"]


# --- retry, then rollback ---------------------------------------------------------------------------------------------
class _HalfDone(DeactivateAccessKey):
    """Deactivates the key, then fails (a permanent error, so it is not read back as applied) on its first call."""

    calls = 0

    def apply(self, ctx: Any, target: Any, params: Any, before: Any) -> Any:
        type(self).calls += 1
        after = super().apply(ctx, target, params, before)
        if type(self).calls == 1:
            raise ResponderError("connection reset after the change", permanent=True)
        return after


def test_retry_then_rollback_restores_the_state_before_the_first_attempt(aws, tmp_path) -> None:
    # GIVEN a first attempt that deactivated the key and failed, and a retry that succeeded
    world = World(aws, tmp_path)
    world.executor._responders = {**RESPONDERS, "iam.deactivate-access-key": _HalfDone}
    first = world.run()
    assert first[0]["status"] == "failed" and world.key_status()[world.key] == "Inactive"
    second = world.run()
    assert second[0]["status"] == "applied"
    # WHEN it is rolled back
    rolled = world.executor.rollback(second[0]["id"])
    # THEN the key is Active again, as it was before the first attempt
    assert rolled.status is Status.ROLLED_BACK
    assert world.key_status()[world.key] == "Active"


# --- keys -------------------------------------------------------------------------------------------------------------
ESCALATE = """\
name: contain-hard
mode: enforce
trigger: {rules: [r], min_severity: high}
steps:
  - name: deny-ml-data
    responder: iam.quarantine-principal
    target: "entities[?type=='principal'].id"
"""

WAIT = """\
name: contain-soft
mode: approval
trigger: {rules: [r], min_severity: high}
steps:
  - name: deny-ml-data
    responder: iam.quarantine-principal
    target: "entities[?type=='principal'].id"
"""


def test_a_pending_approval_does_not_swallow_another_playbooks_enforce_step(aws, tmp_path) -> None:
    # GIVEN one playbook waits for approval of deny-ml-data, another enforces the same step
    world = World(aws, tmp_path)
    for name, text in (("a.yaml", WAIT), ("b.yaml", ESCALATE)):
        (tmp_path / name).write_text(text)
    world.playbooks, _ = load_playbooks([tmp_path / "a.yaml", tmp_path / "b.yaml"], RESPONDERS, {"r"})
    # WHEN the incident runs
    actions = world.run()
    # THEN the enforce step is applied, and the approval stays pending: each has its own record
    assert [(a["playbook"], a["status"]) for a in actions] == [
        ("contain-soft", "pending_approval"),
        ("contain-hard", "applied"),
    ]
    assert world.iam.list_user_policies(UserName="mallory")["PolicyNames"] == ["cordon-quarantine"]


def test_the_same_change_asked_by_two_playbooks_is_one_action(aws, tmp_path) -> None:
    # GIVEN two playbooks that enforce the same deny-ml-data on the same principal
    world = World(aws, tmp_path)
    (tmp_path / "a.yaml").write_text(ESCALATE)
    (tmp_path / "b.yaml").write_text(ESCALATE.replace("name: contain-hard", "name: contain-hard-too"))
    world.playbooks, _ = load_playbooks([tmp_path / "a.yaml", tmp_path / "b.yaml"], RESPONDERS, {"r"})
    # WHEN the incident runs, twice
    first, second = world.run(), world.run()
    # THEN one action makes it (the first playbook's), applied and budgeted once, and a rerun changes nothing
    assert [(a["playbook"], a["status"]) for a in first] == [("contain-hard", "applied")]
    assert second == first and world.audit.applied_count(incident_id="inc-1") == 1


def test_notifications_are_sent_on_creation_severity_rise_and_approval_only(aws, tmp_path) -> None:
    # GIVEN an incident told once
    world = World(aws, tmp_path)
    world.run()
    assert len(world.alerts()) == 1
    # WHEN a context signal moves last_seen: nothing is told again
    world.incident = {**world.incident, "last_seen": "2026-11-20T10:40:00+00:00"}
    world.run()
    assert world.alerts() == []
    # WHEN the severity rises: told again
    world.incident = {**world.incident, "severity": "critical"}
    world.run()
    assert len(world.alerts()) == 1
    # WHEN a new action waits for approval: told again
    (tmp_path / "a.yaml").write_text(
        WAIT.replace("deny-ml-data", "deny-later")
        + "notify:\n  - responder: notify.sns\n    bind: {topic_arn: site.topic}\n"
    )
    world.playbooks, _ = load_playbooks([tmp_path / "a.yaml"], RESPONDERS, {"r"})
    actions = world.run()
    assert actions[0]["status"] == "pending_approval"
    assert len(world.alerts()) == 1


def test_plan_keys_name_the_playbook_and_mode(aws, tmp_path) -> None:
    world = World(aws, tmp_path)
    plans = plan_incident(world.incident, world.playbooks, RESPONDERS, world.config.site, "us-east-1")
    assert plans[0].key == f"inc-1|contain|enforce|deactivate-key|{world.key}"
    assert ACCOUNT in plans[1].key


# --- s3.deny-principal against a concurrent writer ---------------------------------------------------------------
def test_deny_principal_reapplies_when_a_concurrent_writer_erases_its_statement(aws, monkeypatch) -> None:
    import json

    from responders.base import ActionContext, Target
    from responders.s3 import DenyPrincipal, DenyPrincipalParams

    # GIVEN a bucket whose policy another writer replaces, from the policy it read before ours, right after our
    # first write (a lost update: S3 has no conditional PutBucketPolicy)
    iam, s3 = aws.client("iam"), aws.client("s3")
    arn = iam.create_role(RoleName="thief", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s3.create_bucket(Bucket="ml-data")
    theirs = {
        "Sid": "Other",
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:DeleteBucket",
        "Resource": "arn:aws:s3:::ml-data",
    }
    original = botocore.client.BaseClient._make_api_call
    raced: list[str] = []

    def patched(client: Any, name: str, params: dict[str, Any]) -> Any:
        result = original(client, name, params)
        if name == "PutBucketPolicy" and not raced:
            raced.append(params["Policy"])
            stale = json.dumps({"Version": "2012-10-17", "Statement": [theirs]})
            original(client, name, {"Bucket": "ml-data", "Policy": stale})
        return result

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", patched)
    ctx = ActionContext(session=aws, incident={"id": "inc-1"})
    params = DenyPrincipalParams(buckets=["ml-data"])
    # WHEN the deny is applied
    after = DenyPrincipal().apply(ctx, Target("principal", arn), params, {})
    # THEN our statement holds in the end, beside the other writer's
    final = json.loads(s3.get_bucket_policy(Bucket="ml-data")["Policy"])
    assert raced and {s["Sid"] for s in final["Statement"]} == {"Other", after["sid"]}
