"""GuardDuty AI Protection findings default to severity Low: no severity floor may drop them (issue 9, row 5).

The EventBridge side is tested in test_template_patterns.py; this is the correlator's `standalone_min_severity`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from correlators.config import Config, CorrelationConfig
from correlators.ingest import RawRecord
from correlators.model import Severity
from correlators.normalize.guardduty import is_ai_protection
from correlators.pipeline import Pipeline
from correlators.sigma.rules import RuleSet
from correlators.state.memory import MemoryStore


def _finding(finding_type: str, severity: float = 2.0) -> dict[str, Any]:
    # The shape of findings-ai-protection: resource type AccessKey, resource.modelDetails, default severity Low.
    return {
        "schemaVersion": "2.0",
        "accountId": "111122223333",
        "region": "us-east-1",
        "partition": "aws",
        "id": f"ai-{finding_type.rsplit('/', 1)[-1]}",
        "type": finding_type,
        "severity": severity,
        "title": "An IAM identity invoked a model in an anomalous way.",
        "updatedAt": "2026-11-20T10:00:00Z",
        "resource": {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": "AKIAIOSFODNN7LLMJACK",
                "principalId": "AIDAEXAMPLELLMJACK01",
                "userName": "ci-deployer",
                "userType": "IAMUser",
            },
            "modelDetails": [{"modelId": "anthropic.claude-3-sonnet-20240229-v1:0"}],
        },
        "service": {"serviceName": "guardduty", "eventLastSeen": "2026-11-20T09:58:00Z", "archived": False},
    }


def _incidents(finding: dict[str, Any], floor: Severity) -> list[tuple[list[str], str]]:
    config = Config(correlation=CorrelationConfig(standalone_min_severity=floor))
    pipeline = Pipeline(config, RuleSet(), MemoryStore(), now=lambda: datetime(2026, 11, 21, tzinfo=UTC))
    assert pipeline.take(RawRecord(payload=finding, where="test:1")) is None
    pipeline.flush()
    return [(i.rules, i.severity.value) for i in pipeline.store.incidents()]


@pytest.mark.parametrize(
    "finding_type",
    [
        "Impact:IAMUser/AnomalousModelInvocation",
        "Impact:IAMUser/CostHarvesting",
        "Impact:IAMUser/PromptInjection.Direct",
    ],
)
@pytest.mark.parametrize("floor", [Severity.MEDIUM, Severity.CRITICAL])
def test_an_ai_protection_finding_opens_an_incident_whatever_the_floor(finding_type: str, floor: Severity) -> None:
    assert _incidents(_finding(finding_type), floor) == [(["guardduty-finding"], "low")]


def test_another_low_finding_is_still_held_to_the_floor() -> None:
    assert _incidents(_finding("Impact:IAMUser/AnomalousBehavior"), Severity.MEDIUM) == []
    assert _incidents(_finding("Impact:IAMUser/AnomalousBehavior"), Severity.LOW) == [(["guardduty-finding"], "low")]


def test_ai_protection_types_are_told_by_prefix() -> None:
    assert is_ai_protection("Impact:IAMUser/PromptInjection.Indirect")  # a variant GuardDuty may add
    assert not is_ai_protection("Impact:IAMUser/PromptInjection")  # not a documented type
    assert not is_ai_protection("Impact:S3/AnomalousBehavior.Delete")
