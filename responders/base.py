"""The responder contract and registry.

A responder is one kind of change to AWS (deactivate a key, quarantine an endpoint, notify a channel). Each
declares its parameters (a pydantic model, extra keys forbidden), the IAM actions it calls (granted in
template.yaml and nothing more; a meta-test compares them), the entity types it may act on, and whether it can
be rolled back. It is handed a boto3 session, acts only on the target the runner gives it (an entity the incident
names), reads state before and after, and raises when its change did not take.

Example, a SOC-facing playbook step that uses one::

    - responder: iam.deactivate-access-key
      target: "entities[?type=='access_key'].id"
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from correlators.config import ExecutionConfig
from correlators.errors import CordonError

State = dict[str, Any]


class ResponderParams(BaseModel):
    """Base of every responder's parameter model: unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(ResponderParams):
    pass


@dataclass(frozen=True)
class Target:
    """What a responder acts on: one entity of the incident (or the incident itself, for notifications)."""

    type: str  # an EntityType value ("access_key", "principal", "sagemaker_endpoint", ...) or "incident"
    id: str
    account: str | None = None
    region: str | None = None


@dataclass
class ActionContext:
    """What the runner hands a responder for one action."""

    session: Any  # boto3.session.Session for the target's account and region (cross-account already assumed)
    incident: dict[str, Any]  # the incident as `cordon replay --output json` prints it
    endpoint_url: str | None = None  # e.g. a moto server; None for real AWS
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    settings: dict[str, Any] = field(default_factory=dict)  # site config values some responders need
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)  # the config's `execution:` settings
    action_id: str | None = None  # the audit record's id: what a long-running change is traced back by
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of the target's session (in `region` if given), made once per action, with botocore's
        retries configured (`responders.aws.CLIENT_CONFIG`)."""
        from responders.aws import CLIENT_CONFIG  # aws.py raises this module's errors

        made = self._clients.get((service, region))
        if made is None:
            made = self.session.client(
                service, region_name=region, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
            )
            self._clients[(service, region)] = made
        return made


class ResponderError(CordonError):
    """An action failed. `permanent` errors (AccessDenied, NotFound, a refused target) are not retried."""

    def __init__(
        self, message: str, *, permanent: bool = True, code: str | None = None, state: State | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.state = state  # what the responder read when it failed (a runbook's execution): the audit keeps it


class VerificationError(ResponderError):
    """The change was made but reading the state back shows it did not take."""


class Responder(ABC):
    name: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]  # every IAM action apply/read_state/rollback may call
    Params: ClassVar[type[ResponderParams]] = NoParams
    target_types: ClassVar[frozenset[str]]
    reversible: ClassVar[bool] = False

    @abstractmethod
    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        """The target's current state, with read-only calls only (dry runs show it; the audit keeps it)."""

    @abstractmethod
    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        """Make the change (idempotently), re-read, verify, and return the state after."""

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        """Whether `state` (read after `apply` failed) shows the change made: a 500 or a lost reply after AWS
        applied it. The runner then records the action applied, which is true. Default: cannot tell (False)."""
        return False

    def running(self, after: State) -> bool:
        """Whether the change `apply` started is still under way (a runbook that outlived the wait): the runner then
        records the action running, and the change's own completion event finishes the record. Default: no."""
        return False

    @classmethod
    def lint(cls, params: dict[str, Any], bind: dict[str, str]) -> list[tuple[tuple[str, ...], str]]:
        """Problems `cordon validate` can see in a step's literal and bound parameters before any incident, as
        (location under the step, message). Default: none beyond the schema."""
        return []

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        """Undo what `apply` did, restoring `before` (the state before the first attempt, as the runner recorded
        it: prefer it over anything `apply` noted in `after`, which a retry read after a partial first attempt);
        return the state after the rollback."""
        raise ResponderError(f"{self.name} cannot be rolled back")


_REGISTRY: dict[str, type[Responder]] = {}
R = TypeVar("R", bound=type[Responder])


def responder(name: str) -> Callable[[R], R]:
    """Register a responder class under `name`; a name registered twice is a programming error."""

    def register(cls: R) -> R:
        if name in _REGISTRY:
            raise ValueError(
                f"responder {name!r} registered twice ({_REGISTRY[name].__qualname__}, {cls.__qualname__})"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def registry() -> dict[str, type[Responder]]:
    """Every registered responder by name (importing `responders` registers the built-in ones)."""
    return dict(sorted(_REGISTRY.items()))


def get_responder(name: str) -> Responder:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ResponderError(f"unknown responder {name!r}, valid: {', '.join(sorted(_REGISTRY))}") from None
