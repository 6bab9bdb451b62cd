"""The audit and claims interface every store implements, and passes one contract suite for.

Semantics (the same in memory, SQLite and DynamoDB):

- `claim(key, record, lease)` is a conditional write of the action record with status `in_progress`, a fresh
  claim token and a lease. It is taken when there is no record for the key, when the record is `in_progress`
  with an expired lease (its runner died), or when its status is in `takes_over` (by default the retryable ones:
  planned, denied, skipped, failed). Otherwise the existing record is returned and the caller does not act.
  Settled records (applied, pending_approval, rolled_back) are never taken by a runner; `cordon approve` takes
  a pending_approval record and `cordon rollback` an applied one, through the same claim.
- `update(record, token)` writes a record (an outcome, or the state read before the AWS call) only while the
  claim is still ours: status `in_progress` and our token. Otherwise it raises `ClaimLostError`, so a runner
  whose lease expired and was taken over cannot overwrite the new owner's outcome.
- One record per key: its id is derived from the key (`action_id`), so retries, approvals and rollbacks update
  the same record, and `get(id)` finds it.
- `applied_count` counts changes (records with `applied_at`, notifications excluded), by incident and since a
  time: the action budgets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

from cordon.audit.model import RETRYABLE, AuditRecord, ClaimResult, Status

# A claim older than the longest Lambda invocation (15 min) belongs to a runner that is gone.
DEFAULT_LEASE = timedelta(minutes=15)


class AuditLog(ABC):
    @abstractmethod
    def claim(
        self,
        key: str,
        record: AuditRecord,
        lease: timedelta = DEFAULT_LEASE,
        *,
        now: datetime | None = None,
        takes_over: frozenset[Status] = RETRYABLE,
    ) -> ClaimResult:
        """Take the claim on `key` (see the module docstring), or report the record that holds it."""

    @abstractmethod
    def update(self, record: AuditRecord, token: str) -> AuditRecord:
        """Write `record` if the claim `token` still holds it; raise `ClaimLostError` otherwise."""

    @abstractmethod
    def get(self, action_id: str) -> AuditRecord | None:
        """The record with this id, read consistently."""

    @abstractmethod
    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        """Every record (or one incident's), oldest first."""

    @abstractmethod
    def applied_count(self, *, incident_id: str | None = None, since: datetime | None = None) -> int:
        """Changes made (applied, or applied then rolled back), read consistently: what the budgets count."""

    def close(self) -> None:  # noqa: B027 - a store without resources has nothing to close
        """Release connections."""


def utcnow() -> datetime:
    return datetime.now(UTC)
