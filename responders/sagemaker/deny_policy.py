"""sagemaker.quarantine-endpoint: the per-principal inline policy that denies InvokeEndpoint on the endpoint."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from responders.aws import call
from responders.base import ResponderError

DENY_POLICY_PREFIX = "cordon-deny-invoke-"

_PRINCIPAL_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::(?P<account>\d{12}):(?P<kind>role|user)/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)


# --- pure request builders -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    arn: str
    account: str
    kind: Literal["role", "user"]
    path: str
    name: str


def parse_principal(arn: str) -> Principal:
    match = _PRINCIPAL_ARN.fullmatch(arn)
    if not match:
        raise ValueError(f"not an IAM role or user ARN: {arn!r} (assumed-role sessions resolve to their role)")
    kind: Literal["role", "user"] = "role" if match["kind"] == "role" else "user"
    return Principal(arn, match["account"], kind, "/" + match["path"], match["name"])


def screen_principals(arns: tuple[str, ...], account: str) -> tuple[list[Principal], dict[str, str]]:
    """Split `arns` into principals Cordon may put a deny on and the skipped ones, with why.

    Protected principals never get here: the runner's guards deny an action whose parameters name one. A
    service-linked role is skipped all the same (AWS refuses inline policies on it), and a principal in another
    account cannot be changed from this one; both are listed in the state while the rest of the quarantine goes on.
    """
    eligible: list[Principal] = []
    skipped: dict[str, str] = {}
    for arn in dict.fromkeys(arns):  # de-duplicated, in order
        principal = parse_principal(arn)
        if principal.path.startswith("/aws-service-role/"):
            skipped[arn] = "service-linked role"
        elif principal.account != account:
            skipped[arn] = f"in account {principal.account}, not the endpoint's {account}: deny it there"
        else:
            eligible.append(principal)
    return eligible, skipped


def deny_sid(incident_id: str) -> str:
    # One statement per incident, so two incidents can deny the same principal and each rollback lifts only its own.
    return "Cordon" + re.sub(r"[^A-Za-z0-9]", "", incident_id)


def deny_statement(incident_id: str, endpoint_arn: str) -> dict[str, Any]:
    return {
        "Sid": deny_sid(incident_id),
        "Effect": "Deny",
        "Action": "sagemaker:InvokeEndpoint*",  # InvokeEndpoint, ...Async, ...WithResponseStream
        "Resource": endpoint_arn,
    }


def policy_statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    statements = (document or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def policy_with(document: dict[str, Any] | None, statement: dict[str, Any]) -> dict[str, Any]:
    kept = [s for s in policy_statements(document) if s.get("Sid") != statement["Sid"]]
    return {"Version": "2012-10-17", "Statement": [*kept, statement]}


def policy_without(document: dict[str, Any] | None, sid: str) -> dict[str, Any] | None:
    """The policy without statement `sid`; None when nothing is left (delete the policy)."""
    kept = [s for s in policy_statements(document) if s.get("Sid") != sid]
    return {"Version": "2012-10-17", "Statement": kept} if kept else None


# --- thin AWS I/O --------------------------------------------------------------------------------------------------


def _iam_ops(iam: Any, principal: Principal) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    if principal.kind == "role":
        return (
            iam.get_role,
            iam.get_role_policy,
            iam.put_role_policy,
            iam.delete_role_policy,
            {"RoleName": principal.name},
        )
    return iam.get_user, iam.get_user_policy, iam.put_user_policy, iam.delete_user_policy, {"UserName": principal.name}


def read_deny_policy(iam: Any, principal: Principal, policy_name: str) -> dict[str, Any] | Literal[False] | None:
    """The principal's deny policy document, None if it has none, False if the principal does not exist."""
    get_principal, get_policy, _, _, key = _iam_ops(iam, principal)
    try:
        call(get_principal, **key)
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return False
        raise
    try:
        document = call(get_policy, PolicyName=policy_name, **key)["PolicyDocument"]
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return None
        raise
    return json.loads(document) if isinstance(document, str) else dict(document)


def write_deny_policy(iam: Any, principal: Principal, policy_name: str, document: dict[str, Any] | None) -> None:
    _, _, put_policy, delete_policy, key = _iam_ops(iam, principal)
    if document is None:
        call(delete_policy, PolicyName=policy_name, **key)
    else:
        call(put_policy, PolicyName=policy_name, PolicyDocument=json.dumps(document), **key)
