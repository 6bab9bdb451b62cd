"""Target 7: what the deployed correlator costs per event. DynamoDB request units, counted against a moto server
running the DynamoDB store; Lambda GB-seconds; USD per million events at public prices.

Request units are COMPUTED FROM ITEM SIZES, with botocore event hooks on the store's client, because moto's
ConsumedCapacity is not DynamoDB's: it reports 1 unit for a 3 KB put (DynamoDB: 3), 0.5 for a strongly consistent
read (DynamoDB: 1) and nothing for a transaction (DynamoDB: 2 units per KB per item). DynamoDB's rules, applied per
request as sent and answered (a write refused by its condition is charged all the same):

- writes: 1 unit per started KB of the item (the item after the update, for UpdateItem, read back on a side client
  that is not counted); 2 per KB in TransactWriteItems (condition checks included); one more write per KB for an
  item that carries the gsi1 index keys (the index is written too);
- reads: strongly consistent, 1 unit per started 4 KB (GetItem and BatchGetItem per item, Query over the sum of
  the items it returns, at least 1); eventually consistent, half.

The store's own count of moto's ConsumedCapacity is reported beside it, to show the difference.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotocoreConfig

from bench.cordon_side import Core
from bench.moto_server import REGION, create_table, moto_server, template
from correlators.ingest import read_stream
from correlators.pipeline import Pipeline
from correlators.state.dynamodb import DynamoDBStore, item_size

STATE_TABLE = "cordon-bench-state"

# --- public prices, us-east-1, x86 Lambda, on-demand DynamoDB, standard SQS queue ----------------------------------
PRICES_DATE = "2026-06"  # the published prices as of this month (DynamoDB on-demand since its 2024-11-01 cut)
LAMBDA_GB_SECOND_USD = 0.0000166667  # https://aws.amazon.com/lambda/pricing/
LAMBDA_REQUEST_USD = 0.20 / 1e6  # https://aws.amazon.com/lambda/pricing/
DYNAMODB_WRITE_UNIT_USD = 0.625 / 1e6  # https://aws.amazon.com/dynamodb/pricing/on-demand/
DYNAMODB_READ_UNIT_USD = 0.125 / 1e6  # https://aws.amazon.com/dynamodb/pricing/on-demand/
SQS_REQUEST_USD = 0.40 / 1e6  # https://aws.amazon.com/sqs/pricing/ (standard queue, per 64 KB request)
EVENTBRIDGE_EVENT_USD = 1.00 / 1e6  # https://aws.amazon.com/eventbridge/pricing/ (custom and cross-account events)

# Assumptions the bench cannot measure, stated here so they can be argued with.
FULL_VCPU_MB = 1_769  # Lambda gives one full vCPU at 1,769 MB, proportionally less below (Lambda docs)
DYNAMODB_LATENCY_S = 0.005  # a DynamoDB request from Lambda in-region: single-digit milliseconds
SQS_RECEIVE_BATCH = 10  # messages per ReceiveMessage / DeleteMessageBatch the event source mapping makes

_INDEX_KEY = "gsi1pk"


def _write_units(size: int) -> float:
    return float(max(1, math.ceil(size / 1024)))


def _read_units(size: int, consistent: bool) -> float:
    units = float(max(1, math.ceil(size / 4096)))
    return units if consistent else units / 2


class CapacityMeter:
    """Request units per DynamoDB request, from botocore's `provide-client-params` (the request as the store
    wrote it) and `after-call` (the answer) events on one client."""

    def __init__(self, client: Any, side_client: Any) -> None:
        self.read_units = 0.0
        self.write_units = 0.0
        self.calls: Counter[str] = Counter()
        self._side = side_client  # reads updated items back; its calls are not counted
        client.meta.events.register("provide-client-params.dynamodb", self._keep_request)
        client.meta.events.register("after-call.dynamodb", self._count)

    def _keep_request(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_request"] = params

    def _count(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        request: dict[str, Any] = context.get("bench_request", {})
        operation = str(model.name)
        self.calls[operation] += 1
        if operation == "PutItem":
            self.write_units += self._item_write(request["Item"])
        elif operation == "UpdateItem":
            self.write_units += self._item_write(self._current(request["TableName"], request["Key"]))
        elif operation == "BatchWriteItem":
            for requests in request["RequestItems"].values():
                self.write_units += sum(
                    self._item_write(r["PutRequest"]["Item"]) for r in requests if "PutRequest" in r
                )
        elif operation == "TransactWriteItems":
            self.write_units += sum(self._transact_part(part) for part in request["TransactItems"])
        elif operation == "GetItem":
            consistent = bool(request.get("ConsistentRead"))
            self.read_units += _read_units(item_size(parsed.get("Item", {})), consistent)
        elif operation == "BatchGetItem":
            for table, asked in request["RequestItems"].items():
                consistent = bool(asked.get("ConsistentRead"))
                found = parsed.get("Responses", {}).get(table, [])
                self.read_units += sum(_read_units(item_size(item), consistent) for item in found)
                self.read_units += (len(asked["Keys"]) - len(found)) * _read_units(0, consistent)
        elif operation == "Query":
            size = sum(item_size(item) for item in parsed.get("Items", []))
            self.read_units += _read_units(size, bool(request.get("ConsistentRead")))

    def _item_write(self, item: dict[str, Any]) -> float:
        units = _write_units(item_size(item))
        return units * 2 if _INDEX_KEY in item else units

    def _current(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = self._side.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", key)
        return found

    def _transact_part(self, part: dict[str, Any]) -> float:
        (kind, body), *_ = part.items()
        if kind == "Put":
            item = body["Item"]
        elif kind == "Update":
            item = self._current(body["TableName"], body["Key"])
        else:  # ConditionCheck, Delete: the item as it stands
            item = self._current(body["TableName"], body["Key"])
        return 2 * self._item_write(item)


@dataclass
class DynamoRun:
    events: int
    cpu_s: float
    read_units: float
    write_units: float
    moto_read_units: float  # what the store counted from moto's ConsumedCapacity
    moto_write_units: float
    calls: dict[str, int] = field(default_factory=dict)
    incidents_changed: int = 0

    @property
    def rcu_per_1k(self) -> float:
        return 1000 * self.read_units / self.events

    @property
    def wcu_per_1k(self) -> float:
        return 1000 * self.write_units / self.events

    @property
    def calls_per_event(self) -> float:
        return sum(self.calls.values()) / self.events


def spread(lines: Sequence[bytes], count: int) -> list[bytes]:
    """`count` lines taken evenly over the whole stream, in order: its first lines are one detonation's records,
    not the mix of a trail."""
    step = max(1, len(lines) // count)
    return list(lines[::step][:count])


def measure_dynamodb(core: Core, lines: Sequence[bytes]) -> DynamoRun:
    import io

    with moto_server() as endpoint:
        config = BotocoreConfig(retries={"mode": "standard"})
        client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, config=config)
        side = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, config=config)
        create_table(client, STATE_TABLE, "StateTable")
        meter = CapacityMeter(client, side)
        store = DynamoDBStore(client, STATE_TABLE)
        core_pipeline = Pipeline(core.config, core.rules, store)
        batch = correlator_batch_size()
        began = time.process_time()  # the correlator's CPU: botocore included, the server is another process
        for number, item in enumerate(read_stream(io.BytesIO(b"".join(lines)), "bench"), start=1):
            core_pipeline.take(item)
            if number % batch == 0:  # the end of an invocation, as the correlator's handler ends each
                core_pipeline.share_watermark()
                store.sync()
        core_pipeline.flush()
        cpu = time.process_time() - began
    return DynamoRun(
        events=len(lines),
        cpu_s=cpu,
        read_units=meter.read_units,
        write_units=meter.write_units,
        moto_read_units=store.read_units,
        moto_write_units=store.write_units,
        calls=dict(meter.calls),
        incidents_changed=len(core_pipeline.incidents.changed),
    )


# --- Lambda and the bill ----------------------------------------------------------------------------------------
def correlator_memory_mb() -> int:
    resources = template()["Resources"]
    memory = resources["CorrelatorFunction"]["Properties"].get("MemorySize")
    return int(memory if memory is not None else template()["Globals"]["Function"]["MemorySize"])


def correlator_batch_size() -> int:
    events = template()["Resources"]["CorrelatorFunction"]["Properties"]["Events"]
    return int(next(iter(events.values()))["Properties"]["BatchSize"])


@dataclass(frozen=True)
class Bill:
    lambda_gb_s_per_1k: float
    usd_per_million: float
    parts_usd_per_million: dict[str, float]
    memory_mb: int
    seconds_per_event: float


def bill(run: DynamoRun) -> Bill:
    """Lambda time per event = the measured CPU, stretched by the share of a vCPU the memory size buys, plus the
    DynamoDB round trips the run made at an assumed in-region latency."""
    memory_mb = correlator_memory_mb()
    vcpu_share = min(1.0, memory_mb / FULL_VCPU_MB)
    seconds = run.cpu_s / run.events / vcpu_share + run.calls_per_event * DYNAMODB_LATENCY_S
    gb_s = seconds * memory_mb / 1024
    per_event = {
        "lambda_duration": gb_s * LAMBDA_GB_SECOND_USD,
        "lambda_requests": LAMBDA_REQUEST_USD / correlator_batch_size(),
        "dynamodb": run.read_units / run.events * DYNAMODB_READ_UNIT_USD
        + run.write_units / run.events * DYNAMODB_WRITE_UNIT_USD,
        # One SendMessage per event, a receive and a delete per batch the event source mapping polls.
        "sqs": SQS_REQUEST_USD * (1 + 2 / SQS_RECEIVE_BATCH),
        # Intake (member accounts forward to the central bus: cross-account events are charged) and the incident
        # events the correlator publishes on Cordon's bus.
        "eventbridge": EVENTBRIDGE_EVENT_USD * (1 + run.incidents_changed / run.events),
    }
    parts = {name: usd * 1e6 for name, usd in per_event.items()}
    return Bill(1000 * gb_s, sum(parts.values()), parts, memory_mb, seconds)
