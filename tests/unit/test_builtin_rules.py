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
    "05_defense_evasion_near_ml/positive_selectors_defaults": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_selectors_empty": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_trail_narrowed": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_lake_stopped": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_guardduty_protection_off": ("ml_defense_evasion_near_ml", "high"),
    "05_defense_evasion_near_ml/positive_guardduty_members": ("ml_defense_evasion_near_ml", "high"),
    "06_credential_created_for_other_user/positive": ("ml_credential_created_then_used", "high"),
    # Critical since rule file 08: the fixture's instance session is flagged by GuardDuty and calls within the
    # hour (ml_workload_session_credential_finding); rule 07 itself still raises at high.
    "07_notebook_or_model_package_after_credential_finding/positive": (
        "ml_notebook_or_model_package_after_credential_finding",
        "critical",
    ),
    "08_workload_credentials_used_outside_workload/positive": (
        "ml_workload_credentials_used_from_operator_address",
        "high",
    ),
    "08_workload_credentials_used_outside_workload/positive_invictus": (
        "ml_workload_credentials_used_from_operator_address",
        "high",
    ),
    "08_workload_credentials_used_outside_workload/positive_second_network": (
        "ml_workload_session_second_network",
        "medium",
    ),
    "08_workload_credentials_used_outside_workload/positive_workstation_agent": (
        "ml_workload_session_workstation_agent",
        "high",
    ),
    "08_workload_credentials_used_outside_workload/positive_credential_finding": (
        "ml_workload_session_credential_finding",
        "critical",
    ),
    "09_sagemaker_notebook_code_execution_and_privesc/positive": (
        "sagemaker_notebook_lifecycle_code_execution",
        "high",
    ),
    "09_sagemaker_notebook_code_execution_and_privesc/positive_script_swapped": (
        "sagemaker_notebook_lifecycle_script_swapped",
        "high",
    ),
    "09_sagemaker_notebook_code_execution_and_privesc/positive_role_escalation": (
        "sagemaker_execution_role_escalation",
        "high",
    ),
    "09_sagemaker_notebook_code_execution_and_privesc/positive_presigned_url_by_workload": (
        "sagemaker_presigned_url_by_workload",
        "high",
    ),
    "12_bedrock_llmjacking/positive": ("bedrock_llmjacking_enable_then_invoke", "high"),
    "12_bedrock_llmjacking/positive_protection_removed": ("bedrock_invocation_logging_or_guardrail_removed", "high"),
    "12_bedrock_llmjacking/positive_ai_finding": ("bedrock_ai_finding_with_invocation", "high"),
    "12_bedrock_llmjacking/positive_credential_finding": ("bedrock_use_with_credential_finding", "critical"),
    "13_ml_data_destruction/positive": ("ml_asset_deletion_burst", "critical"),
    "13_ml_data_destruction/positive_batch": ("ml_asset_batch_delete_burst", "critical"),
    "13_ml_data_destruction/positive_lifecycle": ("ml_asset_bucket_expiring_lifecycle", "critical"),
    "13_ml_data_destruction/positive_sse_c": ("ml_asset_sse_c_rewrite_burst", "critical"),
    "14_guardduty_attack_sequence/positive": ("guardduty_attack_sequence", "critical"),
    "15_ml_config_noncompliant/positive": ("ml_asset_bucket_public", "medium"),
    "15_ml_config_noncompliant/positive_write": ("ml_asset_bucket_public", "medium"),
    "15_ml_config_noncompliant/positive_notebook": ("ml_sagemaker_network_exposed", "medium"),
    "16_ml_asset_bucket_public_then_read/positive": ("ml_asset_bucket_public_then_read_from_outside", "high"),
    "14_guardduty_attack_sequence/positive_joins": ("guardduty_attack_sequence", "critical"),
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


def _rules_under_test(rule_file: str) -> set[str]:
    """Every rule a positive fixture of the file raises: a file with several rules keeps each of them quiet."""
    return {rule for name, (rule, _) in POSITIVE.items() if name.startswith(rule_file + "/")}


def test_every_rule_file_has_positive_and_negative_fixtures() -> None:
    for rule_file in sorted(set(RULES.glob("[0-9][0-9]_*.yml")) - set(RULES.glob("00_*.yml"))):
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
    rules = _rules_under_test(rule_file)
    assert [i.rules for i in result.incidents if rules & set(i.rules)] == []
