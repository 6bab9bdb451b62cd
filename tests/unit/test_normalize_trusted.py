"""The normalizer's hot path builds models without validating them again (`correlators.model.trusted`), enriches
them in place and shares the Actor of a recurring identity. Each event must still be exactly what validation
would make of the same values: same types (an enum, not its string), same defaults, same JSON."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.model import Actor, EntityType, EventSource, NormalizedEvent, Resource, TrustedFields, trusted
from correlators.normalize import normalize

SAMPLES = Path(__file__).parents[2].parent / "shared" / "samples"

# Broad on purpose: most sample resources take a class, most principals are judged, every image is.
CONFIG = Config(
    assets={
        "objects": ["s3://*"],
        "buckets": ["arn:aws:s3:::*"],
        "sagemaker": ["arn:aws:sagemaker:*"],
        "apis": ["arn:aws:apigateway:*"],
    },
    asset_writers={
        name: ["arn:aws:iam::*:role/a*", "arn:aws:iam::*:user/*"] for name in ("objects", "buckets", "apis")
    },
    allowed_image_registries=["*.dkr.ecr.us-east-1.amazonaws.com"],
)


def _validated(model: BaseModel) -> BaseModel:
    """`model` built again by validation from the values it was given, nested models too."""
    return type(model).model_validate({name: _rebuilt(getattr(model, name)) for name in model.model_fields_set})


def _rebuilt(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _validated(value)
    if isinstance(value, list):
        return [_rebuilt(item) for item in value]
    return value


def _typed(value: Any) -> Any:
    """`value` with the exact type of every part beside it (`==` alone takes "bucket" for EntityType.BUCKET)."""
    if isinstance(value, BaseModel):
        fields = {name: _typed(getattr(value, name)) for name in type(value).model_fields}
        return type(value), list(value.__dict__)[: len(fields)], fields
    if isinstance(value, list):
        return list, [_typed(item) for item in value]
    if isinstance(value, dict):
        return dict, [(key, _typed(item)) for key, item in value.items()]
    if isinstance(value, datetime):
        return datetime, value, value.tzinfo, value.utcoffset()
    return type(value), value


def _sample_events() -> list[NormalizedEvent]:
    if not SAMPLES.is_dir():
        pytest.skip(f"no samples folder at {SAMPLES} (it sits beside the checkout, as ../shared/samples)")
    events: list[NormalizedEvent] = []
    for item in read_inputs([str(SAMPLES)]):
        if isinstance(item, RawRecord):
            try:
                events += normalize(item, CONFIG)
            except EventRejectedError:
                continue
    return events


def test_every_sample_event_is_what_validation_makes_of_its_values() -> None:
    # GIVEN every event normalized from the samples, with a configuration that classifies and judges most of them
    events = _sample_events()
    assert len(events) > 3000
    assert sum(e.source is EventSource.CLOUDTRAIL for e in events) > 3000
    assert sum(any(r.asset_class for r in e.resources) for e in events) > 200
    assert sum(e.declared_writer is not None for e in events) > 100

    for event in events:
        # WHEN it is built again by validation from the same values
        validated = _validated(event)

        # THEN both hold the same values of the same types, in the same order, and serialize alike
        assert _typed(event) == _typed(validated), event.origin
        assert event.model_dump_json() == validated.model_dump_json(), event.origin
        assert repr(event) == repr(validated), event.origin


def test_an_identity_that_recurs_resolves_to_one_shared_actor() -> None:
    record = {
        "eventVersion": "1.08",
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ana", "accountId": "111122223333"},
    }
    first, second = (normalize(RawRecord({**record, "eventID": n}, f"f:{n}"), Config())[0] for n in ("1", "2"))

    assert first.actor is second.actor
    assert first.actor == Actor(
        principal="arn:aws:iam::111122223333:user/ana",
        principal_type="IAMUser",
        user_name="ana",
        account="111122223333",
    )


def test_trusted_takes_defaults_and_fresh_lists_and_refuses_missing_or_unknown_fields() -> None:
    time = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    values: dict[str, Any] = {"event_id": "e", "time": time, "source": EventSource.CLOUDTRAIL, "raw": {}}

    one, other = trusted(NormalizedEvent, **values), trusted(NormalizedEvent, **values)

    assert one == NormalizedEvent(**values)
    assert one.model_fields_set == NormalizedEvent(**values).model_fields_set == set(values)
    assert one.outcome == "success" and one.origin == "" and one.actor is None
    assert one.resources == [] and one.resources is not other.resources
    bucket = "arn:aws:s3:::b"
    assert trusted(Resource, type=EntityType.BUCKET, id=bucket) == Resource(type="bucket", id=bucket)
    with pytest.raises(TypeError, match="NormalizedEvent: missing raw, time; unknown -"):
        trusted(NormalizedEvent, event_id="e", source=EventSource.CLOUDTRAIL)
    with pytest.raises(TypeError, match="Resource: missing -; unknown kind"):
        trusted(Resource, type=EntityType.BUCKET, id="x", kind="y")


def test_trusted_fields_builds_from_a_complete_dict_and_refuses_a_shape_it_cannot_build() -> None:
    # GIVEN a builder for resources given only their type and id
    build = TrustedFields(Resource, given=("type", "id"))
    bucket = "arn:aws:s3:::b"

    # WHEN a resource is built from every field, the default of the one not given included
    built = build.build({"type": EntityType.BUCKET, "id": bucket, "asset_class": None})

    # THEN it is the validated resource, with the same fields set, each instance its own set
    assert built == Resource(type="bucket", id=bucket)
    assert built.model_fields_set == {"type", "id"}
    other = build.build({"type": EntityType.BUCKET, "id": bucket, "asset_class": None})
    assert built.model_fields_set is not other.model_fields_set
    assert build.names == ("type", "id", "asset_class")
    # AND a dict missing a field, or holding one more, is refused
    with pytest.raises(TypeError, match="Resource: expected the 3 fields type, id, asset_class"):
        build.build({"type": EntityType.BUCKET, "id": bucket})
    with pytest.raises(TypeError, match="expected the 3 fields"):
        build.build({"type": EntityType.BUCKET, "id": bucket, "asset_class": None, "kind": "x"})
    # AND a builder is refused for unknown names, a required field not given, or a fresh default it would share
    with pytest.raises(TypeError, match="Resource: unknown kind; missing id;"):
        TrustedFields(Resource, given=("type", "kind"))
    with pytest.raises(TypeError, match="defaults made by a factory, to be given resources, images"):
        TrustedFields(NormalizedEvent, given=("event_id", "time", "source", "raw"))
