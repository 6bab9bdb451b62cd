"""The playbook schema.

```yaml
name: contain-stolen-credentials
description: Deactivate the stolen key, revoke the role's sessions, cut ML data access, tell the SOC.
mode: enforce                      # dry_run: plan only | approval: a person approves each action | enforce
trigger:
  rules: [ml_credential_finding_then_ml_access]   # any of these raised the incident (empty: any rule)
  min_severity: high
  entity_types: [access_key]       # the incident names all of these
steps:
  - name: deactivate-key
    responder: iam.deactivate-access-key
    target: "entities[?type=='access_key'].id"    # JMESPath over the incident: one action per value
    when: "severity == 'critical'"                 # optional JMESPath; the step runs when it is truthy
    params: {}                                     # literal parameters
    bind: {}                                       # parameters bound from the incident with JMESPath
    on_error: continue                             # continue | stop (skip the playbook's remaining steps)
notify:
  - responder: notify.sns
    bind: {topic_arn: site.sns_topic_arn}          # `site` is the config's site: mapping
```
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, cast

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from correlators.model import EntityType, Severity

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


class Mode(StrEnum):
    DRY_RUN = "dry_run"
    APPROVAL = "approval"
    ENFORCE = "enforce"


class OnError(StrEnum):
    CONTINUE = "continue"
    STOP = "stop"


_FUNCTIONS: dict[str, Any] = functions.Functions().FUNCTION_TABLE
_LITERAL_TYPES = {str: "string", bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}


def _check_expression(expression: str) -> str:
    """Compile a JMESPath expression and check what can be known without data: every function exists, gets as
    many arguments as it takes, and a literal argument has a type the function accepts. (What depends on the
    incident is checked by `cordon validate` against a representative incident, and fails one step at run time.)
    """
    try:
        parsed = jmespath.compile(expression).parsed
    except JMESPathError as error:
        raise ValueError(f"invalid JMESPath {expression!r}: {str(error).splitlines()[0]}") from None
    problem = _function_problem(cast("dict[str, Any]", parsed))
    if problem is not None:
        raise ValueError(f"invalid JMESPath {expression!r}: {problem}")
    return expression


def _function_problem(node: dict[str, Any]) -> str | None:
    """The first unknown function, wrong argument count or wrongly typed literal argument in a parsed expression."""
    stack = [node]
    while stack:
        current = stack.pop()
        children = current.get("children", [])
        stack.extend(child for child in children if isinstance(child, dict))
        if current.get("type") != "function_expression":
            continue
        name = current["value"]
        spec = _FUNCTIONS.get(name)
        if spec is None:
            return f"unknown function {name}(), valid: {', '.join(sorted(_FUNCTIONS))}"
        signature = spec["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if len(children) < len(signature) or (not variadic and len(children) > len(signature)):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            return f"{name}() takes {expected} argument(s), got {len(children)}"
        for position, (child, argument) in enumerate(zip(children, signature, strict=False), start=1):
            if child.get("type") != "literal" or not argument["types"]:
                continue
            kind = _LITERAL_TYPES.get(type(child["value"]), "null")
            allowed = argument["types"]
            if kind not in allowed and not (kind == "array" and any(t.startswith("array") for t in allowed)):
                return f"{name}() argument {position} must be {' or '.join(allowed)}, got {kind} {child['value']!r}"
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Strict):
    rules: list[str] = Field(default_factory=list)
    min_severity: Severity = Severity.HIGH
    entity_types: list[EntityType] = Field(default_factory=list)


class Notification(_Strict):
    """A responder call with a `when` condition and parameters, literal or bound from the incident."""

    responder: str
    when: str | None = None  # e.g. "site.sns_topic_arn": notify only where the site configured a channel
    params: dict[str, Any] = Field(default_factory=dict)
    bind: dict[str, str] = Field(default_factory=dict)

    @field_validator("when")
    @classmethod
    def _condition(cls, expression: str | None) -> str | None:
        return None if expression is None else _check_expression(expression)

    @field_validator("bind")
    @classmethod
    def _bindings(cls, bind: dict[str, str]) -> dict[str, str]:
        for expression in bind.values():
            _check_expression(expression)
        return bind


class Step(Notification):
    """A notification's fields, plus a name, a target, what to do on error, and a stricter mode if wanted."""

    name: str
    target: str = "id"  # JMESPath; the default names the incident itself (notifications)
    on_error: OnError = OnError.CONTINUE
    mode: Mode | None = None  # overrides the playbook's mode for this step

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"step name {name!r} must be lower-case letters, digits and dashes")
        return name

    @field_validator("target")
    @classmethod
    def _target(cls, expression: str) -> str:
        return _check_expression(expression)


class Playbook(_Strict):
    name: str
    description: str = ""
    mode: Mode = Mode.DRY_RUN  # the safe default: a playbook changes nothing until someone says so
    trigger: Trigger
    steps: list[Step] = Field(default_factory=list)
    notify: list[Notification] = Field(default_factory=list)
    source: str = Field(default="", exclude=True)  # "path:line" it was loaded from

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"playbook name {name!r} must be lower-case letters, digits and dashes")
        return name
