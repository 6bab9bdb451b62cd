"""Notification responders: pure builders (truncation, severity, grouping) and sends against moto and a local
HTTP server standing in for Slack. Only loopback addresses are contacted."""

from __future__ import annotations

import copy
import json
import logging
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from responders.base import ResponderError, Target, get_responder, registry
from responders.notify import securityhub, slack, sns, summary, webhook

ACCOUNT = "123456789012"
REGION = "us-east-1"
TOKEN = "T0000/B0000/s3cr3tWebh00kT0ken"  # the secret part of a webhook URL, searched for in every output

# Shaped after `cordon replay examples/scenarios --output json`, trimmed, with two playbook actions.
INCIDENT: dict[str, Any] = {
    "id": "inc-da5a423e15fb6ee1",
    "title": "Credentials named in a GuardDuty finding used against ML assets",
    "rules": ["guardduty-finding", "ml_credential_finding_then_ml_access", "ml_training_read_then_model_download"],
    "severity": "critical",
    "first_seen": "2026-11-20T09:35:02+00:00",
    "last_seen": "2026-11-20T10:12:02.402000+00:00",
    "entities": [
        {"type": "principal", "id": "arn:aws:iam::111122223333:role/ml-training-role"},
        {"type": "access_key", "id": "ASIAQNOTEBOOKEXAMPLE"},
        {"type": "session", "id": "arn:aws:sts::111122223333:assumed-role/ml-training-role/i-0a1b2c3d4e5f67890"},
        {"type": "instance", "id": "i-0a1b2c3d4e5f67890"},
        {"type": "source_ip", "id": "203.0.113.77"},
        {"type": "account", "id": "111122223333"},
        {"type": "bucket", "id": "arn:aws:s3:::acme-fraud-training"},
        {"type": "object", "id": "s3://acme-fraud-training/datasets/2026-11/part-0005.parquet"},
        {"type": "sagemaker_endpoint", "id": "arn:aws:sagemaker:us-east-1:111122223333:endpoint/fraud-scorer"},
    ],
    "signals": [
        {"rule": "ml_asset_access", "event_id": "ev-1", "time": "2026-11-20T09:35:02+00:00", "source": "cloudtrail"},
        {
            "rule": "ml_training_data_read",
            "event_id": "ev-1",
            "time": "2026-11-20T09:35:02+00:00",
            "source": "cloudtrail",
        },
        {
            "rule": "guardduty_credential_finding",
            "event_id": "ev-2",
            "time": "2026-11-20T09:57:41+00:00",
            "source": "guardduty",
        },
        {
            "rule": "ml_model_artifact_download",
            "event_id": "ev-3",
            "time": "2026-11-20T10:12:02+00:00",
            "source": "cloudtrail",
        },
    ],
    "actions": [
        {
            "playbook": "contain-stolen-credentials",
            "step": "deactivate-key",
            "responder": "iam.deactivate-access-key",
            "target": "ASIAQNOTEBOOKEXAMPLE",
            "status": "applied",
            "params": {"note": "params stay out of notifications"},
        },
        {
            "playbook": "contain-stolen-credentials",
            "step": "quarantine-endpoint",
            "responder": "sagemaker.quarantine-endpoint",
            "target": "arn:aws:sagemaker:us-east-1:111122223333:endpoint/fraud-scorer",
            "status": "pending_approval",
            "params": {},
        },
    ],
}


def incident(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(INCIDENT), **changes}


def target_of(data: dict[str, Any]) -> Target:
    return Target(type="incident", id=data["id"])


def run(name: str, ctx: Any, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """read_state then apply, as the runner does."""
    responder = get_responder(name)
    model = responder.Params.model_validate(params)
    before = responder.read_state(ctx, target_of(ctx.incident), model)
    return before, responder.apply(ctx, target_of(ctx.incident), model, before)


# --- pure helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("critical", "CRITICAL"),
        ("HIGH", "HIGH"),
        ("medium", "MEDIUM"),
        ("low", "LOW"),
        ("informational", "INFORMATIONAL"),
    ],
)
def test_severity_label_maps_each_severity(value: str, label: str) -> None:
    assert summary.severity_label({"severity": value}) == label


@pytest.mark.parametrize("value", [None, "", "urgent"])
def test_unknown_severity_reads_as_medium(value: str | None) -> None:
    assert summary.severity_of({"severity": value}) == "medium"


def test_truncate_and_shorten_respect_the_limit() -> None:
    assert summary.truncate("abcdef", 6) == "abcdef"
    assert summary.truncate("abcdefg", 6) == "abcde…"
    assert summary.truncate("abcdefg", 6, "...") == "abc..."
    arn = "arn:aws:s3:::acme-fraud-training/datasets/2026-11/part-0005.parquet"
    short = summary.shorten(arn, 30)
    assert len(short) == 30
    assert short.startswith("arn:aws:s3:::") and short.endswith("0005.parquet")


def test_subject_is_one_ascii_line_of_at_most_100_characters() -> None:
    data = incident(title="Exfiltración de\nmodelo \u2014 " + "x" * 200, severity="high")

    subject = summary.subject(data)

    assert subject.startswith("[Cordon HIGH] Exfiltracion de modelo ")
    assert len(subject) == 100 and subject.endswith("...")
    assert subject.isascii() and subject.isprintable()


def test_timeline_groups_rules_by_event_and_keeps_the_first_and_latest() -> None:
    signals = [
        {"rule": f"r{i}", "event_id": f"ev-{i:02d}", "time": f"2026-11-20T10:{i:02d}:00Z", "source": "cloudtrail"}
        for i in range(30)
    ]
    shown, omitted = summary.timeline({"signals": list(reversed(signals))}, 10)

    assert [e["event_id"] for e in shown] == [f"ev-{i:02d}" for i in (*range(5), *range(25, 30))]
    assert omitted == 20
    grouped = summary.events(INCIDENT)
    assert grouped[0]["rules"] == ["ml_asset_access", "ml_training_data_read"]
    assert [e["event_id"] for e in grouped] == ["ev-1", "ev-2", "ev-3"]


def test_summary_is_bounded_and_leaves_action_params_out() -> None:
    data = incident(entities=[{"type": "object", "id": f"s3://b/k{i}"} for i in range(80)])

    result = summary.summary(data, max_entities=50)

    assert len(result["entities"]) == 50 and result["entities_total"] == 80
    assert result["actions"][0] == {
        "playbook": "contain-stolen-credentials",
        "step": "deactivate-key",
        "responder": "iam.deactivate-access-key",
        "target": "ASIAQNOTEBOOKEXAMPLE",
        "status": "applied",
    }
    assert result["events_total"] == 3


def test_build_publish_sets_filterable_attributes() -> None:
    params = sns.SnsParams(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts", subject_prefix="Cordon prod")

    request = sns.build_publish(INCIDENT, params)

    assert request["Subject"] == "[Cordon prod CRITICAL] " + INCIDENT["title"]
    assert request["MessageAttributes"]["severity"] == {"DataType": "String", "StringValue": "critical"}
    assert json.loads(request["MessageAttributes"]["rule"]["StringValue"]) == INCIDENT["rules"]
    assert request["MessageAttributes"]["rule"]["DataType"] == "String.Array"
    assert "MessageGroupId" not in request


def test_build_publish_to_a_fifo_topic_groups_by_incident_and_deduplicates() -> None:
    params = sns.SnsParams(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts.fifo")

    first, again = sns.build_publish(INCIDENT, params), sns.build_publish(INCIDENT, params)

    assert first["MessageGroupId"] == INCIDENT["id"]
    assert first["MessageDeduplicationId"] == again["MessageDeduplicationId"]


@pytest.mark.parametrize(
    "params",
    [
        {"topic_arn": "cordon-alerts"},
        {"topic_arn": "arn:aws:sqs:us-east-1:123456789012:cordon-alerts"},
        {"topic_arn": "arn:aws:sns:us-east-1:123456789012:cordon-alerts", "subject": "x"},
        {"topic_arn": "arn:aws:sns:us-east-1:123456789012:cordon-alerts", "subject_prefix": "Córdon\n"},
    ],
)
def test_sns_params_are_strict(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sns.SnsParams.model_validate(params)


def test_slack_message_has_header_severity_entities_timeline_and_actions() -> None:
    message = slack.build_message(INCIDENT)
    blocks = message["blocks"]

    assert message["text"] == "[Cordon CRITICAL] " + INCIDENT["title"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": INCIDENT["title"]}}
    assert blocks[1]["fields"][0]["text"] == "*Severity*\n:red_circle: CRITICAL"
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert texts[0].splitlines()[1] == "*principal* (1): `arn:aws:iam::111122223333:role/ml-training-role`"
    assert texts[1].splitlines()[1:] == [
        "`2026-11-20 09:35:02Z` cloudtrail: ml_asset_access, ml_training_data_read",
        "`2026-11-20 09:57:41Z` guardduty: guardduty_credential_finding",
        "`2026-11-20 10:12:02Z` cloudtrail: ml_model_artifact_download",
    ]
    assert texts[2].splitlines()[1] == (
        "• `iam.deactivate-access-key` on `ASIAQNOTEBOOKEXAMPLE`: *applied* (contain-stolen-credentials/deactivate-key)"
    )


def test_slack_message_stays_within_block_kit_limits_and_escapes_mrkdwn() -> None:
    data = incident(
        title="<!channel> & " + "t" * 300,
        entities=[{"type": "object", "id": f"s3://bucket/{'k' * 300}/{i}"} for i in range(400)],
        signals=[{"rule": "r" * 200, "event_id": str(i), "time": "x", "source": "cloudtrail"} for i in range(200)],
        actions=[{"responder": "a", "target": "b", "status": "applied"}] * 40,
    )

    blocks = slack.build_message(data)["blocks"]

    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) == 150
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    assert "*object* (400): " in sections[0] and "+395 more" in sections[0]
    assert "_… 190 more events …_" in sections[1]
    assert sections[2].endswith("_+30 more actions_")
    escaped = slack._esc("<!channel> & `x`")
    assert escaped == "&lt;!channel&gt; &amp; 'x'"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.invalid/services/x",
        "http://127.0.0.1:8080/x",
        "http://127.9.9.9/x",
        "http://[::1]:9/x",
        "http://localhost/x",
    ],
)
def test_webhook_url_must_be_https_or_loopback_http(url: str) -> None:
    assert webhook.check_url(url, "env:X") == url


@pytest.mark.parametrize(
    "url",
    [
        f"http://hooks.example.invalid/services/{TOKEN}",
        f"http://127.0.0.1.example.invalid/{TOKEN}",
        f"ftp://127.0.0.1/{TOKEN}",
        f"https:///{TOKEN}",
    ],
)
def test_a_refused_webhook_url_is_not_quoted(url: str) -> None:
    with pytest.raises(ResponderError, match=r"^webhook URL from env:X ") as error:
        webhook.check_url(url, "env:X")
    assert TOKEN not in str(error.value)


def test_retry_delay_honours_retry_after_up_to_a_cap() -> None:
    assert webhook.retry_delay(1, "2") == 2.0
    assert webhook.retry_delay(1, "3600") == webhook.MAX_RETRY_AFTER_SECONDS
    assert webhook.retry_delay(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert all(webhook.retry_delay(n, None) <= webhook.MAX_DELAY_SECONDS for n in range(1, 20))


def test_slack_params_take_exactly_one_source() -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cordon/slack-AbCdEf"
    assert slack.SlackParams().source == "env:CORDON_SLACK_WEBHOOK_URL"
    assert slack.SlackParams(webhook_secret_arn=arn).source == f"secret:{arn}"
    with pytest.raises(ValidationError, match="give exactly one of webhook_secret_arn and webhook_env"):
        slack.SlackParams(webhook_secret_arn=arn, webhook_env="CORDON_SLACK_WEBHOOK_URL")
    with pytest.raises(ValidationError):
        slack.SlackParams.model_validate({"webhook_url": "https://hooks.example.invalid/x"})


@pytest.mark.parametrize(
    ("rules", "types"),
    [
        (["ml_credential_finding_then_ml_access"], ["TTPs/Credential Access"]),
        (["ml_training_read_then_model_download"], ["Effects/Data Exfiltration"]),
        (["ml_defense_evasion_near_ml", "logging_or_detection_tampering"], ["TTPs/Defense Evasion"]),
        (["ml_credential_created_then_used"], ["TTPs/Persistence"]),
        (["ml_endpoint_alarm_with_activity"], ["Unusual Behaviors/Application"]),
        (["guardduty-finding"], ["Unusual Behaviors/User"]),
        ([], ["Unusual Behaviors/User"]),
    ],
)
def test_finding_types_follow_the_rules(rules: list[str], types: list[str]) -> None:
    assert securityhub.finding_types(rules) == types


def test_build_finding_maps_the_incident_to_asff() -> None:
    now = datetime(2026, 11, 20, 11, 0, 0, 123456, tzinfo=UTC)

    finding = securityhub.build_finding(INCIDENT, account=ACCOUNT, region=REGION, now=now)

    assert finding["Id"] == INCIDENT["id"]
    assert finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert finding["GeneratorId"] == "cordon/guardduty-finding"
    assert finding["Severity"] == {"Label": "CRITICAL", "Original": "critical"}
    assert finding["Types"] == ["TTPs/Credential Access", "Effects/Data Exfiltration"]
    assert (finding["CreatedAt"], finding["UpdatedAt"]) == ("2026-11-20T09:35:02.000Z", "2026-11-20T11:00:00.123Z")
    assert finding["LastObservedAt"] == "2026-11-20T10:12:02.402Z"
    assert finding["ProductFields"]["cordon/generated"] == "true"
    assert finding["ProductFields"]["cordon/incident_id"] == INCIDENT["id"]
    assert [(r["Type"], r["Id"]) for r in finding["Resources"]] == [
        ("AwsIamRole", "arn:aws:iam::111122223333:role/ml-training-role"),
        ("AwsIamAccessKey", "AWS::IAM::AccessKey:ASIAQNOTEBOOKEXAMPLE"),
        ("Other", "arn:aws:sts::111122223333:assumed-role/ml-training-role/i-0a1b2c3d4e5f67890"),
        ("AwsEc2Instance", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0a1b2c3d4e5f67890"),
        ("Other", "203.0.113.77"),
        ("AwsAccount", "AWS::::Account:111122223333"),
        ("AwsS3Bucket", "arn:aws:s3:::acme-fraud-training"),
        ("AwsS3Object", "arn:aws:s3:::acme-fraud-training/datasets/2026-11/part-0005.parquet"),
        ("Other", "arn:aws:sagemaker:us-east-1:111122223333:endpoint/fraud-scorer"),
    ]
    assert finding["Resources"][-1]["Details"] == {"Other": {"cordon/entity_type": "sagemaker_endpoint"}}
    assert finding["Description"].startswith("Cordon correlated 3 events (cloudtrail, guardduty) between ")


def test_build_finding_respects_asff_limits() -> None:
    data = incident(
        title="t" * 400,
        entities=[{"type": "api", "id": f"api-{i}"} for i in range(40)],
        actions=[{"responder": "x" * 50, "target": "y" * 50, "status": "applied"}] * 30,
    )
    now = datetime(2026, 11, 20, tzinfo=UTC)  # before last_seen: UpdatedAt never precedes what it reports

    finding = securityhub.build_finding(data, account=ACCOUNT, region=REGION, now=now)

    assert len(finding["Title"]) == 256 and finding["Title"].endswith("…")
    assert len(finding["Description"]) == 1024
    assert len(finding["Resources"]) == 32
    assert finding["UpdatedAt"] == finding["LastObservedAt"]
    bare = securityhub.build_finding(incident(entities=[], rules=[]), account=ACCOUNT, region="cn-north-1", now=now)
    assert bare["Resources"] == [
        {"Type": "AwsAccount", "Id": f"AWS::::Account:{ACCOUNT}", "Partition": "aws-cn", "Region": "cn-north-1"}
    ]
    assert bare["GeneratorId"] == "cordon/incident"


@pytest.mark.parametrize("name", ["notify.sns", "notify.slack", "notify.securityhub"])
def test_docstring_example_is_a_valid_step(name: str) -> None:
    cls = registry()[name]
    example = textwrap.dedent((cls.__doc__ or "").split("Example::\n", 1)[1])
    (step,) = yaml.safe_load(example)

    assert step["responder"] == name and step["target"] == "id"
    cls.Params.model_validate(step["params"])
    assert cls.target_types == frozenset({"incident"}) and not cls.reversible and cls.permissions


def test_a_notification_refuses_another_incident(aws: Any, make_context: Any) -> None:
    ctx = make_context(aws, INCIDENT)
    params = sns.SnsParams(topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts")

    with pytest.raises(ResponderError, match="target 'inc-other' is not this action's incident"):
        get_responder("notify.sns").apply(ctx, Target(type="incident", id="inc-other"), params, {})
    with pytest.raises(ResponderError, match="target type 'access_key' is not an incident"):
        get_responder("notify.sns").apply(ctx, Target(type="access_key", id=INCIDENT["id"]), params, {})


# --- notify.sns against moto ----------------------------------------------------------------------------------


def _subscribed_queue(session: Any, topic_arn: str, filter_policy: dict[str, Any] | None = None) -> str:
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=f"q{len(sqs.list_queues().get('QueueUrls', []))}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "false"}
    if filter_policy:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return str(url)


def _delivered(session: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = session.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_sns_publishes_the_summary_with_subject_and_attributes(aws: Any, make_context: Any) -> None:
    # GIVEN a topic with an SQS subscriber receiving SNS envelopes (raw delivery off)
    topic_arn = aws.client("sns").create_topic(Name="cordon-alerts")["TopicArn"]
    queue = _subscribed_queue(aws, topic_arn)

    # WHEN the incident is notified
    before, after = run("notify.sns", make_context(aws, incident()), {"topic_arn": topic_arn})

    # THEN the subscriber gets the summary, the subject and both filterable attributes
    (envelope,) = _delivered(aws, queue)
    assert before == {"topic_arn": topic_arn, "topic_exists": True}
    assert after["message_id"] == envelope["MessageId"]
    assert envelope["Subject"] == "[Cordon CRITICAL] " + INCIDENT["title"]
    assert json.loads(envelope["Message"]) == summary.summary(INCIDENT)
    assert envelope["MessageAttributes"]["severity"] == {"Type": "String", "Value": "critical"}
    assert envelope["MessageAttributes"]["rule"]["Type"] == "String.Array"
    assert json.loads(envelope["MessageAttributes"]["rule"]["Value"]) == INCIDENT["rules"]


def test_sns_filter_policy_on_severity_receives_only_high(aws: Any, make_context: Any) -> None:
    topic_arn = aws.client("sns").create_topic(Name="cordon-alerts")["TopicArn"]
    paging = _subscribed_queue(aws, topic_arn, {"severity": ["high"]})
    by_rule = _subscribed_queue(aws, topic_arn, {"rule": ["ml_bulk_training_read"]})

    for severity, rules in (("high", ["ml_bulk_training_read"]), ("low", ["ml_asset_access"])):
        data = incident(id=f"inc-{severity}", severity=severity, rules=rules)
        run("notify.sns", make_context(aws, data), {"topic_arn": topic_arn})

    assert [json.loads(e["Message"])["id"] for e in _delivered(aws, paging)] == ["inc-high"]
    assert [json.loads(e["Message"])["id"] for e in _delivered(aws, by_rule)] == ["inc-high"]


def test_sns_to_a_missing_topic_fails_permanently(aws: Any, make_context: Any) -> None:
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:no-such-topic"

    with pytest.raises(ResponderError) as error:
        run("notify.sns", make_context(aws, incident()), {"topic_arn": topic_arn})
    assert error.value.permanent and error.value.code == "NotFound"

    responder = get_responder("notify.sns")
    state = responder.read_state(make_context(aws), target_of(INCIDENT), sns.SnsParams(topic_arn=topic_arn))
    assert state == {"topic_arn": topic_arn, "topic_exists": False}


# --- notify.slack against a local HTTP server ------------------------------------------------------------------


class FakeSlack:
    """A webhook on 127.0.0.1 that records each request and answers from a script (default 200 "ok")."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status, headers, text = fake.answers.pop(0) if fake.answers else (200, {}, "ok")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: Any) -> None:  # keep the test output (and caplog) quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    thread.join()


def _assert_url_hidden(fake: FakeSlack, *texts: str) -> None:
    for text in texts:
        assert fake.url not in text and TOKEN not in text and "/services/" not in text


def test_slack_posts_block_kit_from_the_env_webhook(
    aws: Any, make_context: Any, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORDON_SLACK_WEBHOOK_URL", fake_slack.url)

    before, after = run("notify.slack", make_context(aws, incident()), {})

    (request,) = fake_slack.requests
    assert request["path"] == f"/services/{TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["json"] == slack.build_message(INCIDENT)
    assert after["status"] == 200 and after["attempts"] == 1
    assert after["host"] == before["host"] == "127.0.0.1"
    assert after["url_sha256"] == before["url_sha256"] == webhook.fingerprint(fake_slack.url)["url_sha256"]
    _assert_url_hidden(fake_slack, json.dumps(before), json.dumps(after))


@pytest.mark.parametrize("form", ["plain", "json"])
def test_slack_reads_the_webhook_from_secrets_manager(
    aws: Any, make_context: Any, fake_slack: FakeSlack, form: str
) -> None:
    value = fake_slack.url if form == "plain" else json.dumps({"webhook_url": fake_slack.url})
    arn = aws.client("secretsmanager").create_secret(Name="cordon/slack", SecretString=value)["ARN"]

    _, after = run("notify.slack", make_context(aws, incident()), {"webhook_secret_arn": arn})

    assert len(fake_slack.requests) == 1
    assert after["source"] == f"secret:{arn}"
    params = slack.SlackParams(webhook_secret_arn=arn)
    _assert_url_hidden(fake_slack, json.dumps(after), repr(params), str(params.model_dump()))


def test_slack_missing_secret_fails_permanently(aws: Any, make_context: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cordon/missing-AbCdEf"

    with pytest.raises(ResponderError, match="ResourceNotFoundException") as error:
        run("notify.slack", make_context(aws, incident()), {"webhook_secret_arn": arn})
    assert error.value.permanent


@pytest.mark.parametrize("status", [404, 500])
def test_slack_errors_never_show_the_webhook_url(
    aws: Any,
    make_context: Any,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    # GIVEN a webhook that fails, echoing the URL it was called on, as some servers do
    monkeypatch.setenv("CORDON_SLACK_WEBHOOK_URL", fake_slack.url)
    fake_slack.answers = [(status, {"Retry-After": "0"}, f"no_service: {fake_slack.url}")] * webhook.MAX_ATTEMPTS
    caplog.set_level(logging.DEBUG)

    # WHEN it is notified
    with pytest.raises(ResponderError) as error:
        run("notify.slack", make_context(aws, incident()), {})

    # THEN the error (4xx permanent, 5xx transient after retries) names the host and status, not the URL
    attempts = 1 if status == 404 else webhook.MAX_ATTEMPTS
    assert str(error.value).startswith(f"notify.slack: webhook at 127.0.0.1 returned HTTP {status}: no_service: ")
    assert (error.value.permanent, error.value.code) == (status == 404, f"HTTP{status}")
    assert len(fake_slack.requests) == attempts
    assert error.value.__context__ is None and error.value.__cause__ is None
    _assert_url_hidden(fake_slack, str(error.value), repr(error.value), caplog.text)


def test_slack_retries_429_then_succeeds(
    aws: Any,
    make_context: Any,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("CORDON_SLACK_WEBHOOK_URL", fake_slack.url)
    fake_slack.answers = [(429, {"Retry-After": "0"}, "rate_limited")]

    _, after = run("notify.slack", make_context(aws, incident()), {})

    assert after["attempts"] == 2 and len(fake_slack.requests) == 2
    assert "returned HTTP 429: rate_limited; retrying in 0.0s (attempt 1 of 4)" in caplog.text
    _assert_url_hidden(fake_slack, caplog.text)


def test_post_json_waits_as_retry_after_says_but_no_longer_than_the_cap(fake_slack: FakeSlack) -> None:
    fake_slack.answers = [(503, {"Retry-After": "3"}, ""), (429, {"Retry-After": "600"}, "")]
    waits: list[float] = []

    delivery = webhook.post_json(fake_slack.url, {"text": "hi"}, name="test", sleep=waits.append)

    assert (delivery.status, delivery.attempts) == (200, 3)
    assert waits == [3.0, webhook.MAX_RETRY_AFTER_SECONDS]


def test_post_json_refuses_redirects(fake_slack: FakeSlack) -> None:
    fake_slack.answers = [(302, {"Location": "http://127.0.0.1:9/elsewhere"}, "")]

    with pytest.raises(ResponderError, match=r"^test: webhook at 127.0.0.1 returned HTTP 302$") as error:
        webhook.post_json(fake_slack.url, {"text": "hi"}, name="test", sleep=lambda _: None)
    assert error.value.permanent and len(fake_slack.requests) == 1


def test_post_json_unreachable_is_transient_and_hides_the_url(fake_slack: FakeSlack) -> None:
    url = fake_slack.url
    fake_slack.server.server_close()  # nothing listens on the port any more

    with pytest.raises(ResponderError, match=r"^test: webhook at 127.0.0.1 unreachable: ") as error:
        webhook.post_json(url, {"text": "hi"}, name="test", sleep=lambda _: None)
    assert not error.value.permanent and error.value.code == "Connection"
    assert TOKEN not in str(error.value)


def test_slack_refuses_plain_http_to_another_host(aws: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORDON_WEBHOOK", f"http://hooks.example.invalid/services/{TOKEN}")

    with pytest.raises(ResponderError, match=r"^webhook URL from env:CORDON_WEBHOOK must be https") as error:
        run("notify.slack", make_context(aws, incident()), {"webhook_env": "CORDON_WEBHOOK"})
    assert TOKEN not in str(error.value)


def test_slack_without_a_webhook_says_which_variable(
    aws: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CORDON_SLACK_WEBHOOK_URL", raising=False)

    with pytest.raises(ResponderError, match=r"^environment variable CORDON_SLACK_WEBHOOK_URL is not set$"):
        run("notify.slack", make_context(aws, incident()), {})


# --- notify.securityhub against moto ---------------------------------------------------------------------------


def _findings(session: Any) -> list[dict[str, Any]]:
    return list(session.client("securityhub").get_findings()["Findings"])


def test_securityhub_imports_one_finding_and_updates_it_in_place(aws: Any, make_context: Any) -> None:
    # GIVEN Security Hub enabled and no finding yet
    aws.client("securityhub").enable_security_hub()
    ctx = make_context(aws, incident())
    ctx.now = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)

    # WHEN the incident is notified, then grows and is notified again
    before, after = run("notify.securityhub", ctx, {})
    grown = make_context(aws, incident(severity="critical", last_seen="2026-11-20T11:30:00+00:00"))
    grown.now = ctx.now + timedelta(minutes=45)
    _, updated = run("notify.securityhub", grown, {})

    # THEN there is one finding, marked as Cordon's own, carrying the latest state
    assert before["exists"] is False
    assert after["exists"] is True and after["updated_at"] == "2026-11-20T11:00:00.000Z"
    (finding,) = _findings(aws)
    assert finding["Id"] == INCIDENT["id"]
    assert finding["ProductFields"][securityhub.GENERATED_MARKER] == "true"
    assert finding["LastObservedAt"] == "2026-11-20T11:30:00.000Z"
    assert updated["updated_at"] == "2026-11-20T11:45:00.000Z" and updated["severity"] == "CRITICAL"


def test_securityhub_reports_a_refused_finding(aws: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto refuses a finding without resources with FailedCount 1, as Security Hub does.
    aws.client("securityhub").enable_security_hub()
    build = securityhub.build_finding
    monkeypatch.setattr(securityhub, "build_finding", lambda *a, **k: {**build(*a, **k), "Resources": []})

    with pytest.raises(ResponderError, match=f"^notify.securityhub: finding {INCIDENT['id']} refused: InvalidInput"):
        run("notify.securityhub", make_context(aws, incident()), {})
    assert _findings(aws) == []
