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

import json
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from operator import attrgetter, itemgetter
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


# `cordon.*` fields that are a plain attribute of the event, or of its actor (None without one): several are read
# at once by one `attrgetter` where many fields are read together (`FieldReader`).
_EVENT_ATTRIBUTES = {
    "cordon.action": "action",
    "cordon.outcome": "outcome",
    "cordon.error_code": "error_code",
    "cordon.account": "account",
    "cordon.region": "region",
    "cordon.source_ip": "source_ip",
    "cordon.user_agent": "user_agent",
    "cordon.declared_writer": "declared_writer",
    "cordon.image_allowed": "image_allowed",
}
_ACTOR_ATTRIBUTES = {
    "cordon.principal": "principal",
    "cordon.principal_type": "principal_type",
    "cordon.user_name": "user_name",
    "cordon.access_key": "access_key",
    "cordon.session": "session",
    "cordon.session_name": "session_name",
    "cordon.instance": "instance",
    "cordon.invoked_by": "invoked_by",
}

_CORDON_FIELDS: dict[str, Callable[[NormalizedEvent], Any]] = {
    "cordon.source": lambda event: event.source.value,
    **{name: attrgetter(attribute) for name, attribute in _EVENT_ATTRIBUTES.items()},
    **{name: _actor(attribute) for name, attribute in _ACTOR_ATTRIBUTES.items()},
    "cordon.asset_class": attrgetter("asset_classes"),  # read of every CloudTrail event by the rule index
    "cordon.resource_type": lambda event: [resource.type.value for resource in event.resources],
    "cordon.resource": lambda event: [resource.id for resource in event.resources],
    "cordon.trail.management_events": trail_management_events,
    "cordon.object": _objects,
    "cordon.object_prefixes": _object_prefixes,
    "cordon.images": attrgetter("images"),
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

# The `cordon.` fields a CloudTrail call has before its event is built (`normalize.cloudtrail.CloudTrailCall`), read
# the same from either: the rule index screens calls only when it reads nothing else. Not enrichment's verdicts
# (computed for built events only), nor what other sources have. tests/unit/test_screened_calls.py reads each of
# these from the call and from its event, for every CloudTrail record of the samples.
FIELDS_BEFORE_BUILDING = frozenset(
    {
        "cordon.source",
        *(_EVENT_ATTRIBUTES.keys() - {"cordon.declared_writer", "cordon.image_allowed"}),
        *_ACTOR_ATTRIBUTES,
        "cordon.asset_class",
        "cordon.resource_type",
        "cordon.resource",
        "cordon.object",
        "cordon.object_prefixes",
        "cordon.images",
    }
)


def readable_before_building(name: str) -> bool:
    """Whether a CloudTrail call gives this field the value its event will: a raw path, or `FIELDS_BEFORE_BUILDING`."""
    return not name.startswith("cordon.") or name in FIELDS_BEFORE_BUILDING


def is_known_field(name: str) -> bool:
    """False only for a `cordon.` name Cordon doesn't define: a typo there would silently never match."""
    if not name.startswith("cordon."):
        return True
    return name in _CORDON_FIELDS or (name.startswith(_ALARM_DIMENSION_PREFIX) and name != _ALARM_DIMENSION_PREFIX)


class FieldView:
    """The fields of one event as Sigma rules look them up. Lookups are cached: every rule reads the same view."""

    __slots__ = ("_cache", "_event", "_scalars", "_texts")

    def __init__(self, event: NormalizedEvent) -> None:
        self._event = event
        self._cache: dict[str, list[Any]] = {}
        self._texts: dict[str, tuple[str, ...]] = {}
        self._scalars: list[Any] | None = None

    @property
    def event(self) -> NormalizedEvent:
        return self._event

    def get(self, name: str) -> list[Any]:
        """Every value of the field, raw (str, int, float, bool, None, dict); `[]` when it is absent."""
        values = self._cache.get(name)
        if values is None:
            getter = _GETTERS.get(name) or _getter(name)
            values = self._cache[name] = getter(self._event)
        return values

    def texts(self, name: str) -> tuple[str, ...]:
        """The lower-cased texts of the field's values (`value_text`): what case-insensitive tests compare."""
        found = self._texts.get(name)
        if found is None:
            # Most fields hold one string: read straight, without the list `get` makes and keeps
            value = (_ONE_STRING.get(name) or _one_string_reader(name))(self._event)
            found = self._texts[name] = (value.lower(),) if type(value) is str else _lowered_texts(self.get(name))
        return found

    def all_values(self) -> Iterator[Any]:
        """Every scalar anywhere in the raw event, for Sigma keyword search."""
        if self._scalars is None:
            self._scalars = []
            _collect_scalars(self._event.raw, self._scalars)
        return iter(self._scalars)


def value_text(value: Any) -> str | None:
    """The text Sigma compares strings with: JSON spelling for booleans, decimal for numbers, compact JSON for
    objects (`requestParameters|contains: Suspended`, as a SIEM storing CloudTrail as text matches it), None for
    null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return None


def _lowered_texts(values: list[Any]) -> tuple[str, ...]:
    return tuple(text.lower() for text in map(value_text, values) if text is not None)


# What `one_string` readers give when the field is not exactly one string: read it through `FieldView` instead.
NOT_ONE_STRING = object()


def one_string(name: str) -> tuple[str | None, Callable[[NormalizedEvent], Any]]:
    """How to read a field that usually holds one string, for the rule index, which reads a handful of fields of
    every event: the top-level raw key to look up in `event.raw` (a dict), if the name is one, else a reader.

    When the key's value, or what the reader gives, is a `str`, `FieldView.get(name)` is that string alone; when
    it is None or `[]`, the field has no value but null (`get` is `[]` or `[None]`); anything else (a list, a
    number, `NOT_ONE_STRING`) says nothing, and the caller asks the view.
    """
    if name.startswith("cordon."):
        read = _CORDON_FIELDS.get(name)
        if read is None:  # an alarm dimension
            return None, partial(_alarm_dimension, name.removeprefix(_ALARM_DIMENSION_PREFIX))
        return None, read
    parts = name.split(".")
    if len(parts) == 1:
        return name, partial(_one_key, name)
    return None, partial(_one_plain_path, _plain_steps(parts))


# Field name -> the reader `one_string` gives for it, for `FieldView.texts`.
_ONE_STRING: dict[str, Callable[[NormalizedEvent], Any]] = {}


def _one_string_reader(name: str) -> Callable[[NormalizedEvent], Any]:
    read = _ONE_STRING[name] = one_string(name)[1]
    return read


def _one_key(key: str, event: NormalizedEvent) -> Any:
    return event.raw.get(key)


def _plain_steps(parts: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each part of a dotted path with the keys that join it to the parts after it (`a.b`, `a.b.c` for `a` of
    `a.b.c`): a dict holding none of those is followed by the part alone."""
    return tuple(
        (part, tuple(".".join(parts[start:end]) for end in range(start + 2, len(parts) + 1)))
        for start, part in enumerate(parts)
    )


def _one_plain_path(plain: tuple[tuple[str, tuple[str, ...]], ...], event: NormalizedEvent) -> Any:
    """The value at the end of a dotted path through dicts, none of which holds a key with a dot in it; else
    NOT_ONE_STRING (the caller then reads the path as `_walk` does)."""
    node: Any = event.raw
    for part, joined in plain:
        if type(node) is not dict:
            return NOT_ONE_STRING
        for key in joined:
            if key in node:
                return NOT_ONE_STRING
        node = node.get(part)
    return node


class FieldReader:
    """Several fields of every event read at once, for the rule index: `read(event)` gives one value per name of
    `names` (its own order), each as `one_string` reads it, with fewer Python calls than one reader per field.

    Plain attributes of the event, and of its actor, are read by one `attrgetter` each. Top-level raw keys are
    read by one `itemgetter`, and two-part paths under one key (`userIdentity.arn`, `userIdentity.type`) by one
    lookup of that key and one `itemgetter` below it, when the record spells none of them as a dotted key itself:
    records hold the keys rules pin nearly always, and one that lacks one is read key by key instead. Any other
    field takes its `one_string` reader, a list it gives turned into a tuple (None when empty), so that the values
    of `cordon.` fields are hashable.
    """

    __slots__ = (
        "_actor_fields",
        "_event_fields",
        "_heads",
        "_no_actor",
        "_others",
        "_raw_items",
        "_raw_keys",
        "_spelled",
        "names",
    )

    def __init__(self, names: Iterable[str]) -> None:
        event_fields: list[str] = []
        actor_fields: list[str] = []
        raw_keys: list[str] = []
        heads: dict[str, list[str]] = {}
        others: list[str] = []
        for name in dict.fromkeys(names):
            if name in _EVENT_ATTRIBUTES:
                event_fields.append(name)
            elif name in _ACTOR_ATTRIBUTES:
                actor_fields.append(name)
            elif name.startswith("cordon."):
                others.append(name)
            elif "." not in name:
                raw_keys.append(name)
            elif name.count(".") == 1:
                head, _, leaf = name.partition(".")
                heads.setdefault(head, []).append(leaf)
            else:
                others.append(name)
        self.names = (
            *event_fields,
            *actor_fields,
            *raw_keys,
            *(f"{head}.{leaf}" for head, leaves in heads.items() for leaf in leaves),
            *others,
        )
        self._event_fields = _attributes([_EVENT_ATTRIBUTES[name] for name in event_fields])
        self._actor_fields = _attributes([_ACTOR_ATTRIBUTES[name] for name in actor_fields])
        self._no_actor = (None,) * len(actor_fields)
        self._raw_keys = tuple(raw_keys)
        self._raw_items = _items(raw_keys)
        # The dotted keys that would spell a two-part path at the top of the record (`userIdentity.arn`).
        self._spelled = frozenset(f"{head}.{leaf}" for head, leaves in heads.items() for leaf in leaves)
        self._heads = tuple((head, tuple(leaves), _items(leaves)) for head, leaves in heads.items())
        self._others = tuple(one_string(name)[1] for name in others)

    def read(self, event: NormalizedEvent) -> tuple[Any, ...]:
        raw = event.raw
        actor = event.actor
        try:
            values = self._raw_items(raw)
        except KeyError:  # a key missing: None for it
            values = tuple(map(raw.get, self._raw_keys))
        values = (
            self._event_fields(event) + (self._actor_fields(actor) if actor is not None else self._no_actor) + values
        )
        spelled = bool(self._spelled) and not raw.keys().isdisjoint(self._spelled)
        for head, leaves, leaf_items in self._heads:
            node = raw.get(head)
            if type(node) is dict and not spelled:
                try:
                    values += leaf_items(node)
                except KeyError:
                    values += tuple(map(node.get, leaves))
            elif spelled or isinstance(node, (list, dict)):  # beside the dotted keys, through every item, ...
                values += (NOT_ONE_STRING,) * len(leaves)
            else:  # no head, or a null or a scalar where the path goes on: nothing below it
                values += (None,) * len(leaves)
        for read in self._others:
            value = read(event)
            values += ((tuple(value) or None) if type(value) is list else value,)
        return values


def _attributes(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The attributes' values as a tuple, however many there are."""
    return _tupled(attrgetter, names)


def _items(keys: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The keys' values as a tuple, however many there are; KeyError when one is missing."""
    return _tupled(itemgetter, keys)


def _tupled(getter: Callable[..., Callable[[Any], Any]], names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """`getter(*names)`, always giving a tuple: `attrgetter` and `itemgetter` of one name give the value alone."""
    if len(names) == 1:
        read = getter(names[0])
        return lambda obj: (read(obj),)
    return getter(*names) if names else lambda obj: ()


# Field name -> how to read it from an event, built on first use: rules name a bounded set of fields, and a
# getter made once spares every event the prefix test and the splitting of dotted paths.
_GETTERS: dict[str, Callable[[NormalizedEvent], list[Any]]] = {}


def _getter(name: str) -> Callable[[NormalizedEvent], list[Any]]:
    getter = _cordon_getter(name) if name.startswith("cordon.") else _raw_getter(name)
    _GETTERS[name] = getter
    return getter


def _cordon_getter(name: str) -> Callable[[NormalizedEvent], list[Any]]:
    read = _CORDON_FIELDS.get(name)
    if read is None:
        dimension = name.removeprefix(_ALARM_DIMENSION_PREFIX) if name.startswith(_ALARM_DIMENSION_PREFIX) else None
        read = partial(_alarm_dimension, dimension)

    def get(event: NormalizedEvent) -> list[Any]:
        value = read(event)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    return get


def _alarm_dimension(dimension: str | None, event: NormalizedEvent) -> str | None:
    return event.alarm.dimensions.get(dimension) if dimension is not None and event.alarm else None


def _raw_getter(name: str) -> Callable[[NormalizedEvent], list[Any]]:
    """A dotted path into `event.raw`. Keys that contain dots themselves are tried as well: for `a.b.c` the keys
    `a`, `a.b` and `a.b.c` at the top, and so on below; lists along the path (and at its end) are flattened."""
    parts = name.split(".")
    # steps[i]: the keys that can follow part i, each with the index of the part after it, shortest key first
    steps = tuple(
        tuple((".".join(parts[start:end]), end) for end in range(start + 1, len(parts) + 1))
        for start in range(len(parts))
    )
    if len(parts) == 1:
        return partial(_read_key, name, steps)
    # The keys that join a part with the ones after it (`userIdentity.arn` at the top of `a.b.c`): when a dict
    # on the path has none of them, as CloudTrail's never do, the path is followed without trying them.
    return partial(_read_plain_path, _plain_steps(parts), steps)


def _read_key(key: str, steps: tuple[tuple[tuple[str, int], ...], ...], event: NormalizedEvent) -> list[Any]:
    """A top-level key: the common case, read without walking."""
    raw = event.raw
    if not isinstance(raw, dict):
        return _read_path(steps, event)
    if key not in raw:
        return []
    value = raw[key]
    if isinstance(value, list):
        out: list[Any] = []
        _flatten(value, out)
        return out
    return [value]


def _read_plain_path(
    plain: tuple[tuple[str, tuple[str, ...]], ...],
    steps: tuple[tuple[tuple[str, int], ...], ...],
    event: NormalizedEvent,
) -> list[Any]:
    """A dotted path through dicts only, as `_walk` reads it; anything else (a list along the way, a key with a
    dot in it) is left to `_walk`."""
    node: Any = event.raw
    for part, joined in plain:
        if type(node) is not dict:
            if isinstance(node, (list, dict)):
                return _read_path(steps, event)
            return []  # a scalar before the path ends: nothing below it
        for key in joined:
            if key in node:
                return _read_path(steps, event)
        if part not in node:
            return []
        node = node[part]
    if isinstance(node, list):
        out: list[Any] = []
        _flatten(node, out)
        return out
    return [node]


def _read_path(steps: tuple[tuple[tuple[str, int], ...], ...], event: NormalizedEvent) -> list[Any]:
    out: list[Any] = []
    _walk(event.raw, steps, 0, out)
    return out


def _walk(node: Any, steps: tuple[tuple[tuple[str, int], ...], ...], at: int, out: list[Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, steps, at, out)
    elif at == len(steps):
        out.append(node)
    elif isinstance(node, dict):
        for key, following in steps[at]:
            if key in node:
                _walk(node[key], steps, following, out)


def _flatten(items: list[Any], out: list[Any]) -> None:
    for item in items:
        if isinstance(item, list):
            _flatten(item, out)
        else:
            out.append(item)


def _collect_scalars(node: Any, out: list[Any]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _collect_scalars(value, out)
    elif isinstance(node, list):
        for value in node:
            _collect_scalars(value, out)
    else:
        out.append(node)
