"""The AWS actions each deployed function may call, per resource of template.yaml: the code's side of least privilege.

`tests/unit/test_template_iam.py` derives the same mapping from template.yaml (after the SAM transform) and
requires equality: an action the code calls but the template does not grant fails the test, and so does a grant
the code never uses. Change both together.

Keys name what a policy statement's `Resource` points at, as written in template.yaml:

- a logical id of a resource (`StateTable`: the table and its indexes) or of a parameter (`MemberAccountRoleName`:
  the role of that name in any account);
- `"A or B"`: a resource chosen by a condition (`!If`), e.g. the Slack secret Cordon creates or the one given;
- `"*"`: APIs that have no resource-level permissions (the statement says so in a comment);
- an ARN pattern exactly as template.yaml's `!Sub` writes it: the responders act on any role, user, bucket,
  instance or endpoint of the account that an incident names, so their resources are "every X in this account",
  never `*`.

The runner's responder part must cover every permission the responders and the executor declare
(`responders.catalog`, `cordon.execute.EXECUTOR_PERMISSIONS`); the same test checks that too.
"""

from __future__ import annotations

from collections.abc import Mapping

Grants = Mapping[str, tuple[str, ...]]

ANY = "*"

# --- what the Lambda platform needs of every function's role -------------------------------------------------------
_LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
_XRAY = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")  # Tracing: Active
_KMS = ("kms:Decrypt", "kms:GenerateDataKey")  # tables, queues, topic, secret and environment use the one key

# --- the correlator: SQS batch > core > state table > `Cordon Incident` on Cordon's bus ---------------------------
CORRELATOR: Grants = {
    "StateTable": (
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ),
    "CordonEventBus": ("events:PutEvents",),
    "ConfigParameter": ("ssm:GetParameter",),
    "CordonKey": _KMS,
    "EventQueue": (
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ),
    # platform
    "CorrelatorDeadLetterQueue": ("sqs:SendMessage",),
    "CorrelatorLogGroup": _LOGS,
    ANY: _XRAY,
}

# --- the playbook runner: `Cordon Incident` > plan > claim > responders > audit > notify ----------------------------
_ACCOUNT_IAM_USERS = "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*"
_ACCOUNT_IAM_ROLES = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"
_ACCOUNT_AUTOMATION_EXECUTIONS = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-execution/*"

RESPONDERS: Grants = {
    # Describe*, LookupEvents and GetCallerIdentity have no resource-level permissions.
    ANY: (
        "cloudtrail:LookupEvents",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSnapshots",
        "sts:GetCallerIdentity",
    ),
    "arn:${AWS::Partition}:apigateway:*::/*": ("apigateway:GET", "apigateway:PATCH"),
    "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:*": (
        "ec2:AssociateIamInstanceProfile",
        "ec2:CreateSecurityGroup",
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:ModifyInstanceAttribute",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
    ),
    # Snapshot ARNs carry no account: `arn:aws:ec2:REGION::snapshot/snap-...`.
    "arn:${AWS::Partition}:ec2:*::snapshot/*": ("ec2:CreateSnapshot", "ec2:CreateTags"),
    _ACCOUNT_IAM_USERS: (
        "iam:DeleteUserPolicy",
        "iam:GetAccessKeyLastUsed",
        "iam:GetUser",
        "iam:GetUserPolicy",
        "iam:ListAccessKeys",
        "iam:ListUserTags",
        "iam:PutUserPolicy",
        "iam:UpdateAccessKey",
    ),
    _ACCOUNT_IAM_ROLES: (
        "iam:DeleteRolePolicy",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListRoleTags",
        "iam:PassRole",  # only to ec2.amazonaws.com: rollback re-attaches the instance profile
        "iam:PutRolePolicy",
    ),
    # Bucket ARNs carry no account; the statement's aws:ResourceAccount condition keeps it to this account.
    # ... and its objects (s3.restore-object-versions, s3.tag-suspect-versions, the retrain manifest): `s3:::*`
    # covers `bucket/key` too.
    "arn:${AWS::Partition}:s3:::*": (
        "s3:DeleteBucketPolicy",
        "s3:DeleteObject",
        "s3:DeleteObjectVersionTagging",
        "s3:GetBucketPolicy",
        "s3:GetBucketVersioning",
        "s3:GetObjectVersion",
        "s3:GetObjectVersionTagging",
        "s3:ListBucketVersions",
        "s3:PutBucketPolicy",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    ),
    "arn:${AWS::Partition}:sagemaker:*:${AWS::AccountId}:*": (
        "sagemaker:AddTags",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DeleteTags",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeNotebookInstance",
        "sagemaker:DescribePipeline",
        "sagemaker:DescribePipelineExecution",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:ListPipelineExecutions",
        "sagemaker:ListTags",
        "sagemaker:StartNotebookInstance",
        "sagemaker:StartPipelineExecution",
        "sagemaker:StopNotebookInstance",
        "sagemaker:StopPipelineExecution",
        "sagemaker:StopTrainingJob",
        "sagemaker:UpdateEndpoint",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "sagemaker:UpdateModelPackage",
        "sagemaker:UpdateNotebookInstance",
    ),
    "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:hub/default": ("securityhub:GetFindings",),
    "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:product/${AWS::AccountId}/default": (
        "securityhub:BatchImportFindings",
    ),
    "arn:${AWS::Partition}:wafv2:*:${AWS::AccountId}:*/ipset/*/*": ("wafv2:GetIPSet", "wafv2:UpdateIPSet"),
    # notify.sns and notify.slack: only Cordon's topic and Cordon's secret
    "AlertTopic": ("sns:GetTopicAttributes", "sns:Publish"),
    "SlackWebhookSecret or SlackWebhookSecretArn": ("secretsmanager:GetSecretValue",),
    # the executor: kill switch, site configuration, the responder role in member accounts
    "KillSwitchParameter": ("ssm:GetParameter",),
    "ConfigParameter": ("ssm:GetParameter",),
    "MemberAccountRoleName": ("sts:AssumeRole",),
    # ssm.start-automation: runbooks of AWS (no account in their ARNs) or of this account, their executions here,
    # and the one role runbooks run under (only when the stack names it, only to SSM)
    "arn:${AWS::Partition}:ssm:*::automation-definition/*": ("ssm:StartAutomationExecution",),
    "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-definition/*": ("ssm:StartAutomationExecution",),
    "arn:${AWS::Partition}:ssm:*::document/*": ("ssm:StartAutomationExecution",),
    "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:document/*": ("ssm:StartAutomationExecution",),
    _ACCOUNT_AUTOMATION_EXECUTIONS: (
        "ssm:AddTagsToResource",
        "ssm:GetAutomationExecution",
        "ssm:ListTagsForResource",
        "ssm:StartAutomationExecution",
        "ssm:StopAutomationExecution",
    ),
    "AutomationRoleArn": ("iam:PassRole",),
}

RUNNER_STATE: Grants = {
    "AuditTable": (
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ),
    "StateTable": ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"),
    "CordonKey": _KMS,
    # the incident report: written, and read through the presigned link the runner signs
    "ReportBucket": ("s3:GetObject", "s3:PutObject"),
    # platform
    "RunnerDeadLetterQueue": ("sqs:SendMessage",),
    "RunnerLogGroup": _LOGS,
    ANY: _XRAY,
}


def merge(*parts: Grants) -> dict[str, tuple[str, ...]]:
    """One mapping from several: the actions per resource key, united and sorted."""
    merged: dict[str, set[str]] = {}
    for part in parts:
        for resource, actions in part.items():
            merged.setdefault(resource, set()).update(actions)
    return {resource: tuple(sorted(actions)) for resource, actions in merged.items()}


RUNNER: Grants = merge(RESPONDERS, RUNNER_STATE)

# --- Slack actions: judge a click, hand it to the runner; it changes nothing itself ---------------------------------
SLACK_ACTIONS: Grants = {
    "SlackAppSecret or SlackAppSecretArn": ("secretsmanager:GetSecretValue",),
    "ConfigParameter": ("ssm:GetParameter",),  # approval.slack_approvers
    "RunnerFunction": ("lambda:InvokeFunction",),
    "CordonKey": ("kms:Decrypt",),
    # platform
    "SlackActionsLogGroup": _LOGS,
    ANY: _XRAY,
}

# Function logical id in template.yaml -> what its role grants.
FUNCTIONS: Mapping[str, Grants] = {
    "CorrelatorFunction": CORRELATOR,
    "RunnerFunction": RUNNER,
    "SlackActionsFunction": SLACK_ACTIONS,
}

# The responder role in member accounts (infra/member-account.yaml) grants the runner's responder part, less what
# lives only in Cordon's account: the alert topic, the Slack secret, the kill switch and configuration parameters,
# and the way into member accounts itself.
MEMBER_ROLE_EXCLUDED = frozenset(
    {"AlertTopic", "SlackWebhookSecret or SlackWebhookSecretArn", "KillSwitchParameter", "ConfigParameter"}
    | {"MemberAccountRoleName"}
    # Runbooks run only in the automation role's account (Cordon's): a role cannot be passed across accounts.
    | {key for key in RESPONDERS if ":ssm:" in key or key == "AutomationRoleArn"}
)
MEMBER_ROLE: Grants = {key: actions for key, actions in RESPONDERS.items() if key not in MEMBER_ROLE_EXCLUDED}
