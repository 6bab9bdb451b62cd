"""GuardDuty attack sequences: the entities of `service.detection.sequence` resolved like any finding's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from correlators.config import Config
from correlators.ingest import RawRecord
from correlators.model import Entity, EntityType
from correlators.normalize import normalize

FIXTURES = Path(__file__).resolve().parents[2] / "correlators" / "rules" / "14_guardduty_attack_sequence.tests"


def _finding(name: str, line: int = -1) -> dict[str, Any]:
    events: list[dict[str, Any]] = [json.loads(text) for text in (FIXTURES / name).read_text().splitlines()]
    return events[line]


def _entities(payload: dict[str, Any]) -> set[tuple[str, str]]:
    [event] = normalize(RawRecord(payload=payload, where="test:1"), Config())
    return {(e.type.value, e.id) for e in event.entities()}


def test_an_iam_sequence_names_its_actors_user_and_key() -> None:
    event = _finding("positive.jsonl")
    assert "accessKeyDetails" not in json.dumps(event)  # only the sequence says who
    [normalized] = normalize(RawRecord(payload=event, where="test:1"), Config())
    assert normalized.actor is not None
    assert normalized.actor.principal == "arn:aws:iam::111122223333:user/ml-contractor"
    assert normalized.actor.access_key == "AKIAIOSFODNN7CONTRAC"
    assert normalized.source_ip == "198.51.100.23"  # the sequence's endpoint


def test_an_s3_sequence_names_the_role_its_session_key_and_the_bucket() -> None:
    entities = _entities(_finding("positive_joins.jsonl"))
    assert {
        ("principal", "arn:aws:iam::111122223333:role/etl-role"),
        ("access_key", "ASIAQETLROLEEXAMPLE1"),
        ("session", "arn:aws:sts::111122223333:assumed-role/etl-role/exfil-session"),
        ("bucket", "arn:aws:s3:::acme-fraud-training"),
        ("source_ip", "203.0.113.77"),
    } <= entities


def test_every_actor_is_an_identity_not_only_the_first() -> None:
    event = _finding("positive.jsonl")
    sequence = event["detail"]["service"]["detection"]["sequence"]
    second = json.loads(json.dumps(sequence["actors"][0]))
    second["user"].update(name="ml-intern", uid="AIDAEXAMPLEINTERN001", credentialUid="AKIAIOSFODNN7INTERN1")
    sequence["actors"].append(second)
    entities = _entities(event)
    assert ("principal", "arn:aws:iam::111122223333:user/ml-intern") in entities
    assert ("access_key", "AKIAIOSFODNN7INTERN1") in entities
    assert ("principal", "arn:aws:iam::111122223333:user/ml-contractor") in entities


def test_an_ordinary_finding_is_unchanged_by_the_sequence_reading() -> None:
    # A finding with accessKeyDetails and no sequence keeps its actor, and gains no entity.
    recon = _finding("negative.jsonl", 1)
    entities = _entities(recon)
    assert Entity(type=EntityType.ACCESS_KEY, id="AKIAIOSFODNN7CONTRAC").key in {f"{t}:{i}" for t, i in entities}
    assert {t for t, _ in entities} == {"principal", "access_key", "account"}
