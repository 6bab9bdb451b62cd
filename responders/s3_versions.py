"""s3.restore-object-versions: make current again the last known-good version of an object an incident wrote.

For each object the incident names (`s3://bucket/key`), the known-good version is the newest version that

1. was last modified before `since`, the incident's first undeclared write;
2. is not one the incident names as written by an undeclared writer (`written`: the write signals'
   `object_version`, CloudTrail's x-amz-version-id): a multipart upload's version is dated when the upload
   started, which can be before the first signal, so dates alone would take a poisoned upload for a clean one;
3. does not carry Cordon's `cordon:suspect` tag (s3.tag-suspect-versions, this incident's or an earlier one's).

A delete marker there means the object did not exist before: nothing to restore. S3 does not record who wrote a
version; CloudTrail does, and Cordon holds only the incident's writes. So "written by a declared writer" is
established by exclusion: every version written once the incident began is distrusted (its writer is unknown to
Cordon: the attacker under another name, or a declared pipeline that read poisoned data), and of the versions
before it those the incident names or Cordon marked are skipped. One case stays unseen: a multipart upload that
started before the incident and completed during it, by a writer the incident does not name.

The known-good version is copied over the object as a new current version: nothing is deleted, so every version
the attacker wrote stays for the investigation, and rollback copies back the version that was current before.
Refused on a bucket without versioning (there is nothing to go back to). An object with no known-good version
(created by the incident) is left as it is and said so.

The choice of version is a pure function (`known_good`); the calls are thin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from pydantic import AwareDatetime, Field

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
SUSPECT_TAG = "cordon:suspect"  # on an object version Cordon will not go back to; its value is the incident id
_VERSION_MARK = "?versionId="


class KnownGoodParams(ResponderParams):
    """`since`: versions last modified at or after this instant are distrusted (bind the first undeclared write's
    time). `written`: object versions the incident's undeclared writers created, `s3://bucket/key?versionId=V`
    (bind the write signals' `object_version`); each action keeps those of its own object."""

    since: AwareDatetime
    written: list[str] = Field(default_factory=list, max_length=10_000)


class RestoreVersionsParams(KnownGoodParams):
    pass


# --- deciding (pure) ----------------------------------------------------------------------------------------------
def named_versions(written: Iterable[str], uri: str) -> frozenset[str]:
    """The version ids `written` names for exactly the object `uri` (a key may itself hold `?`)."""
    found = set()
    for item in written:
        obj, mark, version = item.rpartition(_VERSION_MARK)
        if mark and obj == uri and version:
            found.add(version)
    return frozenset(found)


def known_good(versions: Sequence[dict[str, Any]], since: datetime, skipped: frozenset[str]) -> dict[str, Any] | None:
    """The newest version modified before `since` and not in `skipped`, when it is a real version; None when there
    is none or it is a delete marker (the object did not exist then). `versions` in S3's order, newest first: it
    breaks ties of LastModified, which S3 keeps to the second."""
    candidates = [
        (v["LastModified"], -rank, v)
        for rank, v in enumerate(versions)
        if v["LastModified"] < since and v["VersionId"] not in skipped
    ]
    if not candidates:
        return None
    newest = max(candidates, key=lambda c: (c[0], c[1]))[2]
    return None if newest.get("IsDeleteMarker") else newest


def version_to_restore(versions: list[dict[str, Any]], since: datetime) -> dict[str, Any] | None:
    """`known_good` with nothing named or marked: the newest version from before `since`."""
    return known_good(versions, since, frozenset())


def suspect_versions(
    versions: Sequence[dict[str, Any]], since: datetime, named: frozenset[str], good: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The versions the incident may have written: named by it, or written at or after `since`. Not delete markers
    (S3 cannot tag them), and not a version with the known-good bytes (Cordon's own restore copy, an identical
    re-upload): the same content as the known-good version is not poisoned."""
    return [
        v
        for v in versions
        if not v.get("IsDeleteMarker")
        and (v["VersionId"] in named or v["LastModified"] >= since)
        and not (good is not None and (v.get("ETag"), v.get("Size")) == (good.get("ETag"), good.get("Size")))
    ]


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


def tag_set(s3: Any, bucket: str, key: str, version_id: str) -> list[dict[str, str]]:
    answer = call(s3.get_object_tagging, Bucket=bucket, Key=key, VersionId=version_id)
    return [{"Key": t["Key"], "Value": t["Value"]} for t in answer.get("TagSet", [])]


def classify(
    s3: Any, uri: str, params: KnownGoodParams
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[str]]:
    """The object's versions (S3's order), its known-good version, and the ids skipped to find it (named by the
    incident, or marked suspect). Reads the tags of the candidates only, newest first, until one is unmarked."""
    bucket, key = parse_object(uri)
    versions = _versions(s3, bucket, key)
    skipped = set(named_versions(params.written, uri))
    while True:
        good = known_good(versions, params.since, frozenset(skipped))
        if good is None or not any(t["Key"] == SUSPECT_TAG for t in tag_set(s3, bucket, key, good["VersionId"])):
            return versions, good, sorted(skipped & {v["VersionId"] for v in versions})
        skipped.add(good["VersionId"])


def require_versioning(s3: Any, bucket: str) -> None:
    versioning = call(s3.get_bucket_versioning, Bucket=bucket).get("Status")
    if versioning != "Enabled":
        raise ResponderError(
            f"bucket {bucket} has versioning {versioning or 'never enabled'}: no earlier version to restore"
        )


def _object_state(ctx: ActionContext, target: Target, params: ResponderParams) -> State:
    bucket, _ = parse_object(target.id)
    s3 = ctx.client("s3")
    require_versioning(s3, bucket)
    versions, chosen, skipped = classify(s3, target.id, cast(KnownGoodParams, params))
    current = next((v for v in versions if v.get("IsLatest")), None)
    return {
        "object": target.id,
        "current": summary(current),
        "restore": summary(chosen),
        "skipped": skipped,
    }


def summary(version: dict[str, Any] | None) -> dict[str, Any] | None:
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
    """Restore an object the incident wrote or deleted to its last known-good version. Reversible.

    Copies the newest version modified before `since`, not named in `written` and not tagged `cordon:suspect`,
    over the object (a new current version; nothing deleted). Refuses a bucket whose versioning is not enabled.
    Leaves an object created by the incident, and one that was a delete marker before it, as they are. Rollback
    makes current again what was current before: a copy of that version (same bytes, a new version id: no version
    is ever deleted), or a delete marker if it was deleted.

    Example::

        - responder: s3.restore-object-versions
          target: "entities[?type=='object'].id"
          bind:
            since: "min_by(signals[?rule=='ml_training_data_written_by_undeclared_writer'], &time).time"
            written: "signals[?rule=='ml_training_data_written_by_undeclared_writer'].object_version"
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
