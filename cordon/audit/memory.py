"""The audit log in process memory: thread-safe (one lock around every read-decide-write), gone at exit."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

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


class MemoryAuditLog(AuditLog):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, AuditRecord] = {}

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
        with self._lock:
            existing = self._by_id.get(record.id)
            claimed = take_over(existing, record, token=token, lease=lease, now=now or utcnow(), takes_over=takes_over)
            if claimed is None:
                assert existing is not None
                return ClaimResult(existing, None)
            self._by_id[claimed.id] = claimed
            return ClaimResult(claimed, token)

    def update(self, record: AuditRecord, token: str) -> AuditRecord:
        with self._lock:
            if not may_write(self._by_id.get(record.id), token):
                raise ClaimLostError(f"the claim on action {record.id} was taken over: its new owner's record stands")
            self._by_id[record.id] = record
            return record

    def get(self, action_id: str) -> AuditRecord | None:
        with self._lock:
            return self._by_id.get(action_id)

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        with self._lock:
            found = [r for r in self._by_id.values() if incident_id is None or r.incident_id == incident_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    def applied_count(self, *, incident_id: str | None = None, since: datetime | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self._by_id.values()
                if r.counts_as_change
                and (incident_id is None or r.incident_id == incident_id)
                and (since is None or (r.applied_at is not None and r.applied_at >= since))
            )
