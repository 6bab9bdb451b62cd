"""Every built-in responder, registered by importing its module. Shells import this; the core never does."""

from __future__ import annotations

from responders import apigateway, ec2, iam, notify, s3, sagemaker, wafv2  # noqa: F401 - imported to register
from responders.base import Responder, registry


def builtin_responders() -> dict[str, type[Responder]]:
    return registry()
