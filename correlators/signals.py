"""Signals (one detection on one event) and incidents (connected signals and the entities they name)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field

from correlators.model import IDENTITY_TYPES, Entity, EntityType, NormalizedEvent, Severity, TrustedFields, time_text

# Shared by everyone: never a reason to put two signals in one incident.
NEVER_LINKING = frozenset({EntityType.SOURCE_IP, EntityType.ACCOUNT, EntityType.OBJECT, EntityType.BUCKET})

_Value = TypeVar("_Value")


class computed_once(Generic[_Value]):  # lower case: a decorator, like the cached_property it replaces
    """`functools.cached_property` without its lock: Python 3.11's takes one on every first read, and the pipeline
    makes six first reads on every signal. The first read stores the value in the instance's `__dict__`, where
    every later read finds it without calling this. Two threads reading one new signal at once may both compute
    the value: it is a pure function of a signal that never changes, so either result is the same."""

    def __init__(self, compute: Callable[[Any], _Value]) -> None:
        self._compute = compute
        self._name = compute.__name__

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> computed_once[_Value]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> _Value: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> computed_once[_Value] | _Value:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._compute(instance)
        return value


class Signal(BaseModel):
    """A rule matched an event, or a finding or alarm arrived: one node of the incident graph."""

    model_config = ConfigDict(ignored_types=(computed_once,))

    rule: str  # Sigma rule name (or id), or the implicit source rule: "guardduty", "securityhub", "cloudwatch-alarm"
    title: str
    severity: Severity
    # Opens an incident by itself (from `standalone_min_severity` up). False for detection rules that only feed
    # correlation rules, as Sigma's `generate: false` says.
    standalone: bool
    event: NormalizedEvent

    # Cached: correlation sorts and compares signals by these many times per event. A signal is never changed.
    @computed_once
    def id(self) -> str:
        return f"{self.rule}|{self.event.event_id}|{time_text(self.event.time)}"

    @property
    def time(self) -> datetime:
        return self.event.time

    @computed_once
    def sort_key(self) -> tuple[datetime, str]:
        return (self.event.time, self.id)

    @computed_once
    def identities(self) -> tuple[Entity, ...]:
        """The entities that say who acted (a principal that is an AWS service name is not an identity)."""
        return tuple(
            e
            for e in self.event.entities()
            if e.type in IDENTITY_TYPES and not (e.type == "principal" and not e.id.startswith("arn:"))
        )

    @computed_once
    def linking(self) -> tuple[Entity, ...]:
        """The nodes that tie this signal to an incident: its identities, or, when it names none (an alarm, a
        finding about a resource), the resources it is about. Assets and IPs are never linking nodes: a bucket
        every analyst reads, or a shared NAT address, would glue strangers into the attacker's incident."""
        if self.identities:
            return self.identities
        return tuple(e for e in self.event.entities() if e.type not in NEVER_LINKING)

    @computed_once
    def linking_keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.linking)

    @computed_once
    def field_cache(self) -> dict[str, list[str]]:
        """Correlation's group-by and value_count field values of this signal, by field (`correlate.field_values`)."""
        return {}


class SignalRef(BaseModel):
    """What an incident keeps of each of its signals."""

    rule: str
    event_id: str
    time: datetime
    source: str
    what: str = ""  # the API call, finding type or alarm, for people reading a timeline
    origin: str = ""
    # Who acted (the resolved IAM principal), so a playbook can act on the principal of one rule's signals only:
    # the writer that poisoned a prefix, not the pipeline that trained on it.
    principal: str | None = None
    # The object version an S3 write created (`s3://bucket/key?versionId=V`, from CloudTrail's x-amz-version-id):
    # S3 does not record who wrote a version, the incident does. Restoring training data skips these.
    object_version: str | None = None

    @classmethod
    def of(cls, signal: Signal) -> SignalRef:
        event = signal.event
        what = (event.finding.type if event.finding else event.action) or ""
        if event.alarm is not None:
            what = f"alarm {event.alarm.name}"
        if event.compliance is not None:
            what = f"config {event.compliance.rule}: {event.compliance.compliance}"
        # Built without validating again (`TrustedFields`): every value is of its field's type already, the source
        # given as the plain string validation would make of it. One is built for every signal an incident counts.
        return _SIGNAL_REF.build(
            {
                "rule": signal.rule,
                "event_id": event.event_id,
                "time": event.time,
                "source": event.source.value,
                "what": what,
                "origin": event.origin,
                "principal": event.actor.principal if event.actor else None,
                "object_version": written_version(event),
            }
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.event_id)

    def order(self) -> tuple[datetime, str, str]:
        return (self.time, self.rule, self.event_id)


_SIGNAL_REF = TrustedFields(SignalRef, given=SignalRef.model_fields)

_VERSION_WRITES = frozenset({"s3:PutObject", "s3:CopyObject", "s3:CompleteMultipartUpload", "s3:DeleteObject"})


def written_version(event: NormalizedEvent) -> str | None:
    """`s3://bucket/key?versionId=V` for a successful S3 write on a versioned bucket (a delete's marker too), else
    None. CloudTrail names the version in the answer (`responseElements.x-amz-version-id`) and the object in the
    request; an unversioned bucket's answer has no version id."""
    if event.action not in _VERSION_WRITES or event.outcome != "success":
        return None
    answer, request = event.raw.get("responseElements"), event.raw.get("requestParameters")
    if not isinstance(answer, dict) or not isinstance(request, dict):
        return None
    version, bucket, key = answer.get("x-amz-version-id"), request.get("bucketName"), request.get("key")
    if not (
        isinstance(version, str) and isinstance(bucket, str) and isinstance(key, str) and version and bucket and key
    ):
        return None
    return f"s3://{bucket}/{key}?versionId={version}"


# Past these caps an incident keeps counts, not every reference: its item stays far below DynamoDB's 400 KB
# (and below 64 KB) however many signals join it.
SIGNALS_KEPT_AT_EACH_END = 50
DESCRIPTIVE_CAP = 100


class RuleHit(BaseModel):
    """A rule that raised the incident, with the severity and title it raised it with."""

    severity: Severity
    title: str


class Incident(BaseModel):
    """Connected signals and the entities they name, bounded, and the same whatever order its signals arrived in.

    Order independence is what lets parallel, at-least-once, out-of-order delivery give the incidents of one
    sorted pass: the severity is the highest any rule raised; the title is the most severe rule's (ties: rule
    name); `rules` is sorted; `signals` holds the earliest and the latest `SIGNALS_KEPT_AT_EACH_END` signals and
    `signal_count`/`rule_counts` count all of them; the id comes from the incident's origin, its earliest
    raising signal.
    """

    id: str
    title: str
    severity: Severity
    first_seen: datetime
    last_seen: datetime
    # The raising signals' span. Context (signals that raised nothing) joins within `incident_window` of it but
    # never widens it, so what joins does not depend on what arrived first.
    core_first: datetime
    core_last: datetime
    # The earliest raising signal (time, signal id) and the rule it raised: decides the id and the merge survivor.
    origin: tuple[datetime, str, str]
    raised_by: dict[str, RuleHit] = Field(default_factory=dict)
    entities: list[Entity] = Field(default_factory=list)
    signals: list[SignalRef] = Field(default_factory=list)
    signal_count: int = 0
    rule_counts: dict[str, int] = Field(default_factory=dict)  # signals per rule, all of them
    # Entity keys that tie signals to this incident (identities; a correlation's group entity; the resource of
    # an alarm that names no identity). The other entities only describe it.
    links: list[str] = Field(default_factory=list)
    # Per link, the event-time range whose signals were already pulled in as context.
    covered: dict[str, tuple[datetime, datetime]] = Field(default_factory=dict)
    merged_into: str | None = None  # set when a later signal proved two incidents one; the survivor keeps its id
    version: int = 0  # bumped by every commit; the store's condition for the next one

    @property
    def rules(self) -> list[str]:
        return sorted(self.raised_by)

    def working_copy(self) -> Incident:
        """A copy whose changes do not reach this one: its containers are new, their items (frozen models and
        immutable values) are shared. Much cheaper than a deep copy or a JSON round trip; stores hand one out on
        every read and take one on every commit, so the copy is built as pydantic's `__copy__` builds one (an
        Incident has no extra or private values), its containers replaced in its new field dict before it is set:
        a quarter cheaper than `__copy__` and then replacing them, half of `model_copy(update=...)`."""
        fields = self.__dict__.copy()
        for name in _CONTAINER_FIELDS:
            fields[name] = fields[name].copy()
        copied = type(self).__new__(type(self))
        _set_slot(copied, "__dict__", fields)
        _set_slot(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        _set_slot(copied, "__pydantic_extra__", None)
        _set_slot(copied, "__pydantic_private__", None)
        return copied

    def add_signal(self, signal: Signal) -> None:
        """Count one signal (the caller made sure it is not counted yet) and keep its reference if it is among
        the earliest or the latest: O(cap), whatever the incident's size."""
        self._add_ref(SignalRef.of(signal))
        self._add_entities(signal.event.entities())

    def _add_ref(self, ref: SignalRef) -> None:
        self.signal_count += 1
        self.rule_counts[ref.rule] = self.rule_counts.get(ref.rule, 0) + 1
        # Set only when moved: an assignment goes through pydantic's __setattr__, and most signals move neither.
        if ref.time < self.first_seen:
            self.first_seen = ref.time
        if ref.time > self.last_seen:
            self.last_seen = ref.time
        signals = self.signals
        if not signals or ref.order() >= signals[-1].order():
            signals.append(ref)  # the latest yet, as most are: where `insort` would put it, without its search
        else:
            bisect.insort(signals, ref, key=SignalRef.order)
        cap = SIGNALS_KEPT_AT_EACH_END
        if len(signals) > 2 * cap:
            # Kept: the `cap` earliest and the `cap` latest of all signals. The one dropped is the new middle.
            del signals[cap]

    def _add_entities(self, entities: Iterable[Entity]) -> None:
        # Kept sorted, identities first: every identity is kept (they are few and they are what playbooks act
        # on); assets and IPs past the cap are dropped from the end, the same ones whatever the arrival order.
        # The order key is unique per entity (type and id), so one binary search both finds a known entity and
        # places a new one: O(log n) per entity, where hashing the whole list cost O(n) for every signal. A
        # repeated entity in `entities` finds itself placed already.
        # Before the search, the very objects kept are passed over: entities are shared (`model._entity`), so a
        # signal's are mostly the incident's own objects, and the set of their ids costs a C loop where the
        # search costs a call of `_entity_order` per step. It only ever holds ids of entities in the list.
        kept = set(map(id, self.entities))
        for entity in entities:
            if id(entity) in kept:
                continue
            order = _entity_order(entity)
            at = bisect.bisect_left(self.entities, order, key=_entity_order)
            if at < len(self.entities) and _entity_order(self.entities[at]) == order:
                continue
            self.entities.insert(at, entity)
            if (
                entity.type not in IDENTITY_TYPES
                and len(self.entities) > DESCRIPTIVE_CAP  # else within the cap whatever the identities
                and len(self.entities) > self._identity_count() + DESCRIPTIVE_CAP
            ):
                kept.discard(id(self.entities.pop()))

    def _identity_count(self) -> int:
        # Identities sort first: they end where the first non-identity would be placed.
        return bisect.bisect_left(self.entities, (1, "", ""), key=_entity_order)

    def raise_by(self, rule: str, severity: Severity, title: str) -> None:
        hit = self.raised_by.get(rule)
        if hit is not None and severity.rank <= hit.severity.rank:
            return  # no rule's hit changed: the severity and title the hits gave stand
        self.raised_by[rule] = RuleHit(severity=severity, title=title)
        top = max(self.raised_by.items(), key=lambda item: (item[1].severity.rank, _reverse(item[0])))
        self.severity = top[1].severity
        self.title = top[1].title

    def absorb(self, other: Incident) -> None:
        """Take in an incident proved to be this one (their signals are disjoint: a signal counts in one)."""
        for ref in other.signals:
            bisect.insort(self.signals, ref, key=SignalRef.order)
        cap = SIGNALS_KEPT_AT_EACH_END
        if len(self.signals) > 2 * cap:
            self.signals = self.signals[:cap] + self.signals[-cap:]
        self.signal_count += other.signal_count
        for rule, count in other.rule_counts.items():
            self.rule_counts[rule] = self.rule_counts.get(rule, 0) + count
        self._add_entities(other.entities)
        for rule, hit in other.raised_by.items():
            self.raise_by(rule, hit.severity, hit.title)
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.core_first = min(self.core_first, other.core_first)
        self.core_last = max(self.core_last, other.core_last)
        self.links = sorted(set(self.links) | set(other.links))
        self.covered = {}  # the union of two coverages need not be one range: pull everything once more


_set_slot = object.__setattr__
_CONTAINER_FIELDS = ("raised_by", "entities", "signals", "rule_counts", "links", "covered")


def _entity_order(entity: Entity) -> tuple[int, str, str]:
    # The type itself, not `.value`: a StrEnum member compares as its value, without the enum's property lookup
    # (this runs a few times per entity of every signal an incident counts).
    kind = entity.type
    return (0 if kind in IDENTITY_TYPES else 1, kind, entity.id)


def _reverse(name: str) -> tuple[int, ...]:
    # max() over (rank, this) prefers the alphabetically first rule among equally severe ones.
    return tuple(-ord(c) for c in name)
