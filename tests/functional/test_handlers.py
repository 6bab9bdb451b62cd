"""The Lambda handlers on their own, against moto in-process: what a batch of good, broken and failing records does,
and what reaches Cordon's bus. (tests/e2e/test_deployed_path.py runs the whole deployed path.)"""

from __future__ import annotations

import contextlib
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto import mock_aws

from cordon import constants
from cordon.handlers import correlator, runner
from cordon.respond import IncidentResponse
from correlators.errors import EventRejectedError, StateError
from correlators.ingest import RawRecord, read_inputs
from correlators.normalize import normalize
from responders.notify.slack import build_message
from responders.notify.sns import SnsParams, build_publish
from tests.e2e.deployed_stack import FakeLambdaContext
from tests.unit.test_state_contract import state_table_properties

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUS = "cordon-bus"
TOPIC = "arn:aws:sns:us-east-1:111122223333:cordon-alerts"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        constants.STATE_TABLE_ENV: "state",
        constants.AUDIT_TABLE_ENV: "audit",
        constants.EVENT_BUS_ENV: BUS,
        constants.CONFIG_PARAMETER_ENV: "/cordon/test/config",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(constants.ENDPOINT_URL_ENV, raising=False)
    with mock_aws():
        table = state_table_properties()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for name in ("state", "audit"):
            dynamodb.create_table(
                TableName=name,
                BillingMode=table["BillingMode"],
                AttributeDefinitions=table["AttributeDefinitions"],
                KeySchema=table["KeySchema"],
                GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
            )
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/cordon/test/config", Type="String", Value=(REPO / "examples/cordon.yaml").read_text())
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name=BUS)
        inbox = sqs.create_queue(QueueName="incidents")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": [constants.INCIDENT_EVENT_SOURCE], "detail-type": [constants.INCIDENT_DETAIL_TYPE]}
        events.put_rule(Name="incidents", EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(Rule="incidents", EventBusName=BUS, Targets=[{"Id": "inbox", "Arn": inbox_arn}])
        correlator.reset()
        runner.reset()
        yield {"sqs": sqs, "inbox": inbox}
        correlator.reset()
        runner.reset()


def _scenario_bodies() -> list[str]:
    """The demo's second file: GuardDuty and CloudTrail events as EventBridge delivers them."""
    items = read_inputs([str(REPO / "examples/scenarios/02_eventbridge_0940-1020.jsonl")])
    return [json.dumps(item.payload) for item in items if isinstance(item, RawRecord)]


def _batch(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"r-{n}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:events",
                "awsRegion": REGION,
            }
            for n, body in enumerate(bodies)
        ]
    }


def _incident_events(stack: dict[str, Any]) -> list[dict[str, Any]]:
    messages = stack["sqs"].receive_message(QueueUrl=stack["inbox"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_broken_input_is_rejected_not_retried_and_a_failing_record_is_reported_alone(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of the demo's events (one of them an EC2 state change, which Cordon does not take), a record that
    # is not JSON, a lone surrogate, and one whose processing fails
    bodies = [*_scenario_bodies(), '{"detail-type": "GuardDuty Finding", "detail": ', '"\\ud800"', "FAIL"]
    read_stream = correlator.read_stream

    def failing(stream: Any, name: str) -> Any:
        if stream.getvalue() == b"FAIL":
            raise RuntimeError("throttled past every retry")
        return read_stream(stream, name)

    monkeypatch.setattr(correlator, "read_stream", failing)
    # WHEN the correlator takes the batch
    response = correlator.handler(_batch(bodies), FakeLambdaContext("correlator"))
    # THEN only the failing record is handed back for redelivery; bad input is rejected and counted, not retried
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{len(bodies) - 1}"}]}
    stats = correlator.pipeline().stats
    assert stats.rejected == 3 and stats.accepted == len(bodies) - 4
    # AND the incident the good events raised is announced on Cordon's bus, once
    announced = _incident_events(stack)
    assert [e["detail-type"] for e in announced] == [constants.INCIDENT_DETAIL_TYPE]
    detail = announced[0]["detail"]
    assert detail["severity"] == "critical" and "ml_credential_finding_then_ml_access" in detail["rules"]
    # WHEN the same batch is delivered again (at least once)
    monkeypatch.setattr(correlator, "read_stream", read_stream)
    again = correlator.handler(_batch(bodies[:-1]), FakeLambdaContext("correlator"))
    # THEN nothing changes, so nothing is announced again
    assert again == {"batchItemFailures": []}
    assert correlator.pipeline().stats.duplicates == len(bodies) - 4
    assert _incident_events(stack) == []


def test_the_runner_refuses_an_incident_the_store_does_not_hold(stack: dict[str, Any]) -> None:
    event = {"detail-type": constants.INCIDENT_DETAIL_TYPE, "detail": {"incident_id": "inc-0000000000000000"}}
    with pytest.raises(LookupError, match="inc-0000000000000000 is not in the state table"):
        runner.handler(event, FakeLambdaContext("runner"))


def _incident_from_the_bus(stack: dict[str, Any]) -> dict[str, Any]:
    assert correlator.handler(_batch(_scenario_bodies()), FakeLambdaContext("correlator")) == {"batchItemFailures": []}
    critical = [e for e in _incident_events(stack) if e["detail"]["severity"] == "critical"]
    return critical[0]


def test_the_runner_writes_the_incident_report_and_its_alerts_carry_a_short_lived_link(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack with a report bucket, and the demo's critical incident announced on the bus
    monkeypatch.setenv(constants.REPORT_BUCKET_ENV, "cordon-reports")
    monkeypatch.setenv(constants.REPORT_LINK_SECONDS_ENV, "900")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="cordon-reports")
    event = _incident_from_the_bus(stack)
    handed: list[dict[str, Any]] = []
    respond = IncidentResponse.respond

    def recording(self: IncidentResponse, incident: dict[str, Any]) -> list[dict[str, Any]]:
        handed.append(incident)
        return respond(self, incident)

    monkeypatch.setattr(IncidentResponse, "respond", recording)
    # WHEN the runner handles it
    result = runner.handler(event, FakeLambdaContext("runner"))
    # THEN the page is in the bucket, written again once the actions were settled
    key = f"reports/{result['incident_id']}.html"
    stored = s3.get_object(Bucket="cordon-reports", Key=key)
    page = stored["Body"].read().decode()
    assert stored["ContentType"] == "text/html; charset=utf-8"
    assert "Credentials named in a GuardDuty finding" in page
    assert result["actions"] and all(action["id"] in page for action in result["actions"])
    assert f"--state 'dynamodb://?audit=audit&state=state&region={REGION}'" in html.unescape(page)
    # AND the playbooks (so their alerts) got the presigned link, of the configured life
    [incident] = handed
    link = incident["report"]["url"]
    query = parse_qs(urlsplit(link).query)
    assert urlsplit(link).path.endswith(key) and query["X-Amz-Expires"] == ["900"]
    assert "Open the incident report" in json.dumps(build_message(incident))
    sns_message = json.loads(build_publish(incident, SnsParams(topic_arn=TOPIC))["Message"])
    assert sns_message["report"]["url"] == link
    # AND the link opens the page
    opened = requests.get(link, timeout=10)
    assert opened.status_code == 200 and opened.text == page


def test_a_report_that_cannot_be_written_holds_back_no_containment(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(constants.REPORT_BUCKET_ENV, "no-such-bucket")
    result = runner.handler(_incident_from_the_bus(stack), FakeLambdaContext("runner"))
    assert result["actions"]  # planned as ever; the failure is logged and counted (ReportFailures)


def test_each_invocation_raises_the_tables_watermark_to_its_latest_event(stack: dict[str, Any]) -> None:
    # GIVEN a batch of far fewer events than a housekeeping's worth (a container may take no more in its life)
    bodies = _scenario_bodies()
    # WHEN the correlator takes it
    assert correlator.handler(_batch(bodies), FakeLambdaContext("correlator")) == {"batchItemFailures": []}
    # THEN the table's watermark is the latest event time taken, where a new container will start from
    config = correlator.pipeline().config
    times = []
    for body in bodies:
        with contextlib.suppress(EventRejectedError):  # the EC2 state change Cordon does not take
            times += [event.time for event in normalize(RawRecord(json.loads(body), "b"), config)]
    latest = max(times)
    assert correlator.pipeline().watermark == latest
    correlator.reset()
    assert correlator.pipeline().watermark == latest


def test_a_watermark_that_cannot_be_shared_fails_no_record(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table that throttles the watermark's update past every retry
    core = correlator.pipeline()

    def throttled(time: Any) -> Any:
        raise StateError("DynamoDB table state: throttled")

    monkeypatch.setattr(core.store, "raise_watermark", throttled)
    # WHEN the correlator takes a batch
    response = correlator.handler(_batch(_scenario_bodies()), FakeLambdaContext("correlator"))
    # THEN every record counts as processed (the next invocation shares the watermark), and the incident is announced
    assert response == {"batchItemFailures": []}
    assert [e["detail-type"] for e in _incident_events(stack)] == [constants.INCIDENT_DETAIL_TYPE]


def test_each_invocation_adds_its_signals_to_the_tables_counter_once(stack: dict[str, Any]) -> None:
    # WHEN the correlator takes a batch that raises signals
    assert correlator.handler(_batch(_scenario_bodies()), FakeLambdaContext("correlator")) == {"batchItemFailures": []}
    stored = correlator.pipeline().stats.signals
    assert stored > 0
    # THEN another container reads them from the table's counter, written once at the end of the invocation
    correlator.reset()
    assert correlator.pipeline().store.signal_count() == stored


def test_a_count_that_cannot_be_saved_fails_no_record_and_is_saved_by_the_next_invocation(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table that throttles the counter's update once, past every retry
    store = correlator.pipeline().store
    saving = store.sync
    failures = iter([StateError("DynamoDB table state: throttled")])

    def throttled_once() -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        saving()

    monkeypatch.setattr(store, "sync", throttled_once)
    # WHEN the correlator takes a batch, then another (the same events again: nothing new is stored)
    response = correlator.handler(_batch(_scenario_bodies()), FakeLambdaContext("correlator"))
    stored = correlator.pipeline().stats.signals
    assert response == {"batchItemFailures": []}  # every record is processed; the incident is announced
    assert [e["detail-type"] for e in _incident_events(stack)] == [constants.INCIDENT_DETAIL_TYPE]
    assert correlator.handler(_batch(_scenario_bodies()), FakeLambdaContext("correlator")) == {"batchItemFailures": []}
    # THEN the first invocation's signals were counted by the second (read by a new container: a new store)
    correlator.reset()
    assert stored > 0 and correlator.pipeline().store.signal_count() == stored
