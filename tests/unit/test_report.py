"""The incident report: what the page holds, that fan-out stays readable, and that nothing from an event can become
markup, a script, a URL or a style. (tests/functional/test_report_browser.py opens the pages in Chromium.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cordon.audit import MemoryAuditLog
from cordon.cli import main
from cordon.replay import load_ruleset
from cordon.report import gather, render_page
from cordon.report.page import CSP
from correlators.config import load_config
from correlators.graph import GROUP, condense, entity_node, incident_graph
from correlators.incidents import entity_partition
from correlators.model import Actor, Entity, EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.signals import SIGNALS_KEPT_AT_EACH_END, Incident, Signal
from correlators.state import MemoryStore, SqliteStore
from correlators.state.base import Commit, IncidentWrite

from .report_support import (
    CONFIG,
    CRITICAL_INCIDENT,
    HOSTILE_BUCKET,
    HOSTILE_USER,
    HUGE,
    SCENARIOS,
    hostile_finding,
    replay_with_reports,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PRINCIPAL = "arn:aws:iam::111122223333:user/mallory"
# Every element and attribute the page is made of. Anything else in a page means event text became markup.
ELEMENTS = {
    *("html", "head", "meta", "title", "style", "body", "header", "main", "section", "h1", "h2", "p", "div", "span"),
    *("b", "i", "code", "pre", "table", "thead", "tbody", "tr", "th", "td", "details", "summary"),
    *("svg", "g", "line", "circle", "rect", "text", "tspan"),
}
ATTRIBUTES = {
    *("charset", "http-equiv", "content", "name", "lang", "class", "title", "id", "role", "xmlns", "viewbox"),
    *("width", "height", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "stroke-width", "text-anchor"),
}


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _markup(page: str) -> _Markup:
    parser = _Markup()
    parser.feed(page)
    parser.close()
    return parser


def _event(n: int, resources: list[Resource]) -> NormalizedEvent:
    return NormalizedEvent(
        event_id=f"e{n:05d}",
        time=T0 + timedelta(seconds=n),
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        action="s3:GetObject",
        actor=Actor(principal=PRINCIPAL, access_key="AKIAMALLORYEXAMPLE01"),
        source_ip="192.0.2.10",
        resources=resources,
        raw={"eventName": "GetObject", "n": n},
    )


def _fan_out(store: MemoryStore, objects: int) -> Incident:
    """A principal reading `objects` objects of one bucket: one signal each, stored as the pipeline stores them."""
    incident = Incident(
        id="inc-fanout",
        title="bulk read",
        severity=Severity.HIGH,
        first_seen=T0,
        last_seen=T0,
        core_first=T0,
        core_last=T0,
        origin=(T0, "x", "bulk_read"),
        links=[f"principal:{PRINCIPAL}"],
    )
    incident.raise_by("bulk_read", Severity.HIGH, "bulk read")
    for n in range(objects):
        resources = [
            Resource(type=EntityType.BUCKET, id="arn:aws:s3:::acme-training"),
            Resource(type=EntityType.OBJECT, id=f"s3://acme-training/part-{n:05d}.parquet"),
        ]
        signal = Signal(
            rule="bulk_read", title="t", severity=Severity.HIGH, standalone=True, event=_event(n, resources)
        )
        incident.add_signal(signal)
        store.put_signal(signal, [entity_partition(incident.links[0])], T0 + timedelta(days=1))
    assert store.commit(Commit(incidents=[IncidentWrite(incident, 0)]))
    return incident


def test_a_principal_reading_10000_objects_draws_a_handful_of_nodes() -> None:
    # GIVEN a principal that read 10,000 objects
    store = MemoryStore()
    incident = _fan_out(store, 10_000)
    inputs = gather(store, MemoryAuditLog(), incident.id, load_ruleset(load_config(None)), state_url="memory://")
    # WHEN its graph is built and condensed
    graph = incident_graph(inputs.incident, inputs.signals)
    condensed = condense(graph, inputs.incident.rule_counts)
    # THEN the full graph holds what the incident keeps (its signals, the objects they name), tied as joined
    kept = 2 * SIGNALS_KEPT_AT_EACH_END
    assert len(inputs.signals) == kept and inputs.incident.signal_count == 10_000
    principal = entity_node(Entity(type=EntityType.PRINCIPAL, id=PRINCIPAL))
    assert graph.degree(principal) == kept
    assert all(data["linking"] for _, _, data in graph.edges(principal, data=True))
    # AND the drawing has one rule node counting all 10,000 signals, and the objects folded past a few
    folds = [condensed.nodes[n]["fold"] for n in condensed]
    assert len(condensed) <= 10
    [rule] = [f for f in folds if f.kind == "rule"]
    assert rule.count == 10_000
    [group] = [f for f in folds if f.kind == GROUP]
    assert group.type is EntityType.OBJECT and group.count == len(group.members) > 90
    page = render_page(inputs)
    assert page.count("<circle") + page.count("<rect") == len(condensed)
    assert "+" + str(group.count) + " more object" in page


def test_a_signal_gone_from_the_store_is_a_node_without_ties_and_the_page_says_so() -> None:
    store = MemoryStore()
    incident = _fan_out(store, 3)
    inputs = gather(store, MemoryAuditLog(), incident.id, load_ruleset(load_config(None)), state_url="memory://")
    inputs.signals = []  # expired: the incident keeps its references, the store no longer the signals
    graph = incident_graph(incident, inputs.signals)
    assert all(graph.degree(n) == 0 for n, d in graph.nodes(data=True) if d["kind"] == "signal")
    assert "are no longer in the state" in render_page(inputs)


def test_the_demo_critical_incident_page_has_its_graph_rules_techniques_timeline_and_raw_events(
    tmp_path: Path,
) -> None:
    pages = replay_with_reports(SCENARIOS, tmp_path / "state.db", tmp_path / "reports")
    assert {p.stem for p in pages} >= {CRITICAL_INCIDENT}
    page = (tmp_path / "reports" / f"{CRITICAL_INCIDENT}.html").read_text()
    markup = _markup(page)
    text = " ".join(markup.text)
    assert "arn:aws:iam::111122223333:role/ml-training-role" in text  # the centre of the graph
    assert "ml_credential_finding_then_ml_access" in text and "ATT&CK T1552.005" in text and "AML.T0012" in text
    assert page.count("<details>") >= 20  # one raw event per timeline row
    assert '"eventName": "GetObject"' in page.replace("&quot;", '"')
    assert f'content="{CSP}"' in page
    assert "planned" in text  # the actions as the audit holds them


def test_cordon_report_writes_one_incident_and_refuses_an_unknown_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    assert main(["replay", str(SCENARIOS), "--config", str(CONFIG), "--state", state, "--output", "json"]) == 0
    out = tmp_path / "incident.html"
    assert main(["report", CRITICAL_INCIDENT, "--state", state, "--config", str(CONFIG), "-o", str(out)]) == 0
    assert "Credentials named in a GuardDuty finding" in out.read_text()
    assert main(["report", "inc-0000000000000000", "--state", state, "-o", str(tmp_path / "x.html")]) == 2
    assert "no incident inc-0000000000000000 in this state" in capsys.readouterr().err


def test_event_text_never_becomes_markup_a_url_or_a_style(tmp_path: Path) -> None:
    # GIVEN an incident whose user, bucket, title and description are hostile
    [path] = replay_with_reports(hostile_finding(tmp_path), tmp_path / "state.db", tmp_path / "reports")
    page = path.read_text(encoding="utf-8")
    # THEN the page is made of its own elements and attributes only: no script, image, link, handler or style
    markup = _markup(page)
    assert markup.elements <= ELEMENTS, markup.elements - ELEMENTS
    assert markup.attributes <= ATTRIBUTES, markup.attributes - ATTRIBUTES
    assert page.count("<style>") == 1 and page.count("<script") == 0
    # AND the hostile text is there, as text (the entity, in the graph and the entities table)
    text = "".join(markup.text)
    assert HOSTILE_USER in text and f"arn:aws:s3:::{HOSTILE_BUCKET}" in text
    assert "\u202e" not in page and "\\u202e" in text  # a bidi override is shown, not obeyed
    # AND a huge field is cut in the raw event's fold
    assert len(page) < HUGE and "First 65536 of" in text


def test_lone_surrogates_and_controls_are_shown_escaped_and_the_page_encodes(tmp_path: Path) -> None:
    # Ingest refuses lone surrogates; a page drawn from any store must still not break on them.
    [path] = replay_with_reports(hostile_finding(tmp_path), tmp_path / "state.db", tmp_path / "reports")
    store = SqliteStore(tmp_path / "state.db")
    try:
        inputs = gather(store, MemoryAuditLog(), path.stem, load_ruleset(load_config(None)), state_url="memory://")
    finally:
        store.close()
    inputs.incident.title = "bad \ud800 title \x1b[31m"
    inputs.incident.entities.append(Entity(type=EntityType.OBJECT, id="s3://b/\udfff\x00key"))
    page = render_page(inputs)
    page.encode("utf-8")  # raises on a lone surrogate
    assert "bad \\ud800 title \\x1b[31m" in page and "s3://b/\\udfff\\x00key" in page
    assert not re.search("[\x00-\x08\x1b]", page)
