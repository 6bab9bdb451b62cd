"""The audit trail: one record per action attempt, with parameters, state before and after, status and error.

It doubles as the idempotency table (key = incident + playbook + step + target): an action already applied,
pending approval or rolled back for that key is not attempted again. Locally it lives in the replay's SQLite
state file; in AWS it is a DynamoDB table (the deployment issue).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Status(StrEnum):
    PLANNED = "planned"
    APPLIED = "applied"
    DENIED = "denied"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING_APPROVAL = "pending_approval"
    ROLLED_BACK = "rolled_back"


# Statuses after which the same key is never attempted again: replaying an incident applies nothing twice.
SETTLED = frozenset({Status.APPLIED, Status.PENDING_APPROVAL, Status.ROLLED_BACK})


class AuditRecord(BaseModel):
    id: str
    key: str
    incident_id: str
    playbook: str
    step: str
    responder: str
    target: dict[str, Any]
    params: dict[str, Any]
    mode: str
    status: Status
    reason: str | None = None  # why denied, skipped or failed
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime

    def as_action(self) -> dict[str, Any]:
        """The entry in an incident's `actions` list."""
        action = {
            "id": self.id,
            "playbook": self.playbook,
            "step": self.step,
            "responder": self.responder,
            "target": self.target["id"],
            "status": self.status.value,
            "params": self.params,
        }
        if self.reason:
            action["reason"] = self.reason
        if self.status is Status.PLANNED and self.before:
            action["current_state"] = self.before  # a dry run shows what it would change, as read just now
        return action


_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, incident_id TEXT NOT NULL, responder TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_key ON audit (key, created_at);
CREATE INDEX IF NOT EXISTS audit_by_incident ON audit (incident_id, created_at);
"""


class AuditLog:
    """SQLite-backed (`:memory:` for a throwaway log)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)

    def put(self, record: AuditRecord) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO audit (id, key, incident_id, responder, status, created_at, updated_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.key,
                    record.incident_id,
                    record.responder,
                    record.status.value,
                    record.created_at.timestamp(),
                    record.updated_at.timestamp(),
                    record.model_dump_json(),
                ),
            )

    def get(self, action_id: str) -> AuditRecord | None:
        row = self._db.execute("SELECT body FROM audit WHERE id = ?", (action_id,)).fetchone()
        return AuditRecord.model_validate_json(row[0]) if row else None

    def settled(self, key: str) -> AuditRecord | None:
        """The record that settled this idempotency key, if any."""
        marks = ",".join("?" * len(SETTLED))
        row = self._db.execute(
            f"SELECT body FROM audit WHERE key = ? AND status IN ({marks}) ORDER BY created_at LIMIT 1",  # noqa: S608
            (key, *sorted(SETTLED)),
        ).fetchone()
        return AuditRecord.model_validate_json(row[0]) if row else None

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        if incident_id is None:
            rows = self._db.execute("SELECT body FROM audit ORDER BY created_at, id")
        else:
            rows = self._db.execute(
                "SELECT body FROM audit WHERE incident_id = ? ORDER BY created_at, id", (incident_id,)
            )
        return [AuditRecord.model_validate_json(body) for (body,) in rows]

    def applied_count(self, *, incident_id: str | None = None, since: datetime | None = None) -> int:
        """Changes made (applied, or applied then rolled back): what the action budgets count. Telling people
        (notify.*) is not a change and costs no budget."""
        query = (
            "SELECT count(*) FROM audit WHERE status IN ('applied', 'rolled_back') AND responder NOT LIKE 'notify.%'"
        )
        params: list[Any] = []
        if incident_id is not None:
            query += " AND incident_id = ?"
            params.append(incident_id)
        if since is not None:
            query += " AND updated_at >= ?"
            params.append(since.timestamp())
        return int(self._db.execute(query, params).fetchone()[0])

    def close(self) -> None:
        self._db.close()
