"""What every notification responder checks before it sends."""

from __future__ import annotations

from typing import TypeVar

from responders.base import ActionContext, ResponderError, ResponderParams, Target

INCIDENT_TARGET = frozenset({"incident"})
P = TypeVar("P", bound=ResponderParams)


def params_as(params: ResponderParams, model: type[P], name: str) -> P:
    """The runner validated `params` with the responder's own model; anything else is a wiring bug."""
    if not isinstance(params, model):
        raise ResponderError(f"{name}: expected {model.__name__}, got {type(params).__name__}")
    return params


def check_target(ctx: ActionContext, target: Target, name: str) -> None:
    """A notification is about the incident it was given, and no other (DESIGN principle 7: act only on
    targets the incident names)."""
    if target.type not in INCIDENT_TARGET:
        raise ResponderError(f"{name}: target type {target.type!r} is not an incident")
    if target.id != ctx.incident.get("id"):
        raise ResponderError(f"{name}: target {target.id!r} is not this action's incident {ctx.incident.get('id')!r}")
