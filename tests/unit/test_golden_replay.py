"""`cordon replay --output json` is byte-identical to the outputs pinned in tests/golden/.

The core is tuned for speed (a rule index, cheap incident copies, batched SQLite commits); none of that may change
a single incident, count or action. The goldens cover the demo scenarios and every sample in ../shared/samples
with the SigmaHQ CloudTrail rules, in memory and on SQLite, and a replicated real-CloudTrail stream in which
identities recur and one principal reads a thousand training objects (one incident far past its caps), in
memory, on SQLite, and on SQLite in two runs.

A deliberate change of behaviour (a rule edited, a new field in the output) regenerates them:
`CORDON_UPDATE_GOLDEN=1 pytest tests/unit/test_golden_replay.py`, and the diff of tests/golden/ is reviewed with it.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cordon.cli import main

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
CONFIG = ["--config", "examples/cordon.yaml"]
SIGMAHQ = ["--rules", "../shared/samples/sigmahq-sigma/rules/cloud/aws/cloudtrail"]
STREAM_HOURS = 3
BUSY_READS = 1000


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["replay", *args, "--output", "json"]) == 0
    return capsys.readouterr().out


def _check(name: str, output: str) -> None:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("CORDON_UPDATE_GOLDEN") == "1":
        path.write_text(output, encoding="utf-8")
    assert output == path.read_text(encoding="utf-8"), f"replay output differs from {path}"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # relative paths: the `where` of rejections is the same on every checkout


def test_demo_scenarios(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    memory = _replay(capsys, "examples/scenarios", *CONFIG)
    _check("scenarios", memory)
    assert _replay(capsys, "examples/scenarios", *CONFIG, "--state", f"sqlite:///{tmp_path}/s.db") == memory


def test_samples(capsys: pytest.CaptureFixture[str], tmp_path: Path, samples: Path) -> None:
    memory = _replay(capsys, "../shared/samples", *CONFIG, *SIGMAHQ)
    _check("samples", memory)
    sqlite = _replay(capsys, "../shared/samples", *CONFIG, *SIGMAHQ, "--state", f"sqlite:///{tmp_path}/s.db")
    assert sqlite == memory


def test_replicated_stream(capsys: pytest.CaptureFixture[str], tmp_path: Path, samples: Path) -> None:
    # GIVEN the real CloudTrail records replayed hour after hour with fresh ids, and a principal reading
    # distinct training objects all along, split in two files
    lines = _replicated_stream(samples)
    whole, first, second = tmp_path / "all.jsonl", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    whole.write_text("".join(lines), encoding="utf-8")
    first.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    second.write_text("".join(lines[len(lines) // 2 :]), encoding="utf-8")
    # WHEN it is replayed in memory, on SQLite, and on SQLite in two runs
    memory = _replay(capsys, str(whole), *CONFIG, *SIGMAHQ)
    sqlite = _replay(capsys, str(whole), *CONFIG, *SIGMAHQ, "--state", f"sqlite:///{tmp_path}/one.db")
    state = f"sqlite:///{tmp_path}/two.db"
    _replay(capsys, str(first), *CONFIG, *SIGMAHQ, "--state", state)
    continued = _replay(capsys, str(second), *CONFIG, *SIGMAHQ, "--state", state)
    # THEN every output is the pinned one (file names differ per run: they are left out)
    _check("stream", memory)
    assert sqlite == memory
    _check("stream_continued", continued)


def _replicated_stream(samples: Path) -> list[str]:
    records = []
    for path in sorted((samples / "invictus-aws_dataset" / "CloudTrail").glob("*.json")):
        records += json.loads(path.read_text(encoding="utf-8"))["Records"]
    for path in sorted((samples / "datadog-stratus-red-team" / "docs" / "detonation-logs").glob("*.json")):
        records += json.loads(path.read_text(encoding="utf-8"))
    records.sort(key=lambda record: str(record["eventTime"]))
    start = datetime(2025, 3, 1, tzinfo=UTC)
    timed: list[tuple[datetime, str]] = []
    for hour in range(STREAM_HOURS):
        for n, record in enumerate(records):
            time = start + timedelta(hours=hour, seconds=3600 * n / len(records))
            copy = {**record, "eventID": str(uuid.UUID(int=(hour << 32) + n)), "eventTime": _stamp(time)}
            timed.append((time, json.dumps(copy)))
    for n in range(BUSY_READS):
        time = start + timedelta(seconds=STREAM_HOURS * 3600 * n / BUSY_READS)
        timed.append((time, json.dumps(_training_read(n, time))))
    timed.sort(key=lambda pair: pair[0])
    return [line + "\n" for _, line in timed]


def _stamp(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


def _training_read(n: int, time: datetime) -> dict[str, object]:
    return {
        "eventVersion": "1.09",
        "eventID": str(uuid.UUID(int=(1 << 60) + n)),
        "eventTime": _stamp(time),
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/hoarder",
            "accountId": "111122223333",
            "userName": "hoarder",
            "accessKeyId": "AKIAHOARDER000000001",
        },
        "requestParameters": {"bucketName": "acme-fraud-training", "key": f"datasets/obj-{n:06d}.parquet"},
        "eventCategory": "Data",
    }
