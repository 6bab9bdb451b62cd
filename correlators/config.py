"""The site configuration (`cordon.yaml`): which S3 prefixes and resources are ML assets, guard lists, windows.

Every key is optional; an empty file is a valid configuration. Loading is strict: unknown keys and bad values
are errors that name the file and line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from correlators.errors import ConfigError
from correlators.model import Severity
from correlators.timespan import Timespan, check_seconds
from correlators.yamlsafe import load_yaml_mapping, locate

_ASSET_CLASS_NAME = re.compile(r"[a-z][a-z0-9_]*")
MAX_ASSET_GLOBS = 20_000
MAX_WRITER_GLOBS = 1_000
MAX_IMAGE_REGISTRIES = 1_000
# A registry host (ECR: 123456789012.dkr.ecr.us-east-1.amazonaws.com), optionally with a repository path; fnmatch
# globs allowed. No scheme, tag or digest: an image is allowed by where it comes from, not by its version.
_REGISTRY_GLOB = re.compile(r"[A-Za-z0-9*?.\-]+(?::[0-9*]+)?(?:/[A-Za-z0-9*?._\-/]+)?")
# Longest settings: state is kept for the longest window + incident window + lateness, so each is bounded.
_WINDOW_BOUNDS = {"lateness": 7 * 86400, "incident_window": 30 * 86400}

_MAX_CLOCK_SKEW_SECONDS = 86400


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GuardsConfig(_Strict):
    # ARN globs of principals playbooks must never change (break-glass identities).
    protected_principals: list[str] = Field(default_factory=list)
    # Cordon's own roles: the responder must never lock itself out.
    cordon_roles: list[str] = Field(
        default_factory=lambda: ["arn:aws*:iam::*:role/cordon-*", "arn:aws*:iam::*:role/Cordon*"]  # every partition
    )
    max_actions_per_incident: int = Field(default=10, ge=0)
    max_actions_per_hour: int = Field(default=30, ge=0)
    kill_switch: bool = False  # true: plan and notify, change nothing (also CORDON_KILL_SWITCH=1)
    # In AWS: an SSM parameter whose value "on"/"true"/"1" stops every change, flipped without a deploy.
    kill_switch_parameter: str | None = None

    @field_validator("protected_principals", "cordon_roles")
    @classmethod
    def _arn_globs(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            if not glob.startswith("arn:"):
                raise ValueError(f"{glob!r} is not an ARN glob (expected 'arn:aws:iam::<account>:role/...')")
        return globs


class CorrelationConfig(_Strict):
    lateness: Timespan = Timespan("15m")  # how late (in event time) an event may arrive and still be in order
    max_state_entries: int = Field(default=200_000, ge=100)  # signals kept; stalest evicted first beyond it
    # A signal that no correlation rule raised opens an incident on its own from this severity up
    # (findings, alarms, standalone Sigma rules). Never applied to GuardDuty AI Protection findings, which
    # GuardDuty rates Low by default (correlators.normalize.guardduty.is_ai_protection): they always open one.
    standalone_min_severity: Severity = Severity.MEDIUM
    # Signals this close in event time to an incident, sharing one of its identities, join it.
    incident_window: Timespan = Timespan("1h")
    # How far past the moment it is read an event's time may be (clocks ahead); beyond it the event is rejected,
    # so one event dated 2099 cannot move the watermark. At most 1d.
    max_clock_skew: Timespan = Timespan("15m")

    @field_validator("max_clock_skew")
    @classmethod
    def _skew_bounded(cls, value: Timespan) -> Timespan:
        check_seconds(value.seconds, value.spec, _MAX_CLOCK_SKEW_SECONDS)
        return value

    @field_validator("lateness", "incident_window", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        bound = _WINDOW_BOUNDS[str(info.field_name)]
        if isinstance(value, Timespan):
            check_seconds(value.seconds, value.spec, bound)
            return value
        return Timespan(value, maximum=bound)


# An IAM role ARN in any partition; a path is allowed (`role/service-role/name`).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
# SSM Automation waits: long enough for a containment runbook, well inside the runner's 5-minute timeout, which
# also covers the incident's other actions. What runs longer is recorded running and completed by its event.
MAX_AUTOMATION_WAIT_SECONDS = 4 * 60


class ExecutionConfig(_Strict):
    # Role assumed in the incident's account when it is not the caller's (cross-account containment).
    assume_role_name: str = "CordonResponderRole"
    default_region: str = "us-east-1"
    # The role SSM Automation runbooks run under (ssm.start-automation passes it as the runbook's
    # AutomationAssumeRole; the runner may pass no other). Unset: playbooks cannot run runbooks.
    automation_role_arn: str | None = None
    # How long ssm.start-automation waits for a runbook to end before recording it running.
    automation_wait: Timespan = Timespan("1m")

    @field_validator("automation_role_arn")
    @classmethod
    def _role_arn(cls, arn: str | None) -> str | None:
        if arn is not None and not _ROLE_ARN.fullmatch(arn):
            raise ValueError(f"{arn!r} is not an IAM role ARN (expected 'arn:aws:iam::<account>:role/<name>')")
        return arn

    @field_validator("automation_wait", mode="before")
    @classmethod
    def _wait_bounded(cls, value: Any) -> Any:
        if isinstance(value, Timespan):
            check_seconds(value.seconds, value.spec, MAX_AUTOMATION_WAIT_SECONDS)
            return value
        return Timespan(value, maximum=MAX_AUTOMATION_WAIT_SECONDS)

    @property
    def automation_account(self) -> str | None:
        """The account of the automation role: runbooks run there and nowhere else."""
        return self.automation_role_arn.split(":")[4] if self.automation_role_arn else None


class ApprovalConfig(_Strict):
    # Who may approve or refuse an action with the buttons of a Slack alert: Slack user ids (U..., W...) or user
    # group ids (S..., resolved through Slack's API with the bot token). Empty: nobody may (fail closed).
    slack_approvers: list[str] = Field(default_factory=list, max_length=1000)

    @field_validator("slack_approvers")
    @classmethod
    def _slack_ids(cls, ids: list[str]) -> list[str]:
        for slack_id in ids:
            if not re.fullmatch(r"[UWS][A-Z0-9]{2,30}", slack_id):
                raise ValueError(f"{slack_id!r} is not a Slack user id (U..., W...) or user group id (S...)")
        return ids


class Config(_Strict):
    # asset class -> URI globs: "s3://bucket/prefix/*" or ARN globs ("arn:aws:sagemaker:*:*:endpoint/fraud-*")
    assets: dict[str, list[str]] = Field(default_factory=dict)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    correlation: CorrelationConfig = Field(default_factory=CorrelationConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    rules: list[Path] = Field(default_factory=list)  # extra Sigma rule files or folders, relative to the config
    builtin_rules: bool = True
    playbooks: list[Path] = Field(default_factory=list)  # extra playbook files or folders, relative to the config
    builtin_playbooks: bool = True
    # Site values playbooks bind with JMESPath as `site.<key>` (an SNS topic, a WAF IP set, asset buckets).
    site: dict[str, Any] = Field(default_factory=dict)
    # asset class -> IAM principal ARN globs that may write it (the ETL role, the training pipeline's role). Any other
    # principal writing there is an undeclared writer (`cordon.declared_writer: false`); a class not listed here
    # is not judged. Roles, not sessions: a session resolves to its role.
    asset_writers: dict[str, list[str]] = Field(default_factory=dict)
    # Container registries models and model packages may pull from (ECR hosts, optionally /repository, globs). An
    # image elsewhere is `cordon.image_allowed: false`; with none listed, images are not judged.
    allowed_image_registries: list[str] = Field(default_factory=list)
    _classes: list[str] = PrivateAttr(default_factory=list)
    _uri_index: GlobIndex = PrivateAttr()
    _bucket_index: GlobIndex = PrivateAttr()
    _writer_index: dict[str, GlobIndex] = PrivateAttr(default_factory=dict)

    @field_validator("assets")
    @classmethod
    def _asset_globs(cls, assets: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, globs in assets.items():
            if not _ASSET_CLASS_NAME.fullmatch(name):
                raise ValueError(f"asset class {name!r} must be lower_snake_case")
            for glob in globs:
                if not glob.startswith(("s3://", "arn:")):
                    raise ValueError(f"asset glob {glob!r} must start with s3:// or arn:")
        total = sum(len(globs) for globs in assets.values())
        if total > MAX_ASSET_GLOBS:
            raise ValueError(f"{total:,} asset globs: at most {MAX_ASSET_GLOBS:,} (use prefixes: s3://bucket/dir/*)")
        return assets

    @field_validator("asset_writers")
    @classmethod
    def _writer_globs(cls, writers: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        assets = info.data.get("assets") or {}  # validated before: it is declared first
        for name, globs in writers.items():
            if name not in assets:
                known = ", ".join(assets) or "none: define assets first"
                raise ValueError(f"asset class {name!r} is not in assets ({known})")
            for glob in globs:
                if not glob.startswith("arn:") or ":iam::" not in glob:
                    raise ValueError(
                        f"{glob!r} is not an IAM principal ARN glob (expected 'arn:aws:iam::<account>:role/<name>' "
                        "or ':user/<name>'; a session resolves to its role)"
                    )
        total = sum(len(globs) for globs in writers.values())
        if total > MAX_WRITER_GLOBS:
            raise ValueError(f"{total:,} writer globs: at most {MAX_WRITER_GLOBS:,} (use globs: role/etl-*)")
        return writers

    @field_validator("allowed_image_registries")
    @classmethod
    def _registry_globs(cls, registries: list[str]) -> list[str]:
        for glob in registries:
            if not _REGISTRY_GLOB.fullmatch(glob):
                raise ValueError(
                    f"{glob!r} is not a registry (expected a host such as "
                    "'123456789012.dkr.ecr.us-east-1.amazonaws.com', optionally with '/repository'; globs allowed; "
                    "no scheme, tag or digest)"
                )
        if len(registries) > MAX_IMAGE_REGISTRIES:
            raise ValueError(f"{len(registries):,} registries: at most {MAX_IMAGE_REGISTRIES:,} (use globs)")
        return registries

    @model_validator(mode="after")
    def _asset_index(self) -> Config:
        names = list(self.assets)
        self._classes = names
        self._uri_index = GlobIndex((rank, glob) for rank, name in enumerate(names) for glob in self.assets[name])
        self._bucket_index = GlobIndex(
            (rank, glob[len("s3://") :].split("/", 1)[0])
            for rank, name in enumerate(names)
            for glob in self.assets[name]
            if glob.startswith("s3://")
        )
        self._writer_index = {name: GlobIndex((0, g) for g in globs) for name, globs in self.asset_writers.items()}
        return self

    def asset_class(self, uri: str) -> str | None:
        """The first asset class whose glob matches `uri` (an s3:// URI or an ARN), else None."""
        private = self._private_attributes()
        rank = private["_uri_index"].first(uri)
        return None if rank is None else private["_classes"][rank]

    def bucket_asset_class(self, bucket: str) -> str | None:
        """The first asset class with an s3:// glob whose bucket part matches `bucket` (a bucket name)."""
        private = self._private_attributes()
        rank = private["_bucket_index"].first(bucket)
        return None if rank is None else private["_classes"][rank]

    def declared_writer(self, asset_class: str, principal: str) -> bool | None:
        """Whether `principal` (an IAM ARN) is a declared writer of `asset_class`; None when the class declares none."""
        index = self._private_attributes()["_writer_index"].get(asset_class)
        return None if index is None else index.first(principal) is not None

    def _private_attributes(self) -> dict[str, Any]:
        # The indexes above, read from the dict pydantic keeps them in: `self._uri_index` goes through
        # BaseModel.__getattr__, 3 us a read, and every resource the enricher has not seen before takes two to four.
        private = self.__pydantic_private__
        assert private is not None  # set by validation, as every PrivateAttr has a default or is set in _asset_index
        return private

    def image_allowed(self, image: str) -> bool | None:
        """Whether a container image comes from an allowed registry; None when no registry is listed."""
        if not self.allowed_image_registries:
            return None
        host, repository = image_origin(image)
        return any(
            fnmatch.fnmatchcase(f"{host}/{repository}" if "/" in glob else host, glob)
            for glob in self.allowed_image_registries
        )


def image_origin(image: str) -> tuple[str, str]:
    """(registry host, repository) of an image reference, without tag or digest. Docker's rules: a first path part
    with a dot or a colon (or `localhost`) is a host; otherwise the image is on Docker Hub (`docker.io`).

    >>> image_origin("123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud/scorer:v7")
    ('123456789012.dkr.ecr.us-east-1.amazonaws.com', 'fraud/scorer')
    >>> image_origin("python:3.11")
    ('docker.io', 'python')
    """
    reference = image.split("@", 1)[0]
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "docker.io", reference
    name, _, tag = path.rpartition(":")
    repository = name if name and "/" not in tag else path
    return host.lower(), repository


class GlobIndex:
    """Ranked globs (`fnmatch` syntax, case-sensitive); `first(text)` is the lowest rank of a glob matching it.

    Matching does not scan every glob: each is filed under its literal prefix (what comes before its first `*`,
    `?` or `[`), and a text looks up only its own prefixes, one dictionary read per distinct prefix length. The
    globs of one prefix are tried in rank order; where one prefix holds many (`arn:aws:*` ...), they are compiled
    into one regular expression per rank (fnmatch's translation, which does not backtrack catastrophically).
    """

    _COMBINE_FROM = 8  # globs of one prefix and rank beyond which one compiled expression replaces fnmatch calls

    def __init__(self, globs: Iterable[tuple[int, str]]) -> None:
        grouped: dict[str, dict[int, list[str]]] = {}
        for rank, glob in globs:
            cut = min((i for i in (glob.find(c) for c in "*?[") if i >= 0), default=len(glob))
            grouped.setdefault(glob[:cut], {}).setdefault(rank, []).append(glob)
        self._by_prefix = {prefix: sorted(ranks.items()) for prefix, ranks in grouped.items()}
        self._lengths = sorted({len(prefix) for prefix in grouped})
        self._compiled: dict[tuple[str, int], re.Pattern[str]] = {}

    def first(self, text: str) -> int | None:
        best: int | None = None
        for length in self._lengths:
            if length > len(text):
                break
            prefix = text[:length]
            for rank, globs in self._by_prefix.get(prefix, ()):
                if best is not None and rank >= best:
                    break
                if self._matches(prefix, rank, globs, text):
                    best = rank
                    break
        return best

    def _matches(self, prefix: str, rank: int, globs: list[str], text: str) -> bool:
        if len(globs) < self._COMBINE_FROM:
            return any(fnmatch.fnmatchcase(text, glob) for glob in globs)
        pattern = self._compiled.get((prefix, rank))
        if pattern is None:
            pattern = re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs))
            self._compiled[(prefix, rank)] = pattern
        return pattern.match(text) is not None


def load_config(path: Path | None) -> Config:
    """Load and validate `cordon.yaml`; with no path, the defaults. Raises the first error."""
    config, errors = check_config(path)
    if errors:
        raise errors[0]
    assert config is not None
    return config


def check_config(path: Path | None) -> tuple[Config | None, list[ConfigError]]:
    """The config and every error in it (lint mode): each names the file, the line and the key."""
    if path is None:
        return Config(), []
    try:
        document, lines = load_yaml_mapping(path, ConfigError)
    except ConfigError as error:
        return None, [error]
    try:
        config = Config.model_validate(document)
    except ValidationError as error:
        return None, [
            ConfigError(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg'].removeprefix('Value error, ')}",
                where=locate(path, lines, tuple(e["loc"]), document),
            )
            for e in error.errors()
        ]
    config.rules = [p if p.is_absolute() else (path.parent / p) for p in config.rules]
    config.playbooks = [p if p.is_absolute() else (path.parent / p) for p in config.playbooks]
    return config, []
