"""The writes an open SQLite transaction holds in memory, written together just before it commits.

A replay's transaction (a batch, `SqliteStore`) takes hundreds of writes: one signal is three statements, a busy
incident's document runs to tens of kilobytes and changes hundreds of times, the same link items and meta values
are rewritten again and again. Held here, each item is written once per transaction, in its latest state, with
one statement per table, keys in order. Nothing changes for anyone else: others see a transaction only once it
commits, and a process that dies before that leaves the file as its last commit left it, either way.

The store reads its own pending writes from here or from what it knows (`sqlite_known.Known`), never from the
file, until they are written.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from correlators.signals import Incident, Signal
from correlators.state.base import EntityLinks, Span


@dataclass
class Pending:
    # Signals by id, with their partitions and expiry (a timestamp); and each partition's new (time, id) rows.
    signals: dict[str, tuple[Signal, list[str], float]] = field(default_factory=dict)
    rows: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)  # the latest committed copy of each
    links: dict[str, EntityLinks] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # delivery key > watermark timestamp
    meta: dict[str, str] = field(default_factory=dict)

    def add_signal(self, signal: Signal, partitions: list[str], time: float, expires: float) -> None:
        self.signals[signal.id] = (signal, partitions, expires)
        for partition in partitions:
            self.rows.setdefault(partition, []).append((time, signal.id))

    def clear(self) -> None:
        for kind in (self.signals, self.rows, self.incidents, self.links, self.members, self.seen, self.meta):
            kind.clear()

    def write(self, db: sqlite3.Connection) -> None:
        """Write everything held (inside the caller's transaction), then hold nothing. On an error nothing is
        forgotten: the caller rolls back what was written of it."""
        if self.signals:
            db.executemany(
                "INSERT OR IGNORE INTO signals (id, time, expires, partitions, body) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        signal_id,
                        signal.time.timestamp(),
                        expires,
                        orjson.dumps(names).decode(),
                        signal.model_dump_json(),
                    )
                    for signal_id, (signal, names, expires) in self.signals.items()
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO signal_partitions (partition, time, signal_id) VALUES (?, ?, ?)",
                sorted(
                    (partition, time, signal_id) for partition, rows in self.rows.items() for time, signal_id in rows
                ),
            )
        if self.incidents:
            db.executemany(
                "INSERT INTO incidents (id, version, last_seen, live, body) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version, last_seen = excluded.last_seen,"
                " live = excluded.live, body = excluded.body",
                [
                    (i.id, i.version, i.last_seen.timestamp(), i.merged_into is None, i.model_dump_json())
                    for i in self.incidents.values()
                ],
            )
        if self.links:
            db.executemany(
                "INSERT OR REPLACE INTO links (entity, version, body) VALUES (?, ?, ?)",
                [(item.entity, item.version, spans_json(item)) for item in self.links.values()],
            )
        if self.members:
            db.executemany("INSERT INTO members (signal_id, incident_id) VALUES (?, ?)", sorted(self.members.items()))
        if self.seen:
            db.executemany("INSERT OR IGNORE INTO events_seen (key, time) VALUES (?, ?)", sorted(self.seen.items()))
        if self.meta:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(self.meta.items()))
        self.clear()


def spans_json(links: EntityLinks) -> str:
    return orjson.dumps({i: [s.first.isoformat(), s.last.isoformat()] for i, s in links.incidents.items()}).decode()


def spans(body: str) -> dict[str, Span]:
    return {
        i: Span(datetime.fromisoformat(first), datetime.fromisoformat(last))
        for i, (first, last) in orjson.loads(body).items()
    }
