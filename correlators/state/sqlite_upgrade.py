"""Upgrades of a state file written by an earlier Cordon, so that a SOC's state (its incidents, the signals their
windows still need, the seen marks) survives a new release. Each upgrade is one transaction: a file is at one
schema or the next, never between; a process killed mid-way leaves the old schema, upgraded on the next open.
Files older than the oldest upgrade here are refused by the store, with what to do."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict


def upgrade(db: sqlite3.Connection) -> None:
    """Bring the file to the current schema if an upgrade here knows its version; leave any other as it is.
    `db` is in autocommit mode (transactions explicit), and the schema's tables exist."""
    if _version(db) != "3":
        return  # new, current, or unknown: the caller's check decides
    db.execute("BEGIN IMMEDIATE")  # waits for a writer; another process may have upgraded it meanwhile
    try:
        if _version(db) == "3":
            _three_to_four(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _version(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else str(row[0])


def _three_to_four(db: sqlite3.Connection) -> None:
    """Schema 4: a signal row names its partitions (sorted, as JSON), so that a drop deletes its partition rows
    by their keys; the index of partition rows by signal that schema 3 kept for that goes."""
    db.execute("ALTER TABLE signals ADD COLUMN partitions TEXT NOT NULL DEFAULT '[]'")
    partitions: defaultdict[str, list[str]] = defaultdict(list)
    for partition, signal_id in db.execute("SELECT partition, signal_id FROM signal_partitions"):
        partitions[signal_id].append(partition)
    db.executemany(
        "UPDATE signals SET partitions = ? WHERE id = ?",
        [(json.dumps(sorted(names)), signal_id) for signal_id, names in partitions.items()],
    )
    db.execute("DROP INDEX IF EXISTS partitions_by_signal")
    db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
