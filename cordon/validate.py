"""`cordon validate`: lint the config, every rule and every playbook, and report every error, not the first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cordon.playbooks.loader import is_fixture, load_playbooks
from cordon.playbooks.model import Playbook
from cordon.replay import rule_paths
from cordon.respond import known_rules, playbook_paths
from correlators.config import Config, check_config
from correlators.errors import InputError, PlaybookError
from correlators.sigma import correlation
from correlators.sigma.loader import load_rules
from responders.catalog import builtin_responders

AUTOMATION_RESPONDER = "ssm.start-automation"


def validate(config_path: Path | None, extra: Sequence[Path] = ()) -> list[InputError]:
    """Every problem found; an empty list means valid. `extra` holds rule or playbook files or folders."""
    config, config_errors = check_config(config_path)
    if config is None:
        return list(config_errors)  # rules and playbooks depend on the config's paths
    extra_rules, extra_playbooks = split_rules_and_playbooks(extra)
    ruleset = load_rules(rule_paths(config, extra_rules), collect_errors=True)
    errors: list[InputError] = list(ruleset.errors)
    errors.extend(correlation.nested(ruleset.correlations))  # what building the pipeline refuses (Correlator)
    playbooks, playbook_errors = load_playbooks(
        playbook_paths(config) + extra_playbooks,
        builtin_responders(),
        known_rules(ruleset),
        collect_errors=True,
        site=config.site,
    )
    errors.extend(playbook_errors)
    errors.extend(_automation_role_errors(playbooks, config))
    return errors


def _automation_role_errors(playbooks: Sequence[Playbook], config: Config) -> list[PlaybookError]:
    """A playbook that runs SSM runbooks needs the role they run under: without it every such step fails."""
    if config.execution.automation_role_arn is not None:
        return []
    return [
        PlaybookError(
            f"step {step.name!r} runs an SSM runbook ({AUTOMATION_RESPONDER}) but execution.automation_role_arn is"
            " not set in the config (in the deployed stack: the AutomationRoleArn parameter)",
            playbook.source,
        )
        for playbook in playbooks
        for step in playbook.steps
        if step.responder == AUTOMATION_RESPONDER
    ]


def split_rules_and_playbooks(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Sigma rules have `detection:` or `correlation:`; anything else given here is taken for a playbook.
    Fixture folders (`*.tests/`) are left out: their YAML is expectations and cases, neither rule nor playbook."""
    rules: list[Path] = []
    playbooks: list[Path] = []
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*.y*ml") if not is_fixture(p.relative_to(path))) if path.is_dir() else [path]
        )
        for file in files:
            text = file.read_text(encoding="utf-8", errors="replace") if file.is_file() else ""
            is_rule = "\ndetection:" in f"\n{text}" or "\ncorrelation:" in f"\n{text}"
            (rules if is_rule else playbooks).append(file)
    return rules, playbooks
