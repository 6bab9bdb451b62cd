"""Loaded Sigma rules as the detection and correlation engines use them: plain frozen values, no pySigma types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from correlators.errors import RuleError
from correlators.model import EventSource, Severity
from correlators.sigma.fields import FieldView
from correlators.sigma.pins import Pins

CorrelationType = Literal["event_count", "value_count", "temporal", "temporal_ordered"]
ConditionOperator = Literal["gt", "gte", "lt", "lte", "eq", "neq"]


@dataclass(frozen=True)
class DetectionRule:
    """A Sigma detection rule, compiled. `generate` says whether its matches are alerts of their own.

    Per the Sigma specification a rule that a correlation rule references only feeds that correlation, unless
    one of the correlations referencing it sets `generate: true`.
    """

    id: str | None
    name: str | None
    title: str
    level: Severity | None
    sources: frozenset[EventSource]
    path: Path
    line: int | None
    tags: tuple[str, ...]
    referenced: bool
    generate: bool
    matcher: Callable[[FieldView], bool] = field(repr=False, compare=False)
    # What an event needs for the rule to match (`evaluate.pinned_alternatives`): one alternative at least, each
    # field it names meeting one of its needles (`pins`). The default, one empty alternative, lets every event through.
    pins: tuple[Pins, ...] = field(default=({},), repr=False, compare=False)

    @property
    def key(self) -> str:
        """How correlation rules and signals name this rule: its `name`, else its `id`, else where it is."""
        return self.name or self.id or f"{self.path}:{self.line}"

    def matches(self, fields: FieldView) -> bool:
        return self.matcher(fields)


@dataclass(frozen=True)
class CorrelationRule:
    """A Sigma correlation rule Cordon can evaluate on a stream.

    `rules` and the keys of `aliases` are the referenced rules' keys (see `DetectionRule.key`), in the order the
    rule lists them. `generate` is the rule's own `generate:` (do the referenced rules still alert on their own?);
    `alerts` says whether this correlation raises incidents itself, which is False when it only feeds another
    correlation that does not set `generate: true`.
    """

    id: str | None
    name: str | None
    title: str
    level: Severity | None
    type: CorrelationType
    rules: tuple[str, ...]
    group_by: tuple[str, ...]
    timespan_seconds: int
    condition_op: ConditionOperator | None
    condition_count: float | None
    condition_field: str | None
    aliases: dict[str, dict[str, str]]
    generate: bool
    path: Path
    line: int | None
    tags: tuple[str, ...]
    referenced: bool
    alerts: bool

    @property
    def key(self) -> str:
        return self.name or self.id or f"{self.path}:{self.line}"


@dataclass
class RuleSet:
    detections: list[DetectionRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)

    @staticmethod
    def rule_key(rule: DetectionRule | CorrelationRule) -> str:
        return rule.key

    def get(self, key: str) -> DetectionRule | CorrelationRule:
        """The rule with this key. Raises KeyError."""
        rules: list[DetectionRule | CorrelationRule] = [*self.detections, *self.correlations]
        for rule in rules:
            if rule.key == key:
                return rule
        raise KeyError(key)

    def detections_for(self, source: EventSource) -> list[DetectionRule]:
        """The detection rules that can match an event from `source`: only these need to run on it."""
        return [rule for rule in self.detections if source in rule.sources]
