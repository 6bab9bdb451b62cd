"""An incident as a networkx graph, the way it was joined: entities and signals are nodes, and each signal is tied
to every entity its event names. An edge is `linking` when the entity is one the signal joined the incident
through (`Signal.linking`: its identities, or the resource of an alarm that names none); the others describe.

The incident item keeps only references to its signals (the first and latest `SIGNALS_KEPT_AT_EACH_END`); which
entities a signal named is read from the stored signal while it lives (until its TTL). A reference whose signal
has expired becomes a node with no edges and `stored=False`: the graph says what it does not know.

`condense` makes the graph one a person can read: signals grouped by rule, and fan-out (a principal reading
10,000 objects) folded into one counted node per entity type past a few shown by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from correlators.model import IDENTITY_TYPES, Entity, EntityType
from correlators.signals import Incident, Signal, SignalRef

SIGNAL, ENTITY, RULE, GROUP = "signal", "entity", "rule", "group"
SHOWN_PER_TYPE = 4  # assets of one type drawn by name; past this, the least connected fold into a counted node


def signal_node(rule: str, event_id: str) -> str:
    return f"signal|{rule}|{event_id}"


def entity_node(entity: Entity) -> str:
    return f"entity|{entity.key}"


def incident_graph(incident: Incident, stored: Iterable[Signal]) -> nx.Graph[str]:
    """Every entity the incident keeps and every signal reference it keeps, tied as the stored signals say."""
    graph: nx.Graph[str] = nx.Graph(incident=incident.id)
    for entity in incident.entities:
        _add_entity(graph, entity)
    by_key = {(s.rule, s.event.event_id): s for s in stored}
    for ref in incident.signals:
        signal = by_key.get(ref.key)
        node = signal_node(ref.rule, ref.event_id)
        graph.add_node(node, kind=SIGNAL, rule=ref.rule, time=ref.time, what=ref.what, stored=signal is not None)
        if signal is None:
            continue
        linking = set(signal.linking)
        for entity in signal.event.entities():
            _add_entity(graph, entity)
            graph.add_edge(node, entity_node(entity), linking=entity in linking, time=ref.time)
    return graph


def _add_entity(graph: nx.Graph[str], entity: Entity) -> None:
    node = entity_node(entity)
    if node not in graph:
        graph.add_node(node, kind=ENTITY, type=entity.type, id=entity.id, identity=entity.type in IDENTITY_TYPES)


@dataclass(frozen=True)
class Fold:
    """What one node of the condensed graph stands for."""

    kind: str  # RULE (signals of one rule), ENTITY (one entity), GROUP (several entities of one type)
    label: str
    type: EntityType | None = None
    members: tuple[str, ...] = ()  # entity ids (ENTITY, GROUP) or signal event ids (RULE)
    count: int = 1  # signals of the rule (all of them, not only those kept), or entities folded


def condense(graph: nx.Graph[str], rule_counts: dict[str, int], shown_per_type: int = SHOWN_PER_TYPE) -> nx.Graph[str]:
    """One node per rule (its signals), per identity, and per asset shown by name; the other assets of a type fold
    into one counted node. Node attribute `fold` is a `Fold`; edge attributes: `weight` (edges folded) and
    `linking` (any of them linking)."""
    group_of: dict[str, str] = {}
    folds: dict[str, Fold] = {}
    signals_by_rule: dict[str, list[str]] = defaultdict(list)
    for node, data in graph.nodes(data=True):
        if data["kind"] == SIGNAL:
            group_of[node] = f"rule|{data['rule']}"
            signals_by_rule[data["rule"]].append(node)
    for rule, nodes in signals_by_rule.items():
        folds[f"rule|{rule}"] = Fold(RULE, rule, members=tuple(nodes), count=rule_counts.get(rule, len(nodes)))
    assets: dict[EntityType, list[str]] = defaultdict(list)
    for node, data in graph.nodes(data=True):
        if data["kind"] != ENTITY:
            continue
        if data["identity"]:
            group_of[node] = node
            folds[node] = Fold(ENTITY, data["id"], data["type"], (data["id"],))
        else:
            assets[data["type"]].append(node)
    for kind, nodes in assets.items():
        # The most connected stay by name (ties: by id, so the page is the same every time it is written).
        nodes.sort(key=lambda n: (-graph.degree(n), graph.nodes[n]["id"]))
        named = nodes if len(nodes) <= shown_per_type else nodes[: shown_per_type - 1]
        for node in named:
            group_of[node] = node
            folds[node] = Fold(ENTITY, graph.nodes[node]["id"], kind, (graph.nodes[node]["id"],))
        rest = nodes[len(named) :]
        if rest:
            group = f"group|{kind.value}"
            ids = tuple(graph.nodes[n]["id"] for n in rest)
            folds[group] = Fold(GROUP, f"+{len(rest)} more {kind.value}", kind, ids, len(rest))
            group_of.update(dict.fromkeys(rest, group))
    condensed: nx.Graph[str] = nx.Graph(incident=graph.graph.get("incident"))
    for node, fold in folds.items():
        condensed.add_node(node, fold=fold)
    for a, b, data in graph.edges(data=True):
        u, v = group_of[a], group_of[b]
        if condensed.has_edge(u, v):
            edge = condensed.edges[u, v]
            edge["weight"] += 1
            edge["linking"] = edge["linking"] or data["linking"]
        else:
            condensed.add_edge(u, v, weight=1, linking=data["linking"])
    return condensed


def refs_without_signal(incident: Incident, stored: Iterable[Signal]) -> list[SignalRef]:
    """The incident's signal references whose stored signal was not found (expired, or trimmed away)."""
    found = {(s.rule, s.event.event_id) for s in stored}
    return [ref for ref in incident.signals if ref.key not in found]
