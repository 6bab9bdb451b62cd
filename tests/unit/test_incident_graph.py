"""Incidents grow, merge and stay apart the way an analyst expects, and state stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cordon.documents import incident_json
from correlators.config import Config, CorrelationConfig
from correlators.incidents import IncidentGraph
from correlators.model import Actor, EntityType, EventSource, Finding, NormalizedEvent, Resource, Severity
from correlators.pipeline import Pipeline
from correlators.sigma.rules import RuleSet
from correlators.signals import SIGNALS_KEPT_AT_EACH_END, Incident, Signal
from correlators.state import MemoryStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BUCKET = "arn:aws:s3:::acme-fraud-training"


def _event(minute: int, user: str, event_id: str, ip: str = "192.0.2.10") -> NormalizedEvent:
    return NormalizedEvent(
        event_id=event_id,
        time=T0 + timedelta(minutes=minute),
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        action="s3:GetObject",
        actor=Actor(principal=f"arn:aws:iam::111122223333:user/{user}", access_key=f"AKIA{user.upper():0<16}"),
        source_ip=ip,
        resources=[Resource(type=EntityType.BUCKET, id=BUCKET)],
        raw={},
    )


def _signal(event: NormalizedEvent, rule: str = "r", severity: Severity = Severity.HIGH) -> Signal:
    return Signal(rule=rule, title=rule, severity=severity, standalone=True, event=event)


class _Graph:
    """The incident graph over a store, giving back the incidents it raised as the store holds them."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.graph = IncidentGraph(self.store, timedelta(hours=1))

    def raise_incident(self, rule: str, title: str, severity: Severity, signals: list[Signal]) -> Incident:
        incident = self.store.get_incident(self.graph.raise_incident(rule, title, severity, signals))
        assert incident is not None
        return incident


def test_principals_sharing_a_bucket_and_an_ip_stay_in_separate_incidents() -> None:
    graph = _Graph()
    attacker = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(0, "mallory", "e1"))])
    analyst = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(1, "alice", "e2"))])
    assert attacker.id != analyst.id
    assert {e.id for e in analyst.entities} >= {BUCKET, "192.0.2.10"}  # described, not linked


def test_a_new_signal_of_the_same_identity_updates_the_incident_and_raises_its_severity() -> None:
    graph = _Graph()
    first = graph.raise_incident("low_rule", "first", Severity.MEDIUM, [_signal(_event(0, "mallory", "e1"))])
    second = graph.raise_incident("high_rule", "worse", Severity.CRITICAL, [_signal(_event(20, "mallory", "e2"))])
    assert second.id == first.id
    assert (second.severity, second.title, second.rules) == (Severity.CRITICAL, "worse", ["high_rule", "low_rule"])
    assert [s.event_id for s in second.signals] == ["e1", "e2"]


def test_outside_the_incident_window_the_same_identity_opens_a_new_incident() -> None:
    graph = _Graph()
    first = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(0, "mallory", "e1"))])
    later = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(180, "mallory", "e2"))])
    assert later.id != first.id


def test_a_signal_naming_two_incidents_merges_them_into_the_oldest() -> None:
    graph = _Graph()
    store = graph.store
    older = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(0, "mallory", "e1"))])
    newer = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(5, "trent", "e2"))])
    both = [_signal(_event(10, "mallory", "e3")), _signal(_event(10, "trent", "e4"))]
    merged = graph.raise_incident("pair", "t", Severity.CRITICAL, both)
    assert merged.id == older.id
    assert store.get_incident(newer.id).merged_into == older.id
    assert [i.id for i in store.incidents()] == [older.id]
    assert {s.event_id for s in merged.signals} == {"e1", "e2", "e3", "e4"}


def test_a_raise_earlier_than_the_incidents_it_joins_opens_the_survivor_they_merge_into() -> None:
    # GIVEN an incident opened at minute 20, and a late raise for the same identity dated minute 5
    graph = _Graph()
    later = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(20, "mallory", "e2"))])
    earlier = graph.raise_incident("r", "t", Severity.HIGH, [_signal(_event(5, "mallory", "e1"))])
    # THEN the incident is the one the sorted stream would have opened, and the first one points to it
    assert earlier.id != later.id
    assert graph.store.get_incident(later.id).merged_into == earlier.id
    assert earlier.signal_count == 2
    in_order = _Graph()
    in_order.raise_incident("r", "t", Severity.HIGH, [_signal(_event(5, "mallory", "e1"))])
    assert in_order.raise_incident("r", "t", Severity.HIGH, [_signal(_event(20, "mallory", "e2"))]).id == earlier.id


def test_one_principal_reading_thousands_of_objects_keeps_a_bounded_incident() -> None:
    graph = _Graph()
    incident = None
    for n in range(3_000):
        event = _event(n // 200, "mallory", f"e{n}")
        event = event.model_copy(update={"resources": [Resource(type=EntityType.OBJECT, id=f"s3://b/k{n}")]})
        incident = graph.raise_incident("bulk", "t", Severity.MEDIUM, [_signal(event, "bulk", Severity.MEDIUM)])
    assert incident is not None
    assert incident.signal_count == 3_000 and incident.rule_counts == {"bulk": 3_000}
    assert len(incident.signals) == 2 * SIGNALS_KEPT_AT_EACH_END
    assert [s.event_id for s in incident.signals[:2]] == ["e0", "e1"]
    assert incident.signals[-1].event_id == "e2999"
    assert len(incident.model_dump_json()) < 64 * 1024


def _finding(minute: int, user: str, event_id: str) -> NormalizedEvent:
    """A low-severity finding: a signal of its own that opens no incident, so only state grows."""
    finding = Finding(type="Recon:IAMUser/MaliciousIPCaller", product="guardduty", severity=Severity.LOW)
    return _event(minute, user, event_id).model_copy(update={"source": EventSource.GUARDDUTY, "finding": finding})


def test_state_is_bounded_by_a_cap_that_evicts_the_stalest_and_counts_them() -> None:
    config = Config(correlation=CorrelationConfig(max_state_entries=100))
    pipeline = Pipeline(config, RuleSet(), MemoryStore())
    for n in range(1200):  # all within one window, so nothing expires: only the cap bounds the state
        pipeline.submit(_finding(n // 100, f"user{n}", f"e{n}"))
    pipeline.flush()
    assert pipeline.stats.signals == 1200
    assert pipeline.store.signal_count() <= 100 + 500  # the cap, plus at most one housekeeping interval
    assert pipeline.stats.evicted >= 1200 - 600


def test_signals_expire_once_no_window_can_reach_them() -> None:
    pipeline = Pipeline(Config(), RuleSet(), MemoryStore())
    for hour in range(12):
        pipeline.submit(_finding(hour * 60, "mallory", f"e{hour}"))
    pipeline.flush()
    assert pipeline.stats.expired > 0
    assert pipeline.store.signal_count() < 12


def test_each_signal_reference_says_who_acted() -> None:
    # A playbook acts on the principal of one rule's signals (the writer, not the job that read what it wrote).
    graph = _Graph()
    writer, reader = _signal(_event(0, "writer", "e1")), _signal(_event(5, "pipeline", "e2"))
    incident = graph.raise_incident("r", "t", Severity.HIGH, [writer, reader])
    assert [(s.event_id, s.principal) for s in incident.signals] == [
        ("e1", "arn:aws:iam::111122223333:user/writer"),
        ("e2", "arn:aws:iam::111122223333:user/pipeline"),
    ]
    assert incident_json(incident)["signals"][0]["principal"] == "arn:aws:iam::111122223333:user/writer"


def test_a_write_signal_names_the_object_version_it_created() -> None:
    # S3 does not record who wrote a version; CloudTrail's answer does (x-amz-version-id), and restoring training
    # data skips the versions the incident's writers created.
    put = _event(0, "writer", "e1").model_copy(
        update={
            "action": "s3:PutObject",
            "raw": {
                "requestParameters": {"bucketName": "acme-fraud-training", "key": "datasets/a?b.parquet"},
                "responseElements": {"x-amz-version-id": "3HL4kqtJ"},
            },
        }
    )
    unversioned = put.model_copy(update={"event_id": "e2", "raw": {**put.raw, "responseElements": None}})
    read = _event(1, "writer", "e3")
    incident = _Graph().raise_incident("r", "t", Severity.HIGH, [_signal(put), _signal(unversioned), _signal(read)])
    assert [s.object_version for s in incident.signals] == [
        "s3://acme-fraud-training/datasets/a?b.parquet?versionId=3HL4kqtJ",
        None,
        None,
    ]
    assert incident_json(incident)["signals"][0]["object_version"].endswith("?versionId=3HL4kqtJ")
