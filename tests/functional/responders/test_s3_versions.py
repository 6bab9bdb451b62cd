"""s3.restore-object-versions against moto's versioned S3: the version from before the incident comes back as the
current one, nothing is deleted, and rollback makes current again what was current before."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from responders.base import ResponderError, Target
from responders.s3_versions import (
    RestoreObjectVersions,
    RestoreVersionsParams,
    known_good,
    named_versions,
    parse_object,
    suspect_versions,
    version_to_restore,
)

BUCKET = "acme-fraud-training"
KEY = "datasets/fraud/2026-11/part-0007.parquet"
TARGET = Target(type="object", id=f"s3://{BUCKET}/{KEY}")
RESPONDER = RestoreObjectVersions()


def _next_second() -> datetime:
    """Wait for the clock to enter a new second and return its start: S3 (and moto) keep LastModified to the
    second, so the incident's first write is at or after this instant and every earlier version before it."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return datetime.fromtimestamp(int(time.time()), tz=UTC)


@pytest.fixture
def s3(aws: Any) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def _body(s3: Any, key: str = KEY) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _version_count(s3: Any, key: str = KEY) -> int:
    answer = s3.list_object_versions(Bucket=BUCKET, Prefix=key)
    return len(answer.get("Versions", [])) + len(answer.get("DeleteMarkers", []))


def test_the_clean_version_is_restored_and_rollback_brings_back_the_poisoned(
    aws: Any, s3: Any, make_context: Any
) -> None:
    # GIVEN two clean versions, then a poisoned one written by the incident
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean v1")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean v2")
    since = _next_second()
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned")
    ctx, params = make_context(aws), RestoreVersionsParams(since=since)
    # WHEN restored
    before = RESPONDER.read_state(ctx, TARGET, params)
    after = RESPONDER.apply(ctx, TARGET, params, before)
    # THEN the newest clean version is current again, and every version is still there (the poisoned one too)
    assert _body(s3) == b"clean v2"
    assert _version_count(s3) == 4
    assert after["restored"]["from"] == before["restore"]["version_id"]
    assert RESPONDER.holds(ctx, TARGET, params, before, RESPONDER.read_state(ctx, TARGET, params))
    # AND a second apply changes nothing
    RESPONDER.apply(ctx, TARGET, params, before)
    assert _version_count(s3) == 4
    # WHEN rolled back THEN the version current before (the poisoned bytes) is current again
    RESPONDER.rollback(ctx, TARGET, params, before, after)
    assert _body(s3) == b"poisoned"


def test_a_deleted_object_comes_back_and_rollback_deletes_it_again(aws: Any, s3: Any, make_context: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    since = _next_second()
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    ctx, params = make_context(aws), RestoreVersionsParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    assert before["current"]["delete_marker"] is True
    after = RESPONDER.apply(ctx, TARGET, params, before)
    assert _body(s3) == b"clean"
    RESPONDER.rollback(ctx, TARGET, params, before, after)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key=KEY)


def test_an_object_the_incident_created_is_left_as_it_is(aws: Any, s3: Any, make_context: Any) -> None:
    since = _next_second() - timedelta(seconds=1)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"planted")
    ctx, params = make_context(aws), RestoreVersionsParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    after = RESPONDER.apply(ctx, TARGET, params, before)
    assert after["restored"] is None and before["restore"] is None
    assert _body(s3) == b"planted" and _version_count(s3) == 1


def test_an_unversioned_bucket_is_refused(aws: Any, make_context: Any) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"only copy")
    ctx, params = make_context(aws), RestoreVersionsParams(since=datetime.now(UTC))
    with pytest.raises(ResponderError, match="bucket acme-fraud-training has versioning never enabled"):
        RESPONDER.apply(ctx, TARGET, params, {})
    assert _body(s3) == b"only copy"


def test_rollback_leaves_a_change_made_since_the_restore(aws: Any, s3: Any, make_context: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    since = _next_second()
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned")
    ctx, params = make_context(aws), RestoreVersionsParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    after = RESPONDER.apply(ctx, TARGET, params, before)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"fixed by the data team")
    with pytest.raises(ResponderError, match="changed since it was restored: not overwriting that change"):
        RESPONDER.rollback(ctx, TARGET, params, before, after)
    assert _body(s3) == b"fixed by the data team"


def test_read_back_holds_once_restored_and_rollback_works_from_it(aws: Any, s3: Any, make_context: Any) -> None:
    # The verify-after-failure contract: a plain read-back (no apply notes) is enough to tell and to roll back.
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    since = _next_second()
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned")
    ctx, params = make_context(aws), RestoreVersionsParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    assert not RESPONDER.holds(ctx, TARGET, params, before, before)
    RESPONDER.apply(ctx, TARGET, params, before)
    read_back = RESPONDER.read_state(ctx, TARGET, params)
    assert RESPONDER.holds(ctx, TARGET, params, before, read_back)
    RESPONDER.rollback(ctx, TARGET, params, before, read_back)
    assert _body(s3) == b"poisoned"


def test_the_version_to_restore_is_the_newest_before_the_incident() -> None:
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    versions = [
        {"VersionId": "a", "LastModified": t0, "IsDeleteMarker": False},
        {"VersionId": "b", "LastModified": t0 + timedelta(minutes=5), "IsDeleteMarker": False},
        {"VersionId": "c", "LastModified": t0 + timedelta(minutes=10), "IsDeleteMarker": False},
    ]
    assert version_to_restore(versions, t0 + timedelta(minutes=10))["VersionId"] == "b"
    assert version_to_restore(versions, t0) is None  # created by the incident
    deleted = [*versions[:1], {"VersionId": "m", "LastModified": t0 + timedelta(minutes=1), "IsDeleteMarker": True}]
    assert version_to_restore(deleted, t0 + timedelta(minutes=2)) is None  # it was deleted before the incident


@pytest.mark.parametrize("uri", ["s3://acme-fraud-training/datasets/", "s3://acme-fraud-training", "arn:aws:s3:::b"])
def test_prefixes_and_buckets_are_not_objects(uri: str) -> None:
    with pytest.raises(ResponderError, match="not an S3 object"):
        parse_object(uri)


def test_a_version_the_incident_names_is_skipped_whatever_its_date(aws: Any, s3: Any, make_context: Any) -> None:
    # A multipart upload's version is dated when the upload started: one begun before the first signal and
    # completed by the attacker looks older than the incident. CloudTrail names the version it created.
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    poisoned = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned")["VersionId"]
    since = _next_second()
    ctx = make_context(aws)
    params = RestoreVersionsParams(
        since=since, written=[f"s3://{BUCKET}/{KEY}?versionId={poisoned}", f"s3://{BUCKET}/other?versionId=x"]
    )
    before = RESPONDER.read_state(ctx, TARGET, params)
    assert before["skipped"] == [poisoned]
    RESPONDER.apply(ctx, TARGET, params, before)
    assert _body(s3) == b"clean"


def test_a_version_cordon_marked_suspect_is_never_restored(aws: Any, s3: Any, make_context: Any) -> None:
    # An earlier incident marked the newest version before this one's first write: the one before it comes back.
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    marked = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned earlier")["VersionId"]
    s3.put_object_tagging(
        Bucket=BUCKET, Key=KEY, VersionId=marked, Tagging={"TagSet": [{"Key": "cordon:suspect", "Value": "inc-1"}]}
    )
    since = _next_second()
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned now")
    ctx, params = make_context(aws), RestoreVersionsParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    assert before["skipped"] == [marked]
    RESPONDER.apply(ctx, TARGET, params, before)
    assert _body(s3) == b"clean"


def test_the_known_good_version_skips_named_versions_and_breaks_ties_by_s3_order() -> None:
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    newest_first = [
        {"VersionId": "c", "LastModified": t0, "IsDeleteMarker": False},  # same second as b, stored after it
        {"VersionId": "b", "LastModified": t0, "IsDeleteMarker": False},
        {"VersionId": "a", "LastModified": t0 - timedelta(minutes=5), "IsDeleteMarker": False},
    ]
    since = t0 + timedelta(minutes=1)
    assert known_good(newest_first, since, frozenset())["VersionId"] == "c"
    assert known_good(newest_first, since, frozenset({"c"}))["VersionId"] == "b"
    assert known_good(newest_first, since, frozenset({"c", "b", "a"})) is None
    assert named_versions(
        ["s3://b/k?x?versionId=v1", "s3://b/k?versionId=v2", "s3://b/k2?versionId=v3", "s3://b/k"], "s3://b/k?x"
    ) == {"v1"}


def test_suspect_versions_are_the_named_and_the_newer_but_not_the_known_good_bytes() -> None:
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    good = {"VersionId": "a", "LastModified": t0 - timedelta(hours=1), "ETag": '"g"', "Size": 5}
    versions = [
        {"VersionId": "copy", "LastModified": t0 + timedelta(minutes=9), "ETag": '"g"', "Size": 5},  # Cordon's
        {"VersionId": "m", "LastModified": t0 + timedelta(minutes=8), "IsDeleteMarker": True},
        {"VersionId": "p", "LastModified": t0 + timedelta(minutes=7), "ETag": '"p"', "Size": 9},
        {"VersionId": "mpu", "LastModified": t0 - timedelta(minutes=30), "ETag": '"q-2"', "Size": 9},
        good,
    ]
    assert [v["VersionId"] for v in suspect_versions(versions, t0, frozenset({"mpu"}), good)] == ["p", "mpu"]
