"""`cordon.trail.management_events`: which management events a trail logs after PutEventSelectors, AWS defaults
filled in and the selector list read as a whole (correlators/normalize/event_selectors.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlators.config import Config
from correlators.ingest import RawRecord
from correlators.normalize import normalize
from correlators.normalize.event_selectors import management_events_logged
from correlators.sigma import FieldView
from correlators.sigma.fields import is_known_field

TRAINING_DATA = [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::acme-fraud-training/"]}]
MANAGEMENT = {"field": "eventCategory", "equals": ["Management"]}
READS, WRITES = {"field": "readOnly", "equals": ["true"]}, {"field": "readOnly", "equals": ["false"]}
S3_DATA = [{"field": "eventCategory", "equals": ["Data"]}, {"field": "resources.type", "equals": ["AWS::S3::Object"]}]


def _basic(*selectors: dict[str, Any]) -> str | None:
    return management_events_logged({"trailName": "acme-org-trail", "eventSelectors": list(selectors)})


def _advanced(*selectors: list[dict[str, Any]]) -> str | None:
    advanced = [{"fieldSelectors": conditions} for conditions in selectors]
    return management_events_logged({"trailName": "acme-org-trail", "advancedEventSelectors": advanced})


@pytest.mark.parametrize(
    ("selectors", "logged"),
    [
        # AWS defaults: includeManagementEvents true, readWriteType All
        ([{"dataResources": TRAINING_DATA}], "All"),
        ([{}], "All"),
        ([{"includeManagementEvents": True}], "All"),  # Stratus's revert, as it sends it
        ([{"includeManagementEvents": None, "readWriteType": None}], "All"),
        ([{"includeManagementEvents": False}], "None"),
        ([{"includeManagementEvents": "false", "readWriteType": "All"}], "None"),
        ([{"readWriteType": "WriteOnly"}], "WriteOnly"),
        ([{"readWriteType": "readonly", "includeManagementEvents": True}], "ReadOnly"),
        # a trail logs the union of its selectors
        ([{"readWriteType": "ReadOnly"}, {"readWriteType": "WriteOnly", "dataResources": TRAINING_DATA}], "All"),
        ([{"readWriteType": "All"}, {"includeManagementEvents": False, "dataResources": TRAINING_DATA}], "All"),
        ([{"readWriteType": "ReadOnly"}, {"includeManagementEvents": False, "readWriteType": "All"}], "ReadOnly"),
        ([], "None"),
        ([{"readWriteType": "Everything"}], "None"),  # not an AWS value: nothing that can be vouched for
        # the KMS and RDS Data API exclusions are AWS's cost filter, not narrowing
        ([{"excludeManagementEventSources": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}], "All"),
    ],
)
def test_basic_selectors(selectors: list[dict[str, Any]], logged: str) -> None:
    assert _basic(*selectors) == logged


@pytest.mark.parametrize(
    ("selectors", "logged"),
    [
        ([[MANAGEMENT]], "All"),
        ([[MANAGEMENT, READS]], "ReadOnly"),
        ([[MANAGEMENT, WRITES]], "WriteOnly"),
        ([[MANAGEMENT, {"field": "readOnly", "notEquals": ["true"]}]], "WriteOnly"),
        ([[MANAGEMENT, {"field": "readOnly", "equals": ["true", "false"]}]], "All"),
        ([[MANAGEMENT, READS], [MANAGEMENT, WRITES]], "All"),
        ([S3_DATA], "None"),
        ([[{"field": "eventCategory", "equals": ["management"]}]], "All"),
        ([[{"field": "eventCategory", "notEquals": ["Management"]}]], "None"),
        ([[{"field": "readOnly", "equals": ["true"]}]], "None"),  # eventCategory is required
        ([], "None"),
        # the two sources a trail may leave out, and anything else
        ([[MANAGEMENT, {"field": "eventSource", "notEquals": ["kms.amazonaws.com", "rdsdata.amazonaws.com"]}]], "All"),
        ([[MANAGEMENT, {"field": "eventSource", "notEquals": ["iam.amazonaws.com"]}]], "None"),
        ([[MANAGEMENT, {"field": "eventSource", "equals": ["kms.amazonaws.com"]}]], "None"),
        ([[MANAGEMENT, {"field": "eventName", "notEquals": ["PutEventSelectors"]}]], "None"),
        ([[MANAGEMENT, {"field": "userIdentity.arn", "notStartsWith": ["arn:aws:sts::111122223333:"]}]], "None"),
        # a part-logging selector beside one that logs everything: the trail still logs everything
        ([[MANAGEMENT, {"field": "eventName", "notEquals": ["Decrypt"]}], [MANAGEMENT]], "All"),
    ],
)
def test_advanced_selectors(selectors: list[list[dict[str, Any]]], logged: str) -> None:
    assert _advanced(*selectors) == logged


@pytest.mark.parametrize(
    "request_parameters",
    [None, {}, {"trailName": "t"}, {"eventSelectors": "All"}, {"eventSelectors": ["All"]}, "eventSelectors"],
)
def test_what_cannot_be_read_is_no_value_never_narrowing(request_parameters: Any) -> None:
    assert management_events_logged(request_parameters) is None


_SELECTOR = st.fixed_dictionaries(
    {},
    optional={
        "includeManagementEvents": st.sampled_from([True, False, None, "true", "false"]),
        "readWriteType": st.sampled_from(["All", "ReadOnly", "WriteOnly", "Nonsense", None]),
        "excludeManagementEventSources": st.just(["kms.amazonaws.com"]),
        "dataResources": st.just(TRAINING_DATA),
    },
)
_REACH = {"None": set(), "ReadOnly": {"read"}, "WriteOnly": {"write"}, "All": {"read", "write"}}


@settings(max_examples=300, deadline=None)
@given(st.lists(_SELECTOR, max_size=5), _SELECTOR)
def test_adding_a_selector_never_narrows_what_is_logged(selectors: list[dict[str, Any]], added: dict[str, Any]) -> None:
    before, after = _basic(*selectors), _basic(*selectors, added)
    assert before is not None and after is not None
    assert _REACH[before] <= _REACH[after]


def _put_event_selectors(event_name: str = "PutEventSelectors", **request: Any) -> FieldView:
    record = {
        "eventVersion": "1.11",
        "eventTime": "2026-11-18T10:10:12Z",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": event_name,
        "eventID": "0c2f6c0e-3b8e-4a52-9d37-6a1f0d7c2b11",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/admin-alice"},
        "requestParameters": {"trailName": "acme-org-trail", **request},
    }
    (event,) = normalize(RawRecord(record, "test"), Config())
    return FieldView(event)


def test_rules_see_it_as_a_cordon_field_on_put_event_selectors_only() -> None:
    assert is_known_field("cordon.trail.management_events")
    assert _put_event_selectors(eventSelectors=[]).get("cordon.trail.management_events") == ["None"]
    assert _put_event_selectors(eventSelectors=[{"dataResources": TRAINING_DATA}]).get(
        "cordon.trail.management_events"
    ) == ["All"]
    # the same request parameters on another call say nothing about a trail's selectors
    assert (
        _put_event_selectors("CreateEventDataStore", advancedEventSelectors=[]).get("cordon.trail.management_events")
        == []
    )
