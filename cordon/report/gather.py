"""What an incident report shows, read from the stores: the incident, the signals behind its references (with
their raw events, while the state keeps them), its actions from the audit, and the rules' titles and techniques.

Reads only. The stored signal is found under the incident's linking entities at the reference's event time (the
partition every signal is written under, `correlators.incidents.entity_partition`), one point query per
reference and link: at most 100 references, whatever the incident's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cordon.audit import AuditLog, AuditRecord
from cordon.coverage import Technique, technique_of
from correlators.errors import InputError
from correlators.incidents import entity_partition
from correlators.sigma.rules import RuleSet
from correlators.signals import Incident, Signal
from correlators.state.base import StateStore


@dataclass(frozen=True)
class RuleFacts:
    title: str
    level: str
    techniques: tuple[Technique, ...]


@dataclass
class ReportInputs:
    """Everything the page is drawn from. `state_url` is what the approve and rollback commands are told."""

    incident: Incident
    signals: list[Signal]
    actions: list[AuditRecord]
    rules: dict[str, RuleFacts]
    state_url: str
    reversible: frozenset[str] = frozenset()  # responders whose actions `cordon rollback` can undo
    generated_at: datetime | None = None


def live_incident(store: StateStore, incident_id: str) -> Incident:
    """The incident, following merges to the one that absorbed it."""
    incident = store.get_incident(incident_id)
    seen = set()
    while incident is not None and incident.merged_into is not None and incident.id not in seen:
        seen.add(incident.id)
        incident = store.get_incident(incident.merged_into)
    if incident is None:
        raise InputError(f"no incident {incident_id} in this state (cordon replay --output json lists them)")
    return incident


def stored_signals(store: StateStore, incident: Incident) -> list[Signal]:
    """The stored signals behind the incident's references; those expired (TTL) or evicted are left out."""
    found: dict[tuple[str, str], Signal] = {}
    wanted = {ref.key for ref in incident.signals}
    for time in sorted({ref.time for ref in incident.signals}):
        at_time = {ref.key for ref in incident.signals if ref.time == time}
        for link in incident.links:
            if at_time <= found.keys():
                break
            for signal in store.signals(entity_partition(link), time, time):
                key = (signal.rule, signal.event.event_id)
                if key in wanted:
                    found.setdefault(key, signal)
    return sorted(found.values(), key=lambda s: s.sort_key)


def rule_facts(rules: RuleSet, names: Iterable[str]) -> dict[str, RuleFacts]:
    """Title, level and ATT&CK/ATLAS techniques of each named rule the rule set holds (implicit rules such as
    `guardduty-finding` have none: the finding's own type says what it is)."""
    facts = {}
    for name in names:
        try:
            rule = rules.get(name)
        except KeyError:
            continue
        techniques = tuple(sorted({t for t in (technique_of(tag) for tag in rule.tags) if t is not None}))
        facts[name] = RuleFacts(rule.title, rule.level.value if rule.level else "", techniques)
    return facts


def gather(
    store: StateStore,
    audit: AuditLog,
    incident_id: str,
    rules: RuleSet,
    *,
    state_url: str,
    reversible: Iterable[str] = (),
    now: datetime | None = None,
) -> ReportInputs:
    incident = live_incident(store, incident_id)
    names = set(incident.rule_counts) | set(incident.raised_by)
    return ReportInputs(
        incident=incident,
        signals=stored_signals(store, incident),
        actions=audit.records(incident.id),
        rules=rule_facts(rules, sorted(names)),
        state_url=state_url,
        reversible=frozenset(reversible),
        generated_at=now,
    )


def reversible_responders(responders: Mapping[str, type]) -> frozenset[str]:
    return frozenset(name for name, cls in responders.items() if getattr(cls, "reversible", False))
