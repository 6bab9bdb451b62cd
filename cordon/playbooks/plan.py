"""Planning: which playbooks an incident triggers, and the actions their steps resolve to. Pure: no AWS calls.

Targets and bound parameters are JMESPath over the incident as `--output json` prints it, plus `site` (the
config's site values). A target must be an entity the incident names (or the incident itself, for
notifications): a playbook cannot point a responder at anything else.

An expression that fails on this incident (a function given the wrong type, say) fails that step only: it becomes
one action with the expression and the error as its `problem`, which the executor records as denied with that
reason; the playbook's other steps and the other incidents are planned as usual.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from cordon.playbooks.model import Mode, Notification, OnError, Playbook, Step
from correlators.model import Severity
from responders.base import Responder, Target


@dataclass(frozen=True)
class PlannedAction:
    playbook: str
    step: str  # step name, or "notify:<responder>" for notifications
    responder: str
    target: Target
    params: dict[str, Any]
    mode: Mode
    on_error: OnError
    key: str  # idempotency key: incident + playbook + mode + step + target (`_key`)
    notification: bool = False
    problem: str | None = None  # why this action must not run (a target the incident does not name, a bad binding)


def triggered(playbook: Playbook, incident: Mapping[str, Any]) -> bool:
    trigger = playbook.trigger
    if trigger.rules and not set(trigger.rules) & set(incident["rules"]):
        return False
    if Severity(incident["severity"]).rank < trigger.min_severity.rank:
        return False
    named = {entity["type"] for entity in incident["entities"]}
    return all(kind.value in named for kind in trigger.entity_types)


def plan_incident(
    incident: Mapping[str, Any],
    playbooks: Sequence[Playbook],
    responders: Mapping[str, type[Responder]],
    site: Mapping[str, Any],
    default_region: str,
) -> list[PlannedAction]:
    """Every action the triggered playbooks ask for, steps before notifications, in playbook order."""
    root = {**incident, "site": dict(site)}
    actions: list[PlannedAction] = []
    for playbook in playbooks:
        if not triggered(playbook, incident):
            continue
        for step in playbook.steps:
            actions += _guarded(
                playbook, step, incident, partial(_plan_step, playbook, step, root, responders, default_region)
            )
        for notification in playbook.notify:
            actions += _guarded(
                playbook,
                notification,
                incident,
                partial(_plan_notification, playbook, notification, root, default_region),
            )
    return actions


def _guarded(
    playbook: Playbook, step: Notification, incident: Mapping[str, Any], plan: Callable[[], list[PlannedAction]]
) -> list[PlannedAction]:
    """A step whose planning fails for any reason (data the expressions did not expect) becomes one action that
    must not run, with the reason: the executor records it denied, and the other steps and incidents go on."""
    try:
        return plan()
    except Exception as error:
        name = step.name if isinstance(step, Step) else f"notify:{step.responder}"
        reason = f"planning failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return [
            PlannedAction(
                playbook=playbook.name,
                step=name,
                responder=step.responder,
                target=Target(type="unknown", id=str(incident["id"])),
                params={},
                mode=(step.mode if isinstance(step, Step) else None) or playbook.mode,
                on_error=step.on_error if isinstance(step, Step) else OnError.CONTINUE,
                key=_key(str(incident["id"]), playbook.name, name, "planning-failed"),
                problem=reason,
            )
        ]


def _plan_step(
    playbook: Playbook,
    step: Step,
    root: Mapping[str, Any],
    responders: Mapping[str, type[Responder]],
    default_region: str,
) -> list[PlannedAction]:
    actions: list[PlannedAction] = []
    when, when_problem = _search("when", step.when, root)
    if step.when is not None and when_problem is None and not _truthy(when):
        return actions
    spec = responders[step.responder]
    planned = (
        [(Target(type="unknown", id=root["id"]), when_problem)]
        if when_problem is not None
        else _targets(step.target, root, spec.target_types, default_region)
    )
    for target, problem in planned:
        params, bind_problem = _bind(step.params, step.bind, root)
        actions.append(
            PlannedAction(
                playbook=playbook.name,
                step=step.name,
                responder=step.responder,
                target=target,
                params=params,
                mode=step.mode or playbook.mode,
                on_error=step.on_error,
                key=_key(root["id"], playbook.name, (step.mode or playbook.mode).value, step.name, target.id),
                problem=problem or bind_problem,
            )
        )
    return actions


def _plan_notification(
    playbook: Playbook, notification: Notification, root: Mapping[str, Any], default_region: str
) -> list[PlannedAction]:
    when, when_problem = _search("when", notification.when, root)
    if notification.when is not None and when_problem is None and not _truthy(when):
        return []
    params, problem = _bind(notification.params, notification.bind, root)
    problem = when_problem or problem
    # Told when the incident is created and when its severity changes, not for every context signal
    # (the runner adds the actions waiting for approval, so a new one is told too).
    version = str(root["severity"])
    step_name = f"notify:{notification.responder}"
    return [
        PlannedAction(
            playbook=playbook.name,
            step=step_name,
            responder=notification.responder,
            target=Target(type="incident", id=root["id"], region=default_region),
            params=params,
            mode=Mode.ENFORCE,  # telling people is never held back by the playbook's mode
            on_error=OnError.CONTINUE,
            # Two playbooks alerting the same channel about the same incident version alert once.
            key=_key(root["id"], step_name, _digest(json.dumps(params, sort_keys=True)), version),
            notification=True,
            problem=problem,
        )
    ]


def _search(role: str, expression: str | None, root: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The expression's value on this incident, or why it failed (`role` says which field it came from)."""
    if expression is None:
        return None, None
    try:
        return jmespath.search(expression, root), None
    except (JMESPathError, TypeError, ValueError, ArithmeticError) as error:
        return None, f"{role} {expression!r} failed on this incident: {str(error).splitlines()[0]}"


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: false, null, empty string, list and object are false.
    return value not in (None, False, "", [], {})


def _targets(
    expression: str, root: Mapping[str, Any], allowed: frozenset[str], default_region: str
) -> list[tuple[Target, str | None]]:
    found, problem = _search("target", expression, root)
    if problem is not None:
        return [(Target(type="unknown", id=str(root["id"])), problem)]
    values = found if isinstance(found, list) else [found]
    values = [v for v in values if v not in (None, "")]
    targets: list[tuple[Target, str | None]] = []
    for value in dict.fromkeys(str(v) for v in values):  # de-duplicate, keep order
        if value == root["id"] and "incident" in allowed:
            targets.append((Target(type="incident", id=value, region=default_region), None))
            continue
        kinds = [e["type"] for e in root["entities"] if e["id"] == value and e["type"] in allowed]
        if not kinds:
            problem = f"target {value!r} is not a {'/'.join(sorted(allowed))} entity of this incident"
            targets.append((Target(type="unknown", id=value), problem))
            continue
        account, region = _account_region(value, root)
        targets.append((Target(type=kinds[0], id=value, account=account, region=region or default_region), None))
    return targets


def _account_region(entity_id: str, incident: Mapping[str, Any]) -> tuple[str | None, str | None]:
    parts = entity_id.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        return parts[4] or _incident_account(incident), parts[3] or None
    return _incident_account(incident), None


def _incident_account(incident: Mapping[str, Any]) -> str | None:
    accounts = [e["id"] for e in incident["entities"] if e["type"] == "account"]
    return accounts[0] if len(accounts) == 1 else None


def _bind(
    params: Mapping[str, Any], bind: Mapping[str, str], root: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    bound = dict(params)
    for name, expression in bind.items():
        value, problem = _search(f"parameter {name!r}:", expression, root)
        if problem is not None:
            return bound, problem
        if value is None:
            return bound, f"parameter {name!r}: {expression!r} found nothing in the incident"
        bound[name] = value
    return bound, None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _key(*parts: str) -> str:
    """The idempotency key. A step's names its incident, playbook, mode, step and target: a step of one playbook
    waiting for approval does not swallow the enforce step of another on the same target. A notification's names
    its incident, channel (responder and parameters) and the severity it reports."""
    return "|".join(parts)
