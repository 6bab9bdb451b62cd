"""Public SigmaHQ CloudTrail rules, unmodified, evaluated natively over the Invictus Stratus Red Team recording.

The Invictus dataset (2,900 CloudTrail records, one account, 2023-07-10) was recorded while Stratus Red Team
attack techniques ran. The pinned firings below were measured once and checked against the records: each one is
an attack step (StopLogging / DeleteTrail, CreateAccessKey for another user, snapshot sharing, ...) or an
activity the rule describes literally (e.g. every AssumedRole call for `aws_sts_assumerole_misuse`).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from correlators.errors import RuleError
from correlators.model import EventSource, NormalizedEvent
from correlators.sigma import FieldView, RuleSet, load_rules

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
SIGMAHQ = SAMPLES / "sigmahq-sigma"
CLOUDTRAIL_RULES = SIGMAHQ / "rules" / "cloud" / "aws" / "cloudtrail"
INVICTUS = SAMPLES / "invictus-aws_dataset" / "CloudTrail"

# rule file -> eventName -> how many Invictus records the rule matches
EXPECTED_FIRINGS = {
    "aws_cloudtrail_bucket_deleted.yml": {"DeleteBucket": 5},  # 3 more failed with BucketNotEmpty
    "aws_cloudtrail_console_login_success_without_mfa.yml": {"ConsoleLogin": 1},  # 'No' vs the rule's 'NO'
    "aws_cloudtrail_disable_logging.yml": {"StopLogging": 3, "DeleteTrail": 3},
    "aws_cloudtrail_new_route_added.yml": {"CreateRoute": 6},
    "aws_cloudtrail_security_group_change_ingress_egress.yml": {
        "AuthorizeSecurityGroupEgress": 1,
        "AuthorizeSecurityGroupIngress": 2,
        "RevokeSecurityGroupEgress": 2,
        "RevokeSecurityGroupIngress": 1,
    },
    "aws_cloudtrail_ssm_malicious_usage.yml": {"SendCommand": 1},  # the other failed with InvalidInstanceId
    "aws_cloudtrail_vpc_flow_logs_deleted.yml": {"DeleteFlowLogs": 1},
    "aws_enum_buckets.yml": {"ListBuckets": 3},
    "aws_iam_backdoor_users_keys.yml": {"CreateAccessKey": 2},
    "aws_snapshot_backup_exfiltration.yml": {"ModifySnapshotAttribute": 2},
    "aws_sts_assumerole_misuse.yml": {  # every call made with an assumed-role session
        "CreateNetworkInterface": 1,
        "DeleteNetworkInterface": 1,
        "DescribeInstanceAttribute": 15,
        "DescribeInstances": 3,
        "DescribeSubnets": 1,
        "DescribeVpcs": 1,
        "GetCallerIdentity": 1,
        "GetDocument": 1,
        "GetPasswordData": 29,
        "LeaveOrganization": 1,
        "ListInstanceAssociations": 2,
        "PutComplianceItems": 2,
        "PutInventory": 2,
        "RunInstances": 2,
        "UpdateInstanceAssociationStatus": 7,
        "UpdateInstanceInformation": 7,
    },
}


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    if not CLOUDTRAIL_RULES.is_dir():
        pytest.skip(f"SigmaHQ samples not found at {CLOUDTRAIL_RULES}")
    return load_rules([CLOUDTRAIL_RULES], collect_errors=True)


@pytest.fixture(scope="module")
def invictus() -> list[NormalizedEvent]:
    if not INVICTUS.is_dir():
        pytest.skip(f"Invictus dataset not found at {INVICTUS}")
    # Minimal events: the normalizer is tested on its own; Sigma field lookups only need `raw`.
    return [
        NormalizedEvent(
            event_id=record["eventID"],
            time=datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")),
            source=EventSource.CLOUDTRAIL,
            raw=record,
        )
        for path in sorted(INVICTUS.glob("*.json"))
        for record in json.loads(path.read_text(encoding="utf-8"))["Records"]
    ]


def test_sigmahq_cloudtrail_rules_load_unmodified(ruleset: RuleSet, capsys: pytest.CaptureFixture[str]) -> None:
    total = len(list(CLOUDTRAIL_RULES.glob("*.yml")))
    summary = f"SigmaHQ CloudTrail rules loaded: {len(ruleset.detections)}/{total}"
    # Written past pytest's capture so the count shows in every run, quiet or not.
    with capsys.disabled():
        print(f"\n{summary}")
    assert [str(error) for error in ruleset.errors] == [], summary
    assert (len(ruleset.detections), total) == (57, 57), summary
    assert all(rule.sources == frozenset({EventSource.CLOUDTRAIL}) and rule.generate for rule in ruleset.detections)


def test_sigmahq_rules_fire_on_the_invictus_attack_recording(ruleset: RuleSet, invictus: list[NormalizedEvent]) -> None:
    assert len(invictus) == 2900
    fired: dict[str, Counter[str]] = {}
    for event in invictus:
        fields = FieldView(event)
        for rule in ruleset.detections:
            if rule.matches(fields):
                fired.setdefault(rule.path.name, Counter())[event.raw["eventName"]] += 1
    assert {name: dict(counts) for name, counts in fired.items()} == EXPECTED_FIRINGS


def test_sigmahq_rules_in_the_retired_aggregation_syntax_are_refused() -> None:
    unsupported = sorted((SIGMAHQ / "unsupported" / "cloud").glob("*.yml"))
    if not unsupported:
        pytest.skip("SigmaHQ unsupported rules not found")
    assert len(unsupported) == 8
    errors = load_rules(unsupported, collect_errors=True).errors
    assert len(errors) == 8
    for path, error in zip(unsupported, errors, strict=True):
        assert error.where is not None and error.where.startswith(f"{path}:")
        assert "write a Sigma correlation rule" in error.reason, error
    for path in unsupported:
        with pytest.raises(RuleError, match=r"retired"):
            load_rules([path])


def test_sigmahq_placeholder_rule_is_refused_naming_the_modifier() -> None:
    placeholders = SIGMAHQ / "rules-placeholder"
    if not placeholders.is_dir():
        pytest.skip("SigmaHQ placeholder rules not found")
    with pytest.raises(
        RuleError,
        match=r"aws_cloudtrail_console_login_success_from_susp_locations\.yml:25: rule 'AWS Console Login "
        r"Monitoring': modifier 'expand' on field 'src_country' is not supported",
    ):
        load_rules([placeholders])
