"""ssm.start-automation: run an SSM Automation runbook (AWS-managed or the SOC's own) as a playbook step.

The runbook runs under the site's automation role (`execution.automation_role_arn`, passed as the runbook's
`AutomationAssumeRole`; the runner's IAM lets it pass that role and no other), in that role's account only. Its
parameters come from the step (literal, or bound from the incident with JMESPath like every step's), plus the
target's name in `target_parameter` when the step names one: a bucket entity (an ARN) is passed as its bucket
name, as S3 runbooks take it; any other entity as its id.

Semantics chosen here:

- **Waiting.** The execution is polled (GetAutomationExecution, backing off from 2 s to 15 s) for at most
  `execution.automation_wait` (1m by default, at most 4m: the runner has 5 minutes for every action of an
  incident). Ended with success: applied. Ended otherwise (Failed, TimedOut, Cancelled, ...): failed, with the
  execution's failure message; the audit keeps the execution id, status and outputs either way. Still going when
  the wait ends: recorded `running`, and the execution's EventBridge status-change event settles the record later
  (`cordon.automation`). A poll that fails past botocore's retries does not fail an execution that was started: it
  is waited for until the budget ends, then recorded running with the error noted.
- **At least once.** The start request's idempotency token is derived from the action's id, and the execution is
  tagged `cordon:action=<action id>`: a runner that dies after starting it and is retried does not start a second
  execution, and the status-change event finds its audit record by the tag.
- **What can be read.** Cordon cannot read what a runbook will change; the state before is the request it would
  send (what a dry run shows), the state after is the execution.
- **Rollback.** A running execution is cancelled (StopAutomationExecution); then the paired runbook
  (`rollback_document`, with `rollback_parameters` and `rollback_target_parameter`) runs and is waited for like the
  first. With no paired runbook, only a running execution can be rolled back (by cancelling it).

Decisions are pure functions (`start_request`, `summary`, `phase`, `runbook_parameters`); the calls are thin.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field, field_validator, model_validator

from correlators.model import EntityType
from responders.aws import call
from responders.base import ActionContext, Responder, ResponderError, ResponderParams, State, Target, responder

ACTION_TAG = "cordon:action"
PHASE_TAG = "cordon:phase"
APPLY, ROLLBACK = "apply", "rollback"
FIRST_POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 15.0
_DOCUMENT = re.compile(r"[A-Za-z0-9_.-]{3,128}")
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_]{1,50}")
_TOKEN_NAMESPACE = uuid.UUID("8f0b6a52-2f0e-4c8e-9a43-3c1c1b2f6d10")  # Cordon's: tokens are uuid5 of the action id

SUCCEEDED = frozenset({"Success", "CompletedWithSuccess"})
FAILED = frozenset(
    {"Failed", "TimedOut", "Cancelled", "Rejected", "CompletedWithFailure", "ChangeCalendarOverrideRejected", "Exited"}
)

RunbookValue = str | list[str]


# --- parameters ---------------------------------------------------------------------------------------------------
def runbook_parameters(values: Mapping[str, Any], role_parameter: str) -> dict[str, list[str]]:
    """A runbook's parameters as SSM takes them (every value a list of strings), or ValueError naming the first
    that is not a parameter name, is null (its binding found nothing), is an object, or is the role parameter."""
    converted: dict[str, list[str]] = {}
    for name, value in values.items():
        if not _PARAMETER_NAME.fullmatch(name):
            raise ValueError(f"runbook parameter name {name!r} must be letters, digits and _ (at most 50)")
        if name == role_parameter:
            raise ValueError(
                f"runbook parameter {name!r} is set by Cordon to execution.automation_role_arn: a playbook cannot"
                " choose the role a runbook runs under"
            )
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None:
                raise ValueError(f"runbook parameter {name!r} is null: its binding found nothing in the incident")
            if not isinstance(item, str | int | float | bool):
                raise ValueError(f"runbook parameter {name!r} must be a string or a list of strings, got {item!r}")
        converted[name] = [_text(item) for item in items]
    return converted


def _text(item: str | int | float | bool) -> str:
    return ("true" if item else "false") if isinstance(item, bool) else str(item)


class StartAutomationParams(ResponderParams):
    """`document_name`: the runbook (a name: AWS-owned, or a document of the automation role's account).
    `parameters`: its parameters, literal or bound from the incident (bind them as one JMESPath object,
    `{BucketName: ...}`, so `cordon validate` sees each). `target_parameter`: the runbook parameter that receives
    the step's target. `rollback_*`: the paired runbook that undoes it."""

    document_name: str
    document_version: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    target_parameter: str | None = None
    role_parameter: str = "AutomationAssumeRole"
    rollback_document: str | None = None
    rollback_parameters: dict[str, Any] = Field(default_factory=dict)
    rollback_target_parameter: str | None = None

    @field_validator("document_name", "rollback_document")
    @classmethod
    def _document(cls, name: str | None) -> str | None:
        if name is not None and not _DOCUMENT.fullmatch(name):
            raise ValueError(f"{name!r} is not a runbook name (letters, digits, _ . -; 3 to 128)")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> StartAutomationParams:
        runbook_parameters(self.parameters, self.role_parameter)
        runbook_parameters(self.rollback_parameters, self.role_parameter)
        if self.rollback_document is None and (self.rollback_parameters or self.rollback_target_parameter):
            raise ValueError("rollback_parameters and rollback_target_parameter need a rollback_document")
        for name, given in (
            (self.target_parameter, self.parameters),
            (self.rollback_target_parameter, self.rollback_parameters),
        ):
            if name is not None and name in given:
                raise ValueError(f"runbook parameter {name!r} is the target parameter: it is not given twice")
        return self


# --- deciding (pure) ----------------------------------------------------------------------------------------------
def resource_name(target: Target) -> str:
    """What a runbook parameter receives for a target: a bucket's name for its ARN, any other id as it is."""
    if target.type == "bucket" and target.id.startswith("arn:") and ":s3:::" in target.id:
        return target.id.split(":::", 1)[1]
    return target.id


def client_token(action_id: str, phase: str) -> str:
    """The same action's start is the same request to SSM, however often a runner retries it."""
    return str(uuid.uuid5(_TOKEN_NAMESPACE, f"{action_id}|{phase}"))


def start_request(
    params: StartAutomationParams, target: Target, role_arn: str, action_id: str, phase: str = APPLY
) -> dict[str, Any]:
    """The StartAutomationExecution request for the runbook (`apply`) or its paired runbook (`rollback`)."""
    rollback = phase == ROLLBACK
    document = params.rollback_document if rollback else params.document_name
    assert document is not None
    values = dict(params.rollback_parameters if rollback else params.parameters)
    target_parameter = params.rollback_target_parameter if rollback else params.target_parameter
    if target_parameter is not None:
        values[target_parameter] = resource_name(target)
    parameters = runbook_parameters(values, params.role_parameter) | {params.role_parameter: [role_arn]}
    request: dict[str, Any] = {
        "DocumentName": document,
        "Parameters": parameters,
        "ClientToken": client_token(action_id, phase),
        "Tags": [{"Key": ACTION_TAG, "Value": action_id}, {"Key": PHASE_TAG, "Value": phase}],
    }
    if params.document_version is not None and not rollback:
        request["DocumentVersion"] = params.document_version
    return request


def phase(status: str) -> str:
    """`succeeded`, `failed` or `running` (every status that is not an end: pending, waiting, cancelling ...)."""
    if status in SUCCEEDED:
        return "succeeded"
    if status in FAILED:
        return "failed"
    return "running"


def summary(execution: Mapping[str, Any]) -> State:
    """What the audit keeps of an execution: id, runbook, status, outputs, failure message, times."""
    status = str(execution.get("AutomationExecutionStatus", "Unknown"))
    found: State = {
        "execution_id": execution["AutomationExecutionId"],
        "document": execution.get("DocumentName"),
        "status": status,
        "phase": phase(status),
        "outputs": dict(execution.get("Outputs") or {}),
    }
    if execution.get("FailureMessage"):
        found["failure_message"] = execution["FailureMessage"]
    for key, field in (("started", "ExecutionStartTime"), ("ended", "ExecutionEndTime")):
        if execution.get(field) is not None:
            found[key] = execution[field].isoformat()
    return found


def poll_delays() -> Iterator[float]:
    delay = FIRST_POLL_SECONDS
    while True:
        yield delay
        delay = min(delay * 1.5, MAX_POLL_SECONDS)


def automation_role(ctx: ActionContext, target: Target) -> str:
    """The role runbooks run under, or why this target cannot have one."""
    role = ctx.execution.automation_role_arn
    if role is None:
        raise ResponderError(
            "execution.automation_role_arn is not set in the config: runbooks run only under the site's automation role"
        )
    account = ctx.execution.automation_account
    if target.account is not None and target.account != account:
        raise ResponderError(
            f"{target.id} is in account {target.account}: runbooks run only in the automation role's account {account}"
        )
    return role


def bound_parameter_names(expression: str) -> list[str] | None:
    """The keys of a JMESPath object expression (`{BucketName: ..., Mode: 'Restrict'}`), None for any other."""
    try:
        parsed = jmespath.compile(expression).parsed
    except JMESPathError:
        return None  # the step's schema reports it
    if parsed.get("type") != "multi_select_dict":
        return None
    return [str(child["value"]) for child in parsed.get("children", [])]


# --- AWS I/O (thin) -----------------------------------------------------------------------------------------------
def get_execution(ssm: Any, execution_id: str) -> State:
    return summary(call(ssm.get_automation_execution, AutomationExecutionId=execution_id)["AutomationExecution"])


def wait_for(
    ssm: Any,
    execution_id: str,
    budget_seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> State:
    """The execution once it ended, or as last read when the budget ran out (phase `running`)."""
    deadline = clock() + budget_seconds
    last: State = {"execution_id": execution_id, "status": "Unknown", "phase": "running", "outputs": {}}
    for delay in poll_delays():
        try:
            last = get_execution(ssm, execution_id)
        except ResponderError as error:  # started all the same: never report it as not started
            last = {**last, "poll_error": str(error)}
            if error.permanent:
                return last
        else:
            last.pop("poll_error", None)
            if last["phase"] != "running":
                return last
        remaining = deadline - clock()
        if remaining <= 0:
            return last
        sleep(min(delay, remaining))
    raise AssertionError("unreachable: poll_delays never ends")  # pragma: no cover


@responder("ssm.start-automation")
class StartAutomation(Responder):
    """Run an SSM Automation runbook under the site's automation role; wait for it within the configured budget
    (else record it running until its status-change event); roll back with the paired runbook. Reversible when the
    step names a `rollback_document` (or while the execution still runs: it is cancelled).

    Example::

        - responder: ssm.start-automation
          target: "entities[?type=='bucket'].id"
          params:
            document_name: AWSSupport-ContainS3Resource
            target_parameter: BucketName
            parameters: {Action: Contain, DryRun: "False"}
            rollback_document: AWSSupport-ContainS3Resource
            rollback_target_parameter: BucketName
            rollback_parameters: {Action: Restore, DryRun: "False"}
    """

    permissions = (
        "ssm:StartAutomationExecution",
        "ssm:AddTagsToResource",  # tags given at the start are authorized as tagging the new execution
        "ssm:GetAutomationExecution",
        "ssm:StopAutomationExecution",  # rollback of an execution still running
        "ssm:ListTagsForResource",  # the runner finds the action of a status-change event by the execution's tag
        "iam:PassRole",  # only the configured automation role (template.yaml: AutomationRoleArn)
    )
    Params = StartAutomationParams
    # Whatever the incident names (or the incident itself): the runbook decides what it acts on.
    target_types = frozenset({kind.value for kind in EntityType} | {"incident"})
    reversible = True
    # Injected by tests; the runner's wall clock otherwise.
    clock: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    @classmethod
    def lint(cls, params: dict[str, Any], bind: dict[str, str]) -> list[tuple[tuple[str, ...], str]]:
        """Every runbook parameter must be seen to have a value: literal ones not null, bound ones bound as one
        JMESPath object whose keys name them (a bare expression hides which parameters it gives)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        role_parameter = str(params.get("role_parameter", "AutomationAssumeRole"))
        for key in ("parameters", "rollback_parameters"):
            if key in bind:
                names = bound_parameter_names(bind[key])
                if names is None:
                    problems.append(
                        (
                            ("bind", key),
                            f"bind {key} as one JMESPath object, {{Name: expression, ...}}, so that"
                            " each runbook parameter is seen to be bound",
                        )
                    )
                    continue
                values: Mapping[str, Any] = dict.fromkeys(names, "bound")
            else:
                values = params.get(key) or {}
                if not isinstance(values, dict):
                    continue  # the schema reports it
            try:
                runbook_parameters(values, role_parameter)
            except ValueError as error:
                problems.append(((("bind" if key in bind else "params"), key), str(error)))
        if ("rollback_parameters" in params or "rollback_parameters" in bind) and not (
            "rollback_document" in params or "rollback_document" in bind
        ):
            problems.append((("params", "rollback_parameters"), "rollback_parameters need a rollback_document"))
        return problems

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        p = cast(StartAutomationParams, params)
        request = start_request(p, target, automation_role(ctx, target), _action_id(ctx, target, p))
        return {"document": request["DocumentName"], "parameters": request["Parameters"], "execution": None}

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        return self._run(ctx, target, cast(StartAutomationParams, params), APPLY)

    def running(self, after: State) -> bool:
        execution = after.get("execution") or {}
        return bool(execution) and execution.get("phase") == "running"

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        p = cast(StartAutomationParams, params)
        execution_id = (after.get("execution") or {}).get("execution_id")
        ssm = ctx.client("ssm")
        cancelled = None
        if execution_id and get_execution(ssm, execution_id)["phase"] == "running":
            call(ssm.stop_automation_execution, AutomationExecutionId=execution_id, Type="Cancel")
            cancelled = execution_id
        if p.rollback_document is None:
            if cancelled is None:
                raise ResponderError(
                    f"the step names no rollback_document and execution {execution_id} has ended: its change cannot"
                    " be undone by Cordon"
                )
            return {"cancelled": cancelled, "execution": None}
        return {"cancelled": cancelled} | self._run(ctx, target, p, ROLLBACK)

    def _run(self, ctx: ActionContext, target: Target, params: StartAutomationParams, which: str) -> State:
        request = start_request(params, target, automation_role(ctx, target), _action_id(ctx, target, params), which)
        ssm = ctx.client("ssm")
        execution_id = str(call(ssm.start_automation_execution, **request)["AutomationExecutionId"])
        budget = ctx.execution.automation_wait.seconds
        execution = wait_for(ssm, execution_id, budget, clock=self.clock, sleep=self.sleep)
        state = {"document": request["DocumentName"], "parameters": request["Parameters"], "execution": execution}
        if execution["phase"] == "failed":
            message = execution.get("failure_message") or "no failure message"
            raise ResponderError(
                f"runbook {request['DocumentName']} execution {execution_id} ended {execution['status']}: {message}",
                state=state,
            )
        return state


def _action_id(ctx: ActionContext, target: Target, params: StartAutomationParams) -> str:
    # The runner always names the action; a responder driven by hand falls back to a digest of what it is about
    # (a tag value takes no `|`).
    if ctx.action_id:
        return ctx.action_id
    about = f"{ctx.incident.get('id')}|{params.document_name}|{target.id}"
    return f"manual-{hashlib.sha256(about.encode()).hexdigest()[:16]}"
