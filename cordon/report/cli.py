"""The command-line side of reports: `cordon report INCIDENT_ID -o FILE` and `cordon replay ... --report DIR`.

Kept apart from cordon/cli.py, which only hands over its parser and arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cordon.audit import AuditLog
from correlators.config import Config
from correlators.errors import InputError
from correlators.sigma.rules import RuleSet
from correlators.signals import Incident
from correlators.state.base import StateStore

if TYPE_CHECKING:
    from cordon.replay import ReplayResult

REPORT_STATE_HELP = (
    "sqlite:///path/state.db, or dynamodb://?audit=AUDIT_TABLE&state=STATE_TABLE&region=REGION: a deployed stack's"
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def add_report_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], default_state: str) -> None:
    report = commands.add_parser("report", help="write one incident as a self-contained HTML page")
    report.add_argument("incident_id", metavar="INCIDENT_ID")
    report.add_argument("--state", default=default_state, help=REPORT_STATE_HELP)
    report.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    report.add_argument("--rules", type=Path, action="append", default=[], help="extra Sigma rule file or folder")
    report.add_argument("--config", type=Path, help="site configuration (cordon.yaml)")
    report.add_argument("--endpoint-url", help="AWS endpoint for the DynamoDB tables (e.g. a moto server)")


def add_replay_option(replay: argparse.ArgumentParser) -> None:
    replay.add_argument("--report", type=Path, metavar="DIR", help="write each incident's HTML page into DIR")


def run_report(args: argparse.Namespace, config: Config) -> int:
    from cordon.replay import load_ruleset
    from cordon.report import report_html
    from cordon.respond import audit_log_for
    from cordon.stores import open_state

    rules = load_ruleset(config, args.rules)
    store = open_state(args.state, args.endpoint_url)
    audit = audit_log_for(args.state, args.endpoint_url) if _has_audit(args.state) else _no_audit()
    try:
        page = report_html(store, audit, args.incident_id, rules, state_url=args.state, reversible=_reversible())
    finally:
        audit.close()
        store.close()
    args.output.write_text(page, encoding="utf-8")
    print(f"{args.output}: incident {args.incident_id}")
    return 0


def replay_reports(
    folder: Path, audit: AuditLog, rules: RuleSet, state_url: str
) -> Callable[[StateStore, ReplayResult], None]:
    """What `cordon replay --report DIR` runs once the incidents and their actions are settled."""

    def write(store: StateStore, result: ReplayResult) -> None:
        for path in write_replay_reports(folder, store, audit, result.incidents, rules, state_url):
            print(f"report: {path}", file=sys.stderr)

    return write


def write_replay_reports(
    folder: Path, store: StateStore, audit: AuditLog, incidents: list[Incident], rules: RuleSet, state_url: str
) -> list[Path]:
    """One page per incident, named after its id, into `folder` (created)."""
    from cordon.report import report_html

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    reversible = _reversible()
    for incident in incidents:
        if not _SAFE_ID.match(incident.id):  # ids are Cordon's own (inc-<hex>); never a path from elsewhere
            raise InputError(f"incident id {incident.id!r} is not a file name")
        path = folder / f"{incident.id}.html"
        path.write_text(
            report_html(store, audit, incident.id, rules, state_url=state_url, reversible=reversible),
            encoding="utf-8",
        )
        written.append(path)
    return written


def _reversible() -> frozenset[str]:
    from cordon.report import reversible_responders
    from responders.catalog import builtin_responders

    return reversible_responders(builtin_responders())


def _has_audit(state_url: str) -> bool:
    return not state_url.startswith("dynamodb://") or "audit=" in state_url


def _no_audit() -> AuditLog:
    from cordon.audit import MemoryAuditLog

    return MemoryAuditLog()
