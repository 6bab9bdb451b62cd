"""Responders run against moto's in-process AWS: real boto3 calls, no network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from responders.base import ActionContext

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never let a test find real credentials or reach a real endpoint.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def _context(session: boto3.session.Session, incident: dict[str, Any] | None = None, **settings: Any) -> ActionContext:
    incident = incident or {
        "id": "inc-0000000000000001",
        "title": "test incident",
        "rules": ["ml_credential_finding_then_ml_access"],
        "severity": "critical",
        "first_seen": "2026-11-20T10:00:00+00:00",
        "last_seen": "2026-11-20T10:20:00+00:00",
        "entities": [],
        "signals": [],
        "actions": [],
    }
    return ActionContext(session=session, incident=incident, settings=settings)


@pytest.fixture
def make_context() -> Any:
    """`make_context(session, incident=None, **settings)` -> ActionContext for one action."""
    return _context


def check_read_back(responder: Any, ctx: ActionContext, target: Any, params: Any) -> dict[str, Any]:
    """The verify-after-failure contract (`Responder.holds`): the state before does not hold; once the change is
    made, the state read back does, as the runner reads it after a call that failed late (a 500 after AWS applied
    it); and a rollback handed that plain read-back as `after` (no `apply` notes) restores the state before."""
    before = responder.read_state(ctx, target, params)
    assert not responder.holds(ctx, target, params, before, before)
    responder.apply(ctx, target, params, before)
    read_back = responder.read_state(ctx, target, params)
    assert responder.holds(ctx, target, params, before, read_back)
    if responder.reversible:
        responder.rollback(ctx, target, params, before, read_back)
        assert responder.read_state(ctx, target, params) == before
    return before
