"""sagemaker.stop-training-job: stop a training job that is still running (not reversible)."""

from __future__ import annotations

from responders.aws import call
from responders.base import ActionContext, Responder, ResponderParams, State, Target, VerificationError, responder
from responders.sagemaker.arns import SageMakerArn, resolve_target


def _training_job_state(ctx: ActionContext, arn: SageMakerArn) -> State:
    answer = call(ctx.client("sagemaker").describe_training_job, TrainingJobName=arn.name)
    return {
        "training_job": answer["TrainingJobName"],
        "arn": answer["TrainingJobArn"],
        "status": answer["TrainingJobStatus"],
    }


@responder("sagemaker.stop-training-job")
class StopTrainingJob(Responder):
    """Stop a SageMaker training job that is InProgress (a finished job is left alone).

    Not reversible: a stopped training job cannot be resumed. Training again means a new job under a new name
    (possibly from its last checkpoint), a decision for the model's owners, not for a rollback.

    Example::

        - responder: sagemaker.stop-training-job
          target: "entities[?type=='sagemaker_training_job'].id"
    """

    permissions = ("sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob")
    target_types = frozenset({"sagemaker_training_job"})
    reversible = False

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _training_job_state(ctx, resolve_target(self, ctx, target, "training-job"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn = resolve_target(self, ctx, target, "training-job")
        state = _training_job_state(ctx, arn)
        if state["status"] != "InProgress":  # Stopping, Stopped, Completed, Failed: nothing left to stop
            return state
        call(ctx.client("sagemaker").stop_training_job, TrainingJobName=state["training_job"])
        after = _training_job_state(ctx, arn)
        if after["status"] not in {"Stopping", "Stopped"}:
            raise VerificationError(f"training job {after['training_job']} is {after['status']} after StopTrainingJob")
        return after

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return state.get("status") in {"Stopping", "Stopped"}
