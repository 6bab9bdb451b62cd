"""Which management events a trail logs after a `PutEventSelectors` call, with AWS's defaults filled in.

Sigma matches a list one element at a time, so a rule cannot say "no selector in the list keeps management
events, counting the keys a selector leaves out at their AWS defaults". This module reads the whole list the way
CloudTrail applies it and names the result; rules match it as `cordon.trail.management_events`:

- `All`: every read and write management event (apart, at most, from the AWS KMS and RDS Data API sources, see
  below);
- `ReadOnly` / `WriteOnly`: only reads, or only writes;
- `None`: no management event at all (no selector includes them, or the selector list is empty).

Semantics, from the CloudTrail API reference (EventSelector, AdvancedEventSelector, AdvancedFieldSelector):
- A trail logs an event when any of its selectors matches it, so it logs the union of what its selectors log:
  a `ReadOnly` selector beside a `WriteOnly` one logs `All`.
- Basic selectors (`eventSelectors`): `includeManagementEvents` defaults to true and `readWriteType` to `All`, so
  `{"dataResources": [...]}` alone keeps every management event. A `readWriteType` AWS does not define logs
  nothing that can be vouched for, and counts as none.
- Advanced selectors (`advancedEventSelectors`): a selector logs management events when every condition on
  `eventCategory` admits `Management`; conditions on `readOnly` (`equals` `true` or `false`) narrow it to reads
  or writes, and without one it logs both. Every condition of a selector must hold. A selector that also filters
  management events on anything else (an `eventSource` other than the two exclusions below, `eventName`,
  `userIdentity.arn`: fields AWS accepts on event data stores, not trails) logs a part chosen by its author,
  and counts as keeping none: leaving one's own calls out is exactly the evasion to catch.
- Leaving out `kms.amazonaws.com` or `rdsdata.amazonaws.com` (`excludeManagementEventSources`, or `eventSource`
  `notEquals` in an advanced selector) does not count as narrowing. They are the only two sources AWS lets a
  trail leave out, AWS presents them as its cost filter for high-volume events meant for trails after the first
  one ("enable AWS KMS events on one trail, and filter them out from subsequent trails"), and one call cannot
  tell whether another trail still logs them. AWS Config's `multi-region-cloudtrail-enabled` rule reports any
  such exclusion as non-compliant, from the state of every trail; that posture finding is the place for it.
- A request without selectors, or with selectors that are not a list of objects, gives no value (None): what
  cannot be read is never taken for narrowing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from correlators.model import NormalizedEvent

ALL, READ_ONLY, WRITE_ONLY, NONE = "All", "ReadOnly", "WriteOnly", "None"

# The only management event sources a trail may leave out (CloudTrail API reference, EventSelector).
COST_EXCLUDABLE_SOURCES = frozenset({"kms.amazonaws.com", "rdsdata.amazonaws.com"})

_READ, _WRITE = "read", "write"
_BY_READ_WRITE_TYPE = {"all": {_READ, _WRITE}, "readonly": {_READ}, "writeonly": {_WRITE}}
_BY_COVERAGE = {frozenset({_READ, _WRITE}): ALL, frozenset({_READ}): READ_ONLY, frozenset({_WRITE}): WRITE_ONLY}

# AdvancedFieldSelector operators: a positive one holds when any operand matches, a negated one when none does.
_MATCHES: dict[str, Callable[[str, str], bool]] = {
    "equals": operator.eq,
    "startswith": str.startswith,
    "endswith": str.endswith,
}
_NEGATED = {"notequals": "equals", "notstartswith": "startswith", "notendswith": "endswith"}
_SELECTOR_FIELDS_KEPT_WHOLE = {"eventcategory", "readonly", "eventsource"}


def trail_management_events(event: NormalizedEvent) -> str | None:
    """`cordon.trail.management_events`: set for CloudTrail `PutEventSelectors` calls only, else None."""
    if event.action != "cloudtrail:PutEventSelectors":
        return None
    return management_events_logged(event.raw.get("requestParameters"))


def management_events_logged(request_parameters: Any) -> str | None:
    """`All`, `ReadOnly`, `WriteOnly` or `None` for the selectors in a PutEventSelectors request; None if unreadable.

    >>> management_events_logged({"trailName": "t", "eventSelectors": [{"dataResources": []}]})
    'All'
    >>> management_events_logged({"trailName": "t", "eventSelectors": []})
    'None'
    """
    if not isinstance(request_parameters, dict):
        return None
    basic = request_parameters.get("eventSelectors")
    advanced = request_parameters.get("advancedEventSelectors")
    if basic is None and advanced is None:
        return None
    coverage: set[str] = set()
    for selectors, logged_by in ((basic, _basic_coverage), (advanced, _advanced_coverage)):
        if selectors is None:
            continue
        if not isinstance(selectors, list) or not all(isinstance(selector, dict) for selector in selectors):
            return None
        for selector in selectors:
            coverage |= logged_by(selector)
    return _BY_COVERAGE.get(frozenset(coverage), NONE)


def _basic_coverage(selector: dict[str, Any]) -> set[str]:
    if not _flag(selector.get("includeManagementEvents"), default=True):
        return set()
    read_write_type = selector.get("readWriteType")
    if read_write_type is None:
        return {_READ, _WRITE}
    return set(_BY_READ_WRITE_TYPE.get(str(read_write_type).lower(), set()))


def _advanced_coverage(selector: dict[str, Any]) -> set[str]:
    conditions = [condition for condition in selector.get("fieldSelectors") or [] if isinstance(condition, dict)]
    by_field: dict[str, list[dict[str, Any]]] = {}
    for condition in conditions:
        by_field.setdefault(str(condition.get("field", "")).lower(), []).append(condition)
    categories = by_field.get("eventcategory", [])
    if not categories or not all(_admits(condition, "Management") for condition in categories):
        return set()  # eventCategory is required; without Management the selector logs data or other events
    if set(by_field) - _SELECTOR_FIELDS_KEPT_WHOLE:
        return set()
    if not all(_excludes_only_cost_sources(condition) for condition in by_field.get("eventsource", [])):
        return set()
    read_only = by_field.get("readonly", [])
    coverage = set()
    if all(_admits(condition, "true") for condition in read_only):
        coverage.add(_READ)
    if all(_admits(condition, "false") for condition in read_only):
        coverage.add(_WRITE)
    return coverage


def _admits(condition: dict[str, Any], value: str) -> bool:
    """Whether every operator of one AdvancedFieldSelector lets `value` through (compared case-insensitively)."""
    wanted = value.lower()
    for key, operands in condition.items():
        operator = key.lower()
        negated = operator in _NEGATED
        match = _MATCHES.get(_NEGATED.get(operator, operator))
        if match is None:
            continue  # "field", or an operator AWS does not define
        texts = [str(operand).lower() for operand in operands] if isinstance(operands, list) else []
        if any(match(wanted, text) for text in texts) == negated:
            return False
    return True


def _excludes_only_cost_sources(condition: dict[str, Any]) -> bool:
    operators = {key.lower(): operands for key, operands in condition.items() if key.lower() != "field"}
    excluded = operators.get("notequals")
    return (
        set(operators) == {"notequals"}
        and isinstance(excluded, list)
        and {str(source).lower() for source in excluded} <= COST_EXCLUDABLE_SOURCES
    )


def _flag(value: Any, *, default: bool) -> bool:
    """A JSON boolean, or its spelling as text; the AWS default when absent or null."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default
