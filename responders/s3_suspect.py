"""s3.tag-suspect-versions: mark the versions of an object that an incident may have written as suspect.

The suspect versions of an object are those the incident names as written by an undeclared writer (`written`),
and every version written at or after `since` (the first undeclared write), except a delete marker (S3 cannot tag
one) and a version with the known-good bytes (s3.restore-object-versions' rule, in `responders.s3_versions`).
Each gets the tag `cordon:suspect = <incident id>` on its own version (PutObjectTagging with VersionId), beside the
tags it had. The tag is for people (a data team sees which versions not to train on) and for Cordon: a marked
version is never restored, and sagemaker.start-pipeline-execution refuses to retrain on one that is current.

Which versions to mark is decided once, before the first attempt (`before`, as the runner recorded it): a retry
after the restore made its copy current marks the same versions, not the copy. Rollback puts back each version's
tag set as it was; where someone changed a version's tags since, only Cordon's tag is taken off.
"""

from __future__ import annotations

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
from responders.s3_versions import (
    SUSPECT_TAG,
    KnownGoodParams,
    classify,
    named_versions,
    parse_object,
    suspect_versions,
    tag_set,
)
from responders.sagemaker.arns import incident_id_of

_MAX_TAGS = 10  # S3's limit per object version


class TagSuspectParams(KnownGoodParams):
    pass


# --- deciding (pure) ----------------------------------------------------------------------------------------------
def with_suspect_tag(tags: list[dict[str, str]], incident_id: str) -> list[dict[str, str]] | None:
    """The tag set with Cordon's mark added, or None when a mark is there already (this incident's or another's)."""
    if any(t["Key"] == SUSPECT_TAG for t in tags):
        return None
    if len(tags) >= _MAX_TAGS:
        raise ResponderError(f"the version has {len(tags)} tags, S3's limit: cannot add {SUSPECT_TAG}")
    return [*tags, {"Key": SUSPECT_TAG, "Value": incident_id}]


def tags_after_rollback(
    now: list[dict[str, str]], before: list[dict[str, str]], incident_id: str
) -> list[dict[str, str]] | None:
    """The tag set rollback writes: the one from before when the tags are as Cordon left them, else the current
    ones without this incident's mark (someone changed them since: theirs is kept). None: nothing to change."""
    ours = {"Key": SUSPECT_TAG, "Value": incident_id}
    if ours not in now:
        return None
    if _same_tags(now, [*before, ours]):
        return before
    return [t for t in now if t != ours]


def _same_tags(left: list[dict[str, str]], right: list[dict[str, str]]) -> bool:
    return sorted((t["Key"], t["Value"]) for t in left) == sorted((t["Key"], t["Value"]) for t in right)


# --- AWS I/O (thin) -----------------------------------------------------------------------------------------------
def _state(ctx: ActionContext, target: Target, params: ResponderParams) -> State:
    chosen = cast(TagSuspectParams, params)
    bucket, key = parse_object(target.id)
    s3 = ctx.client("s3")
    versions, good, _ = classify(s3, target.id, chosen)
    named = named_versions(chosen.written, target.id)
    return {
        "object": target.id,
        "known_good": good["VersionId"] if good else None,
        "suspect": [
            {"version_id": v["VersionId"], "tags": tag_set(s3, bucket, key, v["VersionId"])}
            for v in suspect_versions(versions, chosen.since, named, good)
        ],
    }


def _write_tags(s3: Any, bucket: str, key: str, version_id: str, tags: list[dict[str, str]]) -> None:
    if tags:
        call(s3.put_object_tagging, Bucket=bucket, Key=key, VersionId=version_id, Tagging={"TagSet": tags})
    else:
        call(s3.delete_object_tagging, Bucket=bucket, Key=key, VersionId=version_id)


def _marked(state: State, version_ids: list[str]) -> bool:
    tags = {v["version_id"]: v["tags"] for v in state.get("suspect", [])}
    return all(any(t["Key"] == SUSPECT_TAG for t in tags.get(version, [])) for version in version_ids)


@responder("s3.tag-suspect-versions")
class TagSuspectVersions(Responder):
    """Tag the versions of an object the incident may have written `cordon:suspect=<incident id>`. Reversible.

    Suspect: the versions `written` names for the object, and those written at or after `since`, except delete
    markers and versions with the known-good bytes. Existing tags are kept (S3 allows 10 per version: a version
    with 10 already is refused). Rollback restores each version's previous tag set.

    Example::

        - responder: s3.tag-suspect-versions
          target: "entities[?type=='object' && !ends_with(id, '/')].id"
          bind:
            since: "min_by(signals[?rule=='ml_training_data_written_by_undeclared_writer'], &time).time"
            written: "signals[?rule=='ml_training_data_written_by_undeclared_writer'].object_version"
    """

    permissions = (
        "s3:ListBucketVersions",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectVersionTagging",  # rollback of a version that had no tags
    )
    Params = TagSuspectParams
    target_types = frozenset({"object"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _state(ctx, target, params)

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        incident_id = incident_id_of(ctx)
        bucket, key = parse_object(target.id)
        s3 = ctx.client("s3")
        wanted = before["suspect"] if "suspect" in before else _state(ctx, target, params)["suspect"]
        tagged = []
        for version in wanted:
            tags = with_suspect_tag(tag_set(s3, bucket, key, version["version_id"]), incident_id)
            if tags is not None:
                _write_tags(s3, bucket, key, version["version_id"], tags)
                tagged.append(version["version_id"])
        after = _state(ctx, target, params)
        ids = [v["version_id"] for v in wanted]
        if not _marked(after, ids):
            raise VerificationError(f"{target.id}: not every suspect version reads back tagged {SUSPECT_TAG}")
        return after | {"tagged": tagged}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return _marked(state, [v["version_id"] for v in before.get("suspect", [])])

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        incident_id = incident_id_of(ctx)
        bucket, key = parse_object(target.id)
        s3 = ctx.client("s3")
        for version in before.get("suspect", []):
            tags = tags_after_rollback(tag_set(s3, bucket, key, version["version_id"]), version["tags"], incident_id)
            if tags is not None:
                _write_tags(s3, bucket, key, version["version_id"], tags)
        final = _state(ctx, target, params)
        still = [
            v["version_id"]
            for v in final["suspect"]
            if {"Key": SUSPECT_TAG, "Value": incident_id} in v["tags"]
            and v["version_id"] in {b["version_id"] for b in before.get("suspect", [])}
        ]
        if still:
            raise VerificationError(f"{target.id}: versions {', '.join(still)} still carry this incident's mark")
        return final
