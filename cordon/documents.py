"""The incident as a document: what `cordon replay --output json` prints, playbooks plan on, notifications tell
and the runner hands its responders. Light on purpose: the runner imports it at cold start."""

from __future__ import annotations

from typing import Any

from correlators.signals import Incident


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "rules": incident.rules,
        "severity": incident.severity.value,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "entities": [{"type": e.type.value, "id": e.id} for e in incident.entities],
        "signals": [
            {
                "rule": s.rule,
                "event_id": s.event_id,
                "time": s.time.isoformat(),
                "source": s.source,
                "principal": s.principal,
                "object_version": s.object_version,
            }
            for s in incident.signals
        ],
        # Past the cap `signals` holds the earliest and the latest; these count every one of them.
        "signal_count": incident.signal_count,
        "rule_counts": dict(sorted(incident.rule_counts.items())),
        "actions": [],
    }
