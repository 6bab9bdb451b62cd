"""Do both engines flag the same events for every SigmaHQ rule? Where they cannot, say why, by rule.

Each rule's flagged event ids are compared between Cordon's detector and the eql engine. A difference is allowed
only for a rule named in `ADJUDICATED`, with the reason eql cannot express what the Sigma rule says; any other
difference makes `same_matches` false, and is printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Rule title -> why eql gives a different answer (Sigma semantics are what Cordon implements,
# correlators/sigma/evaluate.py).
ADJUDICATED = {
    "AWS User Login Profile Was Modified": (
        "the rule compares two fields (`userIdentity.arn|fieldref: requestParameters.userName`): pySigma's EQL "
        "backend refuses field references and eql itself rejects comparisons against fields, so eql does not "
        "run this rule"
    ),
    "AWS New Lambda Layer Attached": (
        "`requestParameters.layers|contains: '*'` applies a wildcard to the elements of a list (CloudTrail logs "
        "`layers` as an array); eql cannot apply a wildcard to list elements, so it never matches"
    ),
    "AWS EC2 VM Export Failure": (
        "`not (errorMessage|contains: '*' ...)`: Sigma reads a missing field as not matching, so the negation "
        "holds; eql's null propagates through `not`, so an export without an error is never flagged"
    ),
    "AWS S3 Bucket Versioning Disable": (
        "`requestParameters|contains: 'Suspended'` on an object-valued field: Sigma (as a SIEM storing CloudTrail as "
        "text) matches the object's JSON text; eql compares an object with a string and never matches"
    ),
}


@dataclass
class RuleComparison:
    title: str
    cordon: int
    eql: int | None  # None: eql does not run this rule
    only_cordon: int
    only_eql: int

    @property
    def same(self) -> bool:
        return self.eql is not None and self.only_cordon == 0 and self.only_eql == 0


@dataclass
class MatchReport:
    rules: dict[str, RuleComparison] = field(default_factory=dict)  # by rule id

    @property
    def differing(self) -> list[RuleComparison]:
        return [r for r in self.rules.values() if not r.same]

    @property
    def unexplained(self) -> list[RuleComparison]:
        return [r for r in self.differing if r.title not in ADJUDICATED]

    @property
    def same_matches(self) -> bool:
        return not self.unexplained

    @property
    def rules_flagging(self) -> int:
        return sum(1 for r in self.rules.values() if r.cordon or r.eql)


def compare(titles: dict[str, str], cordon: dict[str, set[str]], eql: dict[str, set[str]]) -> MatchReport:
    report = MatchReport()
    for rule, title in sorted(titles.items(), key=lambda item: item[1]):
        ours, theirs = cordon.get(rule, set()), eql.get(rule)
        report.rules[rule] = RuleComparison(
            title=title,
            cordon=len(ours),
            eql=None if theirs is None else len(theirs),
            only_cordon=len(ours - (theirs or set())),
            only_eql=len((theirs or set()) - ours),
        )
    return report
