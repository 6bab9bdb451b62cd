"""`cordon report`: one incident as one self-contained HTML page a SOC opens in a browser or attaches to a ticket.

`gather` reads the stores (incident, stored signals, audit, rules); `render_page` draws the page from what was
read (`correlators.graph` builds the graph, `cordon.report.svg` draws it). `write_report` does both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from cordon.audit import AuditLog
from cordon.report.gather import ReportInputs, gather, reversible_responders
from cordon.report.page import render_page
from correlators.sigma.rules import RuleSet
from correlators.state.base import StateStore

__all__ = ["ReportInputs", "gather", "render_page", "report_html", "reversible_responders"]


def report_html(
    store: StateStore,
    audit: AuditLog,
    incident_id: str,
    rules: RuleSet,
    *,
    state_url: str,
    reversible: Iterable[str] = (),
) -> str:
    """The page of one incident (following merges), as it stands in the stores now."""
    inputs = gather(store, audit, incident_id, rules, state_url=state_url, reversible=reversible, now=datetime.now(UTC))
    return render_page(inputs)
