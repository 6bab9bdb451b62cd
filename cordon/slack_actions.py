"""Approve or refuse an action from Slack: the request a button click sends, judged before anything is done.

The checks, in order; the first that fails refuses the click and nothing is applied:

1. the signature: Slack's v0 HMAC-SHA256 of `v0:{timestamp}:{body}` with the app's signing secret, compared in
   constant time (`slack_sdk.signature.SignatureVerifier`), and a timestamp within five minutes of now, so a
   captured request cannot be replayed later. A request that cannot be judged (no headers, a timestamp that is
   not a number, a body that is not UTF-8) is refused like a bad one;
2. the payload: a `block_actions` interaction carrying one Cordon button (`cordon_approve` or `cordon_refuse`)
   whose value is an action id, and a `response_url` on Slack's own host (or loopback, for tests and the demo);
3. the person: the clicking user is an approver (`approval.slack_approvers`: user ids, or user groups whose
   members Slack's API lists). No approvers configured means nobody may approve; a group whose members cannot be
   read counts as no match: a guard that cannot decide denies.

What passes is a `Click`: the shell (`cordon.handlers.slack_actions`) then approves or refuses the action through
the executor's claim (exactly once, audited with the Slack user id) and replaces the message's buttons with who
decided, when, and the outcome. Nothing here touches AWS or the network, except the group lookup handed in.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from slack_sdk.signature import Clock, SignatureVerifier

from responders.notify.slack import APPROVE, REFUSE, block_id

if TYPE_CHECKING:
    from cordon.execute import Executor

log = logging.getLogger(__name__)

VERBS = {APPROVE: "approve", REFUSE: "refuse"}
MAX_BODY_BYTES = 64 * 1024  # a block_actions payload with a whole alert message is far below this
_ACTION_ID = re.compile(r"act-[0-9a-f]{16}")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
SLACK_HOSTS = frozenset({"hooks.slack.com"})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

GroupMembers = Callable[[str], Sequence[str]]  # user group id -> its member user ids (raises when it cannot tell)
Post = Callable[[str, dict[str, Any]], None]  # POST a JSON document to a URL


@dataclass(frozen=True)
class Click:
    """A verified, authorized click: what to do, to which action, by whom, and where to tell the result."""

    verb: str  # "approve" or "refuse"
    action_id: str
    user_id: str
    user_name: str
    response_url: str
    message: dict[str, Any]  # the alert message the buttons were in (Slack sends it back with the click)

    @property
    def by(self) -> str:
        return f"slack:{self.user_id}"


@dataclass(frozen=True)
class Refusal:
    """Why the click was refused, the HTTP status to answer with, and who clicked when that is known (logs)."""

    status: int
    reason: str
    user_id: str | None = None
    action_id: str | None = None


def judge(
    body: bytes,
    headers: Mapping[str, str],
    *,
    signing_secret: str,
    approvers: Sequence[str],
    group_members: GroupMembers,
    now: Callable[[], float],
) -> Click | Refusal:
    """The click in `body` (the raw form-encoded request body), or why it is refused."""
    if len(body) > MAX_BODY_BYTES:
        return Refusal(413, f"request body of {len(body)} bytes: at most {MAX_BODY_BYTES}")
    if not _signed(body, headers, signing_secret, now):
        return Refusal(401, "bad or expired Slack signature: refused")
    payload = _payload(body)
    if isinstance(payload, Refusal):
        return payload
    user = _mapping(payload.get("user"))
    user_id = str(user.get("id", ""))
    if not _SLACK_ID.fullmatch(user_id):
        return Refusal(400, "the click names no Slack user")
    button = _button(payload)
    if isinstance(button, Refusal):
        return Refusal(button.status, button.reason, user_id)
    action_id, verb = button
    response_url = str(payload.get("response_url", ""))
    if not _slack_url(response_url):
        return Refusal(400, "the click's response_url is not on Slack's host", user_id, action_id)
    if not _approver(user_id, approvers, group_members):
        return Refusal(403, f"{user_id} is not an approver (approval.slack_approvers)", user_id, action_id)
    message = _mapping(payload.get("message"))
    return Click(verb, action_id, user_id, str(user.get("username") or user.get("name") or ""), response_url, message)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def handed_over(decision: Mapping[str, Any]) -> Click | None:
    """A click the Slack function accepted and handed to the runner, checked again on arrival (the runner may be
    invoked by other means; what it acts on must have the same shape). None: not a decision."""
    verb = str(decision.get("verb", ""))
    action_id = str(decision.get("action_id", ""))
    user_id = str(decision.get("user_id", ""))
    response_url = str(decision.get("response_url", ""))
    if verb not in VERBS.values() or not _ACTION_ID.fullmatch(action_id) or not _SLACK_ID.fullmatch(user_id):
        return None
    if not _slack_url(response_url):
        return None
    return Click(verb, action_id, user_id, "", response_url, _mapping(decision.get("message")))


def _signed(body: bytes, headers: Mapping[str, str], secret: str, now: Callable[[], float]) -> bool:
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    if not secret or not timestamp.isdigit() or not signature.startswith("v0="):
        return False
    verifier = SignatureVerifier(secret, clock=_Clock(now))
    try:
        return bool(verifier.is_valid(body.decode("utf-8"), timestamp, signature))
    except (UnicodeDecodeError, ValueError):
        return False


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def _payload(body: bytes) -> dict[str, Any] | Refusal:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=10)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, RecursionError):
        return Refusal(400, "not a Slack interaction payload")
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return Refusal(400, "not a block_actions interaction")
    return payload


def _button(payload: dict[str, Any]) -> tuple[str, str] | Refusal:
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        return Refusal(400, "the click carries no single button")
    verb = VERBS.get(str(actions[0].get("action_id", "")))
    action_id = str(actions[0].get("value", ""))
    if verb is None:
        return Refusal(400, "not a Cordon button")
    if not _ACTION_ID.fullmatch(action_id):
        return Refusal(400, "the button names no action id")
    return action_id, verb


def _slack_url(url: str) -> bool:
    """Only Slack's own host (https), or loopback (http or https) for tests: the shell POSTs the update there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.hostname in _LOOPBACK:
        return parts.scheme in ("http", "https")
    return parts.scheme == "https" and parts.hostname in SLACK_HOSTS and parts.port in (None, 443)


def _approver(user_id: str, approvers: Sequence[str], group_members: GroupMembers) -> bool:
    if user_id in approvers:
        return True
    for group in (a for a in approvers if a.startswith("S")):
        try:
            if user_id in group_members(group):
                return True
        except Exception:  # noqa: S112 - cannot read the group: it does not vouch for anyone, try the next
            continue
    return False


def decided_message(message: Mapping[str, Any], action_id: str, outcome: str) -> dict[str, Any]:
    """The alert message with the decided action's buttons replaced by `outcome` (who, when, what happened); the
    other actions keep their buttons."""
    blocks = [b for b in message.get("blocks", []) if isinstance(b, dict)]
    replaced = [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": outcome}]}
        if block.get("block_id") == block_id(action_id)
        else block
        for block in blocks
    ]
    if replaced == blocks:  # the buttons were not found (an older message): say it below the alert
        replaced.append({"type": "context", "elements": [{"type": "mrkdwn", "text": outcome}]})
    return {"replace_original": True, "text": str(message.get("text") or outcome), "blocks": replaced}


def carry_out(click: Click, executor: Executor, post: Post | None = None) -> tuple[bool, str]:
    """Approve or refuse the clicked action through the executor's claim (exactly once, every guard re-checked,
    `decided_by` the Slack user), then replace the alert's buttons with who decided, when and the outcome.
    Returns whether the decision was made, and the outcome as the message says it."""
    from cordon.execute import ActionRefusedError

    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    try:
        if click.verb == "approve":
            record = executor.approve(click.action_id, by=click.by)
        else:
            record = executor.refuse(click.action_id, by=click.by)
        outcome = f"{click.verb.capitalize()}d by <@{click.user_id}> at {stamp}: *{record.status.value}*"
        if record.reason and record.status.value not in ("refused", "applied"):
            outcome += f" ({record.reason[:300]})"
        decided = True
    except ActionRefusedError as refused:
        outcome = f"<@{click.user_id}> asked to {click.verb} at {stamp}: not done: {str(refused)[:300]}"
        decided = False
    try:
        (post or _post_json)(click.response_url, decided_message(click.message, click.action_id, outcome))
    except Exception as error:  # the decision stands, and is audited, whether or not the message is updated
        log.warning("slack message not updated: %s", type(error).__name__)
    return decided, outcome


def _post_json(url: str, payload: dict[str, Any]) -> None:
    from responders.notify.webhook import post_json

    post_json(url, payload, name="slack")
