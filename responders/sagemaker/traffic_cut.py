"""sagemaker.quarantine-endpoint: cutting the endpoint's traffic, and the tags that let a rollback restore it."""

from __future__ import annotations

import hashlib
from typing import Any

from responders.aws import call
from responders.base import ResponderError, State

QUARANTINE_TAG = "cordon:quarantine"  # value: the incident that quarantined the endpoint (it owns the rollback)
PRIOR_CONFIG_TAG = "cordon:prior-endpoint-config"
PRIOR_WEIGHT_TAG = "cordon:prior-weight:"  # + variant name; value: the variant's weight before the cut
SOURCE_CONFIG_TAG = "cordon:source-config"  # on the quarantine config: the config it was copied from
_QUARANTINE_SUFFIX = "-cordon-quarantine"
_MAX_NAME = 63  # SageMaker names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}


# --- pure request builders -----------------------------------------------------------------------------------------


def quarantine_config_name(endpoint_name: str) -> str:
    name = endpoint_name + _QUARANTINE_SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(endpoint_name.encode()).hexdigest()[:8]  # keeps long names distinct when cut
    return f"{endpoint_name[: _MAX_NAME - len(_QUARANTINE_SUFFIX) - 9]}-{digest}{_QUARANTINE_SUFFIX}"


def quarantine_config_request(source: dict[str, Any], name: str, incident_id: str) -> dict[str, Any]:
    """CreateEndpointConfig for the quarantine copy of `source` (a DescribeEndpointConfig answer).

    Same models, instance types, encryption, network and data capture, so the endpoint stays deployed for
    forensics and a rollback is one UpdateEndpoint away; every variant gets weight 0 (no default-routed traffic)
    and one instance (the least capacity a hijacked endpoint can spend). Shadow variants are dropped: they would
    receive a copy of the traffic.
    """
    variants = []
    for variant in source["ProductionVariants"]:
        copy = {**variant, "InitialVariantWeight": 0.0}
        if "InitialInstanceCount" in copy:  # serverless variants have no instance count
            copy["InitialInstanceCount"] = 1
        variants.append(copy)
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": variants,
        "Tags": [
            {"Key": SOURCE_CONFIG_TAG, "Value": source["EndpointConfigName"]},
            {"Key": QUARANTINE_TAG, "Value": incident_id},
        ],
    }
    for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExecutionRoleArn", "VpcConfig"):
        if source.get(key):
            request[key] = source[key]
    if "EnableNetworkIsolation" in source:
        request["EnableNetworkIsolation"] = source["EnableNetworkIsolation"]
    return request


def restore_tags(state: State, cut: str) -> dict[str, str]:
    """Tags that let any later rollback restore traffic, even if the audit record of this apply is lost."""
    if cut == "zero_weights" and not state["restore"]["weights"] and not traffic_is_cut(state, cut):
        unknown = sorted(name for name, weight in state["weights"].items() if weight is None)
        if unknown:  # refusing beats cutting traffic that could not be restored
            raise ResponderError(f"endpoint {state['endpoint']} reports no weight for {', '.join(unknown)}")
        return {PRIOR_WEIGHT_TAG + name: repr(float(weight)) for name, weight in state["weights"].items()}
    if cut == "quarantine_config" and not state["restore"]["endpoint_config"] and not on_quarantine_config(state):
        return {PRIOR_CONFIG_TAG: state["endpoint_config"]}
    return {}


def on_quarantine_config(state: State) -> bool:
    name = quarantine_config_name(state["endpoint"])
    return name in (state["endpoint_config"], state["pending_endpoint_config"])


def traffic_is_cut(state: State, cut: str) -> bool:
    if cut == "zero_weights":
        return all(weight == 0 for weight in state["weights"].values())
    if cut == "quarantine_config":
        return on_quarantine_config(state)
    return True


# --- thin AWS I/O --------------------------------------------------------------------------------------------------


def prepare_quarantine_config(sagemaker: Any, state: State) -> bool:
    """Check (read-only) that the quarantine config can be used; True when it must still be created."""
    name = quarantine_config_name(state["endpoint"])
    try:
        existing = call(sagemaker.describe_endpoint_config, EndpointConfigName=name)
    except ResponderError as error:
        if error.code == "ValidationException" and "could not find" in str(error).lower():
            return True
        raise
    tags = {t["Key"]: t["Value"] for t in call(sagemaker.list_tags, ResourceArn=existing["EndpointConfigArn"])["Tags"]}
    source = state["restore"]["endpoint_config"] or state["endpoint_config"]
    if tags.get(SOURCE_CONFIG_TAG) != source:
        raise ResponderError(
            f"endpoint config {name} exists but was not built by Cordon from {source} "
            f"(its {SOURCE_CONFIG_TAG} tag is {tags.get(SOURCE_CONFIG_TAG)!r}); "
            "delete it or use cut_traffic: zero_weights"
        )
    return False
