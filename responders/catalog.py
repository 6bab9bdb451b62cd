"""Every built-in responder, registered by importing its module. Shells import this; the core never does."""

from __future__ import annotations

import responders.apigateway
import responders.bedrock
import responders.ec2
import responders.iam
import responders.notify
import responders.s3
import responders.s3_suspect
import responders.s3_versions
import responders.sagemaker
import responders.sagemaker.lifecycle
import responders.sagemaker.pipeline
import responders.ssm
import responders.wafv2  # noqa: F401 - each import registers that module's responders
from responders.base import Responder, registry


def builtin_responders() -> dict[str, type[Responder]]:
    return registry()
