"""Names the deployed stack and the code share: environment variables, the incident event, table key shapes.

template.yaml sets these variables on the functions; the handlers read them here and nowhere else.
"""

from __future__ import annotations

# --- environment variables of the Lambda functions -------------------------------------------------------------
STATE_TABLE_ENV = "CORDON_STATE_TABLE"  # DynamoDB table: signals, incidents, links, seen events
AUDIT_TABLE_ENV = "CORDON_AUDIT_TABLE"  # DynamoDB table: action claims and the audit trail
EVENT_BUS_ENV = "CORDON_EVENT_BUS"  # Cordon's own bus: the correlator puts `Cordon Incident` events on it
CONFIG_PARAMETER_ENV = "CORDON_CONFIG_PARAMETER"  # SSM parameter holding the site's cordon.yaml
KILL_SWITCH_PARAMETER_ENV = "CORDON_KILL_SWITCH_PARAMETER"  # SSM parameter: "on" stops every change
ENFORCEMENT_MODE_ENV = "CORDON_ENFORCEMENT_MODE"  # dry_run | approval | enforce: the most any playbook may do
SLACK_SECRET_ENV = "CORDON_SLACK_SECRET_ARN"  # noqa: S105 - the name of a variable holding an ARN, not a secret
SNS_TOPIC_ENV = "CORDON_SNS_TOPIC_ARN"  # alerts topic
MEMBER_ROLE_ENV = "CORDON_MEMBER_ROLE_NAME"  # responder role in member accounts
AUTOMATION_ROLE_ENV = "CORDON_AUTOMATION_ROLE_ARN"  # the role SSM Automation runbooks run under (may be empty)
# The Slack app's secret: its signing secret, or JSON {"signing_secret": ..., "bot_token": ...} (the token lists the
# members of approver user groups).
SLACK_APP_SECRET_ENV = "CORDON_SLACK_APP_SECRET_ARN"  # noqa: S105 - the name of a variable holding an ARN
SLACK_API_URL_ENV = "CORDON_SLACK_API_URL"  # tests and the demo only: Slack's Web API (default https://slack.com/api)
RUNNER_FUNCTION_ENV = "CORDON_RUNNER_FUNCTION"  # the Slack actions function hands decisions to the runner
SLACK_DECISION_SOURCE = "cordon.slack"  # the `source` of a decision event the runner takes from that function
REPORT_BUCKET_ENV = "CORDON_REPORT_BUCKET"  # S3 bucket the runner writes incident reports to; unset: no report
REPORT_LINK_SECONDS_ENV = "CORDON_REPORT_LINK_SECONDS"  # life of the presigned report link in alerts (default 3600)
ENDPOINT_URL_ENV = "CORDON_AWS_ENDPOINT_URL"  # tests and the demo only: every AWS call goes to this endpoint

# --- the event the correlator puts on Cordon's bus when an incident is created or changes ------------------------
INCIDENT_EVENT_SOURCE = "cordon"
INCIDENT_DETAIL_TYPE = "Cordon Incident"
