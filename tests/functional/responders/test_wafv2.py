"""wafv2.block-ip against moto, which checks WAF lock tokens: the race test is a real optimistic-lock conflict."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from responders.base import ResponderError, Target
from responders.wafv2 import BlockIp, BlockIpParams

from .conftest import ACCOUNT, check_read_back


@pytest.fixture
def calls(aws: boto3.session.Session) -> list[str]:
    seen: list[str] = []
    aws.events.register("before-call.*.*", lambda model, **_: seen.append(model.name))
    return seen


def _ip_set(aws: boto3.session.Session, version: str = "IPV4", addresses: list[str] | None = None) -> BlockIpParams:
    summary = aws.client("wafv2").create_ip_set(
        Name=f"cordon-blocked-{version.lower()}",
        Scope="REGIONAL",
        IPAddressVersion=version,
        Addresses=addresses or [],
        Description="Blocked by the SOC",
    )["Summary"]
    return BlockIpParams(ip_set_name=summary["Name"], ip_set_id=summary["Id"], scope="REGIONAL")


def _addresses(aws: boto3.session.Session, params: BlockIpParams) -> list[str]:
    answer = aws.client("wafv2").get_ip_set(Name=params.ip_set_name, Scope=params.scope, Id=params.ip_set_id)
    return list(answer["IPSet"]["Addresses"])


def _ip(address: str) -> Target:
    return Target("source_ip", address, account=ACCOUNT)


def test_block_ip_and_roll_back(aws: Any, make_context: Any, calls: list[str]) -> None:
    # GIVEN an IP set that already blocks another address
    params, ctx, responder = _ip_set(aws, addresses=["198.51.100.0/24"]), make_context(aws), BlockIp()
    calls.clear()
    before = responder.read_state(ctx, _ip("203.0.113.7"), params)
    assert calls == ["GetIPSet"]  # read-only
    assert before["present"] is False and before["address"] == "203.0.113.7/32"

    # WHEN the incident's IP is blocked
    after = responder.apply(ctx, _ip("203.0.113.7"), params, before)

    # THEN it is in the set as a /32, next to what was there, and the description survived the update
    assert _addresses(aws, params) == ["198.51.100.0/24", "203.0.113.7/32"]
    assert after["present"] is True and after["added_by_cordon"] is True
    ip_set = aws.client("wafv2").get_ip_set(Name=params.ip_set_name, Scope="REGIONAL", Id=params.ip_set_id)["IPSet"]
    assert ip_set["Description"] == "Blocked by the SOC"

    # WHEN it is rolled back THEN only the address Cordon added goes
    assert responder.rollback(ctx, _ip("203.0.113.7"), params, before, after) == before
    assert _addresses(aws, params) == ["198.51.100.0/24"]


def test_block_ip_twice_changes_nothing_the_second_time(aws: Any, make_context: Any, calls: list[str]) -> None:
    params, ctx, responder = _ip_set(aws), make_context(aws), BlockIp()
    responder.apply(ctx, _ip("203.0.113.7"), params, {})
    calls.clear()

    again = responder.apply(ctx, _ip("203.0.113.7"), params, responder.read_state(ctx, _ip("203.0.113.7"), params))

    assert "UpdateIPSet" not in calls
    assert again["added_by_cordon"] is False
    assert _addresses(aws, params) == ["203.0.113.7/32"]


def test_block_ip_rollback_keeps_an_address_that_was_already_blocked(aws: Any, make_context: Any) -> None:
    params, ctx, responder = _ip_set(aws, addresses=["203.0.113.7/32"]), make_context(aws), BlockIp()
    before = responder.read_state(ctx, _ip("203.0.113.7"), params)

    after = responder.apply(ctx, _ip("203.0.113.7"), params, before)
    responder.rollback(ctx, _ip("203.0.113.7"), params, before, after)

    assert after["added_by_cordon"] is False
    assert _addresses(aws, params) == ["203.0.113.7/32"]


def test_block_ipv6_as_a_128(aws: Any, make_context: Any) -> None:
    params, ctx = _ip_set(aws, version="IPV6"), make_context(aws)

    after = BlockIp().apply(ctx, _ip("2001:DB8:0:0:0:0:0:42"), params, {})

    assert after["address"] == "2001:db8::42/128"
    assert _addresses(aws, params) == ["2001:db8::42/128"]


def test_block_ip_retries_after_a_concurrent_update(aws: Any, make_context: Any, calls: list[str]) -> None:
    # GIVEN another writer that updates the set right after our first read, so our lock token goes stale
    params, ctx = _ip_set(aws, addresses=["198.51.100.1/32"]), make_context(aws)
    competitor = boto3.session.Session(region_name=aws.region_name).client("wafv2")  # its own event hooks
    raced: list[str] = []

    def race(**_: Any) -> None:  # runs just before our UpdateIPSet is sent
        if not raced:
            raced.append("once")
            current = competitor.get_ip_set(Name=params.ip_set_name, Scope="REGIONAL", Id=params.ip_set_id)
            competitor.update_ip_set(
                Name=params.ip_set_name,
                Scope="REGIONAL",
                Id=params.ip_set_id,
                Addresses=[*current["IPSet"]["Addresses"], "192.0.2.9/32"],
                LockToken=current["LockToken"],
            )

    aws.events.register("before-call.wafv2.UpdateIPSet", race)
    calls.clear()

    # WHEN the IP is blocked
    after = BlockIp().apply(ctx, _ip("203.0.113.7"), params, {})

    # THEN the first UpdateIPSet met WAFOptimisticLockException, the set was re-read, and nobody's write was lost
    assert calls == ["GetIPSet", "UpdateIPSet", "GetIPSet", "UpdateIPSet", "GetIPSet"]
    assert raced and after["added_by_cordon"] is True
    assert _addresses(aws, params) == ["198.51.100.1/32", "192.0.2.9/32", "203.0.113.7/32"]


def test_block_ip_gives_up_after_bounded_lock_conflicts(
    aws: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write loses the race: `call` stops after its attempts and says so, as a transient failure.
    params, ctx = _ip_set(aws), make_context(aws)
    competitor = boto3.session.Session(region_name=aws.region_name).client("wafv2")

    def always_race(**_: Any) -> None:
        current = competitor.get_ip_set(Name=params.ip_set_name, Scope="REGIONAL", Id=params.ip_set_id)
        competitor.update_ip_set(
            Name=params.ip_set_name, Scope="REGIONAL", Id=params.ip_set_id, Addresses=[], LockToken=current["LockToken"]
        )

    aws.events.register("before-call.wafv2.UpdateIPSet", always_race)

    with pytest.raises(ResponderError, match=r"^update_ip_set: WAFOptimisticLockException: ") as error:
        BlockIp().apply(ctx, _ip("203.0.113.7"), params, {})
    assert error.value.permanent is False


def test_block_ip_cloudfront_scope_uses_us_east_1(make_context: Any) -> None:
    from moto import mock_aws

    with mock_aws():
        summary = boto3.client("wafv2", region_name="us-east-1").create_ip_set(
            Name="edge-blocked", Scope="CLOUDFRONT", IPAddressVersion="IPV4", Addresses=[]
        )["Summary"]
        params = BlockIpParams(ip_set_name="edge-blocked", ip_set_id=summary["Id"], scope="CLOUDFRONT")
        ctx = make_context(boto3.session.Session(region_name="eu-west-1"))

        after = BlockIp().apply(ctx, _ip("203.0.113.7"), params, {})

        assert after["present"] is True and after["ip_set"].startswith("arn:aws:wafv2:us-east-1:")


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("203.0.113.0/24", "not an IPv4 or IPv6 address: '203.0.113.0/24'"),
        ("evil.example.com", "not an IPv4 or IPv6 address: 'evil.example.com'"),
        ("127.0.0.1", "refusing to block 127.0.0.1: not a client address"),
        ("0.0.0.0", "refusing to block 0.0.0.0: not a client address"),
        ("::", "refusing to block ::: not a client address"),
        ("224.0.0.1", "refusing to block 224.0.0.1: not a client address"),
    ],
)
def test_block_ip_refuses_what_is_not_a_client_address(aws: Any, make_context: Any, address: str, message: str) -> None:
    with pytest.raises(ResponderError, match=f"^{re.escape(message)}$"):
        BlockIp().read_state(make_context(aws), _ip(address), _ip_set(aws))


def test_block_ip_refuses_a_set_of_the_other_ip_version(aws: Any, make_context: Any, calls: list[str]) -> None:
    params = _ip_set(aws, version="IPV6")
    calls.clear()
    with pytest.raises(ResponderError, match=r"^IP set cordon-blocked-ipv6 holds IPV6 addresses, not IPV4$"):
        BlockIp().apply(make_context(aws), _ip("203.0.113.7"), params, {})
    assert "UpdateIPSet" not in calls


def test_block_ip_refuses_other_targets(aws: Any, make_context: Any) -> None:
    with pytest.raises(ResponderError, match=r"^wafv2.block-ip acts on source_ip, not 'principal'$"):
        BlockIp().read_state(make_context(aws), Target("principal", "203.0.113.7"), _ip_set(aws))


@pytest.mark.parametrize(
    "params",
    [
        {"ip_set_name": "blocked", "ip_set_id": "a1b2", "scope": "GLOBAL"},
        {"ip_set_name": "blocked", "ip_set_id": "a1b2"},
        {"ip_set_name": "blocked sets", "ip_set_id": "a1b2", "scope": "REGIONAL"},
        {"ip_set_name": "blocked", "ip_set_id": "a1b2", "scope": "REGIONAL", "action": "BLOCK"},
    ],
)
def test_block_ip_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BlockIpParams.model_validate(params)


def test_block_ip_read_back_holds_and_rolls_back(aws: Any, make_context: Any) -> None:
    params = _ip_set(aws, addresses=["198.51.100.1/32"])
    check_read_back(BlockIp(), make_context(aws), _ip("203.0.113.7"), params)
    assert _addresses(aws, params) == ["198.51.100.1/32"]
