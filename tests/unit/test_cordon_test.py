"""`cordon test` as a SOC author runs it: built-ins pass, each kind of broken fixture fails with one line naming the
place to fix, exit codes 0 / 1 / 2, JUnit XML a CI reads."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from cordon.authoring.playbook_fixtures import cases_of
from cordon.authoring.skeletons import new_playbook, new_rule
from cordon.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "examples" / "cordon.yaml"
RULE = "sagemaker_model_deleted"
LONELY_RULE = """\
title: Lonely
name: lonely
logsource: {product: aws, service: cloudtrail}
detection: {selection: {eventName: DeleteModel}, condition: selection}
level: high
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path) -> Iterator[None]:
    # Paths print relative to the working directory: run where the author's files are.
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(before)


def _cordon_test(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["test", *args])
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    new_rule(RULE, tmp_path)
    return tmp_path / f"{RULE}.yml"


@pytest.fixture
def playbook_file(tmp_path: Path) -> Path:
    new_playbook("contain-model-deletion", tmp_path, "ml_bulk_training_read")  # a built-in rule: always loaded
    return tmp_path / "contain-model-deletion.yaml"


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


# --- the built-in rules and playbooks ---------------------------------------------------------------------------


def test_every_builtin_rule_and_playbook_passes(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN no path and no --config: what cordon validate checks, each fixture with the config it names
    code, lines = _cordon_test(capsys)
    # THEN every fixture passed and nothing was left untested
    rules = REPO / "correlators" / "rules"
    fixtures = len([*rules.glob("*.tests/positive*.jsonl"), *rules.glob("*.tests/negative*.jsonl")])
    fixtures += len(list((REPO / "playbooks").glob("*.tests/*.yaml")))
    rule_files = len(list((REPO / "correlators" / "rules").glob("*.yml")))
    playbook_files = len(list((REPO / "playbooks").glob("*.yaml")))
    assert lines == [f"{rule_files} rule files, {playbook_files} playbook files, {fixtures} fixtures: all passed"]
    assert code == 0


@pytest.mark.parametrize("playbook", sorted((REPO / "playbooks").glob("*.yaml")), ids=lambda path: path.stem)
def test_every_builtin_playbook_has_a_triggered_case_and_one_that_does_not_run_everything(playbook: Path) -> None:
    import yaml

    expects = [yaml.safe_load(case.read_text())["expect"] for case in cases_of(playbook)]
    assert any(isinstance(expect, list) and expect for expect in expects), f"{playbook.name}: no triggered case"
    untriggered = [expect for expect in expects if expect == "not triggered"]
    refused = [e for expect in expects if isinstance(expect, list) for e in expect if "refused" in e]
    assert untriggered or refused, f"{playbook.name}: no not-triggered or refused case"


# --- rule fixtures ------------------------------------------------------------------------------------------------


def test_a_new_rule_passes_as_written(capsys: pytest.CaptureFixture[str], rule_file: Path) -> None:
    code, lines = _cordon_test(capsys, str(rule_file))
    assert lines == ["1 rule file, 0 playbook files, 2 fixtures: all passed"]
    assert code == 0


def test_a_positive_that_does_not_fire_fails_naming_the_fixture_and_the_expectation(
    capsys: pytest.CaptureFixture[str], rule_file: Path
) -> None:
    # GIVEN a positive fixture whose call is not the one the rule detects
    positive = rule_file.with_suffix(".tests") / "positive.jsonl"
    positive.write_text(positive.read_text().replace('"DeleteModel"', '"DescribeModel"'))
    # WHEN the author runs cordon test
    code, lines = _cordon_test(capsys, str(rule_file))
    # THEN one line says which fixture, what it should have raised (and where that is written), what it raised
    assert lines == [
        f"FAIL {RULE}.tests/positive.jsonl: 0 incidents raised by {RULE}, expected one"
        f" ({RULE}.tests/expect.yaml:8); raised: no incident",
        "1 rule file, 0 playbook files, 2 fixtures: 1 failed",
    ]
    assert code == 1


def test_a_positive_without_expectation_needs_any_rule_of_its_file(
    capsys: pytest.CaptureFixture[str], rule_file: Path
) -> None:
    folder = rule_file.with_suffix(".tests")
    (folder / "expect.yaml").unlink()
    (folder / "positive_other.jsonl").write_text((folder / "negative.jsonl").read_text())
    code, lines = _cordon_test(capsys, str(rule_file))
    assert lines[0] == f"FAIL {RULE}.tests/positive_other.jsonl: raised no incident from {RULE}; raised: no incident"
    assert code == 1


def test_a_positive_of_another_severity_fails(capsys: pytest.CaptureFixture[str], rule_file: Path) -> None:
    expect = rule_file.with_suffix(".tests") / "expect.yaml"
    expect.write_text(expect.read_text().replace("severity: medium", "severity: high"))
    code, lines = _cordon_test(capsys, str(rule_file))
    assert lines[0] == (
        f"FAIL {RULE}.tests/positive.jsonl: {RULE} raised a medium incident, expected high ({RULE}.tests/expect.yaml:8)"
    )
    assert code == 1


def test_a_negative_that_fires_fails(capsys: pytest.CaptureFixture[str], rule_file: Path) -> None:
    folder = rule_file.with_suffix(".tests")
    (folder / "negative_copy.jsonl").write_text((folder / "positive.jsonl").read_text())
    code, lines = _cordon_test(capsys, str(rule_file), "-v")
    assert lines[:2] == [
        f"FAIL {RULE}.tests/negative_copy.jsonl: raised {RULE}: a negative fixture must raise none of {RULE}",
        f"     raised: {RULE} (medium)",
    ]
    assert lines[-1] == "1 rule file, 0 playbook files, 3 fixtures: 1 failed"
    assert code == 1


def test_a_fixture_that_is_not_json_lines_fails_at_its_line(
    capsys: pytest.CaptureFixture[str], rule_file: Path
) -> None:
    negative = rule_file.with_suffix(".tests") / "negative.jsonl"
    negative.write_text(negative.read_text() + '{"eventName": "DeleteModel", \n')
    code, lines = _cordon_test(capsys, str(rule_file))
    assert lines[0] == (
        f"FAIL {RULE}.tests/negative.jsonl:2: not a valid event: invalid JSON at column 30:"
        " Expecting property name enclosed in double quotes"
    )
    assert code == 1


def test_an_empty_fixture_fails_rather_than_passing_whatever_the_rule_says(
    capsys: pytest.CaptureFixture[str], rule_file: Path
) -> None:
    (rule_file.with_suffix(".tests") / "negative_empty.jsonl").write_text("\n")
    code, lines = _cordon_test(capsys, str(rule_file))
    assert lines[0] == f"FAIL {RULE}.tests/negative_empty.jsonl: no events: a fixture holds one JSON event per line"
    assert code == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "positive_typo: {rule: R}",
            "'positive_typo' is not a fixture of this folder, valid: config, negative, positive",
        ),
        ("negative: {rule: R, severity: low}", "negative: a negative fixture raises nothing, so it has no severity"),
        ("negative: {rule: ml_bulk_training_read}", "negative: rule 'ml_bulk_training_read' is not an alerting rule"),
        ("negative: {rule: R, level: low}", "negative.level: Extra inputs are not permitted"),
        ("config: nowhere.yaml", "configuration"),
    ],
)
def test_a_bad_expect_yaml_fails_at_its_line(
    capsys: pytest.CaptureFixture[str], rule_file: Path, entry: str, message: str
) -> None:
    expect = rule_file.with_suffix(".tests") / "expect.yaml"
    expect.write_text(expect.read_text() + entry.replace("R", RULE, 1) + "\n")
    code, lines = _cordon_test(capsys, str(rule_file))
    assert lines[0].startswith(f"FAIL {RULE}.tests/expect.yaml:9: ")
    assert message in lines[0]
    assert code == 1


def test_a_rule_file_that_does_not_load_fails_with_its_line(
    capsys: pytest.CaptureFixture[str], rule_file: Path
) -> None:
    rule_file.write_text(rule_file.read_text().replace("level: medium", "level: severe"))
    code, lines = _cordon_test(capsys, str(rule_file))
    assert (
        lines[0]
        == f"FAIL {rule_file.name}:{_line_of(rule_file, 'level: severe')}: 'severe' is not a valid Sigma rule level"
    )
    assert code == 1


def test_a_rule_without_fixtures_is_reported_untested(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rule = tmp_path / "lonely.yml"
    rule.write_text(LONELY_RULE)
    code, lines = _cordon_test(capsys, str(rule))
    assert lines == [
        "SKIP lonely.yml: no fixtures: add lonely.tests/positive.jsonl and negative.jsonl",
        "1 rule file, 0 playbook files, 0 fixtures: all passed",
    ]
    assert code == 0


def test_the_config_of_expect_yaml_wins_over_the_command_line(
    capsys: pytest.CaptureFixture[str], rule_file: Path, tmp_path: Path
) -> None:
    # GIVEN --config raising the bar for incidents alone above the rule's level, and expect.yaml naming none
    strict = tmp_path / "strict.yaml"
    strict.write_text("correlation: {standalone_min_severity: high}\n")
    code, lines = _cordon_test(capsys, str(rule_file), "--config", str(strict))
    # THEN the positive no longer raises: --config applies
    assert code == 1
    assert "0 incidents raised by" in lines[0]
    # WHEN expect.yaml names the configuration its fixtures were written for
    (tmp_path / "plain.yaml").write_text("{}\n")
    expect = rule_file.with_suffix(".tests") / "expect.yaml"
    expect.write_text("config: ../plain.yaml\n" + expect.read_text())
    code, lines = _cordon_test(capsys, str(rule_file), "--config", str(strict))
    # THEN that one replays them
    assert code == 0, lines


# --- playbook fixtures --------------------------------------------------------------------------------------------


def test_a_new_playbook_passes_as_written(
    capsys: pytest.CaptureFixture[str], rule_file: Path, playbook_file: Path
) -> None:
    code, lines = _cordon_test(capsys, str(rule_file), str(playbook_file))
    assert lines == ["1 rule file, 1 playbook file, 4 fixtures: all passed"]
    assert code == 0


def test_a_case_whose_expected_step_differs_fails_at_that_step(
    capsys: pytest.CaptureFixture[str], playbook_file: Path
) -> None:
    case = playbook_file.with_suffix(".tests") / "triggered.yaml"
    case.write_text(case.read_text().replace('target: "arn:aws:iam::111122223333:role/ml-training-role"', "target: x"))
    code, lines = _cordon_test(capsys, str(playbook_file), "-v")
    step_line = _line_of(case, "- step: revoke-role-sessions")
    assert lines[0] == (
        f"FAIL contain-model-deletion.tests/triggered.yaml:{step_line}: action 1 (revoke-role-sessions):"
        " target: expected x, planned arn:aws:iam::111122223333:role/ml-training-role"
    )
    # AND -v shows the plan as expect: entries, to compare or paste
    assert lines[1] == "     planned (as expect: entries):"
    assert code == 1


def test_a_case_missing_or_adding_an_action_fails(capsys: pytest.CaptureFixture[str], playbook_file: Path) -> None:
    case = playbook_file.with_suffix(".tests") / "triggered.yaml"
    text = case.read_text()
    case.write_text(text[: text.index('  - step: "notify:notify.sns"')])
    code, lines = _cordon_test(capsys, str(playbook_file))
    assert lines[0] == (
        f"FAIL contain-model-deletion.tests/triggered.yaml:{_line_of(case, 'expect:')}: planned 2 actions, expected 1:"
        " also planned notify:notify.sns notify.sns inc-example-0001 enforce"
    )
    assert code == 1


def test_not_triggered_and_triggered_cases_say_why(capsys: pytest.CaptureFixture[str], playbook_file: Path) -> None:
    folder = playbook_file.with_suffix(".tests")
    untriggered = folder / "not_triggered.yaml"
    untriggered.write_text(untriggered.read_text().replace("severity: medium", "severity: critical"))
    triggered = folder / "triggered.yaml"
    triggered.write_text(triggered.read_text().replace("severity: high", "severity: low"))
    code, lines = _cordon_test(capsys, str(playbook_file))
    assert lines[:2] == [
        "FAIL contain-model-deletion.tests/not_triggered.yaml: triggered contain-model-deletion,"
        " expected not triggered",
        "FAIL contain-model-deletion.tests/triggered.yaml: contain-model-deletion not triggered: severity low is below"
        " the trigger's min_severity high",
    ]
    assert code == 1


def test_a_refused_action_is_expected_by_its_reason(capsys: pytest.CaptureFixture[str], playbook_file: Path) -> None:
    # GIVEN a playbook step whose target the incident does not name as a principal
    playbook_file.write_text(
        playbook_file.read_text().replace(
            "target: \"entities[?type=='principal' && contains(id, ':role/')].id\"",
            "target: \"'arn:aws:iam::1:role/x'\"",
        )
    )
    case = playbook_file.with_suffix(".tests") / "triggered.yaml"
    text = case.read_text().replace(
        '"arn:aws:iam::111122223333:role/ml-training-role"\n    mode', "arn:aws:iam::1:role/x\n    mode"
    )
    case.write_text(text)
    # THEN a case that expects the step to run fails, saying it was refused and why
    code, lines = _cordon_test(capsys, str(playbook_file))
    assert lines[0].endswith(
        "action 1 (revoke-role-sessions): refused (target 'arn:aws:iam::1:role/x' is not a principal entity of this"
        " incident), expected to run"
    )
    # AND one that expects the refusal passes
    case.write_text(text.replace("mode: dry_run\n", "mode: dry_run\n    refused: is not a principal entity\n", 1))
    code, lines = _cordon_test(capsys, str(playbook_file))
    assert code == 0, lines


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("expect: not triggered", "expect: never", "expect: Input should be 'not triggered'"),
        ("expect: not triggered", "expect: [{step: x}]", "expect.0.responder: Field required"),
        ("severity: medium", "severity: huge", "incident.severity: Input should be"),
        (
            "incident:",
            "playbook: other\nincident:",
            "no playbook 'other' in the playbook file, valid: contain-model-deletion",
        ),
    ],
)
def test_a_bad_case_file_fails_at_its_line(
    capsys: pytest.CaptureFixture[str], playbook_file: Path, old: str, new: str, message: str
) -> None:
    case = playbook_file.with_suffix(".tests") / "not_triggered.yaml"
    case.write_text(case.read_text().replace(old, new))
    code, lines = _cordon_test(capsys, str(playbook_file))
    line = _line_of(case, new.splitlines()[0])
    assert lines[0].startswith(f"FAIL contain-model-deletion.tests/not_triggered.yaml:{line}: ")
    assert message in lines[0]
    assert code == 1


def test_validate_reads_no_fixture_as_a_playbook(
    capsys: pytest.CaptureFixture[str], rule_file: Path, playbook_file: Path
) -> None:
    assert main(["validate", str(rule_file.parent)]) == 0
    assert capsys.readouterr().out == "ok: config, rules and playbooks are valid\n"


# --- JUnit XML ----------------------------------------------------------------------------------------------------


def test_junit_xml_has_a_suite_per_file_a_case_per_fixture_and_the_failure(
    capsys: pytest.CaptureFixture[str], rule_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    # GIVEN one failing rule fixture
    negative = rule_file.with_suffix(".tests") / "negative.jsonl"
    negative.write_text((rule_file.with_suffix(".tests") / "positive.jsonl").read_text())
    # WHEN the report is written for CI
    code, _ = _cordon_test(capsys, str(rule_file), str(playbook_file), "--junit", "reports/cordon.xml")
    assert code == 1
    root = ET.parse(tmp_path / "reports" / "cordon.xml").getroot()
    # THEN it has the attributes JUnit readers use, and the counts add up
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
    }
    float(root.get("time", "x"))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"{RULE}.yml", "contain-model-deletion.yaml"]
    for suite in suites:
        assert set(suite.attrib) >= {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"}
        assert int(suite.get("tests", "0")) == len(suite.findall("testcase"))
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert sorted(cases) == ["negative.jsonl", "not_triggered.yaml", "positive.jsonl", "triggered.yaml"]
    assert all(set(case.attrib) >= {"name", "classname", "time", "file"} for case in cases.values())
    failure = cases["negative.jsonl"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith(f"{RULE}.tests/negative.jsonl: raised {RULE}")
    assert failure.text == f"raised: {RULE} (medium)"
    assert cases["negative.jsonl"].get("file") == f"{RULE}.tests/negative.jsonl"


def test_junit_xml_marks_a_file_without_fixtures_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "lonely.yml").write_text(LONELY_RULE)
    main(["test", "lonely.yml", "--junit", "out.xml"])
    root = ET.parse(tmp_path / "out.xml").getroot()
    assert root.get("skipped") == "1"
    skipped = root.find("testsuite/testcase/skipped")
    assert skipped is not None
    assert skipped.get("message") == "no fixtures: add lonely.tests/positive.jsonl and negative.jsonl"


# --- cordon new ---------------------------------------------------------------------------------------------------


def test_new_writes_valid_skeletons_and_never_overwrites(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # GIVEN a new rule and a playbook on it
    assert main(["new", "rule", RULE, "--dir", "rules"]) == 0
    assert main(["new", "playbook", "contain-model-deletion", "--dir", "playbooks", "--rule", RULE]) == 0
    capsys.readouterr()
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "playbooks/contain-model-deletion.tests/not_triggered.yaml",
        "playbooks/contain-model-deletion.tests/triggered.yaml",
        "playbooks/contain-model-deletion.yaml",
        f"rules/{RULE}.tests/expect.yaml",
        f"rules/{RULE}.tests/negative.jsonl",
        f"rules/{RULE}.tests/positive.jsonl",
        f"rules/{RULE}.yml",
    ]
    # THEN both validate and test straight away (a site config names them like any other rule and playbook)
    (tmp_path / "cordon.yaml").write_text("rules: [rules]\nplaybooks: [playbooks]\n")
    assert main(["validate", "--config", "cordon.yaml"]) == 0
    capsys.readouterr()
    code, lines = _cordon_test(capsys, "rules", "playbooks")
    assert (code, lines) == (0, ["1 rule file, 1 playbook file, 4 fixtures: all passed"])
    # AND the events are one JSON object per line
    assert all(json.loads(line) for line in (tmp_path / f"rules/{RULE}.tests/positive.jsonl").read_text().splitlines())
    # WHEN the author asks again
    before = (tmp_path / f"rules/{RULE}.yml").read_text()
    assert main(["new", "rule", RULE, "--dir", "rules"]) == 2
    # THEN nothing is overwritten
    assert "already exist: cordon new never overwrites" in capsys.readouterr().err
    assert (tmp_path / f"rules/{RULE}.yml").read_text() == before


@pytest.mark.parametrize(
    ("kind", "name"), [("rule", "Bad Name"), ("rule", "../escape"), ("playbook", "under_score"), ("playbook", "Caps")]
)
def test_new_refuses_a_bad_name(capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, name: str) -> None:
    assert main(["new", kind, name]) == 2
    assert f"{kind} name {name!r}: use lower-case letters" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_playbook_skeleton_without_a_rule_triggers_on_any(tmp_path: Path) -> None:
    new_playbook("contain-any", tmp_path, None)
    assert "rules: []" in (tmp_path / "contain-any.yaml").read_text()
    assert main(["test", str(tmp_path)]) == 0
