"""`notify.slack`: the incident as a Slack Block Kit message, posted to an incoming webhook."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from responders.aws import call
from responders.base import ActionContext, Responder, ResponderError, ResponderParams, State, Target, responder
from responders.notify import summary as s
from responders.notify.common import INCIDENT_TARGET, check_target, params_as
from responders.notify.webhook import check_url, fingerprint, post_json

log = logging.getLogger(__name__)

SECRETSMANAGER_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
# Block Kit limits: header text 150, section text 3000, fields 10 of 2000 each, 50 blocks per message.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
IDS_PER_TYPE = 5
ID_LIMIT = 90
EVENTS_SHOWN = 10
ACTIONS_SHOWN = 10
# The buttons of an action that waits for approval; cordon/slack_actions.py judges their clicks.
APPROVE, REFUSE = "cordon_approve", "cordon_refuse"
SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":large_blue_circle:",
    "informational": ":white_circle:",
}


class SlackParams(ResponderParams):
    # Exactly one source: a Secrets Manager secret (deployed), or an environment variable (a laptop).
    # The secret holds the URL itself, or JSON with a "webhook_url" (or "url") key.
    webhook_secret_arn: str | None = Field(default=None, pattern=SECRETSMANAGER_ARN)
    webhook_env: str = Field(default="CORDON_SLACK_WEBHOOK_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_source(self) -> SlackParams:
        if self.webhook_secret_arn is not None and "webhook_env" in self.model_fields_set:
            raise ValueError("give exactly one of webhook_secret_arn and webhook_env")
        return self

    @property
    def source(self) -> str:
        """Where the URL comes from, as the audit may show it (the secret's ARN, the variable's name)."""
        return f"secret:{self.webhook_secret_arn}" if self.webhook_secret_arn else f"env:{self.webhook_env}"


def _esc(text: str) -> str:
    # The three characters Slack's mrkdwn requires escaped; a backtick would end an inline code span.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _code(text: str) -> str:
    return f"`{_esc(s.shorten(text, ID_LIMIT))}`"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": s.truncate(text, SECTION_LIMIT)}}


def entities_text(incident: Mapping[str, Any], per_type: int = IDS_PER_TYPE) -> str:
    lines = []
    for kind, ids in s.entities_by_type(incident).items():
        more = f" +{len(ids) - per_type} more" if len(ids) > per_type else ""
        lines.append(f"*{_esc(kind)}* ({len(ids)}): " + ", ".join(_code(i) for i in ids[:per_type]) + more)
    return "\n".join(lines) or "_none_"


def timeline_text(incident: Mapping[str, Any], limit: int = EVENTS_SHOWN) -> str:
    shown, omitted = s.timeline(incident, limit)
    lines = []
    for index, event in enumerate(shown):
        if omitted and index == (limit + 1) // 2:
            lines.append(f"_… {omitted} more events …_")
        when = s.parse_time(event["time"])
        stamp = f"{when:%Y-%m-%d %H:%M:%S}Z" if when else event["time"]
        lines.append(f"`{_esc(stamp)}` {_esc(event['source'])}: {_esc(', '.join(event['rules']))}")
    return "\n".join(lines) or "_no signals_"


def actions_text(incident: Mapping[str, Any], limit: int = ACTIONS_SHOWN) -> str:
    actions = s.actions_of(incident)
    lines = [
        f"• {_code(a['responder'])} on {_code(a['target'])}: *{_esc(a['status'] or 'unknown')}*"
        + (f" ({_esc(a['playbook'])}/{_esc(a['step'])})" if a["playbook"] else "")
        for a in actions[:limit]
    ]
    if len(actions) > limit:
        lines.append(f"_+{len(actions) - limit} more actions_")
    return "\n".join(lines) or "_none yet_"


def block_id(action_id: str) -> str:
    """The id of the Block Kit block that holds one action's buttons."""
    return f"cordon:{action_id}"


def buttons(action_id: str, label: str) -> dict[str, Any]:
    """The Approve and Refuse buttons of one action that waits for approval."""
    return {
        "type": "actions",
        "block_id": block_id(action_id),
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE,
                "value": action_id,
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
                "confirm": {
                    "title": {"type": "plain_text", "text": "Apply this action?"},
                    "text": {"type": "plain_text", "text": label[:300]},
                    "confirm": {"type": "plain_text", "text": "Apply"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": REFUSE,
                "value": action_id,
                "style": "danger",
                "text": {"type": "plain_text", "text": "Refuse"},
            },
        ],
    }


def report_blocks(incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A link to the incident's report page, when the runner wrote one; it says how long the link lives."""
    link = s.report_link(incident)
    if link is None:
        return []
    until = s.parse_time(link["expires_at"])
    life = f" (link valid until {until:%Y-%m-%d %H:%M}Z)" if until else ""
    return [_section(f"<{_esc(link['url'])}|Open the incident report>{life}: graph, timeline, raw events, actions")]


def build_message(incident: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook payload: `text` is the fallback notifications and screen readers show; blocks the rest."""
    severity = s.severity_of(incident)
    fields = [
        f"*Severity*\n{SEVERITY_EMOJI[severity]} {severity.upper()}",
        f"*Incident*\n{_code(str(incident.get('id') or '-'))}",
        f"*First seen*\n{_esc(str(incident.get('first_seen') or '-'))}",
        f"*Last seen*\n{_esc(str(incident.get('last_seen') or '-'))}",
        "*Rules*\n" + (", ".join(_code(r) for r in s.rules_of(incident)) or "-"),
    ]
    events, entities, actions = s.events(incident), incident.get("entities") or [], s.actions_of(incident)
    footer = f"Sent by Cordon · {len(events)} events · {len(entities)} entities · {len(actions)} actions"
    return {
        "text": s.subject(incident, limit=300),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": s.truncate(s.title_of(incident), HEADER_LIMIT)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": s.truncate(f, FIELD_LIMIT)} for f in fields]},
            {"type": "divider"},
            _section("*Entities*\n" + entities_text(incident)),
            _section("*Timeline*\n" + timeline_text(incident)),
            _section("*Actions*\n" + actions_text(incident)),
            *approval_blocks(incident),
            *report_blocks(incident),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]},
        ],
    }


def approval_blocks(incident: Mapping[str, Any], limit: int = ACTIONS_SHOWN) -> list[dict[str, Any]]:
    """For each action that waits for approval: what it would do, then its Approve and Refuse buttons (a click
    reaches Cordon's Slack endpoint, which checks the signature and the approver before it applies anything)."""
    blocks: list[dict[str, Any]] = []
    waiting = [a for a in incident.get("actions") or [] if a.get("status") == "pending_approval" and a.get("id")]
    for action in waiting[:limit]:
        what = f"{_code(str(action.get('responder')))} on {_code(str(action.get('target')))}"
        blocks.append(_section(f":hourglass: {what} waits for approval ({_esc(str(action.get('step') or ''))})"))
        blocks.append(buttons(str(action["id"]), f"{action.get('responder')} on {action.get('target')}"))
    return blocks


def _url_from_secret(secret: str, where: str) -> str:
    if secret.lstrip().startswith("{"):
        try:
            value = json.loads(secret)
        except ValueError:
            raise ResponderError(f"secret {where} is not valid JSON") from None
        url = (value.get("webhook_url") or value.get("url")) if isinstance(value, dict) else None
        if not isinstance(url, str):
            raise ResponderError(f"secret {where} has no string 'webhook_url' or 'url' key")
        return url
    return secret


def webhook_url(ctx: ActionContext, params: SlackParams) -> str:
    """The webhook URL from the one configured source, checked to be https (or loopback http)."""
    if params.webhook_secret_arn:
        response = call(ctx.client("secretsmanager").get_secret_value, SecretId=params.webhook_secret_arn)
        if "SecretString" not in response:
            raise ResponderError(f"secret {params.webhook_secret_arn} holds binary data, not a URL")
        url = _url_from_secret(response["SecretString"], params.webhook_secret_arn)
    else:
        url = os.environ.get(params.webhook_env, "")
        if not url:
            raise ResponderError(f"environment variable {params.webhook_env} is not set")
    return check_url(url, params.source)


@responder("notify.slack")
class NotifySlack(Responder):
    """Post the incident to a Slack channel through an incoming webhook, as Block Kit: a header with the
    title; severity, id, first and last seen and rules; entities grouped by type; a timeline of the signals;
    the playbook actions and their status.

    The webhook URL is a credential. Keep it in Secrets Manager (`webhook_secret_arn`; the secret is the URL,
    or JSON with a `webhook_url` key) or, locally, in an environment variable (`webhook_env`, default
    CORDON_SLACK_WEBHOOK_URL). It must be https. Cordon never logs it or returns it: the audit shows the host
    and a hash. 429 and 5xx answers are retried with capped backoff (Retry-After honoured up to 10 s).
    A secret encrypted with a customer key also needs kms:Decrypt on that key.

    Example::

        - responder: notify.slack
          target: id
          params: {webhook_secret_arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:cordon/slack-AbCdEf"}
    """

    permissions = ("secretsmanager:GetSecretValue",)
    Params = SlackParams
    target_types = INCIDENT_TARGET
    reversible = False

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        # Resolving the URL here lets a dry run show a missing secret or a bad URL before anything is sent.
        p = params_as(params, SlackParams, self.name)
        return {"source": p.source, **fingerprint(webhook_url(ctx, p))}

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        check_target(ctx, target, self.name)
        p = params_as(params, SlackParams, self.name)
        url = webhook_url(ctx, p)
        message = build_message(ctx.incident)
        # Slack answers 200 only once it accepted the message; there is nothing to read back.
        delivery = post_json(url, message, name=self.name)
        state = {"source": p.source, **fingerprint(url), "status": delivery.status, "attempts": delivery.attempts}
        log.info("%s: incident %s posted to %s", self.name, ctx.incident.get("id"), state["host"])
        return state
