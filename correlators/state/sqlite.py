"""SQLite state: the embedded default for `cordon replay`, kept across runs so windows continue.

Signals are append-only rows; a second table indexes them by partition (entity or correlation group) and
event time, the same access path the DynamoDB signal table has in AWS.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from correlators.errors import StateError
from correlators.signals import Incident, Signal
from correlators.state.base import StateStore

SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY, time REAL NOT NULL, expires REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals (time);
CREATE INDEX IF NOT EXISTS signals_by_expiry ON signals (expires);
CREATE TABLE IF NOT EXISTS signal_partitions (
    partition TEXT NOT NULL, time REAL NOT NULL, signal_id TEXT NOT NULL,
    PRIMARY KEY (partition, time, signal_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS partitions_by_signal ON signal_partitions (signal_id);
CREATE TABLE IF NOT EXISTS events_seen (key TEXT PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, last_seen REAL NOT NULL, live INTEGER NOT NULL, body TEXT NOT NULL);
"""


def _ts(time: datetime) -> float:
    return time.timestamp()


_CACHE_SIZE = 50_000  # signals kept parsed in memory: the window's working set, not the whole table


class SqliteStore(StateStore):
    def __init__(self, path: str | Path) -> None:
        # Parsed signals by id. Signals are immutable and this process is the table's only writer during a run,
        # so a cached signal is always what the row holds; it saves re-parsing JSON on every window read.
        self._cache: OrderedDict[str, Signal] = OrderedDict()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path))
            # WAL and NORMAL sync: a crash may lose the last transactions of a replay, never corrupt the file.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            version = self.get_meta("schema_version")
        except sqlite3.DatabaseError as error:
            raise StateError(f"{path}: not a Cordon state database ({error})") from None
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise StateError(f"{path}: state schema {version}, this Cordon reads {SCHEMA_VERSION}")

    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        with self._db:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO signals (id, time, expires, body) VALUES (?, ?, ?, ?)",
                (signal.id, _ts(signal.time), _ts(expires), signal.model_dump_json()),
            ).rowcount
            if not inserted:
                return False
            self._remember(signal)
            self._db.executemany(
                "INSERT OR IGNORE INTO signal_partitions (partition, time, signal_id) VALUES (?, ?, ?)",
                [(p, _ts(signal.time), signal.id) for p in set(partitions)],
            )
        return True

    def signals(self, partition: str, start: datetime, end: datetime) -> list[Signal]:
        ids = [
            signal_id
            for (signal_id,) in self._db.execute(
                "SELECT signal_id FROM signal_partitions WHERE partition = ? AND time BETWEEN ? AND ?"
                " ORDER BY time, signal_id",
                (partition, _ts(start), _ts(end)),
            )
        ]
        found = {signal_id: self._cache[signal_id] for signal_id in ids if signal_id in self._cache}
        missing = [signal_id for signal_id in ids if signal_id not in found]
        for chunk in range(0, len(missing), 500):
            part = missing[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            for (body,) in self._db.execute(f"SELECT body FROM signals WHERE id IN ({marks})", part):  # noqa: S608
                signal = Signal.model_validate_json(body)
                found[signal.id] = signal
                self._remember(signal)
        return [found[signal_id] for signal_id in ids]

    def _remember(self, signal: Signal) -> None:
        self._cache[signal.id] = signal
        self._cache.move_to_end(signal.id)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    def signal_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM signals").fetchone()[0])

    def _drop_where(self, condition: str, params: tuple[object, ...]) -> int:
        with self._db:
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM doomed")
            self._db.execute(f"INSERT INTO doomed SELECT id FROM signals {condition}", params)  # noqa: S608
            self._db.execute("DELETE FROM signal_partitions WHERE signal_id IN (SELECT id FROM doomed)")
            for (signal_id,) in self._db.execute("SELECT id FROM doomed"):
                self._cache.pop(signal_id, None)
            return self._db.execute("DELETE FROM signals WHERE id IN (SELECT id FROM doomed)").rowcount

    def expire_signals(self, now: datetime) -> int:
        return self._drop_where("WHERE expires < ?", (_ts(now),))

    def evict_stalest(self, keep: int) -> int:
        excess = self.signal_count() - keep
        if excess <= 0:
            return 0
        return self._drop_where("ORDER BY time, id LIMIT ?", (excess,))

    def remember_event(self, key: str, time: datetime) -> bool:
        with self._db:
            return bool(
                self._db.execute(
                    "INSERT OR IGNORE INTO events_seen (key, time) VALUES (?, ?)", (key, _ts(time))
                ).rowcount
            )

    def forget_events(self, before: datetime) -> int:
        with self._db:
            return self._db.execute("DELETE FROM events_seen WHERE time < ?", (_ts(before),)).rowcount

    def put_incident(self, incident: Incident) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO incidents (id, last_seen, live, body) VALUES (?, ?, ?, ?)",
                (incident.id, _ts(incident.last_seen), incident.merged_into is None, incident.model_dump_json()),
            )

    def get_incident(self, incident_id: str) -> Incident | None:
        row = self._db.execute("SELECT body FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return Incident.model_validate_json(row[0]) if row else None

    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        floor = _ts(since) if since else _ts(datetime(1970, 1, 1, tzinfo=UTC))
        rows = self._db.execute("SELECT body FROM incidents WHERE live = 1 AND last_seen >= ?", (floor,))
        found = [Incident.model_validate_json(body) for (body,) in rows]
        return sorted(found, key=lambda i: (i.first_seen, i.id))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._db.close()
