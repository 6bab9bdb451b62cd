"""The people-facing text output of `cordon replay`: incidents with severity, entities and a timeline.

Everything that comes from an event (keys, ARNs, titles, user agents, file names, rejection reasons) is printed as
text, never as rich markup: an S3 key `[link=https://evil]x[/link]` prints as those characters. Control characters
(ESC starts the terminal's own hyperlink and colour sequences), bidirectional overrides and lone surrogates are
shown escaped (`\\x1b`), so no value can restyle the terminal, plant a link or hide text.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cordon.audit import AuditRecord
from cordon.coverage import Row
from cordon.replay import ReplayResult
from correlators.signals import Incident

_SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "bold yellow",
    "low": "cyan",
    "informational": "dim",
}
_REJECTIONS_SHOWN = 10
# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(value: object, style: str = "") -> Text:
    """`value` as inert text: no markup, no control sequences, always encodable."""
    shown = _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))
    shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    return Text(shown, style=style)


_STATUS_STYLE = {
    "applied": "green",
    "planned": "cyan",
    "in_progress": "bold blue",
    "pending_approval": "yellow",
    "denied": "bold red",
    "failed": "red",
    "skipped": "dim",
    "rolled_back": "magenta",
    "refused": "bold magenta",
}


def _actions_table(actions: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, box=None, header_style="dim", pad_edge=False)
    for column in ("action", "status", "responder", "target"):
        table.add_column(column, overflow="fold")
    for action in actions:
        status = plain(action["status"], _STATUS_STYLE.get(action["status"], ""))
        table.add_row(plain(action.get("id", "")), status, plain(action["responder"]), plain(action["target"]))
        if action.get("reason"):
            table.add_row("", "", plain(f"  {action['reason']}", "dim"), "")
    return table


def _incident_panel(incident: Incident, actions: list[dict[str, Any]]) -> Panel:
    header = Text.assemble(
        (f" {incident.severity.value.upper()} ", _SEVERITY_STYLE[incident.severity.value]),
        "  ",
        plain(incident.title, "bold"),
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_row("id", plain(incident.id))
    facts.add_row("rules", plain(", ".join(incident.rules)))
    facts.add_row("window", f"{incident.first_seen:%Y-%m-%d %H:%M:%S} .. {incident.last_seen:%H:%M:%S} UTC")
    by_type: dict[str, list[str]] = defaultdict(list)
    for entity in incident.entities:
        by_type[entity.type.value].append(entity.id)
    for kind, ids in by_type.items():
        shown = ", ".join(ids[:4]) + (f" (+{len(ids) - 4} more)" if len(ids) > 4 else "")
        facts.add_row(plain(kind), plain(shown))
    timeline = Table(show_edge=False, box=None, header_style="dim", pad_edge=False)
    for column in ("time", "source", "what", "rules"):
        timeline.add_column(column, overflow="fold")
    # One row per event: several rules often match the same call, and the analyst reads events.
    rules_by_event: dict[tuple[object, str, str, str], list[str]] = defaultdict(list)
    for signal in incident.signals:
        rules_by_event[(signal.time, signal.source, signal.event_id, signal.what)].append(signal.rule)
    for (time, source, _, what), rules in rules_by_event.items():
        timeline.add_row(f"{time:%H:%M:%S}", plain(source), plain(what), plain(", ".join(rules)))
    parts: list[Any] = [facts, Text(""), timeline]
    if actions:
        parts += [Text(""), _actions_table(actions)]
    return Panel(Group(*parts), title=header, title_align="left", expand=True)


def render_text(result: ReplayResult, console: Console) -> None:
    if not result.incidents:
        console.print("No incidents.")
    for incident in result.incidents:
        console.print(_incident_panel(incident, result.actions.get(incident.id, [])))
    if result.rejected:
        console.print(f"[bold]{len(result.rejected)} event(s) rejected[/bold]")
        for rejection in result.rejected[:_REJECTIONS_SHOWN]:
            console.print(plain(f"  {rejection.where}: {rejection.reason}"), highlight=False)
        if len(result.rejected) > _REJECTIONS_SHOWN:
            console.print(f"  ... and {len(result.rejected) - _REJECTIONS_SHOWN} more (--output json lists all)")
    stats = result.stats
    console.print(
        f"read {stats.events_read}, accepted {stats.accepted}, rejected {stats.rejected}, "
        f"duplicates {stats.duplicates}, late {stats.late}, signals {stats.signals}, "
        f"incidents {stats.incidents}, expired {stats.expired}, evicted {stats.evicted}",
        highlight=False,
    )


def render_audit(records: list[AuditRecord], console: Console) -> None:
    if not records:
        console.print("No actions recorded.")
        return
    table = Table(header_style="bold")
    for column in ("action", "incident", "step", "responder", "target", "status"):
        table.add_column(column, overflow="fold")
    for record in records:
        status = Text(record.status.value, style=_STATUS_STYLE.get(record.status.value, ""))
        if record.transient:
            status.append(" (transient: cordon retry)", "dim")
        if record.reason:
            status.append("\n")
            status.append_text(plain(record.reason, "dim"))
        cells = (record.id, record.incident_id, record.step, record.responder, record.target["id"])
        table.add_row(*(plain(cell) for cell in cells), status)
    console.print(table)


def render_coverage(rows: list[Row], console: Console) -> None:
    """The technique > rules > playbook > scenario matrix; an empty cell is shown, not hidden."""
    if not rows:
        console.print("No rule is tagged with an ATT&CK or ATLAS technique.")
        return
    table = Table(header_style="bold")
    for column in ("technique", "rules raising it", "playbooks", "scenarios"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = (row.raised_by or row.rules, row.playbooks, row.scenarios)
        table.add_row(
            plain(f"{row.technique.framework} {row.technique.id}"),
            *(Text("\n".join(cell)) if cell else Text("missing", style="bold red") for cell in cells),
        )
    console.print(table)
