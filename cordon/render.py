"""The people-facing text output of `cordon replay`: incidents with severity, entities and a timeline."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cordon.audit import AuditRecord
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


_STATUS_STYLE = {
    "applied": "green",
    "planned": "cyan",
    "in_progress": "bold blue",
    "pending_approval": "yellow",
    "denied": "bold red",
    "failed": "red",
    "skipped": "dim",
    "rolled_back": "magenta",
}


def _actions_table(actions: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, box=None, header_style="dim", pad_edge=False)
    for column in ("action", "status", "responder", "target"):
        table.add_column(column, overflow="fold")
    for action in actions:
        status = Text(action["status"], style=_STATUS_STYLE.get(action["status"], ""))
        table.add_row(action.get("id", ""), status, action["responder"], action["target"])
        if action.get("reason"):
            table.add_row("", "", Text(f"  {action['reason']}", style="dim"), "")
    return table


def _incident_panel(incident: Incident, actions: list[dict[str, Any]]) -> Panel:
    header = Text.assemble(
        (f" {incident.severity.value.upper()} ", _SEVERITY_STYLE[incident.severity.value]),
        "  ",
        (incident.title, "bold"),
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_row("id", incident.id)
    facts.add_row("rules", ", ".join(incident.rules))
    facts.add_row("window", f"{incident.first_seen:%Y-%m-%d %H:%M:%S} .. {incident.last_seen:%H:%M:%S} UTC")
    by_type: dict[str, list[str]] = defaultdict(list)
    for entity in incident.entities:
        by_type[entity.type.value].append(entity.id)
    for kind, ids in by_type.items():
        shown = ", ".join(ids[:4]) + (f" (+{len(ids) - 4} more)" if len(ids) > 4 else "")
        facts.add_row(kind, shown)
    timeline = Table(show_edge=False, box=None, header_style="dim", pad_edge=False)
    for column in ("time", "source", "what", "rules"):
        timeline.add_column(column, overflow="fold")
    # One row per event: several rules often match the same call, and the analyst reads events.
    rules_by_event: dict[tuple[object, str, str, str], list[str]] = defaultdict(list)
    for signal in incident.signals:
        rules_by_event[(signal.time, signal.source, signal.event_id, signal.what)].append(signal.rule)
    for (time, source, _, what), rules in rules_by_event.items():
        timeline.add_row(f"{time:%H:%M:%S}", source, what, ", ".join(rules))
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
            console.print(f"  {rejection.where}: {rejection.reason}", markup=False, highlight=False)
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
        if record.reason:
            status.append(f"\n{record.reason}", style="dim")
        table.add_row(record.id, record.incident_id, record.step, record.responder, record.target["id"], status)
    console.print(table)
