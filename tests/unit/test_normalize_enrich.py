"""Asset classes from cordon.yaml: objects by URI, everything else by ARN, buckets by their globs' bucket."""

from __future__ import annotations

from typing import Any

from correlators.config import Config
from correlators.ingest import RawRecord
from correlators.model import EntityType, Resource
from correlators.normalize import normalize
from correlators.normalize.enrich import asset_class_of

CONFIG = Config(
    assets={
        "training_data": ["s3://ml-data/train/*", "s3://ml-*-features/*"],
        "model_artifacts": ["s3://ml-models/*", "arn:aws:sagemaker:*:*:model-package/*"],
        "inference": ["arn:aws:sagemaker:*:*:endpoint/fraud-*"],
        "audit_logs": ["arn:aws:s3:::audit-logs"],
    }
)


def _class(kind: EntityType, identifier: str) -> str | None:
    return asset_class_of(Resource(type=kind, id=identifier), CONFIG)


def test_objects_match_by_uri() -> None:
    assert _class(EntityType.OBJECT, "s3://ml-data/train/part-1.parquet") == "training_data"
    assert _class(EntityType.OBJECT, "s3://ml-data/scratch/x") is None


def test_buckets_match_when_a_glob_names_a_prefix_in_them() -> None:
    # Documented in enrich.py: a bucket takes the class of any s3:// glob whose bucket part matches it.
    assert _class(EntityType.BUCKET, "arn:aws:s3:::ml-data") == "training_data"
    assert _class(EntityType.BUCKET, "arn:aws:s3:::ml-fraud-features") == "training_data"
    assert _class(EntityType.BUCKET, "arn:aws:s3:::ml-models") == "model_artifacts"
    assert _class(EntityType.BUCKET, "arn:aws:s3:::audit-logs") == "audit_logs"  # an ARN glob
    assert _class(EntityType.BUCKET, "arn:aws:s3:::ml-data-copy") is None


def test_arns_match_by_arn_and_instances_never() -> None:
    assert _class(EntityType.SAGEMAKER_ENDPOINT, "arn:aws:sagemaker:us-east-1:1:endpoint/fraud-v2") == "inference"
    assert (
        _class(EntityType.SAGEMAKER_MODEL_PACKAGE, "arn:aws:sagemaker:us-east-1:1:model-package/f/3")
        == "model_artifacts"
    )
    assert _class(EntityType.SAGEMAKER_ENDPOINT, "arn:aws:sagemaker:us-east-1:1:endpoint/churn") is None
    assert _class(EntityType.INSTANCE, "i-0123456789abcdef0") is None


def test_normalize_enriches_every_resource() -> None:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "eventID": "e-1",
        "awsRegion": "us-east-1",
        "requestParameters": {"bucketName": "ml-data", "key": "train/part-1.parquet"},
    }

    [event] = normalize(RawRecord(record, "x:1"), CONFIG)

    assert [(r.type, r.asset_class) for r in event.resources] == [
        (EntityType.BUCKET, "training_data"),
        (EntityType.OBJECT, "training_data"),
    ]
    assert event.asset_classes == ["training_data"]
    [plain] = normalize(RawRecord(record, "x:1"), Config())
    assert plain.asset_classes == []


def test_what_is_remembered_of_one_configuration_never_answers_for_another() -> None:
    # GIVEN one record normalized under configurations that each give its object another class, one after the
    # other, each dropped before the next is made (a new one may take a dropped one's place in memory)
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutObject",
        "eventID": "e-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ana"},
        "requestParameters": {"bucketName": "ml-data", "key": "train/part-1.parquet"},
    }
    for n in range(20):
        writers = ["arn:aws:iam::*:user/ana"] if n % 2 else ["arn:aws:iam::*:role/etl"]
        config = Config(assets={f"class_{n}": ["s3://ml-data/*"]}, asset_writers={f"class_{n}": writers})

        # WHEN it is normalized
        [event] = normalize(RawRecord(record, "x:1"), config)

        # THEN it carries that configuration's class and writer verdict
        assert event.asset_classes == [f"class_{n}"]
        assert event.declared_writer is bool(n % 2)
        del config, event
