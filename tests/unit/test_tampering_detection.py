"""Rule 5's detection (`logging_or_detection_tampering`) drives enforce steps, so it fires only on calls that
succeeded and really weaken logging or detection. Checked on real public CloudTrail (the Invictus dataset and
Stratus Red Team detonation logs, where the attack's setup calls are the benign look-alikes) and on the fixtures
next to the rule."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from correlators.ingest import RawRecord
from correlators.normalize import normalize
from correlators.sigma import FieldView
from tests.unit.test_builtin_rules import CONFIG, RULES, RULESET

INVICTUS = Path("invictus-aws_dataset") / "CloudTrail"  # below the shared samples (the `samples` fixture)
STRATUS = Path("datadog-stratus-red-team") / "docs" / "detonation-logs"
FIXTURES = RULES / "05_defense_evasion_near_ml.tests"
(RULE,) = [rule for rule in RULESET.detections if rule.name == "logging_or_detection_tampering"]
TAMPERING_SOURCES = {"cloudtrail.amazonaws.com", "guardduty.amazonaws.com"}


def _matches(record: dict[str, Any]) -> bool:
    events = normalize(RawRecord(record, "test"), CONFIG)
    return any(RULE.matches(FieldView(event)) for event in events)


def _records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [line.get("detail", line) for line in lines]
    document = json.loads(path.read_text())
    return document["Records"] if isinstance(document, dict) else document


def test_on_invictus_only_the_successful_weakening_calls_fire(samples: Path) -> None:
    fired: Counter[str] = Counter()
    for path in sorted((samples / INVICTUS).glob("*.json")):
        for record in _records(path):
            if _matches(record):
                fired[record["eventName"]] += 1
                assert "errorCode" not in record, record["eventID"]
    # Left out: 3 StopLogging and 1 DeleteTrail that failed (TrailNotFoundException), and Stratus's revert of its
    # narrowing (12:07:49): it sends includeManagementEvents true alone, recorded with readWriteType All.
    assert fired == {"DeleteTrail": 2, "PutEventSelectors": 1}


@pytest.mark.parametrize(
    ("technique", "expected"),
    [
        ("aws.defense-evasion.cloudtrail-event-selectors", {"PutEventSelectors": 1}),
        ("aws.defense-evasion.cloudtrail-stop", {"StopLogging": 1}),
        ("aws.defense-evasion.cloudtrail-delete", {"DeleteTrail": 1}),
    ],
)
def test_stratus_detonations_fire(technique: str, expected: dict[str, int], samples: Path) -> None:
    fired = Counter(r["eventName"] for r in _records(samples / STRATUS / f"{technique}.json") if _matches(r))
    assert fired == expected


# negative.jsonl is a correlation negative (a real StopLogging by a principal that touched no ML asset).
LOOK_ALIKES = sorted([*FIXTURES.glob("positive*.jsonl"), *FIXTURES.glob("negative_*.jsonl")])


@pytest.mark.parametrize("path", LOOK_ALIKES, ids=lambda p: p.name)
def test_fixture_calls_fire_only_in_positive_files(path: Path) -> None:
    calls = [r for r in _records(path) if r["eventSource"] in TAMPERING_SOURCES]
    assert calls, "a fixture without a tampering look-alike proves nothing here"
    positive = path.name.startswith("positive")
    assert [_matches(r) for r in calls] == [positive] * len(calls)


def _put_selectors(selectors: list[dict[str, Any]], key: str = "eventSelectors") -> dict[str, Any]:
    return {
        "eventVersion": "1.11",
        "eventTime": "2026-11-18T10:10:12Z",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "PutEventSelectors",
        "eventID": "5a7e6f7c-1b2d-4c3e-9f00-000000000001",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/admin-alice",
            "userName": "admin-alice",
        },
        "requestParameters": {"trailName": "acme-org-trail", key: selectors},
    }


@pytest.mark.parametrize(
    ("selectors", "key", "fires"),
    [
        ([{"readWriteType": "WriteOnly", "includeManagementEvents": True}], "eventSelectors", True),
        ([{"includeManagementEvents": True, "readWriteType": "ReadOnly"}], "eventSelectors", True),
        # the one that keeps management is a different selector from the one naming readWriteType All
        (
            [
                {"readWriteType": "ReadOnly", "includeManagementEvents": True},
                {"readWriteType": "All", "includeManagementEvents": False, "dataResources": []},
            ],
            "eventSelectors",
            True,
        ),
        ([{"readWriteType": "All", "includeManagementEvents": True}], "eventSelectors", False),
        (
            [
                {
                    "fieldSelectors": [
                        {"field": "eventCategory", "equals": ["Management"]},
                        {"field": "readOnly", "equals": ["true"]},
                    ]
                }
            ],
            "advancedEventSelectors",
            True,
        ),
        ([{"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}], "advancedEventSelectors", False),
    ],
)
def test_event_selectors(selectors: list[dict[str, Any]], key: str, fires: bool) -> None:
    assert _matches(_put_selectors(selectors, key)) is fires
