"""Loading Sigma rule files into a `RuleSet`: parsed by pySigma, compiled natively, correlations resolved.

Stages, each with errors that name `path:line`:
1. files and their YAML documents, loaded safely (duplicate keys are errors);
2. each document through pySigma, after refusing retired syntax that pySigma would misread;
3. Sigma filters applied, logsources mapped to Cordon's event sources, detection rules compiled into matchers;
4. names and ids indexed (one used twice is an error), then correlation references resolved across all files.

`collect_errors=True` is the lint mode: every good rule loads and every error is returned in `RuleSet.errors`.
Otherwise the first error is raised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.rule import SigmaLogSource, SigmaRule

from correlators.errors import RuleError
from correlators.model import EventSource, Severity
from correlators.sigma import correlation
from correlators.sigma.documents import RuleDocument, read_documents, rule_files
from correlators.sigma.evaluate import compile_rule, pinned_alternatives, validate_detections
from correlators.sigma.rules import CorrelationRule, DetectionRule, RuleSet

__all__ = ["SUPPORTED_LOGSOURCES", "CorrelationRule", "DetectionRule", "RuleSet", "load_rules"]

# (product, service) -> where Cordon receives those events from
SUPPORTED_LOGSOURCES = {("aws", source.value): source for source in EventSource}
_SUPPORTED_TEXT = "product: aws with service: " + ", ".join(source.value for source in EventSource)

ParsedRule = SigmaRule | SigmaCorrelationRule | SigmaFilter


def load_rules(paths: Sequence[Path], *, collect_errors: bool = False) -> RuleSet:
    """Load rule files and folders (searched for *.yml / *.yaml, rule tests left out). Raises RuleError."""
    errors: list[RuleError] = []
    unloaded: set[str] = set()  # names and ids of rules that failed, to explain references to them
    parsed: list[tuple[RuleDocument, ParsedRule]] = []
    for path in rule_files(paths, errors):
        try:
            documents = read_documents(path)
        except RuleError as error:
            errors.append(error)
            continue
        for document in documents:
            rule = _parse(document, errors)
            if rule is None:
                unloaded |= document.references
            else:
                parsed.append((document, rule))

    rules = [(document, rule) for document, rule in parsed if isinstance(rule, SigmaRule)]
    _apply_filters([(document, rule) for document, rule in parsed if isinstance(rule, SigmaFilter)], rules, errors)
    index = _Index()
    detections = []
    for document, rule in rules:
        detection = _detection(document, rule, errors)
        problem = index.add(document, rule, detection.key) if detection else None
        if problem is not None:
            errors.append(problem)
        if detection is not None and problem is None:
            detections.append(detection)
        else:
            unloaded |= document.references
    correlation_rules = [(document, rule) for document, rule in parsed if isinstance(rule, SigmaCorrelationRule)]
    correlations = _correlations(correlation_rules, index, unloaded, errors)

    if errors and not collect_errors:
        raise errors[0]
    return _mark_references(detections, correlations, errors)


def _parse(document: RuleDocument, errors: list[RuleError]) -> ParsedRule | None:
    retired = _retired_syntax(document)
    if retired is not None:
        errors.append(retired)
        return None
    body = document.body
    kind = SigmaCorrelationRule if "correlation" in body else SigmaFilter if "filter" in body else SigmaRule
    try:
        rule = kind.from_dict(body, collect_errors=True, source=SigmaRuleLocation(document.path, document.line))
    except Exception as error:  # pySigma raises plain Python errors on some malformed input
        errors.append(_sigma_error(document, error))
        return None
    if rule.errors:
        errors.extend(_sigma_error(document, error) for error in rule.errors)
        return None
    return rule


def _retired_syntax(document: RuleDocument) -> RuleError | None:
    """Sigma 1 syntax pySigma would not reject on its own (`timeframe` would become a keyword search)."""
    body = document.body
    if "action" in body:
        return RuleError(
            "Sigma collection actions (action: global / reset / repeat) are not supported: write each rule in full",
            where=document.where("action"),
        )
    detection = body.get("detection")
    if not isinstance(detection, dict):
        return None
    conditions = detection.get("condition")
    for condition in conditions if isinstance(conditions, list) else [conditions]:
        if isinstance(condition, str) and "|" in condition:
            return RuleError(
                f"the aggregation syntax in condition '{condition}' ('| count()', '| near') was retired from "
                "Sigma: write a Sigma correlation rule (event_count, value_count, temporal) instead",
                where=document.where("detection", "condition"),
            )
    if "timeframe" in detection:
        return RuleError(
            "'timeframe' in a detection is the retired aggregation syntax: write a Sigma correlation rule "
            "(event_count, value_count, temporal) with a 'timespan' instead",
            where=document.where("detection", "timeframe"),
        )
    return None


def _sigma_error(document: RuleDocument, error: Exception) -> RuleError:
    reason = str(error.args[0]) if error.args else type(error).__name__
    return RuleError(reason, where=document.where_error(error))


def _event_source(logsource: SigmaLogSource) -> EventSource | None:
    if logsource.category:  # a category narrows events in a way Cordon doesn't model
        return None
    return SUPPORTED_LOGSOURCES.get(((logsource.product or "").lower(), (logsource.service or "").lower()))


def _logsource_error(document: RuleDocument, logsource: SigmaLogSource) -> RuleError:
    written = ", ".join(
        f"{key}: {value}"
        for key, value in (
            ("category", logsource.category),
            ("product", logsource.product),
            ("service", logsource.service),
        )
        if value
    )
    wrong = "category" if logsource.category else "product" if (logsource.product or "").lower() != "aws" else "service"
    return RuleError(
        f"logsource '{written}' is not one Cordon receives; supported: {_SUPPORTED_TEXT}",
        where=document.where("logsource", wrong),
    )


def _apply_filters(
    filters: list[tuple[RuleDocument, SigmaFilter]],
    rules: list[tuple[RuleDocument, SigmaRule]],
    errors: list[RuleError],
) -> None:
    """Sigma filters (`filter:` documents) add exclusions to the rules they name, without editing those rules."""
    known = {ref: ref for _, rule in rules for ref in (rule.name, str(rule.id) if rule.id else None) if ref}
    for document, sigma_filter in filters:
        try:
            if _event_source(sigma_filter.logsource) is None:
                raise _logsource_error(document, sigma_filter.logsource)
            if isinstance(sigma_filter.filter.rules, list):
                for reference in sigma_filter.filter.rules:
                    if correlation.lookup(known, reference.reference) is None:
                        raise RuleError(
                            f"unknown rule '{reference.reference}': no loaded rule has this name or id",
                            where=document.where("filter", "rules"),
                        )
            validate_detections(sigma_filter.title, sigma_filter.filter.detections.values(), document.where_detection)
        except RuleError as error:
            errors.append(error)
            continue
        for _, rule in rules:
            sigma_filter.apply_on_rule(rule)  # only where the filter names the rule and its logsource fits


def _detection(document: RuleDocument, rule: SigmaRule, errors: list[RuleError]) -> DetectionRule | None:
    source = _event_source(rule.logsource)
    if source is None:
        errors.append(_logsource_error(document, rule.logsource))
        return None
    try:
        matcher = compile_rule(rule, document.where_detection)
        pins = pinned_alternatives(rule)
    except RuleError as error:
        errors.append(error)
        return None
    except SigmaError as error:
        errors.append(_sigma_error(document, error))
        return None
    return DetectionRule(
        id=str(rule.id) if rule.id else None,
        name=rule.name,
        title=rule.title,
        level=Severity(rule.level.name.lower()) if rule.level else None,
        sources=frozenset({source}),
        path=document.path,
        line=document.line,
        tags=tuple(str(tag) for tag in rule.tags),
        referenced=False,
        generate=True,
        matcher=matcher,
        pins=pins,
    )


class _Index:
    """Rule names and ids -> rule keys, across all files. A name or id used twice is an error."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self._places: dict[str, str] = {}

    def add(self, document: RuleDocument, rule: SigmaRule | SigmaCorrelationRule, key: str) -> RuleError | None:
        names = {"name": rule.name, "id": str(rule.id) if rule.id else None}
        for attribute, value in names.items():
            if value is not None and value in self.keys:
                return RuleError(
                    f"rule {attribute} '{value}' is already used by the rule at {self._places[value]}",
                    where=document.where(attribute),
                )
        for value in names.values():
            if value is not None:
                self.keys[value] = key
                self._places[value] = document.where()
        return None

    def remove(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        for value in (rule.name, str(rule.id) if rule.id else None):
            self.keys.pop(value or "", None)


def _correlations(
    entries: list[tuple[RuleDocument, SigmaCorrelationRule]], index: _Index, unloaded: set[str], errors: list[RuleError]
) -> list[CorrelationRule]:
    pending: dict[int, tuple[RuleDocument, SigmaCorrelationRule]] = {}
    for document, rule in entries:
        key = rule.name or (str(rule.id) if rule.id else f"{document.path}:{document.line}")
        problem = correlation.unsupported(document, rule) or index.add(document, rule, key)
        if problem is None:
            pending[id(rule)] = (document, rule)
        else:
            errors.append(problem)
            unloaded |= document.references

    def drop(document: RuleDocument, rule: SigmaCorrelationRule, problem: RuleError) -> None:
        errors.append(problem)
        unloaded.update(document.references)
        index.remove(rule)
        del pending[id(rule)]

    for document, rule in list(pending.values()):
        if _in_cycle(rule, pending, index):
            drop(
                document,
                rule,
                RuleError("correlation rules reference each other in a cycle", document.where("correlation", "rules")),
            )
    # Correlations may build on correlations: dropping one can break another, so repeat until nothing changes.
    changed = True
    while changed:
        changed = False
        for document, rule in list(pending.values()):
            problem = _unresolved(document, rule, index, unloaded)
            if problem is not None:
                drop(document, rule, problem)
                changed = True
    return [
        correlation.build(document, rule, lambda ref: correlation.lookup(index.keys, ref) or ref)
        for document, rule in pending.values()
    ]


def _unresolved(
    document: RuleDocument, rule: SigmaCorrelationRule, index: _Index, unloaded: set[str]
) -> RuleError | None:
    listed = {correlation.lookup(index.keys, reference.reference) for reference in rule.rules or []}
    for reference in correlation.references(rule):
        key = correlation.lookup(index.keys, reference)
        if key is None:
            why = (
                "did not load (see its error)"
                if reference in unloaded
                else "is unknown: no loaded rule has this name or id"
            )
            return RuleError(f"referenced rule '{reference}' {why}", where=document.where("correlation", "rules"))
        if key not in listed:
            return RuleError(
                f"an alias names rule '{reference}', which is not among the correlation's rules",
                where=document.where("correlation", "aliases"),
            )
    return None


def _in_cycle(
    start: SigmaCorrelationRule, pending: dict[int, tuple[RuleDocument, SigmaCorrelationRule]], index: _Index
) -> bool:
    """Whether `start` reaches itself through the correlations it references (the engine would never settle)."""
    by_key = {key: rule for _, rule in pending.values() if (key := index.keys.get(rule.name or str(rule.id)))}
    stack, seen = [start], set()
    while stack:
        rule = stack.pop()
        for reference in rule.rules or []:
            target = by_key.get(correlation.lookup(index.keys, reference.reference) or "")
            if target is start:
                return True
            if target is not None and id(target) not in seen:
                seen.add(id(target))
                stack.append(target)
    return False


def _mark_references(
    detections: list[DetectionRule], correlations: list[CorrelationRule], errors: list[RuleError]
) -> RuleSet:
    """Sigma `generate`: a referenced rule alerts on its own only if a correlation using it sets `generate: true`."""
    referenced = {key for rule in correlations for key in rule.rules}
    wanted = {key for rule in correlations if rule.generate for key in rule.rules}
    return RuleSet(
        detections=[
            dataclasses.replace(
                rule, referenced=rule.key in referenced, generate=rule.key not in referenced or rule.key in wanted
            )
            for rule in detections
        ],
        correlations=[
            dataclasses.replace(
                rule, referenced=rule.key in referenced, alerts=rule.key not in referenced or rule.key in wanted
            )
            for rule in correlations
        ],
        errors=errors,
    )
