"""A small ML account, built with real AWS API calls against any endpoint (a moto server for the demo).

It matches the demo scenario (examples/scenarios): account 111122223333, training and model-artifact buckets,
the `ml-contractor` IAM user with an access key, the `ml-training-role` behind an EC2 instance, the
`fraud-scorer` SageMaker endpoint, the `fraud-api` REST API with a usage plan, and an SNS topic for alerts.
AWS picks ids itself (access keys, instance ids, API ids), so `build` returns how the scenario's ids map to the
real ones and `rewrite` applies that map to event files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ACCOUNT = "111122223333"
REGION = "us-east-1"
TRAINING_BUCKET = "acme-fraud-training"
MODEL_BUCKET = "acme-model-registry"
TOPIC = "cordon-alerts"
# Ids the scenario files use, which AWS generates itself.
SCENARIO_CONTRACTOR_KEY = "AKIAIOSFODNN7CONTRAC"
SCENARIO_INSTANCE = "i-0a1b2c3d4e5f67890"
SCENARIO_API_ID = "a1b2c3d4e5"


@dataclass
class MlAccount:
    session: boto3.session.Session
    endpoint_url: str
    id_map: dict[str, str] = field(default_factory=dict)  # scenario id -> real id
    alerts_queue_url: str = ""

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)


def account_session(endpoint_url: str, account: str = ACCOUNT) -> boto3.session.Session:
    """A session in `account`, entered the way Cordon's responder enters a member account: by assuming a role."""
    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name=REGION)
    role = f"arn:aws:iam::{account}:role/CordonResponderRole"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName="cordon-demo-setup")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def build(endpoint_url: str) -> MlAccount:
    ml = MlAccount(account_session(endpoint_url), endpoint_url)
    _storage(ml)
    _identities(ml)
    _instance(ml)
    _endpoint(ml)
    _api(ml)
    _alerts(ml)
    return ml


def _storage(ml: MlAccount) -> None:
    s3 = ml.client("s3")
    for bucket in (TRAINING_BUCKET, MODEL_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for part in range(1, 9):
        s3.put_object(Bucket=TRAINING_BUCKET, Key=f"datasets/2026-11/part-{part:04d}.parquet", Body=b"PAR1")
    s3.put_object(Bucket=MODEL_BUCKET, Key="models/fraud-scorer/v7/model.tar.gz", Body=b"model")


def _identities(ml: MlAccount) -> None:
    iam = ml.client("iam")
    for role, service in (
        ("CordonResponderRole", "lambda"),
        ("ml-training-role", "ec2"),
        ("SageMakerExecutionRole", "sagemaker"),
        ("BreakGlassAdmin", "ec2"),
    ):
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="ml-training-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="ml-training-profile", RoleName="ml-training-role")
    for user in ("ml-contractor", "data-scientist-1", "admin-alice"):
        iam.create_user(UserName=user)
    key = iam.create_access_key(UserName="ml-contractor")["AccessKey"]["AccessKeyId"]
    iam.create_access_key(UserName="ml-contractor")  # a second key: only the one the incident names may go
    ml.id_map[SCENARIO_CONTRACTOR_KEY] = key


def _instance(ml: MlAccount) -> None:
    ec2 = ml.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="m5.large",
        IamInstanceProfile={"Name": "ml-training-profile"},
    )["Instances"][0]
    ml.id_map[SCENARIO_INSTANCE] = instance["InstanceId"]


def _endpoint(ml: MlAccount) -> None:
    sagemaker = ml.client("sagemaker")
    role = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecutionRole"
    sagemaker.create_model(
        ModelName="fraud-scorer-v7",
        ExecutionRoleArn=role,
        PrimaryContainer={
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgboost:1",
            "ModelDataUrl": f"s3://{MODEL_BUCKET}/models/fraud-scorer/v7/model.tar.gz",
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="fraud-scorer-v7",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "fraud-scorer-v7",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="fraud-scorer", EndpointConfigName="fraud-scorer-v7")


def _api(ml: MlAccount) -> None:
    apigateway = ml.client("apigateway")
    api = apigateway.create_rest_api(name="fraud-api")["id"]
    root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
    apigateway.put_method(restApiId=api, resourceId=root, httpMethod="POST", authorizationType="NONE")
    apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="POST", type="MOCK")
    apigateway.create_deployment(restApiId=api, stageName="prod")
    plan = apigateway.create_usage_plan(
        name="fraud-api-partners",
        apiStages=[{"apiId": api, "stage": "prod"}],
        throttle={"rateLimit": 100.0, "burstLimit": 200},
    )
    key = apigateway.create_api_key(name="partner-a", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    ml.id_map[SCENARIO_API_ID] = api


def _alerts(ml: MlAccount) -> None:
    sns, sqs = ml.client("sns"), ml.client("sqs")
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    ml.alerts_queue_url = sqs.create_queue(QueueName="soc-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=ml.alerts_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)


def rewrite(source: Path, target: Path, id_map: dict[str, str]) -> None:
    """Copy event files, replacing the scenario's ids with the ones AWS gave the built resources."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for old, new in id_map.items():
                text = text.replace(old, new)
            (target / path.name).write_text(text, encoding="utf-8")
