"""WAF responder: add an incident's source IP to a WAFv2 IP set that a blocking rule references."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from responders.aws import call
from responders.base import (
    ActionContext,
    Responder,
    ResponderError,
    ResponderParams,
    State,
    Target,
    VerificationError,
    responder,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_VERSIONS = {4: "IPV4", 6: "IPV6"}


def parse_source_ip(value: str) -> IPAddress:
    """A single client address; refuses CIDRs and addresses no client sends from (loopback, multicast, ...)."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ResponderError(f"not an IPv4 or IPv6 address: {value!r}") from None
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved:
        raise ResponderError(f"refusing to block {address}: not a client address")
    return address


def host_cidr(address: IPAddress) -> str:
    return f"{address.compressed}/{address.max_prefixlen}"  # /32 for IPv4, /128 for IPv6


def _present(addresses: list[str], cidr: str) -> bool:
    # Compared as networks: AWS may return an IPv6 address in another spelling than the one sent.
    wanted = ipaddress.ip_network(cidr)
    return any(ipaddress.ip_network(a, strict=False) == wanted for a in addresses)


def with_address(ip_set: dict[str, Any], cidr: str) -> list[str] | None:
    """The set's new address list, or None when `cidr` is already there (nothing to send)."""
    version = _VERSIONS[ipaddress.ip_network(cidr).version]
    if ip_set["IPAddressVersion"] != version:
        raise ResponderError(f"IP set {ip_set['Name']} holds {ip_set['IPAddressVersion']} addresses, not {version}")
    addresses = list(ip_set["Addresses"])
    return None if _present(addresses, cidr) else [*addresses, cidr]


def without_address(ip_set: dict[str, Any], cidr: str) -> list[str] | None:
    wanted = ipaddress.ip_network(cidr)
    kept = [a for a in ip_set["Addresses"] if ipaddress.ip_network(a, strict=False) != wanted]
    return None if len(kept) == len(ip_set["Addresses"]) else kept


def _client(ctx: ActionContext, scope: str) -> Any:
    if scope == "CLOUDFRONT":  # CloudFront-scoped WAF resources live in us-east-1 whatever the session's region
        return ctx.client("wafv2", region="us-east-1")
    return ctx.client("wafv2")


class BlockIpParams(ResponderParams):
    ip_set_name: str = Field(pattern=r"^[\w-]{1,128}$")
    ip_set_id: str = Field(pattern=r"^[a-zA-Z0-9-]{1,128}$")
    scope: Literal["REGIONAL", "CLOUDFRONT"]


def _ip_set(waf: Any, params: BlockIpParams) -> dict[str, Any]:
    return dict(call(waf.get_ip_set, Name=params.ip_set_name, Scope=params.scope, Id=params.ip_set_id)["IPSet"])


LOCK_CONFLICT_ATTEMPTS = 5


def _rewrite(waf: Any, params: BlockIpParams, change: Callable[[dict[str, Any]], list[str] | None]) -> bool:
    """Read, change and write the IP set's addresses under its lock token; True if anything was written.

    The whole read-change-write is the unit retried here, a bounded number of times: a WAFOptimisticLockException
    (someone else wrote the set since our read) re-reads the set and its new token instead of resending a stale
    one. botocore cannot do this for us: its retries resend the same request, stale token and all.
    """
    ident = {"Name": params.ip_set_name, "Scope": params.scope, "Id": params.ip_set_id}

    def update_ip_set() -> bool:
        answer = waf.get_ip_set(**ident)
        ip_set = answer["IPSet"]
        addresses = change(ip_set)  # may refuse (a ResponderError goes straight through `call`)
        if addresses is None:
            return False
        # UpdateIPSet replaces every mutable field: resend the description, or it is cleared.
        description = {"Description": ip_set["Description"]} if ip_set.get("Description") else {}
        waf.update_ip_set(**ident, Addresses=addresses, LockToken=answer["LockToken"], **description)
        return True

    for attempt in range(1, LOCK_CONFLICT_ATTEMPTS + 1):
        try:
            return bool(call(update_ip_set))
        except ResponderError as error:
            if error.code != "WAFOptimisticLockException" or attempt == LOCK_CONFLICT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@responder("wafv2.block-ip")
class BlockIp(Responder):
    """Block a source IP by adding it (as a /32 or /128) to a WAFv2 IP set.

    The IP set must already be referenced by a Block rule in the web ACL in front of the API: Cordon maintains
    the set, it does not change web ACLs. The set's IP version must match the address. An address already in the
    set is left alone, and a rollback removes only an address Cordon added.

    Example::

        - responder: wafv2.block-ip
          target: "entities[?type=='source_ip'].id"
          params: {ip_set_name: cordon-blocked-ips, ip_set_id: a1b2c3d4-5678-90ab-cdef-EXAMPLE11111, scope: REGIONAL}
    """

    Params = BlockIpParams
    permissions = ("wafv2:GetIPSet", "wafv2:UpdateIPSet")
    target_types = frozenset({"source_ip"})
    reversible = True

    def _cidr(self, target: Target) -> str:
        if target.type not in self.target_types:
            raise ResponderError(f"{self.name} acts on {', '.join(sorted(self.target_types))}, not {target.type!r}")
        return host_cidr(parse_source_ip(target.id))

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        cidr, p = self._cidr(target), _params(params)
        ip_set = _ip_set(_client(ctx, p.scope), p)
        return {
            "ip_set": ip_set["ARN"],
            "ip_version": ip_set["IPAddressVersion"],
            "address": cidr,
            "present": _present(ip_set["Addresses"], cidr),
        }

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        cidr, p = self._cidr(target), _params(params)
        added = _rewrite(_client(ctx, p.scope), p, lambda ip_set: with_address(ip_set, cidr))
        after = self.read_state(ctx, target, params)
        if not after["present"]:
            raise VerificationError(f"{cidr} is not in IP set {p.ip_set_name} after UpdateIPSet")
        return after | {"added_by_cordon": added}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return bool(state.get("present"))

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        cidr, p = self._cidr(target), _params(params)
        # Read back after a failed call, `after` is a plain state: whether we added it is what `before` says.
        added = after["added_by_cordon"] if "added_by_cordon" in after else before.get("present") is False
        if added:
            _rewrite(_client(ctx, p.scope), p, lambda ip_set: without_address(ip_set, cidr))
        final = self.read_state(ctx, target, params)
        if added and final["present"]:
            raise VerificationError(f"{cidr} is still in IP set {p.ip_set_name} after UpdateIPSet")
        return final


def _params(params: ResponderParams) -> BlockIpParams:
    if not isinstance(params, BlockIpParams):
        raise ResponderError(f"expected BlockIpParams, got {type(params).__name__}")
    return params
