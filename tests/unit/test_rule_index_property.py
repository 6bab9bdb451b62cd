"""The rule index never leaves out a rule that matches, for any rule and any event: generated rules (equality,
modifiers, regular expressions, lists, null, exists, NOT, AND, OR, several selections) on generated events (case
variants, lists, objects, numbers, nulls, missing and nested fields), index and match against a scan of every
rule."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from correlators.model import Actor, EntityType, EventSource, NormalizedEvent, Resource
from correlators.sigma import DetectionRule, FieldView, load_rules
from correlators.sigma.index import RuleIndex

# Few fields and values, so that rules and events meet often, a field's several values meet several selections.
# Of each kind the index reads its own way: top-level keys, two-part paths under one key, a deeper path, an event
# attribute, an actor attribute, a list-valued `cordon.` field.
FIELDS = (
    "eventName",
    "userAgent",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.session.type",
    "cordon.action",
    "cordon.principal_type",
    "cordon.asset_class",
)
TEXTS = ("Get", "gET", "Put", "s3", "")
MODIFIERS = ("", "", "", "", "|contains", "|startswith", "|endswith", "|cased", "|re", "|re|i")

# Patterns too (`|re`): a dot, anchors and a class around the literals the index pins.
_values = st.one_of(st.sampled_from(("Get", "Put")), st.sampled_from(("s3", "et", "", "1", "G.t", "^Pu", "[gG]et")))
_items = st.tuples(
    st.sampled_from((FIELDS[0], *FIELDS)),
    st.one_of(
        st.tuples(st.sampled_from(MODIFIERS), st.one_of(_values, st.lists(_values, min_size=1, max_size=3))),
        st.just(("", None)),
        st.tuples(st.just("|exists"), st.booleans()),
    ),
)
_selections = st.lists(st.lists(_items, min_size=1, max_size=3), min_size=1, max_size=3)


@st.composite
def _conditions(draw: st.DrawFn, names: list[str], depth: int = 0) -> str:
    if depth >= 2 or draw(st.booleans()):
        name = draw(st.sampled_from(names))
        return f"not {name}" if draw(st.integers(0, 3)) == 0 else name
    operator = draw(st.sampled_from((" and ", " or ")))
    parts = draw(st.lists(_conditions(names, depth + 1), min_size=2, max_size=3))
    return "(" + operator.join(parts) + ")"


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(item) for item in value) + "]"
    return f"'{value}'"


@st.composite
def _rule_texts(draw: st.DrawFn) -> str:
    selections = draw(_selections)
    names = [f"sel{i}" for i in range(len(selections))]
    lines = ["title: generated", "logsource:", "  product: aws", "  service: cloudtrail", "detection:"]
    for name, items in zip(names, selections, strict=True):
        lines.append(f"  {name}:")
        seen: set[str] = set()
        for field, (modifier, value) in items:
            key = field + modifier
            if key not in seen:  # a key twice in one selection is a YAML error
                seen.add(key)
                lines.append(f"    {key}: {_yaml_value(value)}")
    lines.append(f"  condition: {draw(_conditions(names))}")
    return "\n".join(lines) + "\n"


_scalars = st.one_of(st.sampled_from(TEXTS), st.none(), st.integers(0, 2), st.booleans())
_objects = st.fixed_dictionaries({"a": st.sampled_from(TEXTS)})  # matched as its JSON text, `{"a":"Get"}`
_field_values = st.one_of(
    _scalars,
    _objects,
    st.lists(st.one_of(_scalars, _objects), max_size=3),
    st.lists(st.sampled_from(TEXTS), max_size=3),
)


@st.composite
def _raw_events(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for field in FIELDS:
        if field == "cordon.asset_class":  # from the event's resources: `_event` takes it out
            raw[field] = draw(st.lists(st.one_of(st.none(), st.sampled_from(TEXTS)), max_size=3))
        elif field.startswith("cordon."):
            # Read from the normalized event, not `raw`: `_event` takes it out
            raw[field] = draw(st.one_of(st.none(), st.sampled_from(TEXTS)))
        elif draw(st.booleans()):
            value = draw(_field_values if field != FIELDS[0] else st.one_of(_field_values, st.just(["put", "GET"])))
            head, _, rest = field.partition(".")
            if rest and not draw(st.integers(0, 4)):
                raw[field] = value  # a key with a dot in it, as some records spell it
            elif rest:
                *middle, last = rest.split(".")
                node = raw.setdefault(head, {})
                for part in middle:
                    node = node.setdefault(part, {})
                node[last] = value
            else:
                raw[field] = value
    shape = draw(st.integers(0, 5))
    if "userIdentity" in raw and shape == 0:
        raw["userIdentity"] = [raw["userIdentity"], {"type": "s3"}]  # a list along the path: every item is read
    elif shape == 1:
        raw["userIdentity"] = draw(_scalars)  # a scalar where the path goes on: nothing below it
    elif shape == 2:
        raw["userIdentity.type"] = draw(st.sampled_from(TEXTS))  # beside a nested one, maybe: both are read
    return raw


def _event(raw: dict[str, Any]) -> NormalizedEvent:
    cordon = {name: raw[name] for name in FIELDS if name.startswith("cordon.") and name in raw}
    principal_type = cordon.get("cordon.principal_type")
    classes = cordon.get("cordon.asset_class") or []
    return NormalizedEvent(
        event_id="e",
        time=datetime(2024, 1, 1, tzinfo=UTC),
        source=EventSource.CLOUDTRAIL,
        action=cordon.get("cordon.action"),
        actor=Actor(principal_type=principal_type) if principal_type is not None else None,
        resources=[
            Resource(type=EntityType.OBJECT, id=f"s3://b/{number}", asset_class=asset_class)
            for number, asset_class in enumerate(classes)
        ],
        raw={name: value for name, value in raw.items() if name not in cordon},
    )


def _load(texts: list[str]) -> list[DetectionRule]:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for number, text in enumerate(texts):
            path = Path(folder) / f"rule{number}.yml"
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        ruleset = load_rules(paths)
    assert not ruleset.errors, ruleset.errors
    return ruleset.detections


def _rule_text(selections: str, condition: str) -> str:
    header = "title: t\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n"
    return f"{header}{selections}  condition: {condition}\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_rule_texts(), min_size=1, max_size=6), st.lists(_raw_events(), min_size=1, max_size=8))
# Rare for the generator: one field with several values meets two selections of an AND.
@example(
    [_rule_text("  a:\n    eventName: Get\n  b:\n    eventName: Put\n", "a and b")], [{"eventName": ["put", "GET"]}]
)
# Rare too: a dotted key beside the nested one it spells, each read; and a list along a dotted path.
@example(
    [_rule_text("  a:\n    userIdentity.type: Put\n", "a")],
    [
        {"userIdentity": {"type": "Get"}, "userIdentity.type": "Put"},
        {"userIdentity": [{"type": "s3"}, {"type": "put"}]},
    ],
)
# A regular expression compares case-sensitively, on one string, in a list, on an object's JSON text.
@example(
    [_rule_text("  a:\n    eventName|re: Get\n", "a"), _rule_text("  a:\n    userAgent|re: G.t\n", "a")],
    [{"eventName": "Get"}, {"eventName": ["put", "Get"], "userAgent": "Gxt"}, {"eventName": {"a": "Get"}}],
)
# The index remembers the rules left by the values it read: values equal as Python compares them (1 == True) but
# not as Sigma does ("1", "true") must not share what it remembered; neither must a missing key and an empty list.
@example(
    [_rule_text("  a:\n    eventName: 'true'\n", "a"), _rule_text("  a:\n    userAgent: '1'\n", "a")],
    [{"eventName": 1, "userAgent": True}, {"eventName": True, "userAgent": 1}, {"eventName": True, "userAgent": 1}],
)
@example(
    [_rule_text("  a:\n    userIdentity.arn|exists: true\n", "a")],
    [{"userIdentity": {"arn": "s3"}}, {"userIdentity": {"type": "s3"}}, {"userIdentity": {"arn": "s3"}}],
)
def test_index_and_match_find_what_a_scan_of_every_rule_finds(texts: list[str], raws: list[dict[str, Any]]) -> None:
    rules = _load(texts)
    index = RuleIndex(rules)
    for raw in raws:
        view = FieldView(_event(raw))
        scanned = [rule for rule in rules if rule.matches(view)]
        assert [rule for rule in index.candidates(view.event) if rule.matches(view)] == scanned, (texts, raw)
