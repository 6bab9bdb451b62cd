"""The rule index runs only the rules that can match: it must never leave out one that does.

`pinned_alternatives` is a necessary condition drawn from the condition tree; the sample test holds the index to a scan
of every rule over every real event in ../shared/samples, with the built-in and the SigmaHQ CloudTrail rules.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent, indent

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.model import EventSource
from correlators.normalize import normalize
from correlators.sigma import DetectionRule, FieldView, load_rules
from correlators.sigma.index import RuleIndex
from correlators.sigma.pins import EXISTS, Contains

BUILTIN = Path(__file__).parents[2] / "correlators" / "rules"


def _rule(tmp_path: Path, detection: str, name: str = "rule") -> DetectionRule:
    path = tmp_path / f"{name}.yml"
    path.write_text(
        f"title: {name}\nname: {name}\nlogsource:\n  product: aws\n  service: cloudtrail\n"
        f"detection:\n{indent(dedent(detection).strip(), '  ')}\n",
        encoding="utf-8",
    )
    (rule,) = load_rules([path]).detections
    return rule


@pytest.mark.parametrize(
    ("detection", "pins"),
    [
        ("sel:\n  eventName: GetObject\ncondition: sel", [{"eventName": {"getobject"}}]),
        (
            "sel:\n  eventSource: s3.amazonaws.com\n  eventName: [GetObject, PutObject]\ncondition: sel",
            [{"eventSource": {"s3.amazonaws.com"}, "eventName": {"getobject", "putobject"}}],
        ),
        # A field with several values can satisfy both: the smaller set is kept, never the empty intersection.
        ("a:\n  eventName: A\nb:\n  eventName: [B, C]\ncondition: a and b", [{"eventName": {"a"}}]),
        # OR keeps each alternative; those pinning only the same one field merge.
        (
            "a:\n  eventName: A\n  userAgent: x\nb:\n  eventName: B\ncondition: a or b",
            [{"eventName": {"b"}}, {"eventName": {"a"}, "userAgent": {"x"}}],
        ),
        ("a:\n  eventName: A\nb:\n  userAgent: x\ncondition: a or b", [{"eventName": {"a"}}, {"userAgent": {"x"}}]),
        ("a:\n  eventName: A\nb:\n  eventName: B\ncondition: 1 of a or b", [{"eventName": {"a", "b"}}]),
        # An alternative that pins nothing lets any event through.
        ("a:\n  eventName: A\nb:\n  userAgent|contains: x\ncondition: a or b", [{}]),
        # AND joins the alternatives of its children.
        (
            "a:\n  eventName: A\nb:\n  userAgent: x\nc:\n  errorCode: E\ncondition: (a or b) and c",
            [{"eventName": {"a"}, "errorCode": {"e"}}, {"userAgent": {"x"}, "errorCode": {"e"}}],
        ),
        ("a:\n  eventName: A\ncondition: not a", [{}]),
        ("a:\n  eventName|contains: Get\ncondition: a", [{}]),
        ("a:\n  eventName: Get*\ncondition: a", [{}]),
        ("a:\n  eventName|cased: GetObject\ncondition: a", [{}]),
        # A case-sensitive regular expression pins the literal every match contains; one ignoring case, nothing.
        ("a:\n  eventName|re: Get.*\ncondition: a", [{"eventName": {Contains("Get")}}]),
        ("a:\n  eventName|re|i: Get.*\ncondition: a", [{}]),
        ("a:\n  eventName|re: '[GP]et'\ncondition: a", [{}]),
        # `|exists: true` pins the field's presence, not null; `|exists: false` pins nothing.
        ("a:\n  errorCode|exists: true\ncondition: a", [{"errorCode": {EXISTS}}]),
        ("a:\n  errorCode|exists: false\ncondition: a", [{}]),
        (
            "a:\n  errorCode|exists: true\nb:\n  eventName: A\ncondition: a or b",
            [{"errorCode": {EXISTS}}, {"eventName": {"a"}}],
        ),
        ("a:\n  errorCode: null\ncondition: a", [{}]),
        ("keywords:\n  - GetObject\ncondition: keywords", [{}]),
    ],
)
def test_pinned_alternatives(tmp_path: Path, detection: str, pins: list[dict[str, set[str]]]) -> None:
    rule = _rule(tmp_path, detection)
    assert [{field: set(texts) for field, texts in alternative.items()} for alternative in rule.pins] == pins


def test_alternatives_stay_few_when_and_joins_many(tmp_path: Path) -> None:
    # GIVEN an AND of three ORs of five selections, each pinning two fields: 5 x 5 x 5 alternatives
    selections = "\n".join(f"s{i}{j}:\n  eventName: N{i}{j}\n  userAgent: U{i}{j}" for i in range(3) for j in range(5))
    condition = " and ".join(f"1 of s{i}*" for i in range(3))
    # WHEN its pins are drawn
    rule = _rule(tmp_path, f"{selections}\ncondition: {condition}")
    # THEN the children past the bound add only what all their alternatives pin, their texts united, which the
    # first child's single texts already narrow: five alternatives, not 125
    assert [{field: set(texts) for field, texts in alternative.items()} for alternative in rule.pins] == [
        {"eventName": {f"n0{j}"}, "userAgent": {f"u0{j}"}} for j in range(5)
    ]


def test_candidates_keep_rule_order_and_the_unpinned(tmp_path: Path) -> None:
    # GIVEN rules pinned on different fields, and one that pins nothing
    rules = [
        _rule(tmp_path, "sel:\n  eventName: GetObject\ncondition: sel", "get"),
        _rule(tmp_path, "sel:\n  userAgent|contains: curl\ncondition: sel", "curl"),
        _rule(tmp_path, "sel:\n  eventSource: s3.amazonaws.com\ncondition: sel", "s3"),
        _rule(tmp_path, "sel:\n  eventName: PutObject\ncondition: sel", "put"),
    ]
    index = RuleIndex(rules)
    # WHEN an S3 GetObject event is looked up (values compared case-insensitively)
    view = _view({"eventName": "GETOBJECT", "eventSource": "s3.amazonaws.com", "userAgent": "aws-cli"})
    # THEN the rules that may match are left, in rule order; the PutObject rule is not
    assert [rule.name for rule in index.candidates(view.event)] == ["get", "curl", "s3"]


def _view(raw: dict[str, object]) -> FieldView:
    (event,) = normalize(RawRecord({"eventVersion": "1.08", "eventTime": "2023-07-10T12:00:00Z", **raw}, "t"), Config())
    return FieldView(event)


def test_index_finds_every_match_a_full_scan_finds(samples: Path) -> None:
    sigmahq = samples / "sigmahq-sigma" / "rules" / "cloud" / "aws" / "cloudtrail"
    ruleset = load_rules([BUILTIN, sigmahq])
    indexes = {source: RuleIndex(ruleset.detections_for(source)) for source in EventSource}
    events = matched = candidates = 0
    for item in read_inputs([str(samples)]):
        if not isinstance(item, RawRecord):
            continue
        try:
            normalized = normalize(item, Config())
        except EventRejectedError:
            continue
        for event in normalized:
            view = FieldView(event)
            scan = [rule.key for rule in ruleset.detections_for(event.source) if rule.matches(view)]
            offered = indexes[event.source].candidates(event)
            assert [rule.key for rule in offered if rule.matches(view)] == scan, item.where
            events += 1
            matched += len(scan)
            candidates += len(offered)
    # The samples exercise the index: thousands of events, hundreds of matches, far fewer rules run than exist.
    assert events > 3000
    assert matched > 200
    assert candidates < events * len(ruleset.detections) / 5
