"""Wiring playbooks to incidents in a shell: load playbooks, plan each touched incident, run the plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from cordon.audit import AuditLog
from cordon.execute import Executor, SessionFactory
from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.model import Playbook
from cordon.playbooks.plan import plan_incident
from correlators.config import Config
from correlators.detect import IMPLICIT_RULES
from correlators.sigma.rules import RuleSet
from responders.base import Responder

BUILTIN_PLAYBOOKS = Path(str(files("playbooks")))  # package data: the installed `playbooks` package


def playbook_paths(config: Config) -> list[Path]:
    return ([BUILTIN_PLAYBOOKS] if config.builtin_playbooks else []) + list(config.playbooks)


def known_rules(rules: RuleSet) -> set[str]:
    return {r.key for r in rules.detections} | {c.key for c in rules.correlations} | set(IMPLICIT_RULES)


def audit_log_for(state_url: str) -> AuditLog:
    """The audit trail lives beside the correlation state: in its SQLite file, or in memory."""
    if state_url.startswith("sqlite://"):
        path = state_url.removeprefix("sqlite://")
        return AuditLog(path.removeprefix("/") if path.startswith("//") else path or ":memory:")
    return AuditLog(":memory:")


@dataclass
class IncidentResponse:
    """Plans and runs the playbooks of each incident a replay touched."""

    config: Config
    playbooks: Sequence[Playbook]
    responders: Mapping[str, type[Responder]]
    executor: Executor

    def respond(self, incident: dict[str, Any]) -> list[dict[str, Any]]:
        plans = plan_incident(
            incident, self.playbooks, self.responders, self.config.site, self.config.execution.default_region
        )
        return self.executor.run(incident, plans)


def build_responder(
    config: Config,
    rules: RuleSet,
    responders: Mapping[str, type[Responder]],
    audit: AuditLog,
    *,
    execute: bool,
    endpoint_url: str | None,
) -> IncidentResponse:
    playbooks, _ = load_playbooks(playbook_paths(config), responders, known_rules(rules))
    sessions = SessionFactory(endpoint_url, config.execution.assume_role_name) if execute else None
    return IncidentResponse(config, playbooks, responders, Executor(config, audit, responders, sessions=sessions))
