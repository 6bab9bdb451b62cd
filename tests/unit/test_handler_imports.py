"""A Lambda handler module imports what every invocation needs, and no more: the rules (pySigma), the incident
graph (networkx), the models (pydantic), the playbooks (YAML) and the X-Ray SDK are loaded by the per-container
builders on the first invocation. The time it takes is measured by `make bench` (cold start), not here; this
test keeps the structure that makes it cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = {"sigma", "networkx", "pydantic", "yaml", "aws_xray_sdk", "rich"}


@pytest.mark.parametrize(
    "module", ["cordon.handlers.correlator", "cordon.handlers.runner", "cordon.handlers.slack_actions"]
)
def test_a_handler_module_imports_nothing_heavy(module: str) -> None:
    probe = f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    answer = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    loaded = set(answer.stdout.split())
    assert "boto3" in loaded and "aws_lambda_powertools" in loaded  # the probe sees real imports
    assert loaded & HEAVY == set()
