"""The audit log in SQLite: the replay's state file, shared safely by threads and by processes.

Each thread has its own connection (a SQLite connection must not be shared across threads); a claim or an
update reads, decides and writes inside `BEGIN IMMEDIATE`, which takes the database's write lock first, so two
processes cannot both see "no record" and both claim. The busy timeout makes a writer wait for the lock instead
of failing. `:memory:` has one connection behind a lock (each connection would be its own database).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cordon.audit.base import DEFAULT_LEASE, AuditLog, utcnow
from cordon.audit.model import (
    RETRYABLE,
    AuditRecord,
    ClaimLostError,
    ClaimResult,
    Status,
    check_key,
    may_write,
    take_over,
)
from correlators.errors import StateError
from correlators.state.sqlite_file import check_state_file

BUSY_TIMEOUT_SECONDS = 30.0

# `actions`, not the first version's `audit` table (one row per attempt, no claims): an old state file keeps it
# untouched and starts a new trail.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, incident_id TEXT NOT NULL, responder TEXT NOT NULL,
    status TEXT NOT NULL, created_at REAL NOT NULL, applied_at REAL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS actions_by_incident ON actions (incident_id, created_at);
CREATE INDEX IF NOT EXISTS actions_by_applied_at ON actions (applied_at);
"""
_COLUMNS = frozenset({"id", "key", "incident_id", "responder", "status", "created_at", "applied_at", "body"})


class SqliteAuditLog(AuditLog):
    def __init__(self, path: str = ":memory:") -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.RLock()  # guards `_connections`, and every use of the single `:memory:` connection
        check_state_file(path)  # one clear error for a damaged, foreign, read-only or misnamed file
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._shared = self._connect() if path == ":memory:" else None
            with self._connection() as db:
                # Checked before the schema script, which would trip over an old table's missing columns.
                columns = {str(row[1]) for row in db.execute("PRAGMA table_info(actions)")} or set(_COLUMNS)
                if columns == _COLUMNS:
                    db.executescript(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as error:
            self.close()
            raise StateError(
                f"state file {path} cannot be opened ({error}): move it aside (or pass another --state)"
                " to start a new audit trail"
            ) from None
        if columns != _COLUMNS:
            self.close()
            raise StateError(
                f"state file {path} has an audit table of another Cordon version (columns"
                f" {', '.join(sorted(columns))}): move it aside (or pass another --state) to start a new audit trail"
            )

    def claim(
        self,
        key: str,
        record: AuditRecord,
        lease: timedelta = DEFAULT_LEASE,
        *,
        now: datetime | None = None,
        takes_over: frozenset[Status] = RETRYABLE,
    ) -> ClaimResult:
        check_key(key, record)
        token = secrets.token_hex(16)
        with self._write() as db:
            existing = _one(db, "SELECT body FROM actions WHERE id = ?", record.id)
            claimed = take_over(existing, record, token=token, lease=lease, now=now or utcnow(), takes_over=takes_over)
            if claimed is None:
                assert existing is not None
                return ClaimResult(existing, None)
            _upsert(db, claimed)
            return ClaimResult(claimed, token)

    def update(self, record: AuditRecord, token: str) -> AuditRecord:
        with self._write() as db:
            if not may_write(_one(db, "SELECT body FROM actions WHERE id = ?", record.id), token):
                raise ClaimLostError(f"the claim on action {record.id} was taken over: its new owner's record stands")
            _upsert(db, record)
            return record

    def get(self, action_id: str) -> AuditRecord | None:
        with self._connection() as db:
            return _one(db, "SELECT body FROM actions WHERE id = ?", action_id)

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        with self._connection() as db:
            if incident_id is None:
                rows = db.execute("SELECT body FROM actions ORDER BY created_at, id").fetchall()
            else:
                rows = db.execute(
                    "SELECT body FROM actions WHERE incident_id = ? ORDER BY created_at, id", (incident_id,)
                ).fetchall()
        return [AuditRecord.model_validate_json(body) for (body,) in rows]

    def applied_count(self, *, incident_id: str | None = None, since: datetime | None = None) -> int:
        query = "SELECT count(*) FROM actions WHERE applied_at IS NOT NULL AND responder NOT LIKE 'notify.%'"
        params: list[Any] = []
        if incident_id is not None:
            query += " AND incident_id = ?"
            params.append(incident_id)
        if since is not None:
            query += " AND applied_at >= ?"
            params.append(since.timestamp())
        with self._connection() as db:
            return int(db.execute(query, params).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()

    # --- connections ----------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; claims open their own with BEGIN IMMEDIATE.
        # check_same_thread=False only so that `close` may close every thread's connection: each is used by one.
        db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        with self._lock:
            self._connections.append(db)
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._shared is not None:
            with self._lock:
                yield self._shared
            return
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding the write lock from its first statement: read, decide and write as one."""
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def _one(db: sqlite3.Connection, query: str, *params: Any) -> AuditRecord | None:
    row = db.execute(query, params).fetchone()
    return AuditRecord.model_validate_json(row[0]) if row else None


def _upsert(db: sqlite3.Connection, record: AuditRecord) -> None:
    db.execute(
        "INSERT OR REPLACE INTO actions (id, key, incident_id, responder, status, created_at, applied_at, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.key,
            record.incident_id,
            record.responder,
            record.status.value,
            record.created_at.timestamp(),
            record.applied_at.timestamp() if record.applied_at else None,
            record.model_dump_json(),
        ),
    )
