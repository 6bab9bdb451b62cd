"""Wiring playbooks to incidents in a shell: load playbooks, plan each touched incident, run the plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cordon.audit import AuditLog, AuditRecord, MemoryAuditLog, SqliteAuditLog, Status
from cordon.execute import Executor, SessionFactory
from cordon.playbooks.loader import load_playbooks
from cordon.playbooks.model import Mode, Playbook
from cordon.playbooks.plan import plan_incident
from correlators.config import Config
from correlators.detect import IMPLICIT_RULES
from correlators.errors import InputError, StateError
from correlators.sigma.rules import RuleSet
from correlators.state import sqlite_path
from responders.base import Responder

BUILTIN_PLAYBOOKS = Path(str(files("playbooks")))  # package data: the installed `playbooks` package


def playbook_paths(config: Config) -> list[Path]:
    return ([BUILTIN_PLAYBOOKS] if config.builtin_playbooks else []) + list(config.playbooks)


def known_rules(rules: RuleSet) -> set[str]:
    return {r.key for r in rules.detections} | {c.key for c in rules.correlations} | set(IMPLICIT_RULES)


def audit_log_for(state_url: str, endpoint_url: str | None = None) -> AuditLog:
    """The audit trail beside the correlation state: in memory, in its SQLite file, or the deployed stack's
    DynamoDB audit table.

    `memory://`; `sqlite:///path/state.db` (`sqlite://:memory:` for a throwaway one);
    `dynamodb://?audit=AUDIT_TABLE&state=STATE_TABLE&region=REGION`: the tables by the names the stack prints
    (outputs AuditTableName and StateTableName; CloudFormation generates them). The audit commands need only
    `audit=`. `endpoint_url` points the client at a moto server.
    """
    if state_url in ("memory", "memory://"):
        return MemoryAuditLog()
    if state_url.startswith("sqlite://"):
        return SqliteAuditLog(sqlite_path(state_url))
    if state_url.startswith("dynamodb://"):
        return _dynamodb_audit(state_url, endpoint_url)
    raise StateError(
        f"unknown state store {state_url!r}: use memory://, sqlite:///path/to/state.db or"
        " dynamodb://?audit=AUDIT_TABLE&region=REGION"
    )


def _dynamodb_audit(state_url: str, endpoint_url: str | None) -> AuditLog:
    import boto3  # noqa: TID251 - a shell: it builds the client the audit store is handed
    from botocore.config import Config as BotocoreConfig

    from cordon.audit.dynamodb import DynamoDBAuditLog

    url = urlsplit(state_url)
    query = parse_qs(url.query)
    unknown = sorted(set(query) - {"audit", "state", "region"})
    if url.netloc or url.path not in ("", "/") or unknown or not query.get("audit"):
        raise StateError(
            f"bad DynamoDB state URL {state_url!r}: write dynamodb://?audit=AUDIT_TABLE&state=STATE_TABLE&region=REGION"
            " with the table names of the stack's outputs AuditTableName and StateTableName"
            + (f" (unknown option {', '.join(unknown)})" if unknown else "")
        )
    region = query.get("region", [None])[0]
    client = boto3.session.Session(region_name=region).client(
        "dynamodb", endpoint_url=endpoint_url, config=BotocoreConfig(retries={"mode": "standard"})
    )
    return DynamoDBAuditLog(client, query["audit"][0])


def retry_candidates(
    audit: AuditLog, action_ids: Sequence[str], incident_id: str | None, *, include_permanent: bool
) -> list[AuditRecord]:
    """The failed actions `cordon retry` attempts: those named (each must exist), else every failed one of the
    audit (or of one incident) that failed for a transient reason, or for any reason with `include_permanent`."""
    if action_ids:
        named = [(action_id, audit.get(action_id)) for action_id in action_ids]
        missing = [action_id for action_id, record in named if record is None]
        if missing:
            raise InputError(f"no action {', '.join(missing)} in the audit log")
        return [record for _, record in named if record is not None]
    return [
        record
        for record in audit.records(incident_id)
        if record.status is Status.FAILED and (record.transient or include_permanent)
    ]


def stored_incident(state_url: str, endpoint_url: str | None, incident_id: str) -> dict[str, Any] | None:
    """The incident as a notification tells it, from the correlation state beside the audit (the SQLite file, or
    the stack's state table); None where this state URL holds no incidents (an audit-only DynamoDB URL)."""
    if state_url.startswith("dynamodb://") and "state=" not in state_url:
        return None
    from cordon.documents import incident_json
    from cordon.stores import open_state

    store = open_state(state_url, endpoint_url)
    try:
        incident = store.get_incident(incident_id)
    finally:
        store.close()
    return incident_json(incident) if incident else None


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
    max_mode: Mode = Mode.ENFORCE,
) -> IncidentResponse:
    playbooks, _ = load_playbooks(playbook_paths(config), responders, known_rules(rules))
    sessions = SessionFactory(endpoint_url, config.execution.assume_role_name) if execute else None
    executor = Executor(config, audit, responders, sessions=sessions, max_mode=max_mode)
    return IncidentResponse(config, playbooks, responders, executor)
