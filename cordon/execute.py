"""Executing a plan: guards, idempotency, modes, responders through boto3, and the audit trail.

Order for every action: an idempotency key already settled means nothing is attempted again; a planning problem
(a target the incident does not name) denies it; the kill switch skips every change; a protected principal
denies it; without `--execute` it stays planned; then the mode decides: dry_run reads state back and plans,
approval reads state and waits for `cordon approve`, enforce spends budget and applies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from pydantic import ValidationError

from cordon.audit import AuditLog, AuditRecord, Status
from cordon.playbooks.guards import PROTECTED_TAG, kill_switch_reason, principals_in, protected_reason
from cordon.playbooks.model import Mode, OnError
from cordon.playbooks.plan import PlannedAction
from correlators.config import Config
from responders import aws
from responders.base import ActionContext, Responder, ResponderError, Target

# What the executor calls itself, besides its responders: who am I, enter a member account, and the guards' reads
# (who owns an access key, is a principal tagged cordon:protected=true).
EXECUTOR_PERMISSIONS = (
    "sts:GetCallerIdentity",
    "sts:AssumeRole",
    "iam:GetAccessKeyLastUsed",
    "iam:ListRoleTags",
    "iam:ListUserTags",
    "ssm:GetParameter",
)


class SessionFactory:
    """boto3 sessions per target account and region; another account is reached by assuming a role there."""

    def __init__(self, endpoint_url: str | None, assume_role_name: str, base: boto3.session.Session | None = None):
        self.endpoint_url = endpoint_url
        self._role_name = assume_role_name
        self._base = base or boto3.session.Session()
        self._caller_account: str | None = None
        self._assumed: dict[tuple[str, str], boto3.session.Session] = {}

    def parameter(self, name: str) -> str | None:
        """An SSM parameter of the caller's account (the kill switch), None when it does not exist."""
        ssm = self._base.client("ssm", endpoint_url=self.endpoint_url)
        try:
            return str(aws.call(ssm.get_parameter, Name=name)["Parameter"]["Value"])
        except ResponderError as error:
            if error.code == "ParameterNotFound":
                return None
            raise

    def caller_account(self) -> str:
        if self._caller_account is None:
            sts = self._base.client("sts", endpoint_url=self.endpoint_url)
            self._caller_account = str(aws.call(sts.get_caller_identity)["Account"])
        return self._caller_account

    def session(self, account: str | None, region: str) -> boto3.session.Session:
        if account is None or account == self.caller_account():
            return boto3.session.Session(
                aws_access_key_id=self._credential("access_key"),
                aws_secret_access_key=self._credential("secret_key"),
                aws_session_token=self._credential("token"),
                region_name=region,
            )
        if (account, region) not in self._assumed:
            sts = self._base.client("sts", endpoint_url=self.endpoint_url)
            role_arn = f"arn:aws:iam::{account}:role/{self._role_name}"
            credentials = aws.call(sts.assume_role, RoleArn=role_arn, RoleSessionName="cordon-responder")["Credentials"]
            self._assumed[(account, region)] = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=region,
            )
        return self._assumed[(account, region)]

    def _credential(self, name: str) -> str | None:
        credentials = self._base.get_credentials()
        return getattr(credentials, name, None) if credentials else None


class Executor:
    def __init__(
        self,
        config: Config,
        audit: AuditLog,
        responders: Mapping[str, type[Responder]],
        *,
        sessions: SessionFactory | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._audit = audit
        self._responders = responders
        self._sessions = sessions  # None: plan only, no AWS call at all
        self._clock = clock

    def run(self, incident: dict[str, Any], plans: list[PlannedAction]) -> list[dict[str, Any]]:
        """Attempt every planned action of one incident; return the incident's `actions` entries."""
        actions: list[dict[str, Any]] = []
        stopped: set[str] = set()
        keys: set[str] = set()
        for plan in plans:
            if plan.key in keys:  # another playbook asked for the same step on the same target
                continue
            keys.add(plan.key)
            record = self._attempt({**incident, "actions": list(actions)}, plan, stopped)
            if record.status is Status.FAILED and plan.on_error is OnError.STOP:
                stopped.add(plan.playbook)
            actions.append(record.as_action())
        return actions

    def _attempt(self, incident: dict[str, Any], plan: PlannedAction, stopped: set[str]) -> AuditRecord:
        settled = self._audit.settled(plan.key)
        if settled is not None:
            return settled
        now = self._clock()
        record = AuditRecord(
            id=f"act-{uuid.uuid4().hex[:16]}",
            key=plan.key,
            incident_id=incident["id"],
            playbook=plan.playbook,
            step=plan.step,
            responder=plan.responder,
            target={
                "type": plan.target.type,
                "id": plan.target.id,
                "account": plan.target.account,
                "region": plan.target.region,
            },
            params=plan.params,
            mode=plan.mode.value,
            status=Status.PLANNED,
            created_at=now,
            updated_at=now,
        )
        if plan.problem:
            return self._finish(record, Status.DENIED, plan.problem)
        if plan.playbook in stopped and not plan.notification:
            return self._finish(record, Status.SKIPPED, "an earlier step of this playbook failed (on_error: stop)")
        if not plan.notification:
            reason = self._kill_switch()
            if reason:
                return self._finish(record, Status.SKIPPED, reason)
            reason = self._protected_by_name(plan.target.id, plan.params)
            if reason:
                return self._finish(record, Status.DENIED, reason)
        if self._sessions is None:
            return self._finish(record, Status.PLANNED)
        return self._execute(record, plan.mode, incident)

    def _execute(self, record: AuditRecord, mode: Mode, incident: dict[str, Any]) -> AuditRecord:
        responder = self._responders[record.responder]()
        target = Target(**record.target)
        before: dict[str, Any] = {}
        try:
            params = responder.Params.model_validate(record.params)
        except ValidationError as error:
            return self._finish(record, Status.FAILED, f"invalid parameters: {_first_error(error)}")
        try:
            ctx = self._context(target, incident)
            notification = record.responder.startswith("notify.")
            if not notification:
                reason = self._protected_in_aws(ctx, target, record.params)
                if reason:
                    return self._finish(record, Status.DENIED, reason)
            before = responder.read_state(ctx, target, params)
            if mode is Mode.DRY_RUN:
                return self._finish(record, Status.PLANNED, before=before)
            if mode is Mode.APPROVAL and not notification:
                return self._finish(
                    record, Status.PENDING_APPROVAL, f"waiting for approval: cordon approve {record.id}", before=before
                )
            if not notification:
                reason = self._budget_reason(record.incident_id)
                if reason:
                    return self._finish(record, Status.SKIPPED, reason, before=before)
            after = responder.apply(ctx, target, params, before)
            return self._finish(record, Status.APPLIED, before=before, after=after)
        except ResponderError as error:
            return self._finish(record, Status.FAILED, str(error), before=before)

    def approve(self, action_id: str) -> AuditRecord:
        """Apply one action that waits for approval, re-checking every guard first."""
        record = self._require(action_id, Status.PENDING_APPROVAL)
        reason = self._kill_switch()
        if reason:
            return self._finish(record, Status.SKIPPED, reason)
        reason = self._protected_by_name(record.target["id"], record.params)
        if reason:
            return self._finish(record, Status.DENIED, reason)
        return self._execute(record, Mode.ENFORCE, {"id": record.incident_id, "actions": []})

    def rollback(self, action_id: str) -> AuditRecord:
        """Undo an applied action with its responder, from the before and after state the audit kept."""
        record = self._require(action_id, Status.APPLIED)
        responder = self._responders[record.responder]()
        if not responder.reversible:
            raise ResponderError(f"{record.responder} cannot be rolled back (action {action_id})")
        target = Target(**record.target)
        params = responder.Params.model_validate(record.params)
        ctx = self._context(target, {"id": record.incident_id, "actions": []})
        restored = responder.rollback(ctx, target, params, record.before, record.after)
        after = {"applied": record.after, "after_rollback": restored}
        return self._finish(record, Status.ROLLED_BACK, "rolled back by cordon rollback", record.before, after)

    # --- helpers --------------------------------------------------------------------------------------------------
    def _require(self, action_id: str, status: Status) -> AuditRecord:
        record = self._audit.get(action_id)
        if record is None:
            raise ResponderError(f"no action {action_id!r} in the audit log")
        if record.status is not status:
            raise ResponderError(f"action {action_id} is {record.status.value}, not {status.value}")
        if self._sessions is None:
            raise ResponderError("no AWS session: pass --execute / an endpoint")
        return record

    def _context(self, target: Target, incident: dict[str, Any]) -> ActionContext:
        assert self._sessions is not None
        region = target.region or self._config.execution.default_region
        session = self._sessions.session(target.account, region)
        return ActionContext(
            session=session,
            incident=incident,
            endpoint_url=self._sessions.endpoint_url,
            now=self._clock(),
            settings=dict(self._config.site),
        )

    def _kill_switch(self) -> str | None:
        reason = kill_switch_reason(self._config.guards)
        name = self._config.guards.kill_switch_parameter
        if reason or name is None or self._sessions is None:
            return reason
        try:
            value = self._sessions.parameter(name)
        except ResponderError as error:
            # Cannot tell whether the switch is on: fail safe, change nothing.
            return f"kill switch parameter {name} unreadable ({error}): nothing is changed"
        if value is not None and value.strip().lower() in {"1", "true", "yes", "on"}:
            return f"kill switch is on (SSM parameter {name}): nothing is changed"
        return None

    def _protected_by_name(self, target_id: str, params: dict[str, Any]) -> str | None:
        for principal in principals_in(target_id, params):
            reason = protected_reason(principal, self._config.guards)
            if reason:
                return reason
        return None

    def _protected_in_aws(self, ctx: ActionContext, target: Target, params: dict[str, Any]) -> str | None:
        """The checks that need AWS: who owns an access key, and the `cordon:protected=true` tag."""
        principals = principals_in(target.id, params)
        if target.type == "access_key":
            owner = _key_owner(ctx, target.id)
            if owner:
                principals.append(owner)
        for principal in principals:
            reason = protected_reason(principal, self._config.guards) or _protected_by_tag(ctx, principal)
            if reason:
                return reason
        return None

    def _budget_reason(self, incident_id: str) -> str | None:
        guards = self._config.guards
        if self._audit.applied_count(incident_id=incident_id) >= guards.max_actions_per_incident:
            return f"action budget exhausted: {guards.max_actions_per_incident} per incident"
        hour_ago = self._clock() - timedelta(hours=1)
        if self._audit.applied_count(since=hour_ago) >= guards.max_actions_per_hour:
            return f"action budget exhausted: {guards.max_actions_per_hour} per hour"
        return None

    def _finish(
        self,
        record: AuditRecord,
        status: Status,
        reason: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditRecord:
        record = record.model_copy(
            update={
                "status": status,
                "reason": reason,
                "before": before if before is not None else record.before,
                "after": after if after is not None else record.after,
                "updated_at": self._clock(),
            }
        )
        self._audit.put(record)
        return record


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _key_owner(ctx: ActionContext, access_key_id: str) -> str | None:
    iam = ctx.client("iam")
    try:
        user = aws.call(iam.get_access_key_last_used, AccessKeyId=access_key_id).get("UserName")
    except ResponderError:
        return None  # unknown key: the responder itself reports it
    if not user:
        return None
    account = str(aws.call(ctx.client("sts").get_caller_identity)["Account"])
    return f"arn:aws:iam::{account}:user/{user}"


def _protected_by_tag(ctx: ActionContext, principal: str) -> str | None:
    kind, _, name_path = principal.split(":", 5)[-1].partition("/")
    name = name_path.rsplit("/", 1)[-1]
    iam = ctx.client("iam")
    try:
        if kind == "role":
            tags = aws.call(iam.list_role_tags, RoleName=name)["Tags"]
        elif kind == "user":
            tags = aws.call(iam.list_user_tags, UserName=name)["Tags"]
        else:
            return None
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return None
        raise
    if any((tag["Key"], tag["Value"].lower()) == PROTECTED_TAG for tag in tags):
        return f"{principal} is tagged {PROTECTED_TAG[0]}={PROTECTED_TAG[1]}"
    return None
