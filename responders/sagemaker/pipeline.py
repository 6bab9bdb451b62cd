"""sagemaker.start-pipeline-execution: retrain from the known-good data, pinned to the object versions it is.

The dataset version handed to the pipeline is a manifest Cordon writes to S3 (under the site's
`retrain_manifest_prefix`) and names in one pipeline parameter (`TrainingDataManifest` unless the playbook says
otherwise). It lists, for every object under the training-data prefixes the incident names, the version current
when the run starts: after the restore, the known-good versions. A version id list would not fit a parameter
(1,024 characters), and a prefix alone would let whatever is written there between the approval and the run's
reads into the model; the manifest pins the data and stays as the record of what the model was trained on. A
pipeline step reads it and fetches each object by version id.

Refused while a current version under the prefixes carries Cordon's `cordon:suspect` mark (an object the incident
created, which no restore removes, or a restore that did not run): a person removes it or clears the mark, then
approves again. Only versions written at or after `since` can carry the mark from this incident, so only their
tags are read.

It acts in the incident's account (its target is the incident's `account` entity), where the poisoned data and
the site's pipeline are; a target whose account the runner's session is not for is refused.

One execution per incident and pipeline: its display name says the incident, so a retry finds the run it started
instead of starting another (and its ClientRequestToken makes a lost answer safe to repeat). Rollback stops the
execution while it is still executing; a finished run cannot be undone, and rollback says so.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, cast

from pydantic import AwareDatetime, Field, field_validator

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
from responders.s3_versions import SUSPECT_TAG, tag_set
from responders.sagemaker.arns import incident_id_of

_PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,255}")
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9\-_]{1,256}")
_MAX_MANIFEST_OBJECTS = 100_000
_MAX_LISTING_PAGES = 500  # versions, current or not, of the prefixes: 500,000
_EXECUTION_PAGES = 5  # the newest 250 executions of the pipeline: the one this incident started is among them
_RUNNING = "Executing"
_STOPPED = frozenset({"Stopping", "Stopped"})


def _s3_uri(uri: str, what: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ValueError(f"{what} {uri!r} is not an s3:// URI")
    return bucket, key


class StartPipelineParams(ResponderParams):
    """`pipeline`: the pipeline's name (bind `site.retrain_pipeline`). `training_data`: s3:// prefixes (or objects)
    whose current versions the manifest pins. `manifest_prefix`: s3://bucket/prefix/ the manifest is written under
    (bind `site.retrain_manifest_prefix`). `since`: the incident's first undeclared write."""

    pipeline: str
    training_data: list[str] = Field(min_length=1, max_length=1_000)
    manifest_prefix: str
    since: AwareDatetime
    dataset_parameter: str = "TrainingDataManifest"

    @field_validator("pipeline")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _PIPELINE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a SageMaker pipeline name (letters, digits and dashes, up to 256)")
        return name

    @field_validator("dataset_parameter")
    @classmethod
    def _parameter(cls, name: str) -> str:
        if not _PARAMETER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a pipeline parameter name")
        return name

    @field_validator("training_data")
    @classmethod
    def _prefixes(cls, uris: list[str]) -> list[str]:
        for uri in uris:
            _s3_uri(uri, "training data")
        return uris

    @field_validator("manifest_prefix")
    @classmethod
    def _manifest(cls, uri: str) -> str:
        _s3_uri(uri, "manifest prefix")
        return uri


# --- deciding (pure) ----------------------------------------------------------------------------------------------
def covering_prefixes(uris: list[str]) -> list[tuple[str, str]]:
    """(bucket, prefix) pairs to list, without one another covers (`datasets/fraud/` covers `datasets/fraud/x`).
    Prefixes as S3 and SageMaker's S3Prefix read them: plain string prefixes."""
    pairs = sorted({_s3_uri(uri, "training data") for uri in uris})
    kept: list[tuple[str, str]] = []
    for bucket, prefix in pairs:
        if not any(bucket == b and prefix.startswith(p) for b, p in kept):
            kept.append((bucket, prefix))
    return kept


def display_name(incident_id: str) -> str:
    """The execution's display name: says which incident started it (SageMaker allows letters, digits, dashes)."""
    return f"cordon-{re.sub(r'[^A-Za-z0-9]+', '-', incident_id).strip('-')}"[:82]


def request_token(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def manifest_document(
    incident_id: str, pipeline: str, created: datetime, prefixes: list[tuple[str, str]], objects: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "incident": incident_id,
        "pipeline": pipeline,
        "created": created.isoformat(),
        "prefixes": [f"s3://{bucket}/{prefix}" for bucket, prefix in prefixes],
        "objects": sorted(objects, key=lambda o: str(o["uri"])),
    }


# --- AWS I/O (thin) -----------------------------------------------------------------------------------------------
def _current_versions(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """The current version of every object under the prefix (a deleted object has none)."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(_MAX_LISTING_PAGES):
        page = call(s3.list_object_versions, **request)
        found += [
            {
                "uri": f"s3://{bucket}/{v['Key']}",
                "version_id": v["VersionId"],
                "etag": v.get("ETag"),
                "size": v.get("Size"),
                "last_modified": v["LastModified"],
            }
            for v in page.get("Versions", [])
            if v.get("IsLatest")
        ]
        if len(found) > _MAX_MANIFEST_OBJECTS:
            break
        if not page.get("IsTruncated"):
            return found
        request.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    raise ResponderError(f"s3://{bucket}/{prefix} holds more than {_MAX_MANIFEST_OBJECTS:,} objects: not pinned")


def _marked_suspect(s3: Any, objects: list[dict[str, Any]], since: datetime) -> list[str]:
    marked = []
    for obj in objects:
        if obj["last_modified"] >= since:
            bucket, key = _s3_uri(obj["uri"], "object")
            if any(t["Key"] == SUSPECT_TAG for t in tag_set(s3, bucket, key, obj["version_id"])):
                marked.append(obj["uri"])
    return marked


def _execution(sagemaker: Any, pipeline: str, name: str) -> dict[str, Any] | None:
    """This incident's execution of the pipeline, if one was started (newest first, a bounded look)."""
    request: dict[str, Any] = {"PipelineName": pipeline, "SortBy": "CreationTime", "SortOrder": "Descending"}
    for _ in range(_EXECUTION_PAGES):
        page = call(sagemaker.list_pipeline_executions, **request)
        for summary in page.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionDisplayName") == name:
                return _described(sagemaker, summary["PipelineExecutionArn"])
        if not page.get("NextToken"):
            return None
        request["NextToken"] = page["NextToken"]
    return None


def _described(sagemaker: Any, arn: str) -> dict[str, Any]:
    answer = call(sagemaker.describe_pipeline_execution, PipelineExecutionArn=arn)
    return {"arn": answer["PipelineExecutionArn"], "status": answer["PipelineExecutionStatus"]}


def _check_account(target: Target) -> None:
    if target.type != "account":
        raise ResponderError(f"sagemaker.start-pipeline-execution acts on an account, not {target.type!r}")
    if target.account != target.id:
        session = target.account or "the runner's own account"
        raise ResponderError(
            f"account {target.id}: the session is for {session} "
            "(an incident naming several accounts does not say where to retrain)"
        )


def _state(ctx: ActionContext, params: StartPipelineParams) -> State:
    sagemaker = ctx.client("sagemaker")
    call(sagemaker.describe_pipeline, PipelineName=params.pipeline)  # refuses a pipeline that does not exist
    name = display_name(incident_id_of(ctx))
    return {
        "pipeline": params.pipeline,
        "display_name": name,
        "execution": _execution(sagemaker, params.pipeline, name),
    }


def _write_manifest(s3: Any, uri: str, document: dict[str, Any]) -> dict[str, Any]:
    bucket, key = _s3_uri(uri, "manifest")
    body = json.dumps(document, default=str, indent=1).encode()
    answer = call(s3.put_object, Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return {"uri": uri, "version_id": answer.get("VersionId"), "objects": len(document["objects"])}


@responder("sagemaker.start-pipeline-execution")
class StartPipelineExecution(Responder):
    """Start the site's retraining pipeline on the known-good data: a manifest of the current version of every
    object under the training-data prefixes, written to S3, named in one pipeline parameter. Refused while a
    current version is marked `cordon:suspect`. Audited with the execution's ARN; rolled back by
    StopPipelineExecution while it is executing (a finished run cannot be undone: rollback says so).

    Example::

        - responder: sagemaker.start-pipeline-execution
          mode: approval
          target: "entities[?type=='account'].id"
          when: site.retrain_pipeline
          bind:
            pipeline: site.retrain_pipeline
            manifest_prefix: site.retrain_manifest_prefix
            training_data: "entities[?type=='object'].id"
            since: "min_by(signals[?rule=='ml_training_data_written_by_undeclared_writer'], &time).time"
    """

    permissions = (
        "s3:ListBucketVersions",
        "s3:GetObjectVersionTagging",
        "s3:PutObject",  # the manifest, under the configured prefix
        "sagemaker:DescribePipeline",
        "sagemaker:ListPipelineExecutions",
        "sagemaker:DescribePipelineExecution",
        "sagemaker:StartPipelineExecution",
        "sagemaker:StopPipelineExecution",
    )
    Params = StartPipelineParams
    target_types = frozenset({"account"})
    reversible = True  # while the run is executing; see rollback

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        _check_account(target)
        return _state(ctx, cast(StartPipelineParams, params))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        _check_account(target)
        chosen = cast(StartPipelineParams, params)
        state = _state(ctx, chosen)
        if state["execution"] is not None:
            return state  # started by an earlier attempt
        incident_id = incident_id_of(ctx)
        s3 = ctx.client("s3")
        prefixes = covering_prefixes(chosen.training_data)
        objects = [obj for bucket, prefix in prefixes for obj in _current_versions(s3, bucket, prefix)]
        if not objects:
            raise ResponderError(f"no object under {', '.join(chosen.training_data)}: nothing to retrain on")
        marked = _marked_suspect(s3, objects, chosen.since)
        if marked:
            shown = ", ".join(marked[:5]) + (f" and {len(marked) - 5} more" if len(marked) > 5 else "")
            raise ResponderError(
                f"not retraining: current versions are marked {SUSPECT_TAG} ({shown}): restore or remove them "
                "(or clear the mark), then approve again"
            )
        manifest_uri = f"{chosen.manifest_prefix.rstrip('/')}/{state['display_name']}/manifest.json"
        manifest = _write_manifest(
            s3, manifest_uri, manifest_document(incident_id, chosen.pipeline, ctx.now, prefixes, objects)
        )
        sagemaker = ctx.client("sagemaker")
        answer = call(
            sagemaker.start_pipeline_execution,
            PipelineName=chosen.pipeline,
            PipelineExecutionDisplayName=state["display_name"],
            PipelineExecutionDescription=f"Cordon incident {incident_id}: retrain from the known-good data",
            PipelineParameters=[{"Name": chosen.dataset_parameter, "Value": manifest_uri}],
            ClientRequestToken=request_token(incident_id, chosen.pipeline, manifest_uri),
        )
        execution = _described(sagemaker, answer["PipelineExecutionArn"])
        return state | {"execution": execution, "manifest": manifest}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return state.get("execution") is not None

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        _check_account(target)
        state = _state(ctx, cast(StartPipelineParams, params))
        execution = state["execution"]
        if execution is None or execution["status"] in _STOPPED:
            return state
        if execution["status"] != _RUNNING:
            raise ResponderError(
                f"pipeline execution {execution['arn']} is {execution['status']}: a finished run cannot be undone "
                "(what it produced stays; reject or delete it where it was registered)"
            )
        sagemaker = ctx.client("sagemaker")
        call(
            sagemaker.stop_pipeline_execution,
            PipelineExecutionArn=execution["arn"],
            ClientRequestToken=request_token("stop", execution["arn"]),
        )
        stopped = _described(sagemaker, execution["arn"])
        if stopped["status"] not in _STOPPED:
            raise VerificationError(f"pipeline execution {stopped['arn']} is {stopped['status']} after the stop")
        return state | {"execution": stopped}
