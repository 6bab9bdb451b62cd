"""sagemaker.quarantine-endpoint: the per-principal inline policy that denies InvokeEndpoint on the endpoint."""

from __future__ import annotations

import re
from typing import Any, Literal

from responders.aws import call
from responders.base import ResponderError
from responders.iam import Principal as Principal  # re-exported: the endpoint responder's principals are IAM's
from responders.iam import get_inline_policy, principal_from_arn, set_inline_policy

DENY_POLICY_PREFIX = "cordon-deny-invoke-"


def parse_principal(arn: str) -> Principal:
    """A role or user ARN for a deny policy (assumed-role sessions resolve to their role before they get here)."""
    return principal_from_arn(arn)


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


def read_deny_policy(iam: Any, principal: Principal, policy_name: str) -> dict[str, Any] | Literal[False] | None:
    """The principal's deny policy document, None if it has none, False if the principal does not exist."""
    try:
        if principal.kind == "role":
            call(iam.get_role, RoleName=principal.name)
        else:
            call(iam.get_user, UserName=principal.name)
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return False
        raise
    return get_inline_policy(iam, principal, policy_name)


def write_deny_policy(iam: Any, principal: Principal, policy_name: str, document: dict[str, Any] | None) -> None:
    """Put the document, or delete the policy when it is None (the inline-policy helpers IAM's responders use)."""
    set_inline_policy(iam, principal, policy_name, document)
