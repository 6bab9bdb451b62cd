"""What a SageMaker call reads from S3 and which container images it runs, from its CloudTrail request.

A training job, processing job, pipeline execution or model names the S3 data it will read; the incident graph
needs those as resources, so a job that reads a poisoned prefix shares that prefix with the write that poisoned it.
Outputs (`outputDataConfig.s3OutputPath`, `processingOutputConfig`) are left out on purpose: a job writing its
results is the workload, not what it consumes.

Paths are CloudTrail's camelCase spelling of the request. A pipeline's inputs are seen only when they are passed
as parameters of the execution (`pipelineParameters`); defaults inside the pipeline definition are not in the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# eventName -> the request paths of the S3 URIs it reads. A step into a list visits every item.
_S3_INPUTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "CreateTrainingJob": (("inputDataConfig", "dataSource", "s3DataSource", "s3Uri"),),
    "CreateProcessingJob": (("processingInputs", "s3Input", "s3Uri"),),
    "CreateModel": (
        ("primaryContainer", "modelDataUrl"),
        ("primaryContainer", "modelDataSource", "s3DataSource", "s3Uri"),
        ("containers", "modelDataUrl"),
        ("containers", "modelDataSource", "s3DataSource", "s3Uri"),
    ),
    "CreateModelPackage": (("inferenceSpecification", "containers", "modelDataUrl"),),
    "StartPipelineExecution": (("pipelineParameters", "value"),),
}

_IMAGES: dict[str, tuple[tuple[str, ...], ...]] = {
    "CreateModel": (("primaryContainer", "image"), ("containers", "image")),
    "CreateModelPackage": (
        ("inferenceSpecification", "containers", "image"),
        ("additionalInferenceSpecifications", "containers", "image"),
    ),
}


def s3_inputs(event_name: str, params: dict[str, Any]) -> list[str]:
    """The `s3://` URIs the call reads, in request order, each once."""
    found = (value for path in _S3_INPUTS.get(event_name, ()) for value in _walk(params, path))
    return list(dict.fromkeys(v for v in found if isinstance(v, str) and v.startswith("s3://") and len(v) > 5))


def images(event_name: str, params: dict[str, Any]) -> list[str]:
    """The container images the call names (a model's or a model package's containers), each once."""
    found = (value for path in _IMAGES.get(event_name, ()) for value in _walk(params, path))
    return list(dict.fromkeys(v for v in found if isinstance(v, str) and v))


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
    elif not path:
        yield node
    elif isinstance(node, dict) and path[0] in node:
        yield from _walk(node[path[0]], path[1:])
