"""An unlucky day in AWS: the DynamoDB state table answers through a proxy that throttles, fails with 500s and
resets connections before and after applying a request. botocore's standard retries absorb most of it; a
request that still fails fails its event, which is delivered again (as SQS would). The incidents end exactly as
one clean sorted pass makes them: nothing lost, nothing counted twice, even when a transaction was applied and
its answer lost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff

from correlators.pipeline import Pipeline
from correlators.state.dynamodb import DynamoDBStore
from tests.e2e.deployed_stack import SerialMotoServer
from tests.functional.fault_proxy import FaultProxy
from tests.unit.test_delivery_order import _incidents, _sorted_pass
from tests.unit.test_event_time_order import CONFIG, EVENTS, RULES
from tests.unit.test_state_contract import state_table_properties

# The demo's first hour: the contractor's theft and the stolen credentials' first moves (moto's DynamoDB is slow:
# every transaction copies the table).
SCENARIOS = [e for e in EVENTS if "examples/scenarios" in e.origin][:30]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[SerialMotoServer]:
    server = SerialMotoServer().start()
    yield server
    server.stop()


def _client(endpoint: str, attempts: int) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": attempts}, connect_timeout=2, read_timeout=5)
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def _table(client: Any, name: str) -> None:
    table = state_table_properties()
    client.create_table(
        TableName=name,
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )


def test_throttling_500s_and_resets_lose_nothing_and_count_nothing_twice(
    moto_server: SerialMotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's backoff waits up to seconds between attempts; the test keeps the attempts and drops the waiting.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    rate, attempts = 0.2, 3
    # GIVEN the state table behind a proxy that faults on a fifth of the requests (three attempts each)
    table = "state"
    _table(_client(moto_server.url, 3), table)
    with FaultProxy(moto_server.port, rate=rate, seed=attempts) as proxy:
        pipeline = Pipeline(CONFIG, RULES, DynamoDBStore(_client(proxy.url, attempts), table))
        # WHEN the demo's events are processed, an event whose processing fails being delivered again later
        pending, failures = list(SCENARIOS), 0
        while pending and failures < 500:
            event = pending.pop(0)
            try:
                pipeline.submit(event)
            except Exception:  # botocore gave up, or a conflict storm: the record goes back to the queue
                failures += 1
                pending.append(event)
        # THEN every event got through, every kind of fault happened, and the incidents are those of a clean pass
        assert pending == []
        assert set(proxy.injected) == {"throttle", "error500", "reset_before", "reset_after"}, proxy.injected
    clean = DynamoDBStore(_client(moto_server.url, 3), table)
    assert _incidents(clean) == _sorted_pass(SCENARIOS)
    assert failures > 0  # some events did fail past the retries and were processed again
