"""The audit log in DynamoDB: the deployed runner's claims and audit trail, and what `cordon audit` reads.

Why not Powertools idempotency: it fits "run this function once per payload" (INPROGRESS, then COMPLETED with
the cached response, the record deleted when the function raises). An action needs more states on one record:
failed, denied and skipped stay in the trail and are retried; pending_approval waits for a person; approve and
rollback move the same record on; the state read before the first attempt survives a retry; budgets count the
changes. So the same pattern (conditional put of an in-progress record with an expiry, outcome written after)
is done by hand on the audit table, with the same decision function as the SQLite and memory stores.

Table (fixed by template.yaml: `pk`/`sk` strings, GSI `gsi1` on `gsi1pk`/`gsi1sk`, projection ALL):

| item | pk | sk | gsi1pk | gsi1sk |
|---|---|---|---|---|
| action record | `ACTION#<action id>` | `RECORD` | `AUDIT` | `<incident id>#<created at>#<action id>` |
| change (budgets) | `CHANGES#INCIDENT#<incident id>` | `<action id>` | | |
| change (budgets) | `CHANGES#HOUR#<YYYY-MM-DDTHH>` | `<applied at>#<action id>` | | |

The action id is derived from the idempotency key, so a claim reads and writes one item with a consistent
`GetItem` and a conditional write (`attribute_not_exists(pk)` for a new key, the `version` it read otherwise).
Listings (`cordon audit`) query the GSI, eventually consistent: they decide nothing. Budgets count the change
items on the table itself with consistent queries: one partition per incident, one per hour. The change items
are written in the same transaction as the `applied` outcome, with a condition that the claim is still ours.

Calls (IAM: dynamodb:GetItem, PutItem, Query): GetItem, PutItem alone or inside TransactWriteItems (outcome and
change items together), Query. Each asks for `ReturnConsumedCapacity=TOTAL`, summed in `read_units` and
`write_units` (a write refused by its condition reports none and is not counted).
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cordon.audit.base import DEFAULT_LEASE, AuditLog, utcnow
from cordon.audit.model import (
    CHANGED,
    RETRYABLE,
    AuditRecord,
    ClaimLostError,
    ClaimResult,
    Status,
    check_key,
    may_write,
    take_over,
)

DynamoDBClient = Any  # a boto3 DynamoDB client (mypy_boto3_dynamodb is not a dependency)

_RECORD_SK = "RECORD"
_LISTING = "AUDIT"
_MAX_CONFLICTS = 5


# --- requests, built in pure functions --------------------------------------------------------------------------
def record_key(action_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"ACTION#{action_id}"}, "sk": {"S": _RECORD_SK}}


def record_item(record: AuditRecord, version: int) -> dict[str, Any]:
    return {
        **record_key(record.id),
        "gsi1pk": {"S": _LISTING},
        "gsi1sk": {"S": f"{record.incident_id}#{record.created_at.isoformat()}#{record.id}"},
        "key": {"S": record.key},
        "incident_id": {"S": record.incident_id},
        "status": {"S": record.status.value},
        "version": {"N": str(version)},
        "body": {"S": record.model_dump_json()},
    }


def conditional_put(table: str, record: AuditRecord, seen_version: int | None) -> dict[str, Any]:
    """A put of the record that succeeds only if the item is still as we read it (absent, or `seen_version`)."""
    if seen_version is None:
        return {"TableName": table, "Item": record_item(record, 1), "ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "TableName": table,
        "Item": record_item(record, seen_version + 1),
        "ConditionExpression": "#version = :seen",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":seen": {"N": str(seen_version)}},
    }


def change_items(table: str, record: AuditRecord) -> list[dict[str, Any]]:
    """The items the budgets count, for an applied change (idempotent puts: one per action whatever happens)."""
    assert record.applied_at is not None
    applied = record.applied_at.astimezone(UTC)
    common = {"incident_id": {"S": record.incident_id}, "applied_at": {"S": applied.isoformat()}}
    return [
        {
            "TableName": table,
            "Item": {"pk": {"S": f"CHANGES#INCIDENT#{record.incident_id}"}, "sk": {"S": record.id}, **common},
        },
        {
            "TableName": table,
            "Item": {
                "pk": {"S": f"CHANGES#HOUR#{applied:%Y-%m-%dT%H}"},
                "sk": {"S": f"{applied.isoformat()}#{record.id}"},
                **common,
            },
        },
    ]


def hours_between(since: datetime, now: datetime) -> list[str]:
    """The hour partitions a budget window covers, oldest first."""
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = max(now.astimezone(UTC), hour)
    found = []
    while hour <= end:
        found.append(f"{hour:%Y-%m-%dT%H}")
        hour += timedelta(hours=1)
    return found


# --- the store ----------------------------------------------------------------------------------------------------
class DynamoDBAuditLog(AuditLog):
    """Handed a boto3 DynamoDB client (its retries configured in botocore) and the audit table's name."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._units_lock = threading.Lock()
        self.read_units = 0.0
        self.write_units = 0.0

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
        for _ in range(_MAX_CONFLICTS):
            existing, version = self._read(record.id)
            claimed = take_over(existing, record, token=token, lease=lease, now=now or utcnow(), takes_over=takes_over)
            if claimed is None:
                assert existing is not None
                return ClaimResult(existing, None)
            if self._put(conditional_put(self._table, claimed, version)):
                return ClaimResult(claimed, token)
            # Someone wrote the record between our read and our write: read again and decide again.
        existing, _ = self._read(record.id)
        assert existing is not None
        return ClaimResult(existing, None)

    def update(self, record: AuditRecord, token: str) -> AuditRecord:
        current, version = self._read(record.id)
        if not may_write(current, token):
            raise ClaimLostError(f"the claim on action {record.id} was taken over: its new owner's record stands")
        put = conditional_put(self._table, record, version)
        if record.status in CHANGED and record.counts_as_change:
            written = self._transact([put, *change_items(self._table, record)])
        else:
            written = self._put(put)
        if not written:
            raise ClaimLostError(f"the claim on action {record.id} was taken over: its new owner's record stands")
        return record

    def get(self, action_id: str) -> AuditRecord | None:
        return self._read(action_id)[0]

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        condition = "gsi1pk = :listing"
        values: dict[str, Any] = {":listing": {"S": _LISTING}}
        if incident_id is not None:
            condition += " AND begins_with(gsi1sk, :incident)"
            values[":incident"] = {"S": f"{incident_id}#"}
        items = self._query(IndexName="gsi1", KeyConditionExpression=condition, ExpressionAttributeValues=values)
        found = [AuditRecord.model_validate_json(item["body"]["S"]) for item in items]
        if incident_id is not None:  # an incident id that is a prefix of another one
            found = [r for r in found if r.incident_id == incident_id]
        return sorted(found, key=lambda r: (r.created_at, r.id))

    def applied_count(self, *, incident_id: str | None = None, since: datetime | None = None) -> int:
        if incident_id is not None:
            items = self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"CHANGES#INCIDENT#{incident_id}"}},
                ConsistentRead=True,
            )
            return sum(1 for item in items if since is None or item["applied_at"]["S"] >= _iso(since))
        if since is None:
            raise ValueError("applied_count over every incident needs `since` (the hourly budget)")
        count = 0
        for hour in hours_between(since, utcnow()):
            count += len(
                self._query(
                    KeyConditionExpression="pk = :pk AND sk >= :since",
                    ExpressionAttributeValues={":pk": {"S": f"CHANGES#HOUR#{hour}"}, ":since": {"S": _iso(since)}},
                    ConsistentRead=True,
                )
            )
        return count

    # --- thin calls -------------------------------------------------------------------------------------------------
    def _read(self, action_id: str) -> tuple[AuditRecord | None, int | None]:
        response = self._client.get_item(
            TableName=self._table, Key=record_key(action_id), ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
        )
        self._count(response.get("ConsumedCapacity"), "read")
        item = response.get("Item")
        if item is None:
            return None, None
        return AuditRecord.model_validate_json(item["body"]["S"]), int(item["version"]["N"])

    def _put(self, request: dict[str, Any]) -> bool:
        try:
            response = self._client.put_item(**request, ReturnConsumedCapacity="TOTAL")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        self._count(response.get("ConsumedCapacity"), "write")
        return True

    def _transact(self, puts: list[dict[str, Any]]) -> bool:
        try:
            response = self._client.transact_write_items(
                TransactItems=[{"Put": put} for put in puts], ReturnConsumedCapacity="TOTAL"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise
        self._count(response.get("ConsumedCapacity"), "write")
        return True

    def _query(self, **request: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            response = self._client.query(TableName=self._table, ReturnConsumedCapacity="TOTAL", **request)
            self._count(response.get("ConsumedCapacity"), "read")
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _count(self, consumed: Any, kind: str) -> None:
        """Add a response's `ConsumedCapacity` (one entry, or a list for transactions) to the read or write units."""
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        units = sum(float(entry.get("CapacityUnits", 0.0)) for entry in entries)
        with self._units_lock:
            if kind == "read":
                self.read_units += units
            else:
                self.write_units += units


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
