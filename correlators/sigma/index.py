"""Which detection rules can match an event, found without running them: an index on the values rules pin.

Most CloudTrail rules pin `eventSource` or `eventName` to a few exact values (57 of the 61 SigmaHQ and built-in
ones), so looking the event's own values up leaves a handful of rules to run instead of all of them. Each rule
is indexed under one field it pins (`evaluate.pinned_values`): the one with the most distinct values across all
rules, the most selective. Rules that pin nothing run on every event. Candidates keep the rule set's order, so
signals come out in the order a scan of every rule gives them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from correlators.sigma.evaluate import event_texts
from correlators.sigma.fields import FieldView
from correlators.sigma.rules import DetectionRule


class RuleIndex:
    def __init__(self, rules: Sequence[DetectionRule]) -> None:
        self._rules = list(rules)
        distinct: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        for rule in self._rules:
            for field, texts in rule.pinned.items():
                for text in texts:
                    if (field, text) not in seen:
                        seen.add((field, text))
                        distinct[field] += 1
        # field > pinned text > positions of the rules indexed under it
        self._by_value: dict[str, dict[str, list[int]]] = {}
        self._always: list[int] = []
        for position, rule in enumerate(self._rules):
            if not rule.pinned:
                self._always.append(position)
                continue
            field = max(rule.pinned, key=lambda name: (distinct[name], name))
            by_text = self._by_value.setdefault(field, {})
            for text in rule.pinned[field]:
                by_text.setdefault(text, []).append(position)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def candidates(self, view: FieldView) -> list[DetectionRule]:
        """The rules that may match the event, in rule-set order; the others cannot."""
        positions = set(self._always)
        for field, by_text in self._by_value.items():
            for text in event_texts(view.get(field)):
                positions.update(by_text.get(text, ()))
        return [self._rules[position] for position in sorted(positions)]
