"""`cordon replay` as a user runs it: files, folders and stdin in; JSON or text out; exit codes 0, 2, 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cordon.cli import main

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "examples" / "scenarios"
CONFIG = REPO / "examples" / "cordon.yaml"


def _replay_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["replay", *args, "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_demo_scenarios_raise_rules_1_2_and_4_and_nothing_for_benign_traffic(capsys) -> None:
    # GIVEN the bundled scenario: an exfiltrating contractor, stolen instance credentials, an endpoint under attack,
    # and data scientists reading the same training bucket from a shared NAT address
    output = _replay_json(capsys, str(SCENARIOS), "--config", str(CONFIG))
    rules = {rule for incident in output["incidents"] for rule in incident["rules"]}
    # THEN rules 1, 2 and 4 raised incidents
    assert {
        "ml_training_read_then_model_download",
        "ml_credential_finding_then_ml_access",
        "ml_endpoint_alarm_with_activity",
    } <= rules
    # AND no benign principal or the shared NAT address is in any incident
    entity_ids = {e["id"] for incident in output["incidents"] for e in incident["entities"]}
    assert not {i for i in entity_ids if "data-scientist" in i or "admin-alice" in i or "SageMakerExecution" in i}
    assert "192.0.2.10" not in entity_ids
    # AND the two broken records are reported with file:line and the rest went on
    assert [r["where"].rsplit("/", 1)[-1] for r in output["rejected"]] == [
        "02_eventbridge_0940-1020.jsonl:2",
        "03_mixed_1031-1127.jsonl:2",
    ]
    assert output["stats"]["rejected"] == 2
    assert output["stats"]["accepted"] == output["stats"]["events_read"] - 2


def test_json_output_has_the_documented_shape(capsys) -> None:
    output = _replay_json(capsys, str(SCENARIOS), "--config", str(CONFIG))
    assert set(output) == {"incidents", "rejected", "stats"}
    incident = output["incidents"][0]
    assert set(incident) == {
        "id",
        "title",
        "rules",
        "severity",
        "first_seen",
        "last_seen",
        "entities",
        "signals",
        "signal_count",
        "rule_counts",
        "actions",
    }
    assert incident["severity"] in {"low", "medium", "high", "critical"}
    assert set(incident["signals"][0]) == {"rule", "event_id", "time", "source", "principal", "object_version"}
    assert set(incident["entities"][0]) == {"type", "id"}
    assert {"events_read", "accepted", "rejected", "signals", "incidents", "evicted"} <= set(output["stats"])


def test_incident_entities_use_the_role_arn_not_the_session(capsys) -> None:
    output = _replay_json(capsys, str(SCENARIOS), "--config", str(CONFIG))
    stolen = next(i for i in output["incidents"] if "ml_credential_finding_then_ml_access" in i["rules"])
    principals = [e["id"] for e in stolen["entities"] if e["type"] == "principal"]
    assert principals == ["arn:aws:iam::111122223333:role/ml-training-role"]
    assert {"type": "access_key", "id": "ASIAQNOTEBOOKEXAMPLE"} in stolen["entities"]


def test_a_second_replay_on_sqlite_continues_the_windows_of_the_first(tmp_path, capsys) -> None:
    # GIVEN rule 1's training-data reads replayed alone into a SQLite state file
    fixture = REPO / "correlators/rules/01_training_read_then_model_download.tests/positive.jsonl"
    lines = fixture.read_text().splitlines()
    reads = [line for line in lines if "acme-model-registry" not in line]
    download = [line for line in lines if "acme-model-registry" in line]
    assert reads and download
    (tmp_path / "first.jsonl").write_text("\n".join(reads) + "\n")
    (tmp_path / "second.jsonl").write_text("\n".join(download) + "\n")
    state = f"sqlite:///{tmp_path / 'state.db'}"
    first = _replay_json(capsys, str(tmp_path / "first.jsonl"), "--config", str(CONFIG), "--state", state)
    assert first["incidents"] == []
    # WHEN the model download arrives in a later run
    second = _replay_json(capsys, str(tmp_path / "second.jsonl"), "--config", str(CONFIG), "--state", state)
    # THEN the correlation completes across the two runs
    assert [i["rules"] for i in second["incidents"]] == [["ml_training_read_then_model_download"]]
    # AND it is the incident one run over both files gives, with the same id
    both = _replay_json(capsys, str(fixture), "--config", str(CONFIG))
    assert second["incidents"][0]["id"] == both["incidents"][0]["id"]


def test_replaying_the_same_files_twice_into_one_state_changes_nothing(tmp_path, capsys) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    _replay_json(capsys, str(SCENARIOS), "--config", str(CONFIG), "--state", state)
    again = _replay_json(capsys, str(SCENARIOS), "--config", str(CONFIG), "--state", state)
    assert again["incidents"] == []
    assert again["stats"]["duplicates"] == again["stats"]["accepted"]


def test_stdin_is_read_with_dash() -> None:
    fixture = REPO / "correlators/rules/01_training_read_then_model_download.tests/positive.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "cordon.cli", "replay", "-", "--config", str(CONFIG), "--output", "json"],
        input=fixture.read_bytes(),
        capture_output=True,
        check=True,
    )
    output = json.loads(result.stdout)
    assert [i["rules"] for i in output["incidents"]] == [["ml_training_read_then_model_download"]]


def test_text_output_shows_severity_entities_and_timeline(capsys) -> None:
    assert main(["replay", str(SCENARIOS), "--config", str(CONFIG)]) == 0
    text = capsys.readouterr().out
    assert "CRITICAL" in text and "HIGH" in text
    assert "arn:aws:iam::111122223333:user/ml-contractor" in text
    assert "s3:GetObject" in text
    assert "2 event(s) rejected" in text


def test_an_invalid_config_exits_2_naming_file_and_line(tmp_path, capsys) -> None:
    config = tmp_path / "cordon.yaml"
    config.write_text("assets:\n  training_data: ['s3://b/*']\nguards:\n  protected_principals: ['BreakGlass*']\n")
    assert main(["replay", str(SCENARIOS), "--config", str(config)]) == 2
    assert f"{config}:4: guards.protected_principals" in capsys.readouterr().err


def test_an_unknown_config_key_exits_2(tmp_path, capsys) -> None:
    config = tmp_path / "cordon.yaml"
    config.write_text("assets: {}\nasset: {}\n")
    assert main(["replay", str(SCENARIOS), "--config", str(config)]) == 2
    assert f"{config}:2: asset: Extra inputs are not permitted" in capsys.readouterr().err


def test_a_broken_rule_file_exits_2_naming_file_and_line(tmp_path, capsys) -> None:
    rule = tmp_path / "bad.yml"
    rule.write_text(
        "title: x\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n"
        "    eventName|nosuchmodifier: X\n  condition: sel\n"
    )
    assert main(["replay", str(SCENARIOS), "--rules", str(rule)]) == 2
    assert str(rule) in capsys.readouterr().err


def test_bad_usage_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay"])
    assert exit_info.value.code == 2


def test_a_missing_input_path_is_bad_usage(capsys) -> None:
    assert main(["replay", "/nonexistent/events.json"]) == 2
    assert "no such file or folder: /nonexistent/events.json" in capsys.readouterr().err


def test_validate_reports_every_error_with_file_and_line(tmp_path, capsys) -> None:
    playbook = tmp_path / "bad-playbook.yaml"
    playbook.write_text("name: Bad Name\ntrigger: {rules: [nope]}\nsteps:\n  - name: x\n    responder: iam.revoke\n")
    rule = tmp_path / "bad-rule.yml"
    rule.write_text(
        "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n"
        "    eventName|bogus: X\n  condition: sel\n"
    )
    assert main(["validate", str(playbook), str(rule)]) == 2
    err = capsys.readouterr()
    lines = err.err.splitlines()
    assert lines[0] == f"{rule}:5: Unknown modifier 'bogus'"
    assert lines[1] == f"{playbook}:1: name: playbook name 'Bad Name' must be lower-case letters, digits and dashes"
    assert lines[2].startswith(f"{playbook}:2: unknown rule 'nope', valid: ")
    assert lines[3].startswith(f"{playbook}:5: unknown responder 'iam.revoke', valid: apigateway.disable-api-key")
    assert "4 error(s)" in err.out


def test_validate_passes_on_the_shipped_config_rules_and_playbooks(capsys) -> None:
    assert main(["validate", "--config", str(CONFIG)]) == 0
    assert "ok" in capsys.readouterr().out


def test_validate_reports_every_config_error(tmp_path, capsys) -> None:
    config = tmp_path / "cordon.yaml"
    config.write_text(
        "assets:\n  Training: ['s3://b/*']\nguards:\n  protected_principals: ['Break*']\n  max_actions_per_hour: -1\n"
    )
    assert main(["validate", "--config", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{config}:1", f"{config}:4", f"{config}:5"]
