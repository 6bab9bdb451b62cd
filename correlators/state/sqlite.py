"""SQLite state: the embedded default for `cordon replay`, kept across runs so windows continue.

Signals are append-only rows; a second table indexes them by partition (entity or correlation group) and
event time, the same access path the DynamoDB signal table has in AWS. Several threads (one connection behind a
lock) and several processes (WAL, `BEGIN IMMEDIATE`, a busy timeout) may share one file: a commit checks the
versions it expects and writes, or changes nothing.

`batched=True` (what `open_store` gives a replay) batches writes: one transaction holds the writes of up to
`BATCH_EVENTS` events, or of `BATCH_SECONDS`, then commits (a timer commits a batch left open while the input
pauses; `sync` commits at once). An event is marked seen in the transaction that holds its writes, so a crash
loses at most the uncommitted batch, marks included, and a rerun processes those events again. The batch holds
the file's write lock from its first write: another process writes before or after it, never in between, so
every conditional commit still checks the database it writes to; others only see the batch once it commits.
Unbatched, every write commits by itself.

Inside a transaction the writes wait in memory (`sqlite_pending.Pending`) and reach the file together just before
it commits: each item once, in its latest state (a busy incident changes hundreds of times per batch), one
statement per table. Reads are answered from what this connection already read or wrote while no other
connection has committed since (`sqlite_known.Known`, checked with SQLite's `data_version`): a partition's window
is read whole once, not queried several times per event, and incident versions, link items, memberships and meta
are read once each. So a commit's conditions are checked against what the file holds, mostly without a query.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from correlators.errors import StateError
from correlators.signals import Incident, Signal
from correlators.state.base import WATERMARK_KEY, Commit, EntityLinks, StateStore, parse_watermark, watermark_text
from correlators.state.sqlite_file import check_state_file
from correlators.state.sqlite_known import Known, copy_links
from correlators.state.sqlite_pending import Pending, spans
from correlators.state.sqlite_upgrade import upgrade

SCHEMA_VERSION = "4"

# A signal row names its partitions (a JSON list), so dropping it deletes its partition rows by their keys: an
# index of partition rows by signal, the other way, cost a third of every signal's write.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY, time REAL NOT NULL, expires REAL NOT NULL, partitions TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals (time);
CREATE INDEX IF NOT EXISTS signals_by_expiry ON signals (expires);
CREATE TABLE IF NOT EXISTS signal_partitions (
    partition TEXT NOT NULL, time REAL NOT NULL, signal_id TEXT NOT NULL,
    PRIMARY KEY (partition, time, signal_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events_seen (key TEXT PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, handled INTEGER NOT NULL DEFAULT 0, last_seen REAL NOT NULL,
    live INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (entity TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (signal_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL) WITHOUT ROWID;
"""


def _ts(time: datetime) -> float:
    return time.timestamp()


_CACHE_SIZE = 50_000  # signals kept parsed in memory: the window's working set, not the whole table
_INCIDENTS_CACHED = 2_000  # incidents kept parsed, the most recently used
BATCH_EVENTS = 200  # events marked seen per transaction
BATCH_SECONDS = 0.2  # the longest a batch stays uncommitted (and holds the write lock)


# Seconds a connection waits for another one's lock (SQLite's busy timeout), and for the file to be set up.
_BUSY_SECONDS = 30.0


class SqliteStore(StateStore):
    def __init__(self, path: str | Path, *, batched: bool = False) -> None:
        # Parsed signals by id. Signals are immutable (an id always names the same content), so a cached signal
        # is what the row holds, whoever wrote it; it saves re-parsing JSON on every window read.
        self._cache: OrderedDict[str, Signal] = OrderedDict()
        # Parsed incidents by id, checked against the row's version on every read (another process may write).
        self._incidents: OrderedDict[str, Incident] = OrderedDict()
        # Writes of the open transaction, not in the file yet. Each is also in `_known` (or the caches), which is
        # never cleared while a transaction is open: reads find them there, and never need them in the file.
        self._pending = Pending()
        # What this connection knows of the file while no other connection commits (`_refresh`).
        self._known = Known()
        self._data_version: int | None = None
        self._lock = threading.RLock()
        self._batched = batched
        self._batch_events = 0  # events marked seen in the open transaction
        self._batch_started: float | None = None  # monotonic time the open transaction began; None: none open
        self._timer: threading.Timer | None = None
        check_state_file(path)  # one clear error for a damaged, foreign, read-only or misnamed file
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            version = self._open(str(path))
        except sqlite3.DatabaseError as error:
            raise StateError(
                f"state file {path} cannot be opened ({error}): move it aside (or pass another --state)"
                " to start a new state"
            ) from None
        if version != SCHEMA_VERSION and version is not None:
            raise StateError(
                f"state file {path} has state schema {version}, this Cordon reads {SCHEMA_VERSION} and upgrades 3:"
                " move it aside (or pass another --state) to start a new state"
            )

    def _open(self, path: str) -> str | None:
        """Connect, set the file up, and return its schema version (None for a new file). Another process setting
        the same file up at that moment makes SQLite answer "database is locked" at once, without its busy wait
        (switching the journal to WAL does not wait): that is retried for as long as a write would wait."""
        deadline = time.monotonic() + _BUSY_SECONDS
        pause = 0.01
        while True:
            try:
                # Autocommit mode: transactions are explicit (`_write`), so a conditional commit can BEGIN IMMEDIATE.
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=_BUSY_SECONDS)
                # 16 KB pages for a new file (an existing one keeps its own): a signal row is ~1.8 KB, and a batch's
                # commit writes its rows in fewer, larger pages; with a 16 MB page cache instead of 2 MB, the replay
                # of the benchmark's mixed stream takes 8% less CPU time (four alternating runs each).
                self._db.execute("PRAGMA page_size=16384")
                # WAL and NORMAL sync: a crash may lose the last transactions of a replay, never corrupt the file.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA cache_size=-16384")
                self._db.executescript(_SCHEMA)
                upgrade(self._db)  # a file of an earlier schema that an upgrade knows
                version = self.get_meta("schema_version")
                if version is None:
                    self.set_meta("schema_version", SCHEMA_VERSION)
                self.sync()
                return version
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                self._db.close()
                self._reset_after_failed_open()
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    def _reset_after_failed_open(self) -> None:
        """Forget what the failed attempt held: nothing of it reached the file."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = Pending()
        self._known = Known()
        self._data_version = None
        self._batch_events = 0
        self._batch_started = None

    @contextmanager
    def _write(self, *, savepoint: bool = False, pending_first: bool = False) -> Iterator[sqlite3.Connection]:
        """One write to the file, all or nothing, in the open batch (`_begin`): taken before its first read, so
        its checks and its writes see the same database. A write of more than one statement takes a savepoint,
        so a failure undoes only itself. `pending_first`: a write whose statements must see the pending writes
        in the file has them written first, outside its savepoint (they are the batch's, not its own)."""
        with self._lock:
            self._begin()
            if pending_first:
                self._write_pending()
            if savepoint:
                self._db.execute("SAVEPOINT write")
            try:
                yield self._db
            except BaseException:
                if savepoint:
                    self._db.execute("ROLLBACK TO write")
                    self._db.execute("RELEASE write")
                if not self._batched:
                    self.sync()
                raise
            if savepoint:
                self._db.execute("RELEASE write")
            if not self._batched:
                self.sync()

    def _begin(self) -> None:
        """Open the batch's transaction, with the file's write lock, unless one is open (under `_lock`). A write
        held in `_pending` needs no more: it changes memory only once nothing can fail any more, and then, when
        unbatched, commits (`_done`)."""
        if self._batch_started is None:
            self._db.execute("BEGIN IMMEDIATE")
            self._refresh()  # before `_batch_started`: the last look at others' commits until this one ends
            self._batch_started = time.monotonic()
            if self._batched:
                self._timer = threading.Timer(BATCH_SECONDS, self._commit_stale_batch)
                self._timer.daemon = True
                self._timer.start()

    def _done(self) -> None:
        if not self._batched:
            self.sync()

    def sync(self) -> None:
        """Commit the open batch: everything written so far is durable."""
        with self._lock:
            if self._batch_started is not None:
                self._write_pending()
                try:
                    self._db.execute("COMMIT")
                except BaseException:
                    self._abandon_batch()
                    raise
                self._batch_started = None
                self._batch_events = 0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _write_pending(self) -> None:
        """Write the open transaction's pending writes to the file (still uncommitted); a batch whose writes
        fail is abandoned whole."""
        try:
            self._pending.write(self._db)
        except BaseException:
            self._abandon_batch()
            raise

    def _abandon_batch(self) -> None:
        """A batch that cannot commit is rolled back whole, and nothing kept in memory speaks for it."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._batch_started = None
        self._batch_events = 0
        self._pending.clear()
        self._incidents.clear()
        self._known.clear()

    def _commit_stale_batch(self) -> None:
        with self._lock:
            started = self._batch_started
            if started is not None and time.monotonic() - started >= BATCH_SECONDS * 0.99:
                self.sync()

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _refresh(self) -> None:
        """Forget what this connection knew when another one committed since it last looked. Inside its own
        write transaction nobody else can commit, so it does not look."""
        if self._batch_started is not None:
            return
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._known.clear()
            self._data_version = version
        self._known.bound()

    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        with self._lock:
            self._begin()
            try:
                if signal.id in self._pending.signals:
                    return False
                if self._db.execute("SELECT 1 FROM signals WHERE id = ?", (signal.id,)).fetchone():
                    return False
                names = sorted(set(partitions))
                time = _ts(signal.time)
                self._pending.add_signal(signal, names, time, _ts(expires))
            finally:
                self._done()
            self._known.signal_added(names, time, signal.id)
            self._remember(signal)
        return True

    def signals(
        self, partition: str, start: datetime, end: datetime, *, newest_first: bool = False, limit: int | None = None
    ) -> list[Signal]:
        # A partition's rows are read whole, once while nobody else commits (`Known`): correlation reads the
        # same partitions many times per event, each a query before.
        with self._lock:
            if self._batch_started is None:
                self._refresh()
            low, high = _ts(start), _ts(end)
            rows = self._known.window(partition, low, high, newest_first=newest_first, limit=limit)
            if rows is None:
                read = self._read("SELECT time, signal_id FROM signal_partitions WHERE partition = ?", (partition,))
                found = [(float(time), str(signal_id)) for time, signal_id in read]
                self._known.windows[partition] = sorted(found + self._pending.rows.get(partition, []))
                rows = self._known.window(partition, low, high, newest_first=newest_first, limit=limit) or []
            cache = self._cache
            try:
                if newest_first:
                    return [cache[signal_id] for _, signal_id in reversed(rows)]
                return [cache[signal_id] for _, signal_id in rows]
            except KeyError:
                ids = [signal_id for _, signal_id in rows]
                return self._signals_read(ids[::-1] if newest_first else ids)

    def _signals_read(self, ids: list[str]) -> list[Signal]:
        """The signals of these ids, some not (or no longer) parsed in memory."""
        found = {signal_id: self._cache[signal_id] for signal_id in ids if signal_id in self._cache}
        pending = self._pending.signals
        found.update((i, pending[i][0]) for i in ids if i in pending and i not in found)
        missing = [signal_id for signal_id in ids if signal_id not in found]
        for chunk in range(0, len(missing), 500):
            part = missing[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            for (body,) in self._read(f"SELECT body FROM signals WHERE id IN ({marks})", part):  # noqa: S608
                signal = Signal.model_validate_json(str(body))
                found[signal.id] = signal
                self._remember(signal)
        # A signal another process dropped since this connection looked is simply not in the window any more.
        return [found[signal_id] for signal_id in ids if signal_id in found]

    def _remember(self, signal: Signal) -> None:
        with self._lock:
            self._cache[signal.id] = signal
            self._cache.move_to_end(signal.id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _keep(self, incident: Incident) -> None:
        self._incidents[incident.id] = incident.working_copy()
        self._incidents.move_to_end(incident.id)
        while len(self._incidents) > _INCIDENTS_CACHED:
            self._incidents.popitem(last=False)

    def signal_count(self) -> int:
        with self._lock:
            return int(self._read("SELECT count(*) FROM signals")[0][0]) + len(self._pending.signals)

    def _drop_where(self, condition: str, params: tuple[object, ...]) -> int:
        # The pending signals and memberships may be among those dropped.
        with self._write(savepoint=True, pending_first=True) as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
            db.execute("DELETE FROM doomed")
            db.execute(f"INSERT INTO doomed SELECT id FROM signals {condition}", params)  # noqa: S608
            doomed = db.execute(
                "SELECT id, time, partitions FROM signals WHERE id IN (SELECT id FROM doomed)"
            ).fetchall()
            db.executemany(
                "DELETE FROM signal_partitions WHERE partition = ? AND time = ? AND signal_id = ?",
                [(name, time, signal_id) for signal_id, time, names in doomed for name in orjson.loads(names)],
            )
            # Beyond every window: nothing can count it again, so its membership goes with it.
            db.execute("DELETE FROM members WHERE signal_id IN (SELECT id FROM doomed)")
            dropped = db.execute("DELETE FROM signals WHERE id IN (SELECT id FROM doomed)").rowcount
            for signal_id, time, names in doomed:
                self._cache.pop(signal_id, None)
                self._known.signal_dropped(orjson.loads(names), time, signal_id)
            return int(dropped)

    def expire_signals(self, now: datetime) -> int:
        return self._drop_where("WHERE expires < ?", (_ts(now),))

    def evict_stalest(self, keep: int) -> int:
        excess = self.signal_count() - keep
        if excess <= 0:
            return 0
        return self._drop_where("ORDER BY time, id LIMIT ?", (excess,))

    def seen(self, key: str) -> bool:
        with self._lock:
            return key in self._pending.seen or bool(self._read("SELECT 1 FROM events_seen WHERE key = ?", (key,)))

    def mark_seen(self, key: str, time: datetime) -> None:
        with self._lock:
            self._begin()
            # Written with INSERT OR IGNORE: the mark of an event the file holds already is kept, as it was.
            self._pending.seen.setdefault(key, _ts(time))
            self._done()
            self._batch_events += 1
            if self._batch_events >= BATCH_EVENTS:
                self.sync()

    def mark_new(self, key: str, time: datetime) -> bool:
        # Looked up and marked at once for the threads of this handle; other handles see the mark once synced.
        with self._lock:
            return super().mark_new(key, time)

    def forget_events(self, before: datetime) -> int:
        with self._write(pending_first=True) as db:
            return int(db.execute("DELETE FROM events_seen WHERE time < ?", (_ts(before),)).rowcount)

    def get_incident(self, incident_id: str) -> Incident | None:
        # Under the lock throughout: another thread's commit between the version read and the document read
        # could leave that document pending (`_pending`) in the open transaction.
        with self._lock:
            self._refresh()
            version = self._known.incident_versions.get(incident_id)
            if version is None:
                rows = self._read("SELECT version FROM incidents WHERE id = ?", (incident_id,))
                version = int(rows[0][0]) if rows else 0
                self._known.incident_versions[incident_id] = version
            if version == 0:
                return None
            cached = self._pending.incidents.get(incident_id) or self._incidents.get(incident_id)
            if cached is not None and cached.version == version:
                return cached.working_copy()  # what the row holds: a version is written once
            rows = self._read("SELECT body FROM incidents WHERE id = ?", (incident_id,))
            incident = Incident.model_validate_json(str(rows[0][0]))
            self._keep(incident)
            return incident

    def get_links(self, entities: Iterable[str]) -> dict[str, EntityLinks]:
        with self._lock:
            if self._batch_started is None:
                self._refresh()
            known = self._known.links
            keys = list(entities)
            unknown = [key for key in keys if key not in known]
            for chunk in range(0, len(unknown), 500):
                part = list(dict.fromkeys(unknown[chunk : chunk + 500]))
                marks = ",".join("?" * len(part))
                sql = f"SELECT entity, version, body FROM links WHERE entity IN ({marks})"  # noqa: S608
                read = {str(e): EntityLinks(str(e), int(v), spans(str(b))) for e, v, b in self._read(sql, part)}
                for key in part:
                    known[key] = read.get(key) or EntityLinks(key)
            # Copies: a caller changes what it gets (and commits it), never what this connection knows.
            return {key: EntityLinks(key, item.version, dict(item.incidents)) for key in keys for item in (known[key],)}

    def members(self, signal_ids: Iterable[str]) -> dict[str, str]:
        with self._lock:
            self._refresh()
            known, counted_nowhere = self._known.members, self._known.not_members
            ids = list(signal_ids)
            unknown = [i for i in dict.fromkeys(ids) if i not in known and i not in counted_nowhere]
            for chunk in range(0, len(unknown), 500):
                part = unknown[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                sql = f"SELECT signal_id, incident_id FROM members WHERE signal_id IN ({marks})"  # noqa: S608
                known.update((str(s), str(i)) for s, i in self._read(sql, part))
                counted_nowhere.update(i for i in part if i not in known)
            return {i: known[i] for i in ids if i in known}

    def commit(self, commit: Commit) -> bool:
        with self._lock:
            self._begin()
            try:
                # Inside the write transaction what this connection knows is what the file holds (`Known`).
                if not self._holds(commit):
                    return False
                pending, known = self._pending, self._known
                for write in commit.incidents:
                    self._keep(write.incident)
                    pending.incidents[write.incident.id] = self._incidents[write.incident.id]
                    known.incident_versions[write.incident.id] = write.incident.version
                for links_write in commit.links:
                    item = links_write.links
                    pending.links[item.entity] = copy_links(item)
                    known.links[item.entity] = copy_links(item)
                pending.members.update(commit.members)
                known.members.update(commit.members)
                known.not_members.difference_update(commit.members)
            finally:
                self._done()
        return True

    def _holds(self, commit: Commit) -> bool:
        """Whether every expected version of the commit holds and none of its signals is counted yet, from what
        is known, reading what is not."""
        known = self._known
        for write in commit.incidents:
            version = known.incident_versions.get(write.incident.id)
            if version is None:
                row = self._db.execute("SELECT version FROM incidents WHERE id = ?", (write.incident.id,)).fetchone()
                version = known.incident_versions[write.incident.id] = int(row[0]) if row else 0
            if version != write.expected_version:
                return False
        for links_write in commit.links:
            entity = links_write.links.entity
            item = known.links.get(entity)
            if item is not None:
                version = item.version
            else:
                row = self._db.execute("SELECT version FROM links WHERE entity = ?", (entity,)).fetchone()
                version = int(row[0]) if row else 0
            if version != links_write.expected_version:
                return False
        if any(signal_id in known.members for signal_id in commit.members):
            return False
        unknown = [signal_id for signal_id in commit.members if signal_id not in known.not_members]
        for chunk in range(0, len(unknown), 500):
            part = unknown[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT 1 FROM members WHERE signal_id IN ({marks}) LIMIT 1"  # noqa: S608
            if self._db.execute(sql, part).fetchone():
                return False
        return True

    def _read_documents(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """A read of incident documents: the open transaction's pending writes go first, so it sees them."""
        with self._lock:
            if self._batch_started is not None:
                self._write_pending()
            return self._read(sql, params)

    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        floor = _ts(since) if since else _ts(datetime(1970, 1, 1, tzinfo=UTC))
        rows = self._read_documents("SELECT body FROM incidents WHERE live = 1 AND last_seen >= ?", (floor,))
        found = [Incident.model_validate_json(str(body)) for (body,) in rows]
        return sorted(found, key=lambda i: (i.first_seen, i.id))

    def unhandled_incidents(self) -> list[Incident]:
        rows = self._read_documents("SELECT body FROM incidents WHERE live = 1 AND version > handled")
        found = [Incident.model_validate_json(str(body)) for (body,) in rows]
        return sorted(found, key=lambda i: (i.first_seen, i.id))

    def mark_handled(self, incident_id: str, version: int) -> None:
        with self._lock:
            with self._write(pending_first=True) as db:  # the incident's row may be pending
                db.execute("UPDATE incidents SET handled = max(handled, ?) WHERE id = ?", (version, incident_id))
            self.sync()  # the shell's step, beside audit writes to the same file: not held in a batch

    def raise_watermark(self, time: datetime) -> datetime:
        # Read and written inside the batch's transaction, which holds the file's write lock from `_begin` to its
        # commit: no other connection can commit a raise in between, so the later value always wins. Others see it
        # when the batch commits (with the expiry done by it, in the same transaction).
        with self._lock:
            self._begin()
            try:
                stored = parse_watermark(self.get_meta(WATERMARK_KEY))
                if stored is not None and stored >= time:
                    return stored
                text = watermark_text(time)
                self._pending.meta[WATERMARK_KEY] = text
            finally:
                self._done()
            self._known.meta[WATERMARK_KEY] = text
            return time

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            self._refresh()
            if key in self._pending.meta:
                return self._pending.meta[key]
            if key not in self._known.meta:
                rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
                self._known.meta[key] = str(rows[0][0]) if rows else None
            return self._known.meta[key]

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._begin()
            self._pending.meta[key] = value
            self._done()
            self._known.meta[key] = value

    def close(self) -> None:
        with self._lock:
            self.sync()
            self._db.close()
