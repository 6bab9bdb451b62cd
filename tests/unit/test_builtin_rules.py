"""Each built-in rule against the positive and negative fixtures that sit next to it (correlators/rules/*.tests/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cordon.replay import load_ruleset, replay
from correlators.config import load_config

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "correlators" / "rules"
CONFIG = load_config(REPO / "examples" / "cordon.yaml")
RULESET = load_ruleset(CONFIG)

# fixture -> (the rule that must raise an incident, the incident's severity)
POSITIVE = {
    "01_training_read_then_model_download/positive": ("ml_training_read_then_model_download", "high"),
    "02_credential_finding_then_ml_access/positive": ("ml_credential_finding_then_ml_access", "critical"),
    "03_bulk_training_read/positive": ("ml_bulk_training_read", "medium"),
    "04_ml_endpoint_alarm/positive": ("ml_endpoint_alarm", "medium"),
    "04_ml_endpoint_alarm/positive_api": ("ml_endpoint_alarm", "medium"),
    "04_ml_endpoint_alarm/positive_escalated": ("ml_endpoint_alarm_with_activity", "high"),
    "05_defense_evasion_near_ml/positive": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_guardduty": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_event_selectors": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_advanced_selectors": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_detector_disabled": ("ml_defense_evasion_near_ml", "high"),
    "06_credential_created_for_other_user/positive": ("ml_credential_created_then_used", "high"),
    "07_notebook_or_model_package_after_credential_finding/positive": (
        "ml_notebook_or_model_package_after_credential_finding",
        "high",
    ),
    "10_training_data_poisoning/positive": ("ml_training_data_poisoned_then_trained", "high"),
    "10_training_data_poisoning/positive_pipeline": ("ml_training_data_poisoned_then_trained", "high"),
    "11_model_tampering_supply_chain/positive": ("ml_model_tampered_then_deployed", "critical"),
    "11_model_tampering_supply_chain/positive_artifact": ("ml_model_tampered_then_deployed", "critical"),
    "11_model_tampering_supply_chain/positive_release_pipeline": ("ml_untrusted_image_model_deployed", "critical"),
}


def _fixture(name: str) -> Path:
    rule, stem = name.split("/")
    return RULES / f"{rule}.tests" / f"{stem}.jsonl"


def _negatives() -> list[tuple[str, Path]]:
    found = []
    for folder in sorted(RULES.glob("*.tests")):
        for path in sorted(folder.glob("negative*.jsonl")):
            found.append((folder.name.removesuffix(".tests"), path))
    return found


def _rule_under_test(rule_file: str) -> str:
    return next(rule for name, (rule, _) in POSITIVE.items() if name.startswith(rule_file))


def test_every_rule_file_has_positive_and_negative_fixtures() -> None:
    for rule_file in sorted(RULES.glob("0[1-9]_*.yml")):
        folder = rule_file.with_suffix(".tests")
        assert list(folder.glob("positive*.jsonl")), f"{rule_file.name}: no positive fixture"
        assert list(folder.glob("negative*.jsonl")), f"{rule_file.name}: no negative fixture"


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_positive_fixture_raises_the_rule(name: str) -> None:
    rule, severity = POSITIVE[name]
    result = replay([str(_fixture(name))], CONFIG, RULESET)
    assert result.rejected == []
    raised = [i for i in result.incidents if rule in i.rules]
    assert len(raised) == 1, [(i.rules, i.severity) for i in result.incidents]
    assert raised[0].severity.value == severity


@pytest.mark.parametrize(("rule_file", "path"), _negatives(), ids=lambda v: getattr(v, "name", v))
def test_negative_fixture_does_not_raise_the_rule(rule_file: str, path: Path) -> None:
    result = replay([str(path)], CONFIG, RULESET)
    assert result.rejected == []
    rule = _rule_under_test(rule_file)
    assert [i.rules for i in result.incidents if rule in i.rules] == []
