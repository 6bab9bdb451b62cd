"""sagemaker.start-pipeline-execution against moto: the manifest pins the current versions of the training data, the
pipeline gets it as its parameter, a retry finds the run instead of starting another, and a run marked data is
refused. moto 5.2 lacks StopPipelineExecution (and finishes every execution at once): the rollback tests set the
execution Executing in moto's backend and answer the stop with a Stubber that checks the request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.sagemaker.models import sagemaker_backends
from pydantic import ValidationError

from responders.base import ResponderError, Target
from responders.sagemaker.pipeline import (
    StartPipelineExecution,
    StartPipelineParams,
    covering_prefixes,
    display_name,
    request_token,
)

from .conftest import ACCOUNT, REGION
from .stubbing import PartialStubber, pin_clients

BUCKET = "acme-fraud-training"
PIPELINE = "fraud-retrain"
ACCOUNT_TARGET = Target(type="account", id=ACCOUNT, account=ACCOUNT, region=REGION)
RESPONDER = StartPipelineExecution()
SINCE = datetime.now(UTC) - timedelta(minutes=5)


@pytest.fixture
def account(aws: Any) -> Any:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for part in (1, 2):
        s3.put_object(Bucket=BUCKET, Key=f"datasets/fraud/part-{part}.parquet", Body=b"old")
        s3.put_object(Bucket=BUCKET, Key=f"datasets/fraud/part-{part}.parquet", Body=b"known good")
    s3.put_object(Bucket=BUCKET, Key="datasets/fraud/gone.parquet", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="datasets/fraud/gone.parquet")
    s3.put_object(Bucket=BUCKET, Key="datasets/churn/other.parquet", Body=b"not this prefix")
    aws.client("sagemaker").create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution-fraud",
    )
    return aws


def _params(**overrides: Any) -> StartPipelineParams:
    values: dict[str, Any] = {
        "pipeline": PIPELINE,
        "training_data": [f"s3://{BUCKET}/datasets/fraud/", f"s3://{BUCKET}/datasets/fraud/part-1.parquet"],
        "manifest_prefix": f"s3://{BUCKET}/cordon/retrain-manifests/",
        "since": SINCE,
    }
    return StartPipelineParams(**(values | overrides))


def _executions(aws: Any) -> list[dict[str, Any]]:
    answer = aws.client("sagemaker").list_pipeline_executions(PipelineName=PIPELINE)
    return list(answer["PipelineExecutionSummaries"])


def test_the_run_gets_a_manifest_of_the_current_versions(account: Any, make_context: Any) -> None:
    # GIVEN no run yet
    ctx, s3 = make_context(account), account.client("s3")
    before = RESPONDER.read_state(ctx, ACCOUNT_TARGET, _params())
    assert before == {"pipeline": PIPELINE, "display_name": "cordon-inc-0000000000000001", "execution": None}
    # WHEN started
    after = RESPONDER.apply(ctx, ACCOUNT_TARGET, _params(), before)
    # THEN one execution, named after the incident, with the manifest as its parameter
    [run] = _executions(account)
    assert run["PipelineExecutionDisplayName"] == "cordon-inc-0000000000000001"
    assert after["execution"]["arn"] == run["PipelineExecutionArn"]
    manifest_uri = f"s3://{BUCKET}/cordon/retrain-manifests/cordon-inc-0000000000000001/manifest.json"
    parameters = account.client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=run["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert parameters == [{"Name": "TrainingDataManifest", "Value": manifest_uri}]
    # AND the manifest pins the current version of each object under the prefix (not the deleted one, nor churn)
    body = s3.get_object(Bucket=BUCKET, Key=manifest_uri.split("/", 3)[3])["Body"].read()
    manifest = json.loads(body)
    current = {
        f"s3://{BUCKET}/{v['Key']}": v["VersionId"]
        for v in s3.list_object_versions(Bucket=BUCKET, Prefix="datasets/fraud/")["Versions"]
        if v["IsLatest"]
    }
    assert {o["uri"]: o["version_id"] for o in manifest["objects"]} == current
    assert sorted(current) == [
        f"s3://{BUCKET}/datasets/fraud/part-1.parquet",
        f"s3://{BUCKET}/datasets/fraud/part-2.parquet",
    ]
    assert manifest["incident"] == "inc-0000000000000001" and manifest["prefixes"] == [f"s3://{BUCKET}/datasets/fraud/"]
    assert after["manifest"] == {"uri": manifest_uri, "version_id": after["manifest"]["version_id"], "objects": 2}
    assert RESPONDER.holds(ctx, ACCOUNT_TARGET, _params(), before, RESPONDER.read_state(ctx, ACCOUNT_TARGET, _params()))
    # AND a second apply finds the run and starts no other
    RESPONDER.apply(ctx, ACCOUNT_TARGET, _params(), before)
    assert len(_executions(account)) == 1


def test_a_current_version_marked_suspect_stops_the_retrain(account: Any, make_context: Any) -> None:
    s3 = account.client("s3")
    planted = s3.put_object(Bucket=BUCKET, Key="datasets/fraud/planted.parquet", Body=b"poison")["VersionId"]
    s3.put_object_tagging(
        Bucket=BUCKET,
        Key="datasets/fraud/planted.parquet",
        VersionId=planted,
        Tagging={"TagSet": [{"Key": "cordon:suspect", "Value": "inc-0000000000000001"}]},
    )
    with pytest.raises(
        ResponderError,
        match=r"^not retraining: current versions are marked cordon:suspect "
        r"\(s3://acme-fraud-training/datasets/fraud/planted.parquet\): restore or remove them",
    ):
        RESPONDER.apply(make_context(account), ACCOUNT_TARGET, _params(), {})
    assert _executions(account) == []


def test_a_pipeline_that_does_not_exist_is_refused(account: Any, make_context: Any) -> None:
    with pytest.raises(ResponderError):
        RESPONDER.read_state(make_context(account), ACCOUNT_TARGET, _params(pipeline="no-such-pipeline"))


def _executing(account: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, PartialStubber]:
    ctx = make_context(account)
    arn = RESPONDER.apply(ctx, ACCOUNT_TARGET, _params(), {})["execution"]["arn"]
    executions = sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE].pipeline_executions
    executions[arn].pipeline_execution_status = "Executing"  # moto finishes runs at once; AWS takes a while

    def stop(request: dict[str, Any]) -> None:
        executions[request["PipelineExecutionArn"]].pipeline_execution_status = "Stopping"

    stubber = PartialStubber(
        pin_clients(monkeypatch, ctx).setdefault("sagemaker", account.client("sagemaker")),
        {"StopPipelineExecution": stop},
    )
    return ctx, arn, stubber


def test_rollback_stops_a_run_still_executing(account: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, arn, stubber = _executing(account, make_context, monkeypatch)
    stubber.add_response(
        "stop_pipeline_execution",
        {"PipelineExecutionArn": arn},
        {"PipelineExecutionArn": arn, "ClientRequestToken": request_token("stop", arn)},
    )
    with stubber:
        state = RESPONDER.rollback(ctx, ACCOUNT_TARGET, _params(), {}, {})
    stubber.assert_no_pending_responses()
    assert state["execution"] == {"arn": arn, "status": "Stopping"}
    # AND a second rollback has nothing left to stop
    assert RESPONDER.rollback(ctx, ACCOUNT_TARGET, _params(), {}, {})["execution"]["status"] == "Stopping"


def test_a_finished_run_cannot_be_rolled_back(account: Any, make_context: Any) -> None:
    ctx = make_context(account)
    arn = RESPONDER.apply(ctx, ACCOUNT_TARGET, _params(), {})["execution"]["arn"]  # moto: Succeeded at once
    with pytest.raises(
        ResponderError, match=rf"^pipeline execution {arn} is Succeeded: a finished run cannot be undone"
    ):
        RESPONDER.rollback(ctx, ACCOUNT_TARGET, _params(), {}, {})


def test_only_the_account_the_session_is_for(account: Any, make_context: Any) -> None:
    elsewhere = Target(type="account", id="444455556666", account=None, region=REGION)
    with pytest.raises(ResponderError, match=r"^account 444455556666: the session is for the runner's own account"):
        RESPONDER.apply(make_context(account), elsewhere, _params(), {})
    assert _executions(account) == []


def test_params_and_pure_parts() -> None:
    assert covering_prefixes(["s3://b/datasets/fraud/x.parquet", "s3://b/datasets/fraud/", "s3://c/datasets/"]) == [
        ("b", "datasets/fraud/"),
        ("c", "datasets/"),
    ]
    assert display_name("inc-1/a.b") == "cordon-inc-1-a-b"
    with pytest.raises(ValidationError, match="is not a SageMaker pipeline name"):
        _params(pipeline="fraud retrain")
    with pytest.raises(ValidationError, match="is not an s3:// URI"):
        _params(manifest_prefix="acme/retrain/")
    with pytest.raises(ValidationError):
        _params(training_data=[])
