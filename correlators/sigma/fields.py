"""What a Sigma rule sees of an event: Cordon's normalized fields and the raw record, by name.

Two namespaces, told apart by the `cordon.` prefix:

- `cordon.*` names read the normalized model, the same for every source (`cordon.principal` is the IAM user or
  role ARN whether the event is a CloudTrail call or a GuardDuty finding).
- Any other name is a dotted path into `event.raw` (the CloudTrail record, GuardDuty or ASFF finding, alarm
  `detail`), so public SigmaHQ rules (`eventSource`, `userIdentity.type`, `requestParameters.userName`) work
  unmodified. Lists along the path are flattened: `resources.ARN` yields every resource's ARN.

`FieldView.get` returns a list because a field can have several values; a rule matches a field when any value
matches. An empty list means the field is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from correlators.model import EntityType, NormalizedEvent
from correlators.normalize.event_selectors import trail_management_events

_ALARM_DIMENSION_PREFIX = "cordon.alarm.dimensions."
# Directories above an object kept as `cordon.object_prefixes`: bounds the correlation groups of one deep key.
MAX_PREFIX_DEPTH = 32


def _actor(attribute: str) -> Callable[[NormalizedEvent], Any]:
    return lambda event: getattr(event.actor, attribute) if event.actor else None


def _objects(event: NormalizedEvent) -> list[str]:
    """The objects (or prefixes) the event names, `s3://bucket/key` without a trailing slash."""
    return [r.id.rstrip("/") for r in event.resources if r.type is EntityType.OBJECT]


def _object_prefixes(event: NormalizedEvent) -> list[str]:
    """Each object and every directory above it, up to its bucket: what a reader of any of them would read.

    `s3://b/data/x.csv` -> `s3://b`, `s3://b/data`, `s3://b/data/x.csv`. A correlation that groups a write by these
    and a job by `cordon.object` (its input prefix) pairs the two when the input covers the written key at a `/`
    boundary; an input that stops mid-name (`s3://b/da`) does not pair.
    """
    found: dict[str, None] = {}
    for uri in _objects(event):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        parts = key.split("/") if key else []
        found[f"s3://{bucket}"] = None
        for depth in range(1, min(len(parts), MAX_PREFIX_DEPTH) + 1):
            found[f"s3://{bucket}/{'/'.join(parts[:depth])}"] = None
        found[uri] = None
    return list(found)


def _finding(attribute: str) -> Callable[[NormalizedEvent], Any]:
    return lambda event: getattr(event.finding, attribute) if event.finding else None


def _alarm(attribute: str) -> Callable[[NormalizedEvent], Any]:
    return lambda event: getattr(event.alarm, attribute) if event.alarm else None


def _compliance(attribute: str) -> Callable[[NormalizedEvent], Any]:
    return lambda event: getattr(event.compliance, attribute) if event.compliance else None


_CORDON_FIELDS: dict[str, Callable[[NormalizedEvent], Any]] = {
    "cordon.source": lambda event: event.source.value,
    "cordon.action": lambda event: event.action,
    "cordon.outcome": lambda event: event.outcome,
    "cordon.error_code": lambda event: event.error_code,
    "cordon.account": lambda event: event.account,
    "cordon.region": lambda event: event.region,
    "cordon.source_ip": lambda event: event.source_ip,
    "cordon.user_agent": lambda event: event.user_agent,
    "cordon.principal": _actor("principal"),
    "cordon.principal_type": _actor("principal_type"),
    "cordon.user_name": _actor("user_name"),
    "cordon.access_key": _actor("access_key"),
    "cordon.session": _actor("session"),
    "cordon.session_name": _actor("session_name"),
    "cordon.instance": _actor("instance"),
    "cordon.invoked_by": _actor("invoked_by"),
    "cordon.asset_class": lambda event: event.asset_classes,
    "cordon.resource_type": lambda event: [resource.type.value for resource in event.resources],
    "cordon.resource": lambda event: [resource.id for resource in event.resources],
    "cordon.trail.management_events": trail_management_events,
    "cordon.object": _objects,
    "cordon.object_prefixes": _object_prefixes,
    "cordon.images": lambda event: event.images,
    "cordon.declared_writer": lambda event: event.declared_writer,
    "cordon.image_allowed": lambda event: event.image_allowed,
    "cordon.finding.type": _finding("type"),
    "cordon.finding.title": _finding("title"),
    "cordon.finding.severity": lambda event: event.finding.severity.value if event.finding else None,
    "cordon.finding.severity_score": _finding("severity_score"),
    "cordon.finding.product": _finding("product"),
    "cordon.finding.status": _finding("status"),
    "cordon.alarm.name": _alarm("name"),
    "cordon.alarm.state": _alarm("state"),
    "cordon.alarm.previous_state": _alarm("previous_state"),
    "cordon.alarm.reason": _alarm("reason"),
    "cordon.alarm.namespace": _alarm("namespace"),
    "cordon.alarm.metric": _alarm("metric"),
    # AWS Config: the rule as the account names it (match managed rules with `|contains`: conformance packs and
    # Security Hub add prefixes and suffixes), its verdict, the verdict it replaces (absent on a first evaluation).
    "cordon.config.rule": _compliance("rule"),
    "cordon.config.compliance": _compliance("compliance"),
    "cordon.config.previous_compliance": _compliance("previous_compliance"),
    "cordon.config.resource_type": _compliance("resource_type"),
    "cordon.config.resource_id": _compliance("resource_id"),
    "cordon.config.annotation": _compliance("annotation"),
}

CORDON_FIELDS = frozenset(_CORDON_FIELDS) | {_ALARM_DIMENSION_PREFIX + "<Name>"}


def is_known_field(name: str) -> bool:
    """False only for a `cordon.` name Cordon doesn't define: a typo there would silently never match."""
    if not name.startswith("cordon."):
        return True
    return name in _CORDON_FIELDS or (name.startswith(_ALARM_DIMENSION_PREFIX) and name != _ALARM_DIMENSION_PREFIX)


class FieldView:
    """The fields of one event as Sigma rules look them up. Lookups are cached: every rule reads the same view."""

    __slots__ = ("_cache", "_event", "_scalars")

    def __init__(self, event: NormalizedEvent) -> None:
        self._event = event
        self._cache: dict[str, list[Any]] = {}
        self._scalars: list[Any] | None = None

    @property
    def event(self) -> NormalizedEvent:
        return self._event

    def get(self, name: str) -> list[Any]:
        """Every value of the field, raw (str, int, float, bool, None, dict); `[]` when it is absent."""
        values = self._cache.get(name)
        if values is None:
            values = self._cache[name] = self._lookup(name)
        return values

    def all_values(self) -> Iterator[Any]:
        """Every scalar anywhere in the raw event, for Sigma keyword search."""
        if self._scalars is None:
            self._scalars = []
            _collect_scalars(self._event.raw, self._scalars)
        return iter(self._scalars)

    def _lookup(self, name: str) -> list[Any]:
        if name.startswith("cordon."):
            return self._cordon(name)
        values: list[Any] = []
        _resolve(self._event.raw, name.split("."), values)
        return values

    def _cordon(self, name: str) -> list[Any]:
        getter = _CORDON_FIELDS.get(name)
        if getter is not None:
            value = getter(self._event)
        elif name.startswith(_ALARM_DIMENSION_PREFIX) and self._event.alarm:
            value = self._event.alarm.dimensions.get(name.removeprefix(_ALARM_DIMENSION_PREFIX))
        else:
            value = None
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]


def _resolve(node: Any, parts: list[str], out: list[Any]) -> None:
    """Append the values at `parts` below `node`. Keys that contain dots themselves are tried as well."""
    if isinstance(node, list):
        for item in node:
            _resolve(item, parts, out)
    elif not parts:
        out.append(node)
    elif isinstance(node, dict):
        for taken in range(1, len(parts) + 1):
            key = parts[0] if taken == 1 else ".".join(parts[:taken])
            if key in node:
                _resolve(node[key], parts[taken:], out)


def _collect_scalars(node: Any, out: list[Any]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _collect_scalars(value, out)
    elif isinstance(node, list):
        for value in node:
            _collect_scalars(value, out)
    else:
        out.append(node)
