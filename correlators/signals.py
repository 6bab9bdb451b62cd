"""Signals (one detection on one event) and incidents (connected signals and the entities they name)."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property

from pydantic import BaseModel, Field

from correlators.model import Entity, NormalizedEvent, Severity


class Signal(BaseModel):
    """A rule matched an event, or a finding or alarm arrived: one node of the incident graph."""

    rule: str  # Sigma rule name (or id), or the implicit source rule: "guardduty", "securityhub", "cloudwatch-alarm"
    title: str
    severity: Severity
    # Opens an incident by itself (from `standalone_min_severity` up). False for detection rules that only feed
    # correlation rules, as Sigma's `generate: false` says.
    standalone: bool
    event: NormalizedEvent

    # Cached: correlation sorts and compares signals by these many times per event. A signal is never changed.
    @cached_property
    def id(self) -> str:
        return f"{self.rule}|{self.event.event_id}|{self.event.time.isoformat()}"

    @property
    def time(self) -> datetime:
        return self.event.time

    @cached_property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.event.time, self.id)


class SignalRef(BaseModel):
    """What an incident keeps of each of its signals."""

    rule: str
    event_id: str
    time: datetime
    source: str
    what: str = ""  # the API call, finding type or alarm, for people reading a timeline
    origin: str = ""

    @classmethod
    def of(cls, signal: Signal) -> SignalRef:
        event = signal.event
        what = (event.finding.type if event.finding else event.action) or ""
        if event.alarm is not None:
            what = f"alarm {event.alarm.name}"
        return cls(
            rule=signal.rule,
            event_id=event.event_id,
            time=event.time,
            source=event.source,
            what=what,
            origin=event.origin,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.event_id)


class Incident(BaseModel):
    id: str
    title: str
    rules: list[str] = Field(default_factory=list)  # rules that raised it (correlation or standalone), in order
    severity: Severity
    first_seen: datetime
    last_seen: datetime
    entities: list[Entity] = Field(default_factory=list)
    signals: list[SignalRef] = Field(default_factory=list)
    # Entity keys that tie signals to this incident (identities; a correlation's group entity; the resource of
    # an alarm that names no identity). The other entities only describe it.
    links: list[str] = Field(default_factory=list)
    merged_into: str | None = None  # set when a later signal proved two incidents one; the survivor keeps its id
    updated_seq: int = 0  # bumped on every change, so a shell can tell which incidents a run touched

    def add_signal(self, signal: Signal) -> bool:
        """Add one signal and its entities; False when it was already part of the incident."""
        ref = SignalRef.of(signal)
        if any(existing.key == ref.key for existing in self.signals):
            return False
        self.signals.append(ref)
        self.signals.sort(key=lambda s: (s.time, s.rule, s.event_id))
        known = {entity.key for entity in self.entities}
        for entity in signal.event.entities():
            if entity.key not in known:
                self.entities.append(entity)
                known.add(entity.key)
        self.first_seen = min(self.first_seen, signal.time)
        self.last_seen = max(self.last_seen, signal.time)
        return True

    def raise_by(self, rule: str, severity: Severity) -> None:
        if rule not in self.rules:
            self.rules.append(rule)
        if severity.rank > self.severity.rank:
            self.severity = severity
