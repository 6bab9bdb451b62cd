"""Sigma correlation rules Cordon can evaluate on a stream, and why it refuses the others.

Cordon correlates as events arrive and never looks back at a closed window, so it can only fire when a count
grows past a threshold (`gt`, `gte`). "Fewer than" or "exactly" needs the window to close first, and sums,
averages, percentiles and medians need every value of the window; those rules are refused at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from correlators.errors import RuleError
from correlators.model import Severity
from correlators.sigma.documents import RuleDocument
from correlators.sigma.rules import CorrelationRule

_STREAMABLE_TYPES = (
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED,
)
_STREAMABLE_OPERATORS = (SigmaCorrelationConditionOperator.GT, SigmaCorrelationConditionOperator.GTE)


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
    return None


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
