"""Least privilege, checked: what each role in the (transformed) templates grants equals what the code declares in
cordon/handlers/permissions.py, per resource; no wildcard action; `Resource: "*"` only with a comment saying why."""

from __future__ import annotations

from typing import Any

import pytest

from cordon.execute import EXECUTOR_PERMISSIONS
from cordon.handlers import permissions
from responders.catalog import builtin_responders

from .template_support import (
    MEMBER_TEMPLATE,
    TEMPLATE,
    grants,
    load,
    resources_of,
    role_statements,
    star_statements_without_comment,
    transformed,
)

SAM = transformed()
MEMBER = load(MEMBER_TEMPLATE)


def _declared(mapping: permissions.Grants) -> dict[str, set[str]]:
    return {resource: set(actions) for resource, actions in mapping.items()}


def _role_of(function: str) -> str:
    role = SAM["Resources"][function]["Properties"]["Role"]
    assert role["Fn::GetAtt"][1] == "Arn", f"{function}: the role is not one of the template's"
    return str(role["Fn::GetAtt"][0])


def _all_statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for template in (SAM, MEMBER):
        for name in resources_of(template, "AWS::IAM::Role"):
            found += [(name, s) for s in role_statements(template, name)]
    return found


def test_every_function_has_a_declaration_and_its_own_role() -> None:
    functions = resources_of(SAM, "AWS::Lambda::Function")
    assert set(functions) == set(permissions.FUNCTIONS)
    assert len({_role_of(f) for f in functions}) == len(functions)


@pytest.mark.parametrize("function", sorted(permissions.FUNCTIONS))
def test_each_role_grants_exactly_what_its_function_declares(function: str) -> None:
    granted = grants(role_statements(SAM, _role_of(function)))
    declared = _declared(permissions.FUNCTIONS[function])
    missing = {r: sorted(a - granted.get(r, set())) for r, a in declared.items() if a - granted.get(r, set())}
    extra = {r: sorted(a - declared.get(r, set())) for r, a in granted.items() if a - declared.get(r, set())}
    assert missing == {}, "declared by the code, not granted by the template"
    assert extra == {}, "granted by the template, never declared by the code"


def test_the_runner_declares_every_responder_and_executor_permission_and_no_other() -> None:
    called = set(EXECUTOR_PERMISSIONS)
    for responder in builtin_responders().values():
        called |= set(responder.permissions)
    declared = {action for actions in permissions.RESPONDERS.values() for action in actions}
    assert sorted(called - declared) == [], "a responder calls it; permissions.RESPONDERS does not say where"
    assert sorted(declared - called) == [], "permissions.RESPONDERS grants it; no responder calls it"


def test_the_member_role_grants_the_responders_permissions_and_trusts_only_the_runner() -> None:
    role = MEMBER["Resources"]["ResponderRole"]["Properties"]
    assert grants(role_statements(MEMBER, "ResponderRole")) == _declared(permissions.MEMBER_ROLE)
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Principal": {"AWS": {"Ref": "RunnerRoleArn"}}, "Action": "sts:AssumeRole"}
    assert role["RoleName"] == {"Ref": "ResponderRoleName"}


def test_the_runner_enters_member_accounts_only_through_the_named_role() -> None:
    [statement] = [s for s in role_statements(SAM, "RunnerRole") if "sts:AssumeRole" in s["Action"]]
    assert statement["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberAccountRoleName}"}


@pytest.mark.parametrize("where", ["template.yaml", "infra/member-account.yaml"])
def test_no_wildcard_action(where: str) -> None:
    template = SAM if where == "template.yaml" else MEMBER
    actions = [
        action
        for name in resources_of(template, "AWS::IAM::Role")
        for statement in role_statements(template, name)
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    ]
    assert actions
    assert [a for a in actions if "*" in a] == []


def test_every_star_resource_says_why() -> None:
    assert star_statements_without_comment(TEMPLATE) == []
    assert star_statements_without_comment(MEMBER_TEMPLATE) == []
    stars = [(role, s["Sid"]) for role, s in _all_statements() if s["Resource"] == "*"]
    assert stars, "no Resource '*' at all: then this test checks nothing, and X-Ray would not work"
    # ... and "*" is only for actions that have no resource-level permissions
    star_actions = {a for _, s in _all_statements() if s["Resource"] == "*" for a in s["Action"]}
    without_resources = {"sts:GetCallerIdentity", "cloudtrail:LookupEvents"}
    assert all(a.startswith(("ec2:Describe", "xray:Put")) or a in without_resources for a in star_actions)


def test_the_comment_check_can_fail(tmp_path: Any) -> None:
    template = tmp_path / "t.yaml"
    template.write_text(
        "Statement:\n"
        "  # has no resource-level permissions\n"
        "  - Sid: Fine\n"
        '    Resource: "*"\n'
        "  - Sid: Bare\n"
        "    Action: [s3:GetObject]\n"
        '    Resource: "*"\n'
    )
    assert star_statements_without_comment(template) == ["t.yaml:7"]
