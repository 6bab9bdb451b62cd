"""EC2 responder: isolate one instance, evidence first (snapshots), then network, termination and credentials."""

from __future__ import annotations

import re
from typing import Any, cast

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

_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
INCIDENT_TAG = "cordon:incident"
_LIVE_ASSOCIATION = ("associating", "associated")


class IsolateParams(ResponderParams):
    """`snapshot`: snapshot every attached EBS volume first. `detach_instance_profile`: take the role away."""

    snapshot: bool = True
    detach_instance_profile: bool = True


# --- requests (pure) ------------------------------------------------------------------------------------------------
def parse_instance(target: Target) -> str:
    if not _INSTANCE_ID.fullmatch(target.id):
        raise ResponderError(f"not an EC2 instance id: {target.id!r}")
    return target.id


def quarantine_group_name(vpc_id: str) -> str:
    return f"cordon-quarantine-{vpc_id}"


def snapshot_request(incident_id: str, instance_id: str, volume_id: str) -> dict[str, Any]:
    tags = [{"Key": INCIDENT_TAG, "Value": incident_id}, {"Key": "cordon:instance", "Value": instance_id}]
    return {
        "VolumeId": volume_id,
        "Description": f"Cordon evidence for incident {incident_id}: {volume_id} of {instance_id}",
        "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tags}],
    }


def quarantine_group_request(vpc_id: str) -> dict[str, Any]:
    return {
        "GroupName": quarantine_group_name(vpc_id),
        "Description": "Cordon quarantine: no ingress, no egress",
        "VpcId": vpc_id,
        "TagSpecifications": [
            {"ResourceType": "security-group", "Tags": [{"Key": "cordon:purpose", "Value": "quarantine"}]}
        ],
    }


# --- AWS I/O (thin) -------------------------------------------------------------------------------------------------
def describe_instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    reservations = call(ec2.describe_instances, InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"] if i["InstanceId"] == instance_id]
    if not instances:
        raise ResponderError(f"instance {instance_id} not found")
    return dict(instances[0])


def find_snapshot(ec2: Any, incident_id: str, volume_id: str) -> str | None:
    filters = [{"Name": f"tag:{INCIDENT_TAG}", "Values": [incident_id]}, {"Name": "volume-id", "Values": [volume_id]}]
    snapshots = call(ec2.describe_snapshots, OwnerIds=["self"], Filters=filters)["Snapshots"]
    return str(snapshots[0]["SnapshotId"]) if snapshots else None


def find_quarantine_group(ec2: Any, vpc_id: str) -> dict[str, Any] | None:
    filters = [
        {"Name": "group-name", "Values": [quarantine_group_name(vpc_id)]},
        {"Name": "vpc-id", "Values": [vpc_id]},
    ]
    groups = call(ec2.describe_security_groups, Filters=filters)["SecurityGroups"]
    return dict(groups[0]) if groups else None


def ensure_quarantine_group(ec2: Any, vpc_id: str) -> str:
    """The VPC's quarantine group, created if missing, with every rule revoked (a new group allows all egress; a
    group left by an interrupted run may still)."""
    group = find_quarantine_group(ec2, vpc_id)
    if group is None:
        try:
            call(ec2.create_security_group, **quarantine_group_request(vpc_id))
        except ResponderError as error:
            if error.code != "InvalidGroup.Duplicate":  # a concurrent run created it first
                raise
        group = find_quarantine_group(ec2, vpc_id)
        if group is None:
            raise VerificationError(f"quarantine group of {vpc_id} not found after creating it")
    if group["IpPermissionsEgress"]:
        call(ec2.revoke_security_group_egress, GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
    if group["IpPermissions"]:
        call(ec2.revoke_security_group_ingress, GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    return str(group["GroupId"])


def profile_associations(ec2: Any, instance_id: str) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-id", "Values": [instance_id]}]
    associations = call(ec2.describe_iam_instance_profile_associations, Filters=filters)
    return [a for a in associations["IamInstanceProfileAssociations"] if a["State"] in _LIVE_ASSOCIATION]


def termination_protected(ec2: Any, instance_id: str) -> bool:
    attribute = call(ec2.describe_instance_attribute, InstanceId=instance_id, Attribute="disableApiTermination")
    return bool(attribute["DisableApiTermination"]["Value"])


def set_termination_protection(ec2: Any, instance_id: str, value: bool) -> None:
    if termination_protected(ec2, instance_id) != value:
        call(ec2.modify_instance_attribute, InstanceId=instance_id, DisableApiTermination={"Value": value})


@responder("ec2.isolate-instance")
class IsolateInstance(Responder):
    """Isolate one instance for forensics: evidence first, then containment. Reversible except the snapshots.

    In order: snapshot every attached EBS volume (tagged cordon:incident); put every network interface in the
    VPC's `cordon-quarantine-<vpc>` security group alone (no ingress, no egress); turn on termination protection;
    detach the instance profile. Credentials the instance already holds stay valid until they expire: pair this
    with iam.revoke-sessions on the instance's role. Connections already tracked may outlive the group change; a
    network ACL cuts them. Rollback restores each interface's groups, termination protection and the profile, and
    keeps the snapshots and the quarantine group.

    Example::

        - responder: ec2.isolate-instance
          target: "entities[?type=='instance'].id"
          params:
            snapshot: true
            detach_instance_profile: true
    """

    permissions = (
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeSnapshots",
        "ec2:CreateSnapshot",
        "ec2:CreateTags",  # tagging snapshots and groups on creation needs it
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:ModifyInstanceAttribute",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:AssociateIamInstanceProfile",
        "iam:PassRole",  # re-associating the profile on rollback passes its role
    )
    Params = IsolateParams
    target_types = frozenset({"instance"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        instance_id = parse_instance(target)
        ec2 = ctx.client("ec2")
        instance = describe_instance(ec2, instance_id)
        volumes = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
        incident_id = str(ctx.incident.get("id") or "")
        return {
            "instance_id": instance_id,
            "state": instance["State"]["Name"],
            "network_interfaces": {
                eni["NetworkInterfaceId"]: {"vpc_id": eni["VpcId"], "groups": [g["GroupId"] for g in eni["Groups"]]}
                for eni in instance.get("NetworkInterfaces", [])
            },
            "termination_protection": termination_protected(ec2, instance_id),
            "instance_profile": [a["IamInstanceProfile"]["Arn"] for a in profile_associations(ec2, instance_id)],
            "snapshots": {v: find_snapshot(ec2, incident_id, v) if incident_id else None for v in volumes},
        }

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        options = cast(IsolateParams, params)
        incident_id = str(ctx.incident.get("id") or "")
        if not incident_id:
            raise ResponderError("ec2.isolate-instance needs the incident id to tag its evidence")
        ec2 = ctx.client("ec2")
        current = self.read_state(ctx, target, params)
        instance_id = current["instance_id"]
        if current["state"] in ("shutting-down", "terminated"):
            raise ResponderError(f"instance {instance_id} is {current['state']}: nothing to isolate")
        # (a) Evidence before containment: a snapshot is the volume at the moment of the call.
        if options.snapshot:
            for volume, snapshot in current["snapshots"].items():
                if snapshot is None:
                    call(ec2.create_snapshot, **snapshot_request(incident_id, instance_id, volume))
        # (b, c) One quarantine group per VPC (interfaces of one instance may sit in different VPCs).
        interfaces = current["network_interfaces"]
        groups = {vpc: ensure_quarantine_group(ec2, vpc) for vpc in sorted({i["vpc_id"] for i in interfaces.values()})}
        for eni, interface in interfaces.items():
            quarantine = [groups[interface["vpc_id"]]]
            if interface["groups"] != quarantine:
                call(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni, Groups=quarantine)
        # (d) Termination protection keeps the evidence from being destroyed.
        set_termination_protection(ec2, instance_id, True)
        # (e) No new instance-role credentials.
        if options.detach_instance_profile:
            for association in profile_associations(ec2, instance_id):
                call(ec2.disassociate_iam_instance_profile, AssociationId=association["AssociationId"])
        after = self.read_state(ctx, target, params)
        problems = isolation_problems(after, groups, options)
        if problems:
            raise VerificationError(f"instance {instance_id} not isolated: {'; '.join(problems)}")
        return {**after, "quarantine_groups": groups, "previous": _restorable(current)}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        # `before` first: the state before the first attempt. A retry's `previous` may be half isolated already.
        previous = _restorable(before) if before.get("network_interfaces") is not None else after["previous"]
        ec2 = ctx.client("ec2")
        instance_id = parse_instance(target)
        current = self.read_state(ctx, target, params)
        for eni, groups in previous["network_interfaces"].items():
            # An interface detached since is gone from the instance: nothing to put back there.
            if eni in current["network_interfaces"] and current["network_interfaces"][eni]["groups"] != groups:
                call(ec2.modify_network_interface_attribute, NetworkInterfaceId=eni, Groups=groups)
        set_termination_protection(ec2, instance_id, previous["termination_protection"])
        if previous["instance_profile"] and not current["instance_profile"]:
            profile = {"Arn": previous["instance_profile"][0]}
            call(ec2.associate_iam_instance_profile, IamInstanceProfile=profile, InstanceId=instance_id)
        restored = self.read_state(ctx, target, params)
        problems = restore_problems(restored, previous)
        if problems:
            raise VerificationError(f"instance {instance_id} not restored: {'; '.join(problems)}")
        return restored


# --- verification (pure) --------------------------------------------------------------------------------------------
def isolation_problems(state: State, groups: dict[str, str], options: IsolateParams) -> list[str]:
    problems = [
        f"{eni} is not in {groups[s['vpc_id']]} alone"
        for eni, s in state["network_interfaces"].items()
        if s["groups"] != [groups[s["vpc_id"]]]
    ]
    if not state["termination_protection"]:
        problems.append("termination protection is off")
    if options.detach_instance_profile and state["instance_profile"]:
        problems.append(f"instance profile {state['instance_profile'][0]} is still associated")
    if options.snapshot:
        problems += [f"no snapshot of {volume}" for volume, snap in state["snapshots"].items() if snap is None]
    return problems


def restore_problems(state: State, previous: State) -> list[str]:
    current = _restorable(state)
    problems = [
        f"{eni} is in {current['network_interfaces'][eni]}, not {groups}"
        for eni, groups in previous["network_interfaces"].items()
        if eni in current["network_interfaces"] and sorted(current["network_interfaces"][eni]) != sorted(groups)
    ]
    if current["termination_protection"] != previous["termination_protection"]:
        problems.append(f"termination protection is {current['termination_protection']}")
    if current["instance_profile"] != previous["instance_profile"]:
        problems.append(f"instance profile is {current['instance_profile']}, not {previous['instance_profile']}")
    return problems


def _restorable(state: State) -> State:
    """What rollback puts back: each interface's groups, termination protection, the instance profile."""
    return {
        "network_interfaces": {eni: s["groups"] for eni, s in state["network_interfaces"].items()},
        "termination_protection": state["termination_protection"],
        "instance_profile": state["instance_profile"],
    }
