"""Incidents for the report tests: the demo's scenario replayed into a state file, and one whose event carries
attacker-controlled text in every field that reaches the page."""

from __future__ import annotations

import json
from pathlib import Path

from cordon.cli import main

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "examples" / "scenarios"
CONFIG = REPO / "examples" / "cordon.yaml"
FINDING = REPO / "examples" / "fixtures" / "guardduty_Exfiltration_S3_AnomalousBehavior.json"
CRITICAL_INCIDENT = "inc-3f7386f2abe77566"  # the demo's critical incident (its id comes from its first signal)

# Closes any <script> or <title>, then tries an element that runs script, both ways: as markup and as an attribute.
SCRIPT = "</title></script><script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED'\">"
HOSTILE_USER = "ml-" + SCRIPT
HOSTILE_BUCKET = "javascript:alert(1)"
HOSTILE_TITLE = "\u202e reversed " + SCRIPT
HUGE = 200_000  # characters of one field: under the ingest limit, far over what a page should show in a cell


def hostile_finding(folder: Path) -> Path:
    """A GuardDuty finding (the implicit rule raises it alone) whose user, bucket, title and description are
    hostile; lone surrogates are refused at ingest, so the tests put those in after it."""
    finding = json.loads(FINDING.read_text())[0]
    detail = finding["detail"]
    detail["resource"]["accessKeyDetails"]["userName"] = HOSTILE_USER
    bucket = detail["resource"]["s3BucketDetails"][0]
    bucket["arn"], bucket["name"] = f"arn:aws:s3:::{HOSTILE_BUCKET}", HOSTILE_BUCKET
    detail["title"] = HOSTILE_TITLE
    detail["description"] = "A" * HUGE
    path = folder / "hostile.json"
    path.write_text(json.dumps([finding]))
    return path


def replay_with_reports(events: Path, state: Path, reports: Path) -> list[Path]:
    """`cordon replay EVENTS --state sqlite:///STATE --report REPORTS`: the pages it wrote."""
    args = ["replay", str(events), "--config", str(CONFIG), "--state", f"sqlite:///{state}", "--report", str(reports)]
    assert main([*args, "--output", "json"]) == 0
    return sorted(reports.glob("*.html"))
