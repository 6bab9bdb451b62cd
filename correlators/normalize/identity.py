"""Identity resolution (DESIGN principle 3): whoever acted, resolved to a stable principal ARN.

An access key resolves to its IAM user; an assumed-role session to its role ARN (not the `sts` session ARN, which
changes with every session), keeping the session and the EC2 instance behind it. CloudTrail `userIdentity`,
GuardDuty `accessKeyDetails` and ASFF IAM resources all resolve through here, so a finding about a key and the
calls made with that key meet on the same entity nodes (principal, access key, session, instance).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from correlators.model import Actor
from correlators.normalize.fields import dig, mapping, text
from correlators.normalize.resources import ACCESS_KEY_ID, INSTANCE_ID


def user_arn(account: str | None, name: str | None, partition: str = "aws") -> str | None:
    return f"arn:{partition}:iam::{account}:user/{name}" if account and name else None


def role_arn(account: str | None, name: str | None, partition: str = "aws") -> str | None:
    return f"arn:{partition}:iam::{account}:role/{name}" if account and name else None


def root_arn(account: str | None, partition: str = "aws") -> str | None:
    return f"arn:{partition}:iam::{account}:root" if account else None


def session_arn(account: str | None, role: str | None, session: str | None, partition: str = "aws") -> str | None:
    # STS session ARNs never carry the role's path, so one built from a role name equals CloudTrail's.
    return f"arn:{partition}:sts::{account}:assumed-role/{role}/{session}" if account and role and session else None


def role_arn_from_session(arn: str | None) -> str | None:
    """arn:aws:sts::ACCT:assumed-role/ROLE/SESSION -> arn:aws:iam::ACCT:role/ROLE (the path is not recoverable)."""
    parts = (arn or "").split(":", 5)
    if len(parts) != 6 or parts[2] != "sts" or not parts[5].startswith("assumed-role/"):
        return None
    role = parts[5].split("/")[1]
    return role_arn(parts[4], role, parts[1])


def instance_behind(session_name: str | None) -> str | None:
    """EC2 names instance-profile sessions after the instance id."""
    return session_name if session_name and INSTANCE_ID.fullmatch(session_name) else None


def _partition(arn: str | None) -> str:
    parts = (arn or "").split(":")
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"


def _last_segment(arn: str | None) -> str | None:
    return arn.rsplit("/", 1)[-1] if arn and "/" in arn else None


# --- CloudTrail userIdentity ---


class _UserIdentity(NamedTuple):
    """The strings of a CloudTrail `userIdentity` that identity resolution reads, with the record's account."""

    kind: str | None  # type
    arn: str | None
    account: str | None  # accountId, else the record's account
    access_key: str | None  # accessKeyId
    invoked_by: str | None  # invokedBy
    user_name: str | None  # userName
    principal_id: str | None  # principalId
    issuer_arn: str | None  # sessionContext.sessionIssuer.arn
    issuer_user_name: str | None  # sessionContext.sessionIssuer.userName
    from_ec2: bool  # sessionContext.ec2RoleDelivery is present: an instance-profile session
    on_behalf_of: str | None  # onBehalfOf.userId (IAM Identity Center)


def from_cloudtrail(identity: Any, account: str | None) -> Actor | None:
    """Actor from a CloudTrail `userIdentity`; `account` is the record's account, used when it names none.
    The same identity gives the same (shared) Actor: events never change theirs."""
    if not isinstance(identity, dict) or not identity:
        return None
    # The values as they stand are the cache key, in one tuple: checking each one's type first (`text`) cost more
    # than the rest of the resolution, and is done once per distinct identity instead, in `_resolve`.
    get = identity.get
    session = get("sessionContext")
    issuer = session.get("sessionIssuer") if isinstance(session, dict) else None
    if not isinstance(issuer, dict):
        issuer = {}
    on_behalf_of = get("onBehalfOf")
    key = (
        get("type"),
        get("arn"),
        get("accountId"),
        account,
        get("accessKeyId"),
        get("invokedBy"),
        get("userName"),
        get("principalId"),
        issuer.get("arn"),
        issuer.get("userName"),
        isinstance(session, dict) and session.get("ec2RoleDelivery") is not None,
        on_behalf_of.get("userId") if isinstance(on_behalf_of, dict) else None,
    )
    try:
        return _cloudtrail_actor(key)
    except TypeError:  # an object or a list where a string belongs (unhashable): never cached, never read
        return _resolve(key)


_RawIdentity = tuple[Any, Any, Any, str | None, Any, Any, Any, Any, Any, Any, bool, Any]


@lru_cache(maxsize=4096)
def _cloudtrail_actor(raw: _RawIdentity) -> Actor:
    # Equal keys resolve alike: `text` keeps only strings, and a string equals nothing but a string.
    return _resolve(raw)


def _resolve(raw: _RawIdentity) -> Actor:
    kind, arn, account_id, account, access_key, invoked_by, user_name, principal_id, issuer_arn, issuer_name = raw[:10]
    return _actor_of(
        _UserIdentity(
            kind=text(kind),
            arn=text(arn),
            account=text(account_id) or account,
            access_key=text(access_key),
            invoked_by=text(invoked_by),
            user_name=text(user_name),
            principal_id=text(principal_id),
            issuer_arn=text(issuer_arn),
            issuer_user_name=text(issuer_name),
            from_ec2=raw[10],
            on_behalf_of=text(raw[11]),
        )
    )


def _actor_of(who: _UserIdentity) -> Actor:
    resolve = _RESOLVERS.get(who.kind or "", _other)
    return Actor(
        principal_type=who.kind, account=who.account, access_key=who.access_key, invoked_by=who.invoked_by
    ).model_copy(update=resolve(who))


def _iam_user(who: _UserIdentity) -> dict[str, Any]:
    name = who.user_name or _last_segment(who.arn)
    # A failed ConsoleLogin names the user but has no ARN: rebuild it (without any IAM path).
    return {"principal": who.arn or user_arn(who.account, name), "user_name": name}


def _assumed_role(who: _UserIdentity) -> dict[str, Any]:
    session_name = _last_segment(who.arn) or _after_colon(who.principal_id)
    return {
        # The issuer's ARN keeps the role path (role/service-role/x); the session ARN drops it.
        "principal": who.issuer_arn or role_arn_from_session(who.arn),
        "session": who.arn,
        "session_name": session_name,
        "instance": session_name if who.from_ec2 and session_name else instance_behind(session_name),
    }


def _root(who: _UserIdentity) -> dict[str, Any]:
    return {"principal": root_arn(who.account, _partition(who.arn))}


def _aws_service(who: _UserIdentity) -> dict[str, Any]:
    # Service events (eventType AwsServiceEvent) often name no type, only invokedBy. A service is no principal of
    # the account: as an entity it would tie every call it makes for anyone into one incident. `invoked_by` keeps it.
    return {"principal": None, "principal_type": "AWSService"}


def _federated_user(who: _UserIdentity) -> dict[str, Any]:
    # GetFederationToken sessions resolve to the IAM user who minted them, like role sessions to their role.
    return {
        "principal": who.issuer_arn,
        "user_name": who.issuer_user_name,
        "session": who.arn,
        "session_name": _last_segment(who.arn) or _after_colon(who.principal_id),
    }


def _identity_center_user(who: _UserIdentity) -> dict[str, Any]:
    user_id = who.on_behalf_of
    return {"principal": f"arn:aws:identitystore:::user/{user_id}" if user_id else None, "user_name": user_id}


def _aws_account(who: _UserIdentity) -> dict[str, Any]:
    # Another account calling in (cross-account access); `accountId` is that caller's account.
    return {"principal": root_arn(who.account)}


def _external_user(who: _UserIdentity) -> dict[str, Any]:
    # SAML / web-identity users have no IAM principal until they assume a role; that call names the role.
    return {"user_name": who.user_name}


def _other(who: _UserIdentity) -> dict[str, Any]:
    if who.kind is None and who.invoked_by:
        return _aws_service(who)
    return {"principal": who.arn}


def _after_colon(principal_id: Any) -> str | None:
    value = text(principal_id)
    if value is None or ":" not in value:
        return None
    return value.split(":", 1)[1] or None


_RESOLVERS: dict[str, Callable[[_UserIdentity], dict[str, Any]]] = {
    "IAMUser": _iam_user,
    "AssumedRole": _assumed_role,
    "Root": _root,
    "AWSService": _aws_service,
    "FederatedUser": _federated_user,
    "IdentityCenterUser": _identity_center_user,
    "AWSAccount": _aws_account,
    "SAMLUser": _external_user,
    "WebIdentityUser": _external_user,
}


# --- GuardDuty resource.accessKeyDetails, and ASFF IAM resources ---


def from_access_key_details(details: Any, account: str | None, partition: str = "aws") -> Actor | None:
    """Actor from GuardDuty `accessKeyDetails` {accessKeyId, principalId, userName, userType}."""
    if not isinstance(details, dict):
        return None
    kind = text(details.get("userType"))
    name = text(details.get("userName"))
    actor = Actor(principal_type=kind, account=account, access_key=text(details.get("accessKeyId")))
    if kind == "IAMUser":
        return actor.model_copy(update={"principal": user_arn(account, name, partition), "user_name": name})
    if kind == "AssumedRole":
        # principalId is "AROA...:<session name>"; for an instance profile the session name is the instance id.
        session_name = _after_colon(details.get("principalId"))
        return actor.model_copy(
            update={
                "principal": role_arn(account, name, partition),
                "session": session_arn(account, name, session_name, partition),
                "session_name": session_name,
                "instance": instance_behind(session_name),
            }
        )
    if kind == "Root":
        return actor.model_copy(update={"principal": root_arn(account, partition)})
    if kind == "FederatedUser" and account and name:
        return actor.model_copy(
            update={"session": f"arn:{partition}:sts::{account}:federated-user/{name}", "session_name": name}
        )
    return actor.model_copy(update={"user_name": name})


def from_asff_resources(resources: list[Any], account: str | None, partition: str = "aws") -> Actor | None:
    """Actor from an ASFF finding's IAM resources: an access key first, then a user or role ARN."""
    actor: Actor | None = None
    for resource in resources:
        if isinstance(resource, dict) and resource.get("Type") == "AwsIamAccessKey":
            actor = _asff_access_key(resource, account, partition)
            break
    for resource in resources:
        principal = _asff_principal(resource, account, partition)
        if principal and (actor is None or actor.principal is None):
            actor = (actor or Actor(account=account)).model_copy(update=principal)
    return actor


def _asff_access_key(resource: dict[str, Any], account: str | None, partition: str) -> Actor | None:
    details = mapping(dig(resource, "Details", "AwsIamAccessKey"))
    key = ACCESS_KEY_ID.search(str(resource.get("Id", "")))
    name = text(details.get("PrincipalName")) or text(details.get("UserName"))
    # Older findings only carry UserName, which is always an IAM user's.
    kind = text(details.get("PrincipalType")) or ("IAMUser" if name else None)
    return from_access_key_details(
        {
            "accessKeyId": key.group(0) if key else None,
            "userName": name,
            "userType": kind,
            "principalId": details.get("PrincipalId"),
        },
        account,
        partition,
    )


def _asff_principal(resource: Any, account: str | None, partition: str) -> dict[str, Any] | None:
    """An IAM user or role named by an ASFF resource (typed AwsIamUser/AwsIamRole, or any with such an ARN)."""
    if not isinstance(resource, dict):
        return None
    arn = text(resource.get("Id"))
    kind = resource.get("Type")
    if kind == "AwsIamRole" and arn and not arn.startswith("arn:"):
        arn = role_arn(account, arn, partition)
    if kind == "AwsIamUser" and arn and not arn.startswith("arn:"):
        arn = user_arn(account, arn, partition)
    resource_part = arn.split(":", 5)[-1] if arn and arn.startswith("arn:") and ":iam::" in arn else ""
    if resource_part.startswith("user/"):
        return {"principal": arn, "principal_type": "IAMUser", "user_name": _last_segment(arn)}
    if resource_part.startswith("role/"):
        return {"principal": arn, "principal_type": "AssumedRole"}
    return None
