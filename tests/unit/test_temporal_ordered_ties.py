"""`temporal_ordered` on event time: signals of one instant count as in order (CloudTrail times have one-second
resolution, so a read and a download in the same second are common), whatever their ids and arrival order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cordon.replay import load_ruleset, replay
from correlators import streak
from correlators.config import load_config

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "correlators" / "rules" / "01_training_read_then_model_download.tests" / "positive.jsonl"
CONFIG = load_config(REPO / "examples" / "cordon.yaml")
RULESET = load_ruleset(CONFIG)
RULE = "ml_training_read_then_model_download"

RECORDS = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
READ, DOWNLOAD = RECORDS[0], RECORDS[3]  # a training read at 14:00:21, the model download at 14:20:33


def _pair(download_time: str, download_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    download = {**DOWNLOAD, "eventTime": download_time, "eventID": download_id}
    return READ, download


def _raised(tmp_path: Path, records: list[dict[str, Any]]) -> list[str]:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = replay([str(path)], CONFIG, RULESET)
    assert result.rejected == []
    return [i.severity.value for i in result.incidents if RULE in i.rules]


# Event ids on both sides of the read's (3dee1f69-...), so the signal ids tie-break both ways.
IDS = [f"{prefix}-0000-4000-8000-000000000001" for prefix in ("00000000", "3dee1f69", "ffffffff", "8a8a8a8a")]


@pytest.mark.parametrize("shortcut", [True, False], ids=["streak", "full-read"])
@pytest.mark.parametrize("arrival", ["read-first", "download-first"])
@pytest.mark.parametrize("download_id", IDS)
def test_a_read_and_a_download_in_the_same_second_raise_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shortcut: bool, arrival: str, download_id: str
) -> None:
    # GIVEN a training read and a model download by one principal in the same CloudTrail second
    read, download = _pair(READ["eventTime"], download_id)
    records = [read, download] if arrival == "read-first" else [download, read]
    if not shortcut:
        monkeypatch.setattr(streak, "decide", lambda *args, **kwargs: None)
    # WHEN they are replayed, THEN the ordered correlation holds: a tie is in order
    assert _raised(tmp_path, records) == ["high"]


@pytest.mark.parametrize("arrival", ["read-first", "download-first"])
def test_a_download_one_second_before_the_read_raises_nothing(tmp_path: Path, arrival: str) -> None:
    read, download = _pair("2026-11-18T14:00:20Z", IDS[2])
    records = [read, download] if arrival == "read-first" else [download, read]
    assert _raised(tmp_path, records) == []
