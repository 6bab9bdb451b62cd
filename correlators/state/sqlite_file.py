"""Opening a SQLite state file: refuse, with one clear error, a file Cordon must not use.

The state file holds the correlation state and the audit trail (`cordon.audit.sqlite`). Before either is opened,
the file is checked, so a damaged or foreign file gives one `StateError` that names it and says what to do,
never a traceback and never a half-written file:

- a directory, an empty file, a read-only file (by its mode bits: root can write anything, and would only
  fail later with "attempt to write a readonly database");
- not a SQLite database (random bytes, a truncated header), or one whose pages are damaged (`PRAGMA
  quick_check`, which reads every page once: a malformed page is found at open, not half way through a run);
- a SQLite database of something else (tables, none of them Cordon's): Cordon never adds its tables to it.

A path that does not exist yet is fine: it becomes a new state file.
"""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Collection
from pathlib import Path

from correlators.errors import StateError

# Every table a Cordon state file may hold: correlation state, the audit trail, the first audit's table.
CORDON_TABLES = frozenset(
    {"meta", "signals", "signal_partitions", "events_seen", "incidents", "links", "members", "actions", "audit"}
)
JUST_CREATED_SECONDS = 10.0
_ASIDE = "move it aside (or pass another --state) to start a new state, or restore it from a backup"


def check_state_file(path: str | Path) -> None:
    """Raise `StateError` if `path` is not a state file Cordon may open and write (see the module docstring)."""
    if str(path) == ":memory:":
        return
    file = Path(path)
    if file.is_dir():
        raise StateError(f"state file {file} is a directory: pass a file path, e.g. --state sqlite:///{file}/state.db")
    if not file.exists():
        return
    info = file.stat()
    # SQLite creates a file empty and writes its header with the first transaction: a file created a moment ago by
    # another opener (a second thread or process on a new state file) is empty for that moment, and is not damage.
    if info.st_size == 0 and time.time() - info.st_mtime > JUST_CREATED_SECONDS:
        raise StateError(f"state file {file} is empty (0 bytes), not a Cordon state database: {_ASIDE}")
    if not info.st_mode & stat.S_IWUSR:
        raise StateError(f"state file {file} is read-only: make it writable (chmod u+w {file}) or pass another --state")
    try:
        db = sqlite3.connect(f"file:{file}?mode=ro", uri=True, timeout=30)
        try:
            # A problem may span lines ("*** in database main ***\nOn tree page 3 ..."): the error is one line.
            problems = [" ".join(str(row[0]).split()) for row in db.execute("PRAGMA quick_check(5)").fetchall()]
            tables = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        raise StateError(f"state file {file} is not a Cordon state database ({error}): {_ASIDE}") from None
    if problems != ["ok"]:
        raise StateError(f"state file {file} is damaged ({'; '.join(problems)}): {_ASIDE}")
    check_tables(file, tables)


def check_tables(file: str | Path, tables: Collection[str]) -> None:
    """Refuse a database that holds tables and none of Cordon's: it belongs to something else."""
    own = {t for t in tables if not t.startswith("sqlite_")}
    if own and not own & CORDON_TABLES:
        raise StateError(
            f"state file {file} is a SQLite database of something else (tables: {', '.join(sorted(own)[:5])}):"
            " Cordon does not add its tables to it; pass another --state"
        )
