"""Throttling is botocore's to retry (standard mode, `responders.aws.CLIENT_CONFIG`), not a loop of Cordon's; what
is still throttled after botocore's attempts fails as transient, to be retried later (`cordon retry`).

moto cannot throttle, and an in-process hook would answer after moto already applied the call: so a loopback
proxy in front of a moto server answers the scripted requests with IAM's real Throttling reply, and the change
reaches moto only when a request gets through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

from responders.aws import MAX_ATTEMPTS
from responders.base import ActionContext, ResponderError, Target, get_responder
from tests.e2e.deployed_stack import SerialMotoServer
from tests.functional.fault_proxy import FaultProxy


@pytest.fixture(scope="module")
def moto_server() -> Iterator[SerialMotoServer]:
    server = SerialMotoServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


class _ThrottleUpdates:
    """Throttles the first `times` UpdateAccessKey requests; lets everything else through."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.seen = 0

    def __call__(self, body: bytes) -> str | None:
        if b"Action=UpdateAccessKey" not in body:
            return None
        self.seen += 1
        return "throttle" if self.seen <= self.times else None


def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def _new_key(server: SerialMotoServer, user: str) -> str:
    iam = _session().client("iam", endpoint_url=server.url)
    iam.create_user(UserName=user)
    return str(iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])


def _status(server: SerialMotoServer, user: str, key: str) -> str:
    keys = _session().client("iam", endpoint_url=server.url).list_access_keys(UserName=user)["AccessKeyMetadata"]
    return str(next(k["Status"] for k in keys if k["AccessKeyId"] == key))


def _deactivate(proxy: FaultProxy, key: str) -> dict[str, Any]:
    ctx = ActionContext(session=_session(), incident={"id": "inc-1", "actions": []}, endpoint_url=proxy.url)
    responder = get_responder("iam.deactivate-access-key")
    return responder.apply(ctx, Target("access_key", key), responder.Params(), {})


def test_throttled_calls_are_sent_again_by_botocore(moto_server: SerialMotoServer) -> None:
    # GIVEN IAM throttles the first two UpdateAccessKey requests
    key = _new_key(moto_server, "alice")
    script = _ThrottleUpdates(times=2)
    with FaultProxy(moto_server.port, decide=script) as proxy:
        # WHEN the key is deactivated
        after = _deactivate(proxy, key)

    # THEN botocore sent the request a third time, and it took
    assert script.seen == 3 and proxy.injected["throttle"] == 2
    assert after["status"] == "Inactive" and _status(moto_server, "alice", key) == "Inactive"


def test_throttling_past_botocores_attempts_is_a_transient_failure(moto_server: SerialMotoServer) -> None:
    # GIVEN IAM throttles every UpdateAccessKey request
    key = _new_key(moto_server, "bob")
    script = _ThrottleUpdates(times=1_000)
    # WHEN the key is deactivated, THEN it fails after botocore's attempts, as worth retrying later
    failed = pytest.raises(ResponderError, match=r"^update_access_key: Throttling: Rate exceeded$")
    with FaultProxy(moto_server.port, decide=script) as proxy, failed as error:
        _deactivate(proxy, key)

    assert script.seen == MAX_ATTEMPTS  # botocore's attempts, and no loop of ours on top
    assert error.value.permanent is False and error.value.code == "Throttling"
    assert _status(moto_server, "bob", key) == "Active"
