"""`JsonObject` source fields: checked like `dict[str, Any]`, refused with the same words, but not copied."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from correlators.errors import EventRejectedError
from correlators.normalize.cloudtrail import RECORD
from correlators.normalize.fields import JsonObject, SourceModel, Timestamp, describe, validate


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

    record = RECORD.validate(document)

    assert record.get("userIdentity") is identity and record.get("requestParameters") is parameters


class _CloudTrailModel(SourceModel):
    """What the CloudTrail fields were validated as before they became a TypedDict: the refusals must not change."""

    eventID: str | None = None
    eventTime: Timestamp
    eventSource: str
    eventName: str
    awsRegion: str | None = None
    recipientAccountId: str | None = None
    userIdentity: JsonObject | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    errorCode: str | None = None
    requestParameters: JsonObject | None = None
    responseElements: JsonObject | None = None
    resources: list[JsonObject] | None = None


_RECORD_START = {"eventTime": "2024-05-01T12:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject"}


@pytest.mark.parametrize(
    "change",
    [
        {"eventTime": None},
        {"eventTime": 5},
        {"eventTime": "soon"},
        {"eventTime": "1970-01-01T00:00:00Z"},
        {"eventTime": {"at": 1}},
        {"eventSource": None},
        {"eventName": ["GetObject"]},
        {"userIdentity": "alice"},
        {"resources": [1, {"ARN": "x"}, "y"]},
        {"resources": {"ARN": "x"}},
        {"requestParameters": []},
        {"awsRegion": 3, "eventID": True, "errorCode": 1.5, "sourceIPAddress": {}, "userAgent": b"x"},
        {"eventTime": "2024-13-01T00:00:00Z", "eventName": None, "userIdentity": 3},
        {"recipientAccountId": "111122223333", "responseElements": None, "resources": None},
    ],
    ids=repr,
)
def test_a_cloudtrail_record_is_refused_as_the_model_refused_it(change: dict[str, Any]) -> None:
    for document in ({**_RECORD_START, **change}, {"eventSource": "s3.amazonaws.com", **change}, change):
        try:
            expected = repr(_CloudTrailModel.model_validate(document).model_dump(exclude_unset=True))
        except ValidationError as error:
            expected = f"CloudTrail record: {describe(error)}"
        try:
            got = repr(RECORD.validate(document))
        except EventRejectedError as error:
            got = error.reason
        assert got == expected
