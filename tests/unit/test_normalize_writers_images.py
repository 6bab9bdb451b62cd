"""What a SageMaker call reads and runs, and what the site config says of it: S3 inputs as resources, images,
`cordon.declared_writer`, `cordon.image_allowed`, `cordon.object` and `cordon.object_prefixes`."""

from __future__ import annotations

from typing import Any

import pytest

from correlators.config import Config
from correlators.ingest import RawRecord
from correlators.model import EntityType, NormalizedEvent, Resource
from correlators.normalize import normalize
from correlators.sigma.fields import MAX_PREFIX_DEPTH, FieldView

CONFIG = Config(
    assets={"training_data": ["s3://ml-data/train/*"], "model_artifacts": ["s3://ml-models/*"]},
    asset_writers={"training_data": ["arn:aws:iam::111122223333:role/etl-*"]},
    allowed_image_registries=["111122223333.dkr.ecr.*.amazonaws.com"],
)
ETL = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/etl-nightly/run-1"}
CONTRACTOR = {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ml-contractor", "userName": "ml-contractor"}


def _event(
    name: str,
    params: dict[str, Any],
    who: dict[str, Any] = CONTRACTOR,
    config: Config = CONFIG,
    response: dict[str, Any] | None = None,
) -> Any:
    record = {
        "eventVersion": "1.09",
        "eventTime": "2026-11-18T10:00:00Z",
        "eventSource": "s3.amazonaws.com" if name == "PutObject" else "sagemaker.amazonaws.com",
        "eventName": name,
        "eventID": f"e-{name}",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"accountId": "111122223333", **who},
        "requestParameters": params,
        "responseElements": response,
    }
    (event,) = normalize(RawRecord(payload=record, where="t:1"), config)
    return event


def _fields(event: NormalizedEvent, name: str) -> list[Any]:
    return FieldView(event).get(name)


def test_a_training_job_names_the_prefixes_it_reads_as_training_data() -> None:
    event = _event(
        "CreateTrainingJob",
        {
            "trainingJobName": "fraud-train-42",
            "inputDataConfig": [
                {"channelName": "train", "dataSource": {"s3DataSource": {"s3Uri": "s3://ml-data/train/fraud/"}}},
                {"channelName": "fs", "dataSource": {"fileSystemDataSource": {"directoryPath": "/fsx/x"}}},
            ],
            "outputDataConfig": {"s3OutputPath": "s3://ml-models/out/"},  # an output: not read
        },
    )
    objects = [r for r in event.resources if r.type is EntityType.OBJECT]
    assert objects == [Resource(type=EntityType.OBJECT, id="s3://ml-data/train/fraud/", asset_class="training_data")]
    assert "training_data" in _fields(event, "cordon.asset_class")
    assert _fields(event, "cordon.object") == ["s3://ml-data/train/fraud"]


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("CreateProcessingJob", {"processingInputs": [{"s3Input": {"s3Uri": "s3://ml-data/train/a"}}]}, "train/a"),
        (
            "StartPipelineExecution",
            {"pipelineParameters": [{"name": "Input", "value": "s3://ml-data/train/b"}, {"name": "N", "value": "3"}]},
            "train/b",
        ),
        ("CreateModel", {"primaryContainer": {"modelDataUrl": "s3://ml-models/v7/model.tar.gz"}}, None),
    ],
)
def test_jobs_pipelines_and_models_name_their_s3_inputs(name: str, params: dict[str, Any], expected: str) -> None:
    event = _event(name, params)
    objects = [r.id for r in event.resources if r.type is EntityType.OBJECT]
    assert objects == [f"s3://ml-data/{expected}" if expected else "s3://ml-models/v7/model.tar.gz"]


def test_a_model_package_version_is_named_by_its_creation_and_its_approval() -> None:
    arn = "arn:aws:sagemaker:us-east-1:111122223333:model-package/fraud-scorer/3"
    created = _event("CreateModelPackage", {"modelPackageGroupName": "fraud-scorer"}, response={"modelPackageArn": arn})
    approved = _event("UpdateModelPackage", {"modelPackageArn": arn, "modelApprovalStatus": "Approved"})
    for event in (created, approved):
        assert Resource(type=EntityType.SAGEMAKER_MODEL_PACKAGE, id=arn) in event.resources


def test_declared_writer_is_judged_only_where_the_config_declares_writers() -> None:
    put = {"bucketName": "ml-data", "key": "train/fraud/part-7.parquet"}
    assert _event("PutObject", put, ETL).declared_writer is True
    assert _event("PutObject", put, CONTRACTOR).declared_writer is False
    assert _fields(_event("PutObject", put), "cordon.declared_writer") == [False]
    # model_artifacts declares no writers: not judged
    model = _event("PutObject", {"bucketName": "ml-models", "key": "v7/model.tar.gz"})
    assert model.declared_writer is None and _fields(model, "cordon.declared_writer") == []
    # no asset_writers at all: not judged
    assert _event("PutObject", put, config=Config(assets=CONFIG.assets)).declared_writer is None


def test_cordon_restoring_training_data_is_a_declared_writer() -> None:
    # Its restore copies known-good versions back: judged undeclared, the restore and the next training run would
    # raise a poisoning incident of their own, whose restore goes back to the version before Cordon's copy.
    cordon = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/CordonResponderRole/cordon-run"}
    put = {"bucketName": "ml-data", "key": "train/fraud/part-7.parquet"}
    assert _event("PutObject", put, cordon).declared_writer is True
    # where no writer is declared, it is not judged either
    assert _event("PutObject", {"bucketName": "ml-models", "key": "v7/model.tar.gz"}, cordon).declared_writer is None


def test_an_aws_service_is_not_judged_a_writer() -> None:
    service = {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}
    assert _event("PutObject", {"bucketName": "ml-data", "key": "train/x"}, service).declared_writer is None


def test_images_outside_the_allowed_registries() -> None:
    ours = "111122223333.dkr.ecr.us-east-1.amazonaws.com/fraud-scorer:v7"
    theirs = "444455556666.dkr.ecr.us-east-1.amazonaws.com/fraud-scorer:v7"
    model = _event("CreateModel", {"modelName": "m", "containers": [{"image": ours}, {"image": theirs}]})
    assert model.images == [ours, theirs]
    assert _fields(model, "cordon.image_allowed") == [False]
    package = _event("CreateModelPackage", {"inferenceSpecification": {"containers": [{"image": ours}]}})
    assert package.image_allowed is True
    # No image named, or no registry listed: not judged
    assert _event("CreateEndpointConfig", {"endpointConfigName": "c"}).image_allowed is None
    assert _event("CreateModel", {"primaryContainer": {"image": theirs}}, config=Config()).image_allowed is None


def test_object_prefixes_cover_every_directory_up_to_the_bucket() -> None:
    event = _event("PutObject", {"bucketName": "ml-data", "key": "train/fraud/part-7.parquet"})
    assert _fields(event, "cordon.object_prefixes") == [
        "s3://ml-data",
        "s3://ml-data/train",
        "s3://ml-data/train/fraud",
        "s3://ml-data/train/fraud/part-7.parquet",
    ]


def test_object_prefixes_of_a_deep_key_are_bounded() -> None:
    key = "/".join(f"d{i}" for i in range(100)) + "/x"
    event = _event("PutObject", {"bucketName": "ml-data", "key": key})
    prefixes = _fields(event, "cordon.object_prefixes")
    assert len(prefixes) == MAX_PREFIX_DEPTH + 2  # the bucket, 32 directories, the object itself
    assert prefixes[-1] == f"s3://ml-data/{key}"
