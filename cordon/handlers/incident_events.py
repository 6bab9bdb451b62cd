"""The `Cordon Incident` event: what the correlator tells the runner (and anything else on Cordon's bus).

Sent for every incident version not handled yet: the ones this invocation changed (read back strongly
consistent) and the ones an earlier invocation changed but died before telling (the store's unhandled list). It
is marked handled only after PutEvents accepted it, so a crash in between sends it again: the runner's action
claims make a second delivery harmless. The event carries a summary; the runner reads the incident itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cordon import constants
from cordon.handlers import runtime

if TYPE_CHECKING:  # annotations only: the correlator handler's import stays light (cold start)
    from correlators.signals import Incident
    from correlators.state.base import StateStore

_ENTRIES_PER_CALL = 10  # PutEvents' limit


def incident_detail(incident: Incident) -> dict[str, Any]:
    """Small and stable: rules on Cordon's bus can filter on severity, rules and entity types."""
    return {
        "incident_id": incident.id,
        "version": incident.version,
        "title": incident.title,
        "severity": incident.severity.value,
        "rules": incident.rules,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "signal_count": incident.signal_count,
        "entity_types": sorted({e.type.value for e in incident.entities}),
    }


def entry(incident: Incident, bus: str) -> dict[str, Any]:
    return {
        "Source": constants.INCIDENT_EVENT_SOURCE,
        "DetailType": constants.INCIDENT_DETAIL_TYPE,
        "Detail": json.dumps(incident_detail(incident)),
        "EventBusName": bus,
        "Resources": [],
    }


def to_tell(store: StateStore, changed: Iterable[str]) -> list[Incident]:
    found: dict[str, Incident] = {}
    for incident_id in changed:
        incident = store.get_incident(incident_id)
        if incident is not None and incident.merged_into is None:
            found[incident.id] = incident
    for incident in store.unhandled_incidents():
        found.setdefault(incident.id, incident)
    return sorted(found.values(), key=lambda i: (i.first_seen, i.id))


def publish_changed(store: StateStore, changed: Iterable[str], bus: str) -> int:
    """Put one event per changed incident on the bus; how many were accepted."""
    incidents = to_tell(store, changed)
    events = runtime.client("events")
    accepted = 0
    for start in range(0, len(incidents), _ENTRIES_PER_CALL):
        batch = incidents[start : start + _ENTRIES_PER_CALL]
        response = events.put_events(Entries=[entry(incident, bus) for incident in batch])
        for incident, result in zip(batch, response["Entries"], strict=True):
            if "EventId" in result:  # a failed entry stays unhandled and is sent by the next invocation
                store.mark_handled(incident.id, incident.version)
                accepted += 1
    return accepted
