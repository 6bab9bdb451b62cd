"""The incident graph as inline SVG, laid out radially: the principal at the centre, the rules (each a node for all
its signals) on the first ring, every other entity on the outer ring, placed at the mean angle of the rules it is
tied to so that edges stay short and rarely cross.

Computed here, in Python, from `correlators.graph.condense`: the page needs no script and fetches nothing. Full
ids are in each node's <title> (a tooltip, and the text a test or a screen reader finds); labels are cut from
the middle so both ends of an ARN stay readable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from cordon.report.text import esc
from correlators.graph import GROUP, RULE, Fold
from correlators.model import IDENTITY_TYPES, EntityType

LABEL_CHARS = 42
CHAR_WIDTH = 6.6  # px per character of the 12px label font, for the canvas margins
TITLE_IDS = 25  # ids listed in a folded node's tooltip
RULE_SPACING = 70  # px of arc per node on each ring, at least
ENTITY_SPACING = 44
BESIDE_RADIUS = 90  # px from the centre to the other identities of the same actor
IDENTITIES_BESIDE = 6  # more than this (a role assumed by many) go to the outer ring

_CATEGORY = {
    EntityType.PRINCIPAL: "principal",
    EntityType.SESSION: "identity",
    EntityType.ACCESS_KEY: "identity",
    EntityType.INSTANCE: "identity",
    EntityType.SOURCE_IP: "network",
    EntityType.ACCOUNT: "account",
}


@dataclass(frozen=True)
class Placed:
    node: str
    fold: Fold
    x: float
    y: float
    angle: float  # radians; labels go outward along it
    ring: int


def fold_of(graph: nx.Graph[str], node: str) -> Fold:
    fold = graph.nodes[node]["fold"]
    assert isinstance(fold, Fold)
    return fold


def centre_of(graph: nx.Graph[str]) -> str | None:
    """The principal with the most ties; else the most tied identity; else the most tied entity."""
    candidates = [(n, fold_of(graph, n)) for n in graph if fold_of(graph, n).kind != RULE]

    def rank(item: tuple[str, Fold]) -> tuple[int, int, int, str]:
        node, fold = item
        return (
            fold.type is EntityType.PRINCIPAL,
            fold.type in IDENTITY_TYPES and fold.kind != GROUP,
            graph.degree(node, weight="weight"),
            _reverse(node),
        )

    return max(candidates, key=rank)[0] if candidates else None


def _reverse(text: str) -> str:
    # max() over this prefers the alphabetically first node among equals
    return "".join(chr(0x10FFFF - ord(c)) for c in text[:64])


def layout(graph: nx.Graph[str], rule_order: Sequence[str]) -> list[Placed]:
    """Positions around (0, 0): the centre, then the rules in `rule_order` (time of their first signal), then the
    rest by the mean angle of the rules they are tied to."""
    centre = centre_of(graph)
    rules = [n for n in rule_order if n in graph] + sorted(
        n for n in graph if fold_of(graph, n).kind == RULE and n not in rule_order
    )
    # The other identities (its keys, sessions, instance) are the same actor as the centre: they sit close to it,
    # so their ties to the rules run outward beside the centre's instead of across the drawing.
    beside = [
        n
        for n in graph
        if n != centre
        and fold_of(graph, n).kind != GROUP
        and fold_of(graph, n).type in IDENTITY_TYPES
        and len(rules) > 1
    ][:IDENTITIES_BESIDE]
    outer = [n for n in graph if n != centre and n not in rules and n not in beside]
    r1 = max(200.0, len(rules) * RULE_SPACING / (2 * math.pi))
    r2 = max(r1 + 200.0, len(outer) * ENTITY_SPACING / (2 * math.pi))
    placed: list[Placed] = []
    if centre is not None:
        placed.append(Placed(centre, fold_of(graph, centre), 0.0, 0.0, math.pi / 2, 0))
    for index, node in enumerate(sorted(beside, key=lambda n: (_type_order(fold_of(graph, n)), n))):
        angle = math.pi + math.pi * (index + 0.5) / len(beside)  # the upper half: the centre's label is below
        x, y = BESIDE_RADIUS * math.cos(angle), BESIDE_RADIUS * math.sin(angle)
        placed.append(Placed(node, fold_of(graph, node), x, y, angle, 0))
    angles: dict[str, float] = {}
    for index, node in enumerate(rules):
        angle = -math.pi / 2 + 2 * math.pi * index / max(1, len(rules))
        angles[node] = angle
        placed.append(Placed(node, fold_of(graph, node), r1 * math.cos(angle), r1 * math.sin(angle), angle, 1))

    def mean_angle(node: str) -> float:
        tied = [angles[n] for n in graph.neighbors(node) if n in angles]
        if not tied:
            return math.inf  # tied to no rule (its signals expired): after the others
        x = sum(math.cos(a) for a in tied)
        y = sum(math.sin(a) for a in tied)
        return (math.atan2(y, x) + math.pi / 2) % (2 * math.pi) if (x or y) else 0.0

    ordered = sorted(outer, key=lambda n: (mean_angle(n), _type_order(fold_of(graph, n)), n))
    for index, node in enumerate(ordered):
        angle = -math.pi / 2 + 2 * math.pi * (index + 0.5) / max(1, len(ordered))
        placed.append(Placed(node, fold_of(graph, node), r2 * math.cos(angle), r2 * math.sin(angle), angle, 2))
    return placed


def _type_order(fold: Fold) -> int:
    return list(EntityType).index(fold.type) if fold.type is not None else -1


def _category(fold: Fold) -> str:
    if fold.kind == RULE:
        return "rule"
    if fold.type in _CATEGORY:
        return _CATEGORY[fold.type]
    return "asset"


def _radius(fold: Fold) -> float:
    if fold.kind == RULE or fold.kind == GROUP:
        return 9 + 3 * math.log2(max(1, fold.count))
    return 16 if fold.type is EntityType.PRINCIPAL else 11


def _tooltip(fold: Fold) -> str:
    if fold.kind == RULE:
        return f"rule {fold.label}: {fold.count} signal(s)"
    if fold.kind == GROUP:
        shown = "\n".join(fold.members[:TITLE_IDS])
        more = f"\n... and {len(fold.members) - TITLE_IDS} more" if len(fold.members) > TITLE_IDS else ""
        return f"{fold.count} {fold.type.value if fold.type else ''} entities folded:\n{shown}{more}"
    kind = fold.type.value if fold.type else ""
    return f"{kind} {fold.label}"


def _label(fold: Fold) -> str:
    if fold.kind == RULE:
        return f"{fold.label} \u00d7{fold.count}"  # the multiplication sign: "x27" would read as hex
    return fold.label


def render_svg(graph: nx.Graph[str], rule_order: Sequence[str]) -> str:
    """The whole <svg> element; every text from the incident is escaped."""
    placed = layout(graph, rule_order)
    if not placed:
        return '<p class="muted">No entities or signals to draw.</p>'
    where = {p.node: p for p in placed}
    labels = [_label_at(p) for p in placed]
    left = min(min(p.x for p in placed), *(x - _width(t, a, "end") for x, _, a, t in labels)) - 30
    right = max(max(p.x for p in placed), *(x + _width(t, a, "start") for x, _, a, t in labels)) + 30
    top = min(min(p.y for p in placed), *(y for _, y, _, _ in labels)) - 40
    bottom = max(max(p.y for p in placed), *(y for _, y, _, _ in labels)) + 30
    width, height = right - left, bottom - top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="incident-graph" role="img" '
        f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">',
        "<title>Incident graph: entities and the rules whose signals tie them</title>",
        '<g class="edges">',
    ]
    for a, b, data in graph.edges(data=True):
        p, q = where[a], where[b]
        kind = "linking" if data["linking"] else "describing"
        stroke = 1 + math.log2(data["weight"])
        parts.append(
            f'<line class="edge {kind}" x1="{p.x:.1f}" y1="{p.y:.1f}" x2="{q.x:.1f}" y2="{q.y:.1f}" '
            f'stroke-width="{stroke:.1f}"><title>{data["weight"]} signal tie(s)</title></line>'
        )
    parts.append("</g>")
    for p in placed:
        parts.append(_node(p))
    parts.append("</svg>")
    return "".join(parts)


def _node(p: Placed) -> str:
    fold = p.fold
    radius = _radius(fold)
    classes = f"node {_category(fold)}" + (" folded" if fold.kind == GROUP else "")
    shape = (
        f'<rect x="{p.x - radius:.1f}" y="{p.y - radius:.1f}" width="{2 * radius:.1f}" height="{2 * radius:.1f}" '
        f'rx="4"></rect>'
        if fold.kind == RULE
        else f'<circle cx="{p.x:.1f}" cy="{p.y:.1f}" r="{radius:.1f}"></circle>'
    )
    lx, ly, anchor, _ = _label_at(p)
    kind = "" if fold.kind == RULE or fold.type is None else f'<tspan class="kind">{esc(fold.type.value)} </tspan>'
    return (
        f'<g class="{classes}"><title>{esc(_tooltip(fold))}</title>{shape}'
        f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{kind}{esc(_label(fold), LABEL_CHARS)}</text></g>'
    )


def _label_at(p: Placed) -> tuple[float, float, str, str]:
    """Where a node's label goes (x, y, text-anchor) and its text: outward along the node's angle, below the
    centre."""
    fold = p.fold
    radius = _radius(fold)
    text = (f"{fold.type.value} " if fold.kind != RULE and fold.type else "") + _label(fold)[:LABEL_CHARS]
    if p.node and p.x == 0 and p.y == 0:
        return p.x, p.y + radius + 16, "middle", text
    cos, sin = math.cos(p.angle), math.sin(p.angle)
    lx, ly = p.x + cos * (radius + 6), p.y + sin * (radius + 6) + 4
    anchor = "start" if cos > 0.25 else "end" if cos < -0.25 else "middle"
    if anchor == "middle":
        ly += 10 if sin > 0 else -6
    return lx, ly, anchor, text


def _width(text: str, anchor: str, side: str) -> float:
    """How far a label reaches past its anchor point on one side ("start": rightward, "end": leftward)."""
    full = len(text) * CHAR_WIDTH
    return full if anchor == side else full / 2 if anchor == "middle" else 0.0
