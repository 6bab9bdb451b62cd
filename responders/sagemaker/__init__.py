"""SageMaker responders: quarantine an endpoint, stop a notebook or a training job, reject a model package.

Targets are SageMaker ARNs as the incident names them (`arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME`, names
lowercased). Each responder parses its ARN strictly and refuses anything else, and refuses a target outside the
session's account or region rather than acting on a namesake there.

One module per responder (`endpoint`, `endpoint_rollback`, `notebook`, `training`, `model_package`); `arns` holds
the target checks they share, and the endpoint quarantine's `deny_policy` and `traffic_cut` parts live in their
own modules. Importing this package registers every responder.
"""

from responders.sagemaker.arns import SageMakerArn, parse_sagemaker_arn
from responders.sagemaker.deny_policy import (
    DENY_POLICY_PREFIX,
    Principal,
    deny_sid,
    deny_statement,
    parse_principal,
    policy_with,
    policy_without,
    screen_principals,
)
from responders.sagemaker.endpoint import QuarantineEndpoint, QuarantineEndpointParams
from responders.sagemaker.endpoint_rollback import RollbackEndpointConfig, previous_config
from responders.sagemaker.model_package import RejectModelPackage, rejection_description
from responders.sagemaker.notebook import StopNotebook
from responders.sagemaker.traffic_cut import (
    PRIOR_CONFIG_TAG,
    PRIOR_WEIGHT_TAG,
    QUARANTINE_TAG,
    SOURCE_CONFIG_TAG,
    quarantine_config_name,
    quarantine_config_request,
    restore_tags,
)
from responders.sagemaker.training import StopTrainingJob

__all__ = [
    "DENY_POLICY_PREFIX",
    "PRIOR_CONFIG_TAG",
    "PRIOR_WEIGHT_TAG",
    "QUARANTINE_TAG",
    "SOURCE_CONFIG_TAG",
    "Principal",
    "QuarantineEndpoint",
    "QuarantineEndpointParams",
    "RejectModelPackage",
    "RollbackEndpointConfig",
    "SageMakerArn",
    "StopNotebook",
    "StopTrainingJob",
    "deny_sid",
    "deny_statement",
    "parse_principal",
    "parse_sagemaker_arn",
    "policy_with",
    "policy_without",
    "previous_config",
    "quarantine_config_name",
    "quarantine_config_request",
    "rejection_description",
    "restore_tags",
    "screen_principals",
]
