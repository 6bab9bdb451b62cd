"""`JsonObject` source fields: checked like `dict[str, Any]`, refused with the same words, but not copied."""

from __future__ import annotations

from typing import Any

import pytest

from correlators.errors import EventRejectedError
from correlators.normalize.cloudtrail import CloudTrailRecord
from correlators.normalize.fields import JsonObject, SourceModel, validate


class _Copied(SourceModel):
    one: dict[str, Any] | None = None
    many: list[dict[str, Any]] | None = None


class _Uncopied(SourceModel):
    one: JsonObject | None = None
    many: list[JsonObject] | None = None


@pytest.mark.parametrize(
    "value",
    ["text", "", 0, 1.5, True, [], ["a"], [{"a": 1}], ("tuple",), {"a"}, b"bytes", float("nan")],
    ids=repr,
)
def test_a_value_that_is_no_object_is_refused_in_the_same_words(value: Any) -> None:
    for document in ({"one": value}, {"many": [{}, value]}, {"many": value}, {"one": value, "many": [value]}):
        assert _outcome(_Uncopied, document) == _outcome(_Copied, document)
    assert _outcome(_Uncopied, {"one": value}).startswith("label: one: input should be a valid dictionary, got ")


def _outcome(model: type[SourceModel], document: dict[str, Any]) -> str:
    try:
        return repr(validate(model, document, "label").model_dump())
    except EventRejectedError as error:
        return error.reason


def test_objects_are_kept_as_they_are_and_equal_what_dict_validation_gives() -> None:
    inner = {"key": {"nested": [1, 2]}, "other": None}

    copied = validate(_Copied, {"one": inner, "many": [inner]}, "label")
    uncopied = validate(_Uncopied, {"one": inner, "many": [inner]}, "label")

    assert uncopied.one is inner and uncopied.many is not None and uncopied.many[0] is inner
    assert uncopied.model_dump() == copied.model_dump()


def test_a_cloudtrail_record_keeps_its_request_and_identity_objects() -> None:
    identity = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}
    parameters = {"bucketName": "ml-data"}
    document = {
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "userIdentity": identity,
        "requestParameters": parameters,
    }

    record = validate(CloudTrailRecord, document, "CloudTrail record")

    assert record.userIdentity is identity and record.requestParameters is parameters
