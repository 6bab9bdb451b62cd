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
from functools import lru_cache

from correlators.config import Config
from correlators.model import EntityType, NormalizedEvent, Resource


def enrich(event: NormalizedEvent, config: Config) -> NormalizedEvent:
    """`event`, enriched in place and returned: the normalizer enriches the events it has just built, before
    anything else sees them (a copy of each cost more than building it). A resource that takes an asset class is
    replaced by one that has it; the others are kept as they are."""
    if not event.resources and not event.images:
        return event  # most calls name no resource: nothing to judge
    if config.assets and event.resources:
        event.resources = classified(event.resources, config)
    return judge(event, config)


def classified(resources: list[Resource], config: Config) -> list[Resource]:
    """The resources with the asset classes the site gives them (a new list; those that take none kept)."""
    site = _Site(config)
    return [_classified(resource, site) for resource in resources]


def judge(event: NormalizedEvent, config: Config) -> NormalizedEvent:
    """`event` (its resources classified already) with the site's verdicts: declared writer, allowed images."""
    if config.asset_writers and event.actor is not None:
        principal = event.actor.principal
        classes = frozenset(r.asset_class for r in event.resources if r.asset_class)
        event.declared_writer = _writer_verdict(_Site(config), principal, classes) if classes and principal else None
    if config.allowed_image_registries and event.images:
        event.image_allowed = all(config.image_allowed(image) for image in event.images)
    return event


class _Site:
    """A configuration as a cache key, by identity. What it says about a resource or a principal is remembered
    (buckets, objects and roles recur event after event), for as long as the configuration exists: the cache
    entry holds it, so its id cannot be reused while the entry lives. A configuration is not changed once events
    are normalized with it (its glob indexes are built when it is validated)."""

    __slots__ = ("config",)

    def __init__(self, config: Config) -> None:
        self.config = config

    def __hash__(self) -> int:
        return id(self.config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Site) and other.config is self.config


def _classified(resource: Resource, site: _Site) -> Resource:
    classified = _with_asset_class(site, resource.type, resource.id)
    if classified is not None:
        return classified
    return resource if resource.asset_class is None else resource.model_copy(update={"asset_class": None})


@lru_cache(maxsize=8192)
def _with_asset_class(site: _Site, kind: EntityType, identifier: str) -> Resource | None:
    """The resource with the asset class the site gives it (shared: events never change their resources), or
    None when it takes none."""
    asset_class = _asset_class(kind, identifier, site.config)
    return None if asset_class is None else Resource(type=kind, id=identifier, asset_class=asset_class)


def asset_class_of(resource: Resource, config: Config) -> str | None:
    return _asset_class(resource.type, resource.id, config)


def _asset_class(kind: EntityType, identifier: str, config: Config) -> str | None:
    if not identifier.startswith(("s3://", "arn:")):
        return None  # instance ids and the like: the configuration names assets by URI or ARN only
    found = config.asset_class(identifier)
    if found is None and kind is EntityType.BUCKET:
        found = config.bucket_asset_class(identifier.rsplit(":", 1)[-1])
    return found


@lru_cache(maxsize=4096)
def _writer_verdict(site: _Site, principal: str, classes: frozenset[str]) -> bool | None:
    """`declared_writer` of a principal that touched `classes` (see the module docstring)."""
    config = site.config
    if not principal.startswith("arn:"):
        return None  # no IAM principal to judge
    verdicts = [config.declared_writer(name, principal) for name in sorted(classes)]
    judged = [verdict for verdict in verdicts if verdict is not None]
    if judged and any(fnmatch.fnmatchcase(principal, glob) for glob in config.guards.cordon_roles):
        return True
    return all(judged) if judged else None
