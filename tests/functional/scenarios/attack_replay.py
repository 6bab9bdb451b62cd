"""Replaying an examples/attacks/<slug>/ scenario with `cordon replay --execute` against in-process moto, and
checking the incidents it raises against its scenario.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cordon.cli import main

REPO = Path(__file__).resolve().parents[3]
ATTACKS = REPO / "examples" / "attacks"


def scenario(slug: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ATTACKS / slug / "scenario.yaml").read_text())
    return document


def replay_execute(
    capsys: pytest.CaptureFixture[str], slug: str, state: Path, config: Path | None = None
) -> dict[str, Any]:
    """`cordon replay examples/attacks/<slug> --execute` inside the caller's mock_aws; the JSON output."""
    args = ["replay", str(ATTACKS / slug), "--execute", "--state", f"sqlite:///{state}", "--output", "json"]
    if config is not None:
        args += ["--config", str(config)]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    output: dict[str, Any] = json.loads(out)
    assert output["rejected"] == []
    return output


def assert_expected_incidents(output: dict[str, Any], expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each `expect` entry is met by one incident: its rules, its severity, the playbooks that acted on it."""
    matched = []
    for expectation in expected:
        found = [
            incident
            for incident in output["incidents"]
            if set(expectation["rules"]) <= set(incident["rules"])
            and incident["severity"] == expectation["severity"]
            and set(expectation.get("playbooks", [])) <= {a["playbook"] for a in incident["actions"]}
        ]
        assert len(found) == 1, (expectation, [(i["rules"], i["severity"]) for i in output["incidents"]])
        matched.append(found[0])
    return matched


def audit(capsys: pytest.CaptureFixture[str], state: Path) -> list[dict[str, Any]]:
    assert main(["audit", "--state", f"sqlite:///{state}", "--output", "json"]) == 0
    records: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return records
