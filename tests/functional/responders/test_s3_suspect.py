"""s3.tag-suspect-versions against moto's versioned S3: the versions the incident may have written carry
`cordon:suspect`, beside their own tags, and rollback gives each its tag set back."""

from __future__ import annotations

from typing import Any

import pytest

from responders.base import ResponderError, Target
from responders.s3_suspect import TagSuspectParams, TagSuspectVersions, tags_after_rollback, with_suspect_tag
from responders.s3_versions import RestoreObjectVersions, RestoreVersionsParams

from .conftest import check_read_back
from .test_s3_versions import _next_second

BUCKET = "acme-fraud-training"
KEY = "datasets/fraud/2026-11/part-0007.parquet"
TARGET = Target(type="object", id=f"s3://{BUCKET}/{KEY}")
RESPONDER = TagSuspectVersions()
MARK = {"Key": "cordon:suspect", "Value": "inc-0000000000000001"}  # the conftest incident's id


@pytest.fixture
def s3(aws: Any) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def _tags(s3: Any, version_id: str) -> list[dict[str, str]]:
    return list(s3.get_object_tagging(Bucket=BUCKET, Key=KEY, VersionId=version_id)["TagSet"])


def test_the_versions_written_during_the_incident_are_marked_and_the_clean_one_is_not(
    aws: Any, s3: Any, make_context: Any
) -> None:
    # GIVEN a clean version, then two poisoned ones (one tagged by its writer) and a deletion
    clean = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean", Tagging="owner=etl")["VersionId"]
    since = _next_second()
    first = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned 1", Tagging="owner=etl")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned 2")["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    ctx, params = make_context(aws), TagSuspectParams(since=since)
    # WHEN marked
    before = RESPONDER.read_state(ctx, TARGET, params)
    after = RESPONDER.apply(ctx, TARGET, params, before)
    # THEN both poisoned versions carry the mark beside their own tags; the clean one and the marker do not
    assert [v["version_id"] for v in before["suspect"]] == [second, first]
    assert _tags(s3, first) == [{"Key": "owner", "Value": "etl"}, MARK]
    assert _tags(s3, second) == [MARK]
    assert _tags(s3, clean) == [{"Key": "owner", "Value": "etl"}]
    assert after["tagged"] == [second, first] and after["known_good"] == clean
    # AND a second apply changes nothing
    assert RESPONDER.apply(ctx, TARGET, params, before)["tagged"] == []
    # WHEN rolled back THEN each version has its tag set from before
    RESPONDER.rollback(ctx, TARGET, params, before, after)
    assert _tags(s3, first) == [{"Key": "owner", "Value": "etl"}] and _tags(s3, second) == []


def test_the_restore_copy_made_after_the_marking_is_not_marked_by_a_retry(aws: Any, s3: Any, make_context: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    since = _next_second()
    poisoned = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned")["VersionId"]
    ctx, params = make_context(aws), TagSuspectParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    restore = RestoreVersionsParams(since=since)
    RestoreObjectVersions().apply(ctx, TARGET, restore, RestoreObjectVersions().read_state(ctx, TARGET, restore))
    after = RESPONDER.apply(ctx, TARGET, params, before)
    assert after["tagged"] == [poisoned]
    copy = s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    assert _tags(s3, copy) == []


def test_a_version_the_incident_names_is_marked_though_it_looks_older(aws: Any, s3: Any, make_context: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    uploaded = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"multipart, started early")["VersionId"]
    since = _next_second()
    params = TagSuspectParams(since=since, written=[f"s3://{BUCKET}/{KEY}?versionId={uploaded}"])
    RESPONDER.apply(make_context(aws), TARGET, params, RESPONDER.read_state(make_context(aws), TARGET, params))
    assert _tags(s3, uploaded) == [MARK]


def test_read_back_holds_once_marked_and_rollback_works_from_it(aws: Any, s3: Any, make_context: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"clean")
    since = _next_second()
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned", Tagging="a=1")
    check_read_back(RESPONDER, make_context(aws), TARGET, TagSuspectParams(since=since))


def test_rollback_keeps_a_tag_someone_added_since(aws: Any, s3: Any, make_context: Any) -> None:
    since = _next_second()
    poisoned = s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"poisoned")["VersionId"]
    ctx, params = make_context(aws), TagSuspectParams(since=since)
    before = RESPONDER.read_state(ctx, TARGET, params)
    after = RESPONDER.apply(ctx, TARGET, params, before)
    review = {"Key": "reviewed-by", "Value": "data-team"}
    s3.put_object_tagging(
        Bucket=BUCKET, Key=KEY, VersionId=poisoned, Tagging={"TagSet": [*_tags(s3, poisoned), review]}
    )
    RESPONDER.rollback(ctx, TARGET, params, before, after)
    assert _tags(s3, poisoned) == [review]


def test_tag_sets_decided_purely() -> None:
    assert with_suspect_tag([], "inc-1") == [{"Key": "cordon:suspect", "Value": "inc-1"}]
    assert with_suspect_tag([{"Key": "cordon:suspect", "Value": "inc-0"}], "inc-1") is None  # marked already
    with pytest.raises(ResponderError, match="the version has 10 tags, S3's limit: cannot add cordon:suspect"):
        with_suspect_tag([{"Key": f"k{i}", "Value": "v"} for i in range(10)], "inc-1")
    ours, theirs = {"Key": "cordon:suspect", "Value": "inc-1"}, {"Key": "cordon:suspect", "Value": "inc-0"}
    assert tags_after_rollback([theirs], [theirs], "inc-1") is None  # another incident's mark stays
    assert tags_after_rollback([{"Key": "a", "Value": "1"}, ours], [{"Key": "a", "Value": "1"}], "inc-1") == [
        {"Key": "a", "Value": "1"}
    ]
