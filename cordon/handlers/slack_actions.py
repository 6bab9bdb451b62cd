"""Slack actions Lambda (a function URL Slack's interactivity calls): Approve and Refuse clicks on Cordon's alerts.

Every click is judged first (`cordon.slack_actions`: signature, freshness, payload, approver); a refused click
changes nothing, answers 401/403/400 and is logged with the reason and the clicking user. An accepted one is
approved or refused through the executor's claim, exactly as `cordon approve` would (every guard re-checked, two
clicks at once apply once), audited with the Slack user id (`decided_by: slack:U...`), and the alert message's
buttons are replaced by who decided, when, and the outcome (through the click's `response_url`).

Slack wants an answer within three seconds. An approval applies its action before answering; one that takes
longer still applies, and the message is still updated, but the clicker may see Slack's timeout notice.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cordon import constants
from cordon.handlers import runtime

logger = Logger(service="cordon-slack-actions")
SLACK_API = "https://slack.com/api"
GROUP_LOOKUP_TIMEOUT_SECONDS = 2


@cache
def _secret(arn: str) -> str:
    """A Secrets Manager secret's string, read once per container."""
    return str(runtime.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def group_members(group_id: str) -> list[str]:
    """The members of a Slack user group, from Slack's API with the bot token; raises when it cannot tell."""
    token_arn = os.environ.get(constants.SLACK_BOT_TOKEN_ENV)
    if not token_arn:
        raise LookupError("no bot token configured: user groups cannot be read")
    api = os.environ.get(constants.SLACK_API_URL_ENV) or SLACK_API
    request = urllib.request.Request(  # noqa: S310 - a fixed https API, or loopback in tests
        f"{api}/usergroups.users.list?usergroup={group_id}",
        headers={"Authorization": f"Bearer {_secret(token_arn)}"},
    )
    with urllib.request.urlopen(request, timeout=GROUP_LOOKUP_TIMEOUT_SECONDS) as answer:  # noqa: S310
        document = json.loads(answer.read(1_000_000))
    if not document.get("ok") or not isinstance(document.get("users"), list):
        raise LookupError(f"Slack refused to list user group {group_id}: {document.get('error')}")
    return [str(user) for user in document["users"]]


def _request(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "surrogatepass")
    return raw, {str(k): str(v) for k, v in (event.get("headers") or {}).items()}


def _answer(status: int, text: str = "") -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": text}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from cordon.execute import ActionRefusedError
    from cordon.handlers.runner import response
    from cordon.slack_actions import Refusal, decided_message, judge
    from responders.notify.webhook import post_json

    body, headers = _request(event)
    config = runtime.site_config()
    verdict = judge(
        body,
        headers,
        signing_secret=_secret(runtime.env(constants.SLACK_SIGNING_SECRET_ENV)),
        approvers=config.approval.slack_approvers,
        group_members=group_members,
        now=time.time,
    )
    if isinstance(verdict, Refusal):
        logger.warning(
            "slack click refused",
            extra={"reason": verdict.reason, "slack_user": verdict.user_id, "action_id": verdict.action_id},
        )
        return _answer(verdict.status, verdict.reason)
    executor = response().executor
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    try:
        if verdict.verb == "approve":
            record = executor.approve(verdict.action_id, by=verdict.by)
        else:
            record = executor.refuse(verdict.action_id, by=verdict.by)
        outcome = f"{verdict.verb.capitalize()}d by <@{verdict.user_id}> at {stamp}: *{record.status.value}*"
        if record.reason and record.status.value != "refused":
            outcome += f" ({record.reason[:300]})"
    except ActionRefusedError as refused:
        outcome = f"<@{verdict.user_id}> asked to {verdict.verb} at {stamp}: not done: {str(refused)[:300]}"
    logger.info(
        "slack decision",
        extra={"slack_user": verdict.user_id, "action_id": verdict.action_id, "verb": verdict.verb, "outcome": outcome},
    )
    try:
        post_json(verdict.response_url, decided_message(verdict.message, verdict.action_id, outcome), name="slack")
    except Exception as error:  # the decision stands, and is audited, whether or not the message is updated
        logger.warning("slack message not updated", extra={"error": type(error).__name__})
    return _answer(200)


def reset() -> None:
    """A new container (tests)."""
    _secret.cache_clear()
