"""Meta-tests over the whole responder registry (Cloud Custodian's tests/test_policy.py, for Cordon)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from cordon.execute import EXECUTOR_PERMISSIONS
from cordon.playbooks.model import Step
from correlators.model import EntityType
from responders.base import Responder, ResponderParams
from responders.catalog import builtin_responders

from .template_support import conditional_statement

REPO = Path(__file__).resolve().parents[2]
RESPONDERS = builtin_responders()
IAM_ACTION = re.compile(r"[a-z0-9-]+:[A-Z][A-Za-z0-9]+|apigateway:(GET|PATCH|POST|PUT|DELETE)")
TARGET_TYPES = {kind.value for kind in EntityType} | {"incident"}


def _template_actions() -> set[str]:
    class _CfnLoader(yaml.SafeLoader):
        pass

    # CloudFormation short tags (!Sub, !GetAtt, !Ref) are data here, never constructed into objects.
    _CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)
    statements = template["Resources"]["ResponderPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return {action for statement in statements for action in conditional_statement(statement)["Action"]}


def _example(cls: type[Responder]) -> dict[str, Any]:
    doc = cls.__doc__ or ""
    match = re.search(r"Example::\n\n((?:[ \t]+.*\n?)+)", doc)
    assert match, f"{cls.name}: no 'Example::' block in the docstring"
    [step] = yaml.safe_load(textwrap.dedent(match.group(1)))
    return step


def test_there_are_responders() -> None:
    assert len(RESPONDERS) >= 15


@pytest.mark.parametrize("name", sorted(RESPONDERS))
def test_every_responder_declares_permissions_params_and_targets(name: str) -> None:
    cls = RESPONDERS[name]
    assert cls.permissions, f"{name} declares no IAM permissions"
    assert all(IAM_ACTION.fullmatch(p) for p in cls.permissions), cls.permissions
    assert len(set(cls.permissions)) == len(cls.permissions)
    assert issubclass(cls.Params, ResponderParams)
    assert cls.Params.model_config.get("extra") == "forbid"
    assert cls.target_types and cls.target_types <= TARGET_TYPES


@pytest.mark.parametrize("name", sorted(RESPONDERS))
def test_every_docstring_example_is_a_valid_playbook_step(name: str) -> None:
    cls = RESPONDERS[name]
    example = _example(cls)
    assert example["responder"] == name
    step = Step.model_validate({"name": "example", **example})
    assert set(step.params) | set(step.bind) <= set(cls.Params.model_fields)
    # Literal parameters validate on their own when nothing is bound; bound ones are checked by type at run time.
    if not step.bind:
        try:
            cls.Params.model_validate(step.params)
        except ValidationError as error:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"{name}: example params do not validate: {error}")


def test_every_permission_is_granted_in_the_template_and_nothing_more() -> None:
    declared = set(EXECUTOR_PERMISSIONS)
    for cls in RESPONDERS.values():
        declared |= set(cls.permissions)
    granted = _template_actions()
    assert sorted(declared - granted) == [], "called but not granted"
    assert sorted(granted - declared) == [], "granted but never called"


def test_registering_a_name_twice_is_an_error() -> None:
    from responders.base import responder

    with pytest.raises(ValueError, match=r"responder 'iam\.deactivate-access-key' registered twice"):

        @responder("iam.deactivate-access-key")
        class Again(Responder):  # pragma: no cover - never instantiated
            permissions = ("iam:UpdateAccessKey",)
            target_types = frozenset({"access_key"})

            def read_state(self, ctx: Any, target: Any, params: BaseModel) -> dict[str, Any]:
                return {}

            def apply(self, ctx: Any, target: Any, params: BaseModel, before: dict[str, Any]) -> dict[str, Any]:
                return {}
