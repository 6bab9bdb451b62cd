"""AWS Config compliance changes become events: the documentation's example, and the ML resources rules name."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cordon.replay import load_ruleset, replay
from correlators.config import Config, load_config
from correlators.detect import CONFIG_RULE, Detector
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import Compliance, EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.normalize import normalize
from correlators.sigma.rules import RuleSet
from correlators.signals import SignalRef

REPO = Path(__file__).resolve().parents[2]
AWSDOCS = json.loads((REPO / "examples" / "fixtures" / "config_rules_compliance_change_awsdocs.json").read_text())
SITE = load_config(REPO / "examples" / "cordon.yaml")
ACCOUNT = "111122223333"


def _one(payload: dict[str, Any], config: Config | None = None) -> NormalizedEvent:
    [event] = normalize(RawRecord(payload, "config.jsonl:3"), config or Config())
    return event


def _change(resource_type: str, resource_id: str, rule: str, new: str, old: str | None = "COMPLIANT") -> dict[str, Any]:
    """The documentation's event, about another resource and rule."""
    event = copy.deepcopy(AWSDOCS[0])
    event["account"], event["region"] = ACCOUNT, "us-east-1"
    detail = event["detail"]
    detail.update(awsAccountId=ACCOUNT, awsRegion="us-east-1", configRuleName=rule)
    detail.update(resourceType=resource_type, resourceId=resource_id)
    for result, compliance in (("newEvaluationResult", new), ("oldEvaluationResult", old)):
        if compliance is None:
            del detail[result]
            continue
        qualifier = detail[result]["evaluationResultIdentifier"]["evaluationResultQualifier"]
        qualifier.update(configRuleName=rule, resourceType=resource_type, resourceId=resource_id)
        detail[result]["complianceType"] = compliance
    return event


def test_the_documentation_example_is_accepted_as_event_and_bare() -> None:
    # GIVEN the AWS documentation's compliance change, as EventBridge delivers it and as the bare message
    as_event, bare = (_one(payload) for payload in AWSDOCS)
    # THEN both read the same verdict: the account's trail back in compliance
    expected = Compliance(
        rule="cloudtrail-enabled",
        compliance="COMPLIANT",
        previous_compliance="NON_COMPLIANT",
        resource_type="AWS::::Account",
        resource_id="123456789012",
    )
    for event in (as_event, bare):
        assert event.source is EventSource.CONFIG
        assert event.compliance == expected
        assert (event.account, event.region) == ("123456789012", "us-east-2")
        assert event.time == datetime(2016, 9, 27, 19, 48, 40, 619000, tzinfo=UTC)  # orderingTimestamp
        assert event.actor is None and event.resources == []  # an account names no resource entity
    assert as_event.event_id == "cd4d811e-ab12-322b-8255-872ce65b1bc8"
    assert bare.event_id.startswith("config-")
    assert _one(copy.deepcopy(AWSDOCS[1])).event_id == bare.event_id  # a bare verdict delivered twice is one


@pytest.mark.parametrize(
    ("resource_type", "resource_id", "expected"),
    [
        (
            "AWS::S3::Bucket",
            "acme-fraud-training",
            Resource(type=EntityType.BUCKET, id="arn:aws:s3:::acme-fraud-training"),
        ),
        (
            "AWS::SageMaker::NotebookInstance",
            "Fraud-Research",
            Resource(
                type=EntityType.SAGEMAKER_NOTEBOOK,
                id=f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:notebook-instance/fraud-research",
            ),
        ),
        (
            "AWS::SageMaker::Endpoint",
            "fraud-scorer",
            Resource(
                type=EntityType.SAGEMAKER_ENDPOINT, id=f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/fraud-scorer"
            ),
        ),
        ("AWS::EC2::Instance", "i-0a1b2c3d4e5f60718", Resource(type=EntityType.INSTANCE, id="i-0a1b2c3d4e5f60718")),
        (
            "AWS::IAM::Role",
            f"arn:aws:iam::{ACCOUNT}:role/ml-training-role",  # a custom rule reporting the ARN
            Resource(type=EntityType.PRINCIPAL, id=f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"),
        ),
    ],
)
def test_resources_resolve_to_the_entities_cloudtrail_and_findings_use(
    resource_type: str, resource_id: str, expected: Resource
) -> None:
    event = _one(_change(resource_type, resource_id, "any-rule", "NON_COMPLIANT"))
    assert event.resources == [expected]


@pytest.mark.parametrize(
    ("resource_type", "resource_id"),
    [
        ("AWS::IAM::Role", "AROAQEXAMPLEROLEID123"),  # Config names IAM roles by unique id: no ARN without IAM
        ("AWS::SageMaker::EndpointConfig", "fraud-scorer-config-v8"),  # no entity kind for endpoint configs
        ("AWS::EC2::Volume", "vol-0f0b1ec8ced432a26"),
    ],
)
def test_resources_without_an_entity_stay_readable_as_fields(resource_type: str, resource_id: str) -> None:
    event = _one(_change(resource_type, resource_id, "any-rule", "NON_COMPLIANT"))
    assert event.resources == []
    assert event.compliance is not None and event.compliance.resource_id == resource_id


def test_an_asset_bucket_takes_its_asset_class_from_the_site_config() -> None:
    event = _one(
        _change("AWS::S3::Bucket", "acme-fraud-training", "s3-bucket-public-read-prohibited", "NON_COMPLIANT"), SITE
    )
    assert event.asset_classes == ["training_data"]


def test_a_first_evaluation_has_no_previous_compliance() -> None:
    event = _one(_change("AWS::S3::Bucket", "b", "s3-bucket-public-read-prohibited", "NON_COMPLIANT", old=None))
    assert event.compliance is not None and event.compliance.previous_compliance is None


def test_the_rule_and_resource_may_be_named_only_in_the_qualifier() -> None:
    event = _change("AWS::S3::Bucket", "acme-fraud-training", "s3-bucket-public-write-prohibited", "NON_COMPLIANT")
    for field in ("configRuleName", "resourceType", "resourceId"):
        del event["detail"][field]
    compliance = _one(event).compliance
    assert compliance is not None
    assert (compliance.rule, compliance.resource_id) == ("s3-bucket-public-write-prohibited", "acme-fraud-training")


def test_a_change_without_its_verdict_is_rejected_with_the_field() -> None:
    event = _change("AWS::S3::Bucket", "b", "r", "NON_COMPLIANT")
    del event["detail"]["newEvaluationResult"]["complianceType"]
    with pytest.raises(EventRejectedError, match=r"newEvaluationResult\.complianceType: missing"):
        _one(event)


def test_a_change_naming_no_resource_is_rejected() -> None:
    event = _change("AWS::S3::Bucket", "b", "r", "NON_COMPLIANT")
    del event["detail"]["resourceId"]
    del event["detail"]["newEvaluationResult"]["evaluationResultIdentifier"]["evaluationResultQualifier"]["resourceId"]
    with pytest.raises(EventRejectedError, match=r"detail\.resourceId: missing"):
        _one(event)


# --- detection: what a verdict is, whatever the rules say -----------------------------------------------------
@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ("NON_COMPLIANT", "COMPLIANT", ("low", True)),  # turned NON_COMPLIANT: a signal (low opens nothing alone)
        ("NON_COMPLIANT", None, ("low", True)),  # found NON_COMPLIANT on its first evaluation
        ("COMPLIANT", "NON_COMPLIANT", ("informational", False)),  # back: context for its resource's incident
        ("NON_COMPLIANT", "NON_COMPLIANT", None),  # re-stated, nothing changed
        ("NOT_APPLICABLE", "NON_COMPLIANT", None),  # out of the rule's scope: neither worse nor fixed
        ("COMPLIANT", None, None),
        ("INSUFFICIENT_DATA", "COMPLIANT", None),
    ],
)
def test_the_implicit_config_signal(new: str, old: str | None, expected: tuple[str, bool] | None) -> None:
    event = _one(_change("AWS::SageMaker::NotebookInstance", "fraud-research", "r", new, old))
    signals = Detector(RuleSet()).detect(event)
    assert [(s.severity.value, s.standalone) for s in signals] == ([expected] if expected else [])
    assert all(s.rule == CONFIG_RULE for s in signals)
    if signals:
        assert SignalRef.of(signals[0]).what == f"config r: {new}"


# --- built-in rule 15's low rule: hygiene opens an incident only where the site asks for low ones ---------------
def test_missing_sagemaker_hardening_raises_its_rule_at_low() -> None:
    fixture = REPO / "correlators" / "rules" / "15_ml_config_noncompliant.tests" / "low_floor_hardening.jsonl"
    ruleset = load_ruleset(SITE)
    assert replay([str(fixture)], SITE, ruleset).incidents == []  # below the default floor (medium)
    lowered = SITE.model_copy(
        update={"correlation": SITE.correlation.model_copy(update={"standalone_min_severity": Severity.LOW})}
    )
    incidents = replay([str(fixture)], lowered, ruleset).incidents
    # The notebook without a KMS key: both signals of its verdict name the notebook, one incident. The endpoint
    # configuration names no entity (no kind for it), so nothing ties its two signals: two incidents.
    assert sorted((i.rules, i.severity.value) for i in incidents) == [
        (["config-compliance"], "low"),
        (["config-compliance", "ml_sagemaker_hardening_missing"], "low"),
        (["ml_sagemaker_hardening_missing"], "low"),
    ]
