"""The audit record, its statuses, and the one decision every store makes the same way: may a claim be taken.

Pure: no storage, no AWS. Each store (memory, SQLite, DynamoDB) reads the current record for a key, asks
`take_over` what to write, and writes it with a condition that the record did not change in between.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from correlators.errors import CordonError


class Status(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"  # claimed by a runner that has not written its outcome yet
    APPLIED = "applied"
    DENIED = "denied"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING_APPROVAL = "pending_approval"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"  # a person refused an action that waited for approval
    # Started and not ended when the runner had to move on (an SSM Automation runbook outliving its wait): the
    # change's completion event settles it as applied or failed (`Executor.complete`).
    RUNNING = "running"


# Settled: the key is never attempted again by a runner. Replaying an incident applies nothing twice, an action
# waiting for a person is not re-planned, and a change a person undid or refused is not redone.
SETTLED = frozenset({Status.APPLIED, Status.PENDING_APPROVAL, Status.ROLLED_BACK, Status.REFUSED, Status.RUNNING})
# A change was made (and counts against the budgets): applied, or started and still running.
CHANGED = frozenset({Status.APPLIED, Status.RUNNING})
# Retried by the next run: nothing was changed (planned: a dry run or plan-only run; denied: a guard may have been
# lifted; skipped: kill switch or budget), or the change failed and may succeed now.
RETRYABLE = frozenset({Status.PLANNED, Status.DENIED, Status.SKIPPED, Status.FAILED})
# A takeover keeps the `before` of these: an attempt that may have touched AWS read the state before it, and that
# first state is what rollback restores (a retry would read the half-changed state instead).
_KEEPS_BEFORE = frozenset({Status.IN_PROGRESS, Status.FAILED, Status.APPLIED, Status.RUNNING})


class ClaimLostError(CordonError):
    """Our claim on an action was taken over (our lease expired): the new owner's record stands."""


def action_id(key: str) -> str:
    """The action's id, derived from its idempotency key: one record per key, found by id or by key alike."""
    return f"act-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


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
    # Failed for a reason that may pass (throttled or unavailable past botocore's retries, a connection lost, a
    # concurrent writer): `cordon retry` takes these; a permanent failure (AccessDenied, NotFound) needs a fix first.
    transient: bool = False
    decided_by: str | None = None  # who approved or refused it: "slack:U0123ABCD", "cli:alice"
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    attempts: int = 0  # claims taken on this key
    lease_until: datetime | None = None  # while in_progress: after this, the claim may be taken over
    claim_token: str | None = None  # the current claim's owner; outcomes are written only by it
    applied_at: datetime | None = None  # when the change was made: what the action budgets count

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

    @property
    def counts_as_change(self) -> bool:
        """Applied (and maybe rolled back since): what the budgets count. Telling people is not a change."""
        return self.applied_at is not None and not self.responder.startswith("notify.")


@dataclass(frozen=True)
class ClaimResult:
    """`token` set: the claim is ours and `record` is what we wrote. None: `record` is the one that holds the key."""

    record: AuditRecord
    token: str | None

    @property
    def acquired(self) -> bool:
        return self.token is not None


def check_key(key: str, record: AuditRecord) -> None:
    if record.key != key or record.id != action_id(key):
        raise ValueError(f"claim for key {key!r} with the record of {record.key!r} (id {record.id})")


def claimable(existing: AuditRecord | None, now: datetime, takes_over: frozenset[Status]) -> bool:
    if existing is None:
        return True
    if existing.status is Status.IN_PROGRESS:
        return existing.lease_until is not None and existing.lease_until <= now
    return existing.status in takes_over


def take_over(
    existing: AuditRecord | None,
    record: AuditRecord,
    *,
    token: str,
    lease: timedelta,
    now: datetime,
    takes_over: frozenset[Status],
) -> AuditRecord | None:
    """The record a claim writes, or None when `existing` holds the key (settled, or claimed and not expired).

    A takeover keeps the existing id, creation time, attempt count and `applied_at`, and the state read before
    an attempt that may have changed something (in_progress, failed, applied).
    """
    if not claimable(existing, now, takes_over):
        return None
    claim = {"status": Status.IN_PROGRESS, "claim_token": token, "lease_until": now + lease, "updated_at": now}
    if existing is None:
        return record.model_copy(update={**claim, "attempts": 1, "created_at": now, "reason": None})
    keep_before = existing.status in _KEEPS_BEFORE and existing.before
    return record.model_copy(
        update={
            **claim,
            "id": existing.id,
            "created_at": existing.created_at,
            "attempts": existing.attempts + 1,
            "applied_at": existing.applied_at,
            "before": existing.before if keep_before else record.before,
            "reason": None,
        }
    )


def may_write(current: AuditRecord | None, token: str) -> bool:
    """An outcome (or a checkpoint) is written only while the claim is still ours."""
    return current is not None and current.status is Status.IN_PROGRESS and current.claim_token == token
