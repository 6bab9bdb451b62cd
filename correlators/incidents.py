"""Incidents as graphs: signals tied to the entities they name, grouped the way Amazon Detective groups findings.

A bipartite networkx graph links each open incident to its identity entities (principal, access key, session,
instance) and to the entities a correlation grouped by. A raising signal joins every open incident it shares
one of those nodes with inside the incident window; when it touches several, they were one incident all along
and merge into the oldest, which keeps its id. Assets and IPs are never linking nodes: a bucket that every
analyst reads, or a shared NAT address, would glue strangers into the attacker's incident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

import networkx as nx

from correlators.model import IDENTITY_TYPES, Entity, EntityType, Severity
from correlators.signals import Incident, Signal
from correlators.state.base import StateStore


def identity_entities(signals: Iterable[Signal]) -> list[Entity]:
    found: dict[str, Entity] = {}
    for signal in signals:
        for entity in signal.event.entities():
            # A principal that is an AWS service name ("sagemaker.amazonaws.com") is not an identity of the account.
            if entity.type in IDENTITY_TYPES and not (entity.type == "principal" and not entity.id.startswith("arn:")):
                found.setdefault(entity.key, entity)
    return list(found.values())


def linking_entities(signals: Iterable[Signal]) -> list[Entity]:
    """The nodes that tie these signals to an incident: their identities, or, for a signal that names no
    identity (an alarm, a finding about a resource), the resources it is about."""
    found: dict[str, Entity] = {}
    for signal in signals:
        identities = identity_entities([signal])
        if not identities:
            identities = [e for e in signal.event.entities() if e.type not in _NEVER_LINKING]
        for entity in identities:
            found.setdefault(entity.key, entity)
    return list(found.values())


# Shared by everyone: never a reason to put two signals in one incident.
_NEVER_LINKING = frozenset({EntityType.SOURCE_IP, EntityType.ACCOUNT, EntityType.OBJECT, EntityType.BUCKET})


def _incident_id(rule: str, first: Signal) -> str:
    digest = hashlib.sha256(f"{rule}\n{first.id}".encode()).hexdigest()
    return f"inc-{digest[:16]}"


def _node(incident_id: str) -> str:
    return f"incident:{incident_id}"


class IncidentGraph:
    def __init__(self, store: StateStore, window: timedelta) -> None:
        self._store = store
        self._window = window
        self._links: nx.Graph[str] = nx.Graph()  # incident nodes <-> linking entity keys
        self.touched: set[str] = set()  # incidents created or changed by this process
        self.created = 0
        for incident in store.incidents():
            self._link(incident)

    def _link(self, incident: Incident) -> None:
        node = _node(incident.id)
        self._links.add_node(node, kind="incident")
        for key in incident.links:
            self._links.add_edge(node, key)

    def _open_incidents(self, entities: Iterable[Entity], at: datetime) -> list[Incident]:
        found: dict[str, Incident] = {}
        for entity in entities:
            if entity.key not in self._links:
                continue
            for node in self._links.neighbors(entity.key):
                incident_id = node.removeprefix("incident:")
                if incident_id in found:
                    continue
                incident = self._store.get_incident(incident_id)
                if incident is None or incident.merged_into is not None:
                    continue
                if incident.first_seen - self._window <= at <= incident.last_seen + self._window:
                    found[incident_id] = incident
        return sorted(found.values(), key=lambda i: (i.first_seen, i.id))

    def raise_incident(
        self, rule: str, title: str, severity: Severity, signals: list[Signal], extra_links: Iterable[Entity] = ()
    ) -> Incident:
        """Open or update the incident these signals belong to; `rule` raised it with `severity`."""
        signals = sorted(signals, key=lambda s: s.sort_key)
        links = [*linking_entities(signals), *extra_links]
        at = signals[-1].time
        matches = self._open_incidents(links, at)
        if matches:
            incident = matches[0]
            for other in matches[1:]:
                self._merge(other, into=incident)
        else:
            first = signals[0]
            incident = Incident(
                id=_incident_id(rule, first),
                title=title,
                severity=severity,
                first_seen=first.time,
                last_seen=first.time,
            )
            self.created += 1
            signals = self._earlier_context(links, first.time, at) + signals
        before = incident.severity
        incident.raise_by(rule, severity)
        if incident.severity is not before or not incident.rules[1:]:
            incident.title = title  # the title follows the most severe pattern seen
        for signal in signals:
            incident.add_signal(signal)
        self._save(incident, links)
        return incident

    def attach_context(self, signal: Signal) -> Incident | None:
        """A signal that raises nothing still joins the open incident of its identity, for the timeline."""
        links = linking_entities([signal])
        matches = self._open_incidents(links, signal.time)
        if not matches:
            return None
        incident = matches[0]
        if incident.add_signal(signal):
            self._save(incident, ())  # context never widens what the incident links to
        return incident

    def _earlier_context(self, links: list[Entity], first: datetime, at: datetime) -> list[Signal]:
        """What the incident's identities did from one window before its first signal until it opened."""
        context: dict[str, Signal] = {}
        for entity in links:
            if entity.type in IDENTITY_TYPES:
                for signal in self._store.signals(f"entity|{entity.key}", first - self._window, at):
                    context.setdefault(signal.id, signal)
        return sorted(context.values(), key=lambda s: s.sort_key)

    def _merge(self, other: Incident, *, into: Incident) -> None:
        for ref in other.signals:
            if all(existing.key != ref.key for existing in into.signals):
                into.signals.append(ref)
        into.signals.sort(key=lambda s: (s.time, s.rule, s.event_id))
        known = {e.key for e in into.entities}
        into.entities.extend(e for e in other.entities if e.key not in known)
        for rule in other.rules:
            into.raise_by(rule, other.severity)
        into.first_seen = min(into.first_seen, other.first_seen)
        into.last_seen = max(into.last_seen, other.last_seen)
        into.links.extend(key for key in other.links if key not in into.links)
        other.merged_into = into.id
        self._store.put_incident(other)
        self._links.remove_node(_node(other.id))
        self.touched.discard(other.id)
        self._link(into)

    def _save(self, incident: Incident, links: Iterable[Entity]) -> None:
        incident.links.extend(e.key for e in links if e.key not in incident.links)
        incident.updated_seq += 1
        self._store.put_incident(incident)
        self._link(incident)
        self.touched.add(incident.id)

    def forget_before(self, horizon: datetime) -> None:
        """Drop stale incidents from the linking graph; they stay in the store for reporting."""
        stale = []
        for node in self._links.nodes:
            if node.startswith("incident:"):
                incident = self._store.get_incident(node.removeprefix("incident:"))
                if incident is None or incident.last_seen + self._window < horizon:
                    stale.append(node)
        self._links.remove_nodes_from(stale)
        self._links.remove_nodes_from([n for n in list(self._links.nodes) if self._links.degree(n) == 0])
