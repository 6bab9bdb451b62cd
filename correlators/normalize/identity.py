"""Identity resolution (DESIGN principle 3): whoever acted, resolved to a stable principal ARN.

An access key resolves to its IAM user; an assumed-role session to its role ARN (not the `sts` session ARN, which
changes with every session), keeping the session and the EC2 instance behind it. CloudTrail `userIdentity`,
GuardDuty `accessKeyDetails` and ASFF IAM resources all resolve through here, so a finding about a key and the
calls made with that key meet on the same entity nodes (principal, access key, session, instance).
"""

from __future__ import annotations

from typing import Any

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


def from_cloudtrail(identity: Any, account: str | None) -> Actor | None:
    """Actor from a CloudTrail `userIdentity`; `account` is the record's account, used when it names none."""
    if not isinstance(identity, dict) or not identity:
        return None
    kind = text(identity.get("type"))
    arn = text(identity.get("arn"))
    actor = Actor(
        principal_type=kind,
        account=text(identity.get("accountId")) or account,
        access_key=text(identity.get("accessKeyId")),
        invoked_by=text(identity.get("invokedBy")),
    )
    resolve = _RESOLVERS.get(kind or "", _other)
    return actor.model_copy(update=resolve(identity, arn, actor))


def _iam_user(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    name = text(identity.get("userName")) or _last_segment(arn)
    # A failed ConsoleLogin names the user but has no ARN: rebuild it (without any IAM path).
    return {"principal": arn or user_arn(actor.account, name), "user_name": name}


def _assumed_role(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    session_name = _last_segment(arn) or _after_colon(identity.get("principalId"))
    from_ec2 = dig(identity, "sessionContext", "ec2RoleDelivery") is not None
    return {
        # The issuer's ARN keeps the role path (role/service-role/x); the session ARN drops it.
        "principal": text(dig(identity, "sessionContext", "sessionIssuer", "arn")) or role_arn_from_session(arn),
        "session": arn,
        "session_name": session_name,
        "instance": session_name if from_ec2 and session_name else instance_behind(session_name),
    }


def _root(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    return {"principal": root_arn(actor.account, _partition(arn))}


def _aws_service(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    # Service events (eventType AwsServiceEvent) often name no type, only invokedBy. A service is no principal of
    # the account: as an entity it would tie every call it makes for anyone into one incident. `invoked_by` keeps it.
    return {"principal": None, "principal_type": "AWSService"}


def _federated_user(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    # GetFederationToken sessions resolve to the IAM user who minted them, like role sessions to their role.
    return {
        "principal": text(dig(identity, "sessionContext", "sessionIssuer", "arn")),
        "user_name": text(dig(identity, "sessionContext", "sessionIssuer", "userName")),
        "session": arn,
        "session_name": _last_segment(arn) or _after_colon(identity.get("principalId")),
    }


def _identity_center_user(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    user_id = text(dig(identity, "onBehalfOf", "userId"))
    return {"principal": f"arn:aws:identitystore:::user/{user_id}" if user_id else None, "user_name": user_id}


def _aws_account(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    # Another account calling in (cross-account access); `accountId` is that caller's account.
    return {"principal": root_arn(actor.account)}


def _external_user(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    # SAML / web-identity users have no IAM principal until they assume a role; that call names the role.
    return {"user_name": text(identity.get("userName"))}


def _other(identity: dict[str, Any], arn: str | None, actor: Actor) -> dict[str, Any]:
    if actor.principal_type is None and actor.invoked_by:
        return _aws_service(identity, arn, actor)
    return {"principal": arn}


def _after_colon(principal_id: Any) -> str | None:
    value = text(principal_id)
    if value is None or ":" not in value:
        return None
    return value.split(":", 1)[1] or None


_RESOLVERS = {
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
