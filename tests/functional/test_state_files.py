"""A damaged or foreign SQLite state file: one clear error naming the file and what to do (exit 2), never a
traceback, and a foreign database never gets Cordon's tables."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cordon.audit import SqliteAuditLog
from cordon.cli import main
from correlators.errors import StateError
from correlators.state.sqlite import SqliteStore

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def _good_file(path: Path) -> Path:
    SqliteStore(path).close()
    audit = SqliteAuditLog(str(path))
    audit.close()
    # Enough pages that damage in the middle hits data, not only the header.
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS events_seen (key TEXT PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID")
    db.executemany("INSERT OR IGNORE INTO events_seen VALUES (?, ?)", [(f"e{i:06d}" * 8, i) for i in range(3000)])
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def truncated(path: Path) -> None:
    data = _good_file(path).read_bytes()
    path.write_bytes(data[: len(data) // 3])


def random_page(path: Path) -> None:
    data = bytearray(_good_file(path).read_bytes())
    page = 4096 * (len(data) // 4096 // 2)
    data[page : page + 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))


def foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()


def old_audit_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE actions (id TEXT PRIMARY KEY, key TEXT, status TEXT, body TEXT)")
    db.commit()
    db.close()


def read_only(path: Path) -> None:
    _good_file(path)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)


def directory(path: Path) -> None:
    path.mkdir()


def empty(path: Path) -> None:
    path.write_bytes(b"")
    os.utime(path, (1_700_000_000, 1_700_000_000))  # left empty long ago, not being created right now


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (truncated, "is damaged|is not a Cordon state database"),
    "random bytes in a page": (random_page, "is damaged|is not a Cordon state database"),
    "a foreign database": (foreign, "is a SQLite database of something else"),
    "an old audit schema": (old_audit_schema, "has an audit table of another Cordon version"),
    "read-only": (read_only, "is read-only: make it writable"),
    "a directory": (directory, "is a directory: pass a file path"),
    "an empty file": (empty, r"is empty \(0 bytes\)"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize(
    "command",
    [
        ["replay", str(SCENARIOS), "--output", "json"],
        ["audit"],
        ["approve", "act-0000000000000000"],
        ["rollback", "act-0000000000000000"],
    ],
    ids=["replay", "audit", "approve", "rollback"],
)
def test_a_bad_state_file_is_one_clear_error(tmp_path, capsys, name, command) -> None:
    # GIVEN a state file damaged in one way
    path = tmp_path / "state.db"
    corrupt, message = CORRUPTIONS[name]
    corrupt(path)
    # WHEN a command opens it
    code = main([*command, "--state", f"sqlite:///{path}"])
    # THEN one line names the file and says what to do; no traceback
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("cordon: state file ")
    assert str(path) in err
    assert re.search(message, err), err


def test_a_foreign_database_is_left_untouched(tmp_path) -> None:
    path = tmp_path / "app.db"
    foreign(path)
    for opener in (SqliteStore, SqliteAuditLog):
        with pytest.raises(StateError, match="something else"):
            opener(str(path))
    db = sqlite3.connect(path)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"customers"}


def test_an_older_state_schema_says_what_to_do(tmp_path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).set_meta("schema_version", "2")
    with pytest.raises(StateError, match="has state schema 2, this Cordon reads 4 and upgrades 3: move it aside"):
        SqliteStore(path)


def test_a_good_state_file_still_opens_and_continues(tmp_path) -> None:
    path = tmp_path / "state.db"
    assert main(["replay", str(SCENARIOS), "--output", "json", "--state", f"sqlite:///{path}"]) == 0
    assert main(["replay", str(SCENARIOS), "--output", "json", "--state", f"sqlite:///{path}"]) == 0
    assert main(["audit", "--state", f"sqlite:///{path}"]) == 0
