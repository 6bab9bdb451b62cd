"""`cordon validate` on playbooks that run SSM Automation runbooks: the runbook and every parameter it is given have
a value or a binding, parameters are bound so that each is visible, and the automation role is configured."""

from __future__ import annotations

from pathlib import Path

from cordon.validate import validate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "playbooks" / "contain-public-ml-bucket-with-runbook.yaml"
ROLE_CONFIG = "execution:\n  automation_role_arn: arn:aws:iam::111122223333:role/SocAutomationRole\n"
PLAYBOOK = """\
name: runbook-check
trigger: {rules: [ml_credential_finding_then_ml_access]}
steps:
  - name: run
    responder: ssm.start-automation
{step}
"""


def _messages(tmp_path: Path, step: str, config: str = ROLE_CONFIG) -> list[str]:
    (tmp_path / "cordon.yaml").write_text(config + "builtin_playbooks: false\n")
    playbook = tmp_path / "runbook.yaml"
    playbook.write_text(PLAYBOOK.replace("{step}", step))
    return [str(error) for error in validate(tmp_path / "cordon.yaml", [playbook])]


def test_the_example_playbook_is_valid_with_an_automation_role(tmp_path: Path) -> None:
    (tmp_path / "cordon.yaml").write_text(ROLE_CONFIG)
    assert validate(tmp_path / "cordon.yaml", [EXAMPLE]) == []


def test_without_the_automation_role_every_runbook_step_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "cordon.yaml").write_text("{}\n")
    messages = [str(error) for error in validate(tmp_path / "cordon.yaml", [EXAMPLE])]
    assert len(messages) == 2
    assert all("execution.automation_role_arn is not set in the config" in m for m in messages)
    assert all(str(EXAMPLE) in m for m in messages)


def test_a_runbook_step_without_its_document_is_an_error(tmp_path: Path) -> None:
    [message] = _messages(tmp_path, "    params: {parameters: {Action: Contain}}")
    assert "ssm.start-automation: parameter 'document_name' has no value and no binding" in message
    assert "runbook.yaml:3" in message  # the steps list: a step missing a key has no line of its own


def test_a_null_runbook_parameter_is_an_error(tmp_path: Path) -> None:
    [message] = _messages(tmp_path, "    params: {document_name: SOC-Runbook, parameters: {RoleArn: null}}")
    assert "runbook parameter 'RoleArn' is null" in message


def test_runbook_parameters_bound_by_a_bare_expression_are_an_error(tmp_path: Path) -> None:
    step = "    params: {document_name: SOC-Runbook}\n    bind: {parameters: site.runbook_parameters}"
    [message] = _messages(tmp_path, step)
    assert "bind parameters as one JMESPath object" in message


def test_a_playbook_cannot_choose_the_role_a_runbook_runs_under(tmp_path: Path) -> None:
    step = (
        "    params: {document_name: SOC-Runbook}\n"
        "    bind: {parameters: \"{AutomationAssumeRole: entities[?type=='principal'].id | [0]}\"}"
    )
    [message] = _messages(tmp_path, step)
    assert "runbook parameter 'AutomationAssumeRole' is set by Cordon" in message


def test_rollback_parameters_need_a_rollback_document(tmp_path: Path) -> None:
    step = "    params: {document_name: SOC-Runbook, rollback_parameters: {Action: Restore}}"
    [message] = _messages(tmp_path, step)
    assert "rollback_parameters need a rollback_document" in message


def test_bound_runbook_parameters_as_an_object_are_valid(tmp_path: Path) -> None:
    step = (
        "    params: {document_name: SOC-Runbook}\n"
        "    bind: {parameters: \"{RoleArn: entities[?type=='principal'].id | [0], Mode: 'Restrict'}\"}"
    )
    assert _messages(tmp_path, step) == []
