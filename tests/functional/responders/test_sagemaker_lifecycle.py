"""sagemaker.detach-lifecycle-config against moto. moto 5.2 lacks UpdateNotebookInstance: that call (and only
that one) is answered by a Stubber, which also changes moto's notebook the way AWS would; the notebook's state
is read from moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.sagemaker.models import sagemaker_backends

from responders.base import ResponderError, Target
from responders.sagemaker.lifecycle import DetachLifecycleConfig, update_request

from .conftest import ACCOUNT, REGION, check_read_back
from .stubbing import PartialStubber, pin_clients

NOTEBOOK = "research-nb"
NOTEBOOK_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance/{NOTEBOOK}"
TARGET = Target("sagemaker_notebook", NOTEBOOK_ARN, account=ACCOUNT, region=REGION)


def _moto_notebook() -> Any:
    return sagemaker_backends[ACCOUNT][REGION].notebook_instances[NOTEBOOK]


def _update_as_aws_does(request: dict[str, Any]) -> None:
    """What UpdateNotebookInstance does to a stopped notebook's lifecycle configuration."""
    notebook = _moto_notebook()
    assert notebook.status == "Stopped", "AWS refuses to update a notebook that is not Stopped"
    if request.get("DisassociateLifecycleConfig"):
        notebook.lifecycle_config_name = None
    elif "LifecycleConfigName" in request:
        notebook.lifecycle_config_name = request["LifecycleConfigName"]


@pytest.fixture
def notebook(aws: boto3.session.Session) -> None:
    sagemaker = aws.client("sagemaker")
    sagemaker.create_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName="priv-esc-config", OnStart=[{"Content": "ZWNobyBoaQ=="}]
    )
    sagemaker.create_notebook_instance(
        NotebookInstanceName=NOTEBOOK,
        InstanceType="ml.t3.medium",
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecutionRole",
        LifecycleConfigName="priv-esc-config",
    )


def _stubbed_context(aws: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch, answers: int) -> Any:
    ctx = make_context(aws)
    sagemaker = pin_clients(monkeypatch, ctx)["sagemaker"] = aws.client("sagemaker")
    stubber = PartialStubber(sagemaker, {"UpdateNotebookInstance": _update_as_aws_does})
    for _ in range(answers):
        stubber.add_response("update_notebook_instance", {})
    stubber.activate()
    return ctx, stubber


def test_the_update_requests_detach_and_reattach() -> None:
    assert update_request("nb", None) == {"NotebookInstanceName": "nb", "DisassociateLifecycleConfig": True}
    assert update_request("nb", "cfg") == {"NotebookInstanceName": "nb", "LifecycleConfigName": "cfg"}


def test_detach_from_a_stopped_notebook_and_roll_back(aws, notebook, make_context, monkeypatch) -> None:
    # GIVEN the notebook stopped (sagemaker.stop-notebook's step, earlier in the playbook)
    aws.client("sagemaker").stop_notebook_instance(NotebookInstanceName=NOTEBOOK)
    ctx, stubber = _stubbed_context(aws, make_context, monkeypatch, answers=2)
    responder = DetachLifecycleConfig()
    before = responder.read_state(ctx, TARGET, responder.Params())
    assert before == {"notebook": NOTEBOOK, "status": "Stopped", "lifecycle_config": "priv-esc-config"}
    # WHEN it is applied
    after = responder.apply(ctx, TARGET, responder.Params(), before)
    # THEN moto's notebook has no configuration, and a second apply calls nothing
    assert after["lifecycle_config"] is None and _moto_notebook().lifecycle_config_name is None
    assert responder.apply(ctx, TARGET, responder.Params(), before)["lifecycle_config"] is None
    # WHEN rolled back: the configuration it had is attached again
    restored = responder.rollback(ctx, TARGET, responder.Params(), before, after)
    assert restored["lifecycle_config"] == "priv-esc-config" == _moto_notebook().lifecycle_config_name
    stubber.assert_no_pending_responses()


def test_a_running_notebook_is_refused_and_a_stopping_one_retried(aws, notebook, make_context, monkeypatch) -> None:
    ctx, _ = _stubbed_context(aws, make_context, monkeypatch, answers=0)
    responder = DetachLifecycleConfig()
    before = responder.read_state(ctx, TARGET, responder.Params())
    with pytest.raises(ResponderError, match=r"is InService: .* stop it first") as running:
        responder.apply(ctx, TARGET, responder.Params(), before)
    assert running.value.permanent
    _moto_notebook().status = "Stopping"
    with pytest.raises(ResponderError, match=r"is Stopping: .* `cordon retry` attempts this again") as stopping:
        responder.apply(ctx, TARGET, responder.Params(), before)
    assert not stopping.value.permanent
    assert _moto_notebook().lifecycle_config_name == "priv-esc-config"  # nothing was called


def test_read_back_after_a_failed_call(aws, notebook, make_context, monkeypatch) -> None:
    aws.client("sagemaker").stop_notebook_instance(NotebookInstanceName=NOTEBOOK)
    ctx, _ = _stubbed_context(aws, make_context, monkeypatch, answers=2)
    responder = DetachLifecycleConfig()
    check_read_back(responder, ctx, TARGET, responder.Params())
    assert _moto_notebook().lifecycle_config_name == "priv-esc-config"


def test_only_notebook_targets(aws, notebook, make_context) -> None:
    endpoint = Target("sagemaker_endpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/x", ACCOUNT, REGION)
    with pytest.raises(ResponderError, match="acts on sagemaker_notebook, not 'sagemaker_endpoint'"):
        DetachLifecycleConfig().read_state(make_context(aws), endpoint, DetachLifecycleConfig.Params())
