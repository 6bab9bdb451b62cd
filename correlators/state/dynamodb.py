"""DynamoDB state: the store of the deployed stack, one table shared by every correlator invocation.

The store is handed a boto3 DynamoDB *client* (the core imports no AWS SDK) and the table name. Configure the
client with `botocore.config.Config(retries={"mode": "standard"})` (or "adaptive"): throttling and 5xx are
botocore's to retry. This module adds only what botocore cannot do: it re-sends the unprocessed part of a batch,
and it turns a transaction cancelled by a condition into `commit` returning False.

Table (fixed by template.yaml): HASH `pk` (S), RANGE `sk` (S), TTL attribute `expires_at` (epoch seconds), GSI
`gsi1` (HASH `gsi1pk`, RANGE `gsi1sk`, projection ALL). Item layout, one table for everything:

| item | pk | sk | other attributes |
|---|---|---|---|
| signal copy | `sig#<partition>` | `<event time>#<signal id>` | `body` (B), `expires_at`, `trimmed` (N, level) |
| signal marker | `put#<signal id>` | `#` | `expires_at` |
| signal counter | `count#<shard>` | `#` | `n` (N) |
| seen event | `seen#<key>` | `#` | `time` (S), `expires_at` (event time + `seen_for`) |
| incident | `inc#<id>` | `#` | `body` (B), `version`, `handled` (N), `gsi1pk`/`gsi1sk` while live |
| entity links | `link#<entity key>` | `#` | `body` (B), `version` (N), `expires_at` (last write + `seen_for`) |
| membership | `member#<signal id>` | `#` | `incident` (S), `expires_at` (written + `seen_for`) |
| meta | `meta#<key>` | `#` | `value` (S) |

Choices made here:

- Times in sort keys are UTC, fixed width (`2026-11-20T09:00:00.000000Z`), so string order is time order and a
  window is one strongly consistent Query: `sk BETWEEN "<start>" AND "<end>$"` (`$` sorts right after the `#`
  that follows every time), bounds inclusive, oldest first, ties by signal id. A key longer than DynamoDB allows
  (2,048 bytes for pk, 1,024 for sk) is cut and ends in the SHA-256 of the whole key, so it stays unique.
- `put_signal` writes the partition copies first (BatchWriteItem, plain puts of identical items) and then the
  marker, conditional on its absence: the marker says "stored"; a crash between the two leaves no marker and the
  retry writes the same copies again. A stored signal is never rewritten. TTL (`expires_at` = `expires`) removes
  copies and marker; reads do not filter on it, because the windows the core reads never reach past a signal's
  expiry (it is set from the longest window), and DynamoDB may keep an expired item for a while.
- `signal_count` is the sum of 16 counter shards: signals ever stored, since TTL deletions are not subtracted. A
  handle counts the signals it stores (after their markers) and adds them to one shard, drawn at random per handle,
  at `sync` (the correlator syncs at the end of each invocation; `signal_count` syncs its own handle first): one
  UpdateItem an invocation instead of one a signal, a tenth of the requests of a signal-heavy stream. Other handles
  see a count once it is synced, as with SQLite's batches; a crash before leaves those signals uncounted, and a
  failed sync keeps them for the next. It is a statistic (the correlator's metrics count signals too); the pipeline
  does no housekeeping for this store (`expires_by_itself`).
- Bodies are zlib-compressed JSON. No item exceeds `MAX_ITEM_BYTES` (64,000 bytes, measured as DynamoDB sizes
  items): a signal whose compressed body would is stored with its raw event trimmed (`trim_signal` says how);
  an incident or links item that would is refused with StateError before anything is written (the incident's
  caps keep it far below; a links item grows with the incidents one entity ties, which the core bounds).
- Incidents carry `version` (the condition of the next commit) and `handled` (the version a shell handled). A
  live incident is in gsi1 under `incidents#open` (changed since handled) or `incidents#handled`, sort key
  `<last_seen>#<id>`; a merged incident leaves the index. `commit` writes incidents with UpdateItem (so `handled`
  survives) and puts `incidents#open`; `mark_handled` moves an incident to `incidents#handled` only if its
  version is still at most the handled one, in one conditional update. Index reads (`incidents`,
  `unhandled_incidents`) are eventually consistent, as every GSI read is: a change committed a moment ago may
  show a moment later. `get_incident` is strongly consistent.
- `commit` is one TransactWriteItems (at most `Commit.MAX_ITEMS` items): incidents and links conditional on their
  version (`attribute_not_exists(pk)` for version 0), members created only if absent (a signal counts once).
  Cancelled by a condition or a conflicting transaction: False; cancelled for any other reason (a throttled part,
  a validation error): the TransactionCanceledException is raised, and the record is retried by its delivery.
  botocore fills ClientRequestToken, so its own retry of a transaction that did commit is answered as a success,
  not as a lost race.
- The watermark (`meta#max_event_time`) is raised by one UpdateItem conditional on the stored text sorting
  before the new one (`raise_watermark`), so parallel invocations never lower it.
- `read_units`/`write_units` add up the `ConsumedCapacity` of every call (`ReturnConsumedCapacity="TOTAL"`).
  DynamoDB reports nothing for a request that fails (a failed condition, a cancelled transaction), so those
  units (one write unit per item attempted) are not in the totals.

IAM: GetItem, PutItem, UpdateItem, DeleteItem (unused so far), Query, BatchGetItem, BatchWriteItem,
ConditionCheckItem (a transaction's condition parts), on the table and its index. No Scan.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
import time as clock
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from correlators.errors import StateError
from correlators.signals import Incident, Signal
from correlators.state.base import WATERMARK_KEY, Commit, EntityLinks, Span, StateStore, parse_watermark, watermark_text

# DynamoDB's limit is 400 KB; this store keeps every item under 64,000 bytes (one item = at most 63 write units,
# 8 read units for a strongly consistent read).
MAX_ITEM_BYTES = 64_000
_PK_BYTES = 2048
_SK_BYTES = 1024
_ONE = "#"  # the sort key of every item that is alone under its partition key
_COUNTER_SHARDS = 16
_BATCH_GET = 100
_BATCH_WRITE = 25
_UNPROCESSED_ATTEMPTS = 8
_OPEN = "incidents#open"
_HANDLED = "incidents#handled"
_CONFLICTS = {"ConditionalCheckFailed", "TransactionConflict"}

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


# --- pure: keys, sizes, bodies ------------------------------------------------------------------------------------
def time_key(time: datetime) -> str:
    """A time as a sort key: UTC, fixed width, so string order is time order."""
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bounded_key(key: str, limit: int) -> str:
    """`key` itself when it fits in `limit` UTF-8 bytes, else a cut of it ending in the SHA-256 of all of it."""
    data = key.encode()
    if len(data) <= limit:
        return key
    digest = hashlib.sha256(data).hexdigest()
    head = data[: limit - len(digest) - 1].decode(errors="ignore")
    return f"{head}~{digest}"


def signal_sort_key(signal: Signal) -> str:
    return bounded_key(f"{time_key(signal.time)}#{signal.id}", _SK_BYTES)


def item_size(item: Item) -> int:
    """An item's size as DynamoDB counts it (attribute names plus values), rounded up where DynamoDB is vague:
    a number counts as its digits plus one byte, a map or list 3 bytes plus one per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: AttributeValue) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        return len(str(data)) + 1
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in data.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    return 3 + sum(len(str(v).encode()) + 1 for v in data)  # SS, NS, BS


def _pack(text: str) -> bytes:
    return zlib.compress(text.encode(), 6)


def _unpack(data: bytes) -> str:
    return zlib.decompress(data).decode()


# Trimming levels for a signal too big to store whole: (longest string kept, items kept per list and keys per
# object, deepest nesting kept). Level 0 stores the signal as it is.
_RAW_TRIMS: tuple[tuple[int, int, int], ...] = ((4096, 64, 8), (1024, 16, 5), (256, 4, 3))
_DROP = object()


def trim_signal(signal: Signal, budget: int) -> tuple[bytes, int]:
    """The compressed body of a signal that fits in `budget` bytes, and how far it had to be trimmed.

    Deterministic: the same signal always gives the same body, so a re-put writes identical items.

    - level 0: the signal as it is (`Signal.model_dump_json()`).
    - levels 1-3: the normalized event (actor, resources, finding, alarm, action, addresses, ids, time) stays
      whole; `raw` keeps, at each level, strings cut to their first 4096 / 1024 / 256 characters, the first
      64 / 16 / 4 items of every list and keys of every object (in their order), and nothing nested deeper than
      8 / 5 / 3 levels. A CloudTrail record keeps its top-level fields (eventName, eventSource, eventID,
      userIdentity.type/arn/accessKeyId, sourceIPAddress, errorCode ...) at level 1 and 2; level 3 keeps its
      first four top-level fields only. Sigma fields under what was cut read as absent.
    - level 4: `raw` is empty: only the normalized event survives.
    - level 5: also the resources past the first that fit are dropped (kept in the event's order).
    StateError when even a signal with no raw event and no resources does not fit.
    """
    body = _pack(signal.model_dump_json())
    if len(body) <= budget:
        return body, 0
    document = json.loads(signal.model_dump_json())
    raw = document["event"]["raw"]
    for level, (text, items, depth) in enumerate(_RAW_TRIMS, start=1):
        document["event"]["raw"] = _prune(raw, text, items, depth)
        body = _pack(json.dumps(document, separators=(",", ":")))
        if len(body) <= budget:
            return body, level
    document["event"]["raw"] = {}
    body = _pack(json.dumps(document, separators=(",", ":")))
    if len(body) <= budget:
        return body, len(_RAW_TRIMS) + 1
    resources = document["event"]["resources"]
    low, high = 0, len(resources)  # the most resources that fit: low fits (or nothing does), high + 1 does not
    while low < high:
        middle = (low + high + 1) // 2
        document["event"]["resources"] = resources[:middle]
        if len(_pack(json.dumps(document, separators=(",", ":")))) <= budget:
            low = middle
        else:
            high = middle - 1
    document["event"]["resources"] = resources[:low]
    body = _pack(json.dumps(document, separators=(",", ":")))
    if len(body) > budget:
        raise StateError(
            f"signal {signal.id[:200]!r} does not fit in a {MAX_ITEM_BYTES}-byte item even without its raw event"
            " and resources: its normalized fields are too big to store"
        )
    return body, len(_RAW_TRIMS) + 2


def _prune(value: Any, text: int, items: int, depth: int) -> Any:
    if isinstance(value, str):
        return value[:text]
    if isinstance(value, dict):
        if depth == 0:
            return _DROP
        pruned = ((key, _prune(inner, text, items, depth - 1)) for key, inner in list(value.items())[:items])
        return {key: inner for key, inner in pruned if inner is not _DROP}
    if isinstance(value, list):
        if depth == 0:
            return _DROP
        kept = (_prune(inner, text, items, depth - 1) for inner in value[:items])
        return [inner for inner in kept if inner is not _DROP]
    return value


def _links_body(links: EntityLinks) -> str:
    spans = {incident: [time_key(s.first), time_key(s.last)] for incident, s in sorted(links.incidents.items())}
    return json.dumps({"incidents": spans}, separators=(",", ":"))


def _parse_links(entity: str, version: int, body: str) -> EntityLinks:
    spans = json.loads(body)["incidents"]
    return EntityLinks(
        entity,
        version,
        {incident: Span(_parse_time(first), _parse_time(last)) for incident, (first, last) in spans.items()},
    )


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _key(pk: str, sk: str = _ONE) -> Item:
    return {"pk": {"S": bounded_key(pk, _PK_BYTES)}, "sk": {"S": sk}}


def _epoch(time: datetime) -> AttributeValue:
    return {"N": str(int(time.timestamp()))}


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- the store ------------------------------------------------------------------------------------------------------
class DynamoDBStore(StateStore):
    """The state store over one DynamoDB table (layout in the module docstring). Thread-safe: the boto3 client is,
    and the unit counters are behind a lock."""

    expires_by_itself = True

    def __init__(self, client: Any, table: str, *, seen_for: timedelta = timedelta(days=7)) -> None:
        # `client`: a boto3 DynamoDB client (typed Any: the core carries no boto3 stubs).
        # `seen_for`: how long after its event time an event counts as seen (TTL of the seen item); at least the
        # pipeline's retention. A redelivery after that is processed again, which is harmless.
        self._client = client
        self._table = table
        self._seen_for = seen_for
        self._errors = client.exceptions
        self._lock = threading.Lock()
        self.read_units = 0.0
        self.write_units = 0.0
        self._uncounted = 0  # signals this handle stored since its last `sync`
        self._shard = secrets.randbelow(_COUNTER_SHARDS)  # spreads the handles' counts over the shards

    # --- calls: every one returns consumed capacity -------------------------------------------------------------
    def _count(self, kind: str, consumed: Any) -> None:
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        units = sum(float(entry.get("CapacityUnits", 0.0)) for entry in entries)
        with self._lock:
            if kind == "read":
                self.read_units += units
            else:
                self.write_units += units

    def _call(self, kind: str, operation: Callable[..., Any], **request: Any) -> Any:
        response = operation(ReturnConsumedCapacity="TOTAL", **request)
        self._count(kind, response.get("ConsumedCapacity"))
        return response

    def _code(self, error: Exception) -> str:
        return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))

    def _put_if_absent(self, item: Item) -> bool:
        try:
            self._call(
                "write",
                self._client.put_item,
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._errors.ConditionalCheckFailedException:
            return False
        return True

    def _get(self, pk: str, projection: str, names: dict[str, str] | None = None) -> Item | None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(pk),
            "ConsistentRead": True,
            "ProjectionExpression": projection,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        item: Item | None = self._call("read", self._client.get_item, **request).get("Item")
        return item

    def _batch_get(self, pks: Iterable[str]) -> dict[str, Item]:
        """Items by partition key (strongly consistent), unprocessed keys asked again."""
        wanted = {bounded_key(pk, _PK_BYTES): pk for pk in pks}
        found: dict[str, Item] = {}
        for chunk in _chunks(sorted(wanted), _BATCH_GET):
            request = {self._table: {"Keys": [_key(pk) for pk in chunk], "ConsistentRead": True}}
            for attempt in range(_UNPROCESSED_ATTEMPTS):
                response = self._call("read", self._client.batch_get_item, RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    found[wanted[item["pk"]["S"]]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                clock.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StateError(f"DynamoDB table {self._table}: keys still unprocessed after a batch read's retries")
        return found

    def _batch_put(self, items: list[Item]) -> None:
        for chunk in _chunks(items, _BATCH_WRITE):
            request = {self._table: [{"PutRequest": {"Item": item}} for item in chunk]}
            for attempt in range(_UNPROCESSED_ATTEMPTS):
                response = self._call("write", self._client.batch_write_item, RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                clock.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StateError(f"DynamoDB table {self._table}: items still unprocessed after a batch write's retries")

    def _query(self, **request: Any) -> Iterator[Item]:
        request = {"TableName": self._table, **request}
        while True:
            response = self._call("read", self._client.query, **request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- signals ---------------------------------------------------------------------------------------------------
    def signal_items(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> list[Item]:
        """The partition copies of a signal, each within MAX_ITEM_BYTES (pure: builds, writes nothing)."""
        keys = [_key(f"sig#{partition}", signal_sort_key(signal)) for partition in sorted(set(partitions))]
        if not keys:
            return []
        extra: Item = {"expires_at": _epoch(expires), "trimmed": {"N": "0"}, "body": {"B": b""}}
        overhead = max(item_size({**key, **extra}) for key in keys)
        body, level = trim_signal(signal, MAX_ITEM_BYTES - overhead)
        return [
            {**key, "expires_at": _epoch(expires), "trimmed": {"N": str(level)}, "body": {"B": body}} for key in keys
        ]

    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        self._batch_put(self.signal_items(signal, partitions, expires))
        if not self._put_if_absent({**_key(f"put#{signal.id}"), "expires_at": _epoch(expires)}):
            return False
        with self._lock:
            self._uncounted += 1
        return True

    def sync(self) -> None:
        """Add the signals this handle stored since its last sync to its counter shard (the only write it holds)."""
        with self._lock:
            pending, self._uncounted = self._uncounted, 0
        if not pending:
            return
        try:
            self._call(
                "write",
                self._client.update_item,
                TableName=self._table,
                Key=_key(f"count#{self._shard}"),
                UpdateExpression="ADD #n :pending",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":pending": {"N": str(pending)}},
            )
        except BaseException:
            with self._lock:
                self._uncounted += pending  # counted at the next sync
            raise

    def signals(
        self, partition: str, start: datetime, end: datetime, *, newest_first: bool = False, limit: int | None = None
    ) -> list[Signal]:
        if end < start or limit == 0:
            return []
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": bounded_key(f"sig#{partition}", _PK_BYTES)},
                ":low": {"S": time_key(start)},
                ":high": {"S": time_key(end) + "$"},
            },
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
        }
        if limit is not None:
            request["Limit"] = limit  # a page of that many; no further page is read
        items = itertools.islice(self._query(**request), limit)
        return [Signal.model_validate_json(_unpack(item["body"]["B"])) for item in items]

    def signal_count(self) -> int:
        self.sync()
        shards = self._batch_get(f"count#{shard}" for shard in range(_COUNTER_SHARDS))
        return sum(int(item["n"]["N"]) for item in shards.values())

    def expire_signals(self, now: datetime) -> int:
        return 0  # DynamoDB's TTL deletes signals past `expires_at`

    def evict_stalest(self, keep: int) -> int:
        return 0  # bounded by TTL, not by a count

    # --- events already processed ------------------------------------------------------------------------------
    def seen(self, key: str) -> bool:
        return self._get(f"seen#{key}", projection="pk") is not None

    def mark_seen(self, key: str, time: datetime) -> None:
        self.mark_new(key, time)

    def mark_new(self, key: str, time: datetime) -> bool:
        return self._put_if_absent(
            {**_key(f"seen#{key}"), "time": {"S": time_key(time)}, "expires_at": _epoch(time + self._seen_for)}
        )

    def forget_events(self, before: datetime) -> int:
        return 0  # seen items expire by TTL, `seen_for` after their event time

    # --- incidents ------------------------------------------------------------------------------------------------
    def get_incident(self, incident_id: str) -> Incident | None:
        item = self._get(f"inc#{incident_id}", projection="body")
        return Incident.model_validate_json(_unpack(item["body"]["B"])) if item else None

    def get_links(self, entities: Iterable[str]) -> dict[str, EntityLinks]:
        keys = list(dict.fromkeys(entities))
        items = self._batch_get(f"link#{entity}" for entity in keys)
        found = {}
        for entity in keys:
            item = items.get(f"link#{entity}")
            found[entity] = (
                _parse_links(entity, int(item["version"]["N"]), _unpack(item["body"]["B"]))
                if item
                else EntityLinks(entity)
            )
        return found

    def members(self, signal_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(signal_ids))
        items = self._batch_get(f"member#{signal_id}" for signal_id in ids)
        return {i: items[f"member#{i}"]["incident"]["S"] for i in ids if f"member#{i}" in items}

    def transact_items(self, commit: Commit) -> list[dict[str, Any]]:
        """The TransactWriteItems parts of a commit (pure); StateError for an item over MAX_ITEM_BYTES."""
        parts: list[dict[str, Any]] = []
        for write in commit.incidents:
            parts.append({"Update": self._incident_update(write.incident, write.expected_version)})
        for links_write in commit.links:
            links = links_write.links
            item = {
                **_key(f"link#{links.entity}"),
                "version": {"N": str(links.version)},
                "body": {"B": _pack(_links_body(links))},
                "expires_at": self._kept_until(),  # refreshed by every commit that touches the entity
            }
            self._check_size(item, f"links of {links.entity[:200]!r}")
            condition, values = _expect(links_write.expected_version)
            put: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
            if values:
                put |= {"ExpressionAttributeNames": {"#version": "version"}, "ExpressionAttributeValues": values}
            parts.append({"Put": put})
        for signal_id, incident_id in sorted(commit.members.items()):
            item = {**_key(f"member#{signal_id}"), "incident": {"S": incident_id}, "expires_at": self._kept_until()}
            # Created once: a signal counted anywhere already makes the whole commit a lost race.
            parts.append(
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
            )
        return parts

    def _kept_until(self) -> AttributeValue:
        """TTL of link and membership items: `seen_for` after they were last written, far longer than any window
        needs them (a signal outlives its windows by hours), so the table does not grow with every signal."""
        return _epoch(datetime.now(UTC) + self._seen_for)

    def _incident_update(self, incident: Incident, expected: int) -> dict[str, Any]:
        body = _pack(incident.model_dump_json())
        values: Item = {":body": {"B": body}, ":version": {"N": str(incident.version)}, ":zero": {"N": "0"}}
        names = {"#body": "body", "#version": "version", "#handled": "handled"}
        update = "SET #body = :body, #version = :version, #handled = if_not_exists(#handled, :zero)"
        index: Item = {}
        if incident.merged_into is None:
            index = {"gsi1pk": {"S": _OPEN}, "gsi1sk": {"S": f"{time_key(incident.last_seen)}#{incident.id}"}}
            values |= {":gsi1pk": index["gsi1pk"], ":gsi1sk": index["gsi1sk"]}
            update += ", gsi1pk = :gsi1pk, gsi1sk = :gsi1sk"
        else:
            update += " REMOVE gsi1pk, gsi1sk"
        key = _key(f"inc#{incident.id}")
        self._check_size(
            {**key, "body": values[":body"], "version": values[":version"], "handled": values[":version"], **index},
            f"incident {incident.id!r}",
        )
        condition, expected_values = _expect(expected)
        return {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": update,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values | expected_values,
            "ConditionExpression": condition,
        }

    def _check_size(self, item: Item, what: str) -> None:
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise StateError(
                f"{what} would be a {size}-byte DynamoDB item, over this store's bound of {MAX_ITEM_BYTES} bytes:"
                " nothing of the commit was written"
            )

    def commit(self, commit: Commit) -> bool:
        if commit.size > Commit.MAX_ITEMS:
            raise StateError(
                f"a commit of {commit.size} items is over DynamoDB's {Commit.MAX_ITEMS} per transaction:"
                " split it into several commits"
            )
        parts = self.transact_items(commit)
        if not parts:
            return True
        try:
            self._call("write", self._client.transact_write_items, TransactItems=parts)
        except self._errors.TransactionCanceledException as error:
            reasons = {reason.get("Code") for reason in getattr(error, "response", {}).get("CancellationReasons", [])}
            if reasons - {None, "None"} <= _CONFLICTS and reasons & _CONFLICTS:
                return False
            raise
        return True

    def _live(self, partition: str, since: datetime | None, only_unhandled: bool = False) -> list[Incident]:
        request: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition}},
        }
        if since is not None:
            request["KeyConditionExpression"] += " AND gsi1sk >= :since"
            request["ExpressionAttributeValues"][":since"] = {"S": time_key(since)}
        if only_unhandled:
            request["FilterExpression"] = "#version > #handled"
            request["ExpressionAttributeNames"] = {"#version": "version", "#handled": "handled"}
        return [Incident.model_validate_json(_unpack(item["body"]["B"])) for item in self._query(**request)]

    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        found = self._live(_OPEN, since) + self._live(_HANDLED, since)
        return sorted((i for i in found if i.merged_into is None), key=lambda i: (i.first_seen, i.id))

    def unhandled_incidents(self) -> list[Incident]:
        found = self._live(_OPEN, None, only_unhandled=True)
        return sorted((i for i in found if i.merged_into is None), key=lambda i: (i.first_seen, i.id))

    def mark_handled(self, incident_id: str, version: int) -> None:
        key = _key(f"inc#{incident_id}")
        handled = {":handled": {"N": str(version)}}
        attempts = (
            # Caught up: out of the open partition of the index, if the incident is live and not changed since.
            (
                "SET #handled = :handled, gsi1pk = :done",
                "attribute_exists(gsi1pk) AND #version <= :handled AND #handled < :handled",
                {"#version": "version", "#handled": "handled"},
                {**handled, ":done": {"S": _HANDLED}},
            ),
            # Changed since (or merged): only the handled version moves.
            (
                "SET #handled = :handled",
                "attribute_exists(pk) AND #handled < :handled",
                {"#handled": "handled"},
                handled,
            ),
        )
        for update, condition, names, values in attempts:
            if self._update_unless_conflict(key, update, condition, names, values):
                return

    def _update_unless_conflict(
        self, key: Item, update: str, condition: str, names: dict[str, str], values: Item
    ) -> bool:
        # botocore does not retry TransactionConflictException (this item is in a commit's transaction right
        # now): it is retried here, a few times; the condition is evaluated again on the committed item.
        for attempt in range(_UNPROCESSED_ATTEMPTS):
            try:
                self._call(
                    "write",
                    self._client.update_item,
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except self._errors.ConditionalCheckFailedException:
                return False
            except self._errors.ClientError as error:
                if self._code(error) != "TransactionConflictException" or attempt == _UNPROCESSED_ATTEMPTS - 1:
                    raise
                clock.sleep(min(0.02 * 2**attempt, 0.5))
                continue
            return True
        return False

    # --- meta ------------------------------------------------------------------------------------------------------
    def raise_watermark(self, time: datetime) -> datetime:
        # One conditional UpdateItem: written only over an earlier value (the text sorts as the time does, see
        # `watermark_text`). A failed condition means another process raised it as far or further: read it back.
        # A stored text that compares later but reads earlier (not written by `watermark_text`) is replaced only
        # if it is still what was read.
        key, names, new = _key(f"meta#{WATERMARK_KEY}"), {"#value": "value"}, {":new": {"S": watermark_text(time)}}
        earlier = "attribute_not_exists(#value) OR #value < :new"
        condition, values = earlier, new
        for _ in range(_UNPROCESSED_ATTEMPTS):
            if self._update_unless_conflict(key, "SET #value = :new", condition, names, values):
                return time
            saved = self.get_meta(WATERMARK_KEY)
            stored = parse_watermark(saved)
            if stored is not None and stored >= time:
                return stored
            condition, values = (earlier, new) if saved is None else ("#value = :read", {**new, ":read": {"S": saved}})
        raise StateError(f"DynamoDB table {self._table}: the watermark kept changing while it was being raised")

    def get_meta(self, key: str) -> str | None:
        item = self._get(f"meta#{key}", projection="#value", names={"#value": "value"})
        return str(item["value"]["S"]) if item else None

    def set_meta(self, key: str, value: str) -> None:
        self._call(
            "write", self._client.put_item, TableName=self._table, Item={**_key(f"meta#{key}"), "value": {"S": value}}
        )


def _expect(version: int) -> tuple[str, Item]:
    """The condition of a versioned write (`#version` names `version`): absent for version 0, else exactly it."""
    if version == 0:
        return "attribute_not_exists(pk)", {}
    return "#version = :expected", {":expected": {"N": str(version)}}
