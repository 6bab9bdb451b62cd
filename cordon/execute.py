"""Executing a plan: claims, guards, the enforcement ceiling, responders through boto3, and the audit trail.

Every action is claimed first (`cordon.audit`): a conditional write of its record, `in_progress` with a lease.
A key already settled (applied, pending approval, rolled back), or claimed by another runner whose lease has not
expired, is not attempted: its record is reported as it stands. Then one ordered list of checks runs, each
returning a decision (a status and its reason) or letting the action through:

1. a target the incident does not name: denied;
2. an earlier step of the playbook failed with `on_error: stop`: skipped;
3. the kill switch: skipped (not notifications);
4. a protected principal, by name: denied (not notifications);
5. no AWS session (`replay` without `--execute`): planned;
6. invalid parameters: failed;
7. a protected principal, read in AWS (the owner of an access key, the `cordon:protected` tag): denied;
8. dry run, by the step's mode or the enforcement ceiling: planned, with the state read back;
9. approval, by the step's mode or the ceiling, unless a person approved it: pending_approval;
10. the action budgets: skipped.

What passes is applied: the state before is written to the record first (still under our claim, so a runner that
dies mid-apply leaves it for the retry, and rollback restores the state before the first attempt), then the
responder applies, then the outcome is written, again only if the claim is still ours.

The enforcement ceiling (`max_mode`: dry_run < approval < enforce) caps every playbook step: an enforce step under
an approval ceiling waits for approval, under a dry_run ceiling it is planned with the state read. The CLI runs
with `enforce` (the playbook decides); the deployed runner passes the stack's EnforcementMode. Notifications are
not changes and are never held back, by a playbook's mode or by the ceiling.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from pydantic import ValidationError

from cordon.audit import CHANGED, DEFAULT_LEASE, AuditLog, AuditRecord, ClaimLostError, Status, action_id
from cordon.playbooks.guards import PROTECTED_TAG, kill_switch_reason, principals_in, protected_reason
from cordon.playbooks.model import Mode, OnError
from cordon.playbooks.plan import PlannedAction
from correlators.config import Config
from correlators.errors import CordonError
from responders import aws
from responders.base import ActionContext, Responder, ResponderError, ResponderParams, Target, VerificationError

log = logging.getLogger(__name__)

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
# Assumed-role credentials are renewed this long before they expire, so no call starts with credentials about to lapse.
REFRESH_BEFORE_EXPIRY = timedelta(minutes=5)
_MODE_RANK = {Mode.DRY_RUN: 0, Mode.APPROVAL: 1, Mode.ENFORCE: 2}


class ActionRefusedError(CordonError):
    """`cordon approve` or `cordon rollback` asked for something the action's record does not allow."""


class ActionBusyError(ActionRefusedError):
    """The action is claimed by a runner still at work on it: ask again later (a completion event is retried)."""


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def capped(mode: Mode, ceiling: Mode) -> Mode:
    """The stricter of a step's mode and the enforcement ceiling."""
    return mode if _MODE_RANK[mode] <= _MODE_RANK[ceiling] else ceiling


class SessionFactory:
    """boto3 sessions per target account and region, created once and reused; another account is reached by
    assuming a role there (in the region's partition), and re-assumed a few minutes before its credentials expire."""

    def __init__(
        self,
        endpoint_url: str | None,
        assume_role_name: str,
        base: boto3.session.Session | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.endpoint_url = endpoint_url
        self._role_name = assume_role_name
        self._base = base or boto3.session.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._caller_account: str | None = None
        self._own: dict[str, tuple[boto3.session.Session, Any]] = {}
        self._assumed: dict[tuple[str, str], tuple[boto3.session.Session, datetime]] = {}
        self.assumed_count = 0  # AssumeRole calls made: tests and metrics

    def parameter(self, name: str) -> str | None:
        """An SSM parameter of the caller's account (the kill switch), None when it does not exist."""
        ssm = self._base.client("ssm", endpoint_url=self.endpoint_url, config=aws.CLIENT_CONFIG)
        try:
            return str(aws.call(ssm.get_parameter, Name=name)["Parameter"]["Value"])
        except ResponderError as error:
            if error.code == "ParameterNotFound":
                return None
            raise

    def caller_account(self) -> str:
        with self._lock:
            if self._caller_account is None:
                sts = self._base.client("sts", endpoint_url=self.endpoint_url, config=aws.CLIENT_CONFIG)
                self._caller_account = str(aws.call(sts.get_caller_identity)["Account"])
            return self._caller_account

    def partition(self, region: str) -> str:
        return str(self._base.get_partition_for_region(region))

    def session(self, account: str | None, region: str) -> boto3.session.Session:
        if account is None or account == self.caller_account():
            return self._own_session(region)
        with self._lock:
            cached = self._assumed.get((account, region))
            if cached is not None and self._clock() < cached[1] - REFRESH_BEFORE_EXPIRY:
                return cached[0]
            sts = self._base.client("sts", region_name=region, endpoint_url=self.endpoint_url, config=aws.CLIENT_CONFIG)
            arn = role_arn(self.partition(region), account, self._role_name)
            credentials = aws.call(sts.assume_role, RoleArn=arn, RoleSessionName="cordon-responder")["Credentials"]
            self.assumed_count += 1
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=region,
            )
            self._assumed[(account, region)] = (session, _aware(credentials["Expiration"]))
            return session

    def _own_session(self, region: str) -> boto3.session.Session:
        # The base credentials refresh themselves (a Lambda role, an SSO profile): a new snapshot, a new session.
        credentials = self._base.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials else None
        with self._lock:
            cached = self._own.get(region)
            if cached is not None and cached[1] == frozen:
                return cached[0]
            session = boto3.session.Session(
                aws_access_key_id=frozen.access_key if frozen else None,
                aws_secret_access_key=frozen.secret_key if frozen else None,
                aws_session_token=frozen.token if frozen else None,
                region_name=region,
            )
            self._own[region] = (session, frozen)
            return session


def _aware(moment: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Decision:
    """What a check decided: the action ends with `status`, for `reason`."""

    status: Status
    reason: str | None = None
    transient: bool = False  # a failure worth retrying later


@dataclass
class _Attempt:
    """One claimed action on its way through the checks."""

    record: AuditRecord  # as claimed: in_progress, with our token
    token: str
    incident: dict[str, Any]
    mode: Mode  # the step's own mode
    effective: Mode  # ... capped by the enforcement ceiling
    notification: bool
    problem: str | None = None
    stopped: bool = False
    approved: bool = False  # a person approved it (cordon approve)
    responder: Responder | None = None
    params: ResponderParams | None = None
    ctx: ActionContext | None = None
    current: dict[str, Any] | None = None  # the state read just now, once

    @property
    def target(self) -> Target:
        return Target(**self.record.target)


Check = Callable[[_Attempt], Decision | None]


class Executor:
    def __init__(
        self,
        config: Config,
        audit: AuditLog,
        responders: Mapping[str, type[Responder]],
        *,
        sessions: SessionFactory | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_mode: Mode = Mode.ENFORCE,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self._config = config
        self._audit = audit
        self._responders = responders
        self._sessions = sessions  # None: plan only, no AWS call at all
        self._clock = clock
        self.max_mode = max_mode
        self._lease = lease
        # The guards, in order: the first that decides ends the action.
        self.checks: tuple[Check, ...] = (
            self._named_target,
            self._not_stopped,
            self._kill_switch_off,
            self._not_protected_by_name,
            self._executing,
            self._valid_params,
            self._not_protected_in_aws,
            self._beyond_dry_run,
            self._approved,
            self._within_budget,
        )

    def run(self, incident: dict[str, Any], plans: list[PlannedAction]) -> list[dict[str, Any]]:
        """Attempt every planned action of one incident; return the incident's `actions` entries."""
        actions: list[dict[str, Any]] = []
        stopped: set[str] = set()
        keys: set[str] = set()
        # Changes first, then notifications: every alert tells the whole incident's actions (two playbooks on one
        # incident send one alert per channel, not one per playbook with half of the actions in it).
        ordered = [p for p in plans if not p.notification] + [p for p in plans if p.notification]
        changes: set[str] = set()
        for plan in ordered:
            if plan.notification:
                plan = replace(plan, key=_notification_key(plan.key, actions))
            if plan.key in keys:  # asked twice for the same thing (a channel told by two playbooks)
                continue
            keys.add(plan.key)
            change = self._change(plan)
            if change in changes:
                # Two playbooks ask for the same change of the same target in the same mode: one action does it
                # (the first playbook's, in file order), so it is made, approved, budgeted and audited once.
                continue
            changes.add(change)
            record = self._attempt({**incident, "actions": list(actions)}, plan, stopped)
            if record.status is Status.FAILED and plan.on_error is OnError.STOP:
                stopped.add(plan.playbook)
            actions.append(record.as_action())
        return actions

    def _change(self, plan: PlannedAction) -> str:
        """What a plan changes, whichever playbook asks: the responder, its target, its parameters and the mode it
        runs in (an approval step and an enforce step on one target stay two actions)."""
        if plan.notification:
            return plan.key
        target = (plan.target.type, plan.target.id, plan.target.account, plan.target.region)
        return json.dumps([plan.responder, target, plan.params, plan.mode.value], sort_keys=True, default=str)

    def _attempt(self, incident: dict[str, Any], plan: PlannedAction, stopped: set[str]) -> AuditRecord:
        now = self._clock()
        record = AuditRecord(
            id=action_id(plan.key),
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
        claim = self._audit.claim(plan.key, record, self._lease, now=now)
        if claim.token is None:
            return claim.record  # settled, or another runner holds the claim: it is theirs to finish
        attempt = _Attempt(
            record=claim.record,
            token=claim.token,
            incident=incident,
            mode=plan.mode,
            effective=plan.mode if plan.notification else capped(plan.mode, self.max_mode),
            notification=plan.notification,
            problem=plan.problem,
            stopped=plan.playbook in stopped,
        )
        return self._carry_out(attempt)

    def _carry_out(self, attempt: _Attempt) -> AuditRecord:
        """Run the checks, apply what passes them, and write the outcome under our claim."""
        try:
            return self._decide(attempt)
        except ClaimLostError:
            # Our lease ran out and another runner took the action over: its record stands, ours is not written.
            current = self._audit.get(attempt.record.id)
            assert current is not None
            return current

    def _decide(self, attempt: _Attempt) -> AuditRecord:
        try:
            for check in self.checks:
                decision = check(attempt)
                if decision is not None:
                    before = attempt.current if attempt.current is not None else attempt.record.before
                    return self._finish(attempt, decision, before=before)
            return self._apply(attempt)
        except ClaimLostError:
            raise
        except Exception as error:  # any failure fails this action only; the run goes on
            # Not only ResponderError: an empty reply (KeyError), a bug, a library's own exception. The action gets a
            # failed record rather than a claim nobody finishes, and later actions and incidents go on.
            reason = failure_reason(error)
            log.warning("action %s (%s) failed: %s", attempt.record.id, attempt.record.responder, reason)
            before = attempt.record.before or attempt.current or {}
            transient = isinstance(error, ResponderError) and not error.permanent
            after = error.state if isinstance(error, ResponderError) else None  # a runbook's failed execution
            return self._finish(attempt, Decision(Status.FAILED, reason, transient), before=before, after=after)

    def _apply(self, attempt: _Attempt) -> AuditRecord:
        assert attempt.responder is not None and attempt.params is not None and attempt.ctx is not None
        current = self._read(attempt)
        if not attempt.record.before:
            # Written before the AWS call: if this runner dies mid-apply, the retry still knows the state before.
            attempt.record = self._audit.update(
                attempt.record.model_copy(update={"before": current, "updated_at": self._clock()}), attempt.token
            )
        before = attempt.record.before  # the state before the first attempt: what rollback restores
        try:
            after = attempt.responder.apply(attempt.ctx, attempt.target, attempt.params, before)
        except ClaimLostError:
            raise
        except Exception as error:  # the call may have changed AWS before it failed
            verified = self._verify_after_failure(attempt, error)
            if verified is None:
                raise
            reason = f"applied (verified by reading it back after: {failure_reason(error)})"
            return self._finish(attempt, Decision(Status.APPLIED, reason), before=before, after=verified)
        if attempt.responder.running(after):
            reason = "started and still running when the wait ended: its completion event settles this record"
            return self._finish(attempt, Decision(Status.RUNNING, reason), before=before, after=after)
        return self._finish(attempt, Decision(Status.APPLIED), before=before, after=after)

    def _verify_after_failure(self, attempt: _Attempt, error: Exception) -> dict[str, Any] | None:
        """The state read back after a failed apply, when it shows the change holds (a 500 after the change was
        made, a reply lost in a reset): the audit then says applied, which is true. None: it failed."""
        assert attempt.responder is not None and attempt.params is not None and attempt.ctx is not None
        if isinstance(error, ResponderError) and error.permanent and not isinstance(error, VerificationError):
            return None  # refused (AccessDenied, NotFound, a bad target): nothing was changed
        try:
            state = attempt.responder.read_state(attempt.ctx, attempt.target, attempt.params)
            holds = attempt.responder.holds(attempt.ctx, attempt.target, attempt.params, attempt.record.before, state)
        except Exception:  # cannot tell: it stays failed, with the first error
            return None
        return state if holds else None

    # --- the checks, in order -------------------------------------------------------------------------------------
    def _named_target(self, attempt: _Attempt) -> Decision | None:
        return Decision(Status.DENIED, attempt.problem) if attempt.problem else None

    def _not_stopped(self, attempt: _Attempt) -> Decision | None:
        if attempt.stopped and not attempt.notification:
            return Decision(Status.SKIPPED, "an earlier step of this playbook failed (on_error: stop)")
        return None

    def _kill_switch_off(self, attempt: _Attempt) -> Decision | None:
        if attempt.notification:
            return None
        reason = self._kill_switch()
        return Decision(Status.SKIPPED, reason) if reason else None

    def _not_protected_by_name(self, attempt: _Attempt) -> Decision | None:
        if attempt.notification:
            return None
        for principal in principals_in(attempt.record.target["id"], attempt.record.params):
            reason = protected_reason(principal, self._config.guards)
            if reason:
                return Decision(Status.DENIED, reason)
        return None

    def _executing(self, attempt: _Attempt) -> Decision | None:
        return Decision(Status.PLANNED) if self._sessions is None else None

    def _valid_params(self, attempt: _Attempt) -> Decision | None:
        attempt.responder = self._responders[attempt.record.responder]()
        try:
            attempt.params = attempt.responder.Params.model_validate(attempt.record.params)
        except ValidationError as error:
            return Decision(Status.FAILED, f"invalid parameters: {_first_error(error)}")
        attempt.ctx = self._context(attempt.target, attempt.incident, attempt.record.id)
        return None

    def _not_protected_in_aws(self, attempt: _Attempt) -> Decision | None:
        """The checks that need AWS: who owns an access key, and the `cordon:protected=true` tag."""
        if attempt.notification:
            return None
        assert attempt.ctx is not None
        target = attempt.target
        principals = principals_in(target.id, attempt.record.params)
        try:
            if target.type == "access_key":
                owner = _key_owner(attempt.ctx, target.id)
                if owner:
                    principals.append(owner)
            for principal in principals:
                reason = protected_reason(principal, self._config.guards) or _protected_by_tag(attempt.ctx, principal)
                if reason:
                    return Decision(Status.DENIED, reason)
        except Exception as error:  # a guard that cannot decide fails closed
            return Decision(
                Status.DENIED,
                f"cannot tell whether {target.id} is protected ({failure_reason(error)}): denied, guards fail closed",
            )
        return None

    def _beyond_dry_run(self, attempt: _Attempt) -> Decision | None:
        if attempt.effective is not Mode.DRY_RUN:
            return None
        self._read(attempt)
        if attempt.mode is Mode.DRY_RUN:
            return Decision(Status.PLANNED)
        return Decision(
            Status.PLANNED, f"the enforcement ceiling is dry_run: this {attempt.mode.value} step is planned only"
        )

    def _approved(self, attempt: _Attempt) -> Decision | None:
        if attempt.effective is not Mode.APPROVAL or attempt.notification or attempt.approved:
            return None
        self._read(attempt)
        reason = f"waiting for approval: cordon approve {attempt.record.id}"
        if attempt.mode is not Mode.APPROVAL:
            reason += " (the enforcement ceiling is approval)"
        return Decision(Status.PENDING_APPROVAL, reason)

    def _within_budget(self, attempt: _Attempt) -> Decision | None:
        if attempt.notification:
            return None
        self._read(attempt)  # the audit shows what the state was when the budget stopped it
        guards = self._config.guards
        if self._audit.applied_count(incident_id=attempt.record.incident_id) >= guards.max_actions_per_incident:
            return Decision(Status.SKIPPED, f"action budget exhausted: {guards.max_actions_per_incident} per incident")
        hour_ago = self._clock() - timedelta(hours=1)
        if self._audit.applied_count(since=hour_ago) >= guards.max_actions_per_hour:
            return Decision(Status.SKIPPED, f"action budget exhausted: {guards.max_actions_per_hour} per hour")
        return None

    # --- approve and rollback: through the same claims ------------------------------------------------------------
    def approve(self, action_id: str, by: str | None = None) -> AuditRecord:
        """Apply one action that waits for approval, re-checking every guard first. Two approvals of one action at
        once apply it once: the second finds it claimed, or applied, and is refused. `by` (who approved it) is
        written to the record with the claim."""
        record = self._require(action_id, Status.PENDING_APPROVAL, "approve")
        if self.max_mode is Mode.DRY_RUN:
            raise ActionRefusedError(f"the enforcement ceiling is dry_run: approving {action_id} would apply nothing")
        fresh = record.model_copy(update={"before": {}, "after": {}, "reason": None, "decided_by": by})
        claim = self._audit.claim(
            record.key, fresh, self._lease, now=self._clock(), takes_over=frozenset({Status.PENDING_APPROVAL})
        )
        if claim.token is None:
            raise ActionRefusedError(_refusal(claim.record, Status.PENDING_APPROVAL, "approve"))
        attempt = _Attempt(
            record=claim.record,
            token=claim.token,
            incident={"id": record.incident_id, "actions": []},
            mode=Mode.ENFORCE,
            effective=capped(Mode.ENFORCE, self.max_mode),
            notification=record.responder.startswith("notify."),
            approved=True,
        )
        return self._carry_out(attempt)

    def refuse(self, action_id: str, by: str) -> AuditRecord:
        """A person refuses an action that waits for approval: it is settled as refused, never applied, and a
        later approval of it is refused. Through the same claim as approve, so a refusal and an approval at once
        end with exactly one of them."""
        record = self._audit.get(action_id)
        if record is None:
            raise ActionRefusedError(f"no action {action_id!r} in the audit log")
        claim = self._audit.claim(
            record.key,
            record.model_copy(update={"decided_by": by}),
            self._lease,
            now=self._clock(),
            takes_over=frozenset({Status.PENDING_APPROVAL}),
        )
        if claim.token is None:
            raise ActionRefusedError(_refusal(claim.record, Status.PENDING_APPROVAL, "refuse"))
        return self._write(claim.record, claim.token, Status.REFUSED, f"refused by {by}")

    def retry(self, action_id: str, incident: dict[str, Any] | None = None) -> AuditRecord:
        """Attempt one failed action again, once, through the same claim and every guard: two retries at once
        apply it once. The step's own mode holds (an approval step goes back to waiting for a person), the state
        before the first attempt stays what rollback restores, and a notification tells `incident` (its document
        and actions as the audit has them now)."""
        record = self._require(action_id, Status.FAILED, "retry")
        notification = record.responder.startswith("notify.")
        if notification and incident is None:
            raise ActionRefusedError(
                f"action {action_id} ({record.responder}) tells incident {record.incident_id}, which is not in this"
                " state: nothing was sent"
            )
        claim = self._audit.claim(
            record.key,
            record.model_copy(update={"reason": None, "transient": False}),
            self._lease,
            now=self._clock(),
            takes_over=frozenset({Status.FAILED}),
        )
        if claim.token is None:
            raise ActionRefusedError(_refusal(claim.record, Status.FAILED, "retry"))
        mode = Mode(record.mode)
        actions = [r.as_action() for r in self._audit.records(record.incident_id) if r.id != record.id]
        attempt = _Attempt(
            record=claim.record,
            token=claim.token,
            incident={**(incident or {"id": record.incident_id}), "actions": actions},
            mode=mode,
            effective=mode if notification else capped(mode, self.max_mode),
            notification=notification,
        )
        return self._carry_out(attempt)

    def rollback(self, action_id: str) -> AuditRecord:
        """Undo an applied action with its responder, from the before and after state the audit kept."""
        record = self._require(action_id, Status.APPLIED, "roll back", also=Status.RUNNING)
        responder = self._responders[record.responder]()
        if not responder.reversible:
            raise ResponderError(f"{record.responder} cannot be rolled back (action {action_id})")
        claim = self._audit.claim(record.key, record, self._lease, now=self._clock(), takes_over=CHANGED)
        if claim.token is None:
            raise ActionRefusedError(_refusal(claim.record, Status.APPLIED, "roll back"))
        claimed, token = claim.record, claim.token
        target = Target(**claimed.target)
        try:
            params = responder.Params.model_validate(claimed.params)
            ctx = self._context(target, {"id": claimed.incident_id, "actions": []}, claimed.id)
            restored = responder.rollback(ctx, target, params, claimed.before, claimed.after)
        except ClaimLostError:
            raise
        except Exception as error:  # any failure: the record says so, and stays as it was (applied or running)
            reason = f"rollback failed: {failure_reason(error)}"
            self._write(claimed, token, record.status, reason)
            raise ResponderError(reason) from None
        after = {"applied": claimed.after, "after_rollback": restored}
        return self._write(claimed, token, Status.ROLLED_BACK, "rolled back by cordon rollback", after=after)

    def settle(
        self, action_id: str, expected: Status, outcome: Callable[[AuditRecord], tuple[Decision, dict[str, Any]]]
    ) -> AuditRecord | None:
        """Write the end of a change that outlived the runner's wait (an SSM runbook's status-change event): the
        record, if it is still `expected` (running; rolled back while the paired runbook ran), gets the status,
        reason and state after that `outcome` decides from it. None: it is settled otherwise already (the runner
        saw the end itself), and nothing is written. Claimed like every change, so two deliveries write once."""
        record = self._audit.get(action_id)
        if record is None:
            raise ActionRefusedError(f"no action {action_id!r} in the audit log")
        if record.status is Status.IN_PROGRESS:
            raise ActionBusyError(_refusal(record, expected, "settle"))
        if record.status is not expected:
            return None
        claim = self._audit.claim(record.key, record, self._lease, now=self._clock(), takes_over=frozenset({expected}))
        if claim.token is None:
            if claim.record.status is Status.IN_PROGRESS:
                raise ActionBusyError(_refusal(claim.record, expected, "settle"))
            return None
        decision, after = outcome(claim.record)
        return self._write(claim.record, claim.token, decision.status, decision.reason, after=after)

    # --- helpers --------------------------------------------------------------------------------------------------
    def _require(self, action_id: str, status: Status, verb: str, also: Status | None = None) -> AuditRecord:
        record = self._audit.get(action_id)
        if record is None:
            raise ActionRefusedError(f"no action {action_id!r} in the audit log")
        if record.status not in {status, also}:
            raise ActionRefusedError(_refusal(record, status, verb))
        if self._sessions is None:
            raise ActionRefusedError("no AWS session: pass --execute / an endpoint")
        return record

    def _read(self, attempt: _Attempt) -> dict[str, Any]:
        if attempt.current is None:
            assert attempt.responder is not None and attempt.params is not None and attempt.ctx is not None
            attempt.current = attempt.responder.read_state(attempt.ctx, attempt.target, attempt.params)
        return attempt.current

    def _context(self, target: Target, incident: dict[str, Any], action: str | None = None) -> ActionContext:
        assert self._sessions is not None
        region = target.region or self._config.execution.default_region
        session = self._sessions.session(target.account, region)
        return ActionContext(
            session=session,
            incident=incident,
            endpoint_url=self._sessions.endpoint_url,
            now=self._clock(),
            settings=dict(self._config.site),
            execution=self._config.execution,
            action_id=action,
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

    def _finish(
        self,
        attempt: _Attempt,
        decision: Decision,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditRecord:
        return self._write(
            attempt.record, attempt.token, decision.status, decision.reason, before, after, decision.transient
        )

    def _write(
        self,
        record: AuditRecord,
        token: str,
        status: Status,
        reason: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        transient: bool = False,
    ) -> AuditRecord:
        """The outcome, written only while the claim `token` still holds the record."""
        now = self._clock()
        outcome = record.model_copy(
            update={
                "status": status,
                "reason": reason,
                "transient": transient and status is Status.FAILED,
                "before": before if before is not None else record.before,
                "after": after if after is not None else record.after,
                "updated_at": now,
                # A change counts from when it was made: kept when a running change is settled later.
                "applied_at": (record.applied_at or now) if status in CHANGED else record.applied_at,
                "lease_until": None,
                "claim_token": None,
            }
        )
        return self._audit.update(outcome, token)


_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s'\"?#]+)[^\s'\"]*")


def scrub(text: str) -> str:
    """`text` without what may be a secret: every URL keeps its scheme and host, never its path or query (a
    webhook's token lives there), and control characters are shown escaped."""
    text = _URL.sub(r"\1/<redacted>", text)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def failure_reason(error: BaseException) -> str:
    """What the audit, the output and the log say about a failure: a ResponderError's own message (responders
    keep secrets out of it), anything else by its type and a scrubbed message, never a traceback."""
    if isinstance(error, ResponderError):
        return scrub(str(error))
    return scrub(f"internal error: {type(error).__name__}: {error}")[:500]


def _notification_key(key: str, actions: list[dict[str, Any]]) -> str:
    """A notification is keyed by the incident and its severity (the planner) and by the actions that wait for
    approval: a new one is told, a context signal is not."""
    waiting = sorted(a["id"] for a in actions if a["status"] == Status.PENDING_APPROVAL.value)
    if not waiting:
        return key
    return f"{key}|approval:{hashlib.sha256(' '.join(waiting).encode()).hexdigest()[:16]}"


def _refusal(record: AuditRecord, wanted: Status, verb: str) -> str:
    """Why `cordon approve`, `retry` or `rollback` will not act on this record, and what to do instead."""
    where = f"action {record.id} ({record.responder} on {record.target['id']})"
    if record.status is Status.IN_PROGRESS:
        until = f" until {record.lease_until:%Y-%m-%d %H:%M:%S} UTC" if record.lease_until else ""
        return f"{where} is in progress: another runner or person holds its claim{until}; nothing was done"
    if record.status is Status.ROLLED_BACK and verb == "roll back":
        return f"{where} is already rolled back: nothing to roll back"
    if record.status is Status.ROLLED_BACK:
        return f"{where} was rolled back: it is not applied again; nothing was done"
    if record.status is Status.REFUSED:
        return f"{where} was refused by {record.decided_by or 'a person'}: it is not applied; nothing was done"
    if record.status is Status.APPLIED and verb == "approve":
        return f"{where} is already applied: nothing to approve"
    if wanted is Status.FAILED:
        return f"{where} is {record.status.value}, not failed: only a failed action is retried; nothing was done"
    if wanted is Status.APPLIED:
        return f"{where} is {record.status.value}, not applied: nothing to roll back"
    return f"{where} is {record.status.value}, not pending_approval: only an action waiting for approval can be {verb}d"


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _key_owner(ctx: ActionContext, access_key_id: str) -> str | None:
    """The ARN of the user who owns the key; None for a key of no IAM user. Any error that leaves the owner
    unknown (AccessDenied, throttling past the retries) raises: the caller denies the action."""
    iam = ctx.client("iam")
    try:
        user = aws.call(iam.get_access_key_last_used, AccessKeyId=access_key_id).get("UserName")
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return None  # a key of no IAM user: the responder itself refuses it
        raise
    if not user:
        return None
    account = str(aws.call(ctx.client("sts").get_caller_identity)["Account"])
    partition = ctx.session.get_partition_for_region(ctx.session.region_name or "us-east-1")
    return f"arn:{partition}:iam::{account}:user/{user}"


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
