"""`cordon coverage`: the technique > rules > playbook > scenario matrix is read from the rules' tags, and it is kept
honest: every technique the built-in rules claim is raised by a rule that fires on its positive fixture, contained
by a playbook that triggers on it, and shown by a scenario; the README's rule table is the generated one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cordon import coverage
from cordon.cli import main
from cordon.coverage import ATLAS, ATTACK, Technique, technique_of
from cordon.playbooks.loader import load_playbooks
from cordon.replay import load_ruleset
from cordon.respond import known_rules, playbook_paths
from correlators.config import Config, load_config
from correlators.sigma.loader import load_rules
from responders.catalog import builtin_responders
from tests.unit.test_builtin_rules import POSITIVE

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO / "examples" / "cordon.yaml")
RULES = load_ruleset(CONFIG)
PLAYBOOKS, _ = load_playbooks(playbook_paths(CONFIG), builtin_responders(), known_rules(RULES))
ROWS = coverage.matrix(RULES, PLAYBOOKS, coverage.load_scenarios(REPO / "examples"), REPO)


@pytest.mark.parametrize(
    ("tag", "technique"),
    [
        ("attack.t1530", Technique(ATTACK, "T1530")),
        ("attack.t1562.008", Technique(ATTACK, "T1562.008")),
        ("atlas.aml.t0035", Technique(ATLAS, "AML.T0035")),
        ("ATLAS.AML.T0020", Technique(ATLAS, "AML.T0020")),
        ("attack.exfiltration", None),
        ("attack.g0016", None),
        ("cve.2021-1234", None),
        ("attack.t1530x", None),
    ],
)
def test_a_tag_names_a_technique_or_nothing(tag: str, technique: Technique | None) -> None:
    assert technique_of(tag) == technique


def test_the_builtin_rules_claim_techniques() -> None:
    assert len(ROWS) >= 10
    assert {row.technique.framework for row in ROWS} == {ATTACK, ATLAS}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.technique.id)
def test_every_claimed_technique_is_raised_contained_and_shown(row: coverage.Row) -> None:
    assert row.missing == ()
    proven = {rule for rule, _ in POSITIVE.values()}  # rules a positive fixture raises (test_builtin_rules)
    assert set(row.raised_by) & proven, f"{row.technique.id}: no rule of {row.raised_by} has a positive fixture"


def test_a_correlation_raises_what_its_tagged_detection_claims_and_levels_gate_playbooks(tmp_path: Path) -> None:
    # GIVEN a tagged detection that only feeds a correlation, and two playbooks on that correlation
    (tmp_path / "rules.yml").write_text(
        """title: Read
name: read
tags: [attack.collection, attack.t1530]
logsource: {product: aws, service: cloudtrail}
detection: {selection: {eventName: GetObject}, condition: selection}
level: low
---
title: Many reads
name: many_reads
correlation: {type: event_count, rules: [read], group-by: [principal], timespan: 10m, condition: {gte: 3}}
level: medium
"""
    )
    (tmp_path / "playbooks").mkdir()
    for name, floor in (("tell", "medium"), ("contain", "high")):
        (tmp_path / "playbooks" / f"{name}.yaml").write_text(
            f"name: {name}\ntrigger: {{rules: [many_reads], min_severity: {floor}}}\nsteps: []\n"
        )
    rules = load_rules([tmp_path / "rules.yml"])
    playbooks, _ = load_playbooks([tmp_path / "playbooks"], builtin_responders(), known_rules(rules))
    # WHEN the matrix is drawn
    [row] = coverage.matrix(rules, playbooks, [], tmp_path)
    # THEN the correlation raises T1530, only the playbook whose floor it reaches covers it, and no scenario shows it
    assert (row.technique, row.rules, row.raised_by) == (Technique(ATTACK, "T1530"), ("read",), ("many_reads",))
    assert row.playbooks == ("tell",) and row.missing == ("scenario",)


def test_navigator_layers_score_each_technique_per_framework() -> None:
    layers = coverage.navigator_layers(ROWS)
    assert [layer["domain"] for layer in layers] == ["enterprise-attack", "atlas-atlas"]
    for layer in layers:
        assert layer["versions"] == {"layer": "4.5"} and layer["techniques"]
        prefix = "AML.T" if layer["domain"] == "atlas-atlas" else "T"
        assert all(t["techniqueID"].startswith(prefix) and t["score"] == 2 for t in layer["techniques"])
        assert all("rules: " in t["comment"] and "playbooks: " in t["comment"] for t in layer["techniques"])


def test_cordon_coverage_writes_navigator_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "layers.json"
    assert main(["coverage", "--config", "examples/cordon.yaml", "--format", "navigator", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == coverage.navigator_layers(ROWS)


def test_the_readme_rule_table_is_the_generated_one() -> None:
    # Regenerate with: cordon coverage --format readme, and paste it between the markers.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = coverage.readme_table(load_ruleset(Config()), REPO)
    assert coverage.replace_readme_table(readme, table) == readme
