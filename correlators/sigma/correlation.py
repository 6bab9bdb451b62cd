"""Sigma correlation rules Cordon can evaluate on a stream, and why it refuses the others.

Cordon correlates as events arrive and never looks back at a closed window, so it can only fire when a count
grows past a threshold (`gt`, `gte`). "Fewer than" or "exactly" needs the window to close first, and sums,
averages, percentiles and medians need every value of the window; those rules are refused at load time.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from uuid import UUID

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from correlators.errors import RuleError
from correlators.model import EntityType, Severity
from correlators.sigma.documents import RuleDocument
from correlators.sigma.fields import is_known_field
from correlators.sigma.rules import CorrelationRule
from correlators.timespan import check_seconds

_STREAMABLE_TYPES = (
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED,
)
_STREAMABLE_OPERATORS = (SigmaCorrelationConditionOperator.GT, SigmaCorrelationConditionOperator.GTE)
# Signals of a correlation are kept for its timespan (plus the incident window and lateness): bounded.
MAX_TIMESPAN_SECONDS = 30 * 86400
ENTITY_NAMES = tuple(sorted(kind.value for kind in EntityType))
# Top-level fields of a CloudTrail record: bare words that are raw fields, not entity names.
CLOUDTRAIL_FIELDS = frozenset(
    {
        "eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
        "errorCode", "errorMessage", "requestID", "eventID", "readOnly", "eventType", "apiVersion",
        "managementEvent", "recipientAccountId", "sharedEventID", "vpcEndpointId", "eventCategory",
        "sessionCredentialFromConsole",
    }
)  # fmt: skip


def unsupported(document: RuleDocument, rule: SigmaCorrelationRule) -> RuleError | None:
    """Why Cordon cannot evaluate this correlation rule, or None."""
    if rule.type not in _STREAMABLE_TYPES:
        supported = ", ".join(kind.name.lower() for kind in _STREAMABLE_TYPES)
        return RuleError(
            f"correlation type '{rule.type.name.lower()}' is not supported: it needs every value of a closed "
            f"window, and Cordon correlates on a stream; supported types: {supported}",
            where=document.where("correlation", "type"),
        )
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        return RuleError(
            "extended temporal conditions (a boolean expression over rules) are not supported: "
            "list the rules under 'rules' and leave out 'condition'",
            where=document.where("correlation", "condition"),
        )
    if condition.op not in _STREAMABLE_OPERATORS:
        return RuleError(
            f"condition operator '{condition.op.name.lower()}' is not supported: a streaming correlation can only "
            "fire when a count grows past a threshold: use gt or gte",
            where=document.where("correlation", "condition"),
        )
    if isinstance(condition.fieldref, list) and len(condition.fieldref) > 1:
        return RuleError(
            "a condition 'field' with several fields is not supported: count the distinct values of one field",
            where=document.where("correlation", "condition"),
        )
    try:
        check_seconds(rule.timespan.seconds, rule.timespan.spec, MAX_TIMESPAN_SECONDS)
    except ValueError as error:
        return RuleError(f"timespan: {error}", where=document.where("correlation", "timespan"))
    return group_by_problem(document, rule)


def group_by_problem(document: RuleDocument, rule: SigmaCorrelationRule) -> RuleError | None:
    """A `group-by` name that is none of the things a group can be, which would silently never group anything.

    A group-by name is, in this order: an alias the rule defines; a resolved entity (`principal`, `access_key`,
    ...); a Cordon field (`cordon.source_ip`); or a raw field, written as a dotted path (`userIdentity.arn`) or
    a top-level CloudTrail field (`eventName`, `sourceIPAddress`). Any other bare word (`principle`) is a typo.
    """
    aliases = {alias.alias for alias in rule.aliases}
    for index, name in enumerate(rule.group_by or ()):
        if name in aliases or name in ENTITY_NAMES or name in CLOUDTRAIL_FIELDS:
            continue
        if "." in name and is_known_field(name):
            continue
        near = difflib.get_close_matches(name, [*ENTITY_NAMES, *aliases], n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        reason = (
            f"unknown cordon field '{name}'"
            if name.startswith("cordon.")
            else f"group-by '{name}' is not an entity name{hint}"
        )
        return RuleError(
            f"{reason}: valid entity names: {', '.join(ENTITY_NAMES)}; aliases of this rule: "
            f"{', '.join(sorted(aliases)) or '(none)'}; a raw field is a dotted path (userIdentity.arn) or a "
            "top-level CloudTrail field (eventName, sourceIPAddress, ...)",
            where=document.where("correlation", "group-by", index),
        )
    return None


def nested(correlations: Sequence[CorrelationRule]) -> list[RuleError]:
    """Correlations that reference other correlations: the engine evaluates correlations over detections only."""
    keys = {rule.key for rule in correlations}
    errors = []
    for rule in correlations:
        inner = [key for key in rule.rules if key in keys]
        if inner:
            errors.append(
                RuleError(
                    f"correlation rule '{rule.title}' references correlation rule(s) {', '.join(inner)}:"
                    " Cordon evaluates correlations over detection rules only; reference their detection rules",
                    where=f"{rule.path}:{rule.line}" if rule.line else str(rule.path),
                )
            )
    return errors


def references(rule: SigmaCorrelationRule) -> list[str]:
    """Every rule reference the correlation makes: its rules, then those its aliases name."""
    listed = [reference.reference for reference in rule.rules or []]
    aliased = [reference.reference for alias in rule.aliases for reference in alias.mapping]
    return listed + [reference for reference in aliased if reference not in listed]


def lookup(index: dict[str, str], reference: str) -> str | None:
    """The key of the rule a reference names. References are names or ids, and ids are compared as UUIDs."""
    try:
        return index.get(str(UUID(reference))) or index.get(reference)
    except ValueError:
        return index.get(reference)


def build(document: RuleDocument, rule: SigmaCorrelationRule, key_of: Callable[[str], str]) -> CorrelationRule:
    """The engine's view of a checked correlation rule whose references all resolve (`key_of`)."""
    condition = rule.condition
    assert isinstance(condition, SigmaCorrelationCondition)  # extended conditions are refused by `unsupported`
    field = condition.fieldref[0] if isinstance(condition.fieldref, list) else condition.fieldref
    return CorrelationRule(
        id=str(rule.id) if rule.id else None,
        name=rule.name,
        title=rule.title,
        level=Severity(rule.level.name.lower()) if rule.level else None,
        type=rule.type.name.lower(),  # type: ignore[arg-type]  # one of _STREAMABLE_TYPES
        rules=tuple(key_of(reference.reference) for reference in rule.rules or []),
        group_by=tuple(rule.group_by or ()),
        timespan_seconds=rule.timespan.seconds,
        condition_op=condition.op.name.lower(),  # type: ignore[arg-type]
        condition_count=condition.count,
        condition_field=field,
        aliases={
            alias.alias: {key_of(reference.reference): name for reference, name in alias.mapping.items()}
            for alias in rule.aliases
        },
        generate=rule.generate,
        path=document.path,
        line=document.line,
        tags=tuple(str(tag) for tag in rule.tags),
        referenced=False,
        alerts=True,
    )
