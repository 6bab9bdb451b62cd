"""Playbook loading (staged, every error with file:line) and planning (targets only from the incident)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.model import Mode
from cordon.playbooks.plan import plan_incident
from cordon.respond import BUILTIN_PLAYBOOKS
from correlators.errors import PlaybookError
from responders.catalog import builtin_responders

RESPONDERS = builtin_responders()
RULES = {"ml_credential_finding_then_ml_access", "ml_training_read_then_model_download"}

INCIDENT = {
    "id": "inc-1",
    "title": "t",
    "rules": ["ml_credential_finding_then_ml_access"],
    "severity": "critical",
    "first_seen": "2026-11-20T10:00:00+00:00",
    "last_seen": "2026-11-20T10:20:00+00:00",
    "entities": [
        {"type": "principal", "id": "arn:aws:iam::111122223333:role/ml-training-role"},
        {"type": "access_key", "id": "AKIAIOSFODNN7EXAMPLE"},
        {"type": "access_key", "id": "ASIAQNOTEBOOKEXAMPLE"},
        {"type": "account", "id": "111122223333"},
        {"type": "sagemaker_endpoint", "id": "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/fraud-scorer"},
    ],
    "signals": [],
    "actions": [],
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playbook.yaml"
    path.write_text(text)
    return path


def _load(path: Path) -> list:
    playbooks, _ = load_playbooks([path], RESPONDERS, RULES)
    return playbooks


GOOD = """\
name: contain
mode: enforce
trigger:
  rules: [ml_credential_finding_then_ml_access]
  min_severity: high
steps:
  - name: deactivate
    responder: iam.deactivate-access-key
    target: "entities[?type=='access_key' && starts_with(id, 'AKIA')].id"
  - name: quarantine
    responder: sagemaker.quarantine-endpoint
    target: "entities[?type=='sagemaker_endpoint'].id"
    mode: approval
    bind: {deny_principals: "entities[?type=='principal'].id"}
notify:
  - responder: notify.sns
    when: site.topic
    bind: {topic_arn: site.topic}
"""


def test_the_builtin_playbooks_load_against_the_builtin_rules() -> None:
    from cordon.replay import load_ruleset
    from cordon.respond import known_rules
    from correlators.config import Config

    playbooks, errors = load_playbooks(
        [BUILTIN_PLAYBOOKS], RESPONDERS, known_rules(load_ruleset(Config())), collect_errors=True
    )
    assert errors == []
    assert len(playbooks) == 9


def test_a_plan_targets_only_what_the_incident_names(tmp_path: Path) -> None:
    playbooks = _load(_write(tmp_path, GOOD))
    site = {"topic": "arn:aws:sns:us-east-1:111122223333:alerts"}
    plans = plan_incident(INCIDENT, playbooks, RESPONDERS, site, "us-east-1")
    assert [(p.step, p.target.id, p.mode) for p in plans] == [
        ("deactivate", "AKIAIOSFODNN7EXAMPLE", Mode.ENFORCE),
        ("quarantine", "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/fraud-scorer", Mode.APPROVAL),
        ("notify:notify.sns", "inc-1", Mode.ENFORCE),
    ]
    quarantine = plans[1]
    assert quarantine.params == {"deny_principals": ["arn:aws:iam::111122223333:role/ml-training-role"]}
    assert (quarantine.target.account, quarantine.target.region) == ("111122223333", "eu-west-1")
    assert plans[0].target.account == "111122223333"  # a key id has no ARN: the incident's account
    assert plans[2].params == {"topic_arn": site["topic"]}


def test_a_target_the_incident_does_not_name_is_a_planning_problem(tmp_path: Path) -> None:
    text = GOOD.replace("\"entities[?type=='access_key' && starts_with(id, 'AKIA')].id\"", "\"'AKIAOTHERUSERSKEY000'\"")
    plans = plan_incident(INCIDENT, _load(_write(tmp_path, text)), RESPONDERS, {}, "us-east-1")
    assert plans[0].problem == "target 'AKIAOTHERUSERSKEY000' is not a access_key entity of this incident"


def test_an_untriggered_playbook_plans_nothing(tmp_path: Path) -> None:
    incident = {**INCIDENT, "severity": "medium"}
    assert plan_incident(incident, _load(_write(tmp_path, GOOD)), RESPONDERS, {}, "us-east-1") == []


def test_a_notification_without_its_site_value_is_left_out(tmp_path: Path) -> None:
    plans = plan_incident(INCIDENT, _load(_write(tmp_path, GOOD)), RESPONDERS, {}, "us-east-1")
    assert [p.step for p in plans] == ["deactivate", "quarantine"]


def test_an_unknown_responder_names_file_line_and_the_valid_choices(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("responder: iam.deactivate-access-key", "responder: iam.revoke"))
    with pytest.raises(
        PlaybookError, match=rf"^{path}:8: unknown responder 'iam.revoke', valid: .*iam.deactivate-access-key"
    ):
        _load(path)


def test_lint_mode_reports_every_error(tmp_path: Path) -> None:
    text = (
        GOOD.replace("mode: enforce", "mode: yolo")
        .replace("[ml_credential_finding_then_ml_access]", "[no_such_rule]")
        .replace("bind: {deny_principals", "bind: {deny_everyone")
    )
    path = _write(tmp_path, text)
    _, errors = load_playbooks([path], RESPONDERS, RULES, collect_errors=True)
    # a schema error stops the parameter checks, but the names the playbook refers to are still checked
    messages = [str(e) for e in errors]
    assert messages[0] == f"{path}:2: mode: Input should be 'dry_run', 'approval' or 'enforce' (got 'yolo')"
    assert messages[1].startswith(f"{path}:4: unknown rule 'no_such_rule', valid: ")
    assert len(messages) == 2
    fixed = _write(tmp_path, text.replace("mode: yolo", "mode: enforce"))
    _, errors = load_playbooks([fixed], RESPONDERS, RULES, collect_errors=True)
    messages = [str(e) for e in errors]
    assert messages[0].startswith(f"{fixed}:4: unknown rule 'no_such_rule', valid: ")
    assert messages[1].startswith(
        f"{fixed}:14: sagemaker.quarantine-endpoint: unknown parameter 'deny_everyone', valid: "
    )
    assert len(messages) == 2


def test_unknown_keys_and_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("mode: enforce\n", "mode: enforce\nmodes: x\n"))
    with pytest.raises(PlaybookError, match=rf"^{path}:3: modes: Extra inputs are not permitted"):
        _load(path)
    path = _write(tmp_path, GOOD.replace("mode: enforce\n", "mode: enforce\nmode: dry_run\n"))
    with pytest.raises(PlaybookError, match=rf"^{path}:3: duplicate key 'mode'"):
        _load(path)


def test_a_bad_jmespath_expression_is_a_load_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path, GOOD.replace("target: \"entities[?type=='sagemaker_endpoint'].id\"", 'target: "entities[?"')
    )
    with pytest.raises(PlaybookError, match=r"steps.1.target: invalid JMESPath 'entities\[\?'"):
        _load(path)
