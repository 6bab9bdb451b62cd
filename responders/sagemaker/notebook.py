"""sagemaker.stop-notebook: stop a notebook instance; rollback starts it again if it was running."""

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

_NOTEBOOK_RUNNING = frozenset({"InService", "Pending"})
_NOTEBOOK_DOWN = frozenset({"Stopping", "Stopped", "Failed", "Deleting"})


def _notebook_state(ctx: ActionContext, arn: SageMakerArn) -> State:
    answer = call(ctx.client("sagemaker").describe_notebook_instance, NotebookInstanceName=arn.name)
    return {
        "notebook": answer["NotebookInstanceName"],
        "arn": answer["NotebookInstanceArn"],
        "status": answer["NotebookInstanceStatus"],
    }


@responder("sagemaker.stop-notebook")
class StopNotebook(Responder):
    """Stop a SageMaker notebook instance (its credentials and kernels stop with it; its volume is kept).

    Rollback starts it again only if it was running (InService or Pending) before Cordon stopped it.

    Example::

        - responder: sagemaker.stop-notebook
          target: "entities[?type=='sagemaker_notebook'].id"
    """

    permissions = (
        "sagemaker:DescribeNotebookInstance",
        "sagemaker:StopNotebookInstance",
        "sagemaker:StartNotebookInstance",
    )
    target_types = frozenset({"sagemaker_notebook"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _notebook_state(ctx, resolve_target(self, ctx, target, "notebook-instance"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn = resolve_target(self, ctx, target, "notebook-instance")
        state = _notebook_state(ctx, arn)
        if state["status"] in _NOTEBOOK_RUNNING:
            call(ctx.client("sagemaker").stop_notebook_instance, NotebookInstanceName=state["notebook"])
        elif state["status"] not in _NOTEBOOK_DOWN:  # Updating: SageMaker refuses a stop until it settles
            raise ResponderError(
                f"notebook {state['notebook']} is {state['status']}: it can be stopped once that ends", permanent=False
            )
        after = _notebook_state(ctx, arn)
        if after["status"] not in _NOTEBOOK_DOWN:
            raise VerificationError(
                f"notebook {after['notebook']} is still {after['status']} after StopNotebookInstance"
            )
        return after | {"was_running": state["status"] in _NOTEBOOK_RUNNING}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return state.get("status") in _NOTEBOOK_DOWN

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        arn = resolve_target(self, ctx, target, "notebook-instance")
        state = _notebook_state(ctx, arn)
        # Read back after a failed call, `after` is a plain state: whether it ran is what `before` says.
        was_running = after["was_running"] if "was_running" in after else before.get("status") in _NOTEBOOK_RUNNING
        if not was_running or state["status"] in _NOTEBOOK_RUNNING:
            return state
        if state["status"] != "Stopped":
            raise ResponderError(
                f"notebook {state['notebook']} is {state['status']}: it can be started once it is Stopped",
                permanent=False,
            )
        call(ctx.client("sagemaker").start_notebook_instance, NotebookInstanceName=state["notebook"])
        final = _notebook_state(ctx, arn)
        if final["status"] not in _NOTEBOOK_RUNNING:
            raise VerificationError(f"notebook {final['notebook']} is {final['status']} after StartNotebookInstance")
        return final
