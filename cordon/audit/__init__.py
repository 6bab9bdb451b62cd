"""The audit trail and the action claims: one record per action (key = incident + step + target), with its
parameters, state before and after, status and error.

It is also how runners agree on who acts: an action is claimed (a conditional write of its record, `in_progress`
with a lease) before its AWS call, and its outcome is written only while the claim is still ours. Three stores
keep the same semantics (`cordon.audit.base`): in memory, in SQLite (the replay's state file), in DynamoDB (the
deployed stack's audit table).
"""

from __future__ import annotations

from cordon.audit.base import DEFAULT_LEASE, AuditLog
from cordon.audit.memory import MemoryAuditLog
from cordon.audit.model import (
    CHANGED,
    RETRYABLE,
    SETTLED,
    AuditRecord,
    ClaimLostError,
    ClaimResult,
    Status,
    action_id,
)
from cordon.audit.sqlite import SqliteAuditLog

__all__ = [
    "CHANGED",
    "DEFAULT_LEASE",
    "RETRYABLE",
    "SETTLED",
    "AuditLog",
    "AuditRecord",
    "ClaimLostError",
    "ClaimResult",
    "MemoryAuditLog",
    "SqliteAuditLog",
    "Status",
    "action_id",
]
