"""Reading template.yaml and infra/member-account.yaml for the tests: CloudFormation YAML, the SAM transform, the
EventBridge patterns of the rules, the IAM grants per role, and an EventBridge pattern matcher.

The matcher implements the part of EventBridge's content filtering the templates use, with EventBridge's semantics:

- a pattern is a tree of objects whose leaves are lists of allowed values; an event matches when every leaf
  matches (AND across fields, OR within a leaf's list);
- arrays in the event are flattened: the values at a path are every value found there, through any depth of
  arrays of objects (`detail.findings[].Workflow.Status`); a leaf matches when one of them matches;
- `{"exists": false}` matches when the path yields no value at all (no element of the array has it), `true`
  when it yields one;
- `{"numeric": [op, n, ...]}` matches numbers only; `{"prefix": s}` and `{"anything-but": [...]}` match strings;
  a literal matches an equal value (JSON equality: 4 == 4.0, "4" != 4);
- `"$or": [pattern, ...]` at any level matches when one of the alternatives (each a pattern at that level) does.

moto 5.2's matcher (`moto.events.models.EventPattern`) flattens only objects: it never looks into arrays of
objects such as Security Hub's `detail.findings[]`. The tests compare this matcher with moto's wherever moto
works (GuardDuty, CloudTrail, CloudWatch rules) and use this one alone for Security Hub's.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
MEMBER_TEMPLATE = REPO / "infra" / "member-account.yaml"
SAMPLES = REPO.parent / "shared" / "samples"
EXAMPLES = REPO / "examples"
ARTIFACT_URI = "s3://cordon-artifacts/cordon.zip"  # what `sam package` puts in place of CodeUri: .

_MISSING = object()


# --- templates ---------------------------------------------------------------------------------------------------
@cache
def _load(path: Path) -> str:
    return path.read_text()


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as CloudFormation sees it: short tags (!Sub, !GetAtt, !If) in their long form."""
    return yaml_parse(_load(path))  # type: ignore[no-any-return]


class _NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only when a function names one; Cordon's templates name
    none (explicit roles), so this loader never goes to AWS and has nothing to return."""

    def load(self) -> dict[str, str]:
        return {}


def transformed(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM transform of the template, offline: CodeUri replaced as `sam package` would, a fixed region."""
    template = load(path)
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = ARTIFACT_URI
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"  # the translator reads the region to fill pseudo-parameters
    try:
        return transform(template, {}, _NoManagedPolicies())  # type: ignore[no-any-return]
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}


# --- event patterns ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    name: str
    bus: Any  # None for the default bus, else the EventBusName expression
    pattern: dict[str, Any]


def _sub(text: str, values: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"${{{name}}} has no value for this test")
        return str(values[name])

    return re.sub(r"\$\{([^}!]+)\}", replace, text)


def pattern_of(rule: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """A rule's EventPattern as EventBridge receives it: `!Sub` strings resolved with `parameters` and parsed."""
    pattern = rule["Properties"]["EventPattern"]
    if isinstance(pattern, dict) and "Fn::Sub" in pattern:
        pattern = _sub(pattern["Fn::Sub"], parameters)
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    assert isinstance(pattern, dict)
    return pattern


def rules(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[Rule]:
    values = {**parameter_defaults(template), **(parameters or {})}
    return [
        Rule(name, r["Properties"].get("EventBusName"), pattern_of(r, values))
        for name, r in resources_of(template, "AWS::Events::Rule").items()
    ]


# --- EventBridge matching ----------------------------------------------------------------------------------------
def values_at(event: Any, path: list[str]) -> list[Any]:
    """Every value at `path`, looking through arrays (of objects, of arrays) at any level; [] when absent."""
    if isinstance(event, list):
        return [value for element in event for value in values_at(element, path)]
    if not path:
        return [event]
    if not isinstance(event, dict) or path[0] not in event:
        return []
    return values_at(event[path[0]], path[1:])


_NUMERIC = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _leaf_matches(values: list[Any], allowed: list[Any]) -> bool:
    for condition in allowed:
        if isinstance(condition, dict):
            [(kind, argument)] = condition.items()
            if kind == "exists":
                if bool(values) == argument:
                    return True
            elif kind == "numeric":
                pairs = list(zip(argument[::2], argument[1::2], strict=True))
                if any(_is_number(v) and all(_NUMERIC[op](v, n) for op, n in pairs) for v in values):
                    return True
            elif kind == "prefix":
                if any(isinstance(v, str) and v.startswith(argument) for v in values):
                    return True
            elif kind == "anything-but":
                excluded = argument if isinstance(argument, list) else [argument]
                if any(v not in excluded for v in values):
                    return True
            else:
                raise NotImplementedError(f"pattern operator {kind!r} is not implemented by this test matcher")
        elif any(v == condition and isinstance(v, bool) == isinstance(condition, bool) for v in values):
            return True
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any], path: tuple[str, ...] = ()) -> bool:
    """EventBridge's verdict on `event` for `pattern` (the subset of the semantics in this module's docstring)."""
    for key, allowed in pattern.items():
        if key == "$or":  # any one of the alternatives, each a pattern at this level
            if not any(matches(alternative, event, path) for alternative in allowed):
                return False
            continue
        here = [*path, key]
        if isinstance(allowed, dict):
            if not matches(allowed, event, tuple(here)):
                return False
        elif not _leaf_matches(values_at(event, here), allowed):
            return False
    return True


# --- sample events as EventBridge delivers them ------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    where: str
    event: dict[str, Any]  # an EventBridge envelope


def envelope(detail_type: str, source: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": detail_type,
        "source": source,
        "account": "111122223333",
        "time": "2026-11-20T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def as_eventbridge(payload: dict[str, Any]) -> dict[str, Any] | None:
    """What EventBridge would deliver for a sample: envelopes as they are; bare CloudTrail records, GuardDuty
    findings and ASFF findings wrapped as AWS wraps them; None for what never reaches EventBridge as an event."""
    if "detail-type" in payload:
        return payload
    detail = payload.get("detail")
    document: dict[str, Any] = detail if isinstance(detail, dict) else payload
    if "eventSource" in document and "eventName" in document:
        service = str(document["eventSource"]).split(".", 1)[0]
        return envelope("AWS API Call via CloudTrail", f"aws.{service}", document)
    if "SchemaVersion" in document and "ProductArn" in document:
        return envelope("Security Hub Findings - Imported", "aws.securityhub", {"findings": [document]})
    if isinstance(document.get("findings"), list):
        return envelope("Security Hub Findings - Imported", "aws.securityhub", document)
    if isinstance(document.get("service"), dict) and document["service"].get("serviceName") == "guardduty":
        return envelope("GuardDuty Finding", "aws.guardduty", document)
    return None


def sample_events() -> Iterator[Sample]:
    """Every record of ../shared/samples (when present) and examples/, as EventBridge events."""
    from correlators.ingest import RawRecord, read_inputs

    roots = [str(root) for root in (SAMPLES, EXAMPLES) if root.is_dir()]
    for item in read_inputs(roots):
        if isinstance(item, RawRecord):
            event = as_eventbridge(item.payload)
            if event is not None:
                yield Sample(item.where, event)


# --- IAM ---------------------------------------------------------------------------------------------------------
def resource_label(resource: Any) -> str:
    """What a statement's Resource names, in cordon/handlers/permissions.py's terms (see its docstring)."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and "Ref" in resource:
        return str(resource["Ref"])
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target = resource["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = resource["Fn::Sub"] if isinstance(resource["Fn::Sub"], str) else resource["Fn::Sub"][0]
        names = {n.split(".")[0] for n in re.findall(r"\$\{([^}]+)\}", text) if not n.startswith("AWS::")}
        if len(names) == 1:
            return names.pop()
        assert not names, f"a resource naming several template objects: {text}"
        return str(text)
    if isinstance(resource, dict) and "Fn::If" in resource:
        _, when_true, when_false = resource["Fn::If"]
        return " or ".join(sorted({resource_label(when_true), resource_label(when_false)}))
    raise AssertionError(f"unexpected Resource expression: {resource!r}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    """Every statement a role's inline policies and its template-defined managed policies hold. A statement under
    a condition (`Fn::If: [condition, statement, AWS::NoValue]`) counts as granted: the most the role may hold."""
    role = template["Resources"][role_name]["Properties"]
    statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for arn in role.get("ManagedPolicyArns", []):
        assert isinstance(arn, dict) and "Ref" in arn, f"{role_name}: a managed policy from outside: {arn}"
        document = template["Resources"][arn["Ref"]]["Properties"]["PolicyDocument"]
        statements.extend(document["Statement"])
    return [conditional_statement(s) for s in statements]


def conditional_statement(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement itself, or the one a `Fn::If` grants when its condition holds (the other branch must be
    nothing: a statement is granted or not, never swapped for another)."""
    if "Fn::If" not in statement:
        return statement
    _, granted, otherwise = statement["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}, f"a conditional statement's other branch grants something: {otherwise}"
    return dict(granted)


def grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Resource label -> actions allowed on it."""
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in _as_list(statement["Resource"]):
            granted.setdefault(resource_label(resource), set()).update(_as_list(statement["Action"]))
    return granted


def star_statements_without_comment(path: Path) -> list[str]:
    """`Resource: "*"` lines whose statement is not preceded by a comment line (the reason the API needs it)."""
    lines = _load(path).splitlines()
    missing = []
    for index, line in enumerate(lines):
        if line.strip() != 'Resource: "*"':
            continue
        indent = len(line) - len(line.lstrip())
        start = index
        while start > 0 and not lines[start].startswith(" " * (indent - 2) + "- "):
            start -= 1
        if not lines[start - 1].strip().startswith("#"):
            missing.append(f"{path.name}:{index + 1}")
    return missing
