"""S3 responder: deny one principal every S3 action on named buckets, through a statement merged into each bucket
policy. Every statement Cordon did not add stays as it was."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

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
from responders.iam import POLICY_VERSION, BucketRef, Principal, resolve_principal


class DenyPrincipalParams(ResponderParams):
    """`buckets`: one or more bucket names or arn:aws:s3:::name."""

    buckets: list[BucketRef] = Field(min_length=1)


# --- policy documents (pure) ----------------------------------------------------------------------------------------
def deny_sid(principal_arn: str) -> str:
    return "CordonDeny" + hashlib.sha256(principal_arn.encode()).hexdigest()[:16]


def deny_statement(principal: Principal, bucket: str) -> dict[str, Any]:
    arn = f"arn:{principal.partition}:s3:::{bucket}"
    return {
        "Sid": deny_sid(principal.arn),
        "Effect": "Deny",
        "Principal": {"AWS": principal.arn},
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
    }


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def merge_statement(policy: str | None, statement: dict[str, Any]) -> dict[str, Any]:
    """The policy with `statement` in it: replacing a statement of the same Sid in place, else appended."""
    document: dict[str, Any] = json.loads(policy) if policy else {"Version": POLICY_VERSION}
    statements = _statements(document)
    same = [i for i, s in enumerate(statements) if s.get("Sid") == statement["Sid"]]
    if same:
        statements[same[0]] = statement
        statements = [s for i, s in enumerate(statements) if i not in same[1:]]
    else:
        statements.append(statement)
    return {**document, "Statement": statements}


def unmerge_statement(current: str | None, previous: str | None, sid: str) -> dict[str, Any] | None:
    """`current` without Cordon's statement `sid` (put back as `previous` had it, if it had one); None: no policy."""
    if current is None:
        return None
    document = json.loads(current)
    old = [s for s in _statements(json.loads(previous)) if s.get("Sid") == sid] if previous else []
    statements = [s for s in _statements(document) if s.get("Sid") != sid] + old
    return {**document, "Statement": statements} if statements else None


def _same(left: str | None, right: str | None) -> bool:
    # S3 may return a policy reformatted, so documents are compared, not text.
    return (left is None) == (right is None) and (left is None or json.loads(left) == json.loads(cast(str, right)))


MAX_POLICY_WRITES = 5
CONFIRMING_READS = 2


# --- AWS I/O (thin) -------------------------------------------------------------------------------------------------
def get_policy(s3: Any, bucket: str) -> str | None:
    try:
        return str(call(s3.get_bucket_policy, Bucket=bucket)["Policy"])
    except ResponderError as error:
        if error.code == "NoSuchBucketPolicy":
            return None
        raise


def set_policy(s3: Any, bucket: str, policy: str | None) -> None:
    if policy is not None:
        call(s3.put_bucket_policy, Bucket=bucket, Policy=policy)
    elif get_policy(s3, bucket) is not None:
        call(s3.delete_bucket_policy, Bucket=bucket)


@responder("s3.deny-principal")
class DenyPrincipal(Responder):
    """Deny one user or role every S3 action on the named buckets, with a bucket-policy statement. Reversible.

    Adds (or replaces) the statement `CordonDeny<hash of the principal>` in each bucket's policy and leaves every
    other statement as it was. Works for principals of other accounts too. Service-linked roles are refused.
    Rollback puts back each bucket's policy exactly as it was (deleting it if there was none); if someone changed a
    policy since, only Cordon's statement is taken out of it.

    Example::

        - responder: s3.deny-principal
          target: "entities[?type=='principal'].id"
          params:
            buckets: [ml-training-data, "arn:aws:s3:::ml-model-artifacts"]
    """

    permissions = (
        "sts:GetCallerIdentity",
        "iam:GetRole",
        "iam:GetUser",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
    )
    Params = DenyPrincipalParams
    target_types = frozenset({"principal"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        principal = resolve_principal(ctx, target, changes_principal=False)
        s3 = ctx.client("s3")
        buckets = {bucket: {"policy": get_policy(s3, bucket)} for bucket in _buckets(params)}
        return {"principal": principal.arn, "sid": deny_sid(principal.arn), "buckets": buckets}

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        principal = resolve_principal(ctx, target, changes_principal=False)
        s3 = ctx.client("s3")
        buckets: dict[str, Any] = {}
        for bucket in _buckets(params):
            statement = deny_statement(principal, bucket)
            previous = get_policy(s3, bucket)
            policy = previous
            # S3 has no conditional PutBucketPolicy: a concurrent writer (another deny) may replace the policy
            # with its own read-merge-write and erase our statement. So: read, merge, write, and read again
            # until the statement holds on CONFIRMING_READS reads in a row, within MAX_POLICY_WRITES writes.
            writes = holding = 0
            while holding < CONFIRMING_READS:
                if policy is not None and statement in _statements(json.loads(policy)):
                    holding += 1
                else:
                    if writes == MAX_POLICY_WRITES:
                        raise VerificationError(
                            f"the policy of bucket {bucket} does not deny {principal.arn} after {writes} writes"
                            " (another writer keeps replacing it)",
                            permanent=False,
                        )
                    set_policy(s3, bucket, json.dumps(merge_statement(policy, statement)))
                    writes, holding = writes + 1, 0
                policy = get_policy(s3, bucket)
            buckets[bucket] = {"policy": policy, "previous_policy": previous}
        return {"principal": principal.arn, "sid": deny_sid(principal.arn), "buckets": buckets}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        principal = resolve_principal(ctx, target, changes_principal=False)
        buckets = state.get("buckets", {})
        return all(
            bucket in buckets
            and buckets[bucket].get("policy") is not None
            and deny_statement(principal, bucket) in _statements(json.loads(buckets[bucket]["policy"]))
            for bucket in _buckets(params)
        )

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        s3 = ctx.client("s3")
        for bucket, applied in after["buckets"].items():
            # `before` first: the policy before the first attempt. A retry's `previous_policy` may hold our deny.
            known = before.get("buckets", {})
            previous = known[bucket].get("policy") if bucket in known else applied.get("previous_policy")
            current = get_policy(s3, bucket)
            if _same(current, applied["policy"]):
                restored = previous
            else:  # changed since we applied: take only our statement out, keep the rest
                document = unmerge_statement(current, previous, after["sid"])
                restored = json.dumps(document) if document is not None else None
            if not _same(current, restored):
                set_policy(s3, bucket, restored)
            if not _same(get_policy(s3, bucket), restored):
                raise VerificationError(f"the policy of bucket {bucket} did not return to its previous state")
        return self.read_state(ctx, target, params)


def _buckets(params: ResponderParams) -> list[str]:
    return list(dict.fromkeys(cast(DenyPrincipalParams, params).buckets))
