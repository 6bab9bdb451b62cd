"""A state file written by the Cordon before SQLite schema 4 (schema 3) is upgraded when it is opened, in one
transaction, and the replay goes on from its state exactly as it would have from a schema 4 file. The schema 3
file is made the way that Cordon wrote it: its DDL (kept below, as it was) over the rows of a real replay."""

from __future__ import annotations

import json
import sqlite3
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from cordon.cli import main
from correlators.state import sqlite_upgrade
from correlators.state.sqlite import SqliteStore
from tests.processes import SPAWN, exit_codes

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
FIRST = [str(SCENARIOS / "01_cloudtrail_logfile_0900-0935.json"), str(SCENARIOS / "02_eventbridge_0940-1020.jsonl")]
REST = [str(SCENARIOS / "03_mixed_1031-1127.jsonl"), str(SCENARIOS / "04_cloudtrail_records_1129-1131.json")]

# Schema 3's signals table and the index schema 4 dropped; every other table is the same in both.
_BACK_TO_SCHEMA_3 = """
BEGIN;
CREATE TABLE signals_3 (id TEXT PRIMARY KEY, time REAL NOT NULL, expires REAL NOT NULL, body TEXT NOT NULL);
INSERT INTO signals_3 SELECT id, time, expires, body FROM signals;
DROP TABLE signals;
ALTER TABLE signals_3 RENAME TO signals;
CREATE INDEX signals_by_time ON signals (time);
CREATE INDEX signals_by_expiry ON signals (expires);
CREATE INDEX partitions_by_signal ON signal_partitions (signal_id);
UPDATE meta SET value = '3' WHERE key = 'schema_version';
COMMIT;
"""


def _replay(paths: list[str], state: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["replay", *paths, "--output", "json", "--state", f"sqlite:///{state}"]) == 0
    return capsys.readouterr().out


def _schema_3_file(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _replay(FIRST, path, capsys)
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_BACK_TO_SCHEMA_3)
    db.close()


def _layout(path: Path) -> tuple[str, list[str], set[str]]:
    db = sqlite3.connect(path)
    try:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        columns = [row[1] for row in db.execute("PRAGMA table_info(signals)")]
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()
    return version, columns, indexes


def test_a_schema_3_state_is_upgraded_and_the_replay_goes_on_as_from_schema_4(tmp_path, capsys) -> None:
    # GIVEN the state of a replay of the first half of the demo, once as schema 4 and once as schema 3 wrote it
    current, old = tmp_path / "current.db", tmp_path / "old.db"
    _replay(FIRST, current, capsys)
    _schema_3_file(old, capsys)
    assert _layout(old)[0] == "3" and "partitions" not in _layout(old)[1]
    # WHEN the second half is replayed onto each
    expected = _replay(REST, current, capsys)
    upgraded = _replay(REST, old, capsys)
    # THEN the upgraded file gives the same incidents, and is schema 4 in every way
    assert upgraded == expected and json.loads(upgraded)
    version, columns, indexes = _layout(old)
    assert version == "4" and "partitions" in columns and "partitions_by_signal" not in indexes
    # AND each signal row names exactly its partition rows, as schema 4 writes them (a drop deletes by them)
    db = sqlite3.connect(old)
    named = {signal_id: json.loads(names) for signal_id, names in db.execute("SELECT id, partitions FROM signals")}
    rows: dict[str, list[str]] = {}
    for partition, signal_id in db.execute("SELECT partition, signal_id FROM signal_partitions ORDER BY partition"):
        rows.setdefault(signal_id, []).append(partition)
    db.close()
    assert named and all(named[signal_id] == rows.get(signal_id, []) for signal_id in named)


def test_an_upgrade_that_fails_midway_leaves_schema_3_and_the_next_open_upgrades_it(
    tmp_path, capsys, monkeypatch
) -> None:
    # GIVEN a schema 3 file, and an upgrade that dies after its last statement, before its commit
    path = tmp_path / "state.db"
    _schema_3_file(path, capsys)
    upgrade_for_real = sqlite_upgrade._three_to_four

    def dies_before_commit(db: sqlite3.Connection) -> None:
        upgrade_for_real(db)
        raise KeyboardInterrupt  # an operator's Ctrl-C; a kill -9 leaves the same: no commit in the journal

    monkeypatch.setattr(sqlite_upgrade, "_three_to_four", dies_before_commit)
    # WHEN the file is opened
    with pytest.raises(KeyboardInterrupt):
        SqliteStore(path)
    # THEN it is schema 3 as it was, not half upgraded
    version, columns, indexes = _layout(path)
    assert version == "3" and "partitions" not in columns and "partitions_by_signal" in indexes
    # AND the next open upgrades it
    monkeypatch.setattr(sqlite_upgrade, "_three_to_four", upgrade_for_real)
    SqliteStore(path).close()
    assert _layout(path)[0] == "4"


def _open(path: str, start: Barrier) -> None:
    start.wait(timeout=120)
    SqliteStore(path, batched=True).close()


def test_processes_opening_one_schema_3_file_at_once_upgrade_it_once(tmp_path, capsys) -> None:
    # GIVEN a schema 3 file, and four processes about to open it at the same moment
    path = tmp_path / "state.db"
    _schema_3_file(path, capsys)
    start = SPAWN.Barrier(4)
    # WHEN they open it
    codes = exit_codes([(_open, (str(path), start))] * 4)
    # THEN every one opened it (one upgraded it, the others found it upgraded), and it is schema 4
    assert codes == [0, 0, 0, 0]
    version, columns, _ = _layout(path)
    assert version == "4" and columns.count("partitions") == 1
