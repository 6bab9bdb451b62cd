"""Target 6: cold start. Each Lambda handler module that template.yaml names is imported in a fresh interpreter,
against `import boto3` in a fresh interpreter (the floor of any Lambda that calls AWS), the median of several
runs, in CPU time of the child around the import alone (interpreter start-up is the same for both and left out).
Rules and playbooks load once per container: their load time is measured the same way."""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass

from bench.moto_server import template
from bench.paths import REPO

RUNS = 5

_TIMED_IMPORT = "import time; began = time.process_time(); import {module}; print(time.process_time() - began)"
_TIMED_LOAD = """
import time
from pathlib import Path
from cordon.replay import load_ruleset
from cordon.respond import known_rules, playbook_paths
from cordon.playbooks.loader import load_playbooks
from correlators.config import load_config
from responders.catalog import builtin_responders
began = time.process_time()
config = load_config(Path({config!r}))
rules = load_ruleset(config)
load_playbooks(playbook_paths(config), builtin_responders(), known_rules(rules))
print(time.process_time() - began)
"""


@dataclass(frozen=True)
class ColdStart:
    handlers_s: dict[str, float]  # handler module -> median import CPU seconds
    boto3_s: float
    rules_load_s: float

    @property
    def worst_ratio(self) -> float:
        return max(self.handlers_s.values()) / self.boto3_s


def handler_modules() -> list[str]:
    """The modules of every function's `Handler` in template.yaml (`cordon.handlers.correlator.handler`)."""
    modules = set()
    for resource in template()["Resources"].values():
        handler = (resource.get("Properties") or {}).get("Handler")
        if resource.get("Type") == "AWS::Serverless::Function" and handler:
            modules.add(handler.rsplit(".", 1)[0])
    return sorted(modules)


def _median_child(code: str) -> float:
    times = []
    for _ in range(RUNS):
        child = subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO
        )
        times.append(float(child.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def measure() -> ColdStart:
    from bench.paths import SITE_CONFIG

    boto3_s = _median_child(_TIMED_IMPORT.format(module="boto3"))
    handlers = {module: _median_child(_TIMED_IMPORT.format(module=module)) for module in handler_modules()}
    rules_s = _median_child(_TIMED_LOAD.format(config=str(SITE_CONFIG)))
    return ColdStart(handlers, boto3_s, rules_s)
