"""Each built-in rule against the fixtures beside it (correlators/rules/*.tests/), through the engine `cordon test`
runs (cordon/authoring/rule_fixtures.py), so what a fixture must raise has one truth: its folder's expect.yaml.

A new built-in rule `NN_name.yml` brings `NN_name.tests/` with `positive*.jsonl`, `negative*.jsonl` and an
`expect.yaml` naming, for every positive, the rule it raises and the incident's severity (built-in positives
must name both: see `test_every_builtin_positive_names_its_rule_and_severity`), e.g.

    config: ../../../examples/cordon.yaml
    positive: {rule: ml_training_read_then_model_download, severity: high}
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cordon.authoring.context import Context, fixture_folder
from cordon.authoring.rule_fixtures import alerting_rules, fixtures_of, read_expectations, rule_suite
from cordon.replay import load_ruleset
from correlators.config import load_config

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "correlators" / "rules"
CONFIG = load_config(REPO / "examples" / "cordon.yaml")
RULESET = load_ruleset(CONFIG)
CONTEXT = Context(RULESET, CONFIG)
RULE_FILES = sorted(RULES.glob("*.yml"))


def _positive() -> dict[str, tuple[str, str]]:
    """`rule file stem/fixture stem` -> (the rule it raises, the incident's severity), from every expect.yaml."""
    found: dict[str, tuple[str, str]] = {}
    for rule_file in RULE_FILES:
        fixtures = fixtures_of(rule_file)
        expected = read_expectations(fixture_folder(rule_file), fixtures, alerting_rules(CONTEXT, rule_file))
        for stem, expectation in expected.by_fixture.items():
            if stem.startswith("positive") and expectation.severity is not None:
                found[f"{rule_file.stem}/{stem}"] = (expectation.rule, expectation.severity.value)
    return found


POSITIVE = _positive()  # what test_coverage counts as proven by a positive fixture


def test_every_rule_file_that_raises_has_positive_and_negative_fixtures() -> None:
    for rule_file in RULE_FILES:
        if not alerting_rules(CONTEXT, rule_file):
            continue  # 00_ml_signals.yml: its rules only feed correlations, tested through their fixtures
        names = [fixture.name for fixture in fixtures_of(rule_file)]
        assert any(name.startswith("positive") for name in names), f"{rule_file.name}: no positive fixture"
        assert any(name.startswith("negative") for name in names), f"{rule_file.name}: no negative fixture"


def test_every_builtin_positive_names_its_rule_and_severity() -> None:
    # Without an entry a positive passes on any of its file's rules at any severity: too loose for built-ins.
    unnamed = [
        f"{fixture_folder(rule_file).name}/{fixture.name}"
        for rule_file in RULE_FILES
        for fixture in fixtures_of(rule_file)
        if fixture.name.startswith("positive") and f"{rule_file.stem}/{fixture.stem}" not in POSITIVE
    ]
    assert unnamed == [], "add `<stem>: {rule: NAME, severity: LEVEL}` to the folder's expect.yaml"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda path: path.stem)
def test_fixtures_do_what_their_names_say(rule_file: Path) -> None:
    suite = rule_suite(rule_file, CONTEXT, load_errors=[])
    assert [case.failure for case in suite.failures] == []
    assert suite.skipped == []
    assert len(suite.cases) == len(fixtures_of(rule_file))
