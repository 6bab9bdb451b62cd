"""A string matched against an object-valued field matches the object's compact JSON text, as a SIEM that stores
CloudTrail as text does: SigmaHQ's `requestParameters|contains: 'Suspended'` fires on a versioning suspension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from correlators.sigma import FieldView, load_rules
from tests.unit.test_sigma_evaluate import _event, _rule

# Below the shared samples (the `samples` fixture).
DISABLE_VERSIONING = Path("sigmahq-sigma/rules/cloud/aws/cloudtrail/aws_disable_bucket_versioning.yml")


def _put_bucket_versioning(status: str) -> dict[str, Any]:
    # The shape S3 writes for PutBucketVersioning: the XML body parsed into requestParameters.
    return {
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketVersioning",
        "requestParameters": {
            "bucketName": "acme-model-registry",
            "Host": "acme-model-registry.s3.amazonaws.com",
            "versioning": "",
            "VersioningConfiguration": {"Status": status, "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"},
        },
    }


def test_sigmahq_disable_bucket_versioning_fires_on_a_suspension_only(samples: Path) -> None:
    (rule,) = load_rules([samples / DISABLE_VERSIONING]).detections
    assert rule.matches(FieldView(_event(_put_bucket_versioning("Suspended"))))
    assert not rule.matches(FieldView(_event(_put_bucket_versioning("Enabled"))))


def test_the_object_text_is_compact_json_in_the_event_key_order(tmp_path: Path) -> None:
    rule = _rule(
        tmp_path,
        """
        selection:
          requestParameters|contains: '"VersioningConfiguration":{"Status":"Suspended"'
        condition: selection
        """,
    )
    assert rule.matches(FieldView(_event(_put_bucket_versioning("Suspended"))))


def test_a_null_field_is_still_no_text(tmp_path: Path) -> None:
    rule = _rule(
        tmp_path,
        """
        selection:
          responseElements|contains: 'null'
        condition: selection
        """,
    )
    assert not rule.matches(FieldView(_event({"responseElements": None})))
