"""The people-facing text output of `cordon replay`: incidents with severity, entities and a timeline."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

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


def _incident_panel(incident: Incident) -> Panel:
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
    return Panel(Group(facts, Text(""), timeline), title=header, title_align="left", expand=True)


def render_text(result: ReplayResult, console: Console) -> None:
    if not result.incidents:
        console.print("No incidents.")
    for incident in result.incidents:
        console.print(_incident_panel(incident))
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
