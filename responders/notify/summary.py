"""Pure helpers every notification shares: the incident summary, its timeline, severity labels, truncation.

The input is the incident as `cordon replay --output json` prints it. Notifications must still go out when an
incident is odd (a missing key, an unknown severity), so these read it leniently instead of validating it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from responders.base import ResponderError

SEVERITIES = ("informational", "low", "medium", "high", "critical")
DEFAULT_SEVERITY = "medium"  # an unknown severity is shown as medium: loud enough to be read, not paged on


def severity_of(incident: Mapping[str, Any]) -> str:
    """The incident's severity as one of SEVERITIES (lower case)."""
    value = str(incident.get("severity") or "").strip().lower()
    return value if value in SEVERITIES else DEFAULT_SEVERITY


def severity_label(incident: Mapping[str, Any]) -> str:
    """The severity in ASFF's and subjects' upper-case form: INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL."""
    return severity_of(incident).upper()


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `limit` characters, the cut marked with `ellipsis`."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))] + ellipsis[:limit]


def shorten(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut from the middle: an ARN's or S3 key's both ends say what it is (account, type ... name)."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(ellipsis))
    head = (keep + 1) // 2
    return text[:head] + ellipsis + text[len(text) - (keep - head) :] if keep else ellipsis[:limit]


def ascii_line(text: str) -> str:
    """One line of printable ASCII: accents folded (é > e), other characters and control characters dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join("".join(c if c.isprintable() else " " for c in folded).split())


def title_of(incident: Mapping[str, Any]) -> str:
    return str(incident.get("title") or incident.get("id") or "Cordon incident")


def rules_of(incident: Mapping[str, Any]) -> list[str]:
    return [str(rule) for rule in incident.get("rules") or []]


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime; None when absent or unreadable."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def events(incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Signals grouped by the event that raised them, in event-time order: one event can match several rules,
    and a reader wants one line per thing that happened, not one per rule."""
    grouped: dict[str, dict[str, Any]] = {}
    for signal in incident.get("signals") or []:
        key = str(signal.get("event_id") or id(signal))
        entry = grouped.setdefault(
            key,
            {"time": str(signal.get("time") or ""), "source": str(signal.get("source") or ""), "rules": []},
        )
        entry["event_id"] = str(signal.get("event_id") or "")
        if signal.get("rule") and signal["rule"] not in entry["rules"]:
            entry["rules"].append(str(signal["rule"]))
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(grouped.values(), key=lambda e: (parse_time(e["time"]) or epoch, e["event_id"]))


def timeline(incident: Mapping[str, Any], limit: int) -> tuple[list[dict[str, Any]], int]:
    """At most `limit` events, the first and the latest ones (how it began, where it is now), and how many
    were left out in between."""
    all_events = events(incident)
    if len(all_events) <= limit:
        return all_events, 0
    head = (limit + 1) // 2
    tail = limit - head
    return all_events[:head] + (all_events[-tail:] if tail else []), len(all_events) - limit


def entities_by_type(incident: Mapping[str, Any]) -> dict[str, list[str]]:
    """Entity ids grouped by type, in the incident's order (identities come first there), de-duplicated."""
    grouped: dict[str, list[str]] = {}
    for entity in incident.get("entities") or []:
        ids = grouped.setdefault(str(entity.get("type") or "other"), [])
        if str(entity.get("id")) not in ids:
            ids.append(str(entity.get("id")))
    return grouped


def actions_of(incident: Mapping[str, Any]) -> list[dict[str, str]]:
    """The playbook actions without their params: a notification says what was done, and params may hold
    values (secret ARNs, site settings) that do not belong in a chat channel."""
    keys = ("playbook", "step", "responder", "target", "status")
    return [{key: str(action.get(key) or "") for key in keys} for action in incident.get("actions") or []]


def report_link(incident: Mapping[str, Any]) -> dict[str, str] | None:
    """The incident report's presigned link the runner put in `incident["report"]` ({"url", "expires_at"}), if it
    is one a reader may be sent to (https, or http to this machine in tests); None otherwise."""
    from responders.notify.webhook import check_url

    report = incident.get("report")
    if not isinstance(report, Mapping) or not isinstance(report.get("url"), str):
        return None
    try:
        url = check_url(report["url"], "the incident report")
    except ResponderError:
        return None
    return {"url": url, "expires_at": str(report.get("expires_at") or "")}


def subject(incident: Mapping[str, Any], prefix: str = "Cordon", limit: int = 100) -> str:
    """`[Cordon HIGH] <title>`, printable ASCII on one line, at most `limit` characters (SNS allows 100)."""
    head = f"[{ascii_line(prefix)} {severity_label(incident)}] "
    return truncate(head + ascii_line(title_of(incident)), limit, "...").rstrip()


def summary(incident: Mapping[str, Any], *, max_entities: int = 50, max_events: int = 20) -> dict[str, Any]:
    """The incident as a subscriber reads it: bounded in size whatever the incident's, with totals so a
    reader knows what was cut."""
    entities = [{"type": str(e.get("type") or "other"), "id": str(e.get("id"))} for e in incident.get("entities") or []]
    shown, omitted = timeline(incident, max_events)
    return {
        "id": str(incident.get("id") or ""),
        "title": title_of(incident),
        "severity": severity_of(incident),
        "rules": rules_of(incident),
        "first_seen": incident.get("first_seen"),
        "last_seen": incident.get("last_seen"),
        "entities": entities[:max_entities],
        "entities_total": len(entities),
        "timeline": shown,
        "events_total": len(shown) + omitted,
        "actions": actions_of(incident),
        "report": report_link(incident),
    }
