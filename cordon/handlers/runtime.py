"""What a Lambda container builds once and reuses across invocations: clients, the site configuration, the rules,
the playbooks, the stores. Read from the environment template.yaml sets (`cordon.constants`), nothing else.

The site configuration is the SSM parameter's text (cordon.yaml). It is written to a file named after the
parameter and loaded by the same strict loader as on a laptop, so an error names the parameter and the line.
Cold starts pay for this once; a configuration change reaches a container when it is recycled (or at once, with
a deploy that changes the function).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3  # noqa: TID251 - a shell: it builds the clients the adapters are handed
from botocore.config import Config as BotocoreConfig

from cordon import constants

if TYPE_CHECKING:  # imported where used: a handler module's import stays close to boto3's own (cold start)
    from cordon.playbooks.model import Mode
    from correlators.config import Config

CLIENT_CONFIG = BotocoreConfig(retries={"mode": "standard", "max_attempts": 10})


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set: template.yaml sets it on the function")
    return value


def endpoint_url() -> str | None:
    """Tests and the demo point every client at a moto server; in AWS this is unset."""
    return os.environ.get(constants.ENDPOINT_URL_ENV) or None


@cache
def session() -> boto3.session.Session:
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    return session().client(service, endpoint_url=endpoint_url(), config=CLIENT_CONFIG)


@cache
def site_config() -> Config:
    """cordon.yaml from the SSM parameter (an empty mapping when unset), plus what the stack itself provides:
    the alert topic, the Slack secret, the kill-switch parameter, the member-account role name and the automation
    role."""
    from correlators.config import Config, load_config

    name = os.environ.get(constants.CONFIG_PARAMETER_ENV)
    config = load_config(_parameter_file(name)) if name else Config()
    site = dict(config.site)
    if topic := os.environ.get(constants.SNS_TOPIC_ENV):
        site.setdefault("sns_topic_arn", topic)
    if secret := os.environ.get(constants.SLACK_SECRET_ENV):
        site.setdefault("slack_webhook_secret_arn", secret)
    config.site = site
    if parameter := os.environ.get(constants.KILL_SWITCH_PARAMETER_ENV):
        config.guards.kill_switch_parameter = config.guards.kill_switch_parameter or parameter
    if role := os.environ.get(constants.MEMBER_ROLE_ENV):
        config.execution.assume_role_name = role
    if automation_role := os.environ.get(constants.AUTOMATION_ROLE_ENV):
        # The stack's parameter is the role its IAM lets the runner pass: it wins over the file's.
        config.execution.automation_role_arn = automation_role
    return config


def _parameter_file(name: str) -> Path:
    value = client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    folder = Path(tempfile.gettempdir()) / "cordon-ssm"
    path = folder / (name.strip("/").replace("/", "_") + ".yaml")
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(value, encoding="utf-8")
    return path


def enforcement_ceiling() -> Mode:
    """The most any playbook may do in this stack: a new install only plans until the SOC turns it up."""
    from cordon.playbooks.model import Mode

    return Mode(os.environ.get(constants.ENFORCEMENT_MODE_ENV, Mode.DRY_RUN.value))


@dataclass(frozen=True)
class Tables:
    state: str
    audit: str

    @classmethod
    def from_env(cls) -> Tables:
        return cls(state=env(constants.STATE_TABLE_ENV), audit=os.environ.get(constants.AUDIT_TABLE_ENV, ""))


def reset() -> None:
    """Forget everything built for this container (tests run several 'containers' in one process)."""
    for cached in (session, client, site_config):
        cached.cache_clear()
