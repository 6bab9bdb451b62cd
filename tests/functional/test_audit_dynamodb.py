"""The DynamoDB audit store on moto: the claims contract suite of tests/unit/test_audit_contract.py, the executor
race of tests/unit/test_audit_executor.py, consumed capacity, and `cordon audit --state dynamodb://...`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cordon.audit import AuditLog, Status
from cordon.audit.dynamodb import DynamoDBAuditLog, hours_between
from cordon.cli import main
from cordon.respond import audit_log_for
from correlators.errors import StateError
from tests.unit.test_audit_contract import (  # noqa: F401 - the contract suite, run here against DynamoDB
    LEASE,
    T0,
    record,
    settle,
    test_a_claim_names_the_records_key,
    test_a_claim_writes_an_in_progress_record_with_a_lease_before_anything_is_done,
    test_a_held_claim_is_reported_and_not_taken,
    test_a_retryable_outcome_is_claimed_again_on_the_same_record,
    test_a_settled_key_is_never_claimed_again_even_long_after,
    test_a_stale_owner_cannot_overwrite_the_new_owners_outcome,
    test_an_expired_claim_is_taken_over_and_keeps_the_state_before_the_first_attempt,
    test_applied_count_counts_changes_by_incident_and_since,
    test_approval_and_rollback_take_the_claim_from_their_own_status_only,
    test_eight_threads_claiming_one_key_give_one_owner,
    test_records_of_one_incident_oldest_first,
    test_the_owner_writes_its_outcome,
)
from tests.unit.test_audit_executor import assert_applied_once, race_runners
from tests.unit.test_state_contract import SerializedClient

TABLE = "cordon-AuditTable-TEST"


def create_audit_table(client: Any, name: str = TABLE) -> None:
    """The table as template.yaml declares AuditTable."""
    strings = ("pk", "sk", "gsi1pk", "gsi1sk")
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in strings],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(client)
        # moto's DynamoDB is not thread-safe ("dictionary changed size during iteration" when one request reads a
        # table another writes): requests run one at a time, as DynamoDB runs each atomically; racing threads
        # (the contract's and the runners') still interleave between requests.
        yield SerializedClient(client)


@pytest.fixture
def store(dynamodb: Any) -> DynamoDBAuditLog:
    return DynamoDBAuditLog(dynamodb, TABLE)


def test_eight_runners_on_dynamodb_apply_every_action_once(dynamodb) -> None:
    applies, store = race_runners(lambda: DynamoDBAuditLog(dynamodb, TABLE))
    assert_applied_once(applies, store)


def test_every_call_counts_its_consumed_capacity(store) -> None:
    claim = store.claim(record().key, record(), LEASE, now=T0)
    assert store.read_units > 0  # the GetItem (moto reports 0.5 whatever the consistency)
    assert store.write_units == 1.0  # the PutItem
    settle(store, claim.record, claim.token, Status.FAILED)
    assert store.write_units == 2.0
    reads = store.read_units
    store.applied_count(incident_id="inc-1")
    assert store.read_units > reads


def test_a_claim_reads_consistently_and_writes_conditionally(dynamodb, store) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    dynamodb.meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, model, **_: calls.append((model.name, params))
    )
    store.claim(record().key, record(), LEASE, now=T0)
    [(get, read), (put, write)] = calls
    assert (get, read["ConsistentRead"], read["ReturnConsumedCapacity"]) == ("GetItem", True, "TOTAL")
    assert (put, write["ConditionExpression"]) == ("PutItem", "attribute_not_exists(pk)")


def test_hour_partitions_cover_the_budget_window() -> None:
    from datetime import timedelta

    assert hours_between(T0 - timedelta(minutes=61), T0 + timedelta(minutes=1)) == [
        "2026-11-20T08",
        "2026-11-20T09",
        "2026-11-20T10",
    ]


def test_cordon_audit_reads_the_deployed_audit_table(dynamodb, capsys) -> None:
    store: AuditLog = audit_log_for(f"dynamodb://?audit={TABLE}&state=cordon-StateTable-TEST&region=us-east-1")
    claim = store.claim(record().key, record(), LEASE, now=T0)  # a runner that is still at work
    assert main(["audit", "--state", f"dynamodb://?audit={TABLE}&region=us-east-1", "--output", "json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["id"], shown["status"]) == (claim.record.id, "in_progress")


def test_a_dynamodb_url_must_name_the_audit_table() -> None:
    with pytest.raises(StateError, match=r"write dynamodb://\?audit=AUDIT_TABLE&state=STATE_TABLE&region=REGION"):
        audit_log_for("dynamodb://cordon-prod?region=eu-west-1")
