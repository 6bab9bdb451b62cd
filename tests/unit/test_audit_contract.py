"""The audit/claims contract, one suite for every store: memory and SQLite here, DynamoDB on moto in
tests/functional/test_audit_dynamodb.py (which imports these tests and hands them its own `store`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cordon.audit import (
    RETRYABLE,
    SETTLED,
    AuditLog,
    AuditRecord,
    ClaimLostError,
    MemoryAuditLog,
    SqliteAuditLog,
    Status,
    action_id,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditLog]:
    log: AuditLog = MemoryAuditLog() if request.param == "memory" else SqliteAuditLog(str(tmp_path / "state.db"))
    yield log
    log.close()


def record(key: str = "inc-1|isolate|i-1", incident: str = "inc-1", responder: str = "ec2.isolate-instance"):
    return AuditRecord(
        id=action_id(key),
        key=key,
        incident_id=incident,
        playbook="contain",
        step=key.split("|")[1],
        responder=responder,
        target={"type": "instance", "id": key.split("|")[2], "account": None, "region": "us-east-1"},
        params={},
        mode="enforce",
        status=Status.PLANNED,
        created_at=T0,
        updated_at=T0,
    )


def settle(store: AuditLog, claimed: AuditRecord, token: str, status: Status, at: datetime = T0) -> AuditRecord:
    applied_at = at if status is Status.APPLIED else claimed.applied_at
    outcome = claimed.model_copy(
        update={"status": status, "updated_at": at, "applied_at": applied_at, "claim_token": None, "lease_until": None}
    )
    return store.update(outcome, token)


def test_a_claim_writes_an_in_progress_record_with_a_lease_before_anything_is_done(store) -> None:
    claim = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    assert claim.acquired
    stored = store.get(action_id("inc-1|isolate|i-1"))
    assert stored is not None
    assert (stored.status, stored.lease_until, stored.attempts) == (Status.IN_PROGRESS, T0 + LEASE, 1)
    assert stored.claim_token == claim.token


def test_a_held_claim_is_reported_and_not_taken(store) -> None:
    first = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    second = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0 + LEASE - timedelta(seconds=1))
    assert not second.acquired
    assert second.record.status is Status.IN_PROGRESS
    assert second.record.claim_token == first.token


def test_the_owner_writes_its_outcome(store) -> None:
    claim = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    settle(store, claim.record, claim.token, Status.APPLIED)
    stored = store.get(claim.record.id)
    assert stored is not None and stored.status is Status.APPLIED
    assert [r.id for r in store.records()] == [claim.record.id]


@pytest.mark.parametrize("status", sorted(SETTLED))
def test_a_settled_key_is_never_claimed_again_even_long_after(store, status) -> None:
    claim = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    settle(store, claim.record, claim.token, status)
    again = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0 + timedelta(days=30))
    assert not again.acquired
    assert again.record.status is status


@pytest.mark.parametrize("status", sorted(RETRYABLE))
def test_a_retryable_outcome_is_claimed_again_on_the_same_record(store, status) -> None:
    claim = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    settle(store, claim.record, claim.token, status)
    again = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0 + timedelta(seconds=5))
    assert again.acquired
    assert (again.record.id, again.record.created_at, again.record.attempts) == (claim.record.id, T0, 2)
    assert len(store.records()) == 1


def test_an_expired_claim_is_taken_over_and_keeps_the_state_before_the_first_attempt(store) -> None:
    # GIVEN a runner that claimed, wrote the state it read, and died mid-apply
    dead = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    store.update(dead.record.model_copy(update={"before": {"state": "first"}}), dead.token)
    # WHEN the lease has expired
    retry = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0 + LEASE + timedelta(seconds=1))
    # THEN the next runner takes the claim, and the record still holds the first state read
    assert retry.acquired and retry.token != dead.token
    assert retry.record.before == {"state": "first"}
    assert retry.record.attempts == 2


def test_a_stale_owner_cannot_overwrite_the_new_owners_outcome(store) -> None:
    stale = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    owner = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0 + 2 * LEASE)
    settle(store, owner.record, owner.token, Status.APPLIED)
    with pytest.raises(ClaimLostError, match="was taken over: its new owner's record stands"):
        settle(store, stale.record, stale.token, Status.FAILED)
    # nor while the new owner is still at work
    again = store.claim("inc-1|isolate|i-2", record("inc-1|isolate|i-2"), LEASE, now=T0)
    assert store.claim("inc-1|isolate|i-2", record("inc-1|isolate|i-2"), LEASE, now=T0 + 2 * LEASE).acquired
    with pytest.raises(ClaimLostError):
        settle(store, again.record, again.token, Status.APPLIED)
    stored = store.get(owner.record.id)
    assert stored is not None and stored.status is Status.APPLIED


def test_approval_and_rollback_take_the_claim_from_their_own_status_only(store) -> None:
    claim = store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0)
    pending = settle(store, claim.record, claim.token, Status.PENDING_APPROVAL)
    assert not store.claim(pending.key, pending, LEASE, now=T0, takes_over=frozenset({Status.APPLIED})).acquired
    approving = store.claim(pending.key, pending, LEASE, now=T0, takes_over=frozenset({Status.PENDING_APPROVAL}))
    assert approving.acquired
    applied = settle(store, approving.record, approving.token, Status.APPLIED)
    twice = store.claim(applied.key, applied, LEASE, now=T0, takes_over=frozenset({Status.PENDING_APPROVAL}))
    assert not twice.acquired and twice.record.status is Status.APPLIED


def test_applied_count_counts_changes_by_incident_and_since(store) -> None:
    times = {"inc-1|a|i-1": T0, "inc-1|b|i-2": T0 + timedelta(minutes=50), "inc-2|a|i-3": T0 + timedelta(minutes=70)}
    for key, at in times.items():
        claim = store.claim(key, record(key, incident=key.split("|")[0]), LEASE, now=at)
        settle(store, claim.record, claim.token, Status.APPLIED, at=at)
    notify = store.claim("inc-1|notify|inc-1", record("inc-1|notify|inc-1", responder="notify.sns"), LEASE)
    settle(store, notify.record, notify.token, Status.APPLIED)  # telling people is not a change
    failed = store.claim("inc-1|c|i-4", record("inc-1|c|i-4"), LEASE, now=T0)
    settle(store, failed.record, failed.token, Status.FAILED)
    # a rolled-back change still counts: it was made
    rollback = store.claim("inc-1|a|i-1", store.get(action_id("inc-1|a|i-1")), LEASE, takes_over=frozenset(SETTLED))
    settle(store, rollback.record, rollback.token, Status.ROLLED_BACK)
    assert store.applied_count(incident_id="inc-1") == 2
    assert store.applied_count(incident_id="inc-2") == 1
    assert store.applied_count(since=T0 + timedelta(minutes=30)) == 2
    assert store.applied_count(incident_id="inc-1", since=T0 + timedelta(minutes=30)) == 1


def test_a_claim_names_the_records_key(store) -> None:
    with pytest.raises(
        ValueError, match=re.escape("claim for key 'inc-1|a|i-9' with the record of 'inc-1|isolate|i-1'")
    ):
        store.claim("inc-1|a|i-9", record(), LEASE)


def test_records_of_one_incident_oldest_first(store) -> None:
    for minute, key in ((5, "inc-1|b|i-2"), (1, "inc-1|a|i-1"), (3, "inc-10|a|i-9")):
        at = T0 + timedelta(minutes=minute)
        store.claim(key, record(key, incident=key.split("|")[0]).model_copy(update={"created_at": at}), LEASE, now=at)
    assert [r.key for r in store.records("inc-1")] == ["inc-1|a|i-1", "inc-1|b|i-2"]
    assert [r.key for r in store.records()] == ["inc-1|a|i-1", "inc-10|a|i-9", "inc-1|b|i-2"]


def test_eight_threads_claiming_one_key_give_one_owner(store) -> None:
    barrier = threading.Barrier(8)
    tokens: list[str | None] = []

    def race() -> None:
        barrier.wait()
        tokens.append(store.claim("inc-1|isolate|i-1", record(), LEASE, now=T0).token)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([t for t in tokens if t is not None]) == 1
    assert len(store.records()) == 1
