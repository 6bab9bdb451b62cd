"""The deployed stack's parts in a moto server, built with real API calls from template.yaml's own definitions, and
the two Lambda event sources (SQS for the correlator, EventBridge for the runner) driven the way Lambda drives them.

What is taken from template.yaml, not restated here: the tables' key schema, index, TTL, PITR and encryption; the
event queue's redrive policy (maxReceiveCount) and encryption; the parameters' names and tiers; the bus's name;
the intake rules' event patterns (with `!Sub` and the parameters' defaults resolved as CloudFormation would); the
incident rule's pattern; the functions' environment. What is the test's own: the event queue's visibility timeout
(short, so a failed record comes back within the test), physical names (CloudFormation would generate them), and
the incident rule's target (a queue the test reads, instead of the runner function moto cannot invoke).

The moto server runs requests one at a time (see `SerialMotoServer`); the handler threads still interleave
between requests, which is what the deployed path's concurrency is about.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import multiprocessing
import re
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from cordon import constants
from correlators.ingest import RawRecord, Rejection, read_inputs
from tests.unit.template_support import Rule, as_eventbridge, load, matches, parameter_defaults, rules

REGION = "us-east-1"
STACK_NAME = "cordon-e2e"
INTAKE_TARGET_ID = "cordon-event-queue"  # the template's target id on every intake rule


# --- the server --------------------------------------------------------------------------------------------------
class SerialMotoServer:
    """moto's server app on a free loopback port, in a process of its own, serving ONE request at a time
    (werkzeug without threads, so HTTP/1.0 and a closed connection per request: no client can hold the server).

    Why serial: moto 5.2's TransactWriteItems is not atomic under concurrent requests on its threaded server (a
    colleague measured one lost update in 4 runs of 8 threads), and its backends are not thread-safe (the
    in-process mock crashes under threads). DynamoDB runs each request atomically; serializing requests here
    gives the test that, while the handler threads still interleave their requests freely. Why a process: moto's
    backends are process-global (a server in the test process would share them with every other test), and the
    server's work runs beside the handlers' instead of under the same GIL."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(self.port,), daemon=True)

    def start(self) -> SerialMotoServer:
        self._process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return self
            except OSError:
                if not self._process.is_alive():
                    raise RuntimeError("the moto server process exited") from None
                time.sleep(0.05)
        raise RuntimeError(f"the moto server did not answer on {self.url}")

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(timeout=10)


def _serve(port: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)
    server.serve_forever()


# --- template.yaml, resolved as CloudFormation would ------------------------------------------------------------
class Resolver:
    """`Ref`, `Fn::GetAtt` and `Fn::Sub` over the names this test gave the stack's resources."""

    def __init__(self, template: dict[str, Any], account: str) -> None:
        self.template = template
        self.refs: dict[str, Any] = {
            **parameter_defaults(template),
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
        }
        self.atts: dict[str, str] = {}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resolve(self.template["Resources"][logical_id]["Properties"]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(value) for value in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return self.refs[node["Ref"]]
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            return self.atts[".".join(target) if isinstance(target, list) else target]
        if set(node) == {"Fn::Sub"}:
            text = node["Fn::Sub"]
            assert isinstance(text, str), "a !Sub with its own variables is not used by the parts built here"

            def value(match: re.Match[str]) -> str:
                name = match.group(1)
                return str(self.refs[name] if name in self.refs else self.atts[name])

            return re.sub(r"\$\{([^}!]+)\}", value, text)
        return {key: self.resolve(value) for key, value in node.items()}


# --- the stack -----------------------------------------------------------------------------------------------------
def credentials_in(endpoint: str, account: str, role: str) -> dict[str, str]:
    """The environment Lambda gives a function: its execution role's temporary credentials (moto maps them to the
    role's account, so the stack lives in the ML account, as in the demo)."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION)
    found = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="cordon-e2e")
    credentials = found["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_DEFAULT_REGION": REGION,
    }


@dataclass
class Stack:
    endpoint: str
    credentials: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)  # the functions' environment, as template.yaml sets it
    state_table: str = ""
    audit_table: str = ""
    bus: str = ""
    event_queue_url: str = ""
    event_queue_arn: str = ""
    dead_letter_queue_url: str = ""
    incident_queue_url: str = ""  # the test's stand-in for the runner function as the incident rule's target
    moto_blind_rules: list[Rule] = field(default_factory=list)  # intake rules moto cannot evaluate (see route)

    def client(self, service: str) -> Any:
        session = boto3.session.Session(
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.credentials["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
        return session.client(service, endpoint_url=self.endpoint)

    def queue_depth(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(found[name]) for name in names)


def moto_can_match(rule: Rule) -> bool:
    """moto 5.2's EventPattern never looks into arrays of objects (Security Hub's `detail.findings[]`);
    tests/unit/template_support.py says so and compares its matcher with moto's on every other rule."""
    return "findings" not in json.dumps(rule.pattern)


def build_stack(
    endpoint: str,
    credentials: dict[str, str],
    *,
    account: str,
    config_text: str,
    enforcement: str,
    visibility_timeout: int,
    deliveries: int = 1,
    slack_url: str | None = None,
) -> Stack:
    """Create the stack's parts from template.yaml in the account the credentials are in.

    `deliveries` > 1 gives every intake rule that many targets on the event queue: EventBridge's at-least-once
    delivery, the same event (same id) arriving again. Putting an event twice would not be that: PutEvents gives
    each put a new id, and a CloudWatch alarm event is identified by that id, so two puts are two alarms."""
    template = load()
    names = Resolver(template, account)
    stack = Stack(endpoint, credentials)
    kms, ddb, sqs, events = (stack.client(s) for s in ("kms", "dynamodb", "sqs", "events"))
    ssm, sns, secrets = (stack.client(s) for s in ("ssm", "sns", "secretsmanager"))

    key = names.properties("CordonKey")
    names.atts["CordonKey.Arn"] = kms.create_key(Description=key["Description"])["KeyMetadata"]["Arn"]
    names.refs["CordonKey"] = names.atts["CordonKey.Arn"].rsplit("/", 1)[1]

    # The tables: key schema, index, TTL, PITR and encryption as the template declares them.
    for logical_id in ("StateTable", "AuditTable"):
        table = names.properties(logical_id)
        name = f"{STACK_NAME}-{logical_id}"
        sse = table["SSESpecification"]
        ddb.create_table(
            TableName=name,
            BillingMode=table["BillingMode"],
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
            SSESpecification={
                "Enabled": sse["SSEEnabled"],
                "SSEType": sse["SSEType"],
                "KMSMasterKeyId": sse["KMSMasterKeyId"],
            },
        )
        if "TimeToLiveSpecification" in table:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=table["TimeToLiveSpecification"])
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification=table["PointInTimeRecoverySpecification"]
        )
        names.refs[logical_id] = name
    stack.state_table, stack.audit_table = names.refs["StateTable"], names.refs["AuditTable"]

    # The event queue and its dead-letter queue (the redrive policy is the template's).
    dlq = names.properties("EventDeadLetterQueue")
    stack.dead_letter_queue_url = sqs.create_queue(
        QueueName=f"{STACK_NAME}-EventDeadLetterQueue",
        Attributes={
            "MessageRetentionPeriod": str(dlq["MessageRetentionPeriod"]),
            "KmsMasterKeyId": dlq["KmsMasterKeyId"],
        },
    )["QueueUrl"]
    names.atts["EventDeadLetterQueue.Arn"] = _queue_arn(sqs, stack.dead_letter_queue_url)
    queue = names.properties("EventQueue")
    stack.event_queue_url = sqs.create_queue(
        QueueName=f"{STACK_NAME}-EventQueue",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),  # the template's 360 s would hold a failed record too long
            "KmsMasterKeyId": queue["KmsMasterKeyId"],
            "KmsDataKeyReusePeriodSeconds": str(queue["KmsDataKeyReusePeriodSeconds"]),
            "RedrivePolicy": json.dumps(queue["RedrivePolicy"]),
        },
    )["QueueUrl"]
    stack.event_queue_arn = names.atts["EventQueue.Arn"] = _queue_arn(sqs, stack.event_queue_url)

    # Cordon's bus, the site configuration and kill switch, the alert topic, the Slack secret.
    stack.bus = names.properties("CordonEventBus")["Name"]
    events.create_event_bus(Name=stack.bus)
    names.refs["CordonEventBus"] = stack.bus
    for logical_id, value in (("ConfigParameter", config_text), ("KillSwitchParameter", None)):
        parameter = names.properties(logical_id)
        tier = {"Tier": parameter["Tier"]} if "Tier" in parameter else {}
        ssm.put_parameter(
            Name=parameter["Name"], Type=parameter["Type"], Value=parameter["Value"] if value is None else value, **tier
        )
        names.refs[logical_id] = parameter["Name"]
    names.refs["AlertTopic"] = sns.create_topic(Name=f"{STACK_NAME}-AlertTopic")["TopicArn"]
    secret_value = {"SecretString": slack_url} if slack_url else {}  # the stack creates it empty; the SOC fills it
    secret = secrets.create_secret(
        Name=f"{STACK_NAME}-SlackWebhookSecret", KmsKeyId=names.atts["CordonKey.Arn"], **secret_value
    )
    names.refs["SlackWebhookSecret"] = secret["ARN"]

    # The intake rules on the default bus, with the template's exact patterns, targeting the event queue.
    for rule in rules(template):
        if rule.bus is not None:
            continue  # Cordon's bus: the forwarded copies (equal to these, tests/unit/test_template_patterns.py)
        events.put_rule(Name=f"{STACK_NAME}-{rule.name}", EventPattern=json.dumps(rule.pattern), State="ENABLED")
        targets = [
            {
                "Id": f"{INTAKE_TARGET_ID}-{n}" if n else INTAKE_TARGET_ID,
                "Arn": stack.event_queue_arn,
                # moto 5.2 delivers its default input template, which leaves out the event's `account` (EventBridge
                # delivers it; the CloudWatch normalizer needs it). The whole event, as EventBridge sends it:
                "InputTransformer": {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"},
            }
            for n in range(deliveries)
        ]
        events.put_targets(Rule=f"{STACK_NAME}-{rule.name}", Targets=targets)
        if not moto_can_match(rule):
            stack.moto_blind_rules.append(rule)

    # The incident rule on Cordon's bus; its target is a queue the test reads and feeds to the runner.
    [incident_rule] = [r for r in rules(template) if r.name == "IncidentRule"]
    stack.incident_queue_url = sqs.create_queue(QueueName=f"{STACK_NAME}-runner-invocations")["QueueUrl"]
    events.put_rule(
        Name=f"{STACK_NAME}-IncidentRule", EventBusName=stack.bus, EventPattern=json.dumps(incident_rule.pattern)
    )
    events.put_targets(
        Rule=f"{STACK_NAME}-IncidentRule",
        EventBusName=stack.bus,
        Targets=[{"Id": "cordon-runner", "Arn": _queue_arn(sqs, stack.incident_queue_url)}],
    )

    # The functions' environment: Globals.Function.Environment, resolved; the enforcement mode is the test's.
    names.refs["EnforcementMode"] = enforcement
    names.refs["SlackWebhookSecretArn"] = ""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for name, value in variables.items():
        if isinstance(value, dict) and "Fn::If" in value:
            condition, when_true, when_false = value["Fn::If"]
            assert condition == "CreateSlackSecret"  # the parameter's default (empty): the stack's own secret
            value = when_true if names.refs["SlackWebhookSecretArn"] == "" else when_false
        stack.env[name] = str(names.resolve(value))
    stack.env[constants.ENDPOINT_URL_ENV] = endpoint
    return stack


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


# --- events in -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceEvent:
    where: str
    envelope: dict[str, Any]  # as EventBridge would deliver it (bare CloudTrail records wrapped)
    native_id: bool  # the envelope's `id` is the event's own (a file's EventBridge event), not a wrapper's


def source_events(paths: list[str]) -> Iterator[SourceEvent]:
    """The files' records as EventBridge events: envelopes as they are; bare CloudTrail records (and log-file
    records) wrapped as EventBridge delivers them (detail-type `AWS API Call via CloudTrail`, source
    `aws.<service>`, detail = the record). What never reaches EventBridge (a broken line) is left out."""
    for item in read_inputs(paths):
        if isinstance(item, Rejection):
            continue
        assert isinstance(item, RawRecord)
        event = as_eventbridge(item.payload)
        if event is not None:
            yield SourceEvent(item.where, event, native_id="detail-type" in item.payload)


def _entry(event: dict[str, Any]) -> dict[str, Any]:
    detail = event["detail"]
    moment = detail.get("eventTime") or event["time"]  # a wrapped record's envelope time is a placeholder
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(detail),
        "Resources": event.get("resources", []),
        "Time": datetime.fromisoformat(moment.replace("Z", "+00:00")),
    }


def route(stack: Stack, events: list[SourceEvent], deliveries: int = 1) -> dict[str, str]:
    """Put the events on the default bus with PutEvents, 10 per call, in the given order. Returns EventBridge's
    new event id -> the file's id, for the events whose id is their identity (EventBridge assigns its own on
    PutEvents; the CloudWatch normalizer takes the envelope's id as the event id).

    Events that only a moto-blind rule would take (Security Hub findings) are checked against the template's
    pattern with the project's matcher and sent to the queue directly, `deliveries` times, as EventBridge
    would deliver them: moto 5.2 does not match into arrays of objects."""
    client, sqs = stack.client("events"), stack.client("sqs")
    moto_ids: dict[str, str] = {}
    batch: list[SourceEvent] = []

    def flush() -> None:
        response = client.put_events(Entries=[_entry(e.envelope) for e in batch])
        assert response["FailedEntryCount"] == 0, response
        for event, result in zip(batch, response["Entries"], strict=True):
            if event.native_id:
                moto_ids[result["EventId"]] = event.envelope["id"]
        batch.clear()

    for event in events:
        if any(matches(rule.pattern, event.envelope) for rule in stack.moto_blind_rules):
            delivered = {**event.envelope, "id": event.envelope["id"] if event.native_id else str(uuid.uuid4())}
            for _ in range(deliveries):
                sqs.send_message(QueueUrl=stack.event_queue_url, MessageBody=json.dumps(delivered))
            continue
        batch.append(event)
        if len(batch) == 10:
            flush()
    if batch:
        flush()
    return moto_ids


# --- Lambda ----------------------------------------------------------------------------------------------------------
@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:111122223333:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


_LAMBDA_SQS_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS trigger hands the function for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {k: v for k, v in message.get("Attributes", {}).items() if k in _LAMBDA_SQS_ATTRIBUTES},
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for message in messages
        ]
    }


def container(module: str) -> ModuleType:
    """A fresh copy of a handler module: one Lambda container. Lambda runs one invocation at a time per
    container, so a handler may keep per-invocation state at module level (the batch processor, the pipeline's
    stats); threads standing in for concurrent invocations therefore each get their own copy. What the copies
    share is `cordon.handlers.runtime` (the boto3 clients, which are thread-safe) and the tables."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


class FailOnce:
    """Makes the first processing of the message carrying `needle` raise (before anything is read or written),
    anywhere in any container; later deliveries of it are processed normally."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.failed_message_id: str | None = None
        self._lock = threading.Lock()

    def patch(self, handler_module: ModuleType) -> None:
        read_stream = getattr(handler_module, "read_stream")  # noqa: B009 - a module attribute, patched

        def reading(stream: Any, name: str) -> Any:
            with self._lock:
                if self.failed_message_id is None and self.needle in stream.getvalue().decode("utf-8"):
                    self.failed_message_id = name.removeprefix("sqs:")
                    raise RuntimeError(f"injected failure on the first processing of {name}")
            return read_stream(stream, name)

        setattr(handler_module, "read_stream", reading)  # noqa: B010


@dataclass
class Consumption:
    invocations: int = 0
    batch_item_failures: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def consume(stack: Stack, containers: list[ModuleType], *, timeout: float = 600.0) -> Consumption:
    """Lambda's SQS poller, one thread per container: receive up to 10, invoke, delete what is not listed in
    `batchItemFailures`; until the queue (visible and in flight) is empty. A queue not empty by `timeout` is an
    error of the consumption: stopping quietly would compare half the stream's incidents (it did, on a loaded
    machine, where the demo takes minutes instead of seconds)."""
    result = Consumption()
    lock = threading.Lock()
    deadline = time.monotonic() + timeout

    def poll(module: ModuleType, n: int) -> None:
        sqs = stack.client("sqs")
        while time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=stack.event_queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,  # long polling would hold the serial server
            ).get("Messages", [])
            if not messages:
                if stack.queue_depth(stack.event_queue_url) == 0:
                    return
                time.sleep(0.1)
                continue
            response = module.handler(
                sqs_lambda_event(messages, stack.event_queue_arn), FakeLambdaContext(f"correlator-{n}")
            )
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            with lock:
                result.invocations += 1
                result.batch_item_failures.extend(sorted(failed))
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
                sqs.delete_message_batch(QueueUrl=stack.event_queue_url, Entries=entries)

    def guarded(module: ModuleType, n: int) -> None:
        try:
            poll(module, n)
        except BaseException as error:  # reported to the test, not lost in a thread
            with lock:
                result.errors.append(error)

    threads = [threading.Thread(target=guarded, args=(m, n)) for n, m in enumerate(containers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if (depth := stack.queue_depth(stack.event_queue_url)) != 0:
        result.errors.append(TimeoutError(f"{depth} messages still queued after {timeout:.0f} s of consumption"))
    return result


def drain(stack: Stack, url: str) -> list[dict[str, Any]]:
    """Every message in a queue (received and deleted)."""
    sqs = stack.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def invoke_runner(handler: Callable[[dict[str, Any], Any], dict[str, Any]], events: list[dict[str, Any]]) -> list[Any]:
    return [handler(event, FakeLambdaContext("runner")) for event in events]


REPO = Path(__file__).resolve().parents[2]
