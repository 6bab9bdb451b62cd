"""`notify.sns`: publish the incident summary to an SNS topic (email, chat bridges, ticketing, pagers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from responders.aws import call
from responders.base import ActionContext, Responder, ResponderError, ResponderParams, State, Target, responder
from responders.notify.common import INCIDENT_TARGET, check_target, params_as
from responders.notify.summary import rules_of, severity_of, subject, summary

# arn:<partition>:sns:<region>:<account>:<topic name, 1-256 of [A-Za-z0-9_-], optionally .fifo>
TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
MAX_MESSAGE_BYTES = 256 * 1024  # SNS's limit for the message and its attributes together
SUBJECT_LIMIT = 100


class SnsParams(ResponderParams):
    topic_arn: str = Field(pattern=TOPIC_ARN)
    # The word before the severity in the subject, e.g. "Cordon prod" gives "[Cordon prod HIGH] ..."
    subject_prefix: str = Field(default="Cordon", min_length=1, max_length=40, pattern=r"^[ -~]+$")


def build_publish(incident: Mapping[str, Any], params: SnsParams) -> dict[str, Any]:
    """The Publish request: JSON summary, short ASCII subject, and attributes subscribers filter on."""
    message = _bounded_message(incident)
    request: dict[str, Any] = {
        "TopicArn": params.topic_arn,
        "Message": message,
        "Subject": subject(incident, params.subject_prefix, SUBJECT_LIMIT),
        "MessageAttributes": {
            "severity": {"DataType": "String", "StringValue": severity_of(incident)},
            # SNS takes an array attribute as its JSON text; filter policies match any of its elements.
            "rule": {"DataType": "String.Array", "StringValue": json.dumps(rules_of(incident))},
            "incident_id": {"DataType": "String", "StringValue": str(incident.get("id") or "-")},
        },
    }
    if params.topic_arn.endswith(".fifo"):
        # One ordered stream per incident; the same summary delivered twice (at-least-once runs) is sent once.
        request["MessageGroupId"] = str(incident.get("id") or "cordon")
        request["MessageDeduplicationId"] = hashlib.sha256(message.encode()).hexdigest()
    return request


def _bounded_message(incident: Mapping[str, Any]) -> str:
    # The default caps keep a summary far below the limit; very long entity ids (S3 keys) could still pass
    # it, so shrink until it fits rather than have Publish refuse the whole notification.
    for entities, timeline_events in ((50, 20), (20, 10), (5, 4), (0, 0)):
        message = json.dumps(
            summary(incident, max_entities=entities, max_events=timeline_events), indent=1, default=str
        )
        if len(message.encode()) < MAX_MESSAGE_BYTES - 8 * 1024:  # room for subject and attributes
            return message
    raise ResponderError(f"notify.sns: incident {incident.get('id')!r} summary exceeds SNS's message size")


@responder("notify.sns")
class NotifySns(Responder):
    """Publish the incident to an SNS topic as a JSON summary (id, title, severity, rules, first and last seen,
    entities, a short timeline, actions and their status), with the subject `[Cordon HIGH] <title>` and
    message attributes `severity` (String) and `rule` (String.Array) that subscription filter policies can
    match, e.g. `{"severity": ["high", "critical"]}` to page only on those.

    An encrypted topic also needs kms:GenerateDataKey and kms:Decrypt on its key, granted in the key policy.

    Example::

        - responder: notify.sns
          target: id
          params: {topic_arn: "arn:aws:sns:us-east-1:111122223333:cordon-alerts"}
    """

    permissions = ("sns:GetTopicAttributes", "sns:Publish")
    Params = SnsParams
    target_types = INCIDENT_TARGET
    reversible = False

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        topic_arn = params_as(params, SnsParams, self.name).topic_arn
        try:
            call(ctx.client("sns").get_topic_attributes, TopicArn=topic_arn)
        except ResponderError as error:
            if error.code != "NotFound":
                raise
            return {"topic_arn": topic_arn, "topic_exists": False}
        return {"topic_arn": topic_arn, "topic_exists": True}

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        check_target(ctx, target, self.name)
        request = build_publish(ctx.incident, params_as(params, SnsParams, self.name))
        response = call(ctx.client("sns").publish, **request)
        # SNS has nothing to read back for a published message; its MessageId is the receipt.
        if not response.get("MessageId"):
            raise ResponderError(f"{self.name}: Publish to {request['TopicArn']} returned no MessageId")
        return {
            "topic_arn": request["TopicArn"],
            "message_id": response["MessageId"],
            "subject": request["Subject"],
            "severity": severity_of(ctx.incident),
        }
