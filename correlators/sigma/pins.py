"""What a rule needs of one field to match, as the rule index tests it without running the rule (`Pins`).

A needle is one of:
- a `str`: the lower-cased text (`fields.value_text`) of some value of the field is exactly it;
- `Contains(literal)`: the text of some value holds `literal`, exactly (case-sensitive): the literal every match
  of a case-sensitive `|re` contains (`literals.required_literal`);
- `EXISTS`: the field is present and none of its values is null (`|exists: true`).

A field meets a set of needles when it meets one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Contains:
    literal: str


@dataclass(frozen=True)
class Exists:
    pass


EXISTS = Exists()

Needle = str | Contains | Exists
# field -> needles: an event meets the alternative when every field named meets one of its needles
Pins = Mapping[str, frozenset[Needle]]
