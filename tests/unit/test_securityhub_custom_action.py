"""Findings an analyst sends from the Security Hub console with the custom action "Contain with Cordon" are a
request for containment: implicit rule securityhub-custom-action, at least high whatever the finding says, so an
incident opens (or the one of its identities is joined) and playbook 18 runs. The same finding imported as usual
keeps its own severity and rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from cordon.replay import load_ruleset, replay
from correlators.config import Config
from correlators.detect import SECURITYHUB_REQUEST_RULE, SECURITYHUB_RULE, Detector
from correlators.ingest import RawRecord
from correlators.normalize import normalize

REPO = Path(__file__).resolve().parents[2]
SENT = json.loads((REPO / "examples/fixtures/securityhub_custom_action_cloud_custodian.json").read_text())
DETECTOR = Detector(load_ruleset(Config()))


def _signals(event: dict[str, Any]) -> list[tuple[str, str]]:
    [normalized] = normalize(RawRecord(event, "test:1"), Config())
    return [(s.rule, s.severity.value) for s in DETECTOR.detect(normalized)]


def _as(detail_type: str, severity: str | None = None, status: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(SENT)
    event["detail-type"] = detail_type
    finding = event["detail"]["findings"][0]
    if severity:
        finding["Severity"] = {"Label": severity, "Normalized": {"CRITICAL": 90, "LOW": 10}[severity]}
    if status:
        finding["Workflow"] = {"Status": status}
    return event


def test_a_finding_sent_by_an_analyst_is_a_high_request_for_containment() -> None:
    assert _signals(SENT) == [(SECURITYHUB_REQUEST_RULE, "high")]  # the finding itself is medium


def test_the_same_finding_imported_keeps_its_own_rule_and_severity() -> None:
    assert _signals(_as("Security Hub Findings - Imported")) == [(SECURITYHUB_RULE, "medium")]


def test_a_critical_finding_stays_critical_and_a_resolved_one_is_still_a_request() -> None:
    assert _signals(_as("Security Hub Findings - Custom Action", severity="CRITICAL")) == [
        (SECURITYHUB_REQUEST_RULE, "critical")
    ]
    assert _signals(_as("Security Hub Findings - Custom Action", status="RESOLVED")) == [
        (SECURITYHUB_REQUEST_RULE, "high")
    ]
    assert _signals(_as("Security Hub Findings - Imported", status="RESOLVED")) == []


def test_replayed_it_opens_an_incident_that_playbook_18_would_contain(tmp_path: Path) -> None:
    path = tmp_path / "sent.json"
    path.write_text(json.dumps(SENT))
    config = Config()
    result = replay([str(path)], config, load_ruleset(config))
    [incident] = result.incidents
    assert incident.rules == [SECURITYHUB_REQUEST_RULE] and incident.severity.value == "high"
    assert {e.id for e in incident.entities} >= {"arn:aws:iam::644160558196:user/kapil"}
