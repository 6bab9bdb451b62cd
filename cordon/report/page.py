"""One incident as one self-contained HTML page: header, graph, actions with the commands that settle them, rules
with their ATT&CK/ATLAS techniques, the timeline with each raw event behind a fold, and every entity.

Self-contained and inert by construction: no <script> at all, the only style is the page's own <style> (allowed by
its hash), and a Content-Security-Policy meta tag with `default-src 'none'` forbids every fetch, so the page
opened from a ticket or a mail attachment loads nothing and runs nothing. Every value that came from an event goes
through `cordon.report.text.esc`; no value from an event is put in a URL, a style or an event handler.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cordon.audit import AuditRecord, Status
from cordon.report.gather import ReportInputs
from cordon.report.svg import render_svg
from cordon.report.text import esc, inert
from correlators.graph import condense, incident_graph
from correlators.signals import Signal, SignalRef

RAW_SHOWN_CHARS = 64 * 1024  # of one raw event's JSON; DynamoDB already trims what it keeps to fit an item
CELL_CHARS = 160  # of an id or a title in a table cell; the full value is in the cell's title attribute

_STYLE = """
:root { --ink: #1d2430; --muted: #5b6576; --line: #d8dde6; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       background: var(--bg); margin: 0; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px; }
main { padding: 8px 28px 40px; max-width: 1600px; }
h1 { font-size: 22px; margin: 6px 0; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 26px 0 8px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 12px;
          margin-top: 16px; overflow-x: auto; }
.sev { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 4px; color: #fff;
       letter-spacing: .04em; }
.sev.critical { background: #b3152b; } .sev.high { background: #d9480f; } .sev.medium { background: #b08400; }
.sev.low { background: #1971c2; } .sev.informational { background: #6c757d; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 28px; color: var(--muted); }
.facts b { color: var(--ink); font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid #eef0f4; padding: 6px 8px; vertical-align: top; overflow-wrap: anywhere; }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: #f3f5f8; border: 1px solid var(--line); border-radius: 4px; padding: 8px; max-height: 420px;
      overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
td.nowrap, .status { white-space: nowrap; }
.status { font-weight: 600; padding: 1px 6px; border-radius: 3px; background: #eef0f4; }
.status.applied { background: #d3f9d8; color: #1b6e2a; }
.status.pending_approval { background: #fff3bf; color: #7a5b00; }
.status.failed, .status.denied { background: #ffe3e3; color: #a61e2b; }
.status.rolled_back { background: #f3d9fa; color: #7a2a8c; } .status.planned { background: #dbe4ff; color: #2b4aa8; }
.tech { display: inline-block; border: 1px solid var(--line); border-radius: 3px; padding: 0 5px; margin: 1px 3px 1px 0;
        background: #f8f9fb; }
details summary { cursor: pointer; color: #1c5fb8; }
#incident-graph { max-width: 100%; height: auto; display: block; margin: 0 auto; }
#incident-graph text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: var(--ink); paint-order: stroke;
                      stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
#incident-graph text .kind { fill: var(--muted); font-size: 10.5px; }
#incident-graph .edge { stroke: #8a94a6; }
#incident-graph .edge.describing { stroke: #c3c9d4; stroke-dasharray: 4 3; }
#incident-graph .node circle, #incident-graph .node rect { stroke: #fff; stroke-width: 2; }
#incident-graph .principal circle { fill: #c92a2a; }
#incident-graph .identity circle { fill: #f08c00; }
#incident-graph .rule rect { fill: #364fc7; }
#incident-graph .asset circle { fill: #2b8a3e; }
#incident-graph .network circle { fill: #868e96; }
#incident-graph .account circle { fill: #495057; }
#incident-graph .folded circle { fill-opacity: .35; stroke: #2b8a3e; stroke-dasharray: 3 2; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 5px;
            vertical-align: -1px; }
.legend i.principal { background: #c92a2a; } .legend i.identity { background: #f08c00; }
.legend i.rule { background: #364fc7; border-radius: 2px; } .legend i.asset { background: #2b8a3e; }
.legend i.network { background: #868e96; } .legend i.account { background: #495057; }
""".strip()

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; script-src 'none'; "
    "base-uri 'none'; form-action 'none'"
)


def render_page(inputs: ReportInputs) -> str:
    incident = inputs.incident
    graph = incident_graph(incident, inputs.signals)
    condensed = condense(graph, incident.rule_counts)
    first_signal: dict[str, datetime] = {}
    for ref in incident.signals:
        first_signal.setdefault(ref.rule, ref.time)
    rule_order = [f"rule|{rule}" for rule in sorted(first_signal, key=lambda r: (first_signal[r], r))]
    severity = incident.severity.value
    sections = [
        _section("Incident graph", _legend() + render_svg(condensed, rule_order)),
        _section(f"Actions ({len(inputs.actions)})", _actions(inputs)),
        _section(f"Rules ({len(inputs.rules) or len(incident.rule_counts)})", _rules(inputs)),
        _section(f"Timeline ({incident.signal_count} signals)", _timeline(inputs)),
        _section(f"Entities ({len(incident.entities)})", _entities(inputs)),
    ]
    generated = f" · written {inputs.generated_at:%Y-%m-%d %H:%M:%S} UTC" if inputs.generated_at else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>[{esc(severity.upper())}] {esc(incident.title, 120)} · Cordon {esc(incident.id)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f'<header><span class="sev {esc(severity)}">{esc(severity.upper())}</span>'
        f"<h1>{esc(incident.title, 300)}</h1>"
        f'<div class="facts"><span>incident <b><code>{esc(incident.id)}</code></b></span>'
        f"<span>first seen <b>{incident.first_seen:%Y-%m-%d %H:%M:%S} UTC</b></span>"
        f"<span>last seen <b>{incident.last_seen:%Y-%m-%d %H:%M:%S} UTC</b></span>"
        f"<span><b>{incident.signal_count}</b> signals</span>"
        f"<span><b>{len(incident.entities)}</b> entities</span>"
        f"<span><b>{len(inputs.actions)}</b> actions</span></div></header>"
        f"<main>{''.join(sections)}"
        f'<p class="muted">Written by Cordon{generated}. This page runs no script and loads nothing: its'
        " Content-Security-Policy forbids every fetch.</p></main></body></html>\n"
    )


def _section(title: str, body: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{body}</section>"


def _legend() -> str:
    items = (
        ("principal", "principal (centre)"),
        ("identity", "access key, session, instance"),
        ("rule", "rule: its signals, counted"),
        ("asset", "asset (bucket, object, model, endpoint ...)"),
        ("network", "source IP"),
        ("account", "account"),
    )
    spans = "".join(f'<span><i class="{css}"></i>{esc(text)}</span>' for css, text in items)
    return (
        f'<p class="legend muted">{spans}</p><p class="muted">Solid lines: the entity a signal joined the incident'
        " through; dashed: entities it also names. Past four of a type, the least tied are folded into one"
        " counted node; hover a node for its full id.</p>"
    )


def _table(head: Iterable[str], rows: Iterable[str]) -> str:
    cells = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: object, limit: int = CELL_CHARS, code: bool = False) -> str:
    text = esc(value, limit)
    inner = f"<code>{text}</code>" if code else text
    return f'<td title="{esc(value, 2000)}">{inner}</td>' if len(inert(value)) > limit else f"<td>{inner}</td>"


def _command(record: AuditRecord, inputs: ReportInputs) -> str:
    """What settles the action from a laptop (the state URL is shell-quoted: it is the operator's, not an event's)."""
    state = shlex.quote(inputs.state_url)
    if record.status is Status.PENDING_APPROVAL:
        verb = "approve"
    elif record.status is Status.APPLIED and record.responder in inputs.reversible:
        verb = "rollback"
    elif record.status is Status.FAILED:
        verb = "retry"
    else:
        return '<span class="muted">-</span>'
    return f"<code>{esc(f'cordon {verb} {record.id} --state {state}')}</code>"


def _actions(inputs: ReportInputs) -> str:
    if not inputs.actions:
        return '<p class="muted">No action recorded for this incident (no playbook triggered, or none ran yet).</p>'
    rows = []
    for record in inputs.actions:
        reason = f'<div class="muted">{esc(record.reason, 600)}</div>' if record.reason else ""
        rows.append(
            "<tr>"
            f"{_cell(record.id, code=True)}"
            f"{_cell(f'{record.playbook} / {record.step}')}"
            f"{_cell(record.responder, code=True)}"
            f"{_cell(record.target.get('id', ''), code=True)}"
            f'<td class="nowrap">{esc(record.mode)}</td>'
            f'<td><span class="status {esc(record.status.value)}">{esc(record.status.value)}</span>{reason}</td>'
            f"<td>{_command(record, inputs)}</td>"
            "</tr>"
        )
    return _table(("action", "playbook / step", "responder", "target", "mode", "status", "command"), rows)


def _rules(inputs: ReportInputs) -> str:
    incident = inputs.incident
    names = sorted(set(incident.rule_counts) | set(incident.raised_by))
    rows = []
    for name in names:
        facts = inputs.rules.get(name)
        hit = incident.raised_by.get(name)
        raised = f"raised it ({esc(hit.severity.value)})" if hit else '<span class="muted">context</span>'
        techniques = (
            "".join(f'<span class="tech">{esc(t.framework)} {esc(t.id)}</span>' for t in facts.techniques)
            if facts and facts.techniques
            else '<span class="muted">none tagged</span>'
        )
        title = facts.title if facts else "(implicit or unknown rule)"
        rows.append(
            f"<tr>{_cell(name, code=True)}{_cell(title)}<td>{incident.rule_counts.get(name, 0)}</td>"
            f"<td>{raised}</td><td>{techniques}</td></tr>"
        )
    return _table(("rule", "title", "signals", "role", "ATT&CK / ATLAS"), rows)


def _timeline(inputs: ReportInputs) -> str:
    incident = inputs.incident
    stored = {(s.rule, s.event.event_id): s for s in inputs.signals}
    # One row per event: several rules often match one call, and an analyst reads events.
    events: dict[tuple[datetime, str], list[SignalRef]] = {}
    for ref in incident.signals:
        events.setdefault((ref.time, ref.event_id), []).append(ref)
    rows = []
    missing = 0
    for (time, _), refs in sorted(events.items(), key=lambda item: item[0]):
        signal = next((stored[r.key] for r in refs if r.key in stored), None)
        missing += signal is None
        first = refs[0]
        rules = ", ".join(r.rule for r in refs)
        rows.append(
            f'<tr><td class="nowrap"><code>{time:%Y-%m-%d %H:%M:%S}</code></td>{_cell(first.source)}'
            f"{_cell(first.what, code=True)}"
            f"{_cell(rules, code=True)}<td>{_event_fold(first, signal)}</td></tr>"
        )
    notes = []
    if incident.signal_count > len(incident.signals):
        notes.append(
            f"The incident counts {incident.signal_count} signals and keeps the first and the latest"
            f" {len(incident.signals) // 2}: {incident.signal_count - len(incident.signals)} in between are counted"
            " (see Rules), not listed."
        )
    if missing:
        notes.append(
            f"{missing} event(s) are no longer in the state (signals expire with their window): their row shows what"
            " the incident keeps (time, source, call or finding, rule, where it was read), not the raw event."
        )
    note = "".join(f'<p class="muted">{esc(n)}</p>' for n in notes)
    return note + _table(("time (UTC)", "source", "what", "rules", "event"), rows)


def _event_fold(ref: SignalRef, signal: Signal | None) -> str:
    if signal is None:
        kept = {"event_id": ref.event_id, "origin": ref.origin, "time": ref.time.isoformat(), "what": ref.what}
        return f"<details><summary>kept reference</summary><pre>{esc(_json(kept))}</pre></details>"
    event = signal.event
    who = event.actor.principal if event.actor and event.actor.principal else ""
    summary = " · ".join(inert(part) for part in (who, event.source_ip or "", event.origin) if part)
    if not event.raw:
        body = '<p class="muted">The store kept no raw event for this signal (trimmed to fit its item).</p>'
        body += f"<pre>{esc(_json(event.model_dump(mode='json', exclude={'raw'})))}</pre>"
    else:
        text = _json(event.raw)
        cut = ""
        if len(text) > RAW_SHOWN_CHARS:
            cut = f'<p class="muted">First {RAW_SHOWN_CHARS} of {len(text)} characters.</p>'
            text = text[:RAW_SHOWN_CHARS]
        body = f"{cut}<pre>{esc(text)}</pre>"
    return f'<details><summary>raw event</summary>{body}</details><div class="muted">{esc(summary, 200)}</div>'


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _entities(inputs: ReportInputs) -> str:
    rows = [f"<tr>{_cell(e.type.value)}{_cell(e.id, 400, code=True)}</tr>" for e in inputs.incident.entities]
    if not rows:
        return '<p class="muted">No entities.</p>'
    return _table(("type", "id"), rows)
