"""s3.restore-object-versions: put back the version of an object that was current before an incident wrote it.

For each object the incident names (`s3://bucket/key`), the version to restore is the newest version (not a delete
marker) last modified before `since`, the incident's first write. It is copied over the object as a new current
version: nothing is deleted, so every version the attacker wrote stays for the investigation, and rollback copies
back the version that was current before. Refused on a bucket without versioning (there is nothing to go back to).
An object with no version before `since` (created by the incident) is left as it is and said so.

The choice of version is a pure function (`version_to_restore`); the calls are thin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pydantic import AwareDatetime

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

_MAX_VERSION_PAGES = 20  # 20,000 versions of one key: far beyond what a poisoning incident writes


class RestoreVersionsParams(ResponderParams):
    """`since`: versions last modified at or after this instant are the incident's (bind the first write's time)."""

    since: AwareDatetime


# --- deciding (pure) ----------------------------------------------------------------------------------------------
def version_to_restore(versions: list[dict[str, Any]], since: datetime) -> dict[str, Any] | None:
    """The newest version modified before `since` when it is a real version, None when there is none or when the
    object was deleted then (a delete marker: nothing to bring back)."""
    before = [v for v in versions if v["LastModified"] < since]
    if not before:
        return None
    newest = max(before, key=lambda v: v["LastModified"])
    return None if newest.get("IsDeleteMarker") else newest


def parse_object(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise ResponderError(f"not an S3 object: {uri!r} (expected s3://bucket/key, not a prefix)")
    return bucket, key


# --- AWS I/O (thin) -----------------------------------------------------------------------------------------------
def _versions(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """Every version and delete marker of exactly `key`."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
    for _ in range(_MAX_VERSION_PAGES):
        page = call(s3.list_object_versions, **request)
        found += [{**v, "IsDeleteMarker": False} for v in page.get("Versions", []) if v["Key"] == key]
        found += [{**m, "IsDeleteMarker": True} for m in page.get("DeleteMarkers", []) if m["Key"] == key]
        if not page.get("IsTruncated"):
            return found
        request.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    raise ResponderError(f"s3://{bucket}/{key} has more than {_MAX_VERSION_PAGES * 1000:,} versions: not read")


def _object_state(ctx: ActionContext, target: Target, params: ResponderParams) -> State:
    bucket, key = parse_object(target.id)
    s3 = ctx.client("s3")
    versioning = call(s3.get_bucket_versioning, Bucket=bucket).get("Status")
    if versioning != "Enabled":
        raise ResponderError(
            f"bucket {bucket} has versioning {versioning or 'never enabled'}: no earlier version to restore"
        )
    versions = _versions(s3, bucket, key)
    current = next((v for v in versions if v.get("IsLatest")), None)
    chosen = version_to_restore(versions, cast(RestoreVersionsParams, params).since)
    return {
        "object": target.id,
        "current": _summary(current),
        "restore": _summary(chosen),
    }


def _summary(version: dict[str, Any] | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version_id": version["VersionId"],
        "delete_marker": version["IsDeleteMarker"],
        "etag": version.get("ETag"),
        "size": version.get("Size"),
        "last_modified": version["LastModified"].isoformat(),
    }


def _copy_back(s3: Any, bucket: str, key: str, version_id: str) -> str:
    source = {"Bucket": bucket, "Key": key, "VersionId": version_id}
    answer = call(s3.copy_object, Bucket=bucket, Key=key, CopySource=source)
    return str(answer["VersionId"])


def _same_content(current: dict[str, Any] | None, wanted: dict[str, Any] | None) -> bool:
    # A copy is a new version with the same bytes: compared by ETag and size (a multipart source's copy gets a
    # new ETag, so such an object reads as not restored: `holds` then says "cannot tell", never a false yes).
    return (
        current is not None
        and wanted is not None
        and not current["delete_marker"]
        and (current["etag"], current["size"]) == (wanted["etag"], wanted["size"])
    )


@responder("s3.restore-object-versions")
class RestoreObjectVersions(Responder):
    """Restore an object the incident wrote or deleted to its version from before the incident. Reversible.

    Copies the newest version modified before `since` over the object (a new current version; nothing deleted).
    Refuses a bucket whose versioning is not enabled. Leaves an object created by the incident, and one that was
    a delete marker before it, as they are. Rollback makes current again what was current before: a copy of that
    version (same bytes, a new version id: no version is ever deleted), or a delete marker if it was deleted.

    Example::

        - responder: s3.restore-object-versions
          target: "entities[?type=='object'].id"
          bind: {since: "min_by(signals[?rule=='ml_training_data_written_by_undeclared_writer'], &time).time"}
    """

    permissions = (
        "s3:GetBucketVersioning",
        "s3:ListBucketVersions",
        "s3:GetObjectVersion",  # the copy source is a version
        "s3:GetObjectVersionTagging",  # CopyObject copies the source version's tags
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",  # rollback of an object the incident had deleted: a delete marker again, nothing erased
    )
    Params = RestoreVersionsParams
    target_types = frozenset({"object"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _object_state(ctx, target, params)

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        state = _object_state(ctx, target, params)
        wanted = state["restore"]
        if wanted is None:
            return state | {"restored": None}  # nothing from before the incident: created (or deleted) by it
        if state["current"] and state["current"]["version_id"] == wanted["version_id"]:
            return state | {"restored": None}  # untouched since: already the version from before
        if _same_content(state["current"], wanted):
            return state | {"restored": None}  # restored by an earlier attempt
        bucket, key = parse_object(target.id)
        new_version = _copy_back(ctx.client("s3"), bucket, key, wanted["version_id"])
        after = _object_state(ctx, target, params)
        if not after["current"] or after["current"]["version_id"] != new_version:
            raise VerificationError(f"{target.id}: the current version is not the restored copy {new_version}")
        return after | {"restored": {"from": wanted["version_id"], "as": new_version}}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        wanted = before.get("restore")
        if wanted is None:
            return True  # nothing to restore: the object is as the responder leaves it
        return _same_content(state.get("current"), wanted)

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        previous, restored = before.get("current"), before.get("restore")
        state = _object_state(ctx, target, params)
        if restored is None or previous is None or _current_is(state["current"], previous):
            return state  # nothing was restored, or it is as it was already
        if not _same_content(state["current"], restored):
            raise ResponderError(f"{target.id} changed since it was restored: not overwriting that change")
        bucket, key = parse_object(target.id)
        s3 = ctx.client("s3")
        if previous["delete_marker"]:
            call(s3.delete_object, Bucket=bucket, Key=key)  # deleted again: a delete marker, no version lost
        else:
            _copy_back(s3, bucket, key, previous["version_id"])
        final = _object_state(ctx, target, params)
        if not _current_is(final["current"], previous):
            raise VerificationError(f"{target.id}: the version current before the restore is not current again")
        return final


def _current_is(current: dict[str, Any] | None, previous: dict[str, Any]) -> bool:
    """Whether the object is as `previous` had it: deleted again, or the same bytes (a copy has a new version id)."""
    if previous["delete_marker"]:
        return current is not None and current["delete_marker"]
    return _same_content(current, previous)
