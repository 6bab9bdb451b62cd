"""An unlucky operator: `cordon replay` killed with SIGKILL half-way through a stream, then run again on the whole
of it with the same SQLite state. Nothing is lost and nothing counts twice: the rerun gives exactly the incidents
of one clean run, and reports (and plans) the incidents the killed run changed but never handled."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from correlators.config import load_config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.normalize import normalize

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "cordon.yaml"
CORDON = [sys.executable, "-m", "cordon.cli"]


def _stream(path: Path) -> list[str]:
    """The scenarios and every rule fixture as one JSON-lines stream, in event-time order (the fixtures span
    years: in file order, most would be older than the state's horizon and rejected)."""
    config = load_config(CONFIG)
    timed = []
    for item in read_inputs([str(REPO / "examples" / "scenarios"), str(REPO / "correlators" / "rules")]):
        if isinstance(item, RawRecord):
            try:
                timed.append((min(event.time for event in normalize(item, config)), item.payload))
            except EventRejectedError:
                continue  # bad input on purpose in some fixtures: not what this test is about
    records = [payload for _, payload in sorted(timed, key=lambda pair: pair[0])]
    lines = [json.dumps(record) + "\n" for record in records]
    path.write_text("".join(lines))
    return lines


def _incidents(output: str) -> dict[str, Any]:
    return {
        incident["id"]: (
            incident["severity"],
            incident["rules"],
            incident["signal_count"],
            sorted((s["rule"], s["event_id"]) for s in incident["signals"]),
        )
        for incident in json.loads(output)["incidents"]
    }


def _replay(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [*CORDON, "replay", *args, "--config", str(CONFIG), "--output", "json"]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True, cwd=REPO)


def _seen(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM events_seen").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_replay_killed_mid_stream_and_rerun_gives_the_incidents_of_one_clean_run(tmp_path: Path) -> None:
    # GIVEN the whole stream, and the incidents of one clean run over it
    stream = tmp_path / "stream.jsonl"
    lines = _stream(stream)
    assert len(lines) > 150
    clean = _incidents(_replay(str(stream)).stdout)
    assert len(clean) >= 3
    # WHEN a replay on SQLite state is fed the first two thirds and killed with SIGKILL while it works
    database = tmp_path / "state.db"
    state = f"sqlite:///{database}"
    command = [*CORDON, "replay", "-", "--state", state, "--config", str(CONFIG), "--output", "json"]
    victim = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, text=True)
    assert victim.stdin is not None
    cut = 2 * len(lines) // 3
    victim.stdin.writelines(lines[:cut])
    victim.stdin.flush()
    deadline = time.monotonic() + 60
    while _seen(database) < cut // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    processed = _seen(database)
    # THEN it died mid-stream (some events done, not all of them)
    assert victim.returncode == -signal.SIGKILL
    assert 0 < processed < len(lines)
    # WHEN the whole stream is replayed again on the same state
    rerun = json.loads(_replay(str(stream), "--state", state).stdout)
    # THEN the incidents are exactly those of the clean run: none lost, no signal counted twice; every one is
    # reported, those only the killed run changed included (it never handled them)
    assert _incidents(json.dumps(rerun)) == clean
    assert rerun["stats"]["duplicates"] >= processed - 1  # the one in flight when killed may not be marked yet
    # AND a third run has nothing left to handle and changes nothing
    third = json.loads(_replay(str(stream), "--state", state).stdout)
    assert third["incidents"] == []
    # (what its restored watermark puts beyond the state's horizon is refused as too late, never counted again)
    stats = third["stats"]
    assert stats["duplicates"] == stats["accepted"] > 100 and stats["signals"] == 0
    assert stats["accepted"] + stats["rejected"] == stats["events_read"] == len(lines)
    assert all("older than the state's horizon" in r["reason"] for r in third["rejected"])
