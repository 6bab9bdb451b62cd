"""SageMaker responders against moto. moto 5.2 lacks UpdateEndpoint and StopTrainingJob: those two calls (and only
those) are answered by a Stubber, which also moves moto's resource the way AWS would."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from moto.sagemaker.models import sagemaker_backends
from pydantic import ValidationError

from responders.base import ActionContext, ResponderError, Target, VerificationError
from responders.sagemaker import (
    PRIOR_CONFIG_TAG,
    PRIOR_WEIGHT_TAG,
    QUARANTINE_TAG,
    SOURCE_CONFIG_TAG,
    QuarantineEndpoint,
    QuarantineEndpointParams,
    RejectModelPackage,
    StopNotebook,
    StopTrainingJob,
    quarantine_config_name,
)

from .conftest import ACCOUNT, REGION, check_read_back
from .stubbing import PartialStubber, pin_clients

ENDPOINT = "fraud-scorer"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/contractor"
POLICY = f"cordon-deny-invoke-{ENDPOINT}"
INCIDENT = "inc-0000000000000001"
SID = "Cordoninc0000000000000001"
MUTATING = ("Add", "Delete", "Put", "Update", "Create", "Stop", "Start")


def _backend() -> Any:
    return sagemaker_backends[ACCOUNT][REGION]


@pytest.fixture
def calls(aws: boto3.session.Session) -> list[str]:
    """Names of the AWS operations made through clients of the `aws` session from now on."""
    seen: list[str] = []
    aws.events.register("before-call.*.*", lambda model, **_: seen.append(model.name))
    return seen


def _mutations(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(MUTATING)]


# --- sagemaker.quarantine-endpoint -----------------------------------------------------------------------------------


@pytest.fixture
def endpoint(aws: boto3.session.Session) -> str:
    iam, sagemaker = aws.client("iam"), aws.client("sagemaker")
    iam.create_role(RoleName="ml-training-role", AssumeRolePolicyDocument="{}")
    iam.create_user(UserName="contractor")
    sagemaker.create_model(ModelName="fraud-v3", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": "img"})
    variant = {"ModelName": "fraud-v3", "InstanceType": "ml.m5.large"}
    sagemaker.create_endpoint_config(
        EndpointConfigName="fraud-config-v3",
        ProductionVariants=[
            {**variant, "VariantName": "blue", "InitialInstanceCount": 3, "InitialVariantWeight": 1.0},
            {**variant, "VariantName": "green", "InitialInstanceCount": 1, "InitialVariantWeight": 0.5},
        ],
    )
    sagemaker.create_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName="fraud-config-v3", Tags=[{"Key": "team", "Value": "fraud"}]
    )
    return ENDPOINT_ARN


def _target(arn: str = ENDPOINT_ARN, type_: str = "sagemaker_endpoint") -> Target:
    return Target(type=type_, id=arn, account=ACCOUNT, region=REGION)


def _params(**kwargs: Any) -> QuarantineEndpointParams:
    return QuarantineEndpointParams.model_validate({"deny_principals": [ROLE_ARN, USER_ARN]} | kwargs)


def _tags(aws: boto3.session.Session, arn: str = ENDPOINT_ARN) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in aws.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]}


def _role_policy(aws: boto3.session.Session) -> dict[str, Any]:
    return dict(aws.client("iam").get_role_policy(RoleName="ml-training-role", PolicyName=POLICY)["PolicyDocument"])


def test_quarantine_read_state_is_read_only(aws: Any, endpoint: str, make_context: Any, calls: list[str]) -> None:
    state = QuarantineEndpoint().read_state(make_context(aws), _target(), _params())

    assert _mutations(calls) == []
    assert state["weights"] == {"blue": 1.0, "green": 0.5}
    assert state["quarantined_by"] is None
    assert state["deny_policies"] == {ROLE_ARN: None, USER_ARN: None}
    assert state["restore"] == {"endpoint_config": None, "weights": {}}


def test_quarantine_tags_and_denies_the_principals(aws: Any, endpoint: str, make_context: Any) -> None:
    ctx, responder = make_context(aws), QuarantineEndpoint()
    before = responder.read_state(ctx, _target(), _params())

    after = responder.apply(ctx, _target(), _params(), before)

    assert _tags(aws) == {"team": "fraud", QUARANTINE_TAG: INCIDENT}
    statement = {"Sid": SID, "Effect": "Deny", "Action": "sagemaker:InvokeEndpoint*", "Resource": ENDPOINT_ARN}
    assert _role_policy(aws) == {"Version": "2012-10-17", "Statement": [statement]}
    user_policy = aws.client("iam").get_user_policy(UserName="contractor", PolicyName=POLICY)["PolicyDocument"]
    assert user_policy["Statement"] == [statement]
    assert after["quarantined_by"] == INCIDENT
    assert after["weights"] == {"blue": 1.0, "green": 0.5}  # cut_traffic: none


def test_quarantine_apply_twice_changes_nothing_the_second_time(
    aws: Any, endpoint: str, make_context: Any, calls: list[str]
) -> None:
    ctx, responder, params = make_context(aws), QuarantineEndpoint(), _params(cut_traffic="zero_weights")
    first = responder.apply(ctx, _target(), params, responder.read_state(ctx, _target(), params))
    calls.clear()

    second = responder.apply(ctx, _target(), params, responder.read_state(ctx, _target(), params))

    assert _mutations(calls) == []
    assert second == first


def test_quarantine_zero_weights_and_rollback_restores_everything(aws: Any, endpoint: str, make_context: Any) -> None:
    # GIVEN an endpoint serving on two variants
    ctx, responder, params = make_context(aws), QuarantineEndpoint(), _params(cut_traffic="zero_weights")
    before = responder.read_state(ctx, _target(), params)

    # WHEN it is quarantined with zero weights
    after = responder.apply(ctx, _target(), params, before)

    # THEN no variant gets default traffic, and the endpoint carries what restores it
    assert after["weights"] == {"blue": 0.0, "green": 0.0}
    assert _tags(aws)[PRIOR_WEIGHT_TAG + "blue"] == "1.0"
    assert _tags(aws)[PRIOR_WEIGHT_TAG + "green"] == "0.5"

    # WHEN it is rolled back THEN the endpoint is exactly as before
    restored = responder.rollback(ctx, _target(), params, before, after)
    assert restored.pop("notes") == []
    assert restored == before
    assert _tags(aws) == {"team": "fraud"}
    with pytest.raises(aws.client("iam").exceptions.NoSuchEntityException):
        _role_policy(aws)


def test_quarantine_rollback_after_a_repeated_apply_still_restores_the_weights(
    aws: Any, endpoint: str, make_context: Any
) -> None:
    # GIVEN an apply whose audit record was lost, and a repeat that only sees weights already at 0
    ctx, responder, params = make_context(aws), QuarantineEndpoint(), _params(cut_traffic="zero_weights")
    original = responder.read_state(ctx, _target(), params)
    responder.apply(ctx, _target(), params, original)
    stale_before = responder.read_state(ctx, _target(), params)
    after = responder.apply(ctx, _target(), params, stale_before)

    # WHEN the repeat is rolled back THEN the tags on the endpoint still restore the original weights
    restored = responder.rollback(ctx, _target(), params, stale_before, after)
    assert restored["weights"] == {"blue": 1.0, "green": 0.5}
    assert {k: v for k, v in restored.items() if k != "notes"} == original


def test_quarantine_config_switches_to_a_zero_weight_copy_and_back(
    aws: Any, endpoint: str, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Stubber for UpdateEndpoint only (moto 5.2 lacks it); it moves moto's endpoint as AWS would
    ctx, responder, params = make_context(aws), QuarantineEndpoint(), _params(cut_traffic="quarantine_config")
    sagemaker = pin_clients(monkeypatch, ctx)["sagemaker"] = aws.client("sagemaker")

    def switch(request: dict[str, Any]) -> None:
        _backend().endpoints[request["EndpointName"]].endpoint_config_name = request["EndpointConfigName"]

    stubber = PartialStubber(sagemaker, {"UpdateEndpoint": switch})
    quarantine = quarantine_config_name(ENDPOINT)
    stubber.add_response(
        "update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": ENDPOINT, "EndpointConfigName": quarantine}
    )
    before = responder.read_state(ctx, _target(), params)

    # WHEN it is quarantined with a quarantine config
    with stubber:
        after = responder.apply(ctx, _target(), params, before)
    stubber.assert_no_pending_responses()

    # THEN the copy keeps the models, routes no default traffic, runs one instance per variant, and says its source
    config = aws.client("sagemaker").describe_endpoint_config(EndpointConfigName=quarantine)
    assert [
        (v["VariantName"], v["ModelName"], v["InitialVariantWeight"], v["InitialInstanceCount"])
        for v in config["ProductionVariants"]
    ] == [
        ("blue", "fraud-v3", 0.0, 1),
        ("green", "fraud-v3", 0.0, 1),
    ]
    assert _tags(aws, config["EndpointConfigArn"])[SOURCE_CONFIG_TAG] == "fraud-config-v3"
    assert after["endpoint_config"] == quarantine
    assert _tags(aws)[PRIOR_CONFIG_TAG] == "fraud-config-v3"

    # WHEN it is rolled back THEN the endpoint runs its own config again and carries no Cordon tag
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": ENDPOINT_ARN},
        {"EndpointName": ENDPOINT, "EndpointConfigName": "fraud-config-v3"},
    )
    with stubber:
        restored = responder.rollback(ctx, _target(), params, before, after)
    stubber.assert_no_pending_responses()
    assert restored.pop("notes") == []
    assert restored == before


def test_quarantine_config_is_reused_by_a_later_quarantine(
    aws: Any, endpoint: str, make_context: Any, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    # GIVEN a quarantine with a quarantine config, rolled back (UpdateEndpoint stubbed: moto 5.2 lacks it)
    ctx, responder, params = make_context(aws), QuarantineEndpoint(), _params(cut_traffic="quarantine_config")
    sagemaker = pin_clients(monkeypatch, ctx).setdefault("sagemaker", aws.client("sagemaker"))

    def switch(request: dict[str, Any]) -> None:
        _backend().endpoints[request["EndpointName"]].endpoint_config_name = request["EndpointConfigName"]

    stubber = PartialStubber(sagemaker, {"UpdateEndpoint": switch})
    for config in (quarantine_config_name(ENDPOINT), "fraud-config-v3", quarantine_config_name(ENDPOINT)):
        stubber.add_response(
            "update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": ENDPOINT, "EndpointConfigName": config}
        )
    with stubber:
        after = responder.apply(ctx, _target(), params, {})
        responder.rollback(ctx, _target(), params, {}, after)
        calls.clear()

        # WHEN the endpoint is quarantined again
        again = responder.apply(ctx, _target(), params, {})

    # THEN the config Cordon built from the same source is reused, not created twice
    assert "CreateEndpointConfig" not in calls
    assert again["endpoint_config"] == quarantine_config_name(ENDPOINT)
    stubber.assert_no_pending_responses()


def test_quarantine_rollback_leaves_traffic_someone_restored_since(aws: Any, endpoint: str, make_context: Any) -> None:
    ctx, responder, params = make_context(aws), QuarantineEndpoint(), _params(cut_traffic="zero_weights")
    after = responder.apply(ctx, _target(), params, {})
    aws.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredWeight": 2.0}]
    )

    restored = responder.rollback(ctx, _target(), params, {}, after)

    assert restored["notes"] == ["traffic was changed after the quarantine; left as it is"]
    assert restored["weights"] == {"blue": 2.0, "green": 0.0}
    assert _tags(aws) == {"team": "fraud"}


def test_quarantine_refuses_to_zero_weights_it_could_not_restore(
    aws: Any, endpoint: str, make_context: Any, calls: list[str]
) -> None:
    for variant in _backend().endpoints[ENDPOINT].production_variants:
        variant.pop("DesiredWeight"), variant.pop("CurrentWeight")
    calls.clear()
    with pytest.raises(ResponderError, match=r"^endpoint fraud-scorer reports no weight for blue, green$"):
        QuarantineEndpoint().apply(make_context(aws), _target(), _params(cut_traffic="zero_weights"), {})
    assert _mutations(calls) == []


def test_quarantine_config_refuses_a_namesake_cordon_did_not_build(
    aws: Any, endpoint: str, make_context: Any, calls: list[str]
) -> None:
    aws.client("sagemaker").create_endpoint_config(
        EndpointConfigName=quarantine_config_name(ENDPOINT),
        ProductionVariants=[
            {"VariantName": "x", "ModelName": "fraud-v3", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    calls.clear()

    with pytest.raises(
        ResponderError,
        match=r"^endpoint config fraud-scorer-cordon-quarantine exists but was not built by Cordon from "
        r"fraud-config-v3 \(its cordon:source-config tag is None\); delete it or use cut_traffic: zero_weights$",
    ):
        QuarantineEndpoint().apply(make_context(aws), _target(), _params(cut_traffic="quarantine_config"), {})
    assert _mutations(calls) == []  # refused before changing anything


def test_quarantine_config_name_stays_a_valid_sagemaker_name() -> None:
    assert quarantine_config_name("fraud-scorer") == "fraud-scorer-cordon-quarantine"
    long = quarantine_config_name("a" * 63)
    assert len(long) == 63 and long.endswith("-cordon-quarantine")
    assert long != quarantine_config_name("a" * 62 + "b")


def test_quarantine_refuses_to_cut_an_endpoint_that_is_updating(
    aws: Any, endpoint: str, make_context: Any, calls: list[str]
) -> None:
    _backend().endpoints[ENDPOINT].endpoint_status = "Updating"
    calls.clear()

    with pytest.raises(
        ResponderError, match=r"^endpoint fraud-scorer is Updating: its traffic can be cut once it is InService$"
    ) as error:
        QuarantineEndpoint().apply(make_context(aws), _target(), _params(cut_traffic="zero_weights"), {})
    assert error.value.permanent is False
    assert _mutations(calls) == []


def test_quarantine_skips_principals_it_must_not_or_cannot_change(aws: Any, endpoint: str, make_context: Any) -> None:
    service_linked = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.amazonaws.com/AWSServiceRoleForSageMaker"
    elsewhere = "arn:aws:iam::999999999999:role/attacker"
    gone = f"arn:aws:iam::{ACCOUNT}:role/deleted-role"
    params = QuarantineEndpointParams(deny_principals=(ROLE_ARN, service_linked, elsewhere, gone))
    ctx = make_context(aws)

    after = QuarantineEndpoint().apply(ctx, _target(), params, {})

    assert after["skipped_principals"] == {
        service_linked: "service-linked role",
        elsewhere: f"in account 999999999999, not the endpoint's {ACCOUNT}: deny it there",
        gone: "does not exist",
    }
    assert list(after["deny_policies"]) == [ROLE_ARN]


def test_quarantine_shares_a_principal_deny_with_another_incident(aws: Any, endpoint: str, make_context: Any) -> None:
    # GIVEN another incident already denied the role on this endpoint and owns the quarantine tag
    other = make_context(aws, incident={"id": "inc-other", "entities": []})
    responder, params = QuarantineEndpoint(), QuarantineEndpointParams(deny_principals=(ROLE_ARN,))
    responder.apply(other, _target(), params, {})
    ctx = make_context(aws)

    # WHEN this incident quarantines and then rolls back
    before = responder.read_state(ctx, _target(), params)
    after = responder.apply(ctx, _target(), params, before)
    assert [s["Sid"] for s in _role_policy(aws)["Statement"]] == ["Cordonincother", SID]
    restored = responder.rollback(ctx, _target(), params, before, after)

    # THEN only its own statement goes; the other incident's deny and tag stay
    assert [s["Sid"] for s in _role_policy(aws)["Statement"]] == ["Cordonincother"]
    assert _tags(aws)[QUARANTINE_TAG] == "inc-other"
    assert restored["notes"] == ["quarantine owned by inc-other; left in place"]


def test_quarantine_keeps_other_statements_in_an_existing_policy(aws: Any, endpoint: str, make_context: Any) -> None:
    hand_written = {"Sid": "Manual", "Effect": "Deny", "Action": "sagemaker:DeleteEndpoint", "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [hand_written]})
    aws.client("iam").put_role_policy(RoleName="ml-training-role", PolicyName=POLICY, PolicyDocument=policy)
    ctx, responder, params = (
        make_context(aws),
        QuarantineEndpoint(),
        QuarantineEndpointParams(deny_principals=(ROLE_ARN,)),
    )

    before = responder.read_state(ctx, _target(), params)
    after = responder.apply(ctx, _target(), params, before)
    responder.rollback(ctx, _target(), params, before, after)

    assert _role_policy(aws)["Statement"] == [hand_written]


def test_quarantine_raises_when_the_cut_does_not_take(
    aws: Any, endpoint: str, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Stubber answers UpdateEndpointWeightsAndCapacities without changing moto: AWS said yes, nothing happened.
    ctx = make_context(aws)
    stubber = PartialStubber(
        pin_clients(monkeypatch, ctx).setdefault("sagemaker", aws.client("sagemaker")),
        {"UpdateEndpointWeightsAndCapacities": lambda _: None},
    )
    stubber.add_response("update_endpoint_weights_and_capacities", {"EndpointArn": ENDPOINT_ARN})

    with (
        stubber,
        pytest.raises(
            VerificationError,
            match=r"^quarantine of .*endpoint/fraud-scorer did not take: traffic not cut \(zero_weights\): "
            r"weights \{'blue': 1.0, 'green': 0.5\}, config fraud-config-v3$",
        ),
    ):
        QuarantineEndpoint().apply(ctx, _target(), _params(cut_traffic="zero_weights"), {})


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            _target(type_="sagemaker_notebook"),
            "sagemaker.quarantine-endpoint acts on sagemaker_endpoint, not 'sagemaker_notebook'",
        ),
        (
            _target(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{ENDPOINT}"),
            "not a SageMaker endpoint ARN: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/fraud-scorer'",
        ),
        (
            _target(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/bad_name"),
            "not a SageMaker endpoint ARN: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/bad_name'",
        ),
        (
            _target(ENDPOINT_ARN.replace(REGION, "eu-west-1")),
            "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/fraud-scorer is in eu-west-1, "
            "but the session is for us-east-1",
        ),
        (
            Target("sagemaker_endpoint", ENDPOINT_ARN, account="111122223333"),
            f"{ENDPOINT_ARN} is in account {ACCOUNT}, but the target says 111122223333",
        ),
    ],
)
def test_quarantine_refuses_other_targets(
    aws: Any, endpoint: str, make_context: Any, target: Target, message: str
) -> None:
    with pytest.raises(ResponderError, match=f"^{re.escape(message)}$"):
        QuarantineEndpoint().read_state(make_context(aws), target, _params())


def test_quarantine_needs_an_incident_id(aws: Any, endpoint: str, make_context: Any) -> None:
    with pytest.raises(ResponderError, match=r"^the incident has no usable id \(got None\)$"):
        QuarantineEndpoint().apply(make_context(aws, incident={"entities": []}), _target(), _params(), {})


@pytest.mark.parametrize(
    "params",
    [
        {"deny_principals": [f"arn:aws:sts::{ACCOUNT}:assumed-role/ml-training-role/session"]},
        {"deny_principals": ["ml-training-role"]},
        {"cut_traffic": "delete_endpoint"},
        {"cut_traffic": None},
        {"deny_principal": [ROLE_ARN]},
    ],
)
def test_quarantine_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QuarantineEndpointParams.model_validate(params)


# --- sagemaker.stop-notebook -----------------------------------------------------------------------------------------

NOTEBOOK_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance/research-nb"


@pytest.fixture
def notebook(aws: boto3.session.Session) -> Target:
    aws.client("sagemaker").create_notebook_instance(
        NotebookInstanceName="research-nb", InstanceType="ml.t2.medium", RoleArn=ROLE_ARN
    )
    return Target("sagemaker_notebook", NOTEBOOK_ARN, account=ACCOUNT, region=REGION)


def _notebook_status(aws: boto3.session.Session) -> str:
    return str(
        aws.client("sagemaker").describe_notebook_instance(NotebookInstanceName="research-nb")["NotebookInstanceStatus"]
    )


def test_stop_notebook_and_roll_back(aws: Any, notebook: Target, make_context: Any, calls: list[str]) -> None:
    ctx, responder, params = make_context(aws), StopNotebook(), StopNotebook.Params()
    before = responder.read_state(ctx, notebook, params)
    assert _mutations(calls) == [] and before["status"] == "InService"

    after = responder.apply(ctx, notebook, params, before)
    assert _notebook_status(aws) == "Stopped" and after["was_running"] is True
    calls.clear()
    assert responder.apply(ctx, notebook, params, responder.read_state(ctx, notebook, params))["status"] == "Stopped"
    assert _mutations(calls) == []  # the second apply had nothing to do

    assert responder.rollback(ctx, notebook, params, before, after) == before
    assert _notebook_status(aws) == "InService"


def test_stop_notebook_rollback_leaves_a_notebook_that_was_already_stopped(
    aws: Any, notebook: Target, make_context: Any
) -> None:
    aws.client("sagemaker").stop_notebook_instance(NotebookInstanceName="research-nb")
    ctx, responder, params = make_context(aws), StopNotebook(), StopNotebook.Params()
    before = responder.read_state(ctx, notebook, params)
    after = responder.apply(ctx, notebook, params, before)

    assert after["was_running"] is False
    assert responder.rollback(ctx, notebook, params, before, after)["status"] == "Stopped"


def test_stop_notebook_waits_for_an_update_to_finish(aws: Any, notebook: Target, make_context: Any) -> None:
    _backend().notebook_instances["research-nb"].status = "Updating"
    with pytest.raises(
        ResponderError, match=r"^notebook research-nb is Updating: it can be stopped once that ends$"
    ) as error:
        StopNotebook().apply(make_context(aws), notebook, StopNotebook.Params(), {})
    assert error.value.permanent is False


def test_stop_notebook_raises_when_the_stop_does_not_take(
    aws: Any, notebook: Target, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(aws)
    stubber = PartialStubber(
        pin_clients(monkeypatch, ctx).setdefault("sagemaker", aws.client("sagemaker")),
        {"StopNotebookInstance": lambda _: None},
    )
    stubber.add_response("stop_notebook_instance", {})
    with (
        stubber,
        pytest.raises(VerificationError, match=r"^notebook research-nb is still InService after StopNotebookInstance$"),
    ):
        StopNotebook().apply(ctx, notebook, StopNotebook.Params(), {})


def test_stop_notebook_refuses_other_targets_and_params(aws: Any, notebook: Target, make_context: Any) -> None:
    with pytest.raises(
        ResponderError, match=r"^sagemaker.stop-notebook acts on sagemaker_notebook, not 'sagemaker_endpoint'$"
    ):
        StopNotebook().read_state(make_context(aws), _target(), StopNotebook.Params())
    with pytest.raises(ResponderError, match=r"^not a SageMaker notebook-instance ARN: 'research-nb'$"):
        StopNotebook().read_state(make_context(aws), Target("sagemaker_notebook", "research-nb"), StopNotebook.Params())
    with pytest.raises(ValidationError):
        StopNotebook.Params.model_validate({"force": True})


# --- sagemaker.stop-training-job -------------------------------------------------------------------------------------

JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/fraud-train-42"


@pytest.fixture
def training_job(aws: boto3.session.Session) -> Target:
    aws.client("sagemaker").create_training_job(
        TrainingJobName="fraud-train-42",
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=ROLE_ARN,
        OutputDataConfig={"S3OutputPath": "s3://ml-models/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    _backend().training_jobs["fraud-train-42"].training_job_status = "InProgress"  # moto completes jobs at once
    return Target("sagemaker_training_job", JOB_ARN, account=ACCOUNT, region=REGION)


def _stop_stub(monkeypatch: pytest.MonkeyPatch, ctx: ActionContext, aws: Any, takes: bool = True) -> PartialStubber:
    # moto 5.2 lacks StopTrainingJob: a Stubber answers it and moves moto's job to Stopping, as AWS does.
    def stop(request: dict[str, Any]) -> None:
        if takes:
            _backend().training_jobs[request["TrainingJobName"]].training_job_status = "Stopping"

    return PartialStubber(
        pin_clients(monkeypatch, ctx).setdefault("sagemaker", aws.client("sagemaker")), {"StopTrainingJob": stop}
    )


def test_stop_training_job(
    aws: Any, training_job: Target, make_context: Any, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> None:
    ctx, responder, params = make_context(aws), StopTrainingJob(), StopTrainingJob.Params()
    before = responder.read_state(ctx, training_job, params)
    assert _mutations(calls) == [] and before["status"] == "InProgress"
    stubber = _stop_stub(monkeypatch, ctx, aws)
    stubber.add_response("stop_training_job", {}, {"TrainingJobName": "fraud-train-42"})

    with stubber:
        after = responder.apply(ctx, training_job, params, before)
        calls.clear()
        again = responder.apply(ctx, training_job, params, after)  # a second apply: nothing left to stop
    stubber.assert_no_pending_responses()

    assert after["status"] == again["status"] == "Stopping"
    assert _mutations(calls) == []


def test_stop_training_job_leaves_a_finished_job(
    aws: Any, training_job: Target, make_context: Any, calls: list[str]
) -> None:
    _backend().training_jobs["fraud-train-42"].training_job_status = "Completed"
    calls.clear()
    assert (
        StopTrainingJob().apply(make_context(aws), training_job, StopTrainingJob.Params(), {})["status"] == "Completed"
    )
    assert _mutations(calls) == []


def test_stop_training_job_raises_when_the_stop_does_not_take(
    aws: Any, training_job: Target, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(aws)
    stubber = _stop_stub(monkeypatch, ctx, aws, takes=False)
    stubber.add_response("stop_training_job", {})
    with (
        stubber,
        pytest.raises(VerificationError, match=r"^training job fraud-train-42 is InProgress after StopTrainingJob$"),
    ):
        StopTrainingJob().apply(ctx, training_job, StopTrainingJob.Params(), {})


def test_stop_training_job_cannot_be_rolled_back(aws: Any, training_job: Target, make_context: Any) -> None:
    assert StopTrainingJob.reversible is False
    with pytest.raises(ResponderError, match=r"^sagemaker.stop-training-job cannot be rolled back$"):
        StopTrainingJob().rollback(make_context(aws), training_job, StopTrainingJob.Params(), {}, {})


# --- sagemaker.reject-model-package ----------------------------------------------------------------------------------


@pytest.fixture
def model_package(aws: boto3.session.Session) -> Target:
    spec = {
        "Containers": [{"Image": "img"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="fraud-models")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="fraud-models", ModelApprovalStatus="Approved", InferenceSpecification=spec
    )["ModelPackageArn"]
    return Target("sagemaker_model_package", arn, account=ACCOUNT, region=REGION)


def test_reject_model_package_and_roll_back(
    aws: Any, model_package: Target, make_context: Any, calls: list[str]
) -> None:
    ctx, responder, params = make_context(aws), RejectModelPackage(), RejectModelPackage.Params()
    before = responder.read_state(ctx, model_package, params)
    assert _mutations(calls) == []
    assert before == {"model_package": model_package.id, "status": "Approved", "approval_description": None}

    after = responder.apply(ctx, model_package, params, before)
    assert after["status"] == "Rejected"
    assert after["approval_description"] == f"Rejected by Cordon for incident {INCIDENT} (was Approved)"
    calls.clear()
    again = responder.apply(ctx, model_package, params, responder.read_state(ctx, model_package, params))
    assert _mutations(calls) == []
    assert again["restore"] == {"status": "Approved", "approval_description": None}  # recovered from our description

    assert responder.rollback(ctx, model_package, params, before, after) == before


def test_reject_model_package_keeps_someone_elses_rejection(aws: Any, model_package: Target, make_context: Any) -> None:
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=model_package.id, ModelApprovalStatus="Rejected", ApprovalDescription="bad metrics"
    )
    ctx, responder, params = make_context(aws), RejectModelPackage(), RejectModelPackage.Params()
    before = responder.read_state(ctx, model_package, params)

    after = responder.apply(ctx, model_package, params, before)

    assert after["restore"] is None
    assert responder.rollback(ctx, model_package, params, before, after) == before


def test_reject_model_package_rollback_does_not_overwrite_a_later_change(
    aws: Any, model_package: Target, make_context: Any
) -> None:
    ctx, responder, params = make_context(aws), RejectModelPackage(), RejectModelPackage.Params()
    after = responder.apply(ctx, model_package, params, {})
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=model_package.id, ModelApprovalStatus="PendingManualApproval"
    )

    with pytest.raises(
        ResponderError,
        match=r"^model package .*model-package/fraud-models/1 is PendingManualApproval now, "
        r"not Rejected: not overwriting that change$",
    ):
        responder.rollback(ctx, model_package, params, {}, after)


def test_reject_model_package_refuses_an_unversioned_arn(aws: Any, make_context: Any) -> None:
    target = Target("sagemaker_model_package", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/fraud-models")
    with pytest.raises(ResponderError, match=r"^not a SageMaker model-package ARN: '.*:model-package/fraud-models'$"):
        RejectModelPackage().read_state(make_context(aws), target, RejectModelPackage.Params())


def test_reject_model_package_refuses_a_whole_group(aws: Any, make_context: Any) -> None:
    group = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/fraud-models"
    with pytest.raises(
        ResponderError, match=rf"^{group} is a model package group: name one version \(model-package/GROUP/VERSION\)$"
    ):
        RejectModelPackage().read_state(
            make_context(aws), Target("sagemaker_model_package", group), RejectModelPackage.Params()
        )


def test_stop_notebook_read_back_holds_and_rolls_back(aws: Any, notebook: Target, make_context: Any) -> None:
    before = check_read_back(StopNotebook(), make_context(aws), notebook, StopNotebook.Params())
    assert before["status"] == "InService" and _notebook_status(aws) == "InService"


def test_reject_model_package_read_back_holds_and_rolls_back(
    aws: Any, model_package: Target, make_context: Any
) -> None:
    before = check_read_back(RejectModelPackage(), make_context(aws), model_package, RejectModelPackage.Params())
    assert before["status"] == "Approved"


def test_reject_model_package_read_back_does_not_hold_for_someone_elses_rejection(
    aws: Any, model_package: Target, make_context: Any
) -> None:
    ctx, responder, params = make_context(aws), RejectModelPackage(), RejectModelPackage.Params()
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=model_package.id, ModelApprovalStatus="Rejected", ApprovalDescription="by the model owner"
    )
    state = responder.read_state(ctx, model_package, params)
    assert not responder.holds(ctx, model_package, params, {}, state)


def test_stop_training_job_read_back_holds_once_stopping(make_context: Any, aws: Any, training_job: Target) -> None:
    # moto 5.2 has no StopTrainingJob: the contract is checked on the states DescribeTrainingJob reports.
    ctx, responder, params = make_context(aws), StopTrainingJob(), StopTrainingJob.Params()
    states = ("InProgress", "Stopping", "Stopped")
    held = [responder.holds(ctx, training_job, params, {}, {"status": s}) for s in states]
    assert held == [False, True, True]
