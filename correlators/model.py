"""Normalized events, entities and signals: the vocabulary every stage of the core speaks.

A parser turns one raw AWS event (CloudTrail record, GuardDuty finding, ASFF finding, CloudWatch alarm change,
AWS Config compliance change) into a `NormalizedEvent`. Detection turns events into `Signal`s; correlation groups
signals into incidents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# Set in ProductFields of the findings Cordon itself imports into Security Hub, so they never re-enter the
# correlator (the EventBridge rule filters them; replayed exports are dropped by the normalizer).
CORDON_GENERATED_MARKER = "cordon/generated"


class EventSource(StrEnum):
    CLOUDTRAIL = "cloudtrail"
    GUARDDUTY = "guardduty"
    SECURITYHUB = "securityhub"
    CLOUDWATCH = "cloudwatch"
    CONFIG = "config"  # AWS Config rule compliance changes


class EntityType(StrEnum):
    """Kinds of graph nodes. Identity kinds link signals into one incident; asset kinds only describe them."""

    PRINCIPAL = "principal"  # IAM user / role / root ARN (a session resolves to its role)
    ACCESS_KEY = "access_key"
    SESSION = "session"  # assumed-role session ARN
    SOURCE_IP = "source_ip"
    ACCOUNT = "account"
    INSTANCE = "instance"  # EC2 instance id
    BUCKET = "bucket"
    OBJECT = "object"  # s3://bucket/key
    SAGEMAKER_ENDPOINT = "sagemaker_endpoint"
    SAGEMAKER_MODEL = "sagemaker_model"
    SAGEMAKER_NOTEBOOK = "sagemaker_notebook"
    SAGEMAKER_TRAINING_JOB = "sagemaker_training_job"
    SAGEMAKER_MODEL_PACKAGE = "sagemaker_model_package"
    API = "api"  # API Gateway API id (REST) or name (from CloudWatch dimensions)
    API_KEY = "api_key"


# Entities that say *who* acted. Signals sharing one of these belong together (DESIGN principle 3);
# assets and IPs are shared by many principals and would glue strangers together.
IDENTITY_TYPES = frozenset({EntityType.PRINCIPAL, EntityType.ACCESS_KEY, EntityType.SESSION, EntityType.INSTANCE})


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: EntityType
    id: str

    @property
    def key(self) -> str:
        return f"{self.type}:{self.id}"  # a StrEnum formats as its value, without the slower `.value` look-up

    def __hash__(self) -> int:
        # Equal entities (same type and id) hash alike, as pydantic's frozen-model hash does, in one C call:
        # incident upkeep hashes every entity of an incident for every signal it counts.
        return hash((self.type, self.id))


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = list(Severity)


class Actor(BaseModel):
    """Who made the call, resolved to a stable principal (DESIGN principle 3). Frozen: the events of one identity
    share one Actor."""

    model_config = ConfigDict(frozen=True)

    principal: str | None = None  # ARN of the IAM user, the role (not the session), or the root
    principal_type: str | None = None  # CloudTrail userIdentity.type: IAMUser, AssumedRole, Root, AWSService ...
    user_name: str | None = None
    access_key: str | None = None
    session: str | None = None  # assumed-role session ARN
    session_name: str | None = None
    instance: str | None = None  # EC2 instance behind an instance-profile session
    account: str | None = None
    invoked_by: str | None = None  # AWS service that called on the principal's behalf


class Resource(BaseModel):
    """A resource the event names, typed by the entity kind it maps to. Frozen: events naming the same resource
    share one."""

    model_config = ConfigDict(frozen=True)

    type: EntityType
    id: str  # ARN where one exists; s3://bucket/key for objects; instance id; access key id
    asset_class: str | None = None  # set by enrichment: training_data, model_artifacts, ...


class Finding(BaseModel):
    type: str  # GuardDuty type, or ASFF Types[0] / GeneratorId
    title: str | None = None
    product: str  # "guardduty", "securityhub/<ProductName>"
    severity: Severity
    severity_score: float | None = None
    status: str | None = None  # ASFF Workflow.Status / RecordState, GuardDuty archived
    requested: bool = False  # an analyst sent it to Cordon with the Security Hub custom action


class Alarm(BaseModel):
    name: str
    state: str  # ALARM, OK, INSUFFICIENT_DATA
    previous_state: str | None = None
    reason: str | None = None
    namespace: str | None = None
    metric: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)


class Compliance(BaseModel):
    """An AWS Config rule's verdict on one resource, and the verdict it replaces (None on a first evaluation)."""

    rule: str  # the Config rule's name as the account spells it (conformance packs and Security Hub add affixes)
    compliance: str  # COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, INSUFFICIENT_DATA
    previous_compliance: str | None = None
    resource_type: str  # AWS::S3::Bucket, AWS::SageMaker::NotebookInstance, ...
    resource_id: str  # as Config names it: a bucket or notebook name, an IAM unique id (AROA...), an ARN
    annotation: str | None = None


class NormalizedEvent(BaseModel):
    """One security event, whatever its source. `raw` keeps the original for Sigma field lookups."""

    event_id: str
    time: datetime  # event time, timezone-aware UTC
    source: EventSource
    account: str | None = None
    region: str | None = None
    action: str | None = None  # "s3:GetObject"; for findings, the API GuardDuty saw if any
    outcome: str = "success"  # success | failure
    error_code: str | None = None
    actor: Actor | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    resources: list[Resource] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)  # container images a SageMaker model or package names
    # Set by enrichment from the site config (None: not judged, the config says nothing about it):
    declared_writer: bool | None = None  # the principal is a declared writer of every asset class it touched
    image_allowed: bool | None = None  # every image it names comes from an allowed registry
    finding: Finding | None = None
    alarm: Alarm | None = None
    compliance: Compliance | None = None
    raw: dict[str, Any] = Field(repr=False)  # CloudTrail record, GuardDuty/ASFF finding, alarm or Config `detail`
    origin: str = ""  # "file:line" it was read from

    @property
    def asset_classes(self) -> list[str]:
        return asset_classes(self.resources)

    def entities(self) -> list[Entity]:
        """Every entity the event names, de-duplicated, identities first."""
        return list(self._entity_list)

    @cached_property
    def _entity_list(self) -> tuple[Entity, ...]:
        # Computed once: correlation asks for every stored signal's entities. Events are not changed after
        # normalization and enrichment, which set actor and resources before anything reads this.
        return tuple(self._collect_entities())

    def _collect_entities(self) -> list[Entity]:
        found: dict[tuple[EntityType, str], Entity] = {}

        def add(kind: EntityType, value: str | None) -> None:
            if value and (kind, value) not in found:
                found[kind, value] = _entity(kind, value)

        if self.actor:
            add(EntityType.PRINCIPAL, self.actor.principal)
            add(EntityType.ACCESS_KEY, self.actor.access_key)
            add(EntityType.SESSION, self.actor.session)
            add(EntityType.INSTANCE, self.actor.instance)
        add(EntityType.SOURCE_IP, self.source_ip)
        add(EntityType.ACCOUNT, self.account)
        for resource in self.resources:
            add(resource.type, resource.id)
        return list(found.values())


def asset_classes(resources: list[Resource]) -> list[str]:
    """The asset classes of these resources, sorted, each once."""
    if not resources:
        return []  # most calls name no resource, and the rule index asks this of every CloudTrail event
    return sorted({r.asset_class for r in resources if r.asset_class})


def time_text(time: datetime) -> str:
    """`time.isoformat()`, as the keys of deliveries and signals spell an event's time. A UTC time's text is
    remembered: spelling one costs 0.6 us, most of it the offset, and events share their second (in the bench's
    real records, four a time). Any other zone is spelled afresh: equal instants in two zones are equal datetimes,
    and a remembered text would give one the other's offset."""
    global _last_text
    last_time, last_text = _last_text
    if time is last_time:  # the events of one second share one time object (`fields.parse_time`): no hashing
        return last_text
    if time.tzinfo is not UTC:
        return time.isoformat()
    text = _UTC_TEXTS.get(time)
    if text is None:
        if len(_UTC_TEXTS) >= _UTC_TEXTS_KEPT:
            _UTC_TEXTS.clear()  # the stream has moved on: its times do not come back
        text = _UTC_TEXTS[time] = time.isoformat()
    _last_text = (time, text)  # one tuple, replaced whole: a thread reads a time with its own text
    return text


# A dict, not lru_cache: a hit is one look-up, on every event. Threads may race on it: each gets a right text.
_UTC_TEXTS: dict[datetime, str] = {}
_UTC_TEXTS_KEPT = 4096
_last_text: tuple[datetime | None, str] = (None, "")


@lru_cache(maxsize=16384)
def _entity(kind: EntityType, value: str) -> Entity:
    """One shared Entity per kind and id (they are frozen): identities and assets recur event after event."""
    return Entity(type=kind, id=value)


# --- construction without validation, for values that are valid already ---

_Model = TypeVar("_Model", bound=BaseModel)


def trusted(model: type[_Model], /, **values: Any) -> _Model:
    """`model(**values)` without validating `values` again: for the normalizer's hot path, whose values are built
    from input pydantic validated at the edge (`CloudTrailRecord`, ...) and are already of the field types.

    Fields not given take their defaults, a fresh one from a default factory; `model_fields_set` is the names
    given, as with validation. Values are kept as they are, not copied (validation copies lists and dicts).
    Pydantic's `model_construct` does the same, but resolving aliases and deep-copying defaults on every call
    makes it slower than validating. A missing required field or an unknown name raises TypeError.
    tests/unit/test_normalize_trusted.py proves every event normalized from the samples equal, value and type,
    to its validated construction.
    """
    shape = _SHAPES.get(model) or _shape_of(model)
    fields = {**shape.template, **values}
    if len(fields) > len(shape.template) or not shape.required <= values.keys():
        missing = ", ".join(sorted(shape.required - values.keys()))
        unknown = ", ".join(sorted(values.keys() - shape.template.keys()))
        raise TypeError(f"{model.__name__}: missing {missing or '-'}; unknown {unknown or '-'}")
    for name, factory in shape.factories:
        if name not in values:
            fields[name] = factory()
    return _instance(model, fields, set(values))


class TrustedFields(Generic[_Model]):
    """`trusted` prepared once for one model and the fields a call site always gives, for the hottest site (one
    CloudTrail record, one event): the caller builds the instance's `__dict__` itself, every field in declaration
    order, the defaults of the fields not given included, and nothing is merged, copied or looked up per call.

        CLOUDTRAIL_EVENT = TrustedFields(NormalizedEvent, given=("event_id", ...))
        event = CLOUDTRAIL_EVENT.build({"event_id": ..., ..., "origin": ...})

    `build` checks only that the dict has as many keys as the model has fields (a forgotten or extra one); which
    keys they are, and their order, are checked by tests/unit/test_normalize_trusted.py on every sample event, as
    are the values. `model_fields_set` is `given`, as it would be after validating those names."""

    def __init__(self, model: type[_Model], given: Iterable[str]) -> None:
        shape = _SHAPES.get(model) or _shape_of(model)
        names = frozenset(given)
        unknown, missing = names - shape.template.keys(), shape.required - names
        unmade = [name for name, _ in shape.factories if name not in names]
        if unknown or missing or unmade:
            # A default factory makes a fresh value per instance: the caller has to make it, so has to give it.
            listed = [", ".join(group) or "-" for group in (sorted(unknown), sorted(missing), unmade)]
            raise TypeError(
                f"{model.__name__}: unknown {listed[0]}; missing {listed[1]}; "
                f"defaults made by a factory, to be given {listed[2]}"
            )
        self.model = model
        self.names = tuple(shape.template)  # every field, in declaration order: the keys `build` takes
        self._given = names
        self._size = len(shape.template)

    def build(self, fields: dict[str, Any]) -> _Model:
        """The model instance whose `__dict__` is `fields` (kept, not copied)."""
        if len(fields) != self._size:
            raise TypeError(f"{self.model.__name__}: expected the {self._size} fields {', '.join(self.names)}")
        return _instance(self.model, fields, set(self._given))


# The slots every pydantic model has, set through their descriptors: a third cheaper than object.__setattr__, which
# looks each one up on the model's type first.
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def _instance(model: type[_Model], fields: dict[str, Any], fields_set: set[str]) -> _Model:
    instance = model.__new__(model)
    _SET_DICT(instance, fields)
    _SET_FIELDS_SET(instance, fields_set)
    _SET_EXTRA(instance, None)
    _SET_PRIVATE(instance, None)
    return instance


@dataclass(frozen=True)
class _Shape:
    template: dict[str, Any]  # every field in declaration order (the order of `__dict__` after validation)
    required: frozenset[str]
    factories: tuple[tuple[str, Callable[[], Any]], ...]


_SHAPES: dict[type[BaseModel], _Shape] = {}


def _shape_of(model: type[BaseModel]) -> _Shape:
    if model.__pydantic_post_init__ or model.__private_attributes__ or model.model_config.get("extra") == "allow":
        raise TypeError(f"{model.__name__}: trusted() builds plain models only (no post-init, private or extra)")
    template: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, field in model.model_fields.items():
        template[name] = None if field.is_required() or field.default_factory else field.default
        hash(template[name])  # a shared default must be immutable: validation would deep-copy a mutable one
        if field.default_factory is not None:
            factories.append((name, field.default_factory))  # type: ignore[arg-type]
    required = frozenset(name for name, field in model.model_fields.items() if field.is_required())
    _SHAPES[model] = _Shape(template, required, tuple(factories))
    return _SHAPES[model]
