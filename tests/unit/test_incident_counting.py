"""Counting a signal in an incident keeps the same references and entities whatever the order the signals arrive
in, and whether the incident holds the very entity objects a signal names (the memory store) or equal copies
(a store that reads them back from its items)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from correlators.model import Actor, Entity, EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.signals import DESCRIPTIVE_CAP, SIGNALS_KEPT_AT_EACH_END, Incident, Signal, SignalRef

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _signal(n: int, rule: str = "r") -> Signal:
    """Two users take turns; each signal names two objects of its own and one shared one, and some share an
    instant (one-second event times) so that ties are ordered by rule and event id."""
    user = "alice" if n % 2 else "bob"
    objects = [f"s3://b/k{n}", f"s3://b/k{n}-copy", "s3://b/shared"]
    event = NormalizedEvent(
        event_id=f"e{n:04d}",
        time=T0 + timedelta(seconds=n // 3),
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        action="s3:GetObject",
        actor=Actor(principal=f"arn:aws:iam::111122223333:user/{user}", access_key=f"AKIA{user.upper():0<16}"),
        source_ip=f"192.0.2.{n % 7}",
        resources=[Resource(type=EntityType.OBJECT, id=key) for key in objects],
        raw={},
    )
    return Signal(rule=rule, title=rule, severity=Severity.HIGH, standalone=True, event=event)


def _incident() -> Incident:
    return Incident(
        id="inc-1",
        title="t",
        severity=Severity.HIGH,
        first_seen=T0,
        last_seen=T0,
        core_first=T0,
        core_last=T0,
        origin=(T0, "r|e0000", "r"),
    )


def _counted(signals: list[Signal]) -> Incident:
    incident = _incident()
    for signal in signals:
        incident.add_signal(signal)
    return incident


SIGNALS = [_signal(n, rule) for n in range(160) for rule in ("r", "q")]


def test_the_order_signals_arrive_in_changes_nothing_counted() -> None:
    in_order = _counted(SIGNALS)
    shuffled = list(SIGNALS)
    random.Random(8).shuffle(shuffled)
    assert _counted(shuffled) == in_order
    assert _counted(SIGNALS[::-1]) == in_order


def test_the_earliest_and_the_latest_references_are_kept_in_time_rule_and_event_order() -> None:
    shuffled = list(SIGNALS)
    random.Random(3).shuffle(shuffled)
    incident = _counted(shuffled)
    expected = sorted((s.time, s.rule, s.event.event_id) for s in SIGNALS)
    kept = expected[:SIGNALS_KEPT_AT_EACH_END] + expected[-SIGNALS_KEPT_AT_EACH_END:]
    assert [ref.order() for ref in incident.signals] == kept
    assert incident.signal_count == len(SIGNALS) and incident.rule_counts == {"r": 160, "q": 160}


def test_equal_entity_copies_count_as_the_entities_they_equal() -> None:
    """Past the cap too: the incident keeps every identity and the same descriptive entities either way."""
    shared = _counted(SIGNALS[:100])
    copied = _counted(SIGNALS[:100])
    copied.entities = [Entity(type=e.type, id=e.id) for e in copied.entities]
    assert all(a is not b for a, b in zip(shared.entities, copied.entities, strict=True))
    for signal in SIGNALS[100:]:
        shared.add_signal(signal)
        copied.add_signal(signal)
    assert copied == shared == _counted(SIGNALS)
    identities = [e for e in shared.entities if e.type in (EntityType.PRINCIPAL, EntityType.ACCESS_KEY)]
    assert len(identities) == 4
    assert len(shared.entities) == len(identities) + DESCRIPTIVE_CAP


def test_an_entity_named_twice_is_kept_once() -> None:
    incident = _incident()
    entity = Entity(type=EntityType.OBJECT, id="s3://b/k")
    incident._add_entities([entity, Entity(type=EntityType.OBJECT, id="s3://b/k"), entity])
    assert incident.entities == [entity]


def test_a_reference_is_built_as_validation_builds_it() -> None:
    for signal in SIGNALS[:6]:
        ref = SignalRef.of(signal)
        validated = SignalRef.model_validate(ref.model_dump())
        assert ref == validated
        assert list(ref.__dict__) == list(validated.__dict__)
        assert ref.model_fields_set == validated.model_fields_set
