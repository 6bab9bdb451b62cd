"""sagemaker.detach-lifecycle-config: take a notebook instance's lifecycle configuration off it (reversible).

SageMaker updates a notebook instance only while it is Stopped. This responder never stops one itself: stopping is
`sagemaker.stop-notebook`'s change, with its own audit record and rollback, and the playbook orders it first. A
notebook still Stopping (a minute or two in AWS) is a transient failure that `cordon retry` attempts again; one
InService is a permanent refusal naming the step that must come first. The configuration itself is kept, so a
rollback can attach it again (also only while the notebook is Stopped).
"""

from __future__ import annotations

from responders.aws import call
from responders.base import (
    ActionContext,
    Responder,
    ResponderError,
    ResponderParams,
    State,
    Target,
    VerificationError,
    responder,
)
from responders.sagemaker.arns import SageMakerArn, resolve_target

_STOPPING = frozenset({"Stopping", "Updating", "Pending"})  # settles by itself: worth retrying


def _notebook_state(ctx: ActionContext, arn: SageMakerArn) -> State:
    answer = call(ctx.client("sagemaker").describe_notebook_instance, NotebookInstanceName=arn.name)
    return {
        "notebook": answer["NotebookInstanceName"],
        "status": answer["NotebookInstanceStatus"],
        "lifecycle_config": answer.get("NotebookInstanceLifecycleConfigName"),
    }


def update_request(notebook: str, lifecycle_config: str | None) -> dict[str, object]:
    """The UpdateNotebookInstance request that leaves `notebook` with `lifecycle_config` (None: with none)."""
    if lifecycle_config is None:
        return {"NotebookInstanceName": notebook, "DisassociateLifecycleConfig": True}
    return {"NotebookInstanceName": notebook, "LifecycleConfigName": lifecycle_config}


def refusal(state: State, action: str) -> ResponderError | None:
    """Why the notebook cannot be updated now, or None when it is Stopped."""
    status = state["status"]
    if status == "Stopped":
        return None
    if status in _STOPPING:
        return ResponderError(
            f"notebook {state['notebook']} is {status}: SageMaker {action} a lifecycle configuration only once it "
            "is Stopped; `cordon retry` attempts this again",
            permanent=False,
        )
    return ResponderError(
        f"notebook {state['notebook']} is {status}: SageMaker {action} a lifecycle configuration only while it is "
        "Stopped; stop it first (sagemaker.stop-notebook, an earlier step of the playbook)"
    )


@responder("sagemaker.detach-lifecycle-config")
class DetachLifecycleConfig(Responder):
    """Detach the lifecycle configuration (the start-up script run as root) from a stopped notebook instance.

    The notebook must be Stopped: put a `sagemaker.stop-notebook` step on the same target before this one.
    Rollback attaches the configuration the notebook had before the first attempt.

    Example::

        - responder: sagemaker.detach-lifecycle-config
          target: "entities[?type=='sagemaker_notebook'].id"
    """

    permissions = ("sagemaker:DescribeNotebookInstance", "sagemaker:UpdateNotebookInstance")
    target_types = frozenset({"sagemaker_notebook"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _notebook_state(ctx, resolve_target(self, ctx, target, "notebook-instance"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn = resolve_target(self, ctx, target, "notebook-instance")
        state = _notebook_state(ctx, arn)
        if state["lifecycle_config"] is None:
            return state  # nothing attached (or a retry after AWS applied it): nothing to do
        problem = refusal(state, "detaches")
        if problem:
            raise problem
        call(ctx.client("sagemaker").update_notebook_instance, **update_request(state["notebook"], None))
        after = _notebook_state(ctx, arn)
        if after["lifecycle_config"] is not None:
            raise VerificationError(
                f"notebook {after['notebook']} still has lifecycle configuration {after['lifecycle_config']}"
            )
        return after

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return state.get("lifecycle_config") is None

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        arn = resolve_target(self, ctx, target, "notebook-instance")
        state = _notebook_state(ctx, arn)
        wanted = before.get("lifecycle_config")
        if state["lifecycle_config"] == wanted:
            return state
        problem = refusal(state, "attaches")
        if problem:
            raise problem
        call(ctx.client("sagemaker").update_notebook_instance, **update_request(state["notebook"], wanted))
        final = _notebook_state(ctx, arn)
        if final["lifecycle_config"] != wanted:
            raise VerificationError(
                f"notebook {final['notebook']} has lifecycle configuration {final['lifecycle_config']}, not {wanted}"
            )
        return final
