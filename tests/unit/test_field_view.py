"""FieldView reads raw paths by getters made once per name: they must give what the plain reading of a dotted path
gives (every key, dotted keys too, lists flattened), and `texts` the lower-cased texts of those values."""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from correlators.config import load_config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.model import EventSource, NormalizedEvent
from correlators.normalize import normalize
from correlators.sigma import FieldView
from correlators.sigma.fields import CORDON_FIELDS, FieldReader, one_string, value_text

KEYS = ("a", "b", "a.b", "b.a", "a.b.a")
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False), st.sampled_from("aAbÉ"))
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=12,
)
_paths = st.lists(st.sampled_from(("a", "b")), min_size=1, max_size=4).map(".".join)


def _reference(node: Any, parts: list[str]) -> list[Any]:
    """The reading the module docstring describes, written plainly: try `a`, `a.b`, ... at each level."""
    if isinstance(node, list):
        return [value for item in node for value in _reference(item, parts)]
    if not parts:
        return [node]
    if not isinstance(node, dict):
        return []
    found: list[Any] = []
    for taken in range(1, len(parts) + 1):
        key = ".".join(parts[:taken])
        if key in node:
            found.extend(_reference(node[key], parts[taken:]))
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return None


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), _json, max_size=4), st.lists(_paths, min_size=1, max_size=4))
def test_getters_read_what_the_plain_reading_reads(raw: dict[str, Any], paths: list[str]) -> None:
    event = NormalizedEvent(event_id="e", time=datetime(2024, 1, 1, tzinfo=UTC), source=EventSource.CLOUDTRAIL, raw=raw)
    view = FieldView(event)
    for path in paths:
        expected = _reference(raw, path.split("."))
        assert view.get(path) == expected
        texts = [text.lower() for text in map(_text, expected) if text is not None]
        assert list(view.texts(path)) == texts


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), _json, max_size=4), _paths)
def test_one_string_readers_keep_their_promise(raw: dict[str, Any], path: str) -> None:
    # GIVEN the shortcut the rule index and `texts` take for a field that holds one string
    event = NormalizedEvent(event_id="e", time=datetime(2024, 1, 1, tzinfo=UTC), source=EventSource.CLOUDTRAIL, raw=raw)
    key, read = one_string(path)
    # WHEN it reads the field
    value = raw.get(key) if key is not None else read(event)
    # THEN a string is the field's one value, and None or [] a field with no value but null
    values = FieldView(event).get(path)
    if isinstance(value, str):
        assert values == [value]
    elif value is None or value == []:
        assert all(item is None for item in values)


def _assert_one_string_promise(value: Any, values: list[Any], name: str) -> None:
    """A string is the field's one value; None (or []) a field with no value but null; a tuple (what a
    `FieldReader` makes of a list) the values; anything else says nothing."""
    if isinstance(value, str):
        assert values == [value], name
    elif value is None or value == []:
        assert all(item is None for item in values), name
    elif isinstance(value, tuple):
        assert values == list(value), name


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), _json, max_size=4), st.lists(_paths, min_size=1, max_size=4))
def test_a_field_reader_keeps_the_promise_of_one_string_readers(raw: dict[str, Any], paths: list[str]) -> None:
    # GIVEN several paths read at once, top-level keys and paths under one key among them, dotted keys beside
    event = NormalizedEvent(event_id="e", time=datetime(2024, 1, 1, tzinfo=UTC), source=EventSource.CLOUDTRAIL, raw=raw)
    reader = FieldReader(paths)
    # WHEN it reads them
    values = reader.read(event)
    # THEN each is read once, and what it gives keeps the promise `one_string`'s reader makes
    assert sorted(reader.names) == sorted(set(paths))
    for name, value in zip(reader.names, values, strict=True):
        _assert_one_string_promise(value, FieldView(event).get(name), name)


def _demo_events() -> list[NormalizedEvent]:
    """The events of the demo scenarios: findings, alarms, Config verdicts and API calls on ML assets."""
    repo = Path(__file__).resolve().parents[2]
    config = load_config(repo / "examples" / "cordon.yaml")
    inputs = [str(repo / "examples" / folder) for folder in ("scenarios", "fixtures")]
    events: list[NormalizedEvent] = []
    for item in read_inputs(inputs):
        if isinstance(item, RawRecord):
            with suppress(EventRejectedError):  # an EC2 state change the demo sends for its rejection
                events += normalize(item, config)
    return events


def _cordon_field_names(events: list[NormalizedEvent]) -> list[str]:
    dimensions = {f"cordon.alarm.dimensions.{name}" for e in events if e.alarm for name in e.alarm.dimensions}
    assert len(events) > 50 and dimensions
    return sorted(CORDON_FIELDS - {"cordon.alarm.dimensions.<Name>"} | dimensions)


def test_texts_of_every_cordon_field_are_the_lowered_texts_of_its_values() -> None:
    # GIVEN the events of the demo scenarios and every cordon field
    events = _demo_events()
    names = _cordon_field_names(events)

    for event in events:
        for name in names:
            # WHEN a fresh view is asked for the texts first (the shortcut for one string), and another for values
            texts = FieldView(event).texts(name)
            values = FieldView(event).get(name)

            # THEN the texts are what `value_text` makes of the values, lower-cased
            assert list(texts) == [text.lower() for text in map(value_text, values) if text is not None], name


def test_a_field_reader_reads_every_cordon_field_as_the_view_does() -> None:
    # GIVEN the events of the demo scenarios, and a reader of every cordon field and a few raw paths at once
    events = _demo_events()
    reader = FieldReader([*_cordon_field_names(events), "eventName", "userIdentity.type", "detail.severity"])
    for event in events:
        # WHEN it reads an event
        values = reader.read(event)
        # THEN each value keeps the promise of one string, and any tuple holds the field's values
        for name, value in zip(reader.names, values, strict=True):
            _assert_one_string_promise(value, FieldView(event).get(name), name)
