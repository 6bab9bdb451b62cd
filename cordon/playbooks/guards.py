"""Guards checked before every action: the kill switch, protected principals, and the action budgets.

Protected, whatever a playbook says: the config's `protected_principals`, Cordon's own roles (`cordon_roles`: the
responder must never lock itself out), service-linked roles (`/aws-service-role/`), and (checked against AWS when
executing) any user or role tagged `cordon:protected=true`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from typing import Any

from correlators.config import GuardsConfig

KILL_SWITCH_ENV = "CORDON_KILL_SWITCH"
PROTECTED_TAG = ("cordon:protected", "true")
_PRINCIPAL_MARKERS = (":user/", ":role/", ":root", ":assumed-role/")


def kill_switch_reason(guards: GuardsConfig) -> str | None:
    if guards.kill_switch:
        return "kill switch is on (guards.kill_switch in the config): nothing is changed"
    if os.environ.get(KILL_SWITCH_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return f"kill switch is on ({KILL_SWITCH_ENV}): nothing is changed"
    return None


def principals_in(target_id: str, params: dict[str, Any]) -> list[str]:
    """Principal ARNs an action would change: its target, and principals named anywhere in its parameters, nested
    ones included (an SSM runbook's `parameters: {RoleArn: ...}` reaches the runbook as surely as a top-level one)."""
    found = [target_id] if _is_principal(target_id) else []
    found.extend(v for v in _strings(params) if _is_principal(v))
    return list(dict.fromkeys(found))


def _strings(value: Any) -> Iterable[str]:
    """Every string in a parameter value, through lists and mappings of any depth."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list | tuple):
            stack.extend(reversed(current))


def protected_reason(principal: str, guards: GuardsConfig) -> str | None:
    """Why a principal must not be changed, by name alone (tags are checked against AWS)."""
    if ":role/aws-service-role/" in principal:
        return f"{principal} is a service-linked role"
    for glob in guards.cordon_roles:
        if fnmatch.fnmatchcase(principal, glob):
            return f"{principal} is one of Cordon's own roles ({glob}): the responder must not lock itself out"
    for glob in guards.protected_principals:
        if fnmatch.fnmatchcase(principal, glob):
            return f"{principal} is protected by guards.protected_principals ({glob})"
    return None


def _is_principal(value: str) -> bool:
    return value.startswith("arn:") and ":iam::" in value and any(m in value for m in _PRINCIPAL_MARKERS)
