"""The benchmark's event streams, as the JSON lines a correlator reads: real records replicated hour after hour,
and a seeded synthetic ML workload beside them.

Each hour of a stream holds:

- every real CloudTrail record of the samples (invictus-aws_dataset: 2,900 records of one account, recorded while
  Stratus Red Team ran; and the 310 records of the Stratus detonation logs), with a fresh event id and its time
  moved into that hour. The invictus capture spans 55 minutes and keeps its own timing; each detonation file
  keeps its order and is squeezed into ten minutes, the files staggered across the hour. Identities (users,
  roles, keys, addresses) are kept, so the same principals recur hour after hour, as in a real account;
- a synthetic ML workload, seeded per hour: training-data reads by 300 principals, model downloads and
  inference calls by 20 serving roles, one principal (`hoarder`) reading training objects steadily (10,000
  distinct ones over the 1x stream, the same ones again beyond it), and three embedded attacks that the built-in
  rules turn into incidents: training data read then a model downloaded (rule 01), a trail stopped by a principal
  that just touched training data (rule 05), an access key created for another user who then reads training
  data (rule 06).

Times start at `STREAM_START`, in the past, so no event runs ahead of the clock the pipeline checks.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.paths import INVICTUS, STRATUS, require

STREAM_START = datetime(2026, 11, 1, tzinfo=UTC)
HOURS_1X = 6  # about 37,000 events: with today's core, the 4x run in a fresh process keeps `make bench` in 15 minutes
HOARDER_OBJECTS = 10_000  # distinct objects the hoarder reads over the 1x stream
_ACCOUNT = "111122223333"
_TRAINING_BUCKET = "acme-fraud-training"  # examples/cordon.yaml: training_data
_MODEL_BUCKET = "acme-model-registry"  # examples/cordon.yaml: model_artifacts
_ID_NAMESPACE = uuid.UUID("6f1d2c8e-3a5b-4c7d-9e0f-1a2b3c4d5e6f")
_STRATUS_SPREAD = 600.0  # seconds a detonation file is squeezed into
_READS_PER_HOUR = 1_400
_DOWNLOADS_PER_HOUR = 250
_INFERENCE_PER_HOUR = 100
_READERS = 300
_SERVING_ROLES = 20

Timed = tuple[float, dict[str, Any]]  # seconds after the hour starts, the record


@dataclass(frozen=True)
class Stream:
    lines: list[bytes]  # one compact JSON record per line, newline-terminated
    hours: int

    @property
    def events(self) -> int:
        return len(self.lines)

    def data(self) -> bytes:
        return b"".join(self.lines)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _invictus() -> list[Timed]:
    records: list[dict[str, Any]] = []
    for path in require(INVICTUS, "invictus-aws_dataset CloudTrail log files", "*.json"):
        records += json.loads(path.read_text())["Records"]
    start = min(_parse_time(r["eventTime"]) for r in records)
    return [((_parse_time(r["eventTime"]) - start).total_seconds(), r) for r in records]


def _stratus() -> list[Timed]:
    files = require(STRATUS, "Stratus Red Team detonation logs", "*.json")
    timed: list[Timed] = []
    for index, path in enumerate(files):
        records = sorted(json.loads(path.read_text()), key=lambda r: r["eventTime"])
        offset = (index * 97.0) % (3600.0 - _STRATUS_SPREAD)
        step = _STRATUS_SPREAD / max(len(records), 1)
        timed += [(offset + rank * step, record) for rank, record in enumerate(records)]
    return timed


def real_records() -> list[Timed]:
    """The samples' records with their place in an hour (read once, replicated per hour)."""
    return _invictus() + _stratus()


# --- the synthetic ML workload --------------------------------------------------------------------------------------
def _iam_user(name: str) -> dict[str, Any]:
    key = "AKIA" + uuid.uuid5(_ID_NAMESPACE, name).hex[:16].upper()
    arn = f"arn:aws:iam::{_ACCOUNT}:user/{name}"
    return {"type": "IAMUser", "arn": arn, "accountId": _ACCOUNT, "userName": name, "accessKeyId": key}


def _assumed_role(role: str, session: str) -> dict[str, Any]:
    key = "ASIA" + uuid.uuid5(_ID_NAMESPACE, f"{role}/{session}").hex[:16].upper()
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{_ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": _ACCOUNT,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{_ACCOUNT}:role/{role}",
                "accountId": _ACCOUNT,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-11-01T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def _call(identity: dict[str, Any], source: str, name: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestParameters": parameters,
        "responseElements": None,
        "readOnly": name.startswith(("Get", "List", "Describe", "Invoke")),
        "eventType": "AwsApiCall",
        "managementEvent": source != "s3.amazonaws.com",
        "recipientAccountId": _ACCOUNT,
        "eventCategory": "Management" if source != "s3.amazonaws.com" else "Data",
    }


def _get_object(identity: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    return _call(identity, "s3.amazonaws.com", "GetObject", {"bucketName": bucket, "key": key})


def _reader(rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(_READERS)
    return _iam_user(f"analyst-{n}") if n < 200 else _assumed_role(f"DataScience-{n % 10}", f"ds-{n}")


def _training_key(n: int) -> str:
    return f"datasets/part-{n:05d}.parquet"


def _attacks(hour: int, rng: random.Random) -> list[Timed]:
    at = rng.uniform(300, 3000)
    thief = _iam_user(f"contractor-{hour % 5}")
    theft = [(at + i, _get_object(thief, _TRAINING_BUCKET, _training_key(rng.randrange(5000)))) for i in range(3)]
    theft.append((at + 300, _get_object(thief, _MODEL_BUCKET, "models/fraud-v7/model.tar.gz")))

    at = rng.uniform(300, 3000)
    ops = _assumed_role("MLOps", f"ops-{hour}")
    trail = f"arn:aws:cloudtrail:us-east-1:{_ACCOUNT}:trail/management"
    evasion = [
        (at, _get_object(ops, _TRAINING_BUCKET, _training_key(rng.randrange(5000)))),
        (at + 120, _call(ops, "cloudtrail.amazonaws.com", "StopLogging", {"name": trail})),
    ]

    at = rng.uniform(300, 3000)
    admin, target = _iam_user(f"admin-{hour % 3}"), _iam_user(f"svc-backdoor-{hour}")
    create = _call(admin, "iam.amazonaws.com", "CreateAccessKey", {"userName": target["userName"]})
    create["responseElements"] = {
        "accessKey": {"accessKeyId": target["accessKeyId"], "status": "Active", "userName": target["userName"]}
    }
    backdoor = [(at, create), (at + 600, _get_object(target, _TRAINING_BUCKET, _training_key(rng.randrange(5000))))]
    return theft + evasion + backdoor


def synthetic_hour(hour: int, seed: int = 8) -> list[Timed]:
    rng = random.Random(seed * 1_000_003 + hour)  # noqa: S311 - a seeded, reproducible workload, not a secret
    timed: list[Timed] = []
    for _ in range(_READS_PER_HOUR):
        record = _get_object(_reader(rng), _TRAINING_BUCKET, _training_key(rng.randrange(5000)))
        timed.append((rng.uniform(0, 3600), record))
    for _ in range(_DOWNLOADS_PER_HOUR):
        role = _assumed_role(f"InferenceServing-{rng.randrange(_SERVING_ROLES)}", "serving")
        timed.append(
            (rng.uniform(0, 3600), _get_object(role, _MODEL_BUCKET, f"models/fraud-v{rng.randrange(8)}/model.tar.gz"))
        )
    for _ in range(_INFERENCE_PER_HOUR):
        role = _assumed_role(f"InferenceServing-{rng.randrange(_SERVING_ROLES)}", "serving")
        call = _call(role, "runtime.sagemaker.amazonaws.com", "InvokeEndpoint", {"endpointName": "fraud-scoring"})
        timed.append((rng.uniform(0, 3600), call))
    hoarder = _iam_user("hoarder")
    # Hour h of every 1x span reads its share of the objects: all 10,000 once per 1x, evenly over the hour.
    span_hour = hour % HOURS_1X
    objects = range(span_hour * HOARDER_OBJECTS // HOURS_1X, (span_hour + 1) * HOARDER_OBJECTS // HOURS_1X)
    for i, n in enumerate(objects):
        at = i * 3600 / len(objects)
        timed.append((at, _get_object(hoarder, _TRAINING_BUCKET, f"datasets/obj-{n:06d}.parquet")))
    return timed + _attacks(hour, rng)


# --- the stream -----------------------------------------------------------------------------------------------------
def _stamped(hour: int, index: int, offset: float, record: dict[str, Any]) -> dict[str, Any]:
    stamped = dict(record)  # only top-level keys change: the nested values are shared, never modified
    stamped["eventID"] = str(uuid.uuid5(_ID_NAMESPACE, f"{hour}:{index}"))
    stamped["eventTime"] = (STREAM_START + timedelta(hours=hour, seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamped


def hour_records(hour: int, real: list[Timed], synthetic: bool = True) -> Iterator[dict[str, Any]]:
    """One hour of the stream in time order (ties in the samples' own order)."""
    timed = real + (synthetic_hour(hour) if synthetic else [])
    order = sorted(range(len(timed)), key=lambda i: timed[i][0])
    for index in order:
        offset, record = timed[index]
        yield _stamped(hour, index, offset, record)


def build(hours: int = HOURS_1X, synthetic: bool = True) -> Stream:
    real = real_records()
    lines = [
        json.dumps(record, separators=(",", ":")).encode() + b"\n"
        for hour in range(hours)
        for record in hour_records(hour, real, synthetic)
    ]
    return Stream(lines, hours)


def write(stream: Stream, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stream.data())
    return path
