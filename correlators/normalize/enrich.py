"""What the site configuration says about an event: asset classes, declared writers, allowed images.

Asset classes: objects are matched by their `s3://bucket/key` URI and everything else by its ARN, with
`Config.asset_class`. A bucket has no URI of its own, so it also takes the class of any `s3://` glob whose bucket
part matches it: with `training_data: ["s3://ml-data/train/*"]`, a GetBucketPolicy on `ml-data` touches training
data. Both look-ups are indexed by the globs' literal prefixes (`correlators.config.GlobIndex`), not a scan of
every glob.

Declared writers (`asset_writers`): `declared_writer` is False when the acting principal is not a declared writer
of one of the asset classes the event touches that declare writers, True when it is one of all of them, and None
(not judged) when none of its classes declares writers or no IAM principal acted (an AWS service). It is set on
reads too; rules pair it with the write calls they mean. Cordon's own roles (`guards.cordon_roles`) write only to
put known-good data back (s3.restore-object-versions) and are a declared writer of every class: otherwise the
restore, then the retraining that reads it, would raise a poisoning incident whose restore brings the poison back.

Allowed images (`allowed_image_registries`): `image_allowed` is False when one image the event names comes from
elsewhere, True when all do, None when it names none or the site lists no registry.
"""

from __future__ import annotations

import fnmatch

from correlators.config import Config
from correlators.model import EntityType, NormalizedEvent, Resource


def enrich(event: NormalizedEvent, config: Config) -> NormalizedEvent:
    """`event`, enriched in place and returned: the normalizer enriches the events it has just built, before
    anything else sees them (a copy of each cost more than building it). A resource that takes an asset class is
    replaced by one that has it; the others are kept as they are."""
    if config.assets and event.resources:
        event.resources = [_classified(resource, config) for resource in event.resources]
    if config.asset_writers:
        classes = {r.asset_class for r in event.resources if r.asset_class}
        event.declared_writer = declared_writer(event, classes, config)
    if config.allowed_image_registries and event.images:
        event.image_allowed = all(config.image_allowed(image) for image in event.images)
    return event


def _classified(resource: Resource, config: Config) -> Resource:
    asset_class = asset_class_of(resource, config)
    if asset_class == resource.asset_class:
        return resource
    return resource.model_copy(update={"asset_class": asset_class})


def asset_class_of(resource: Resource, config: Config) -> str | None:
    if not resource.id.startswith(("s3://", "arn:")):
        return None  # instance ids and the like: the configuration names assets by URI or ARN only
    found = config.asset_class(resource.id)
    if found is None and resource.type is EntityType.BUCKET:
        found = config.bucket_asset_class(resource.id.rsplit(":", 1)[-1])
    return found


def declared_writer(event: NormalizedEvent, classes: set[str], config: Config) -> bool | None:
    principal = event.actor.principal if event.actor else None
    if not classes or not principal or not principal.startswith("arn:"):
        return None  # no class judged (most events touch no asset), or no IAM principal to judge
    verdicts = [config.declared_writer(name, principal) for name in sorted(classes)]
    judged = [verdict for verdict in verdicts if verdict is not None]
    if judged and any(fnmatch.fnmatchcase(principal, glob) for glob in config.guards.cordon_roles):
        return True
    return all(judged) if judged else None
