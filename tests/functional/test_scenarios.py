"""Every scenario under examples/ (a `scenario.yaml` beside its events) raises what it says, when replayed with its
configuration and the built-in rules and playbooks: each expected incident, at its severity, with its playbooks
planned. Containment in the account is checked by each scenario's own test against moto (and by `make demo`);
this test keeps the manifests that `cordon coverage` reads true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cordon.audit import MemoryAuditLog
from cordon.coverage import ExpectedIncident, Scenario, load_scenarios
from cordon.replay import load_ruleset, replay
from cordon.respond import build_responder
from correlators.config import Config, load_config
from responders.catalog import builtin_responders

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = load_scenarios(REPO / "examples")


def _replayed(scenario: Scenario) -> list[dict[str, Any]]:
    config = load_config(scenario.config) if scenario.config else Config()
    rules = load_ruleset(config)
    response = build_responder(config, rules, builtin_responders(), MemoryAuditLog(), execute=False, endpoint_url=None)
    result = replay([str(path) for path in scenario.events], config, rules, response=response)
    return [result.incident_json(incident) for incident in result.incidents]


def _matches(incident: dict[str, Any], expected: ExpectedIncident) -> bool:
    playbooks = {action["playbook"] for action in incident["actions"]}
    return (
        set(expected.rules) <= set(incident["rules"])
        and incident["severity"] == expected.severity.value
        and set(expected.playbooks) <= playbooks
    )


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 1 and all(s.events for s in SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.path.relative_to(REPO).as_posix())
def test_a_scenario_raises_what_it_says(scenario: Scenario) -> None:
    incidents = _replayed(scenario)
    shown = [(i["severity"], sorted(i["rules"]), sorted({a["playbook"] for a in i["actions"]})) for i in incidents]
    for expected in scenario.expect:
        assert any(_matches(incident, expected) for incident in incidents), (
            f"{scenario.path.name}: no incident with rules {expected.rules} at {expected.severity.value}"
            f" and playbooks {expected.playbooks}; got {shown}"
        )
