"""Slack actions Lambda (the function URL Slack's interactivity calls): Approve and Refuse clicks on Cordon's alerts.

Every click is judged here first (`cordon.slack_actions`: signature, freshness, payload, approver); a refused click
changes nothing, is answered 401/403/400 and logged with the reason and the clicking user. An accepted click is
handed to the playbook runner (an asynchronous invoke, so Slack gets its answer within its three seconds), which
approves or refuses the action through the executor's claim, exactly as `cordon approve` would (every guard
re-checked, two clicks at once apply once), audits it with the Slack user id (`decided_by: slack:U...`), and
replaces the alert's buttons with who decided, when, and the outcome. This function changes nothing in AWS itself:
its role may read the Slack app's secret and the site configuration, and invoke the runner; nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
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
def app_secret() -> dict[str, str]:
    """The Slack app's secret, read once per container: {"signing_secret": ..., "bot_token": ... (optional)}."""
    text = str(
        runtime.client("secretsmanager").get_secret_value(SecretId=runtime.env(constants.SLACK_APP_SECRET_ENV))[
            "SecretString"
        ]
    ).strip()
    if text.startswith("{"):
        document = json.loads(text)
        return {key: str(document[key]) for key in ("signing_secret", "bot_token") if document.get(key)}
    return {"signing_secret": text} if text else {}


def group_members(group_id: str) -> list[str]:
    """The members of a Slack user group, from Slack's API with the bot token; raises when it cannot tell."""
    token = app_secret().get("bot_token")
    if not token:
        raise LookupError("the Slack app secret has no bot_token: user groups cannot be read")
    api = os.environ.get(constants.SLACK_API_URL_ENV) or SLACK_API
    request = urllib.request.Request(  # noqa: S310 - Slack's https API, or loopback in tests
        f"{api}/usergroups.users.list?usergroup={group_id}", headers={"Authorization": f"Bearer {token}"}
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
    from cordon.slack_actions import Refusal, judge

    body, headers = _request(event)
    verdict = judge(
        body,
        headers,
        signing_secret=app_secret().get("signing_secret", ""),
        approvers=runtime.site_config().approval.slack_approvers,
        group_members=group_members,
        now=time.time,
    )
    if isinstance(verdict, Refusal):
        logger.warning(
            "slack click refused",
            extra={"reason": verdict.reason, "slack_user": verdict.user_id, "action_id": verdict.action_id},
        )
        return _answer(verdict.status, verdict.reason)
    decision = {
        "source": constants.SLACK_DECISION_SOURCE,
        "decision": {
            "verb": verdict.verb,
            "action_id": verdict.action_id,
            "user_id": verdict.user_id,
            "response_url": verdict.response_url,
            "message": verdict.message,
        },
    }
    runtime.client("lambda").invoke(
        FunctionName=runtime.env(constants.RUNNER_FUNCTION_ENV), InvocationType="Event", Payload=json.dumps(decision)
    )
    logger.info("slack click accepted", extra={"slack_user": verdict.user_id, "action_id": verdict.action_id})
    return _answer(200)


def reset() -> None:
    """A new container (tests)."""
    app_secret.cache_clear()
