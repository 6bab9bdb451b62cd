"""ec2.isolate-instance against moto: evidence first, every interface quarantined, exact rollback."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from responders.base import ResponderError, Target, get_responder
from responders.ec2 import IsolateParams, quarantine_group_name

from .test_iam import READ_ONLY, _record_calls

INCIDENT = "inc-0000000000000001"


@dataclass
class Instance:
    id: str
    vpc: str
    enis: dict[str, list[str]]  # interface -> its groups at launch
    volumes: list[str]
    profile_arn: str


@pytest.fixture
def instance(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """An instance with two interfaces (different groups), two volumes and an instance profile."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # seconds per test, and no AMI snapshots to wade through
    ec2, iam = aws.client("ec2"), aws.client("iam")
    iam.create_role(RoleName="ml-node", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="ml-node")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="ml-node", RoleName="ml-node")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ssh = ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=vpc)["GroupId"]
    # Groups go on the interface, not SecurityGroupIds: moto adds instance-level groups to every interface for good.
    launched = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        IamInstanceProfile={"Arn": profile},
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"], "Groups": [web, ssh]}],
    )["Instances"][0]
    second = ec2.create_network_interface(SubnetId=subnet["SubnetId"], Groups=[ssh])["NetworkInterface"]
    ec2.attach_network_interface(
        NetworkInterfaceId=second["NetworkInterfaceId"], InstanceId=launched["InstanceId"], DeviceIndex=1
    )
    volume = ec2.create_volume(AvailabilityZone=subnet["AvailabilityZone"], Size=10)["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=launched["InstanceId"], Device="/dev/sdf")
    return Instance(
        id=launched["InstanceId"],
        vpc=vpc,
        enis={launched["NetworkInterfaces"][0]["NetworkInterfaceId"]: [web, ssh], second["NetworkInterfaceId"]: [ssh]},
        volumes=[launched["BlockDeviceMappings"][0]["Ebs"]["VolumeId"], volume],
        profile_arn=profile,
    )


def _observed(aws: Any, instance_id: str) -> dict[str, Any]:
    """The instance as AWS describes it, in the parts isolation changes."""
    ec2 = aws.client("ec2")
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    attribute = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    return {
        "enis": {e["NetworkInterfaceId"]: [g["GroupId"] for g in e["Groups"]] for e in described["NetworkInterfaces"]},
        "termination_protection": attribute["DisableApiTermination"]["Value"],
        "profiles": [a["IamInstanceProfile"]["Arn"] for a in associations if a["State"] == "associated"],
    }


def _snapshots(aws: Any) -> list[dict[str, Any]]:
    """The snapshots Cordon took (tagged with an incident)."""
    filters = [{"Name": "tag-key", "Values": ["cordon:incident"]}]
    return list(aws.client("ec2").describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"])


def _quarantine_groups(aws: Any, vpc: str) -> list[dict[str, Any]]:
    filters = [{"Name": "group-name", "Values": [quarantine_group_name(vpc)]}]
    return list(aws.client("ec2").describe_security_groups(Filters=filters)["SecurityGroups"])


def test_isolate_instance_end_to_end(aws: Any, make_context: Any, instance: Instance) -> None:
    # GIVEN an instance in service, and a record of every EC2 call made
    calls: list[str] = []
    aws.events.register("before-call.ec2.*", lambda model, **_: calls.append(model.name))
    responder, ctx, target = get_responder("ec2.isolate-instance"), make_context(aws), Target("instance", instance.id)
    params = responder.Params()
    original = _observed(aws, instance.id)
    assert original == {"enis": instance.enis, "termination_protection": False, "profiles": [instance.profile_arn]}

    # WHEN state is read (changing nothing), then the instance isolated
    before = responder.read_state(ctx, target, params)
    assert _observed(aws, instance.id) == original and _snapshots(aws) == [] and calls
    assert not any(name.startswith(("Create", "Modify", "Revoke", "Disassociate")) for name in calls)
    after = responder.apply(ctx, target, params, before)

    # THEN every volume was snapshotted, tagged, before anything was contained
    snapshots = {s["VolumeId"]: s for s in _snapshots(aws)}
    assert sorted(snapshots) == sorted(instance.volumes)
    for snapshot in snapshots.values():
        assert {"Key": "cordon:incident", "Value": INCIDENT} in snapshot["Tags"]
        assert snapshot["Description"].startswith(f"Cordon evidence for incident {INCIDENT}")
    changes = [name for name in calls if name.startswith(("Create", "Modify", "Revoke", "Disassociate"))]
    assert changes[: len(instance.volumes)] == ["CreateSnapshot"] * len(instance.volumes)

    # AND every interface is in the quarantine group alone, which allows nothing in or out
    (group,) = _quarantine_groups(aws, instance.vpc)
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    isolated = _observed(aws, instance.id)
    quarantined = {eni: [group["GroupId"]] for eni in instance.enis}
    assert isolated == {"enis": quarantined, "termination_protection": True, "profiles": []}
    assert after["previous"] == {
        "network_interfaces": instance.enis,
        "termination_protection": False,
        "instance_profile": [instance.profile_arn],
    }
    assert after["quarantine_groups"] == {instance.vpc: group["GroupId"]}

    # AND a second apply creates no second snapshot or group and changes nothing
    calls.clear()
    responder.apply(ctx, target, params, responder.read_state(ctx, target, params))
    assert [name for name in calls if name.startswith(("Create", "Modify", "Revoke", "Disassociate"))] == []
    assert len(_snapshots(aws)) == len(instance.volumes) and len(_quarantine_groups(aws, instance.vpc)) == 1
    assert _observed(aws, instance.id) == isolated

    # AND rollback restores interfaces, termination protection and the profile, and keeps the evidence
    restored = responder.rollback(ctx, target, params, before, after)
    assert _observed(aws, instance.id) == original
    assert restored["network_interfaces"] == before["network_interfaces"]
    assert len(_snapshots(aws)) == len(instance.volumes)


def test_isolate_instance_reuses_a_quarantine_group_left_with_its_default_egress(
    aws: Any, make_context: Any, instance: Instance
) -> None:
    # GIVEN a run interrupted between creating the group and revoking its allow-all egress
    ec2 = aws.client("ec2")
    group = ec2.create_security_group(
        GroupName=quarantine_group_name(instance.vpc), Description="x", VpcId=instance.vpc
    )
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"], IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0"
    )
    responder, ctx = get_responder("ec2.isolate-instance"), make_context(aws)

    responder.apply(ctx, Target("instance", instance.id), responder.Params(snapshot=False), {})

    (reused,) = _quarantine_groups(aws, instance.vpc)
    assert reused["GroupId"] == group["GroupId"]
    assert reused["IpPermissions"] == [] and reused["IpPermissionsEgress"] == []
    assert _observed(aws, instance.id)["enis"] == {eni: [group["GroupId"]] for eni in instance.enis}


def test_isolate_instance_options_keep_snapshots_and_profile_out(
    aws: Any, make_context: Any, instance: Instance
) -> None:
    responder, ctx, target = get_responder("ec2.isolate-instance"), make_context(aws), Target("instance", instance.id)
    params = responder.Params(snapshot=False, detach_instance_profile=False)
    before = responder.read_state(ctx, target, params)
    after = responder.apply(ctx, target, params, before)
    assert _snapshots(aws) == []
    assert _observed(aws, instance.id)["profiles"] == [instance.profile_arn]
    assert after["termination_protection"] is True
    responder.rollback(ctx, target, params, before, after)
    assert _observed(aws, instance.id)["termination_protection"] is False


def test_isolate_instance_rollback_keeps_termination_protection_that_was_on(
    aws: Any, make_context: Any, instance: Instance
) -> None:
    aws.client("ec2").modify_instance_attribute(InstanceId=instance.id, DisableApiTermination={"Value": True})
    responder, ctx, target = get_responder("ec2.isolate-instance"), make_context(aws), Target("instance", instance.id)
    before = responder.read_state(ctx, target, responder.Params())
    after = responder.apply(ctx, target, responder.Params(), before)
    responder.rollback(ctx, target, responder.Params(), before, after)
    assert _observed(aws, instance.id)["termination_protection"] is True


@pytest.mark.parametrize(
    ("instance_id", "message"),
    [
        ("i-123", "not an EC2 instance id: 'i-123'"),
        ("arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", "not an EC2 instance id"),
        ("*", "not an EC2 instance id: '*'"),
    ],
)
def test_isolate_instance_rejects_malformed_ids(aws: Any, make_context: Any, instance_id: str, message: str) -> None:
    responder = get_responder("ec2.isolate-instance")
    with pytest.raises(ResponderError, match=re.escape(message)):
        responder.read_state(make_context(aws), Target("instance", instance_id), responder.Params())


def test_isolate_instance_unknown_instance_is_a_permanent_error(aws: Any, make_context: Any) -> None:
    responder = get_responder("ec2.isolate-instance")
    with pytest.raises(ResponderError, match=re.escape("InvalidInstanceID.NotFound")) as raised:
        responder.read_state(make_context(aws), Target("instance", "i-0123456789abcdef0"), responder.Params())
    assert raised.value.permanent


def test_isolate_instance_needs_the_incident_id(aws: Any, make_context: Any, instance: Instance) -> None:
    responder = get_responder("ec2.isolate-instance")
    ctx = make_context(aws, {"title": "no id"})
    with pytest.raises(
        ResponderError, match=re.escape("ec2.isolate-instance needs the incident id to tag its evidence")
    ):
        responder.apply(ctx, Target("instance", instance.id), responder.Params(), {})
    assert _observed(aws, instance.id)["termination_protection"] is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"snapshots": False}, "Extra inputs are not permitted"),
        ({"snapshot": "maybe"}, "Input should be a valid boolean"),
    ],
)
def test_isolate_instance_rejects_bad_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IsolateParams.model_validate(params)


def test_isolate_instance_calls_only_declared_permissions(aws: Any, make_context: Any, instance: Instance) -> None:
    responder, ctx, target = get_responder("ec2.isolate-instance"), make_context(aws), Target("instance", instance.id)
    params = responder.Params()
    called = _record_calls(aws)
    before = responder.read_state(ctx, target, params)
    assert all(action.split(":")[1].startswith(READ_ONLY) for action in called)
    after = responder.apply(ctx, target, params, before)
    responder.apply(ctx, target, params, responder.read_state(ctx, target, params))
    responder.rollback(ctx, target, params, before, after)
    assert called and called <= set(responder.permissions)
