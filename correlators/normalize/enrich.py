"""Asset classes from the site configuration: which buckets, prefixes and SageMaker resources are ML assets.

Objects are matched by their `s3://bucket/key` URI and everything else by its ARN, with `Config.asset_class`.
A bucket has no URI of its own, so it also takes the class of any `s3://` glob whose bucket part matches it:
with `training_data: ["s3://ml-data/train/*"]`, a GetBucketPolicy on `ml-data` touches training data.
Both look-ups are indexed by the globs' literal prefixes (`correlators.config.GlobIndex`), not a scan of every glob.
"""

from __future__ import annotations

from correlators.config import Config
from correlators.model import EntityType, NormalizedEvent, Resource


def enrich(event: NormalizedEvent, config: Config) -> NormalizedEvent:
    if not config.assets or not event.resources:
        return event
    resources = [r.model_copy(update={"asset_class": asset_class_of(r, config)}) for r in event.resources]
    return event.model_copy(update={"resources": resources})


def asset_class_of(resource: Resource, config: Config) -> str | None:
    if not resource.id.startswith(("s3://", "arn:")):
        return None  # instance ids and the like: the configuration names assets by URI or ARN only
    found = config.asset_class(resource.id)
    if found is None and resource.type is EntityType.BUCKET:
        found = config.bucket_asset_class(resource.id.rsplit(":", 1)[-1])
    return found
