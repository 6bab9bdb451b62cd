"""Scenario examples/attacks/training-data-poisoning, replayed with --execute against a moto server whose training
bucket is versioned: back to the known-good data, then a retrain from it once a person approves.

The account is built first: clean versions of the training objects, the pipeline, the contractor. Then the
contractor's writes are made in it (a PutObject, a multipart upload, a delete), and the rule's positive fixture is
rewritten to name them: their version ids, and event times on the account's clock (moto keeps LastModified to the
second, from the wall clock). moto 5.2 lacks StopTrainingJob and StopPipelineExecution: the stop waits for a person
here and is tested with a Stubber in tests/functional/responders/test_sagemaker.py; the pipeline execution is
read back from moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from cordon.cli import main
from cordon.coverage import load_scenarios
from infra.ml_account import account_session, rewrite
from tests.e2e.test_replay_execute import server
from tests.functional.responders.test_s3_versions import _next_second

__all__ = ["server"]  # fixture, used by name

REPO = Path(__file__).resolve().parents[3]
[SCENARIO] = [s for s in load_scenarios(REPO / "examples") if s.path.name == "training-data-poisoning"]
FIXTURES = REPO / "correlators" / "rules" / "10_training_data_poisoning.tests"
ACCOUNT = "111122223333"
BUCKET = "acme-fraud-training"
PREFIX = "datasets/fraud/2026-11"
CONTRACTOR = f"arn:aws:iam::{ACCOUNT}:user/ml-contractor"
JOB = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/fraud-train-20261118"
# What the fixture logs, which the account replaces with what it did.
LOGGED = {
    "put": ("2026-11-18T09:12:04Z", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"),
    "multipart": ("2026-11-18T09:12:40Z", "9Jn2kqtJlcpXroDTDmJ.rmSpXd3dIbrAB"),
    "delete": ("2026-11-18T09:13:05Z", None),
    "job": ("2026-11-18T11:30:00Z", None),
}


def _clock() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _account(endpoint: str) -> Any:
    session = account_session(endpoint, ACCOUNT)
    iam = session.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="ml-contractor")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    for role in ("ml-pipeline-role", "SageMakerExecution-fraud"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    s3 = session.client("s3", endpoint_url=endpoint)
    for bucket in (BUCKET, "acme-model-registry"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for part in ("0003", "0007", "0008"):
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/part-{part}.parquet", Body=f"clean {part}".encode())
    sagemaker = session.client("sagemaker", endpoint_url=endpoint)
    sagemaker.create_training_job(
        TrainingJobName="fraud-train-20261118",
        AlgorithmSpecification={
            "TrainingImage": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/fraud-train:2.3",
            "TrainingInputMode": "File",
        },
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution-fraud",
        InputDataConfig=[
            {
                "ChannelName": "ch0",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/datasets/fraud/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://acme-model-registry/models/fraud-scorer/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
    )
    sagemaker.create_pipeline(
        PipelineName="fraud-retrain",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution-fraud",
    )
    session.client("sns", endpoint_url=endpoint).create_topic(Name="cordon-alerts")
    return session


def _poison(s3: Any) -> dict[str, str]:
    """The contractor's writes, made in the account; how the fixture's times and version ids map to them."""
    seen: dict[str, str] = {}
    put = s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/part-0007.parquet", Body=b"poisoned 0007")
    seen |= {LOGGED["put"][0]: _clock(), str(LOGGED["put"][1]): put["VersionId"]}
    key = f"{PREFIX}/part-0008.parquet"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1, Body=b"poisoned 0008")
    done = s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}
    )
    seen |= {LOGGED["multipart"][0]: _clock(), str(LOGGED["multipart"][1]): done["VersionId"]}
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/part-0003.parquet")
    seen[LOGGED["delete"][0]] = _clock()
    return seen


def _body(s3: Any, part: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/part-{part}.parquet")["Body"].read())


def _tags(s3: Any, part: str, version: str) -> dict[str, str]:
    answer = s3.get_object_tagging(Bucket=BUCKET, Key=f"{PREFIX}/part-{part}.parquet", VersionId=version)
    return {t["Key"]: t["Value"] for t in answer["TagSet"]}


def test_poisoned_training_data_is_marked_restored_and_retrained_on_approval(
    server: str, tmp_path: Path, capsys: Any
) -> None:
    # GIVEN the account with clean training data, then the contractor's writes in it
    session = _account(server)
    s3 = session.client("s3", endpoint_url=server)
    sagemaker = session.client("sagemaker", endpoint_url=server)
    _next_second()  # the clean versions are dated before the first poisoned one
    ids = _poison(s3)
    ids[LOGGED["job"][0]] = _clock()
    events = tmp_path / "events"
    rewrite(FIXTURES, events, ids)
    config = tmp_path / "cordon.yaml"
    config.write_text((REPO / "examples" / "cordon.yaml").read_text())
    state = f"sqlite:///{tmp_path / 'state.db'}"
    args = ["--config", str(config), "--endpoint-url", server, "--state", state]
    [expected] = SCENARIO.expect

    # WHEN the scenario is replayed with --execute
    code = main(["replay", str(events / "positive.jsonl"), "--execute", "--output", "json", *args])
    [incident] = json.loads(capsys.readouterr().out)["incidents"]
    assert code == 0

    # THEN the incident the scenario names, with its playbooks
    assert set(expected.rules) <= set(incident["rules"]) and incident["severity"] == expected.severity.value
    assert set(expected.playbooks) <= {a["playbook"] for a in incident["actions"]}
    status = {(a["step"], a["target"].rsplit("/", 1)[-1]): a["status"] for a in incident["actions"]}
    for part in ("0003", "0007", "0008"):
        assert status[("mark-suspect-versions", f"part-{part}.parquet")] == "applied"
        assert status[("restore-training-data", f"part-{part}.parquet")] == "applied"
    assert status[("deny-writer", "ml-contractor")] == "applied"
    assert status[("stop-training-job", "fraud-train-20261118")] == "pending_approval"
    assert status[("retrain-from-known-good-data", ACCOUNT)] == "pending_approval"

    # AND the writer denied in the training bucket's policy
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert [s["Principal"]["AWS"] for s in policy["Statement"] if s["Effect"] == "Deny"] == [CONTRACTOR]
    # (moto 5.2 applies a bucket policy's Deny to every caller, whatever its Principal: with it in place, no
    # object of the bucket can be read, by this test or by the retrain. It is set aside from here on.)
    s3.delete_bucket_policy(Bucket=BUCKET)
    # AND in the account: the poisoned versions marked, the known-good ones current again, nothing deleted
    put_version, multipart_version = ids[str(LOGGED["put"][1])], ids[str(LOGGED["multipart"][1])]
    assert _tags(s3, "0007", put_version) == {"cordon:suspect": incident["id"]}
    assert _tags(s3, "0008", multipart_version) == {"cordon:suspect": incident["id"]}
    assert [_body(s3, part) for part in ("0003", "0007", "0008")] == [b"clean 0003", b"clean 0007", b"clean 0008"]
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=PREFIX)
    assert {put_version, multipart_version} <= {v["VersionId"] for v in versions["Versions"]}
    # AND no retraining before a person says so
    assert sagemaker.list_pipeline_executions(PipelineName="fraud-retrain")["PipelineExecutionSummaries"] == []

    # WHEN a person approves the retrain
    [retrain] = [a for a in incident["actions"] if a["step"] == "retrain-from-known-good-data"]
    assert main(["approve", retrain["id"], *args]) == 0
    assert yaml.safe_load(capsys.readouterr().out.split(": ", 1)[1]) == "applied"

    # THEN one run of the site's pipeline, handed the manifest of the known-good versions now current
    [run] = sagemaker.list_pipeline_executions(PipelineName="fraud-retrain")["PipelineExecutionSummaries"]
    assert run["PipelineExecutionDisplayName"] == f"cordon-{incident['id']}"
    [parameter] = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=run["PipelineExecutionArn"])[
        "PipelineParameters"
    ]
    assert parameter["Name"] == "TrainingDataManifest"
    manifest_key = parameter["Value"].removeprefix(f"s3://{BUCKET}/")
    assert manifest_key == f"cordon/retrain-manifests/cordon-{incident['id']}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    current = {
        f"s3://{BUCKET}/{v['Key']}": v["VersionId"]
        for v in s3.list_object_versions(Bucket=BUCKET, Prefix="datasets/fraud/")["Versions"]
        if v["IsLatest"]
    }
    assert {o["uri"]: o["version_id"] for o in manifest["objects"]} == current
    assert len(current) == 3 and not {put_version, multipart_version} & set(current.values())
    # AND the audit keeps the execution's ARN
    assert main(["audit", "--state", state, "--output", "json"]) == 0
    audited = [r for r in json.loads(capsys.readouterr().out) if r["step"] == "retrain-from-known-good-data"]
    assert [r["after"]["execution"]["arn"] for r in audited] == [run["PipelineExecutionArn"]]
