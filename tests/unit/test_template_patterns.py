"""The intake rules of template.yaml (and infra/member-account.yaml) against every sample event kind.

What should reach the correlator does (CloudTrail calls of the watched services, GuardDuty findings at or above
the floor, new Security Hub findings and custom actions, alarms entering ALARM), and what should not does not
(Cordon's own Security Hub findings, alarms returning to OK, GuardDuty below the floor, CloudTrail of other
services, every other detail-type). The patterns are read from the templates; the matcher is in template_support.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from moto.events.models import EventPattern

from cordon.constants import INCIDENT_DETAIL_TYPE, INCIDENT_EVENT_SOURCE
from correlators.model import CORDON_GENERATED_MARKER
from responders.notify.securityhub import build_finding

from .template_support import (
    MEMBER_TEMPLATE,
    REPO,
    SAMPLES,
    Rule,
    envelope,
    load,
    matches,
    rules,
    sample_events,
)

# The services the issue names (and SageMaker Runtime, the built-in rules' other SageMaker event source); the
# oracle below is written from this list, not from the template.
WATCHED = {
    f"{service}.amazonaws.com"
    for service in [
        *("iam", "sts", "s3", "sagemaker", "runtime.sagemaker", "bedrock", "apigateway", "ec2"),
        *("cloudtrail", "guardduty", "kms", "lambda", "securityhub", "ssm", "ec2-instance-connect"),
    ]
}
# GuardDuty AI Protection finding types (default severity Low): routed whatever the floor.
AI_PROTECTION = (
    "Impact:IAMUser/AnomalousModelInvocation",
    "Impact:IAMUser/CostHarvesting",
    "Impact:IAMUser/PromptInjection.",
)
TEMPLATE = load()
SAMPLE_EVENTS = list(sample_events())


# Rules that feed the runner, not the event queue: incidents, and the end of SSM runbooks Cordon started.
NOT_INTAKE = frozenset({"IncidentRule", "AutomationStatusRule"})


def intake(template: dict[str, Any], floor: float | None = None, *, bus: str = "default") -> list[Rule]:
    """The rules feeding the event queue: on the default bus, or on Cordon's bus (the forwarded copies)."""
    parameters = {} if floor is None else {"GuardDutyMinSeverity": floor}
    found = [r for r in rules(template, parameters) if r.name not in NOT_INTAKE]
    return [r for r in found if (r.bus is None) == (bus == "default")]


def routed(event: dict[str, Any], rule_set: list[Rule]) -> bool:
    return any(matches(rule.pattern, event) for rule in rule_set)


def intended(event: dict[str, Any], floor: float) -> bool:
    """What Cordon wants from EventBridge, in plain Python."""
    detail_type, detail = event.get("detail-type"), event.get("detail") or {}
    if detail_type == "GuardDuty Finding":
        ai_protection = str(detail.get("type", "")).startswith(AI_PROTECTION)  # written from the docs, not the template
        return event.get("source") == "aws.guardduty" and (detail.get("severity", 0) >= floor or ai_protection)
    if detail_type == "AWS API Call via CloudTrail":
        return detail.get("eventSource") in WATCHED
    if detail_type == "CloudWatch Alarm State Change":
        return event.get("source") == "aws.cloudwatch" and detail.get("state", {}).get("value") == "ALARM"
    if detail_type in ("Security Hub Findings - Imported", "Security Hub Findings - Custom Action"):
        findings = detail.get("findings", [])
        ours = any(CORDON_GENERATED_MARKER in (f.get("ProductFields") or {}) for f in findings)
        if detail_type.endswith("Custom Action"):
            return not ours
        new = any((f.get("Workflow") or {}).get("Status") == "NEW" for f in findings)
        return new and not ours
    if detail_type == "Config Rules Compliance Change":
        # A verdict entering NON_COMPLIANT is a signal, one leaving it context; the rest (first COMPLIANT,
        # NOT_APPLICABLE verdicts) would be a flood saying nothing.
        verdicts = {
            (detail.get(key) or {}).get("complianceType") for key in ("newEvaluationResult", "oldEvaluationResult")
        }
        return event.get("source") == "aws.config" and "NON_COMPLIANT" in verdicts
    # `Security Hub Findings` (the pre-2020 name), Health, Config item changes, EC2 state, alarm configuration...
    return False


@pytest.fixture(scope="module")
def sample_set() -> list[Any]:
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples not found at {SAMPLES}")
    return SAMPLE_EVENTS


@pytest.mark.parametrize("floor", [4, 7])
def test_every_sample_is_routed_exactly_as_intended(sample_set: list[Any], floor: float) -> None:
    # GIVEN the intake rules with the GuardDuty floor set
    rule_set = intake(TEMPLATE, floor)
    # WHEN every sample event is offered to them
    wrong = [s.where for s in sample_set if routed(s.event, rule_set) != intended(s.event, floor)]
    # THEN each lands where Cordon wants it
    assert wrong == []


def test_samples_cover_both_sides_of_every_rule(sample_set: list[Any]) -> None:
    """Without both a passing and a dropped sample per kind, the test above proves little."""
    rule_set = intake(TEMPLATE)
    seen = Counter((s.event["detail-type"], routed(s.event, rule_set)) for s in sample_set)
    for kind in ("AWS API Call via CloudTrail", "GuardDuty Finding", "CloudWatch Alarm State Change"):
        assert seen[(kind, True)] and seen[(kind, False)], (kind, seen)
    assert seen[("Security Hub Findings - Imported", True)] and seen[("Security Hub Findings - Imported", False)]
    assert seen[("Security Hub Findings - Custom Action", True)]


def _first(sample_set: list[Any], detail_type: str, **where: Any) -> dict[str, Any]:
    for sample in sample_set:
        event = sample.event
        if event["detail-type"] == detail_type and all(event["detail"].get(k) == v for k, v in where.items()):
            return copy.deepcopy(event)
    raise AssertionError(f"no {detail_type} sample")


def _incident() -> dict[str, Any]:
    return {
        "id": "inc-0123456789abcdef",
        "title": "Training data read, then model artifact downloaded",
        "rules": ["ml_training_read_then_model_download"],
        "severity": "high",
        "first_seen": "2026-11-20T09:00:00+00:00",
        "last_seen": "2026-11-20T09:30:00+00:00",
        "entities": [{"type": "principal", "id": "arn:aws:iam::111122223333:user/ml-contractor"}],
        "signals": [],
        "actions": [],
    }


@pytest.mark.parametrize("detail_type", ["Security Hub Findings - Imported", "Security Hub Findings - Custom Action"])
def test_cordons_own_security_hub_findings_never_come_back(detail_type: str) -> None:
    # GIVEN the finding notify.securityhub imports, as Security Hub sends it back on the bus (workflow NEW)
    finding = build_finding(_incident(), account="111122223333", region="us-east-1", now=datetime.now(UTC))
    finding["Workflow"] = {"Status": "NEW"}
    ours = envelope(detail_type, "aws.securityhub", {"findings": [finding]})
    # WHEN / THEN no intake rule, on either bus, takes it
    assert not routed(ours, intake(TEMPLATE))
    assert not routed(ours, intake(TEMPLATE, bus="cordon"))
    # ... and the same finding from anyone else (no marker) is taken: the exclusion is the marker, nothing else
    del finding["ProductFields"][CORDON_GENERATED_MARKER]
    theirs = envelope(detail_type, "aws.securityhub", {"findings": [finding]})
    assert routed(theirs, intake(TEMPLATE))


@pytest.mark.parametrize("status", ["NOTIFIED", "SUPPRESSED", "RESOLVED"])
def test_security_hub_findings_past_new_are_dropped(sample_set: list[Any], status: str) -> None:
    event = next(
        copy.deepcopy(s.event)
        for s in sample_set
        if s.event["detail-type"] == "Security Hub Findings - Imported" and routed(s.event, intake(TEMPLATE))
    )
    for finding in event["detail"]["findings"]:
        finding["Workflow"] = {"Status": status}
    assert not routed(event, intake(TEMPLATE))


@pytest.mark.parametrize("floor", [4, 7, 8.5])
def test_guardduty_floor_is_the_parameter(sample_set: list[Any], floor: float) -> None:
    event = _first(sample_set, "GuardDuty Finding")
    verdicts = {}
    for severity in (floor - 0.1, floor, floor + 0.1, 1, 8.9):
        event["detail"]["severity"] = severity
        verdicts[severity] = routed(event, intake(TEMPLATE, floor))
    assert verdicts == {floor - 0.1: False, floor: True, floor + 0.1: True, 1: False, 8.9: floor <= 8.9}


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_alarms_leaving_alarm_are_dropped(sample_set: list[Any], state: str) -> None:
    event = next(
        copy.deepcopy(s.event)
        for s in sample_set
        if s.event["detail-type"] == "CloudWatch Alarm State Change" and routed(s.event, intake(TEMPLATE))
    )
    event["detail"]["previousState"], event["detail"]["state"] = event["detail"]["state"], {"value": state}
    assert not routed(event, intake(TEMPLATE))


@pytest.mark.parametrize("source", [*sorted(WATCHED), "signin.amazonaws.com", "rds.amazonaws.com"])
def test_cloudtrail_routes_exactly_the_watched_services(source: str) -> None:
    record = {"eventVersion": "1.08", "eventSource": source, "eventName": "AnyCall", "eventTime": "2026-11-20T09:00Z"}
    event = envelope("AWS API Call via CloudTrail", "aws." + source.split(".")[0], record)
    assert routed(event, intake(TEMPLATE)) == (source in WATCHED)


def test_builtin_rules_only_select_watched_event_sources() -> None:
    """A built-in rule on an unwatched service would never fire in the deployed stack."""
    named: set[str] = set()
    for path in (REPO / "correlators" / "rules").glob("*.yml"):
        for document in yaml.safe_load_all(path.read_text()):
            named |= set(_event_sources(document))
    assert "sagemaker.amazonaws.com" in named, "the scan of the built-in rules is broken"
    assert sorted(named - WATCHED) == []


def _event_sources(node: Any, under_event_source: bool = False) -> list[str]:
    """String values under an `eventSource` key (with or without Sigma modifiers: `eventSource|endswith`)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _event_sources(value, str(key).startswith("eventSource"))]
    if isinstance(node, list):
        return [s for value in node for s in _event_sources(value, under_event_source)]
    return [node] if under_event_source and isinstance(node, str) else []


# --- the three copies of the intake are one --------------------------------------------------------------------
def test_cordons_bus_has_the_same_rules_as_the_default_bus() -> None:
    default = {r.name: r.pattern for r in intake(TEMPLATE)}
    forwarded = {r.name.removeprefix("Forwarded"): r.pattern for r in intake(TEMPLATE, bus="cordon")}
    assert len(default) == 6
    assert forwarded == default


@pytest.mark.parametrize("floor", [4, 6])
def test_member_accounts_forward_what_the_central_rules_take(floor: float) -> None:
    member = {r.name: r.pattern for r in rules(load(MEMBER_TEMPLATE), {"GuardDutyMinSeverity": floor})}
    assert member == {r.name: r.pattern for r in intake(TEMPLATE, floor)}


def test_every_intake_rule_targets_the_queue_and_only_they_may_send() -> None:
    resources = TEMPLATE["Resources"]
    names = [r.name for r in intake(TEMPLATE) + intake(TEMPLATE, bus="cordon")]
    for name in names:
        [target] = resources[name]["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
    [statement] = resources["EventQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    senders = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in senders) == sorted(names)


def test_incident_rule_takes_cordons_incident_events_only() -> None:
    [incident_rule] = [r for r in rules(TEMPLATE) if r.name == "IncidentRule"]
    assert incident_rule.bus == {"Ref": "CordonEventBus"}
    assert incident_rule.pattern == {"source": [INCIDENT_EVENT_SOURCE], "detail-type": [INCIDENT_DETAIL_TYPE]}
    incident = envelope(INCIDENT_DETAIL_TYPE, INCIDENT_EVENT_SOURCE, _incident())
    assert matches(incident_rule.pattern, incident)
    assert not routed(incident, intake(TEMPLATE, bus="cordon"))


# --- the matcher itself ----------------------------------------------------------------------------------------
def _moto_works(rule: Rule) -> bool:
    """moto 5.2 does not look into arrays of objects (Security Hub's detail.findings[]): no comparison there."""
    return "findings" not in str(rule.pattern)


def test_matcher_agrees_with_moto_wherever_moto_can_match(sample_set: list[Any]) -> None:
    compared = 0
    for rule in filter(_moto_works, intake(TEMPLATE)):
        moto_pattern = EventPattern.load(json.dumps(rule.pattern))
        for sample in sample_set:
            assert matches(rule.pattern, sample.event) == moto_pattern.matches_event(sample.event), (
                rule.name,
                sample.where,
            )
            compared += 1
    assert compared > 1000


def test_matcher_looks_into_arrays_of_objects_as_eventbridge_does() -> None:
    pattern = {"detail": {"findings": {"Workflow": {"Status": ["NEW"]}, "ProductFields": {"x/y": [{"exists": False}]}}}}
    new = {"Workflow": {"Status": "NEW"}, "ProductFields": {}}
    notified = {"Workflow": {"Status": "NOTIFIED"}, "ProductFields": {}}
    marked = {"Workflow": {"Status": "NEW"}, "ProductFields": {"x/y": "true"}}
    assert matches(pattern, {"detail": {"findings": [notified, new]}})
    assert not matches(pattern, {"detail": {"findings": [notified]}})
    # exists: false holds only when no element has the field (EventBridge flattens the array)
    assert not matches(pattern, {"detail": {"findings": [new, marked]}})
    assert matches({"a": [{"numeric": [">=", 4]}]}, {"a": 4.0})
    assert not matches({"a": [{"numeric": [">=", 4]}]}, {"a": "5"})  # numbers only
    assert not matches({"a": [True]}, {"a": 1})


@pytest.mark.parametrize("finding_type", [*AI_PROTECTION[:2], "Impact:IAMUser/PromptInjection.Direct"])
def test_ai_protection_findings_pass_whatever_the_floor(sample_set: list[Any], finding_type: str) -> None:
    # GIVEN an AI Protection finding at its default severity, Low, and the floor at its highest
    event = _first(sample_set, "GuardDuty Finding")
    event["detail"]["type"], event["detail"]["severity"] = finding_type, 2
    # THEN every intake copy routes it, while another finding of that severity stays dropped
    for rule_set in (intake(TEMPLATE, 10), intake(TEMPLATE, 10, bus="cordon")):
        assert routed(event, rule_set)
    event["detail"]["type"] = "Impact:IAMUser/AnomalousBehavior"
    assert not routed(event, intake(TEMPLATE, 10))
    member = [r for r in rules(load(MEMBER_TEMPLATE), {"GuardDutyMinSeverity": 10}) if r.name == "GuardDutyRule"]
    event["detail"]["type"] = finding_type
    assert [matches(r.pattern, event) for r in member] == [True]


@pytest.mark.parametrize(
    ("new", "old", "taken"),
    [
        ("NON_COMPLIANT", "COMPLIANT", True),
        ("NON_COMPLIANT", None, True),  # a first evaluation has no oldEvaluationResult
        ("COMPLIANT", "NON_COMPLIANT", True),  # context for the resource's incident
        ("NOT_APPLICABLE", "NON_COMPLIANT", True),
        ("COMPLIANT", None, False),
        ("NOT_APPLICABLE", "COMPLIANT", False),
        ("INSUFFICIENT_DATA", None, False),
    ],
)
def test_config_verdicts_entering_or_leaving_non_compliant_are_taken(new: str, old: str | None, taken: bool) -> None:
    # GIVEN the AWS documentation's compliance change with these verdicts
    example = REPO / "examples" / "fixtures" / "config_rules_compliance_change_awsdocs.json"
    event = json.loads(example.read_text())[0]
    event["detail"]["newEvaluationResult"]["complianceType"] = new
    if old is None:
        del event["detail"]["oldEvaluationResult"]
    else:
        event["detail"]["oldEvaluationResult"]["complianceType"] = old
    # THEN every copy of the intake (default bus, Cordon's bus, member accounts) agrees
    member = rules(load(MEMBER_TEMPLATE), {"GuardDutyMinSeverity": 4})
    for rule_set in (intake(TEMPLATE), intake(TEMPLATE, bus="cordon"), member):
        assert routed(event, rule_set) == taken
    assert [EventPattern.load(json.dumps(r.pattern)).matches_event(event) for r in intake(TEMPLATE)].count(True) == int(
        taken
    )  # moto agrees


def test_the_end_of_an_ssm_runbook_goes_to_the_runner_and_nothing_else() -> None:
    [rule] = [r for r in rules(TEMPLATE) if r.name == "AutomationStatusRule"]
    assert rule.bus is None  # SSM puts its events on the default bus of the account that ran the runbook
    [target] = TEMPLATE["Resources"]["AutomationStatusRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RunnerFunction", "Arn"]}
    ended = envelope(
        "EC2 Automation Execution Status-change Notification", "aws.ssm", {"ExecutionId": "e", "Status": "Failed"}
    )
    running = envelope(
        "EC2 Automation Execution Status-change Notification", "aws.ssm", {"ExecutionId": "e", "Status": "InProgress"}
    )
    assert matches(rule.pattern, ended) and not matches(rule.pattern, running)
    assert not routed(ended, intake(TEMPLATE)) and not routed(ended, intake(TEMPLATE, bus="cordon"))
