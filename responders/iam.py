"""IAM responders: deactivate one access key, revoke a principal's older sessions, quarantine a principal.

Also the strict parsers the S3 responder shares: principal ARNs (users and roles only, never root, a session or a
federated user) and bucket references.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from abc import abstractmethod
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, cast

from pydantic import AfterValidator, Field

from responders.aws import call
from responders.base import (
    ActionContext,
    NoParams,
    Responder,
    ResponderError,
    ResponderParams,
    State,
    Target,
    VerificationError,
    responder,
)

POLICY_VERSION = "2012-10-17"
_ACCESS_KEY_ID = re.compile(r"(?P<prefix>AKIA|ASIA)[A-Z0-9]{16}")
_NAME = r"[\w+=,.@-]{1,64}"
_PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):"
    rf"(?P<kind>user|role)(?P<path>/(?:[\w+=,.@-]+/)*)(?P<name>{_NAME})"
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_ARN = re.compile(r"arn:(?:aws|aws-cn|aws-us-gov):s3:::(?P<name>[^/*?]+)")
_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9*?]+")


# --- parsing (pure) -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    partition: str
    account: str
    kind: str  # "user" or "role"
    path: str  # "/" or "/a/b/"
    name: str

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:{self.kind}{self.path}{self.name}"


def principal_from_arn(arn: str) -> Principal:
    """An IAM user or role ARN, parsed strictly; anything else (root, sessions, `*`) is refused."""
    match = _PRINCIPAL_ARN.fullmatch(arn)
    if match is None:
        raise ResponderError(f"not an IAM user or role ARN: {arn!r} (root, sessions and federated users are refused)")
    return Principal(**match.groupdict())


def parse_principal(target: Target) -> Principal:
    principal = principal_from_arn(target.id)
    if target.account and target.account != principal.account:
        raise ResponderError(f"{principal.arn} is not in the target account {target.account}")
    return principal


def refusal(principal: Principal, *, changes_principal: bool) -> str | None:
    """Why a principal must not be contained, or None. Identity Center roles only matter when IAM would change them."""
    if principal.kind != "role":
        return None
    if principal.path.startswith("/aws-service-role/") or principal.name.startswith("AWSServiceRoleFor"):
        return f"refusing {principal.arn}: service-linked roles are managed by AWS and must not be contained"
    if changes_principal and (
        principal.path.startswith("/aws-reserved/sso.amazonaws.com/") or principal.name.startswith("AWSReservedSSO_")
    ):
        return (
            f"refusing {principal.arn}: IAM Identity Center roles cannot be changed in IAM; "
            "remove the permission set assignment in IAM Identity Center instead"
        )
    return None


def bucket_name(value: str) -> str:
    """`name` or `arn:aws:s3:::name` -> name; anything else (objects, wildcards, bad names) is an error."""
    match = _BUCKET_ARN.fullmatch(value)
    name = match["name"] if match else value
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise ValueError(f"not an S3 bucket name or arn:aws:s3:::name: {value!r}")
    return name


def action_pattern(value: str) -> str:
    if not _ACTION.fullmatch(value):
        raise ValueError(f"not an IAM action pattern like 'bedrock:InvokeModel*': {value!r}")
    return value


BucketRef = Annotated[str, AfterValidator(bucket_name)]
ActionPattern = Annotated[str, AfterValidator(action_pattern)]


def iso_z(moment: datetime) -> str:
    """ISO 8601 UTC to the second, rounded up: every session issued up to `moment` falls before the cutoff."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- AWS I/O (thin) -------------------------------------------------------------------------------------------------
def resolve_principal(ctx: ActionContext, target: Target, *, changes_principal: bool = True) -> Principal:
    """The target as it exists in this account, with its real path (a role ARN resolved from a session has none).

    A principal of another account is refused when IAM would change it, and kept as named otherwise (a bucket
    policy may deny it): looking its name up here would find a namesake in the wrong account.
    """
    principal = parse_principal(target)
    if reason := refusal(principal, changes_principal=changes_principal):
        raise ResponderError(reason)
    account = str(call(ctx.client("sts").get_caller_identity)["Account"])
    if principal.account != account:
        if changes_principal:
            raise ResponderError(f"{principal.arn} is not in this session's account {account}")
        return principal
    iam = ctx.client("iam")
    if principal.kind == "role":
        entity = call(iam.get_role, RoleName=principal.name)["Role"]
    else:
        entity = call(iam.get_user, UserName=principal.name)["User"]
    resolved = replace(principal, path=str(entity["Path"]))
    if principal.path not in ("/", resolved.path):  # a path was named, and it is another principal's
        raise ResponderError(f"{principal.arn} does not exist: the {principal.kind} {principal.name} is {resolved.arn}")
    if reason := refusal(resolved, changes_principal=changes_principal):
        raise ResponderError(reason)
    return resolved


# kind -> (name parameter, get, put, delete) boto3 methods
_INLINE = {
    "role": ("RoleName", "get_role_policy", "put_role_policy", "delete_role_policy"),
    "user": ("UserName", "get_user_policy", "put_user_policy", "delete_user_policy"),
}
_TAMPER_ACTIONS = {
    "role": ["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
    "user": ["iam:PutUserPolicy", "iam:DeleteUserPolicy"],
}
_INLINE_PERMISSIONS = (
    "sts:GetCallerIdentity",
    "iam:GetRole",
    "iam:GetUser",
    "iam:GetRolePolicy",
    "iam:GetUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:DeleteRolePolicy",
    "iam:DeleteUserPolicy",
)


def inline_policy_request(principal: Principal, name: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {_INLINE[principal.kind][0]: principal.name, "PolicyName": name}
    if document is not None:
        request["PolicyDocument"] = json.dumps(document)
    return request


def get_inline_policy(iam: Any, principal: Principal, name: str) -> dict[str, Any] | None:
    try:
        response = call(getattr(iam, _INLINE[principal.kind][1]), **inline_policy_request(principal, name))
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return None
        raise
    document = response["PolicyDocument"]
    # boto3 decodes the URL-encoded JSON into a dict; other clients may hand back the text.
    return document if isinstance(document, dict) else dict(json.loads(urllib.parse.unquote(document)))


def set_inline_policy(iam: Any, principal: Principal, name: str, document: dict[str, Any] | None) -> None:
    """Put `document` under `name`, or delete the policy when `document` is None."""
    _, _, put, delete = _INLINE[principal.kind]
    if document is not None:
        call(getattr(iam, put), **inline_policy_request(principal, name, document))
    elif get_inline_policy(iam, principal, name) is not None:
        call(getattr(iam, delete), **inline_policy_request(principal, name))


# --- iam.deactivate-access-key --------------------------------------------------------------------------------------
def parse_access_key(target: Target) -> str:
    match = _ACCESS_KEY_ID.fullmatch(target.id)
    if match is None:
        raise ResponderError(f"not an access key id: {target.id!r}")
    if match["prefix"] == "ASIA":
        raise ResponderError(
            f"refusing {target.id}: ASIA keys are temporary session credentials and cannot be deactivated; "
            "use iam.revoke-sessions on the principal that issued them"
        )
    return target.id


@responder("iam.deactivate-access-key")
class DeactivateAccessKey(Responder):
    """Deactivate the one long-term access key the incident names (never the user's other keys). Reversible.

    Temporary keys (ASIA...) are refused: revoke the issuing principal's sessions instead.

    Example::

        - responder: iam.deactivate-access-key
          target: "entities[?type=='access_key'].id"
          params: {}
    """

    permissions = ("iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey")
    Params = NoParams
    target_types = frozenset({"access_key"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        key_id = parse_access_key(target)
        iam = ctx.client("iam")
        user = call(iam.get_access_key_last_used, AccessKeyId=key_id).get("UserName")
        if not user or user == "root":
            raise ResponderError(f"{key_id} belongs to no IAM user of this account")
        keys = self._statuses(iam, str(user))
        if key_id not in keys:
            raise ResponderError(f"{key_id} is not among the access keys of {user}")
        return {"access_key_id": key_id, "user_name": user, "status": keys[key_id], "keys": keys}

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        current = self.read_state(ctx, target, params)
        self._set(ctx, current, "Inactive")
        return {**self.read_state(ctx, target, params), "previous_status": current["status"]}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        current = self.read_state(ctx, target, params)
        # `before` first: the state before the first attempt. A retry's `previous_status` may be the half-done one.
        self._set(ctx, current, str(before.get("status", after.get("previous_status"))))
        return self.read_state(ctx, target, params)

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return state.get("status") == "Inactive"

    def _set(self, ctx: ActionContext, current: State, status: str) -> None:
        if current["status"] == status:
            return
        iam = ctx.client("iam")
        key_id, user = current["access_key_id"], current["user_name"]
        call(iam.update_access_key, UserName=user, AccessKeyId=key_id, Status=status)
        if self._statuses(iam, user).get(key_id) != status:
            raise VerificationError(f"{key_id} of {user} is still not {status} after UpdateAccessKey")

    @staticmethod
    def _statuses(iam: Any, user: str) -> dict[str, str]:
        # A user has at most two keys, so one page is all of them.
        keys = call(iam.list_access_keys, UserName=user)["AccessKeyMetadata"]
        return {str(key["AccessKeyId"]): str(key["Status"]) for key in keys}


# --- inline deny policies: iam.revoke-sessions and iam.quarantine-principal -----------------------------------------
class _InlineDenyPolicy(Responder):
    """Put one Cordon-named inline policy on a user or role; rollback restores whatever had that name before."""

    policy_name: ClassVar[str]
    permissions = _INLINE_PERMISSIONS
    target_types = frozenset({"principal"})
    reversible = True

    @abstractmethod
    def document(
        self, ctx: ActionContext, principal: Principal, params: ResponderParams, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The policy to put, given the one of that name already there (`existing`, or None)."""

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        principal = resolve_principal(ctx, target)
        policy = get_inline_policy(ctx.client("iam"), principal, self.policy_name)
        return {"principal": principal.arn, "policy_name": self.policy_name, "policy": policy}

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        principal = resolve_principal(ctx, target)
        iam = ctx.client("iam")
        previous = get_inline_policy(iam, principal, self.policy_name)
        wanted = self.document(ctx, principal, params, previous)
        if previous != wanted:
            set_inline_policy(iam, principal, self.policy_name, wanted)
        after = self._verify(iam, principal, wanted)
        return {**after, "previous_policy": previous}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        principal = resolve_principal(ctx, target)
        iam = ctx.client("iam")
        # `before` first: the state before the first attempt. A retry's `previous_policy` may be its own deny.
        previous = before["policy"] if "policy" in before else after["previous_policy"]
        if get_inline_policy(iam, principal, self.policy_name) != previous:
            set_inline_policy(iam, principal, self.policy_name, previous)
        return self._verify(iam, principal, previous)

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        principal = resolve_principal(ctx, target)
        return state.get("policy") == self.document(ctx, principal, params, before.get("policy"))

    def _verify(self, iam: Any, principal: Principal, wanted: dict[str, Any] | None) -> State:
        policy = get_inline_policy(iam, principal, self.policy_name)
        if policy != wanted:
            raise VerificationError(
                f"inline policy {self.policy_name} of {principal.arn} does not read back as written"
            )
        return {"principal": principal.arn, "policy_name": self.policy_name, "policy": policy}


def revoke_sid(incident_id: str) -> str:
    return "CordonRevoke" + re.sub(r"[^A-Za-z0-9]", "", incident_id)


def revoke_document(sid: str, cutoff: str) -> dict[str, Any]:
    statement = {
        "Sid": sid,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
    }
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def revoke_cutoff(existing: dict[str, Any] | None, sid: str, now: datetime) -> str:
    """The session cutoff to write: the same incident keeps its cutoff (a redelivery widens nothing); another
    incident moves it to now, as the console's "Revoke active sessions" does, but never back (that would readmit
    sessions an earlier response revoked)."""
    cutoff = iso_z(now)
    try:
        statement = (existing or {})["Statement"][0]
        old = str(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
        later = datetime.fromisoformat(old) >= datetime.fromisoformat(cutoff)
    except (KeyError, IndexError, TypeError, ValueError):
        return cutoff  # no cutoff of ours there
    return old if statement.get("Sid") == sid or later else cutoff


@responder("iam.revoke-sessions")
class RevokeSessions(_InlineDenyPolicy):
    """Revoke every session of a role or user issued before now (AWS's AWSRevokeOlderSessions technique).

    Puts the inline policy `cordon-revoke-older-sessions`, denying everything to credentials whose
    aws:TokenIssueTime is before the cutoff. New sessions still work: pair it with iam.quarantine-principal or fix
    the trust that let the attacker in. A user's long-term access keys are not sessions: deactivate those with
    iam.deactivate-access-key. Service-linked and IAM Identity Center roles are refused. Applying again for the same
    incident keeps the cutoff; another incident moves it forward to its own time, never back. Reversible: rollback
    restores the policy of that name as it was (or deletes it).

    Example::

        - responder: iam.revoke-sessions
          target: "entities[?type=='principal'].id"
          params: {}
    """

    policy_name = "cordon-revoke-older-sessions"
    Params = NoParams

    def document(
        self, ctx: ActionContext, principal: Principal, params: ResponderParams, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        incident_id = str(ctx.incident.get("id") or "")
        if not incident_id:
            raise ResponderError("iam.revoke-sessions needs the incident id")
        sid = revoke_sid(incident_id)
        return revoke_document(sid, revoke_cutoff(existing, sid, ctx.now))


class QuarantineParams(ResponderParams):
    """`buckets`: bucket names or arn:aws:s3:::name to scope the S3 deny to (empty: every bucket).
    `extra_actions`: more IAM actions to deny on every resource, e.g. `bedrock:InvokeModel*`."""

    buckets: list[BucketRef] = Field(default_factory=list)
    extra_actions: list[ActionPattern] = Field(default_factory=list)


ML_DATA_ACTIONS = ("s3:GetObject*", "s3:PutObject*", "s3:ListBucket*", "s3:DeleteObject*")


def quarantine_document(principal: Principal, params: QuarantineParams) -> dict[str, Any]:
    arns = [f"arn:{principal.partition}:s3:::{name}" for name in dict.fromkeys(params.buckets)]
    resources: str | list[str] = [r for arn in arns for r in (arn, f"{arn}/*")] or "*"
    # The quarantined principal must not be able to lift its own quarantine.
    tamper = _TAMPER_ACTIONS[principal.kind]
    statements: list[dict[str, Any]] = [
        {"Sid": "CordonQuarantineSageMaker", "Effect": "Deny", "Action": "sagemaker:*", "Resource": "*"},
        {"Sid": "CordonQuarantineMLData", "Effect": "Deny", "Action": list(ML_DATA_ACTIONS), "Resource": resources},
        {"Sid": "CordonQuarantineTamper", "Effect": "Deny", "Action": tamper, "Resource": principal.arn},
    ]
    if params.extra_actions:
        extra = list(dict.fromkeys(params.extra_actions))
        statements.append({"Sid": "CordonQuarantineExtra", "Effect": "Deny", "Action": extra, "Resource": "*"})
    return {"Version": POLICY_VERSION, "Statement": statements}


def widen(existing: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any]:
    """`wanted`, denying at least everything `existing` denied: a later incident's narrower quarantine must not lift
    an earlier one's. Statements of one Sid merge their actions and resources; other statements are kept."""
    if not existing:
        return wanted
    statements = [dict(s) for s in wanted["Statement"]]
    by_sid = {s["Sid"]: s for s in statements}
    old_statements = existing.get("Statement", [])
    for old in [old_statements] if isinstance(old_statements, dict) else old_statements:
        new = by_sid.get(old.get("Sid", ""))
        if new is None or old.get("Effect") != "Deny" or "Condition" in old:
            statements.append(old)
            continue
        for key in ("Action", "Resource"):
            new[key] = _union(new[key], old.get(key, []))
    return {**wanted, "Statement": statements}


def _union(new: str | list[str], old: str | list[str]) -> str | list[str]:
    new_list, old_list = [new] if isinstance(new, str) else new, [old] if isinstance(old, str) else old
    if "*" in new_list or set(old_list) <= set(new_list):
        return new
    return "*" if "*" in old_list else list(dict.fromkeys([*new_list, *old_list]))


@responder("iam.quarantine-principal")
class QuarantinePrincipal(_InlineDenyPolicy):
    """Deny a role or user SageMaker and ML data (S3 object reads, writes, deletes and listings), reversibly.

    Puts the inline policy `cordon-quarantine` (explicit denies beat any allow), and denies the principal changing
    or deleting its own inline policies so it cannot lift the quarantine. `buckets` narrows the S3 deny to those
    buckets; `extra_actions` adds actions to deny everywhere. A quarantine already there is widened, never narrowed.
    Service-linked and IAM Identity Center roles are refused. Rollback restores the policy of that name as it was
    (or deletes it).

    Example::

        - responder: iam.quarantine-principal
          target: "entities[?type=='principal'].id"
          params:
            buckets: [ml-training-data, "arn:aws:s3:::ml-model-artifacts"]
            extra_actions: ["bedrock:InvokeModel*"]
    """

    policy_name = "cordon-quarantine"
    Params = QuarantineParams

    def document(
        self, ctx: ActionContext, principal: Principal, params: ResponderParams, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        return widen(existing, quarantine_document(principal, cast(QuarantineParams, params)))
