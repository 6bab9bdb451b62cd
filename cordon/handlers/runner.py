"""Playbook runner Lambda: a `Cordon Incident` event > the incident as the store holds it now > playbooks > claims >
responders > audit.

The event only names the incident: the runner reads the latest version (following a merge to its survivor), so
an old or repeated event plans the incident as it is. Every action is claimed in the audit table before its AWS
call, so two runners (EventBridge delivers at least once, and retries) act once. The stack's `EnforcementMode`
caps what any playbook may do; the kill switch is the SSM parameter; approvals wait in the audit table until
`cordon approve --state dynamodb://...`.

It also takes the status-change events of SSM Automation executions (`cordon.automation`): a runbook that outlived
`ssm.start-automation`'s wait is recorded running, and its end settles that record here.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cordon import constants
from cordon.handlers import runtime

if TYPE_CHECKING:
    from cordon.audit.dynamodb import DynamoDBAuditLog
    from cordon.respond import IncidentResponse
    from correlators.sigma.rules import RuleSet
    from correlators.signals import Incident
    from correlators.state.dynamodb import DynamoDBStore

logger = Logger(service="cordon-runner")
metrics = Metrics(namespace="Cordon", service="runner")


@cache
def response() -> IncidentResponse:
    """Built once per container: playbooks, responders, the executor with its sessions and the audit table.
    Imported here, not at module import: the rules (pySigma), playbooks and responders load once per container,
    on the first invocation, and the import stays close to boto3's own (`make bench`, cold start)."""
    from cordon.execute import Executor, SessionFactory
    from cordon.playbooks.loader import load_playbooks
    from cordon.respond import IncidentResponse, known_rules, playbook_paths
    from responders.catalog import builtin_responders

    config = runtime.site_config()
    responders = builtin_responders()
    playbooks, _ = load_playbooks(playbook_paths(config), responders, known_rules(rules()))
    sessions = SessionFactory(runtime.endpoint_url(), config.execution.assume_role_name, base=runtime.session())
    executor = Executor(config, audit(), responders, sessions=sessions, max_mode=runtime.enforcement_ceiling())
    return IncidentResponse(config, playbooks, responders, executor)


@cache
def rules() -> RuleSet:
    from cordon.replay import load_ruleset

    return load_ruleset(runtime.site_config())


@cache
def audit() -> DynamoDBAuditLog:
    from cordon.audit.dynamodb import DynamoDBAuditLog

    return DynamoDBAuditLog(runtime.client("dynamodb"), runtime.Tables.from_env().audit)


@cache
def store() -> DynamoDBStore:
    from correlators.state.dynamodb import DynamoDBStore

    return DynamoDBStore(runtime.client("dynamodb"), runtime.Tables.from_env().state)


def current(incident_id: str) -> Incident | None:
    incident = store().get_incident(incident_id)
    while incident is not None and incident.merged_into is not None:
        incident = store().get_incident(incident.merged_into)
    return incident


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == constants.SLACK_DECISION_SOURCE:
        return decide(event.get("decision") or {})
    from cordon import automation

    if automation.is_status_change(event):
        return automation_ended(event)
    incident_id = str(event["detail"]["incident_id"])
    logger.set_correlation_id(incident_id)
    incident = current(incident_id)
    if incident is None:
        logger.error("incident not in the state table", extra={"incident_id": incident_id})
        raise LookupError(f"incident {incident_id} is not in the state table")
    from cordon.documents import incident_json

    document = incident_json(incident)
    # Written before the playbooks so that their alerts link it, and again after with the actions' outcomes:
    # the link names one object per incident, so it opens the latest page.
    report = publish_report(incident.id)
    if report is not None:
        document["report"] = report
    actions = response().respond(document)
    if report is not None:
        publish_report(incident.id)
    statuses: dict[str, int] = {}
    for action in actions:
        statuses[action["status"]] = statuses.get(action["status"], 0) + 1
    for status, count in statuses.items():
        metrics.add_metric(name=f"Actions_{status}", unit=MetricUnit.Count, value=count)
    logger.info("playbooks run", extra={"incident_id": incident.id, "version": incident.version, "actions": statuses})
    return {"incident_id": incident.id, "version": incident.version, "actions": actions}


def decide(decision: dict[str, Any]) -> dict[str, Any]:
    """An Approve or Refuse click the Slack actions function accepted and handed over (checked again here)."""
    from cordon.slack_actions import carry_out, handed_over

    click = handed_over(decision)
    if click is None:
        logger.error("not a Slack decision: ignored")
        return {"decided": False}
    logger.set_correlation_id(click.action_id)
    decided, outcome = carry_out(click, response().executor)
    logger.info("slack decision", extra={"slack_user": click.user_id, "verb": click.verb, "outcome": outcome})
    return {"decided": decided, "action_id": click.action_id, "outcome": outcome}


@cache
def report_s3() -> Any:
    """S3 signing with SigV4, which a presigned GET of a KMS-encrypted object requires."""
    from botocore.config import Config

    config = runtime.CLIENT_CONFIG.merge(Config(signature_version="s3v4"))
    return runtime.session().client("s3", endpoint_url=runtime.endpoint_url(), config=config)


def publish_report(incident_id: str) -> dict[str, str] | None:
    """The incident's page in the report bucket, and its presigned link; None when the stack has no report
    bucket, or when writing failed: a missing page must never hold back containment (it is logged)."""
    bucket = os.environ.get(constants.REPORT_BUCKET_ENV)
    if not bucket:
        return None
    try:
        from cordon.report import report_html, reversible_responders
        from cordon.report.publish import DEFAULT_LINK_SECONDS, publish
        from responders.catalog import builtin_responders

        seconds = int(os.environ.get(constants.REPORT_LINK_SECONDS_ENV) or DEFAULT_LINK_SECONDS)
        tables = runtime.Tables.from_env()
        region = runtime.session().region_name or "REGION"
        state_url = f"dynamodb://?audit={tables.audit}&state={tables.state}&region={region}"
        page = report_html(
            store(),
            audit(),
            incident_id,
            rules(),
            state_url=state_url,
            reversible=reversible_responders(builtin_responders()),
        )
        return publish(report_s3(), bucket, incident_id, page, seconds)
    except Exception:
        logger.exception("incident report not written", extra={"incident_id": incident_id, "bucket": bucket})
        metrics.add_metric(name="ReportFailures", unit=MetricUnit.Count, value=1)
        return None


def automation_ended(event: dict[str, Any]) -> dict[str, Any]:
    """An SSM Automation execution changed status: settle the audit record of the action that started it. A record
    still claimed by the runner that started it raises (`ActionBusyError`), so Lambda delivers the event again."""
    from cordon import automation

    execution_id = str(event.get("detail", {}).get("ExecutionId", ""))
    logger.set_correlation_id(execution_id)
    record = automation.complete(response().executor, runtime.client("ssm"), event)
    if record is None:
        logger.info("automation status change: nothing to settle", extra={"execution_id": execution_id})
        return {"execution_id": execution_id, "settled": False}
    logger.info("automation settled", extra={"action_id": record.id, "status": record.status.value})
    return {"execution_id": execution_id, "settled": True, "action_id": record.id, "status": record.status.value}


def reset() -> None:
    """A new container (tests)."""
    response.cache_clear()
    rules.cache_clear()
    audit.cache_clear()
    report_s3.cache_clear()
    store.cache_clear()
    runtime.reset()
